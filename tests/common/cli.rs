//! Running the `ropewalk` binary and judging what it printed.

use std::process::{Command, Output};

pub fn ropewalk(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ropewalk"))
        .args(args)
        .output()
        .expect("run ropewalk")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn assert_ok(o: &Output) {
    assert!(o.status.success(), "ropewalk failed: {}", stderr(o));
}

/// A failure: exit status 1, and stderr ends with one line `error: ...` that says `what`
/// (progress lines may come before it).
pub fn assert_fails(o: &Output, what: &str) {
    assert_eq!(o.status.code(), Some(1), "{}", stderr(o));
    let err = stderr(o);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ") && last.contains(what),
        "{err:?} does not end saying {what:?}"
    );
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error")).count(),
        1,
        "{err:?}"
    );
}

/// Like [`assert_fails`], with nothing else on stderr.
pub fn assert_fails_alone(o: &Output, what: &str) {
    assert_fails(o, what);
    assert_eq!(
        stderr(o).lines().count(),
        1,
        "not one line: {:?}",
        stderr(o)
    );
}

/// A usage error from clap: exit status 2, naming the flag or value.
pub fn assert_usage_error(o: &Output, what: &str) {
    assert_eq!(o.status.code(), Some(2), "{}", stderr(o));
    assert!(
        stderr(o).starts_with("error: ") && stderr(o).contains(what),
        "{}",
        stderr(o)
    );
}
