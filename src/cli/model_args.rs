//! Flags shared by every command that runs a model, with llama.cpp's names.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use ropewalk::backend::cpu::matmul::Precision;
use ropewalk::gguf::GgufFile;
use ropewalk::model::Llama;

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
        let mut model = Llama::load(file)?;
        model.rope.apply(&self.rope.overrides())?;
        let c = &model.config;
        eprintln!(
            "loaded {}: {} layers, dim {}, {} heads ({} kv), vocab {}, trained context {} ({:.0} ms)",
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

    pub fn precision(&self) -> Precision {
        if self.exact {
            Precision::Exact
        } else {
            Precision::Quantized
        }
    }
}
