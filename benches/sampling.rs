//! Picking the next token from one step's logits, as `run` does after every step, for the
//! vocabularies of Llama 2 (32000), SmolLM2 (49152) and Llama 3 (128256):
//! - `sample/default/VOCAB`: llama.cpp's default chain (top-k 40, top-p 0.95, min-p 0.05,
//!   temperature 0.8);
//! - `sample/greedy/VOCAB`: the argmax;
//! - `sample/default-shortlist/VOCAB`, `sample/greedy-shortlist/VOCAB`: the same picks
//!   from the shortlist a GPU brings back in place of the row (every logit at or above a
//!   threshold that k of them reach, as `shortlist::reference` lists it).
//!
//! Logits spread like a model's: uniform over [-10, 10). Throughput is logits a second.
//! `cargo bench --bench sampling -- --warm-up-time 1 --measurement-time 3`.

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ropewalk::backend::wgpu::shortlist;
use ropewalk::sample::{Next, Sampler, SamplerConfig};

use common::data;

fn sample(c: &mut Criterion) {
    let mut g = c.benchmark_group("sample");
    for vocab in [32000, 49152, 128256] {
        let mut logits: Vec<f32> = data(vocab, 7).iter().map(|x| 10.0 * x).collect();
        g.throughput(Throughput::Elements(vocab as u64));
        for (name, cfg) in [
            ("default", SamplerConfig::default()),
            ("greedy", SamplerConfig::greedy()),
        ] {
            // No repetition penalty in either: the logits stay as they are between calls.
            let mut s = Sampler::new(cfg);
            g.bench_with_input(BenchmarkId::new(name, vocab), &vocab, |b, _| {
                b.iter(|| black_box(s.sample(&mut logits, &[])))
            });
            let k = s.shortlist(&[]).expect("both take shortlists");
            let list = shortlist::reference(&logits, k);
            let name = format!("{name}-shortlist");
            g.bench_with_input(BenchmarkId::new(name, vocab), &vocab, |b, _| {
                b.iter(|| black_box(s.sample_next(Next::Shortlist(&list), &[])))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, sample);
criterion_main!(benches);
