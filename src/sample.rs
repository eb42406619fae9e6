//! Token sampling: one step's logits in, the next token out, through llama.cpp's default
//! chain: repetition penalty -> top-k -> top-p -> min-p -> temperature -> softmax -> draw.
//! A temperature of zero or below is greedy decoding: the argmax after the penalty.
//!
//! Because the temperature comes after top-p and min-p in that chain, those two see the
//! distribution at temperature 1, as they do in llama.cpp; the temperature only reshapes
//! the survivors.
//!
//! Where the output layer runs on a GPU, the session can bring back a shortlist of the
//! logits rather than all of them: [`Sampler::shortlist`] says how many of the most likely
//! decide the pick, and [`Sampler::sample_next`] picks from either with the same result.
//!
//! The random stream is xoshiro256** seeded through splitmix64, written out here rather
//! than taken from a crate, so that one seed gives the same tokens on every platform and
//! every toolchain.

use std::cmp::Ordering;

mod rng;
mod select;
mod shortlist;

use rng::Xoshiro256;
pub use select::argmax;

/// What the next token is chosen from.
#[derive(Debug)]
pub enum Next<'a> {
    /// Every logit, one per vocabulary entry (the sampler may change them in place).
    All(&'a mut [f32]),
    /// `(id, logit)` of every logit at or above some threshold, in any order, with no NaN
    /// or -inf among them: a shortlist of at least [`Sampler::shortlist`] logits holds
    /// every one that can be picked. Never empty.
    Shortlist(&'a [(u32, f32)]),
}

#[derive(Clone, Debug)]
pub struct SamplerConfig {
    /// At or below 0: greedy (argmax).
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens; 0 = off.
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches `top_p`; 1.0 = off.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one; 0.0 = off.
    pub min_p: f32,
    /// 1.0 = off. A token seen in the window has a positive logit divided by this and a
    /// negative one multiplied by it, once however often it was seen.
    pub repeat_penalty: f32,
    /// How many of the most recent tokens the penalty looks at; 0 = off.
    pub repeat_last_n: usize,
    pub seed: u64,
}

impl Default for SamplerConfig {
    /// llama.cpp's defaults, except that the seed is fixed where llama.cpp picks a random
    /// one: a run is reproducible unless the caller asks otherwise.
    fn default() -> Self {
        SamplerConfig {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: 0x5EED,
        }
    }
}

impl SamplerConfig {
    /// Argmax decoding with no penalty.
    pub fn greedy() -> Self {
        SamplerConfig {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            repeat_penalty: 1.0,
            ..SamplerConfig::default()
        }
    }

    /// Checks every setting; the error is one line naming the first bad one.
    pub fn validate(&self) -> Result<(), String> {
        if !self.temperature.is_finite() {
            return Err(format!(
                "temperature must be a finite number, got {}",
                self.temperature
            ));
        }
        if !(0.0..=1.0).contains(&self.top_p) {
            return Err(format!("top_p must be in [0, 1], got {}", self.top_p));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return Err(format!("min_p must be in [0, 1], got {}", self.min_p));
        }
        if !(self.repeat_penalty.is_finite() && self.repeat_penalty > 0.0) {
            return Err(format!(
                "repeat_penalty must be a finite number above 0, got {}",
                self.repeat_penalty
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug)]
struct Candidate {
    id: u32,
    logit: f32,
}

/// Most likely first; equal logits go to the lower id, so the order, and with it the draw,
/// does not depend on how the sort happens to be implemented. -0.0 and 0.0 are equal, as
/// they are to `argmax` and to `top_k`'s running threshold (adding 0.0 makes -0.0 0.0).
fn by_logit_desc(a: &Candidate, b: &Candidate) -> Ordering {
    (b.logit + 0.0)
        .total_cmp(&(a.logit + 0.0))
        .then(a.id.cmp(&b.id))
}

pub struct Sampler {
    cfg: SamplerConfig,
    rng: Xoshiro256,
    /// Tokens still in the running: [<= vocab]
    cands: Vec<Candidate>,
    /// Probabilities of `cands`, index for index: [cands.len()]
    probs: Vec<f32>,
    /// Which tokens the penalty has already touched this step: [vocab], all false between calls
    seen: Vec<bool>,
}

impl Sampler {
    /// Takes the config as given; call [`SamplerConfig::validate`] first. An invalid config
    /// never makes `sample` panic, but what it picks is then unspecified.
    pub fn new(cfg: SamplerConfig) -> Sampler {
        Sampler {
            rng: Xoshiro256::seeded(cfg.seed),
            cfg,
            cands: Vec::new(),
            probs: Vec::new(),
            seen: Vec::new(),
        }
    }

    /// Picks the next token from `logits` (one per vocabulary entry); `history` is the
    /// tokens so far (prompt + generated), used for the repetition penalty. May modify
    /// `logits` in place. NaN logits are never picked while any other token is possible.
    ///
    /// Every non-greedy call takes exactly one number from the random stream, so the n-th
    /// sampled token always uses the n-th draw whatever the earlier steps kept.
    ///
    /// Panics if `logits` is empty.
    pub fn sample(&mut self, logits: &mut [f32], history: &[u32]) -> u32 {
        assert!(!logits.is_empty(), "sample: no logits");
        self.penalize_repeats(logits, history);

        if self.greedy() {
            return argmax(logits);
        }
        let u = self.rng.next_f64();

        // -inf (a masked token) and NaN have no probability; leaving them out also spares
        // every later stage from ordering NaN.
        match self.cfg.top_k {
            0 => {
                self.cands.clear();
                self.cands.extend(
                    logits
                        .iter()
                        .enumerate()
                        .filter(|&(_, &l)| l > f32::NEG_INFINITY)
                        .map(|(i, &l)| Candidate {
                            id: i as u32,
                            logit: l,
                        }),
                );
            }
            k => select::top_k(logits, k, &mut self.cands),
        }
        if self.cands.is_empty() {
            return argmax(logits);
        }
        self.draw(u)
    }

    /// The rest of the chain, from candidates that top-k kept (or every finite logit, in
    /// id order), with `u` the step's draw.
    fn draw(&mut self, u: f64) -> u32 {
        if self.cfg.top_k == 0 && self.cfg.top_p < 1.0 {
            // top-p needs the order; without it the whole vocabulary is drawn from in
            // id order and never sorted.
            self.cands.sort_unstable_by(by_logit_desc);
        }
        top_p(&mut self.cands, &mut self.probs, self.cfg.top_p);
        min_p(&mut self.cands, self.cfg.min_p);
        softmax(&self.cands, 1.0 / self.cfg.temperature, &mut self.probs);
        pick(&self.cands, &self.probs, u)
    }

    /// A temperature of zero or below (or NaN) picks the argmax.
    fn greedy(&self) -> bool {
        let temp = self.cfg.temperature;
        temp.is_nan() || temp <= 0.0
    }

    /// The tokens of `history` the repetition penalty looks at: its last ones.
    fn repeat_window<'h>(&self, history: &'h [u32]) -> &'h [u32] {
        &history[history.len().saturating_sub(self.cfg.repeat_last_n)..]
    }

    fn penalizes(&self) -> bool {
        self.cfg.repeat_penalty != 1.0 && self.cfg.repeat_last_n > 0
    }

    fn penalize_repeats(&mut self, logits: &mut [f32], history: &[u32]) {
        if !self.penalizes() {
            return;
        }
        let penalty = self.cfg.repeat_penalty;
        self.seen.resize(logits.len(), false);
        let window = self.repeat_window(history);
        for &t in window {
            let t = t as usize;
            if t >= logits.len() || self.seen[t] {
                continue;
            }
            self.seen[t] = true;
            logits[t] = penalize(logits[t], penalty);
        }
        for &t in window {
            if let Some(s) = self.seen.get_mut(t as usize) {
                *s = false;
            }
        }
    }
}

/// A positive logit divided by the penalty, any other multiplied by it. A finite logit
/// stays finite: one pushed to -inf would drop out of the candidates, and out of
/// `argmax`'s sight, where a shortlist could no longer tell which token the row would
/// fall back to.
fn penalize(logit: f32, penalty: f32) -> f32 {
    let pushed = if logit > 0.0 {
        logit / penalty
    } else {
        logit * penalty
    };
    match logit.is_finite() {
        true => pushed.clamp(f32::MIN, f32::MAX),
        false => pushed,
    }
}

/// Keeps the shortest prefix whose probability reaches `p`; `cands` must be sorted most
/// likely first. If rounding keeps the running sum below `p`, everything stays.
fn top_p(cands: &mut Vec<Candidate>, probs: &mut Vec<f32>, p: f32) {
    if p >= 1.0 {
        return;
    }
    softmax(cands, 1.0, probs);
    let mut cum = 0.0f64;
    for (i, &q) in probs.iter().enumerate() {
        cum += f64::from(q);
        if cum >= f64::from(p) {
            cands.truncate(i + 1);
            return;
        }
    }
}

/// Keeps tokens with probability at least `p` times the largest. Compared as logits,
/// l >= l_max + ln p, as llama.cpp does, which needs no softmax; the most likely token
/// always passes.
fn min_p(cands: &mut Vec<Candidate>, p: f32) {
    if p.is_nan() || p <= 0.0 {
        return;
    }
    let max = cands
        .iter()
        .map(|c| c.logit)
        .fold(f32::NEG_INFINITY, f32::max);
    let threshold = max + p.min(1.0).ln();
    cands.retain(|c| c.logit >= threshold);
}

/// probs[i] = exp((l_i - l_max) * scale) / sum, scale being 1 / temperature. Scaling the
/// difference rather than each logit keeps a tiny temperature from overflowing to inf - inf.
fn softmax(cands: &[Candidate], scale: f32, probs: &mut Vec<f32>) {
    probs.clear();
    let max = cands
        .iter()
        .map(|c| c.logit)
        .fold(f32::NEG_INFINITY, f32::max);
    if max == f32::INFINITY {
        // The limit of softmax as those logits grow: they share all the mass equally.
        probs.extend(
            cands
                .iter()
                .map(|c| if c.logit == f32::INFINITY { 1.0 } else { 0.0 }),
        );
    } else {
        // Capped so that the top token's 0 * scale stays 0 rather than 0 * inf = NaN.
        let scale = scale.min(f32::MAX);
        probs.extend(cands.iter().map(|c| ((c.logit - max) * scale).exp()));
    }
    // The top token contributes exp(0) = 1, so the sum is at least 1.
    let inv = 1.0 / probs.iter().sum::<f32>();
    for q in probs.iter_mut() {
        *q *= inv;
    }
}

/// Walks the cumulative distribution to the first token whose running sum passes `u`.
fn pick(cands: &[Candidate], probs: &[f32], u: f64) -> u32 {
    let mut cum = 0.0f64;
    for (c, &q) in cands.iter().zip(probs) {
        cum += f64::from(q);
        if u < cum {
            return c.id;
        }
    }
    // The rounded total fell short of `u`: the last token with any mass.
    cands
        .iter()
        .zip(probs)
        .rev()
        .find(|&(_, &q)| q > 0.0)
        .map_or(cands[0].id, |(c, _)| c.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pseudo-random logits in [-8, 8), from the file's own generator so they are the same
    /// everywhere.
    fn noise_logits(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = Xoshiro256::seeded(seed);
        (0..n)
            .map(|_| (rng.next_f64() * 16.0 - 8.0) as f32)
            .collect()
    }

    fn plain(temperature: f32) -> SamplerConfig {
        SamplerConfig {
            temperature,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            repeat_penalty: 1.0,
            repeat_last_n: 0,
            seed: 7,
        }
    }

    fn log_probs(p: &[f32]) -> Vec<f32> {
        p.iter().map(|q| q.ln()).collect()
    }

    fn sorted_cands(logits: &[f32]) -> Vec<Candidate> {
        let mut c: Vec<Candidate> = logits
            .iter()
            .enumerate()
            .map(|(i, &l)| Candidate {
                id: i as u32,
                logit: l,
            })
            .collect();
        c.sort_unstable_by(by_logit_desc);
        c
    }

    fn ids(c: &[Candidate]) -> Vec<u32> {
        c.iter().map(|c| c.id).collect()
    }

    #[test]
    fn defaults_are_llama_cpp_defaults() {
        let c = SamplerConfig::default();
        assert_eq!(
            (c.temperature, c.top_k, c.top_p, c.min_p),
            (0.8, 40, 0.95, 0.05)
        );
        assert_eq!((c.repeat_penalty, c.repeat_last_n), (1.0, 64));
        assert!(c.validate().is_ok());
        assert!(SamplerConfig::greedy().validate().is_ok());
    }

    #[test]
    fn greedy_is_argmax() {
        let mut s = Sampler::new(SamplerConfig::greedy());
        for seed in 0..20 {
            let mut logits = noise_logits(1000, seed);
            let want = argmax(&logits);
            assert_eq!(s.sample(&mut logits, &[1, 2, 3]), want);
        }
    }

    #[test]
    fn argmax_takes_first_max_and_skips_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(argmax(&[f32::NAN, -1.0, f32::NAN]), 1);
        assert_eq!(argmax(&[f32::NAN, f32::NEG_INFINITY]), 1);
        assert_eq!(argmax(&[f32::NAN, f32::NAN]), 0);
        assert_eq!(argmax(&[f32::NEG_INFINITY, f32::NEG_INFINITY]), 0);
    }

    #[test]
    fn same_seed_same_tokens_other_seed_other_tokens() {
        let logits = noise_logits(500, 3);
        let run = |seed: u64| -> Vec<u32> {
            let mut s = Sampler::new(SamplerConfig {
                seed,
                temperature: 1.5,
                ..SamplerConfig::default()
            });
            (0..64)
                .map(|_| s.sample(&mut logits.clone(), &[]))
                .collect()
        };
        assert_eq!(run(11), run(11));
        assert_ne!(run(11), run(12));
    }

    #[test]
    fn top_k_one_is_greedy_at_any_temperature() {
        for &t in &[0.01f32, 0.8, 1.0, 5.0, 1000.0] {
            let mut s = Sampler::new(SamplerConfig {
                top_k: 1,
                ..plain(t)
            });
            for seed in 0..10 {
                let logits = noise_logits(2000, seed);
                assert_eq!(s.sample(&mut logits.clone(), &[]), argmax(&logits));
            }
        }
        // A tie goes to the lower id, as argmax does.
        let mut s = Sampler::new(SamplerConfig {
            top_k: 1,
            ..plain(1.0)
        });
        assert_eq!(s.sample(&mut [0.0, 2.0, 1.0, 2.0], &[]), 1);
    }

    #[test]
    fn top_k_keeps_the_k_largest_in_order() {
        let logits = [0.5, 3.0, -1.0, 2.0, 2.5, 0.0];
        let mut c = Vec::new();
        select::top_k(&logits, 3, &mut c);
        assert_eq!(ids(&c), [1, 4, 3]);
        select::top_k(&logits, 100, &mut c);
        assert_eq!(c.len(), 6);
    }

    #[test]
    fn top_p_keeps_smallest_set_reaching_p() {
        let logits = log_probs(&[0.05, 0.5, 0.15, 0.3]);
        let mut probs = Vec::new();
        let case = |p: f32, probs: &mut Vec<f32>| {
            let mut c = sorted_cands(&logits);
            top_p(&mut c, probs, p);
            ids(&c)
        };
        assert_eq!(case(0.3, &mut probs), [1]);
        assert_eq!(case(0.75, &mut probs), [1, 3]);
        assert_eq!(case(0.9, &mut probs), [1, 3, 2]);
        assert_eq!(case(0.99, &mut probs), [1, 3, 2, 0]);
        assert_eq!(case(1.0, &mut probs), [1, 3, 2, 0]);
        assert_eq!(case(0.0, &mut probs), [1]);

        // Through the whole chain: only the kept tokens are ever drawn.
        let mut s = Sampler::new(SamplerConfig {
            top_p: 0.75,
            ..plain(1.0)
        });
        let mut hits = [0u32; 4];
        for _ in 0..2000 {
            hits[s.sample(&mut logits.clone(), &[]) as usize] += 1;
        }
        assert_eq!((hits[0], hits[2]), (0, 0));
        assert!(hits[1] > 0 && hits[3] > 0);
    }

    #[test]
    fn min_p_drops_tokens_below_fraction_of_max() {
        // p_max = 0.5, so min_p = 0.1 puts the bar at 0.05.
        let logits = log_probs(&[0.04, 0.5, 0.06, 0.3, 0.1]);
        let mut c = sorted_cands(&logits);
        min_p(&mut c, 0.1);
        assert_eq!(ids(&c), [1, 3, 4, 2]);
        let mut c = sorted_cands(&logits);
        min_p(&mut c, 0.5);
        assert_eq!(ids(&c), [1, 3]);
        let mut c = sorted_cands(&logits);
        min_p(&mut c, 1.0);
        assert_eq!(ids(&c), [1]);
        let mut c = sorted_cands(&logits);
        min_p(&mut c, 0.0);
        assert_eq!(c.len(), 5);

        let mut s = Sampler::new(SamplerConfig {
            min_p: 0.1,
            ..plain(1.0)
        });
        for _ in 0..2000 {
            assert_ne!(s.sample(&mut logits.clone(), &[]), 0);
        }
    }

    #[test]
    fn repeat_penalty_pushes_repeats_down_once() {
        let cfg = SamplerConfig {
            repeat_penalty: 2.0,
            repeat_last_n: 64,
            ..SamplerConfig::greedy()
        };
        let mut s = Sampler::new(cfg.clone());
        let mut logits = [2.0, -2.0, 1.0, 0.5, 0.0];
        // 0 and 1 appear three times each, 4 once; 99 is outside the vocabulary.
        s.sample(&mut logits, &[0, 1, 0, 4, 1, 0, 1, 99]);
        assert_eq!(logits, [1.0, -4.0, 1.0, 0.5, 0.0]);

        // Only the last `repeat_last_n` tokens count.
        let mut s = Sampler::new(SamplerConfig {
            repeat_last_n: 2,
            ..cfg.clone()
        });
        let mut logits = [2.0, -2.0, 1.0, 0.5];
        s.sample(&mut logits, &[2, 0, 1]);
        assert_eq!(logits, [1.0, -4.0, 1.0, 0.5]);
        // The marks are cleared between calls: the same history penalizes the same way.
        let mut logits = [2.0, -2.0, 1.0, 0.5];
        s.sample(&mut logits, &[2, 0, 1]);
        assert_eq!(logits, [1.0, -4.0, 1.0, 0.5]);

        // Greedy sees the penalized logits: 0 was ahead, 2 wins once 0 is halved.
        let mut s = Sampler::new(SamplerConfig {
            repeat_penalty: 2.5,
            ..cfg.clone()
        });
        assert_eq!(s.sample(&mut [2.0, -2.0, 1.0], &[0]), 2);

        // Off: penalty 1.0 or a zero window.
        for off in [
            SamplerConfig {
                repeat_penalty: 1.0,
                ..cfg.clone()
            },
            SamplerConfig {
                repeat_last_n: 0,
                ..cfg.clone()
            },
        ] {
            let mut logits = [2.0, -2.0];
            Sampler::new(off).sample(&mut logits, &[0, 1]);
            assert_eq!(logits, [2.0, -2.0]);
        }
    }

    #[test]
    fn draws_follow_the_distribution() {
        let p = [0.1f32, 0.2, 0.3, 0.4];
        let n = 20_000;
        let check = |temperature: f32, want: &[f64]| {
            let mut s = Sampler::new(plain(temperature));
            let logits = log_probs(&p);
            let mut hits = [0u32; 4];
            for _ in 0..n {
                hits[s.sample(&mut logits.clone(), &[]) as usize] += 1;
            }
            for (i, (&h, &w)) in hits.iter().zip(want).enumerate() {
                let f = f64::from(h) / f64::from(n);
                // Over 5 standard deviations of a binomial frequency at n = 20000.
                assert!(
                    (f - w).abs() < 0.02,
                    "T={temperature} token {i}: {f} vs {w}"
                );
            }
        };
        check(1.0, &[0.1, 0.2, 0.3, 0.4]);
        // Temperature 2 flattens to p^(1/2), renormalized.
        let sq: Vec<f64> = p.iter().map(|&q| f64::from(q).sqrt()).collect();
        let total: f64 = sq.iter().sum();
        let want: Vec<f64> = sq.iter().map(|q| q / total).collect();
        check(2.0, &want);
    }

    #[test]
    fn non_finite_logits_do_not_panic() {
        let nan = f32::NAN;
        let inf = f32::INFINITY;
        let ninf = f32::NEG_INFINITY;
        let cases: [&[f32]; 7] = [
            &[nan, 1.0, nan, 0.5],
            &[nan, nan, nan],
            &[ninf, ninf],
            &[1.0, inf, 2.0, inf],
            &[nan, ninf, inf],
            &[3.0e38, -3.0e38, 0.0],
            &[f32::MAX, f32::MAX, f32::MIN],
        ];
        let configs = [
            SamplerConfig::default(),
            SamplerConfig::greedy(),
            plain(1.0),
            SamplerConfig {
                top_p: 0.5,
                ..plain(1e-30)
            },
            SamplerConfig {
                repeat_penalty: 1.3,
                ..plain(1e-45)
            },
        ];
        for cfg in configs {
            let mut s = Sampler::new(cfg);
            for case in cases {
                for _ in 0..20 {
                    let t = s.sample(&mut case.to_vec(), &[0, 1, 2]);
                    assert!((t as usize) < case.len());
                    if case.iter().any(|l| !l.is_nan()) {
                        assert!(!case[t as usize].is_nan(), "{case:?} gave NaN token {t}");
                    }
                    if case.contains(&inf) {
                        assert_eq!(case[t as usize], inf);
                    }
                }
            }
        }
        // Invalid settings still give a token.
        let bad = SamplerConfig {
            temperature: f32::NAN,
            top_p: f32::NAN,
            min_p: 7.0,
            repeat_penalty: f32::NAN,
            ..SamplerConfig::default()
        };
        Sampler::new(bad).sample(&mut [1.0, 2.0], &[0]);
        let bad = SamplerConfig {
            top_p: f32::NAN,
            min_p: f32::NAN,
            ..plain(1.0)
        };
        Sampler::new(bad).sample(&mut [1.0, 2.0], &[0]);
    }

    #[test]
    fn buffers_are_reused() {
        let mut s = Sampler::new(SamplerConfig {
            repeat_penalty: 1.1,
            top_k: 0,
            ..SamplerConfig::default()
        });
        let logits = noise_logits(4096, 1);
        s.sample(&mut logits.clone(), &[1, 2]);
        let caps = (s.cands.capacity(), s.probs.capacity(), s.seen.capacity());
        for step in 0..50 {
            s.sample(&mut logits.clone(), &[step, step + 1]);
        }
        assert_eq!(
            caps,
            (s.cands.capacity(), s.probs.capacity(), s.seen.capacity())
        );
    }

    #[test]
    fn validate_names_the_bad_setting() {
        let bad = |c: SamplerConfig, name: &str| {
            let e = c.validate().unwrap_err();
            assert!(e.starts_with(name), "{e}");
            assert!(!e.contains('\n'));
        };
        let d = SamplerConfig::default;
        bad(
            SamplerConfig {
                temperature: f32::NAN,
                ..d()
            },
            "temperature",
        );
        bad(
            SamplerConfig {
                temperature: f32::INFINITY,
                ..d()
            },
            "temperature",
        );
        bad(SamplerConfig { top_p: -0.1, ..d() }, "top_p");
        bad(SamplerConfig { top_p: 1.5, ..d() }, "top_p");
        bad(
            SamplerConfig {
                top_p: f32::NAN,
                ..d()
            },
            "top_p",
        );
        bad(SamplerConfig { min_p: -0.5, ..d() }, "min_p");
        bad(
            SamplerConfig {
                min_p: f32::NAN,
                ..d()
            },
            "min_p",
        );
        bad(
            SamplerConfig {
                repeat_penalty: 0.0,
                ..d()
            },
            "repeat_penalty",
        );
        bad(
            SamplerConfig {
                repeat_penalty: -1.1,
                ..d()
            },
            "repeat_penalty",
        );
        bad(
            SamplerConfig {
                repeat_penalty: f32::INFINITY,
                ..d()
            },
            "repeat_penalty",
        );
        // Negative temperature is greedy, not an error.
        assert!(SamplerConfig {
            temperature: -1.0,
            ..d()
        }
        .validate()
        .is_ok());
    }
}
