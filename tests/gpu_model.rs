//! The test model with layers on the GPU (lavapipe in CI) against the Hugging Face
//! reference, as the CPU's exact path is checked in tests/forward_hf.rs and
//! tests/rope_hf.rs: every split of the layers between CPU and GPU gives the reference's
//! 32 greedy tokens and its top-20 final logits within 2e-3, for the base model and
//! with YaRN scaling.

mod common;

use std::sync::Arc;

use common::hf::{reference, run_prompt_in};
use ropewalk::backend::cpu::matmul::Precision;
use ropewalk::backend::wgpu::ops::PositionSplit;
use ropewalk::backend::wgpu::Gpu;
use ropewalk::gguf::GgufFile;
use ropewalk::model::kv_cache::CacheType;
use ropewalk::model::{Llama, Logits, RopeOverrides, ScalingKind, Session};
use ropewalk::sample::{argmax, Next, Sampler, SamplerConfig};

fn gpu() -> Arc<Gpu> {
    Arc::new(common::gpu::open())
}

/// Runs the reference's prompts with the last `ngl` layers on the GPU (the output layer
/// too past the layer count), on the exact path with an f32 KV cache.
fn check(model: &Llama, gpu: &Arc<Gpu>, variant: &str, ngl: usize) {
    let expected = reference(&format!("{variant}.json"));
    let mut s = Session::with_cache(model, 512, 512, CacheType::F32).unwrap();
    s.precision = Precision::Exact;
    let offload = s
        .offload(gpu.clone(), ngl, &mut |_, _| {})
        .unwrap()
        .unwrap();
    assert_eq!(offload.layers, ngl.min(model.config.n_layers));
    assert_eq!(offload.output, ngl > model.config.n_layers);
    // One prompt per split keeps lavapipe's share of CI short; tests/forward_hf.rs runs
    // them all on the CPU.
    let r = run_prompt_in(&mut s, &expected["prompts"]["short"]);
    assert!(
        r.max_logit_diff < 2e-3,
        "{variant} -ngl {ngl}: top-20 logits differ by {}",
        r.max_logit_diff
    );
    assert_eq!(
        r.greedy_agree, 32,
        "{variant} -ngl {ngl}: greedy tokens diverge"
    );
}

/// A session of 256 positions in batches of `n_batch` on the exact path, with an f32 KV
/// cache and the last `ngl` layers on the GPU.
fn exact_session<'m, 'a>(
    model: &'m Llama<'a>,
    gpu: &Arc<Gpu>,
    n_batch: usize,
    ngl: usize,
) -> Session<'m, 'a> {
    let mut s = Session::with_cache(model, 256, n_batch, CacheType::F32).unwrap();
    s.precision = Precision::Exact;
    s.offload(gpu.clone(), ngl, &mut |_, _| {}).unwrap();
    s
}

fn largest_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn every_split_matches_the_reference() {
    let file = GgufFile::open(common::test_model()).unwrap();
    let gpu = gpu();
    let mut model = Llama::load(&file).unwrap();
    let n = model.config.n_layers;
    for ngl in [1, n / 2, n, n + 1] {
        check(&model, &gpu, "base", ngl);
    }
    model
        .rope
        .apply(&RopeOverrides {
            scaling: Some(ScalingKind::Yarn),
            scale: Some(4.0),
            orig_ctx: Some(8192),
            ..Default::default()
        })
        .unwrap();
    for ngl in [1, n / 2, n, n + 1] {
        check(&model, &gpu, "yarn4", ngl);
    }
}

#[test]
fn one_token_attention_split_over_workgroups_matches_the_reference() {
    // Parts of four positions or more: the one-token steps after the short prompt take
    // one to nine parts a head, so the segment records new commands as the count grows.
    let file = GgufFile::open(common::test_model()).unwrap();
    let model = Llama::load(&file).unwrap();
    let mut gpu = common::gpu::open();
    gpu.attention_split = PositionSplit::new(4);
    check(&model, &Arc::new(gpu), "base", model.config.n_layers + 1);
}

#[test]
fn quantized_path_on_the_gpu_stays_close_to_transformers() {
    // Everything on the GPU, one-token steps through 8-bit activations and integer dot
    // products, an f16 cache: held to what the CPU's quantized path is held to
    // (tests/forward_hf.rs).
    let file = GgufFile::open(common::test_model()).unwrap();
    let model = Llama::load(&file).unwrap();
    let gpu = gpu();
    let expected = reference("base.json");
    let mut s = Session::new(&model, 512, 512);
    assert_eq!(s.precision, Precision::Quantized);
    let offload = s.offload(gpu, 99, &mut |_, _| {}).unwrap().unwrap();
    // Every norm but the output's folds into the products around it, and every SwiGLU
    // into its gate and up product (all Q4_1).
    assert_eq!(offload.folded_norms, 2 * model.config.n_layers);
    assert_eq!(offload.folded_swiglu, model.config.n_layers);
    let r = run_prompt_in(&mut s, &expected["prompts"]["short"]);
    eprintln!(
        "max top-20 logit diff {:.4}, greedy agree {}/32, teacher-forced {}/32",
        r.max_logit_diff, r.greedy_agree, r.forced_agree
    );
    assert!(r.max_logit_diff < 0.5, "{}", r.max_logit_diff);
    assert!(r.final_argmax_matches, "final argmax differs");
    assert!(r.forced_agree >= 28, "teacher-forced {}/32", r.forced_agree);
}

#[test]
fn scoring_every_position_on_the_gpu_matches_the_cpu() {
    // Logits::All through the output layer on the GPU (the perplexity path), in batches
    // of 100 tokens: the output layer runs twice a step, 64 rows then 36.
    let file = GgufFile::open(common::test_model()).unwrap();
    let model = Llama::load(&file).unwrap();
    let gpu = gpu();
    let tokens = common::hf::ids(&reference("base.json")["prompts"]["long"]["ids"]);
    let logits = |ngl: usize| {
        let mut s = exact_session(&model, &gpu, 100, ngl);
        s.forward(&tokens, Logits::All).unwrap().to_vec()
    };
    let worst = largest_difference(&logits(0), &logits(99));
    assert!(worst < 5e-3, "largest logit difference {worst}");
}

#[test]
fn a_prompt_in_small_batches_matches_the_cpu() {
    // Batches of three tokens: every step before the prompt's last brings nothing back,
    // so nothing waits for the GPU between them, and the step inputs' two slots
    // (inputs.rs) are written again while the steps that copied from them may still be
    // queued; one-token steps follow. With the output layer on the GPU and without it.
    let file = GgufFile::open(common::test_model()).unwrap();
    let model = Llama::load(&file).unwrap();
    let gpu = gpu();
    let tokens = common::hf::ids(&reference("base.json")["prompts"]["long"]["ids"]);
    let logits = |ngl: usize| {
        let mut s = exact_session(&model, &gpu, 3, ngl);
        let mut all = s.forward(&tokens[..40], Logits::Last).unwrap().to_vec();
        for _ in 0..4 {
            let next = argmax(&all[all.len() - model.config.n_vocab..]);
            all.extend(s.forward(&[next], Logits::Last).unwrap());
        }
        all
    };
    let cpu = logits(0);
    for ngl in [model.config.n_layers / 2, 99] {
        let worst = largest_difference(&cpu, &logits(ngl));
        assert!(worst < 5e-3, "-ngl {ngl}: largest logit difference {worst}");
    }
}

#[test]
fn losing_the_gpu_mid_run_goes_on_with_the_cpu() {
    // The GPU fails at the sixth generated token: the CPU recomputes the conversation's
    // keys and values and the greedy text goes on as it would have on the CPU alone.
    let file = GgufFile::open(common::test_model()).unwrap();
    let model = Llama::load(&file).unwrap();
    let gpu = gpu();
    let prompt = common::hf::ids(&reference("base.json")["prompts"]["short"]["ids"]);
    let greedy = |ngl: usize, fail_at: Option<usize>| {
        let mut s = Session::with_cache(&model, 256, 4, CacheType::F32).unwrap();
        s.precision = Precision::Exact;
        s.offload(gpu.clone(), ngl, &mut |_, _| {}).unwrap();
        let mut next = argmax(s.forward(&prompt, Logits::Last).unwrap());
        let mut out = vec![next];
        for i in 0..10 {
            if Some(i) == fail_at {
                s.fail_next_gpu_step();
            }
            next = argmax(s.forward(&[next], Logits::Last).unwrap());
            out.push(next);
        }
        (out, s.gpu_layers())
    };
    let (cpu, _) = greedy(0, None);
    let (survived, layers_left) = greedy(16, Some(5));
    assert_eq!(layers_left, 0, "the GPU segment is dropped");
    assert_eq!(survived, cpu);

    let mut s = Session::with_cache(&model, 64, 4, CacheType::F32).unwrap();
    s.offload(gpu.clone(), 99, &mut |_, _| {}).unwrap();
    s.gpu_fallback = false;
    s.fail_next_gpu_step();
    let err = s.forward(&prompt, Logits::Last).unwrap_err();
    assert!(err.to_string().contains("stopped answering"), "{err}");
}

/// With the output layer on the GPU, the steps of a generation bring back shortlists of
/// the logits, and the sampler picks the same tokens from them as from the whole rows:
/// greedy, and llama.cpp's default chain with a repetition penalty, whose shortlists grow
/// with the window. A list that will not do brings the row back instead.
#[test]
fn shortlists_from_the_gpu_pick_what_the_whole_logits_pick() {
    let file = GgufFile::open(common::test_model()).unwrap();
    let model = Llama::load(&file).unwrap();
    let gpu = gpu();
    let prompt = common::hf::ids(&reference("base.json")["prompts"]["short"]["ids"]);
    let configs = [
        SamplerConfig::greedy(),
        SamplerConfig {
            repeat_penalty: 1.1,
            temperature: 1.0,
            ..SamplerConfig::default()
        },
    ];
    for cfg in configs {
        // At step SPOILED the list counts as overflowed, and the step reads the row.
        const SPOILED: usize = 5;
        let run = |shortlists: bool| {
            let mut s = Session::with_cache(&model, 256, 32, CacheType::F16).unwrap();
            // lavapipe runs the exact path's kernels faster than the folded ones.
            s.precision = Precision::Exact;
            s.offload(gpu.clone(), 99, &mut |_, _| {}).unwrap();
            let mut sampler = Sampler::new(cfg.clone());
            let mut history = prompt.clone();
            let (mut tokens, mut row) = (Vec::new(), Vec::new());
            let mut feed = prompt.clone();
            for step in 0..16 {
                let k = sampler.shortlist(&history).filter(|_| shortlists);
                if step == SPOILED {
                    s.spoil_next_gpu_shortlist();
                }
                let next = s.forward_next(&feed, k).unwrap();
                match &next {
                    Next::All(logits) if step == SPOILED => row = logits.to_vec(),
                    Next::All(_) => assert!(!shortlists, "step {step}"),
                    Next::Shortlist(_) => assert!(shortlists && step != SPOILED),
                }
                let t = sampler.sample_next(next, &history);
                history.push(t);
                tokens.push(t);
                feed = vec![t];
            }
            (tokens, row, s.gpu_shortlists())
        };
        let (whole, whole_row, none) = run(false);
        let (listed, spoiled_row, served) = run(true);
        assert_eq!((none, served), (0, 15));
        assert_eq!(listed, whole, "{cfg:?}");
        let bits = |row: &[f32]| row.iter().map(|l| l.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&spoiled_row),
            bits(&whole_row),
            "the row read in its place"
        );
    }
}

/// What `--gpu-memory-limit` reckons an offload takes is what the offload makes, for
/// splits with and without the output layer, both precisions, both cache types and
/// batches of one to 512 tokens.
#[test]
fn an_offload_makes_what_its_footprint_says() {
    let file = GgufFile::open(common::test_model()).unwrap();
    let model = Llama::load(&file).unwrap();
    let gpu = gpu();
    let n = model.config.n_layers;
    let cases = [
        (1, CacheType::F32, Precision::Exact, 64, 1),
        (n / 2, CacheType::F16, Precision::Quantized, 300, 16),
        (n, CacheType::F32, Precision::Quantized, 100, 7),
        (n + 1, CacheType::F16, Precision::Quantized, 512, 512),
    ];
    for (ngl, cache, precision, n_ctx, n_batch) in cases {
        let mut s = Session::with_cache(&model, n_ctx, n_batch, cache).unwrap();
        s.precision = precision;
        let footprint = s.gpu_footprint(&gpu);
        let before = gpu.bytes_created();
        s.offload(gpu.clone(), ngl, &mut |_, _| {}).unwrap();
        let made = gpu.bytes_created() - before;
        assert_eq!(
            made,
            footprint.bytes(ngl),
            "-ngl {ngl}, {cache:?} cache, {precision:?}, context {n_ctx}, batch {n_batch}"
        );
    }
}

/// `--gpu-memory-limit` offloads the last layers that fit, and the text is the CPU's.
#[test]
fn a_memory_limit_offloads_the_layers_that_fit() {
    let model = common::test_model();
    let run = |extra: &[&str]| {
        let m = model.to_str().unwrap();
        let mut args = vec!["run", "-m", m, "-p", "The capital of France is"];
        args.extend(["-n", "8", "--temp", "0", "-c", "256", "-b", "32"]);
        args.extend(extra);
        let device = common::gpu::device_args();
        args.extend(device.iter().map(String::as_str));
        let o = common::cli::ropewalk(&args);
        common::cli::assert_ok(&o);
        (common::cli::stdout(&o), common::cli::stderr(&o))
    };
    let (cpu, _) = run(&[]);
    let (limited, err) = run(&["-ngl", "99", "--gpu-memory-limit", "30MiB"]);
    assert_eq!(limited, cpu);
    let said = err
        .lines()
        .find(|l| l.starts_with("--gpu-memory-limit 30.0 MiB: offloading "))
        .unwrap_or_else(|| panic!("no word of the limit in {err}"));
    let layers: usize = said["--gpu-memory-limit 30.0 MiB: offloading ".len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{said}"));
    assert!((1..30).contains(&layers), "{said}");
    assert!(
        err.contains(&format!("offloaded {layers}/30 layers to")),
        "{err}"
    );

    // A limit that holds no layer runs on the CPU, or stops with --gpu-required.
    let (none, err) = run(&["-ngl", "99", "--gpu-memory-limit", "1K"]);
    assert_eq!(none, cpu);
    assert!(
        err.contains("holds no layer") && !err.contains("offloaded"),
        "{err}"
    );
    let required = ["-ngl", "99", "--gpu-memory-limit", "1K", "--gpu-required"];
    let m = model.to_str().unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ropewalk"))
        .args(["run", "-m", m, "-p", "x"])
        .args(required)
        .args(common::gpu::device_args())
        // the Vulkan loader's complaint about a missing runtime folder is an "error:" line
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .expect("run ropewalk");
    common::cli::assert_fails(&o, "holds no layer");
}

/// `ropewalk run` of the test model on `prompt` with `args`, with `env` set where one is
/// given: its text and its log.
fn run_test_model(prompt: &str, args: &[&str], env: Option<(&str, &str)>) -> (String, String) {
    let model = common::test_model();
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_ropewalk"));
    c.args(["run", "-m", model.to_str().unwrap(), "-p", prompt])
        .args(args)
        .args(common::gpu::device_args())
        // the Vulkan loader's complaint about a missing runtime folder is an "error:" line
        .env("XDG_RUNTIME_DIR", std::env::temp_dir());
    if let Some((name, value)) = env {
        c.env(name, value);
    }
    let o = c.output().expect("run ropewalk");
    common::cli::assert_ok(&o);
    (common::cli::stdout(&o), common::cli::stderr(&o))
}

/// `ROPEWALK_GPU_SKIP` (for measuring what kernels cost) leaves out exactly the kernels
/// its prefixes name: none named, the tokens are the plain run's; the products named, the
/// run still ends well but its tokens are not the model's.
#[test]
fn leaving_kernels_out_skips_only_those_named() {
    let run = |skip: Option<&str>| {
        let args = ["-n", "8", "--temp", "0", "-ngl", "99"];
        let env = skip.map(|skip| ("ROPEWALK_GPU_SKIP", skip));
        run_test_model("The capital of France is", &args, env).0
    };
    let plain = run(None);
    assert_eq!(run(Some("no_such_kernel,")), plain);
    assert_ne!(run(Some("matmul")), plain);
}

/// `run` with the whole model offloaded samples from the GPU's shortlists, and says so:
/// the same text as from whole rows (`ROPEWALK_GPU_NO_SHORTLIST`), greedy and sampled.
#[test]
fn run_samples_from_the_gpu_s_shortlists() {
    let run = |sampling: &[&str], shortlists: bool| {
        let args = [&["-n", "8", "-c", "256", "-ngl", "99"][..], sampling].concat();
        let env = (!shortlists).then_some(("ROPEWALK_GPU_NO_SHORTLIST", "1"));
        run_test_model("Once upon a time", &args, env)
    };
    let said = "sampled from the GPU's shortlists of the logits: 8 steps";
    for sampling in [
        &["--temp", "0"][..],
        &["--seed", "7", "--repeat-penalty", "1.1"],
    ] {
        let (listed, err) = run(sampling, true);
        assert!(err.contains(said), "{err}");
        let (whole, err) = run(sampling, false);
        assert!(!err.contains("shortlists"), "{err}");
        assert_eq!(listed, whole, "{sampling:?}");
    }
}

/// `ROPEWALK_GPU_PROFILE` reports the host's and the kernels' time per step, and does not
/// change the text.
#[test]
fn a_profiled_run_says_where_its_steps_go_and_makes_the_same_text() {
    let run = |profiled: bool| {
        let args = ["-n", "6", "-c", "256", "-ngl", "99", "--temp", "0"];
        let env = profiled.then_some(("ROPEWALK_GPU_PROFILE", "1"));
        run_test_model("Once upon a time", &args, env)
    };
    let (text, err) = run(true);
    // the prompt's step, then five of one token
    for said in [
        "host time per step: submitting ",
        " us; between one-token steps ",
        "GPU time per step over 6 steps: ",
        " x attention",
    ] {
        assert!(err.contains(said), "{said:?} in {err}");
    }
    assert_eq!(text, run(false).0);
}

/// A software renderer (lavapipe, WARP) multiplies far slower than the CPU path: `-ngl`
/// takes one only where `--gpu-device` names it, and otherwise runs on the CPU with a
/// warning, or stops with `--gpu-required`.
#[test]
fn a_software_renderer_is_taken_only_when_named() {
    let adapters = ropewalk::backend::wgpu::adapters();
    assert!(!adapters.is_empty(), "the GPU tests need a Vulkan driver");
    if adapters.iter().any(|a| !a.software) {
        let gpu = common::gpu::open();
        assert!(!gpu.info.software, "{} was taken first", gpu.info);
        return;
    }
    let model = common::test_model();
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ropewalk"))
            .args(["run", "-m", model.to_str().unwrap(), "-p", "The capital of"])
            .args(["-n", "4", "--temp", "0", "-c", "256"])
            .args(extra)
            // the Vulkan loader's complaint about a missing runtime folder is an "error:" line
            .env("XDG_RUNTIME_DIR", std::env::temp_dir())
            .output()
            .expect("run ropewalk")
    };
    let cpu = run(&[]);
    common::cli::assert_ok(&cpu);

    let unnamed = run(&["-ngl", "99"]);
    common::cli::assert_ok(&unnamed);
    let err = common::cli::stderr(&unnamed);
    assert!(
        err.contains("warning: no GPU adapter, only the software renderer ")
            && err.contains("; running on the CPU")
            && !err.contains("offloaded"),
        "{err}"
    );
    assert_eq!(common::cli::stdout(&unnamed), common::cli::stdout(&cpu));

    let required = run(&["-ngl", "99", "--gpu-required"]);
    common::cli::assert_fails(&required, "only the software renderer");

    let index = adapters[0].index.to_string();
    let named = run(&["-ngl", "99", "--gpu-device", &index]);
    common::cli::assert_ok(&named);
    let err = common::cli::stderr(&named);
    assert!(
        err.contains("offloaded 30/30 layers and the output layer to "),
        "{err}"
    );
}
