//! Flags shared by every command that runs a model, with llama.cpp's names.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use ropewalk::backend::cpu::matmul::Precision;
use ropewalk::gguf::GgufFile;
use ropewalk::model::kv_cache::CacheType;
use ropewalk::model::{Llama, Session};

use super::gpu_args::GpuArgs;
use super::rope_args::RopeArgs;

#[derive(Args)]
pub struct ModelArgs {
    /// The GGUF model file.
    #[arg(short = 'm', long = "model")]
    pub model: PathBuf,
    /// Threads for the matrix products (default: all cores).
    #[arg(short = 't', long = "threads")]
    pub threads: Option<usize>,
    /// Context size in tokens; 0 takes the length the model was trained for.
    #[arg(short = 'c', long = "ctx-size")]
    pub ctx_size: Option<usize>,
    /// Prompt tokens processed per pass over the weights.
    #[arg(short = 'b', long = "batch-size", default_value_t = 512)]
    pub batch_size: usize,
    /// Keep activations in f32 and dequantize weights on the fly (slow; for checking
    /// against a float reference).
    #[arg(long)]
    pub exact: bool,
    /// How the KV cache stores keys and values: f32, f16 or q8_0 (default f16, or f32
    /// with --exact).
    #[arg(long = "cache-type", value_name = "TYPE")]
    pub cache_type: Option<CacheType>,
    /// Multiply every matrix in its stored layout: no repacking at load (as
    /// llama.cpp's --no-repack).
    #[arg(long)]
    pub no_repack: bool,
    /// Layers to run on the GPU, counted from the last (llama.cpp's -ngl); one more
    /// than the model has also moves the output layer, and 999 moves everything.
    #[arg(
        long = "gpu-layers",
        visible_alias = "ngl",
        value_name = "N",
        default_value_t = 0
    )]
    pub gpu_layers: usize,
    #[command(flatten)]
    pub gpu: GpuArgs,
    #[command(flatten)]
    pub rope: RopeArgs,
}

impl ModelArgs {
    pub fn open(&self) -> Result<GgufFile, Box<dyn std::error::Error>> {
        if let Some(n) = self.threads {
            if n == 0 {
                return Err("--threads must be at least 1".into());
            }
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build_global()
                .map_err(|e| format!("cannot start {n} threads: {e}"))?;
        }
        if self.batch_size == 0 {
            return Err("--batch-size must be at least 1".into());
        }
        Ok(GgufFile::open(&self.model)?)
    }

    pub fn load<'a>(&self, file: &'a GgufFile) -> Result<Llama<'a>, Box<dyn std::error::Error>> {
        let start = Instant::now();
        let mut model = Llama::load_with(file, !self.no_repack)?;
        model.rope.apply(&self.rope.overrides())?;
        let packed = match model.weights.packed_bytes() {
            0 => String::new(),
            n => format!(", {:.0} MiB repacked", n as f64 / (1 << 20) as f64),
        };
        let c = &model.config;
        eprintln!(
            "loaded {}: {} layers, dim {}, {} heads ({} kv), vocab {}, trained context {} ({:.0} ms{packed})",
            self.model.display(),
            c.n_layers,
            c.dim,
            c.n_heads,
            c.n_kv_heads,
            c.n_vocab,
            c.context_length,
            start.elapsed().as_secs_f64() * 1e3
        );
        Ok(model)
    }

    /// The context size asked for, or `default`, or the trained length for 0; prints the
    /// RoPE configuration in one line, and a warning when the context runs past what the
    /// model can reach.
    pub fn n_ctx(&self, model: &Llama, default: usize) -> usize {
        let n_ctx = match self.ctx_size {
            Some(0) => model.config.context_length,
            Some(n) => n,
            None => default.min(model.config.context_length),
        };
        eprintln!("{}", model.rope);
        if let Some(warning) = model.rope.context_warning(n_ctx) {
            eprintln!("warning: {warning}");
        }
        n_ctx
    }

    /// A session with the asked-for cache type and precision; prints the cache's size.
    pub fn session<'m, 'a>(
        &self,
        model: &'m Llama<'a>,
        n_ctx: usize,
    ) -> Result<Session<'m, 'a>, Box<dyn std::error::Error>> {
        let default = if self.exact {
            CacheType::F32
        } else {
            CacheType::F16
        };
        let cache_type = self.cache_type.unwrap_or(default);
        let mut session = Session::with_cache(model, n_ctx, self.batch_size, cache_type)?;
        session.precision = self.precision();
        let gpu = self.gpu.open(self.gpu_layers)?;
        self.gpu
            .offload(gpu.as_ref(), &mut session, self.gpu_layers)?;
        // The offloaded layers' cache is on the GPU, and counted in the offload's line.
        let place = match session.gpu_layers() {
            0 => "",
            _ => " on the CPU",
        };
        eprintln!(
            "context {n_ctx} tokens, KV cache {cache_type} {:.1} MiB{place}",
            session.kv_cache_bytes() as f64 / (1 << 20) as f64
        );
        Ok(session)
    }

    pub fn precision(&self) -> Precision {
        if self.exact {
            Precision::Exact
        } else {
            Precision::Quantized
        }
    }
}
