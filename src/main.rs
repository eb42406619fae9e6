//! The ropewalk command line.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ropewalk",
    version,
    about = "GGUF inference for machines without CUDA"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert a Hugging Face safetensors model folder into one GGUF file.
    Convert(cli::convert::ConvertArgs),
    /// Requantize a GGUF file to another type, keeping its metadata.
    Quantize(cli::quantize::QuantizeArgs),
    /// Show a GGUF file's header, metadata and tensors without reading tensor data.
    Info(cli::info::InfoArgs),
    /// Generate text from a prompt.
    Run(cli::run::RunArgs),
    /// Measure how well a model predicts a text.
    Perplexity(cli::perplexity::PerplexityArgs),
    /// Measure prompt processing and generation speed, in llama-bench's shape.
    Bench(cli::bench::BenchArgs),
    /// Write a model of a standard shape with random weights (for benchmarks).
    RandomModel(cli::random_model::RandomModelArgs),
    /// List the GPUs that `--gpu-layers` can use.
    Devices(cli::gpu_args::DevicesArgs),
}

fn main() -> ExitCode {
    // llama.cpp's users type -ngl; clap's short flags are one letter.
    let cli = Cli::parse_from(std::env::args_os().map(|a| {
        if a == "-ngl" {
            "--gpu-layers".into()
        } else {
            a
        }
    }));
    if let Err(e) = ropewalk::quant::kernels::init() {
        eprintln!("error: {}", cli::one_line(&e.to_string()));
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Convert(args) => cli::convert::run(&args),
        Command::Quantize(args) => cli::quantize::run(&args),
        Command::Info(args) => cli::info::run(&args),
        Command::Run(args) => cli::run::run(&args),
        Command::Perplexity(args) => cli::perplexity::run(&args),
        Command::Bench(args) => cli::bench::run(&args),
        Command::RandomModel(args) => cli::random_model::run(&args),
        Command::Devices(args) => cli::gpu_args::list_devices(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", cli::one_line(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}
