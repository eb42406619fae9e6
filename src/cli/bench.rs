//! `ropewalk bench`: prompt processing and generation speed in llama-bench's shape, so
//! the two tools' numbers can be set side by side.
//!
//! `ppP` processes P random tokens as one prompt from an empty context, in batches of
//! `-b`; `tgN` generates N tokens one at a time, feeding random tokens rather than sampled
//! ones. Each test runs once to warm up, then `-r` times; tokens per second are reported
//! as the mean and standard deviation over the repetitions, as llama-bench does. Every
//! list flag takes several values (`-p 128,512 -t 1,2`), and every combination runs.
//! Each thread count gets its own rayon pool, so one process can measure several.

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, ValueEnum};
use serde_json::{json, Value as Json};

use super::gpu_args::GpuArgs;
use super::random_blocks::Rng;
use super::rope_args::RopeArgs;
use super::CliResult;
use ropewalk::backend::wgpu::Gpu;
use ropewalk::gguf::{keys, GgufFile};
use ropewalk::model::kv_cache::CacheType;
use ropewalk::model::{Llama, Logits, Session};
use ropewalk::quant::{kernels, GgmlType};
use ropewalk::tokenizer::Tokenizer;

#[derive(Args)]
pub struct BenchArgs {
    /// The GGUF model file.
    #[arg(short = 'm', long = "model")]
    pub model: PathBuf,
    /// Prompt lengths to process (0: no prompt test).
    #[arg(
        short = 'p',
        long = "n-prompt",
        value_delimiter = ',',
        default_value = "512"
    )]
    pub n_prompt: Vec<usize>,
    /// Numbers of tokens to generate (0: no generation test).
    #[arg(
        short = 'n',
        long = "n-gen",
        value_delimiter = ',',
        default_value = "128"
    )]
    pub n_gen: Vec<usize>,
    /// Tokens already in the context when a test starts (processed, not timed).
    #[arg(
        short = 'd',
        long = "n-depth",
        value_delimiter = ',',
        default_value = "0"
    )]
    pub n_depth: Vec<usize>,
    /// Thread counts (default: all cores).
    #[arg(short = 't', long = "threads", value_delimiter = ',')]
    pub threads: Vec<usize>,
    /// Prompt tokens per pass over the weights.
    #[arg(
        short = 'b',
        long = "batch-size",
        value_delimiter = ',',
        default_value = "512"
    )]
    pub batch_size: Vec<usize>,
    /// Timed repetitions of each test.
    #[arg(short = 'r', long = "repetitions", default_value_t = 5)]
    pub repetitions: usize,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "md")]
    pub output: Format,
    /// Same as `-o json`.
    #[arg(long, conflicts_with = "output")]
    pub json: bool,
    /// Skip the untimed warm-up run of each test.
    #[arg(long)]
    pub no_warmup: bool,
    /// Seed of the random tokens.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print each run to stderr as it starts.
    #[arg(long)]
    pub progress: bool,
    /// How the KV cache stores keys and values: f32, f16 or q8_0.
    #[arg(long = "cache-type", value_name = "TYPE", default_value = "f16")]
    pub cache_type: CacheType,
    /// Multiply every matrix in its stored layout: no repacking at load.
    #[arg(long)]
    pub no_repack: bool,
    /// Layers on the GPU, counted from the last (llama-bench's -ngl); a list runs each.
    #[arg(
        long = "gpu-layers",
        visible_alias = "ngl",
        value_name = "N",
        value_delimiter = ',',
        default_value = "0"
    )]
    pub gpu_layers: Vec<usize>,
    /// Measure every split of the model: 0, STEP, 2·STEP, ... layers on the GPU, then
    /// all of them, then the output layer too (replaces --gpu-layers).
    #[arg(long = "gpu-sweep", value_name = "STEP")]
    pub gpu_sweep: Option<usize>,
    #[command(flatten)]
    pub gpu: GpuArgs,
    #[command(flatten)]
    pub rope: RopeArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Md,
    Json,
}

/// One test: a prompt of `n_prompt` or a generation of `n_gen` tokens, after `n_depth`.
#[derive(Clone, Copy, Debug)]
struct Test {
    n_prompt: usize,
    n_gen: usize,
    n_depth: usize,
    n_batch: usize,
    n_threads: usize,
    n_gpu_layers: usize,
}

impl Test {
    fn name(&self) -> String {
        let base = if self.n_prompt > 0 {
            format!("pp{}", self.n_prompt)
        } else {
            format!("tg{}", self.n_gen)
        };
        if self.n_depth > 0 {
            format!("{base} @ d{}", self.n_depth)
        } else {
            base
        }
    }

    fn n_tokens(&self) -> usize {
        self.n_prompt + self.n_gen
    }
}

/// What the table's first columns say about the model, computed as llama-bench does:
/// size and parameters count every tensor in the file.
struct ModelInfo {
    filename: String,
    desc: String,
    size: u64,
    n_params: u64,
}

impl ModelInfo {
    fn of(args: &BenchArgs, file: &GgufFile) -> ModelInfo {
        let size = file.tensors().iter().map(|t| t.n_bytes()).sum();
        let n_params: u64 = file.tensors().iter().map(|t| t.n_elements()).sum();
        let arch = file
            .metadata()
            .get_str_opt(keys::GENERAL_ARCHITECTURE)
            .ok()
            .flatten()
            .unwrap_or("?");
        let params = if n_params < 1_000_000_000 {
            format!("{:.0}M", n_params as f64 / 1e6)
        } else {
            format!("{:.0}B", n_params as f64 / 1e9)
        };
        ModelInfo {
            filename: args.model.display().to_string(),
            desc: format!("{arch} {params} {}", file_type_name(file)),
            size,
            n_params,
        }
    }
}

/// llama.cpp's name for `general.file_type`, or the type holding the most weight bytes,
/// marked as guessed, when the key is absent.
fn file_type_name(file: &GgufFile) -> String {
    let id = file
        .metadata()
        .get_u32_opt(keys::GENERAL_FILE_TYPE)
        .ok()
        .flatten();
    let named = match id {
        Some(0) => "all F32",
        Some(1) => "F16",
        Some(2) => "Q4_0",
        Some(3) => "Q4_1",
        Some(7) => "Q8_0",
        Some(8) => "Q5_0",
        Some(9) => "Q5_1",
        Some(10) => "Q2_K - Medium",
        Some(11) => "Q3_K - Small",
        Some(12) => "Q3_K - Medium",
        Some(13) => "Q3_K - Large",
        Some(14) => "Q4_K - Small",
        Some(15) => "Q4_K - Medium",
        Some(16) => "Q5_K - Small",
        Some(17) => "Q5_K - Medium",
        Some(18) => "Q6_K",
        Some(32) => "BF16",
        Some(other) => return format!("file type {other}"),
        None => "",
    };
    if !named.is_empty() {
        return named.to_string();
    }
    let mut by_type: Vec<(GgmlType, u64)> = Vec::new();
    for t in file.tensors().iter().filter(|t| t.dims.len() > 1) {
        match by_type.iter_mut().find(|(ty, _)| *ty == t.ty) {
            Some((_, n)) => *n += t.n_bytes(),
            None => by_type.push((t.ty, t.n_bytes())),
        }
    }
    match by_type.iter().max_by_key(|(_, n)| *n) {
        Some((ty, _)) => format!("{ty} (guessed)"),
        None => "? (guessed)".into(),
    }
}

/// The timings of one test.
struct Result {
    test: Test,
    samples_ns: Vec<u64>,
    /// Where it ran: "CPU", or the GPU's backend when layers were offloaded.
    backend: String,
}

impl Result {
    fn samples_ts(&self) -> Vec<f64> {
        let n = self.test.n_tokens() as f64;
        self.samples_ns
            .iter()
            .map(|&ns| n * 1e9 / ns as f64)
            .collect()
    }
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.iter().sum::<f64>() / v.len() as f64
}

/// Sample standard deviation (n - 1), 0 for fewer than two samples, as llama-bench has it.
fn stdev(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return 0.0;
    }
    let m = mean(v);
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
}

fn tests(args: &BenchArgs, threads: &[usize], gpu_layers: &[usize]) -> Vec<Test> {
    let mut out = Vec::new();
    for &n_gpu_layers in gpu_layers {
        for &n_threads in threads {
            for &n_batch in &args.batch_size {
                for &n_depth in &args.n_depth {
                    let t = |n_prompt, n_gen| Test {
                        n_prompt,
                        n_gen,
                        n_depth,
                        n_batch,
                        n_threads,
                        n_gpu_layers,
                    };
                    out.extend(args.n_prompt.iter().filter(|&&p| p > 0).map(|&p| t(p, 0)));
                    out.extend(args.n_gen.iter().filter(|&&n| n > 0).map(|&n| t(0, n)));
                }
            }
        }
    }
    out
}

/// The `--gpu-layers` values to measure: the list, or the sweep over a model of
/// `n_layers` layers.
fn gpu_layers(args: &BenchArgs, n_layers: usize) -> Vec<usize> {
    match args.gpu_sweep {
        Some(step) => (0..n_layers)
            .step_by(step)
            .chain([n_layers, n_layers + 1])
            .collect(),
        None => args.gpu_layers.clone(),
    }
}

fn check(args: &BenchArgs) -> std::result::Result<Vec<usize>, String> {
    if args.repetitions == 0 {
        return Err("--repetitions must be at least 1".into());
    }
    if args.batch_size.contains(&0) {
        return Err("--batch-size must be at least 1".into());
    }
    if args.threads.contains(&0) {
        return Err("--threads must be at least 1".into());
    }
    if args.gpu_sweep == Some(0) {
        return Err("--gpu-sweep needs a step of at least 1".into());
    }
    if args.n_prompt.iter().chain(&args.n_gen).all(|&n| n == 0) {
        return Err("nothing to measure: give -p or -n a value above 0".into());
    }
    Ok(if args.threads.is_empty() {
        vec![std::thread::available_parallelism().map_or(1, |n| n.get())]
    } else {
        args.threads.clone()
    })
}

/// Feeds tokens to a session the way llama-bench does: random ids, the first of a fresh
/// context the BOS token when the model adds one.
struct Feeder {
    rng: Rng,
    n_vocab: u64,
    bos: Option<u32>,
}

impl Feeder {
    fn token(&mut self, first: bool) -> u32 {
        match self.bos {
            Some(b) if first => b,
            _ => self.rng.below(self.n_vocab) as u32,
        }
    }

    /// Processes `n` prompt tokens in batches of the session's batch size.
    fn prompt(&mut self, s: &mut Session, n: usize, n_batch: usize) -> CliResult {
        let mut done = 0;
        let mut batch = Vec::with_capacity(n_batch);
        while done < n {
            let k = n_batch.min(n - done);
            batch.clear();
            for i in 0..k {
                let first = done == 0 && i == 0 && s.n_past() == 0;
                batch.push(self.token(first));
            }
            s.forward(&batch, Logits::Last)?;
            done += k;
        }
        Ok(())
    }

    fn generate(&mut self, s: &mut Session, n: usize) -> CliResult {
        for _ in 0..n {
            let t = self.token(s.n_past() == 0);
            s.forward(&[t], Logits::Last)?;
        }
        Ok(())
    }
}

fn run_test(
    args: &BenchArgs,
    model: &Llama,
    gpu: Option<&Arc<Gpu>>,
    feeder: &mut Feeder,
    mut test: Test,
) -> std::result::Result<Result, Box<dyn std::error::Error>> {
    let n_ctx = (test.n_depth + test.n_tokens()).max(1);
    let mut s = Session::with_cache(model, n_ctx, test.n_batch, args.cache_type)?;
    if let Some(gpu) = gpu.filter(|_| test.n_gpu_layers > 0) {
        // The row says how many layers went, after --gpu-memory-limit.
        test.n_gpu_layers = args.gpu.offload(Some(gpu), &mut s, test.n_gpu_layers)?;
    }
    // An upload that failed left every layer on the CPU, and the row says so.
    let backend = match gpu {
        Some(gpu) if s.gpu_layers() > 0 => gpu.info.backend.clone(),
        _ => "CPU".to_string(),
    };
    let name = test.name();
    let timed = |s: &mut Session, f: &mut Feeder| -> CliResult {
        if test.n_prompt > 0 {
            f.prompt(s, test.n_prompt, test.n_batch)
        } else {
            f.generate(s, test.n_gen)
        }
    };
    if !args.no_warmup {
        if args.progress {
            eprintln!("bench: {name}, {} threads: warm-up", test.n_threads);
        }
        // llama-bench warms generation up with a single token. A GPU's clocks rise only
        // after some tenths of a second of work (the first of three timed 7B runs on an
        // H200 was 30% slower than the others), so with layers there the warm-up
        // generates as many tokens as the test.
        if test.n_prompt > 0 {
            feeder.prompt(&mut s, test.n_prompt, test.n_batch)?;
        } else {
            let warm = if s.gpu_layers() > 0 { test.n_gen } else { 1 };
            feeder.generate(&mut s, warm)?;
        }
    }
    let mut samples_ns = Vec::with_capacity(args.repetitions);
    for rep in 0..args.repetitions {
        s.reset();
        if test.n_depth > 0 {
            feeder.prompt(&mut s, test.n_depth, test.n_batch)?;
        }
        if args.progress {
            eprintln!(
                "bench: {name}, {} threads: run {}/{}",
                test.n_threads,
                rep + 1,
                args.repetitions
            );
        }
        let start = Instant::now();
        timed(&mut s, feeder)?;
        samples_ns.push(start.elapsed().as_nanos().max(1) as u64);
    }
    Ok(Result {
        test,
        samples_ns,
        backend,
    })
}

/// llama-bench's table; the `ngl` column shows when layers go to a GPU.
fn md_header(ngl: bool) -> String {
    let (name, rule) = if ngl { (" ngl |", " --: |") } else { ("", "") };
    format!(
        "| model                          |       size |     params | backend    | threads |{name}            test |                  t/s |\n\
         | ------------------------------ | ---------: | ---------: | ---------- | ------: |{rule} --------------: | -------------------: |"
    )
}

fn md_row(m: &ModelInfo, r: &Result, ngl: bool) -> String {
    let size = if m.size < 1 << 30 {
        format!("{:.2} MiB", m.size as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.2} GiB", m.size as f64 / (1u64 << 30) as f64)
    };
    let params = if m.n_params < 1_000_000_000 {
        format!("{:.2} M", m.n_params as f64 / 1e6)
    } else {
        format!("{:.2} B", m.n_params as f64 / 1e9)
    };
    let ts = r.samples_ts();
    let speed = format!("{:.2} ± {:.2}", mean(&ts), stdev(&ts));
    let ngl = if ngl {
        format!(" {:>3} |", r.test.n_gpu_layers)
    } else {
        String::new()
    };
    format!(
        "| {:<30} | {size:>10} | {params:>10} | {:<10} | {:>7} |{ngl} {:>15} | {speed:>20} |",
        m.desc,
        r.backend,
        r.test.n_threads,
        r.test.name()
    )
}

/// One test as llama-bench's JSON has it (same field names), plus what ropewalk adds.
fn json_row(args: &BenchArgs, m: &ModelInfo, r: &Result, cpu: &str, rope: &str) -> Json {
    let ts = r.samples_ts();
    let ns: Vec<f64> = r.samples_ns.iter().map(|&n| n as f64).collect();
    json!({
        "build": concat!("ropewalk ", env!("CARGO_PKG_VERSION")),
        "cpu_info": cpu,
        "kernels": kernels::init().map_or("?", |k| k.path.name()),
        "backends": r.backend,
        "n_gpu_layers": r.test.n_gpu_layers,
        "model_filename": m.filename,
        "model_type": m.desc,
        "model_size": m.size,
        "model_n_params": m.n_params,
        "n_batch": r.test.n_batch,
        "n_threads": r.test.n_threads,
        "n_prompt": r.test.n_prompt,
        "n_gen": r.test.n_gen,
        "n_depth": r.test.n_depth,
        "test": r.test.name(),
        "repack": !args.no_repack,
        "type_k": args.cache_type.to_string(),
        "type_v": args.cache_type.to_string(),
        "rope": rope,
        "repetitions": args.repetitions,
        "avg_ns": mean(&ns).round() as u64,
        "stddev_ns": stdev(&ns).round() as u64,
        "avg_ts": mean(&ts),
        "stddev_ts": stdev(&ts),
        "samples_ns": r.samples_ns,
        "samples_ts": ts,
    })
}

fn cpu_info() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

pub fn run(args: &BenchArgs) -> CliResult {
    let threads = check(args)?;
    let file = GgufFile::open(&args.model)?;
    let mut model = Llama::load_with(&file, !args.no_repack)?;
    model.rope.apply(&args.rope.overrides())?;
    eprintln!("{}", model.rope);
    let gpu_layers = gpu_layers(args, model.config.n_layers);
    let gpu = args
        .gpu
        .open(gpu_layers.iter().copied().max().unwrap_or(0))?;
    if let Some(gpu) = &gpu {
        eprintln!("GPU: {}", gpu.info);
    }
    let longest = tests(args, &threads, &gpu_layers)
        .iter()
        .map(|t| t.n_depth + t.n_tokens())
        .max()
        .unwrap_or(0);
    if let Some(warning) = model.rope.context_warning(longest) {
        eprintln!("warning: {warning}");
    }
    let info = ModelInfo::of(args, &file);
    let tokenizer = Tokenizer::from_metadata(file.metadata()).ok();
    let bos = tokenizer
        .as_ref()
        .filter(|t| t.add_bos_token())
        .and_then(|t| t.bos_id());
    let mut feeder = Feeder {
        rng: Rng::new(args.seed),
        n_vocab: model.config.n_vocab as u64,
        bos,
    };
    let json = args.json || args.output == Format::Json;
    let mut out = io::stdout().lock();
    let show_ngl = gpu_layers.iter().any(|&n| n > 0);
    if !json {
        super::finish_output(writeln!(out, "{}", md_header(show_ngl)))?;
    }
    let mut results = Vec::new();
    let mut pools: Vec<(usize, rayon::ThreadPool)> = Vec::new();
    for test in tests(args, &threads, &gpu_layers) {
        if !pools.iter().any(|(n, _)| *n == test.n_threads) {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(test.n_threads)
                .build()
                .map_err(|e| format!("cannot start {} threads: {e}", test.n_threads))?;
            pools.push((test.n_threads, pool));
        }
        let pool = &pools.iter().find(|(n, _)| *n == test.n_threads).unwrap().1;
        // The pool's threads may run the test, so its error crosses threads as text.
        let r = pool.install(|| {
            run_test(args, &model, gpu.as_ref(), &mut feeder, test).map_err(|e| e.to_string())
        })?;
        if !json {
            super::finish_output(
                writeln!(out, "{}", md_row(&info, &r, show_ngl)).and_then(|()| out.flush()),
            )?;
        }
        results.push(r);
    }
    if json {
        let (cpu, rope) = (cpu_info(), model.rope.to_string());
        let rows: Vec<Json> = results
            .iter()
            .map(|r| json_row(args, &info, r, &cpu, &rope))
            .collect();
        let text = serde_json::to_string_pretty(&rows)?;
        super::finish_output(writeln!(out, "{text}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_llama_benchs_sample_deviation() {
        assert_eq!(stdev(&[5.0]), 0.0);
        let s = stdev(&[1.0, 2.0, 3.0, 4.0]);
        assert!((s - 1.290_994_4).abs() < 1e-6, "{s}");
        assert_eq!(mean(&[1.0, 2.0, 3.0, 4.0]), 2.5);
    }

    #[test]
    fn test_names_follow_llama_bench() {
        let t = Test {
            n_prompt: 512,
            n_gen: 0,
            n_depth: 0,
            n_batch: 512,
            n_threads: 2,
            n_gpu_layers: 0,
        };
        assert_eq!(t.name(), "pp512");
        let g = Test {
            n_prompt: 0,
            n_gen: 128,
            n_depth: 256,
            ..t
        };
        assert_eq!(g.name(), "tg128 @ d256");
    }
}
