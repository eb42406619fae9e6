//! The GPU's shortlists of the logits (src/backend/wgpu/shortlist.rs) on a real model's
//! logits, where the most likely tokens need not fall into chunks as chance would have
//! them: over 512 positions of the perplexity text, the list for every k a sampler asks
//! fits in half its capacity, so steps do not fall back to reading the row, and holds at
//! most four times k logits on average. (SmolLM2's logits do cluster: about 2.4 k listed
//! at k 40 and 3.2 k at 128, where logits spread as chance would have them give 1.1-1.5
//! k.) The lists come from the CPU's twin of the shaders, which tests/gpu_ops.rs holds
//! them to.

mod common;

use common::hf::{ids, reference};
use ropewalk::backend::wgpu::shortlist::{reference as listed, CAPACITY};
use ropewalk::gguf::GgufFile;
use ropewalk::model::{Llama, Logits, Session};

#[test]
fn shortlists_of_real_logits_fit_and_stay_short() {
    let file = GgufFile::open(common::test_model()).unwrap();
    let model = Llama::load(&file).unwrap();
    let tokens = ids(&reference("ppl_tokens.json")["eval_tokens"]);
    let tokens = &tokens[..512];
    let mut s = Session::new(&model, 512, 512);
    let logits = s.forward(tokens, Logits::All).unwrap();
    let n_vocab = model.config.n_vocab;
    // k: greedy; top-k 40; top-k 40 with a full penalty window of 64; the most.
    for k in [1, 40, 104, 128] {
        let lengths: Vec<usize> = logits
            .chunks(n_vocab)
            .map(|row| listed(row, k).len())
            .collect();
        let longest = *lengths.iter().max().unwrap();
        let mean = lengths.iter().sum::<usize>() as f64 / lengths.len() as f64;
        eprintln!("k {k}: {mean:.1} logits listed on average, {longest} at most");
        assert!(longest <= CAPACITY / 2, "k {k}: a list of {longest}");
        assert!(lengths.iter().all(|&n| n >= k));
        assert!(mean <= 4.0 * k as f64, "k {k}: {mean} listed on average");
    }
}
