//! Comparing the engine with the Hugging Face reference outputs in
//! tests/data/hf_reference.

use ropewalk::backend::cpu::matmul::Precision;
use ropewalk::model::{Llama, Logits, Session};
use ropewalk::sample::argmax;
use serde_json::Value as Json;

pub fn reference(name: &str) -> Json {
    let path = super::root().join("tests/data/hf_reference").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("reference files are JSON")
}

pub fn ids(v: &Json) -> Vec<u32> {
    v.as_array()
        .expect("an id list")
        .iter()
        .map(|x| x.as_u64().expect("an id") as u32)
        .collect()
}

pub struct PromptResult {
    /// Largest |ours - reference| over the reference's top-20 final logits.
    pub max_logit_diff: f32,
    pub final_argmax_matches: bool,
    /// Greedy steps, from the first, that equal the reference's.
    pub greedy_agree: usize,
    /// Steps whose argmax is the reference's next token when the reference's tokens are
    /// fed back (teacher forcing), so one near-tie does not end the comparison.
    pub forced_agree: usize,
}

pub fn run_prompt(model: &Llama, expected: &Json, precision: Precision) -> PromptResult {
    let mut s = Session::new(model, 512, 512);
    s.precision = precision;
    run_prompt_in(&mut s, expected)
}

/// [`run_prompt`] in a session set up by the caller (on a GPU, say), from its start.
pub fn run_prompt_in(s: &mut Session, expected: &Json) -> PromptResult {
    s.reset();
    let prompt = ids(&expected["ids"]);
    let logits = s.forward(&prompt, Logits::Last).unwrap().to_vec();
    let top = &expected["final_top20"];
    let max_logit_diff = ids(&top["ids"])
        .iter()
        .zip(top["values"].as_array().unwrap())
        .map(|(&id, v)| (logits[id as usize] - v.as_f64().unwrap() as f32).abs())
        .fold(0.0, f32::max);
    let final_argmax_matches = argmax(&logits) == ids(&top["ids"])[0];

    let want = ids(&expected["greedy32_cached"]);
    let mut next = argmax(&logits);
    let (mut greedy_agree, mut forced_agree, mut diverged) = (0, 0, false);
    for &w in &want {
        if next == w {
            forced_agree += 1;
            greedy_agree += usize::from(!diverged);
        } else {
            diverged = true;
        }
        next = argmax(s.forward(&[w], Logits::Last).unwrap());
    }
    PromptResult {
        max_logit_diff,
        final_argmax_matches,
        greedy_agree,
        forced_agree,
    }
}
