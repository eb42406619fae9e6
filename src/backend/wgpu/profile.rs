//! GPU time per kernel, from timestamps written between dispatches
//! (`ROPEWALK_GPU_PROFILE=1`, where the adapter can write timestamps inside passes): the
//! report at the end of a run says where a step's GPU time goes, and what the host spent
//! beside it (submitting the step, recording the next, waiting). Timestamps between
//! kernels also hold the GPU still between them, so small kernels look dearer than they
//! are; `ROPEWALK_GPU_SKIP=LABEL,...` measures the other way round: it leaves out the
//! kernels whose labels start so (the results are wrong), and tokens/s with and without
//! them say what they cost in a real step.

use std::collections::BTreeMap;
use std::time::Duration;

use super::kernel::read_into;
use super::Gpu;

/// Whether profiling was asked for.
pub fn wanted() -> bool {
    std::env::var_os("ROPEWALK_GPU_PROFILE").is_some()
}

/// The label prefixes of kernels to leave out, from `ROPEWALK_GPU_SKIP` (for measuring
/// only: the step's results are wrong without them).
pub fn skipped() -> Vec<String> {
    let list = std::env::var("ROPEWALK_GPU_SKIP").unwrap_or_default();
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// The features profiling needs.
pub const FEATURES: wgpu::Features =
    wgpu::Features::TIMESTAMP_QUERY.union(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES);

/// Timestamps around each of a step's kernels, summed by kernel label over the run.
pub struct Profiler {
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    read: wgpu::Buffer,
    labels: Vec<String>,
    /// nanoseconds per timestamp tick
    period: f64,
    totals_ns: Vec<f64>,
    /// How many of the steps dispatched each kernel (a step of one token skips some).
    runs: Vec<usize>,
    steps: usize,
    /// The host's time in each step, summed: submitting it, recording the next, and
    /// waiting for it and reading back what it made.
    host: HostTimes,
    /// The host's time between one-token steps, summed, and how many such gaps.
    between: (Duration, usize),
}

/// What the host spends on a step, beside the GPU's work.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostTimes {
    pub submit: Duration,
    pub record: Duration,
    pub wait: Duration,
    /// From the end of the step before to this one's submission, where both were of one
    /// token: the host picking the token and making the next input, while the GPU idles.
    pub between: Option<Duration>,
}

impl Profiler {
    /// A profiler for steps of the kernels named `labels`, if the device can write
    /// timestamps inside passes.
    pub fn new(gpu: &Gpu, labels: Vec<String>) -> Option<Profiler> {
        if !gpu.device.features().contains(FEATURES) || labels.len() + 1 > 4096 {
            return None;
        }
        let count = labels.len() as u32 + 1;
        let bytes = count as u64 * 8;
        // Not counted in `bytes_created`: measuring only, and not in a footprint.
        let buffer = |usage| {
            gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamps"),
                size: bytes,
                usage,
                mapped_at_creation: false,
            })
        };
        Some(Profiler {
            queries: gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count,
            }),
            resolve: buffer(wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC),
            read: buffer(wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST),
            totals_ns: vec![0.0; labels.len()],
            runs: vec![0; labels.len()],
            labels,
            period: gpu.queue.get_timestamp_period() as f64,
            steps: 0,
            host: HostTimes::default(),
            between: (Duration::ZERO, 0),
        })
    }

    /// Marks the point after kernel `i - 1` (0: the step's start).
    pub fn mark(&self, pass: &mut wgpu::ComputePass, i: usize) {
        pass.write_timestamp(&self.queries, i as u32);
    }

    /// Copies the step's timestamps where `collect` reads them.
    pub fn resolve(&self, encoder: &mut wgpu::CommandEncoder) {
        let n = self.labels.len() as u32 + 1;
        encoder.resolve_query_set(&self.queries, 0..n, &self.resolve, 0);
        encoder.copy_buffer_to_buffer(&self.resolve, 0, &self.read, 0, n as u64 * 8);
    }

    /// Adds a finished step's kernel times to the totals; `ran`: which kernels it
    /// dispatched.
    pub fn collect(&mut self, gpu: &Gpu, ran: impl Iterator<Item = bool>, host: HostTimes) {
        let mut ticks = vec![0u64; self.labels.len() + 1];
        if read_into(gpu, &self.read, &mut ticks).is_err() {
            return;
        }
        self.host.submit += host.submit;
        self.host.record += host.record;
        self.host.wait += host.wait;
        if let Some(between) = host.between {
            self.between.0 += between;
            self.between.1 += 1;
        }
        for (i, total) in self.totals_ns.iter_mut().enumerate() {
            *total += ticks[i + 1].saturating_sub(ticks[i]) as f64 * self.period;
        }
        for (runs, ran) in self.runs.iter_mut().zip(ran) {
            *runs += usize::from(ran);
        }
        self.steps += 1;
    }

    /// GPU microseconds per step by kernel label, largest first.
    pub fn report(&self) -> String {
        let steps = self.steps.max(1) as f64;
        let mut by_label: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
        let kernels = self.labels.iter().zip(&self.totals_ns).zip(&self.runs);
        for ((label, ns), &runs) in kernels.filter(|k| *k.1 > 0) {
            let e = by_label.entry(label).or_default();
            e.0 += ns / steps / 1e3;
            e.1 += runs;
        }
        let dispatches = by_label.values().map(|v| v.1).sum::<usize>() as f64 / steps;
        let total: f64 = by_label.values().map(|v| v.0).sum();
        let mut rows: Vec<_> = by_label.into_iter().collect();
        rows.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
        let us = |d: Duration| d.as_secs_f64() * 1e6 / steps;
        let (between, gaps) = self.between;
        let mut out = format!(
            "host time per step: submitting {:.1} us, recording the next {:.1} us, waiting \
             and reading back {:.1} us; between one-token steps {:.1} us\n",
            us(self.host.submit),
            us(self.host.record),
            us(self.host.wait),
            between.as_secs_f64() * 1e6 / gaps.max(1) as f64,
        );
        out += &format!(
            "GPU time per step over {} steps: {total:.1} us in {dispatches:.0} kernels\n",
            self.steps,
        );
        for (label, (us, runs)) in rows {
            out += &format!(
                "{us:10.1} us {:5.1}%  {:5.1} x {label}\n",
                100.0 * us / total.max(1e-9),
                runs as f64 / steps
            );
        }
        out
    }
}
