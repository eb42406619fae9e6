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

/// Bytes of an error line kept from each end of a longer one.
const ERROR_END_BYTES: usize = 480;

/// `message` as one readable line: the control characters a hostile file may put in the
/// names it quotes (a line break, a terminal's escape) written as escapes, and a name of
/// a megabyte cut out of the middle, so the line keeps its start and what it ends saying
/// in about a thousand bytes.
pub fn one_line(message: &str) -> String {
    let pieces: Vec<String> = message
        .chars()
        .map(|c| match c.is_control() {
            true => c.escape_default().to_string(),
            false => c.to_string(),
        })
        .collect();
    if pieces.iter().map(String::len).sum::<usize>() <= 2 * ERROR_END_BYTES + 100 {
        return pieces.concat();
    }
    // Whole pieces, so neither a character nor an escape is cut in two.
    let within = |end: &mut dyn Iterator<Item = &String>| {
        let mut bytes = 0;
        end.take_while(|p| {
            bytes += p.len();
            bytes <= ERROR_END_BYTES
        })
        .count()
    };
    let head = within(&mut pieces.iter());
    let tail = within(&mut pieces.iter().rev());
    format!(
        "{} [... {} characters ...] {}",
        pieces[..head].concat(),
        pieces.len() - head - tail,
        pieces[pieces.len() - tail..].concat()
    )
}

/// A reader that closed the pipe (`ropewalk info f | head`) has seen what it wanted: that
/// ends the output normally rather than as an error.
pub fn finish_output(written: std::io::Result<()>) -> CliResult {
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
