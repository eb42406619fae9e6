//! Sampling from a shortlist of the logits: the GPU can bring back every logit at or
//! above a threshold rather than the whole row (src/backend/wgpu/shortlist.rs), and the
//! pick must be the one the whole row gives.

use super::{argmax, by_logit_desc, penalize, select, Candidate, Next, Sampler};

impl Sampler {
    /// How many of the most likely logits decide the next pick, whatever the others
    /// are, after `history`: so a shortlist of that many will do. `None` where every
    /// logit can matter (no top-k), or where the penalty could raise one (below 1).
    ///
    /// The penalty only lowers a logit, and lowers at most one per distinct token of its
    /// window: if t is not among the k + w most likely (w the window's length), at least
    /// k of those are ahead of it and unpenalized, before the penalty and after.
    pub fn shortlist(&self, history: &[u32]) -> Option<usize> {
        let k = match self.cfg.top_k {
            _ if self.greedy() => 1,
            0 => return None,
            k => k,
        };
        if !self.penalizes() {
            return Some(k);
        }
        if self.cfg.repeat_penalty < 1.0 {
            return None;
        }
        Some(k + history.len().min(self.cfg.repeat_last_n))
    }

    /// Picks the next token from `next`, the same one from a shortlist of at least
    /// [`Sampler::shortlist`] logits as from all of them (and the same draw from the
    /// random stream); `history` as in [`Sampler::sample`].
    pub fn sample_next(&mut self, next: Next<'_>, history: &[u32]) -> u32 {
        match next {
            Next::All(logits) => self.sample(logits, history),
            Next::Shortlist(list) => self.sample_shortlist(list, history),
        }
    }

    fn sample_shortlist(&mut self, list: &[(u32, f32)], history: &[u32]) -> u32 {
        self.cands.clear();
        self.cands
            .extend(list.iter().map(|&(id, logit)| Candidate { id, logit }));
        if self.penalizes() {
            let window = self.repeat_window(history);
            let penalty = self.cfg.repeat_penalty;
            for c in self.cands.iter_mut().filter(|c| window.contains(&c.id)) {
                c.logit = penalize(c.logit, penalty);
            }
        }
        if self.greedy() {
            // What `argmax` picks: the largest, and of equal ones (0.0 and -0.0 among
            // them) the lowest id, which is the order's first.
            let best = self.cands.iter().min_by(|a, b| by_logit_desc(a, b));
            return best.map_or(0, |c| c.id);
        }
        let u = self.rng.next_f64();
        // The list holds no NaN or -inf, and the penalty leaves finite logits finite:
        // every entry is a candidate, as top-k over the whole row would find it.
        if self.cands.is_empty() {
            return argmax(&[]);
        }
        select::best_k(&mut self.cands, self.cfg.top_k);
        self.cands.sort_unstable_by(by_logit_desc);
        self.draw(u)
    }
}

#[cfg(test)]
mod tests {
    use super::super::rng::Xoshiro256;
    use super::super::SamplerConfig;
    use super::*;

    /// Logits of few distinct values (ties, 0.0 and -0.0), some NaN, -inf and +inf.
    fn rough_logits(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = Xoshiro256::seeded(seed);
        (0..n)
            .map(|_| match rng.next_u64() % 200 {
                0 => f32::NAN,
                1 => f32::NEG_INFINITY,
                2 if seed.is_multiple_of(7) => f32::INFINITY,
                3 => -0.0,
                r => (r % 24) as f32 * 0.5 - 6.0,
            })
            .collect()
    }

    #[test]
    fn a_shortlist_picks_what_the_whole_row_picks() {
        use crate::backend::wgpu::shortlist::reference;
        let configs = [
            SamplerConfig::greedy(),
            SamplerConfig::default(),
            SamplerConfig {
                repeat_penalty: 1.3,
                ..SamplerConfig::greedy()
            },
            SamplerConfig {
                repeat_penalty: 1.1,
                ..SamplerConfig::default()
            },
            SamplerConfig {
                repeat_penalty: 4.0,
                repeat_last_n: 8,
                top_k: 3,
                top_p: 0.5,
                ..SamplerConfig::default()
            },
            SamplerConfig {
                top_k: 1,
                temperature: 2.0,
                repeat_penalty: 2.0,
                ..SamplerConfig::default()
            },
            SamplerConfig {
                top_k: 64,
                top_p: 1.0,
                min_p: 0.0,
                temperature: 1.5,
                repeat_penalty: 1.05,
                ..SamplerConfig::default()
            },
        ];
        let mut shortlisted = 0;
        for (c, cfg) in configs.iter().enumerate() {
            let mut whole = Sampler::new(cfg.clone());
            let mut short = Sampler::new(cfg.clone());
            // A prompt with repeats, so the penalty has tokens to push down.
            let mut history: Vec<u32> = (0..20).map(|i| (i * 37 % 11) as u32).collect();
            for step in 0..60u64 {
                let n = [5, 300, 2000][step as usize % 3];
                let mut logits = rough_logits(n, step * 31 + c as u64);
                logits[step as usize % n] = 9.0 - (step % 5) as f32;
                let k = short
                    .shortlist(&history)
                    .expect("these configs take shortlists");
                let mut list = reference(&logits, k);
                // In any order, as the GPU lists them.
                let turn = step as usize % list.len();
                list.rotate_left(turn);
                list.reverse();
                shortlisted += usize::from(list.len() < n);
                let want = whole.sample(&mut logits.clone(), &history);
                let got = short.sample_next(Next::Shortlist(&list), &history);
                assert_eq!(got, want, "config {c} step {step}: {cfg:?}");
                history.push(got);
            }
        }
        assert!(
            shortlisted > 300,
            "the lists were whole rows: {shortlisted}"
        );
    }

    /// Rows where the whole row and a shortlist once parted: a 0.0 after a run of -0.0
    /// (top-k's running threshold and the sort disagreed on which is larger), and a
    /// penalty that pushed every listed logit to -inf (the row then fell back to a token
    /// the list never held).
    #[test]
    fn a_shortlist_agrees_at_signed_zeros_and_at_the_penalty_s_limit() {
        use crate::backend::wgpu::shortlist::reference;
        let mut zeros = vec![-1.0f32; 48];
        zeros[..32].fill(-0.0);
        zeros[40] = 0.0;
        let edge = vec![f32::NEG_INFINITY, f32::MIN];
        let cases = [
            (zeros, 1, 1.0, vec![]),
            (edge.clone(), 40, 2.0, vec![1]),
            (edge, 1, 2.0, vec![1]),
        ];
        for (logits, top_k, repeat_penalty, history) in cases {
            for temperature in [0.0, 0.8] {
                let cfg = SamplerConfig {
                    top_k,
                    temperature,
                    repeat_penalty,
                    ..SamplerConfig::default()
                };
                let mut whole = Sampler::new(cfg.clone());
                let mut short = Sampler::new(cfg.clone());
                let k = short.shortlist(&history).unwrap();
                let list = reference(&logits, k);
                let want = whole.sample(&mut logits.clone(), &history);
                let got = short.sample_next(Next::Shortlist(&list), &history);
                assert_eq!(got, want, "{cfg:?} {logits:?}");
            }
        }
    }

    #[test]
    fn a_shortlist_is_asked_for_where_it_decides_the_pick() {
        let history = [1, 2, 3, 1, 2];
        let with = |cfg: SamplerConfig| Sampler::new(cfg).shortlist(&history);
        assert_eq!(with(SamplerConfig::greedy()), Some(1));
        assert_eq!(with(SamplerConfig::default()), Some(40));
        let penalized = SamplerConfig {
            repeat_penalty: 1.1,
            ..SamplerConfig::default()
        };
        // The window is the history so far, up to 64 tokens.
        assert_eq!(with(penalized.clone()), Some(45));
        assert_eq!(
            Sampler::new(penalized.clone()).shortlist(&[7; 100]),
            Some(40 + 64)
        );
        // No top-k: every logit can be drawn.
        assert_eq!(
            with(SamplerConfig {
                top_k: 0,
                ..SamplerConfig::default()
            }),
            None
        );
        // A penalty below 1 raises logits, which a shortlist may not hold.
        assert_eq!(
            with(SamplerConfig {
                repeat_penalty: 0.9,
                ..SamplerConfig::default()
            }),
            None
        );
        assert_eq!(
            with(SamplerConfig {
                top_k: 0,
                repeat_penalty: 1.1,
                ..SamplerConfig::greedy()
            }),
            Some(6)
        );
    }
}
