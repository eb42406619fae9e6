//! `ropewalk run`: generate text from a prompt, streaming it as it comes.

use std::io::{self, Write};
use std::path::PathBuf;

use clap::Args;

use super::model_args::ModelArgs;
use super::CliResult;
use ropewalk::generate::generate;
use ropewalk::sample::{Sampler, SamplerConfig};
use ropewalk::tokenizer::{StreamDecoder, Tokenizer};

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The prompt.
    #[arg(short = 'p', long = "prompt", conflicts_with = "file")]
    pub prompt: Option<String>,
    /// Read the prompt from a file.
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Tokens to generate at most.
    #[arg(short = 'n', long = "n-predict", default_value_t = 128)]
    pub n_predict: usize,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Keep generating past the end-of-generation token.
    #[arg(long)]
    pub ignore_eos: bool,
    /// Do not print the prompt before the generated text.
    #[arg(long)]
    pub no_display_prompt: bool,
}

#[derive(Args)]
pub struct SamplingArgs {
    /// Temperature; 0 picks the most likely token every time.
    #[arg(long = "temp", default_value_t = SamplerConfig::default().temperature)]
    pub temperature: f32,
    /// Keep only the K most likely tokens (0: all).
    #[arg(long = "top-k", default_value_t = SamplerConfig::default().top_k)]
    pub top_k: usize,
    /// Keep the most likely tokens up to this total probability (1: all).
    #[arg(long = "top-p", default_value_t = SamplerConfig::default().top_p)]
    pub top_p: f32,
    /// Drop tokens less likely than this fraction of the most likely one.
    #[arg(long = "min-p", default_value_t = SamplerConfig::default().min_p)]
    pub min_p: f32,
    /// Penalize tokens seen in the last --repeat-last-n tokens (1: off).
    #[arg(long = "repeat-penalty", default_value_t = SamplerConfig::default().repeat_penalty)]
    pub repeat_penalty: f32,
    #[arg(long = "repeat-last-n", default_value_t = SamplerConfig::default().repeat_last_n)]
    pub repeat_last_n: usize,
    /// Random seed; the same seed and settings give the same text.
    #[arg(short = 's', long = "seed", default_value_t = SamplerConfig::default().seed)]
    pub seed: u64,
}

impl SamplingArgs {
    pub fn config(&self) -> Result<SamplerConfig, String> {
        let cfg = SamplerConfig {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            repeat_last_n: self.repeat_last_n,
            seed: self.seed,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

pub fn run(args: &RunArgs) -> CliResult {
    let sampler_config = args.sampling.config()?;
    let prompt = match (&args.prompt, &args.file) {
        (Some(p), _) => p.clone(),
        (None, Some(f)) => {
            std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?
        }
        (None, None) => return Err("give a prompt with -p TEXT or -f FILE".into()),
    };
    let file = args.model.open()?;
    let model = args.model.load(&file)?;
    let tokenizer = Tokenizer::from_metadata(file.metadata())?;
    let tokens = tokenizer.encode(&prompt, tokenizer.add_bos_token(), true);
    let n_ctx = args.model.n_ctx(&model, 4096);
    if tokens.len() >= n_ctx {
        return Err(format!(
            "the prompt is {} tokens, the context only {n_ctx}: raise --ctx-size",
            tokens.len()
        )
        .into());
    }
    let mut session = args.model.session(&model, n_ctx)?;
    eprintln!("prompt {} tokens", tokens.len());
    let mut sampler = Sampler::new(sampler_config);

    let mut out = io::stdout().lock();
    if !args.no_display_prompt {
        write!(out, "{prompt}")?;
        out.flush()?;
    }
    let mut decoder = StreamDecoder::new(&tokenizer);
    let mut write_error = None;
    let stats = generate(
        &mut session,
        &mut sampler,
        &tokens,
        args.n_predict,
        |t| !args.ignore_eos && tokenizer.is_eog(t),
        |t| {
            let text = decoder.push(t);
            match write!(out, "{text}").and_then(|()| out.flush()) {
                Ok(()) => true,
                Err(e) => {
                    write_error = Some(e);
                    false
                }
            }
        },
    )?;
    let tail = decoder.finish();
    super::finish_output(match write_error {
        Some(e) => Err(e),
        None => writeln!(out, "{tail}"),
    })?;
    eprintln!(
        "prompt: {} tokens in {:.2} s ({:.1} tokens/s); generation: {} tokens in {:.2} s ({:.1} tokens/s)",
        stats.prompt_tokens,
        stats.prompt_time.as_secs_f64(),
        stats.prompt_tokens_per_second(),
        stats.generated_tokens,
        stats.generation_time.as_secs_f64(),
        stats.generation_tokens_per_second()
    );
    let listed = session.gpu_shortlists();
    if listed > 0 {
        eprintln!("sampled from the GPU's shortlists of the logits: {listed} steps");
    }
    Ok(())
}
