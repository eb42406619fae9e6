//! GPU flags shared by `run`, `perplexity` and `bench`, and the offload they ask for.

use std::sync::Arc;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use ropewalk::backend::wgpu::{Footprint, Gpu, GpuChoice};
use ropewalk::model::Session;

use super::CliResult;

#[derive(Args, Clone)]
pub struct GpuArgs {
    /// Which GPU: its index in `ropewalk devices` or part of its name (default: a
    /// discrete GPU before an integrated one; a software renderer such as lavapipe only
    /// when named here).
    #[arg(long = "gpu-device", value_name = "N|NAME")]
    pub gpu_device: Option<GpuChoice>,
    /// Stop when the GPU cannot be used, rather than going on with the CPU.
    #[arg(long)]
    pub gpu_required: bool,
    /// Offload only as many of the --gpu-layers as fit in SIZE of GPU memory (their
    /// weights, KV cache and activations; the driver's overhead comes on top): bytes, or
    /// a number with K, M, G (powers of 1024, also KiB, MiB, GiB) or KB, MB, GB (of 1000).
    #[arg(long = "gpu-memory-limit", value_name = "SIZE", value_parser = parse_size)]
    pub gpu_memory_limit: Option<u64>,
}

/// A size in bytes from `4G`, `1500MiB`, `6.5GB` or `123456`.
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit = unit.trim();
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a size (such as 4G or 1500MiB)"))?;
    let scale: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => {
            return Err(format!(
                "unknown unit '{unit}' (use K, M, G, KiB, MiB, GiB, KB, MB or GB)"
            ))
        }
    };
    let bytes = value * scale as f64;
    if bytes < 1.0 {
        return Err(format!("'{text}' is not a size of at least one byte"));
    }
    // No GPU holds 2^63 bytes, and the check keeps the conversion below in range.
    if bytes >= (1u64 << 63) as f64 {
        return Err(format!("'{text}' is larger than any GPU's memory"));
    }
    Ok(bytes as u64)
}

impl GpuArgs {
    /// The GPU, when `n_gpu_layers` asks for one. Without one (no adapter, a failed
    /// start) this warns and gives `None`, or fails with `--gpu-required`.
    pub fn open(
        &self,
        n_gpu_layers: usize,
    ) -> Result<Option<Arc<Gpu>>, Box<dyn std::error::Error>> {
        if n_gpu_layers == 0 {
            if self.gpu_memory_limit.is_some() {
                eprintln!(
                    "warning: --gpu-memory-limit caps --gpu-layers, which is 0: nothing goes \
                     to the GPU (-ngl 999 offloads what fits)"
                );
            }
            return Ok(None);
        }
        match Gpu::open(&self.gpu_device.clone().unwrap_or_default()) {
            Ok(gpu) => Ok(Some(Arc::new(gpu))),
            Err(e) if self.gpu_required => Err(e.into()),
            Err(e) => {
                eprintln!("warning: {e}; running on the CPU");
                Ok(None)
            }
        }
    }

    /// Moves the last `n_gpu_layers` layers of `session` to `gpu` (as many of them as
    /// fit in `--gpu-memory-limit`) and says what went where; a failed upload leaves
    /// every layer on the CPU (or fails with `--gpu-required`). Gives the layers asked
    /// of the GPU, after the limit.
    pub fn offload(
        &self,
        gpu: Option<&Arc<Gpu>>,
        session: &mut Session,
        n_gpu_layers: usize,
    ) -> Result<usize, Box<dyn std::error::Error>> {
        session.gpu_fallback = !self.gpu_required;
        let Some(gpu) = gpu else {
            return Ok(0);
        };
        let n_gpu_layers = match self.gpu_memory_limit {
            Some(limit) => match fit_in_limit(&session.gpu_footprint(gpu), n_gpu_layers, limit) {
                Ok(n) => n,
                Err(e) if self.gpu_required => return Err(e.into()),
                Err(e) => {
                    eprintln!("warning: {e}; running on the CPU");
                    return Ok(0);
                }
            },
            None => n_gpu_layers,
        };
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("uploading to the GPU {bar:30} {pos}/{len} layers")
                .expect("a valid template"),
        );
        let result = session.offload(gpu.clone(), n_gpu_layers, &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        });
        bar.finish_and_clear();
        let offload = match result {
            Ok(Some(offload)) => offload,
            Ok(None) => return Ok(n_gpu_layers),
            Err(e) if self.gpu_required => return Err(e.into()),
            Err(e) => {
                eprintln!("warning: {e}; running on the CPU");
                return Ok(n_gpu_layers);
            }
        };
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        eprintln!(
            "offloaded {}/{} layers{} to {} ({}): {:.1} MiB of weights, {:.1} MiB of KV cache",
            offload.layers,
            session.config().n_layers,
            if offload.output {
                " and the output layer"
            } else {
                ""
            },
            gpu.info.name,
            gpu.info.backend,
            mib(offload.weight_bytes),
            mib(offload.kv_bytes),
        );
        if !offload.via_f16.is_empty() {
            eprintln!(
                "note: {} matrices have no GPU shader for their type and went up as f16",
                offload.via_f16.len()
            );
        }
        Ok(n_gpu_layers)
    }
}

/// The most of `n_gpu_layers` that `footprint` fits in `limit` bytes, saying so when it is
/// fewer (`n_gpu_layers` itself when all fit); an error when not one layer fits.
fn fit_in_limit(footprint: &Footprint, n_gpu_layers: usize, limit: u64) -> Result<usize, String> {
    let fits = footprint.fit(n_gpu_layers, limit);
    let asked = footprint.fit(n_gpu_layers, u64::MAX);
    let mib = |bytes: u64| bytes as f64 / (1 << 20) as f64;
    if fits == 0 && asked > 0 {
        return Err(format!(
            "--gpu-memory-limit {:.1} MiB holds no layer (the last one takes {:.1} MiB)",
            mib(limit),
            mib(footprint.bytes(1)),
        ));
    }
    if fits < asked {
        let layers = |n: usize| match n.checked_sub(footprint.n_layers()) {
            Some(1) => format!("{} layers and the output layer", n - 1),
            _ => format!("{n} layers"),
        };
        eprintln!(
            "--gpu-memory-limit {:.1} MiB: offloading {} ({:.1} MiB) of the {} asked ({:.1} MiB)",
            mib(limit),
            layers(fits),
            mib(footprint.bytes(fits)),
            layers(asked),
            mib(footprint.bytes(asked)),
        );
        return Ok(fits);
    }
    Ok(n_gpu_layers)
}

#[derive(Args)]
pub struct DevicesArgs {
    /// Also measure the copy bandwidth of the GPU that --gpu-device picks (GB/s, read
    /// plus write): the ceiling of token generation.
    #[arg(long)]
    pub bandwidth: bool,
    /// Which GPU to measure (default: the one --gpu-layers would take).
    #[arg(long = "gpu-device", value_name = "N|NAME")]
    pub gpu_device: Option<GpuChoice>,
}

/// `ropewalk devices`: every adapter wgpu can reach.
pub fn list_devices(args: &DevicesArgs) -> CliResult {
    let adapters = ropewalk::backend::wgpu::adapters();
    if adapters.is_empty() {
        println!("no GPU adapter found (no Vulkan, Metal or DX12 device)");
    }
    for a in adapters {
        println!("{a}");
    }
    if args.bandwidth {
        let gpu = Gpu::open(&args.gpu_device.clone().unwrap_or_default())?;
        let bw = ropewalk::backend::wgpu::bandwidth::copy_gbs(&gpu, 1 << 30, 5)?;
        println!(
            "{}: copy bandwidth (read + write) {:.0} GB/s in a shader, {:.0} GB/s by copy command",
            gpu.info.name, bw.shader, bw.command
        );
    }
    Ok(())
}
