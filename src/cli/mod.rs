//! One module per subcommand.

pub mod bench;
pub mod convert;
pub mod gpu_args;
pub mod info;
pub mod model_args;
pub mod perplexity;
pub mod quantize;
pub mod random_blocks;
pub mod random_model;
pub mod rope_args;
pub mod run;

/// What a subcommand fails with: printed as one line, `error: ...`, with exit status 1.
pub type CliResult = Result<(), Box<dyn std::error::Error>>;

/// A reader that closed the pipe (`ropewalk info f | head`) has seen what it wanted: that
/// ends the output normally rather than as an error.
pub fn finish_output(written: std::io::Result<()>) -> CliResult {
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
