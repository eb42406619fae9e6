//! Running a step: the inputs written, the commands recorded (ahead, for the next step of
//! the same shape) and submitted, and what the step makes brought back.

use std::time::Instant;

use super::{GpuSegment, Out};
use crate::backend::wgpu::inputs::Dest;
use crate::backend::wgpu::kernel::read_into;
use crate::backend::wgpu::ops::{Kernel, Step};
use crate::backend::wgpu::profile::HostTimes;
use crate::backend::wgpu::{GpuError, Result};

impl GpuSegment {
    /// Runs a step of `x.len() / dim` tokens at positions `pos0..` through the segment.
    /// `cos` and `sin` are the positions' RoPE rows. With `out` naming tokens, their
    /// logits go to `logits` when the output layer is here (a pass of it for each
    /// `logit_rows` of them), else their residual rows come back into `x`; or, for a
    /// shortlist, it comes back to [`GpuSegment::shortlist`], or where it would not do,
    /// the token's logits to `logits`.
    pub fn step(
        &mut self,
        x: &mut [f32],
        pos0: usize,
        rope: (&[f32], &[f32]),
        out: Out,
        logits: &mut [f32],
    ) -> Result<()> {
        if std::mem::take(&mut self.fail_next_step) {
            return Err(GpuError::Lost("a failure made on purpose".into()));
        }
        let n = x.len() / self.dim;
        assert!(
            n <= self.n_batch,
            "a step of {n} tokens in a segment for {}",
            self.n_batch
        );
        if let Some(lists) = &mut self.lists {
            lists.clear();
        }
        let (first, rows, k) = match out {
            Out::Nothing => (0, 0, 0),
            Out::Rows { first, rows } => (first, rows, 0),
            Out::Shortlist { token, k } => match &self.lists {
                Some(lists) if lists.take(k) => (token, 1, k),
                _ => (token, 1, 0),
            },
        };
        let first_pass = match self.logits {
            Some(_) => rows.min(self.logit_rows),
            None => rows,
        };
        let step = Step {
            n_tokens: n as u32,
            pos0: pos0 as u32,
            out_first: first as u32,
            n_out: first_pass as u32,
            shortlist: k as u32,
            pad: [0; 3],
        };
        let pairs = n * self.half;
        let table = (&rope.0[..pairs], &rope.1[..pairs]);
        let slot = self.inputs.next();
        self.inputs.write(&self.gpu, &step, table, x)?;

        let shape = self.shape(step);
        let commands = match self.ahead.take() {
            Some((s, commands)) if s == (shape, slot) => commands,
            _ => self.encode(&shape, slot),
        };
        let submitting = Instant::now();
        self.gpu.queue.submit([commands]);
        self.inputs.submitted();
        let recording = Instant::now();
        self.gpu.check_errors("running a step")?;
        // While the GPU works, record the next step, taking it to be as many tokens
        // again (as the steps of generation are): recording ~400 dispatches costs about
        // a millisecond of CPU time, which would otherwise come before each step's start.
        let next = self.shape(Step {
            pos0: step.pos0 + step.n_tokens,
            ..step
        });
        let slot = self.inputs.next();
        self.ahead = Some(((next, slot), self.encode(&next, slot)));
        let waiting = Instant::now();
        self.bring_back(x, logits, (&step, &shape), rows)?;
        if self.profiler.is_some() {
            let one_token = step.n_tokens == 1;
            let host = HostTimes {
                submit: recording - submitting,
                record: waiting - recording,
                wait: waiting.elapsed(),
                between: self.returned.filter(|_| one_token).map(|r| submitting - r),
            };
            let kernels = self.layers.iter().chain(&self.output);
            let ran: Vec<bool> = kernels.map(|k| self.dispatches(k, &shape)).collect();
            if let Some(p) = &mut self.profiler {
                p.collect(&self.gpu, ran.into_iter(), host);
            }
            // After the profiler has read its timestamps back: that wait is no part of
            // the gap before the next step.
            self.returned = one_token.then(Instant::now);
        }
        self.gpu.check_errors("running a step")
    }

    /// Reads back what a step of `shape` (`step` as it ran) brings back: the list, or
    /// `rows` rows of logits into `logits` (running the output layer again for those
    /// past the first pass) or of the residual stream into `x`.
    fn bring_back(
        &mut self,
        x: &mut [f32],
        logits: &mut [f32],
        (step, shape): (&Step, &Step),
        rows: usize,
    ) -> Result<()> {
        if let Some(lists) = self.lists.as_mut().filter(|_| shape.shortlist > 0) {
            if lists.read(&self.gpu)? {
                return Ok(());
            }
            // The list would not do: the token's logits come back after all.
            let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
            self.copy_back(
                &mut encoder,
                &Step {
                    shortlist: 0,
                    ..*shape
                },
            );
            self.gpu.queue.submit([encoder.finish()]);
        }
        let Some((_, offset, floats)) = self.readback(shape) else {
            return Ok(());
        };
        let dest = match self.logits {
            Some(_) => &mut logits[..floats],
            None => &mut x[offset..offset + floats],
        };
        read_into(&self.gpu, &self.readback, dest)?;
        let (first, mut done) = (step.out_first as usize, step.n_out as usize);
        while done < rows {
            let pass = (rows - done).min(self.logit_rows);
            let more = Step {
                out_first: (first + done) as u32,
                n_out: pass as u32,
                ..*step
            };
            self.gpu
                .queue
                .write_buffer(&self.step, 0, bytemuck::bytes_of(&more));
            self.gpu.queue.submit([self.encode_output(&more)]);
            let dest = &mut logits[done * self.n_vocab..(done + pass) * self.n_vocab];
            read_into(&self.gpu, &self.readback, dest)?;
            done += pass;
        }
        Ok(())
    }

    /// What decides a step's commands: the step, with its position replaced by the first
    /// one at which one token's attention has as many parts, or by 0 for a batch, and its
    /// shortlist's length by whether it has one (the kernels read both from the step's
    /// uniform). Steps of one shape run the same commands.
    fn shape(&self, step: Step) -> Step {
        let pos0 = match step.n_tokens {
            1 => {
                let split = self.gpu.attention_split;
                split.first_with_parts(step.pos0, self.head_dim as u32)
            }
            _ => 0,
        };
        Step {
            pos0,
            shortlist: u32::from(step.shortlist > 0),
            ..step
        }
    }

    /// The last step's shortlist of its token's logits, if it asked for one and the
    /// list did: every logit at or above a threshold that at least k of them reach
    /// (so every one tied with the k-th most likely), as `(id, logit)` in no order, NaN
    /// and -inf never among them.
    pub fn shortlist(&self) -> Option<&[(u32, f32)]> {
        self.lists.as_ref()?.last()
    }

    /// Steps that brought a shortlist back rather than the logits.
    pub fn shortlists_served(&self) -> u64 {
        self.lists.as_ref().map_or(0, |l| l.served)
    }

    /// Makes the next step's shortlist count as overflowed, so that the step reads the
    /// row instead: what that fallback is tested with.
    pub fn spoil_next_shortlist(&mut self) {
        if let Some(lists) = &mut self.lists {
            lists.spoil_next = true;
        }
    }

    /// Whether a step of `shape` dispatches `k`: it has work in such a step and was not
    /// left out.
    fn dispatches(&self, k: &Kernel, shape: &Step) -> bool {
        k.runs(shape) && !self.skip.iter().any(|s| k.label.starts_with(s.as_str()))
    }

    /// What comes back after a step of `shape`: the buffer, the offset and the floats.
    fn readback(&self, shape: &Step) -> Option<(&wgpu::Buffer, usize, usize)> {
        let rows = shape.n_out as usize;
        match (&self.logits, rows) {
            (_, 0) => None,
            (Some(logits), _) => Some((logits, 0, rows * self.n_vocab)),
            (None, _) => Some((
                &self.x,
                shape.out_first as usize * self.dim,
                rows * self.dim,
            )),
        }
    }

    /// Records the copy of what comes back after a step of `shape`, if anything does.
    fn copy_back(&self, encoder: &mut wgpu::CommandEncoder, shape: &Step) {
        if let Some(lists) = self.lists.as_ref().filter(|_| shape.shortlist > 0) {
            lists.copy_back(encoder);
        } else if let Some((src, offset, floats)) = self.readback(shape) {
            let bytes = (floats * 4) as u64;
            encoder.copy_buffer_to_buffer(src, (offset * 4) as u64, &self.readback, 0, bytes);
        }
    }

    /// Records the output layer alone for `shape`'s rows, and their copy back: the
    /// further passes of a step that wants more than [`logit_rows`] logits.
    fn encode_output(&self, shape: &Step) -> wgpu::CommandBuffer {
        let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for k in self.output.iter().filter(|k| self.dispatches(k, shape)) {
                k.encode(&mut pass, shape);
            }
        }
        self.copy_back(&mut encoder, shape);
        encoder.finish()
    }

    /// Records a step of `shape` (see [`GpuSegment::shape`]) whose inputs are in slot
    /// `slot`: their copies, every kernel in one pass, then the copy of what comes back.
    fn encode(&self, shape: &Step, slot: usize) -> wgpu::CommandBuffer {
        let rows = shape.n_out;
        let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
        let dest = Dest {
            step: &self.step,
            table: &self.table,
            x: &self.x,
        };
        let n = shape.n_tokens as usize;
        self.inputs.copy(&mut encoder, slot, n, &dest);
        let profiler = self.profiler.as_ref().filter(|_| rows > 0);
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            if let Some(p) = profiler {
                p.mark(&mut pass, 0);
            }
            let output = if rows > 0 { &self.output[..] } else { &[] };
            for (i, k) in self.layers.iter().chain(output).enumerate() {
                if self.dispatches(k, shape) {
                    k.encode(&mut pass, shape);
                }
                if let Some(p) = profiler {
                    p.mark(&mut pass, i + 1);
                }
            }
        }
        if let Some(p) = profiler {
            p.resolve(&mut encoder);
        }
        self.copy_back(&mut encoder, shape);
        encoder.finish()
    }
}
