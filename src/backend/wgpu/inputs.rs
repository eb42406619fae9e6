//! How a step's inputs (its uniform, RoPE rows and residual rows) go up: written into one
//! of two host-visible buffers (slots, taken in turn) while it is mapped, and copied by
//! the step's own commands at their start. `Queue::write_buffer` would make a staging
//! buffer for each write, four a step, that the driver creates, maps and later frees, and
//! would submit their copies in a command buffer of their own; the slots are made once.
//! A slot is mapped again once the step that copied from it is done, which the step's
//! readback waits for anyway, so it is ready when its turn comes; only steps that bring
//! nothing back (a long prompt's first batches) may wait for the step before last.

use std::sync::mpsc;

use super::kernel::{wait_for, Step};
use super::{Gpu, GpuError, Result};

/// Where a slot's inputs start: the step's uniform at 0, then the RoPE rows, then the
/// residual rows (offsets of copies are multiples of 4 bytes; 256 keeps them apart).
const TABLE_AT: u64 = 256;

/// The buffers a step's inputs are copied into.
pub(super) struct Dest<'a> {
    pub step: &'a wgpu::Buffer,
    /// `[2][n][half]` for a step of `n` tokens: cos rows, then sin rows.
    pub table: &'a wgpu::Buffer,
    /// `[n][dim]`
    pub x: &'a wgpu::Buffer,
}

/// Two slots, taken in turn, each big enough for a step of `n_batch` tokens.
pub(super) struct StepInputs {
    slots: [Slot; 2],
    /// The slot the next step writes.
    next: usize,
    half: usize,
    dim: usize,
    x_at: u64,
}

struct Slot {
    buffer: wgpu::Buffer,
    state: Mapping,
}

enum Mapping {
    /// The host may write it.
    Mapped,
    /// Mapped once the submission that copies from it is done.
    Pending(mpsc::Receiver<std::result::Result<(), wgpu::BufferAsyncError>>),
    /// Neither: written, and its step not submitted yet.
    Unmapped,
}

impl StepInputs {
    /// Slots for steps of up to `n_batch` tokens, `half` RoPE pairs and `dim` residual
    /// values each.
    pub fn new(gpu: &Gpu, n_batch: usize, half: usize, dim: usize) -> StepInputs {
        let (x_at, size) = StepInputs::layout(n_batch, half, dim);
        let slot = |label| Slot {
            buffer: gpu.buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage: wgpu::BufferUsages::MAP_WRITE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: true,
            }),
            state: Mapping::Mapped,
        };
        StepInputs {
            slots: [slot("step inputs 0"), slot("step inputs 1")],
            next: 0,
            half,
            dim,
            x_at,
        }
    }

    /// Bytes that [`StepInputs::new`] makes.
    pub fn bytes(n_batch: usize, half: usize, dim: usize) -> u64 {
        2 * StepInputs::layout(n_batch, half, dim).1
    }

    /// Where the residual rows start in a slot, and the slot's size.
    fn layout(n_batch: usize, half: usize, dim: usize) -> (u64, u64) {
        let x_at = TABLE_AT + (2 * n_batch * half * 4) as u64;
        let size = x_at + (n_batch * dim * 4) as u64;
        (x_at, size.next_multiple_of(wgpu::MAP_ALIGNMENT))
    }

    /// The slot the next step writes (and its commands copy from).
    pub fn next(&self) -> usize {
        self.next
    }

    /// Writes a step's inputs into the next slot, once the GPU is done with what it
    /// held: `step`, its tokens' cos and sin rows and their residual rows `x`.
    pub fn write(
        &mut self,
        gpu: &Gpu,
        step: &Step,
        (cos, sin): (&[f32], &[f32]),
        x: &[f32],
    ) -> Result<()> {
        let slot = &mut self.slots[self.next];
        slot.ready(gpu)?;
        let sin_at = TABLE_AT as usize + size_of_val(cos);
        let x_at = self.x_at as usize;
        let mut view = slot
            .buffer
            .get_mapped_range_mut(..)
            .map_err(|e| GpuError::Lost(e.to_string()))?;
        view.slice(..size_of::<Step>())
            .copy_from_slice(bytemuck::bytes_of(step));
        view.slice(TABLE_AT as usize..sin_at)
            .copy_from_slice(bytemuck::cast_slice(cos));
        view.slice(sin_at..sin_at + size_of_val(sin))
            .copy_from_slice(bytemuck::cast_slice(sin));
        view.slice(x_at..x_at + size_of_val(x))
            .copy_from_slice(bytemuck::cast_slice(x));
        drop(view);
        slot.buffer.unmap();
        slot.state = Mapping::Unmapped;
        Ok(())
    }

    /// Records the copies of slot `slot`'s inputs for a step of `n` tokens into `dest`:
    /// what the step's commands begin with.
    pub fn copy(&self, encoder: &mut wgpu::CommandEncoder, slot: usize, n: usize, dest: &Dest) {
        let src = &self.slots[slot].buffer;
        let table = (2 * n * self.half * 4) as u64;
        let x = (n * self.dim * 4) as u64;
        encoder.copy_buffer_to_buffer(src, 0, dest.step, 0, size_of::<Step>() as u64);
        encoder.copy_buffer_to_buffer(src, TABLE_AT, dest.table, 0, table);
        encoder.copy_buffer_to_buffer(src, self.x_at, dest.x, 0, x);
    }

    /// After the submission of the commands that copy from the next slot: maps that
    /// slot again, for when they are done, and turns to the other.
    pub fn submitted(&mut self) {
        self.slots[self.next].map();
        self.next = 1 - self.next;
    }
}

impl Slot {
    /// Asks for the buffer to be mapped once the work submitted so far is done.
    fn map(&mut self) {
        let (tx, rx) = mpsc::channel();
        self.buffer.map_async(wgpu::MapMode::Write, .., move |r| {
            let _ = tx.send(r);
        });
        self.state = Mapping::Pending(rx);
    }

    /// Waits until the buffer is mapped, asking for it first if nothing has.
    fn ready(&mut self, gpu: &Gpu) -> Result<()> {
        if let Mapping::Unmapped = self.state {
            self.map();
        }
        if let Mapping::Pending(rx) = &self.state {
            wait_for(gpu, rx)?.map_err(|e| GpuError::Lost(e.to_string()))?;
        }
        self.state = Mapping::Mapped;
        Ok(())
    }
}
