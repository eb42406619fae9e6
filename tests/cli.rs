//! The `ropewalk` binary end to end: text in, text or numbers out, and one-line errors
//! with a non-zero exit for bad input.

mod common;

use common::cli::{assert_fails, ropewalk, stderr, stdout};

#[test]
fn run_greedy_continues_the_prompt() {
    let model = common::test_model();
    let o = ropewalk(&[
        "run",
        "-m",
        model.to_str().unwrap(),
        "-p",
        "The capital of France is",
        "-n",
        "8",
        "--temp",
        "0",
        "-t",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The reference's greedy continuation starts " Paris.\n\nThe answer".
    assert!(
        stdout(&o).starts_with("The capital of France is Paris.\n\n"),
        "{:?}",
        stdout(&o)
    );
    let err = stderr(&o);
    assert!(
        err.contains("prompt: 5 tokens") && err.contains("generation: 8 tokens"),
        "{err}"
    );
    assert!(err.contains("tokens/s"), "{err}");
}

#[test]
fn exact_run_reproduces_the_reference_and_stops_at_end_of_generation() {
    let model = common::test_model();
    // The reference's greedy continuation (base.json, "short") ends with <|im_end|>, the
    // model's end-of-generation token, after 29 tokens: the run prints up to it and stops.
    let o = ropewalk(&[
        "run",
        "-m",
        model.to_str().unwrap(),
        "-p",
        "The capital of France is",
        "-n",
        "100",
        "--temp",
        "0",
        "--exact",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "The capital of France is Paris.\n\nThe answer is: 2018-01-22 12:12:53.\n"
    );
    assert!(
        stderr(&o).contains("generation: 29 tokens"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn perplexity_of_the_reference_text_matches_transformers() {
    let model = common::test_model();
    let text = common::cached("text/alice.txt");
    let o = ropewalk(&[
        "perplexity",
        "-m",
        model.to_str().unwrap(),
        "-f",
        text.to_str().unwrap(),
        "-c",
        "1024",
        "--chunks",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("[1]"), "{out}");
    let ppl: f64 = out
        .split("Final estimate: PPL = ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no final estimate in {out}"));
    // Hugging Face, float32: 24.0032 over the same 2 x 1023 predictions (ppl.json). The
    // difference is the 8-bit activations of the fast path.
    assert!((ppl - 24.0032).abs() / 24.0032 < 0.01, "PPL {ppl}");
    assert!(stderr(&o).contains("2046 predictions"), "{}", stderr(&o));
}

#[test]
fn bad_input_gives_one_line_errors() {
    let model = common::test_model();
    let m = model.to_str().unwrap();
    assert_fails(
        &ropewalk(&["info", "/nonexistent.gguf"]),
        "/nonexistent.gguf",
    );
    assert_fails(&ropewalk(&["info", "Cargo.toml"]), "not a GGUF file");
    assert_fails(
        &ropewalk(&["run", "-m", "Cargo.toml", "-p", "x"]),
        "not a GGUF file",
    );
    assert_fails(&ropewalk(&["run", "-m", m]), "give a prompt");
    assert_fails(
        &ropewalk(&["run", "-m", m, "-p", "x", "--top-p", "2"]),
        "top_p",
    );
    assert_fails(
        &ropewalk(&["run", "-m", m, "-p", "x", "-t", "0"]),
        "--threads",
    );
    assert_fails(
        &ropewalk(&["run", "-m", m, "-f", "/nonexistent.txt"]),
        "/nonexistent.txt",
    );
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short.txt");
    std::fs::write(&short, "The capital of France is").unwrap();
    let o = ropewalk(&[
        "perplexity",
        "-m",
        m,
        "-f",
        short.to_str().unwrap(),
        "-c",
        "512",
    ]);
    assert_fails(
        &o,
        "short.txt is 5 tokens, less than one window of --ctx-size 512",
    );
    // A model of another architecture is refused by name.
    let gemma = common::kquant_model();
    assert_fails(
        &ropewalk(&["run", "-m", gemma.to_str().unwrap(), "-p", "x"]),
        "architecture 'gemma3' is not supported",
    );
    // Usage errors are clap's: exit status 2, the flag named, and a usage hint after it.
    for (args, flag) in [
        (&["run", "--bogus"][..], "--bogus"),
        (
            &["run", "-m", m, "-p", "x", "-f", "y"][..],
            "cannot be used with '--file",
        ),
        (
            &["run", "-m", m, "-p", "x", "-n", "many"][..],
            "'many' for '--n-predict",
        ),
        (
            &["run", "-m", m, "-p", "x", "--gpu-memory-limit", "4Q"][..],
            "unknown unit 'Q'",
        ),
        (
            &["bench", "-m", m, "--gpu-memory-limit", "0"][..],
            "'0' is not a size of at least one byte",
        ),
        (
            &["perplexity", "-m", m, "--gpu-memory-limit", "lots"][..],
            "'lots' is not a size",
        ),
        (
            &[
                "run",
                "-m",
                m,
                "-p",
                "x",
                "--gpu-memory-limit",
                "99999999999G",
            ][..],
            "larger than any GPU's memory",
        ),
    ] {
        let o = ropewalk(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&o).starts_with("error: ") && stderr(&o).contains(flag),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn perplexity_json_reports_windows_buckets_and_cache() {
    let model = common::test_model();
    let text = common::cached("text/alice.txt");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "perplexity",
            "-m",
            model.to_str().unwrap(),
            "-f",
            text.to_str().unwrap(),
            "-c",
            "128",
            "--chunks",
            "2",
            "--json",
            "--cache-type",
            "q8_0",
        ];
        args.extend_from_slice(extra);
        let o = ropewalk(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str::<serde_json::Value>(&stdout(&o)).expect("JSON on stdout")
    };
    let full = run(&[]);
    assert_eq!(full["n_ctx"], 128);
    assert_eq!(full["cache_type"], "q8_0");
    // 30 layers x 128 positions x keys and values x 192 values in Q8_0 (34 bytes a 32).
    assert_eq!(full["kv_cache_bytes"], 30 * 128 * 2 * 192 / 32 * 34);
    assert_eq!(full["windows"].as_array().unwrap().len(), 2);
    assert_eq!(full["n_pred"], 2 * 127);
    let buckets = full["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 8);
    let counted: u64 = buckets.iter().map(|b| b["n_pred"].as_u64().unwrap()).sum();
    assert_eq!(counted, 2 * 127);
    assert_eq!(
        (buckets[0]["from"].clone(), buckets[7]["to"].clone()),
        (0.into(), 128.into())
    );
    let mean: f64 = buckets
        .iter()
        .map(|b| b["mean_nll"].as_f64().unwrap() * b["n_pred"].as_f64().unwrap())
        .sum::<f64>()
        / counted as f64;
    assert!((mean - full["mean_nll"].as_f64().unwrap()).abs() < 1e-9);
    assert!(full["rope"]
        .as_str()
        .unwrap()
        .starts_with("RoPE base 100000"));

    // llama.cpp's convention scores the second half of each window only.
    let half = run(&["--second-half"]);
    assert_eq!(half["n_pred"], 2 * 63);
    assert_eq!(half["buckets"][0]["n_pred"], 0);
    assert!(half["buckets"][0]["mean_nll"].is_null());
}

#[test]
fn an_unknown_kernel_path_is_refused() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ropewalk"))
        .args(["info", "no-such-file.gguf"])
        .env("ROPEWALK_CPU", "sse9")
        .output()
        .unwrap();
    assert_fails(&o, "ROPEWALK_CPU=sse9 is not a kernel path");
}

/// A GGUF file with one metadata key named `key` whose value has the unknown type 99.
fn gguf_with_key(key: &str) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    b.extend_from_slice(&1u64.to_le_bytes());
    b.extend_from_slice(&(key.len() as u64).to_le_bytes());
    b.extend_from_slice(key.as_bytes());
    b.extend_from_slice(&99u32.to_le_bytes());
    b
}

/// Text a hostile file quotes stays on the error's one line, escaped where it holds a line
/// break or a terminal's escape and cut short where it is a megabyte long; a FIFO is not
/// opened (that would block until something wrote to it).
#[test]
fn errors_quoting_a_hostile_file_stay_one_readable_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hostile.gguf");
    let path = file.to_str().unwrap();

    std::fs::write(&file, gguf_with_key("general.name\nerror: forged\u{1b}[2J")).unwrap();
    let o = ropewalk(&["info", path]);
    assert_fails(
        &o,
        r"metadata key 'general.name\nerror: forged\u{1b}[2J' has unknown value type 99",
    );
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));

    std::fs::write(&file, gguf_with_key(&"k".repeat(1 << 20))).unwrap();
    let o = ropewalk(&["run", "-m", path, "-p", "x"]);
    assert_fails(&o, " characters ...] kkk");
    let err = stderr(&o);
    assert!(err.len() < 1200, "{} bytes", err.len());
    assert!(
        err.trim_end().ends_with("' has unknown value type 99"),
        "{err}"
    );

    // Escapes count: a key of a thousand NULs is cut too.
    std::fs::write(&file, gguf_with_key(&"\0".repeat(1000))).unwrap();
    let o = ropewalk(&["info", path]);
    assert_fails(&o, r"metadata key '\u{0}\u{0}");
    let err = stderr(&o);
    assert!(err.len() < 1200, "{} bytes", err.len());
    assert!(err.contains(" characters ...] "), "{err}");

    let fifo = dir.path().join("fifo.gguf");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.expect("mkfifo").success());
    let o = ropewalk(&["info", fifo.to_str().unwrap()]);
    assert_fails(&o, "fifo.gguf: not a regular file");
}

/// `info` of a llama file whose header the loader refuses says why where it would
/// describe the RoPE settings, and still lists the header.
#[test]
fn info_says_why_a_llama_header_would_not_load() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bare.gguf");
    let mut b = b"GGUF".to_vec();
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    b.extend_from_slice(&1u64.to_le_bytes());
    let key = "general.architecture";
    b.extend_from_slice(&(key.len() as u64).to_le_bytes());
    b.extend_from_slice(key.as_bytes());
    // a string
    b.extend_from_slice(&8u32.to_le_bytes());
    b.extend_from_slice(&5u64.to_le_bytes());
    b.extend_from_slice(b"llama");
    std::fs::write(&file, b).unwrap();
    let o = ropewalk(&["info", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("rope: unreadable: metadata key 'llama.embedding_length' is missing"),
        "{out}"
    );
    assert!(out.contains("general.architecture: \"llama\""), "{out}");
}
