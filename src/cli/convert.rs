//! `ropewalk convert MODEL_DIR -o OUT.gguf`: a Hugging Face safetensors model to one GGUF
//! file, with its RoPE scaling in the header.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::rope_args::RopeArgs;
use super::CliResult;
use ropewalk::convert::{convert, ConvertOptions, OutType, Progress, Written};

#[derive(Args)]
pub struct ConvertArgs {
    /// The Hugging Face model folder (config.json, *.safetensors, tokenizer files).
    pub model_dir: PathBuf,
    /// The GGUF file to write.
    #[arg(short, long, value_name = "OUT.gguf")]
    pub output: PathBuf,
    /// f32, f16, bf16, q8_0, q4_0, q4_1, q4_k_m or q6_k (see docs/CONVERT.md).
    #[arg(long, default_value = "f16")]
    pub outtype: OutType,
    /// Replace OUT.gguf if it exists.
    #[arg(long)]
    pub force: bool,
    /// The context length the file advertises (the trained length is kept as
    /// rope.scaling.original_context_length).
    #[arg(long, value_name = "N")]
    pub ctx: Option<usize>,
    /// general.name (default: the config's _name_or_path or the folder's name).
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub rope: RopeArgs,
}

pub fn run(args: &ConvertArgs) -> CliResult {
    check_output(&args.output, args.force)?;
    check_not_an_input(&args.model_dir, &args.output)?;
    let opts = ConvertOptions {
        outtype: Some(args.outtype),
        rope: args.rope.overrides(),
        ctx: args.ctx,
        name: args.name.clone(),
    };
    let start = Instant::now();
    let mut bar = Bar::new();
    let written = convert(&args.model_dir, &args.output, &opts, &mut |p| bar.update(p));
    bar.finish();
    report(&args.output, args.outtype, &written?, start.elapsed());
    Ok(())
}

/// Refuses to replace an existing file without `--force`, before any work is done.
pub fn check_output(output: &Path, force: bool) -> CliResult {
    if output.is_dir() {
        return Err(format!("{}: is a folder, not a file name", output.display()).into());
    }
    if output.exists() && !force {
        return Err(format!("{} exists: pass --force to replace it", output.display()).into());
    }
    Ok(())
}

/// Refuses an output that would replace one of the model folder's own files (its weights,
/// config or tokenizer): the conversion would read them to the end and then put the GGUF
/// in their place, which even `--force` should not do.
fn check_not_an_input(model_dir: &Path, output: &Path) -> CliResult {
    // Only an existing file can be replaced, and only then does it canonicalize.
    let (Ok(dir), Ok(out)) = (model_dir.canonicalize(), output.canonicalize()) else {
        return Ok(());
    };
    let read = ["safetensors", "json", "model", "jinja"];
    let is_input = out.parent() == Some(dir.as_path())
        && out
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| read.contains(&e));
    if is_input {
        return Err(format!(
            "{}: a file of the model folder, which convert reads: write the GGUF elsewhere",
            output.display()
        )
        .into());
    }
    Ok(())
}

pub fn report(output: &Path, outtype: OutType, w: &Written, took: Duration) {
    let secs = took.as_secs_f64().max(1e-9);
    let types: Vec<String> = w.types.iter().map(|(t, n)| format!("{n} {t}")).collect();
    println!(
        "wrote {} ({outtype}): {} tensors ({}), {:.1} MB from {:.1} MB in {:.1} s, {:.0} MB/s of input",
        output.display(),
        w.tensors,
        types.join(", "),
        w.output_bytes as f64 / 1e6,
        w.input_bytes as f64 / 1e6,
        secs,
        w.input_bytes as f64 / 1e6 / secs
    );
}

/// Tensors done, bytes, MB/s and ETA on a terminal; nothing when stderr is piped.
pub struct Bar {
    bar: Option<ProgressBar>,
}

impl Bar {
    pub fn new() -> Bar {
        if !std::io::stderr().is_terminal() {
            return Bar { bar: None };
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        Bar { bar: Some(bar) }
    }

    pub fn update(&mut self, p: Progress) {
        if let Some(bar) = &self.bar {
            bar.set_length(p.bytes_total);
            bar.set_position(p.bytes_done);
            bar.set_message(format!("tensor {}/{}", p.tensors_done, p.tensors_total));
        }
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
