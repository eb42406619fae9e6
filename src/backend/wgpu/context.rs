//! The adapter and device: which GPU, with which limits.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wgpu::util::DeviceExt;

use super::kernel::{Uniforms, POLL_FOR};
use super::ops::PositionSplit;
use super::pipelines::Pipelines;
use super::{GpuError, Result};

/// How a GPU is picked: the best one (a discrete GPU before an integrated one; never a
/// software renderer such as lavapipe or WARP, which is slower than the CPU path), or by
/// its index in `ropewalk devices`, or by part of its name (a software renderer too).
#[derive(Clone, Debug, Default)]
pub enum GpuChoice {
    #[default]
    Best,
    Index(usize),
    Name(String),
}

impl std::str::FromStr for GpuChoice {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<GpuChoice, String> {
        if s.is_empty() {
            return Err("an empty GPU name".into());
        }
        Ok(match s.parse::<usize>() {
            Ok(i) => GpuChoice::Index(i),
            Err(_) => GpuChoice::Name(s.to_string()),
        })
    }
}

/// One adapter as `ropewalk devices` lists it.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    pub index: usize,
    pub name: String,
    pub kind: String,
    pub backend: String,
    pub driver: String,
    /// A renderer that runs on the CPU (lavapipe, WARP): taken only when named.
    pub software: bool,
    pub max_binding: u64,
    pub subgroups: bool,
    /// Whether it multiplies 16x16 f16 pieces with f32 sums on matrix units (tensor
    /// cores), which prompts then run on.
    pub matrix_units: bool,
}

impl fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} ({}, {}{}), max storage binding {} MiB{}{}{}",
            self.index,
            self.name,
            self.kind,
            self.backend,
            if self.driver.is_empty() {
                String::new()
            } else {
                format!(", {}", self.driver)
            },
            self.max_binding >> 20,
            if self.subgroups { ", subgroups" } else { "" },
            if self.matrix_units {
                ", f16 matrix units"
            } else {
                ""
            },
            if self.software {
                "; a software renderer, taken only where --gpu-device names it"
            } else {
                ""
            }
        )
    }
}

fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    })
}

fn all_adapters() -> Vec<wgpu::Adapter> {
    pollster::block_on(instance().enumerate_adapters(wgpu::Backends::all()))
}

/// Where an adapter of `kind` stands among the candidates for the best one; `None` for a
/// software renderer, which multiplies on the CPU far slower than the CPU path does.
fn rank(kind: wgpu::DeviceType) -> Option<u8> {
    match kind {
        wgpu::DeviceType::DiscreteGpu => Some(0),
        wgpu::DeviceType::IntegratedGpu => Some(1),
        wgpu::DeviceType::VirtualGpu => Some(2),
        wgpu::DeviceType::Other => Some(3),
        wgpu::DeviceType::Cpu => None,
    }
}

/// The index of the best of adapters of `kinds`, if one is not a software renderer.
pub(super) fn best(kinds: &[wgpu::DeviceType]) -> Option<usize> {
    (0..kinds.len())
        .filter_map(|i| Some((rank(kinds[i])?, i)))
        .min()
        .map(|(_, i)| i)
}

fn summary(index: usize, a: &wgpu::Adapter) -> AdapterSummary {
    let info = a.get_info();
    AdapterSummary {
        index,
        name: info.name,
        kind: format!("{:?}", info.device_type),
        backend: match info.backend {
            wgpu::Backend::Vulkan => "Vulkan",
            wgpu::Backend::Metal => "Metal",
            wgpu::Backend::Dx12 => "DX12",
            wgpu::Backend::Gl => "GL",
            _ => "other",
        }
        .to_string(),
        driver: info.driver,
        software: info.device_type == wgpu::DeviceType::Cpu,
        max_binding: a.limits().max_storage_buffer_binding_size,
        subgroups: a.features().contains(wgpu::Features::SUBGROUP),
        matrix_units: has_f16_matrix_units(a),
    }
}

/// Whether the adapter multiplies 16x16x16 pieces of f16 into f32 sums in subgroups of
/// 32 lanes, what `gemm_coop.wgsl` is written for (its 256 threads are 8 subgroups, each
/// with its own pieces). NVIDIA's tensor cores through Vulkan have it; wgpu offers
/// Metal's 8x8 f32 pieces only, and a GPU of 64-lane subgroups would share pieces
/// between two of the shader's subgroups.
fn has_f16_matrix_units(a: &wgpu::Adapter) -> bool {
    let wanted = wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX | wgpu::Features::SHADER_F16;
    let info = a.get_info();
    a.features().contains(wanted)
        && (info.subgroup_min_size, info.subgroup_max_size) == (32, 32)
        && a.cooperative_matrix_properties().iter().any(|c| {
            (c.m_size, c.n_size, c.k_size) == (16, 16, 16)
                && c.ab_type == wgpu::CooperativeScalarType::F16
                && c.cr_type == wgpu::CooperativeScalarType::F32
        })
}

/// Every adapter wgpu can reach, in the order `--gpu-device N` counts them.
pub fn adapters() -> Vec<AdapterSummary> {
    all_adapters()
        .iter()
        .enumerate()
        .map(|(i, a)| summary(i, a))
        .collect()
}

/// An open GPU: device, queue, limits and the pipelines built so far.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: AdapterSummary,
    /// Largest storage buffer one binding may see; tensors above it are split.
    pub max_binding: u64,
    /// Whether subgroups are always 32 lanes wide (and enabled), so the matrix-vector
    /// shader sums its lanes with subgroup operations.
    pub subgroups_of_32: bool,
    /// Whether one-token steps fold RMSNorm and SwiGLU into the products around them
    /// (see `fold.rs`): where a workgroup may have 1024 invocations and a shader bind 9
    /// storage buffers, unless `ROPEWALK_GPU_NO_FOLD` is set.
    pub fold_ops: bool,
    /// Whether prompts run on the adapter's matrix units (`gemm_coop.wgsl`): where it has
    /// them, unless `ROPEWALK_GPU_NO_MATRIX_UNITS` is set.
    pub matrix_units: bool,
    /// How one token's attention spreads a head's positions over workgroups:
    /// [`PositionSplit::DEFAULT`], or `ROPEWALK_GPU_ATTN_SPAN` positions a part (0: one
    /// part), for measuring.
    pub attention_split: PositionSplit,
    /// How long a wait for the GPU polls the device before it blocks in the driver's
    /// wait, which wakes later: 10 ms on a real GPU, unless `ROPEWALK_GPU_NO_POLL`
    /// is set (for measuring); none on a software adapter (lavapipe), which works on the
    /// cores that polling would take.
    pub poll_for: Duration,
    pub(super) pipelines: Pipelines,
    pub(super) uniforms: Uniforms,
    /// Bytes of the buffers made through [`Gpu::buffer`] and [`Gpu::buffer_init`]: all
    /// but the uniforms of a few bytes.
    created: AtomicU64,
    /// The first error the device raised outside an error scope (a shader that does not
    /// compile, a lost device): kept so the next step fails with it rather than a panic.
    uncaptured: Arc<Mutex<Option<String>>>,
}

impl Gpu {
    /// Opens the chosen adapter with its own limits (the defaults cap a storage binding
    /// at 128 MiB).
    pub fn open(choice: &GpuChoice) -> Result<Gpu> {
        let adapters = all_adapters();
        if adapters.is_empty() {
            return Err(GpuError::NoAdapter);
        }
        let index = match choice {
            GpuChoice::Best => {
                let kinds: Vec<_> = adapters.iter().map(|a| a.get_info().device_type).collect();
                best(&kinds).ok_or_else(|| {
                    let names: Vec<_> = adapters.iter().map(|a| a.get_info().name).collect();
                    GpuError::OnlySoftware(names.join(", "))
                })?
            }
            GpuChoice::Index(i) if *i < adapters.len() => *i,
            GpuChoice::Index(i) => return Err(GpuError::NoMatch(i.to_string())),
            GpuChoice::Name(name) => {
                let name_lc = name.to_lowercase();
                adapters
                    .iter()
                    .position(|a| a.get_info().name.to_lowercase().contains(&name_lc))
                    .ok_or_else(|| GpuError::NoMatch(name.clone()))?
            }
        };
        let adapter = &adapters[index];
        let info = summary(index, adapter);
        let limits = adapter.limits();
        let adapter_info = adapter.get_info();
        let subgroups_of_32 = adapter.features().contains(wgpu::Features::SUBGROUP)
            && adapter_info.subgroup_min_size == 32
            && adapter_info.subgroup_max_size == 32
            && std::env::var_os("ROPEWALK_GPU_NO_SUBGROUPS").is_none();
        let mut features = if subgroups_of_32 {
            wgpu::Features::SUBGROUP
        } else {
            wgpu::Features::empty()
        };
        if super::profile::wanted() && adapter.features().contains(super::profile::FEATURES) {
            features |= super::profile::FEATURES;
        }
        let fold_ops = limits.max_compute_invocations_per_workgroup >= 1024
            && limits.max_compute_workgroup_size_x >= 1024
            && limits.max_storage_buffers_per_shader_stage >= 9
            && std::env::var_os("ROPEWALK_GPU_NO_FOLD").is_none();
        let matrix_units =
            info.matrix_units && std::env::var_os("ROPEWALK_GPU_NO_MATRIX_UNITS").is_none();
        let poll_for = match info.software || std::env::var_os("ROPEWALK_GPU_NO_POLL").is_some() {
            true => Duration::ZERO,
            false => POLL_FOR,
        };
        let attention_split = match std::env::var_os("ROPEWALK_GPU_ATTN_SPAN") {
            None => PositionSplit::DEFAULT,
            Some(span) => span
                .to_str()
                .and_then(|s| s.parse().ok())
                .map(PositionSplit::new)
                .ok_or_else(|| {
                    GpuError::Unsupported(format!(
                        "ROPEWALK_GPU_ATTN_SPAN={} is not a number of positions",
                        span.to_string_lossy()
                    ))
                })?,
        };
        let experimental_features = if matrix_units {
            features |=
                wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX | wgpu::Features::SHADER_F16;
            // SAFETY: wgpu asks for this token before it enables cooperative matrices,
            // whose implementation it does not yet call complete. One shader uses them,
            // `gemm_coop.wgsl`, in the plainest way: loads and stores within workgroup
            // arrays it sizes itself, at 16-byte aligned offsets, by all 32 lanes of
            // every subgroup in uniform control flow; tests/gpu_ops.rs compares its
            // products with the CPU's.
            unsafe { wgpu::ExperimentalFeatures::enabled() }
        } else {
            wgpu::ExperimentalFeatures::disabled()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("ropewalk"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features,
            ..Default::default()
        }))
        .map_err(|e| GpuError::Device {
            name: info.name.clone(),
            reason: e.to_string(),
        })?;
        let uncaptured = Arc::new(Mutex::new(None));
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut first = sink.lock().unwrap_or_else(|p| p.into_inner());
            first.get_or_insert_with(|| e.to_string());
        }));
        let max_binding = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        Ok(Gpu {
            pipelines: Pipelines::new(),
            uniforms: Uniforms::new(limits.min_uniform_buffer_offset_alignment),
            device,
            queue,
            info,
            max_binding,
            subgroups_of_32,
            fold_ops,
            matrix_units,
            attention_split,
            poll_for,
            created: AtomicU64::new(0),
            uncaptured,
        })
    }

    /// A buffer, counted in [`Gpu::bytes_created`].
    pub(super) fn buffer(&self, desc: &wgpu::BufferDescriptor) -> wgpu::Buffer {
        self.created.fetch_add(desc.size, Ordering::Relaxed);
        self.device.create_buffer(desc)
    }

    /// A buffer holding `desc.contents`, counted in [`Gpu::bytes_created`].
    pub(super) fn buffer_init(&self, desc: &wgpu::util::BufferInitDescriptor) -> wgpu::Buffer {
        let size = super::upload::storage_bytes(desc.contents.len());
        self.created.fetch_add(size, Ordering::Relaxed);
        self.device.create_buffer_init(desc)
    }

    /// Bytes of every buffer made on this GPU so far (bar the uniforms of a few bytes),
    /// dropped or not: what an offload takes is the difference across it, which
    /// [`Footprint`](super::Footprint) reckons beforehand.
    pub fn bytes_created(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }

    /// Fails with the first error the device raised outside an error scope, if any.
    pub fn check_errors(&self, what: &str) -> Result<()> {
        let first = self
            .uncaptured
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match first {
            Some(e) => Err(GpuError::Validation(format!("{what}: {e}"))),
            None => Ok(()),
        }
    }

    /// Runs `f` and turns any out-of-memory or validation error it raised on the device
    /// into an error naming `what`.
    pub(super) fn checked<T>(&self, what: &str, f: impl FnOnce() -> T) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let invalid = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let value = f();
        if let Some(e) = pollster::block_on(invalid.pop()) {
            return Err(GpuError::Validation(format!("{what}: {e}")));
        }
        if pollster::block_on(oom.pop()).is_some() {
            return Err(GpuError::OutOfMemory(what.to_string()));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::best;
    use wgpu::DeviceType::{Cpu, DiscreteGpu, IntegratedGpu, Other, VirtualGpu};

    #[test]
    fn the_best_adapter_is_a_gpu_and_never_a_software_renderer() {
        assert_eq!(best(&[]), None);
        assert_eq!(best(&[Cpu]), None);
        assert_eq!(best(&[Cpu, Cpu]), None);
        assert_eq!(best(&[Cpu, IntegratedGpu]), Some(1));
        assert_eq!(best(&[IntegratedGpu, Cpu, DiscreteGpu]), Some(2));
        assert_eq!(best(&[Other, VirtualGpu, Cpu]), Some(1));
        // Of two alike, the first wgpu lists.
        assert_eq!(best(&[DiscreteGpu, DiscreteGpu]), Some(0));
    }
}
