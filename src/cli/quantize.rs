//! `ropewalk quantize IN.gguf OUT.gguf --type T`: requantize any GGUF file, keeping its
//! metadata, with the same per-tensor policy as `convert`.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use super::convert::{check_output, report, Bar};
use super::CliResult;
use ropewalk::convert::{requantize, OutType};

#[derive(Args)]
pub struct QuantizeArgs {
    /// The GGUF file to read.
    pub input: PathBuf,
    /// The GGUF file to write.
    pub output: PathBuf,
    /// f32, f16, bf16, q8_0, q4_0, q4_1, q4_k_m or q6_k (see docs/CONVERT.md).
    #[arg(long = "type", short = 't')]
    pub ty: OutType,
    /// Replace OUT.gguf if it exists.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: &QuantizeArgs) -> CliResult {
    check_output(&args.output, args.force)?;
    let start = Instant::now();
    let mut bar = Bar::new();
    let written = requantize(&args.input, &args.output, args.ty, &mut |p| bar.update(p));
    bar.finish();
    report(&args.output, args.ty, &written?, start.elapsed());
    Ok(())
}
