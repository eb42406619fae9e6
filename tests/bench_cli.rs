//! `ropewalk bench` and `ropewalk random-model` end to end: llama-bench's table and JSON,
//! random models of every file type that our reader opens and our runtime runs, and
//! one-line errors for bad flags.

mod common;

use std::path::Path;
use std::process::Output;

use common::cli::{assert_fails, assert_usage_error, ropewalk, stderr, stdout};
use ropewalk::gguf::GgufFile;
use ropewalk::model::{Llama, Logits, Session};
use ropewalk::quant::GgmlType;

/// `12.34 ± 0.56` as (mean, spread).
fn parse_speed(cell: &str) -> (f64, f64) {
    let (m, s) = cell.trim().split_once(" ± ").expect("mean ± spread");
    (m.parse().unwrap(), s.parse().unwrap())
}

#[test]
fn bench_prints_llama_benchs_table() {
    let model = common::test_model();
    let o = ropewalk(&[
        "bench",
        "-m",
        model.to_str().unwrap(),
        "-p",
        "8",
        "-n",
        "4",
        "-r",
        "1",
        "-t",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    let cells = |l: &str| -> Vec<String> {
        l.trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect()
    };
    assert_eq!(
        cells(lines[0]),
        ["model", "size", "params", "backend", "threads", "test", "t/s"]
    );
    assert!(lines[1].starts_with("| ---") && lines[1].contains("---: |"));
    for (line, test) in lines[2..].iter().zip(["pp8", "tg4"]) {
        let c = cells(line);
        assert_eq!(c[0], "llama 135M Q4_1");
        assert_eq!(c[1], "92.10 MiB");
        assert_eq!(c[2], "134.52 M");
        assert_eq!(c[3], "CPU");
        assert_eq!(c[4], "2");
        assert_eq!(c[5], test);
        let (mean, spread) = parse_speed(&c[6]);
        assert!(mean > 0.0 && spread == 0.0, "{line}");
    }
}

#[test]
fn bench_json_has_every_sample_and_their_statistics() {
    let model = common::test_model();
    let o = ropewalk(&[
        "bench",
        "-m",
        model.to_str().unwrap(),
        "-p",
        "4,8",
        "-n",
        "3",
        "-r",
        "3",
        "-t",
        "1",
        "--no-warmup",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("valid JSON");
    let rows = rows.as_array().unwrap();
    let tests: Vec<&str> = rows.iter().map(|r| r["test"].as_str().unwrap()).collect();
    assert_eq!(tests, ["pp4", "pp8", "tg3"]);
    for r in rows {
        let n = r["n_prompt"].as_u64().unwrap() + r["n_gen"].as_u64().unwrap();
        assert_eq!(r["n_threads"], 1);
        let paths = ["scalar", "avx2", "avx512", "neon", "neon-dotprod"];
        assert!(paths.contains(&r["kernels"].as_str().unwrap()));
        assert_eq!(r["model_n_params"], 134_515_008);
        let ns: Vec<f64> = r["samples_ns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        let ts: Vec<f64> = r["samples_ts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!((ns.len(), ts.len()), (3, 3), "{r}");
        for (t, s) in ts.iter().zip(&ns) {
            assert!((t - n as f64 * 1e9 / s).abs() < 1e-6 * t, "{r}");
        }
        let mean = ts.iter().sum::<f64>() / 3.0;
        let sd = (ts.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
        assert!((r["avg_ts"].as_f64().unwrap() - mean).abs() < 1e-9 * mean);
        assert!((r["stddev_ts"].as_f64().unwrap() - sd).abs() < 1e-9 * mean + 1e-12);
    }
}

#[test]
fn bench_markdown_and_json_flags_agree() {
    let model = common::test_model();
    let m = model.to_str().unwrap();
    let o = ropewalk(&[
        "bench", "-m", m, "-p", "0", "-n", "2", "-r", "1", "-o", "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(rows[0]["test"], "tg2");
    assert_eq!(rows.as_array().unwrap().len(), 1);
}

/// The RoPE flags and the cache type reach the sessions, and the effective configuration
/// is printed in one line (and recorded in the JSON rows).
#[test]
fn bench_takes_rope_flags_and_cache_type() {
    let model = common::test_model();
    let m = model.to_str().unwrap();
    let o = ropewalk(&[
        "bench",
        "-m",
        m,
        "-p",
        "8",
        "-n",
        "0",
        "-r",
        "1",
        "--json",
        "--cache-type",
        "q8_0",
        "--rope-scaling",
        "yarn",
        "--rope-scale",
        "4",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let line = "RoPE base 100000, YaRN x4 (beta 32/1, mscale 1.13863): trained 8192, runs to 32768";
    assert!(stderr(&o).lines().any(|l| l == line), "{}", stderr(&o));
    let rows: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(rows[0]["rope"], line);
    assert_eq!(rows[0]["type_k"], "q8_0");

    // Past the trained context without scaling: a warning, and the run goes on.
    let o = ropewalk(&[
        "bench",
        "-m",
        m,
        "-p",
        "8",
        "-n",
        "0",
        "-r",
        "1",
        "-d",
        "8192",
        "--no-warmup",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: context 8200 is past the 8192 tokens"),
        "{}",
        stderr(&o)
    );
}

const TYPES: [&str; 13] = [
    "f32", "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q4_k_s", "q4_k_m", "q5_k_s",
    "q5_k_m", "q6_k",
];

fn random_model(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["random-model", "-o", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    ropewalk(&args)
}

/// Runs a few tokens through the model with the library: logits come out finite and
/// spread, as sane weights give.
fn check_forward(path: &Path) {
    let file = GgufFile::open(path).unwrap();
    let model = Llama::load(&file).unwrap();
    let mut s = Session::new(&model, 16, 8);
    let logits = s.forward(&[1, 300, 4000, 49151], Logits::Last).unwrap();
    assert!(logits.iter().all(|x| x.is_finite()), "{}", path.display());
    let mean = logits.iter().sum::<f32>() / logits.len() as f32;
    let sd = (logits.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / logits.len() as f32).sqrt();
    assert!(
        (0.05..50.0).contains(&sd),
        "{}: logit spread {sd}",
        path.display()
    );
}

#[test]
fn random_model_of_every_type_opens_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    for ty in TYPES {
        let path = dir.path().join(format!("{ty}.gguf"));
        let o = random_model(
            &path,
            &["--shape", "smollm2-135m", "--type", ty, "--layers", "2"],
        );
        assert!(o.status.success(), "{ty}: {}", stderr(&o));
        let file = GgufFile::open(&path).unwrap();
        let m = file.metadata();
        assert_eq!(m.get_u32("llama.block_count").unwrap(), 2);
        let t = |name: &str| file.tensor(name).unwrap().ty();
        let embd = match ty {
            "f32" => GgmlType::F32,
            "f16" => GgmlType::F16,
            "bf16" => GgmlType::BF16,
            // The tied embedding is the output matrix: Q6_K, which rows of 576 cannot hold.
            _ => GgmlType::Q8_0,
        };
        assert_eq!(t("token_embd.weight"), embd, "{ty}");
        assert_eq!(t("blk.1.ffn_norm.weight"), GgmlType::F32, "{ty}");
        let down = t("blk.1.ffn_down.weight");
        let expected_down = match ty {
            "q4_k_s" => GgmlType::Q4_K,
            "q4_k_m" | "q5_k_m" | "q6_k" => GgmlType::Q6_K,
            "q5_k_s" => GgmlType::Q5_K,
            other => GgmlType::from_name(other).unwrap(),
        };
        assert_eq!(down, expected_down, "{ty}");
        assert!(file.tensor("output.weight").is_err(), "tied embeddings");
        check_forward(&path);
        if ty == "q4_k_m" || ty == "f16" {
            let o = ropewalk(&[
                "run",
                "-m",
                path.to_str().unwrap(),
                "-p",
                "Hello",
                "-n",
                "4",
                "--ignore-eos",
                "-t",
                "2",
            ]);
            assert!(o.status.success(), "{ty}: {}", stderr(&o));
            assert!(stdout(&o).starts_with("Hello"), "{}", stdout(&o));
            assert!(
                stderr(&o).contains("generation: 4 tokens"),
                "{}",
                stderr(&o)
            );
        }
        std::fs::remove_file(&path).unwrap();
    }
}

#[test]
fn random_smollm2_has_the_real_models_tensors_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("smollm2.gguf");
    let o = random_model(&path, &["--shape", "smollm2-135m", "--type", "q4_0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ours = GgufFile::open(&path).unwrap();
    let real = GgufFile::open(common::test_model()).unwrap();
    let shapes = |f: &GgufFile| {
        let mut v: Vec<(String, Vec<u64>)> = f
            .tensors()
            .iter()
            .map(|t| (t.name.clone(), t.dims.clone()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(shapes(&ours), shapes(&real));
    for key in [
        "llama.embedding_length",
        "llama.block_count",
        "llama.feed_forward_length",
        "llama.attention.head_count",
        "llama.attention.head_count_kv",
        "llama.vocab_size",
    ] {
        assert_eq!(
            ours.metadata().get_u64(key).unwrap(),
            real.metadata().get_u64(key).unwrap_or(49152),
            "{key}"
        );
    }
    assert_eq!(
        ours.metadata().get_f32("llama.rope.freq_base").unwrap(),
        100_000.0
    );
    let o = ropewalk(&[
        "run",
        "-m",
        path.to_str().unwrap(),
        "-p",
        "Once upon a time",
        "-n",
        "6",
        "--ignore-eos",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("generation: 6 tokens"),
        "{}",
        stderr(&o)
    );
    let o = ropewalk(&[
        "bench",
        "-m",
        path.to_str().unwrap(),
        "-p",
        "8",
        "-n",
        "2",
        "-r",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("| llama 135M Q4_0 "), "{}", stdout(&o));
}

#[test]
fn random_model_is_reproducible_by_seed() {
    let dir = tempfile::tempdir().unwrap();
    let make = |name: &str, seed: &str| {
        let p = dir.path().join(name);
        let o = random_model(
            &p,
            &[
                "--shape",
                "smollm2-135m",
                "--type",
                "q4_k_m",
                "--layers",
                "1",
                "--seed",
                seed,
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        std::fs::read(p).unwrap()
    };
    let a = make("a.gguf", "5");
    let b = make("b.gguf", "5");
    let c = make("c.gguf", "6");
    assert!(a == b, "the same seed must give the same file");
    assert_eq!(a.len(), c.len());
    assert!(a != c, "another seed must give other weights");
}

#[test]
fn bad_flags_give_one_line_errors() {
    let model = common::test_model();
    let m = model.to_str().unwrap();
    assert_fails(&ropewalk(&["bench", "-m", m, "-r", "0"]), "--repetitions");
    assert_fails(&ropewalk(&["bench", "-m", m, "-t", "2,0"]), "--threads");
    assert_fails(&ropewalk(&["bench", "-m", m, "-b", "0"]), "--batch-size");
    assert_fails(
        &ropewalk(&["bench", "-m", m, "-p", "0", "-n", "0"]),
        "nothing to measure",
    );
    assert_fails(
        &ropewalk(&["bench", "-m", "Cargo.toml", "-p", "1"]),
        "not a GGUF file",
    );
    assert_fails(
        &ropewalk(&["bench", "-m", "/nonexistent.gguf"]),
        "/nonexistent.gguf",
    );
    assert_usage_error(&ropewalk(&["bench", "-m", m, "-p", "x"]), "'x'");
    assert_usage_error(&ropewalk(&["bench", "-m", m, "-o", "csv"]), "'csv'");

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.gguf");
    let o = out.to_str().unwrap();
    assert_fails(
        &ropewalk(&[
            "random-model",
            "--shape",
            "smollm2-135m",
            "-o",
            o,
            "--layers",
            "0",
        ]),
        "--layers",
    );
    assert_fails(
        &ropewalk(&[
            "random-model",
            "--shape",
            "smollm2-135m",
            "-o",
            o,
            "--layers",
            "31",
        ]),
        "--layers must be 1 to 30",
    );
    assert_fails(
        &ropewalk(&[
            "random-model",
            "--shape",
            "smollm2-135m",
            "--layers",
            "1",
            "-o",
            "/nonexistent/dir/m.gguf",
        ]),
        "/nonexistent/dir/m.gguf",
    );
    assert_usage_error(
        &ropewalk(&["random-model", "--shape", "gpt5", "-o", o]),
        "'gpt5'",
    );
    assert_usage_error(
        &ropewalk(&[
            "random-model",
            "--shape",
            "llama2-7b",
            "--type",
            "q3_k",
            "-o",
            o,
        ]),
        "'q3_k'",
    );
    assert!(!out.exists(), "refused flags write nothing");
}
