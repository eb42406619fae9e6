//! `ropewalk perplexity`: how well the model predicts a text, window by window, in the
//! shape of llama.cpp's output.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use super::model_args::ModelArgs;
use super::CliResult;
use ropewalk::model::Session;
use ropewalk::perplexity::{perplexity, Scoring};
use ropewalk::tokenizer::Tokenizer;

#[derive(Args)]
pub struct PerplexityArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The text to score.
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
    /// Score at most this many windows.
    #[arg(long)]
    pub chunks: Option<usize>,
    /// Score only the second half of each window, as llama.cpp's perplexity does (the
    /// default scores every prediction, as Hugging Face evaluations do).
    #[arg(long)]
    pub second_half: bool,
}

pub fn run(args: &PerplexityArgs) -> CliResult {
    let text =
        std::fs::read_to_string(&args.file).map_err(|e| format!("{}: {e}", args.file.display()))?;
    let file = args.model.open()?;
    let model = args.model.load(&file)?;
    let tokenizer = Tokenizer::from_metadata(file.metadata())?;
    let add_bos = tokenizer.add_bos_token();
    let tokens = tokenizer.encode(&text, add_bos, false);
    let n_ctx = args.model.n_ctx(&model, 512);
    let scoring = if args.second_half {
        Scoring::SecondHalf
    } else {
        Scoring::Full
    };
    if n_ctx < 2 || tokens.len() < n_ctx {
        return Err(format!(
            "{} is {} tokens, less than one window of --ctx-size {n_ctx}",
            args.file.display(),
            tokens.len()
        )
        .into());
    }
    let n_windows = (tokens.len() / n_ctx).min(args.chunks.unwrap_or(usize::MAX));
    eprintln!(
        "perplexity: {} tokens, {n_windows} windows of {n_ctx}, scoring {}",
        tokens.len(),
        match scoring {
            Scoring::Full => "every prediction",
            Scoring::SecondHalf => "the second half of each window",
        }
    );
    let mut session = Session::new(&model, n_ctx, args.model.batch_size);
    session.precision = args.model.precision();
    let bos = if add_bos { tokenizer.bos_id() } else { None };
    let start = Instant::now();
    let mut stdout = std::io::stdout();
    let result = perplexity(
        &mut session,
        &tokens,
        n_ctx,
        scoring,
        bos,
        args.chunks,
        |r| {
            let _ = write!(stdout, "[{}]{:.4},", r.windows.len(), r.ppl());
            let _ = stdout.flush();
        },
    )?;
    let secs = start.elapsed().as_secs_f64();
    println!();
    println!(
        "Final estimate: PPL = {:.4} +/- {:.5}",
        result.ppl(),
        result.ppl_error()
    );
    eprintln!(
        "{} predictions in {secs:.1} s ({:.1} tokens/s)",
        result.n_pred(),
        (result.windows.len() * n_ctx) as f64 / secs
    );
    Ok(())
}
