//! `ropewalk perplexity`: how well the model predicts a text, window by window, in the
//! shape of llama.cpp's output, with the mean NLL by position in the window.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use serde_json::json;

use super::model_args::ModelArgs;
use super::CliResult;
use ropewalk::perplexity::{perplexity, Perplexity, Scoring};
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
    /// Print the result as JSON on stdout (windows, position buckets, settings).
    #[arg(long)]
    pub json: bool,
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
    if n_ctx < 2 || tokens.len() < n_ctx {
        return Err(format!(
            "{} is {} tokens, less than one window of --ctx-size {n_ctx}",
            args.file.display(),
            tokens.len()
        )
        .into());
    }
    let scoring = if args.second_half {
        Scoring::SecondHalf
    } else {
        Scoring::Full
    };
    let n_windows = (tokens.len() / n_ctx).min(args.chunks.unwrap_or(usize::MAX));
    eprintln!(
        "perplexity: {} tokens, {n_windows} windows of {n_ctx}, scoring {}",
        tokens.len(),
        match scoring {
            Scoring::Full => "every prediction",
            Scoring::SecondHalf => "the second half of each window",
        }
    );
    let mut session = args.model.session(&model, n_ctx)?;
    let bos = if add_bos { tokenizer.bos_id() } else { None };
    let start = Instant::now();
    let mut progress = std::io::stderr();
    let mut stdout = std::io::stdout();
    let result = perplexity(
        &mut session,
        &tokens,
        n_ctx,
        scoring,
        bos,
        args.chunks,
        |r| {
            // llama.cpp's running estimate; on stderr when stdout carries JSON.
            let line = format!("[{}]{:.4},", r.windows.len(), r.ppl());
            let out: &mut dyn Write = if args.json {
                &mut progress
            } else {
                &mut stdout
            };
            let _ = write!(out, "{line}");
            let _ = out.flush();
        },
    )?;
    let secs = start.elapsed().as_secs_f64();
    let tokens_per_second = (result.windows.len() * n_ctx) as f64 / secs;
    if args.json {
        eprintln!();
        let report = json!({
            "model": args.model.model.display().to_string(),
            "text": args.file.display().to_string(),
            "n_ctx": n_ctx,
            "scoring": match scoring { Scoring::Full => "full", Scoring::SecondHalf => "second_half" },
            "rope": model.rope.to_string(),
            "cache_type": session.cache_type().to_string(),
            "kv_cache_bytes": session.kv_cache_bytes(),
            "ppl": result.ppl(),
            "ppl_error": result.ppl_error(),
            "mean_nll": result.mean_nll(),
            "n_pred": result.n_pred(),
            "windows": result.windows.iter().map(|w| json!({
                "start": w.start, "n_pred": w.n_pred, "nll_sum": w.nll_sum,
                "ppl": (w.nll_sum / w.n_pred as f64).exp(),
            })).collect::<Vec<_>>(),
            "buckets": buckets_json(&result),
            "seconds": secs,
            "tokens_per_second": tokens_per_second,
        });
        super::finish_output(writeln!(stdout, "{report}"))?;
    } else {
        println!();
        println!(
            "Final estimate: PPL = {:.4} +/- {:.5}",
            result.ppl(),
            result.ppl_error()
        );
        let buckets: Vec<String> = result
            .buckets
            .iter()
            .filter(|b| b.n_pred > 0)
            .map(|b| format!("[{}, {}) {:.3}", b.from, b.to, b.mean_nll()))
            .collect();
        println!("mean NLL by position: {}", buckets.join(", "));
    }
    eprintln!(
        "{} predictions in {secs:.1} s ({tokens_per_second:.1} tokens/s)",
        result.n_pred(),
    );
    Ok(())
}

fn buckets_json(result: &Perplexity) -> Vec<serde_json::Value> {
    result
        .buckets
        .iter()
        .map(|b| {
            json!({
                "from": b.from, "to": b.to, "n_pred": b.n_pred,
                "mean_nll": if b.n_pred > 0 { json!(b.mean_nll()) } else { json!(null) },
            })
        })
        .collect()
}
