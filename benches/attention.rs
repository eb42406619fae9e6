//! One token's attention over a long f16 KV cache, one thread: every KV head of enough
//! layers that the caches (at least 256 MiB) come from memory, as they do when a model
//! generates after a long prompt. GB/s of cached keys and values read.
//! - `attend/7b/DEPTH`: Llama-2-7B heads (32 KV heads of 128, one query head each).
//! - `attend/smollm2/DEPTH`: SmolLM2-135M heads (3 KV heads of 64, three query heads each).
//!
//! `cargo bench --bench attention -- --warm-up-time 1 --measurement-time 5`; the kernel
//! path is the machine's best, or `ROPEWALK_CPU`'s.

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ropewalk::backend::cpu::attention::{attend, Tile};
use ropewalk::backend::cpu::ops::{self, Cached};
use ropewalk::model::kv_cache::{CacheShape, CacheType, KvCache};

use common::data;

/// The least cache a benchmark walks, so that it streams from memory.
const MIN_BYTES: usize = 256 << 20;

struct Shape {
    name: &'static str,
    n_kv_heads: usize,
    group: usize,
    head_dim: usize,
}

const SHAPES: [Shape; 2] = [
    Shape {
        name: "7b",
        n_kv_heads: 32,
        group: 1,
        head_dim: 128,
    },
    Shape {
        name: "smollm2",
        n_kv_heads: 3,
        group: 3,
        head_dim: 64,
    },
];

fn one_token(c: &mut Criterion) {
    let mut g = c.benchmark_group("attend");
    for s in SHAPES {
        for depth in [1024, 4096] {
            let kv_dim = s.n_kv_heads * s.head_dim;
            let layer_bytes = KvCache::bytes_for(CacheType::F16, 1, depth, kv_dim);
            let n_layers = MIN_BYTES.div_ceil(layer_bytes);
            let shape = CacheShape {
                n_layers,
                n_ctx: depth,
                n_kv_heads: s.n_kv_heads,
                head_dim: s.head_dim,
            };
            let mut cache = KvCache::new(CacheType::F16, shape);
            for l in 0..n_layers {
                let (k, v) = (data(depth * kv_dim, 2 * l as u64), data(depth * kv_dim, 3));
                cache.store(l, 0, &k, &v);
            }
            let q_dim = s.n_kv_heads * s.group * s.head_dim;
            let q = data(q_dim, 1);
            let mut out = vec![0.0f32; q_dim];
            let tile_len = s.group * s.head_dim;
            g.throughput(Throughput::Bytes((n_layers * layer_bytes) as u64));
            g.bench_function(BenchmarkId::new(s.name, depth), |b| {
                b.iter(|| {
                    for l in 0..n_layers {
                        let kv = cache.layer(l, depth);
                        for (h, out) in out.chunks_mut(tile_len).enumerate() {
                            let tile = Tile {
                                head_dim: s.head_dim,
                                group: s.group,
                                kv_head: h,
                                first_seen: depth,
                                q_stride: q_dim,
                            };
                            attend(out, black_box(&q[h * tile_len..]), &kv, &tile);
                        }
                    }
                    black_box(&out);
                })
            });
        }
    }
}

/// The scores of one query against a block of 32 keys held in L1, per head length and
/// element type: the kernel alone, in GB/s of keys.
fn block_scores(c: &mut Criterion) {
    let mut g = c.benchmark_group("scores");
    for hd in [64, 128] {
        let q = data(hd, 1);
        let keys = data(32 * hd, 2);
        let bits: Vec<u16> = keys
            .iter()
            .map(|&x| half::f16::from_f32(x).to_bits())
            .collect();
        let mut out = [0.0f32; 32];
        g.throughput(Throughput::Bytes((32 * hd * 4) as u64));
        g.bench_function(BenchmarkId::new("f32", hd), |b| {
            b.iter(|| ops::scores(black_box(&q), Cached::F32(&keys), &mut out))
        });
        g.throughput(Throughput::Bytes((32 * hd * 2) as u64));
        g.bench_function(BenchmarkId::new("f16", hd), |b| {
            b.iter(|| ops::scores(black_box(&q), Cached::F16(&bits), &mut out))
        });
    }
}

criterion_group!(benches, one_token, block_scores);
criterion_main!(benches);
