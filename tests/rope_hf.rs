//! Every RoPE variant of tests/data/hf_reference, reproduced through run-time overrides
//! and through header metadata, on the exact path (f32 activations), to the tolerances
//! of the unscaled model: top-20 final logits within 2e-3, all 32 greedy tokens equal.

mod common;

use std::io::Write;
use std::path::PathBuf;

use common::hf::{reference, run_prompt};
use ropewalk::backend::cpu::matmul::Precision;
use ropewalk::gguf::{keys, GgufFile, GgufWriter, Metadata, TensorSpec, Value};
use ropewalk::model::rope::{Llama3Params, RopeConfig, RopeScaling};
use ropewalk::model::{Llama, RopeOverrides, ScalingKind};

/// A reference variant, the run-time overrides that give it, and the header keys that
/// give it.
type Variant = (&'static str, RopeOverrides, Vec<(String, Value)>);

fn variants() -> Vec<Variant> {
    let k = |s: &str| keys::arch_key("llama", s);
    let f32v = |v: f32| Value::F32(v);
    vec![
        ("base", RopeOverrides::default(), vec![]),
        (
            "linear4",
            RopeOverrides {
                scaling: Some(ScalingKind::Linear),
                scale: Some(4.0),
                ..Default::default()
            },
            vec![
                (k(keys::ROPE_SCALING_TYPE), Value::String("linear".into())),
                (k(keys::ROPE_SCALING_FACTOR), f32v(4.0)),
            ],
        ),
        (
            "ntk_alpha4",
            RopeOverrides {
                alpha: Some(4.0),
                ..Default::default()
            },
            vec![
                (k(keys::ROPE_FREQ_BASE), f32v(418293.66)),
                (keys::ROPEWALK_NTK_ALPHA.into(), f32v(4.0)),
            ],
        ),
        (
            "dynamic4",
            RopeOverrides {
                scaling: Some(ScalingKind::Dynamic),
                scale: Some(4.0),
                ..Default::default()
            },
            vec![
                (
                    keys::ROPEWALK_SCALING_TYPE.into(),
                    Value::String("dynamic".into()),
                ),
                (keys::ROPEWALK_SCALING_FACTOR.into(), f32v(4.0)),
            ],
        ),
        (
            "dynamic4_maxpos64",
            RopeOverrides {
                scaling: Some(ScalingKind::Dynamic),
                scale: Some(4.0),
                orig_ctx: Some(64),
                ..Default::default()
            },
            vec![
                (
                    keys::ROPEWALK_SCALING_TYPE.into(),
                    Value::String("dynamic".into()),
                ),
                (keys::ROPEWALK_SCALING_FACTOR.into(), f32v(4.0)),
                (k(keys::ROPE_SCALING_ORIG_CTX), Value::U32(64)),
            ],
        ),
        (
            "yarn4",
            RopeOverrides {
                scaling: Some(ScalingKind::Yarn),
                scale: Some(4.0),
                orig_ctx: Some(8192),
                ..Default::default()
            },
            vec![
                (k(keys::ROPE_SCALING_TYPE), Value::String("yarn".into())),
                (k(keys::ROPE_SCALING_FACTOR), f32v(4.0)),
                (k(keys::ROPE_SCALING_ORIG_CTX), Value::U32(8192)),
            ],
        ),
    ]
}

/// A copy of the test model with `entries` set in its header.
fn with_header(entries: &[(String, Value)]) -> (tempfile::TempDir, PathBuf) {
    let src = GgufFile::open(common::test_model()).unwrap();
    let mut m: Metadata = src.metadata().clone();
    for (key, value) in entries {
        m.set(key.clone(), value.clone());
    }
    let mut w = GgufWriter::new(m).unwrap();
    for t in src.tensors() {
        w.add_tensor(TensorSpec::new(t.name.clone(), t.ty, &t.dims))
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scaled.gguf");
    w.write_file(&path, |t, sink| -> ropewalk::gguf::Result<()> {
        sink.write_all(src.tensor(&t.name).unwrap().data).unwrap();
        Ok(())
    })
    .unwrap();
    (dir, path)
}

fn assert_matches_reference(model: &Llama, variant: &str, how: &str) {
    let expected = reference(&format!("{variant}.json"));
    for name in ["short", "long", "chat"] {
        let r = run_prompt(model, &expected["prompts"][name], Precision::Exact);
        assert!(
            r.max_logit_diff < 2e-3,
            "{variant} via {how}, {name}: top-20 logits differ by {}",
            r.max_logit_diff
        );
        assert_eq!(
            r.greedy_agree, 32,
            "{variant} via {how}, {name}: greedy diverges"
        );
    }
}

#[test]
fn every_variant_through_run_time_overrides() {
    let file = GgufFile::open(common::test_model()).unwrap();
    for (variant, overrides, _) in variants() {
        let mut model = Llama::load(&file).unwrap();
        model.rope.apply(&overrides).unwrap();
        assert_matches_reference(&model, variant, "run-time flags");
    }
}

#[test]
fn every_variant_through_header_metadata() {
    for (variant, _, entries) in variants() {
        let (_dir, path) = with_header(&entries);
        let file = GgufFile::open(&path).unwrap();
        let model = Llama::load(&file).unwrap();
        assert_matches_reference(&model, variant, "header metadata");
    }
}

#[test]
fn the_legacy_linear_key_is_read() {
    let (_dir, path) = with_header(&[(
        keys::arch_key("llama", keys::ROPE_SCALE_LINEAR),
        Value::F32(4.0),
    )]);
    let file = GgufFile::open(&path).unwrap();
    let model = Llama::load(&file).unwrap();
    assert_eq!(model.rope.scaling, RopeScaling::Linear { factor: 4.0 });
}

/// The frequencies each variant starts from equal transformers' `inv_freq` (computed by
/// torch in float32, hence the tolerance), and YaRN's cos/sin scale its attention scaling.
#[test]
fn frequency_tables_match_transformers() {
    let file = GgufFile::open(common::test_model()).unwrap();
    for (variant, overrides, _) in variants() {
        let expected = reference(&format!("{variant}.json"));
        let mut model = Llama::load(&file).unwrap();
        model.rope.apply(&overrides).unwrap();
        let want: Vec<f64> = expected["inv_freq_initial"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        // The table before any sequence outgrows the trained length.
        let got = model.rope.inv_freq(1);
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-6 * w.abs(),
                "{variant} pair {i}: {g} vs {w}"
            );
        }
        let mscale = expected["rope_attention_scaling"].as_f64().unwrap();
        assert!((model.rope.mscale() - mscale).abs() < 1e-12, "{variant}");
    }
}

/// Dynamic NTK's base at a given length, against the formula written out here.
#[test]
fn dynamic_ntk_grows_the_base_past_the_trained_length() {
    let config = RopeConfig {
        dims: 64,
        freq_base: 100000.0,
        scaling: RopeScaling::Dynamic {
            factor: 4.0,
            original_ctx: 64,
        },
        trained_ctx: 64,
        ntk_alpha: None,
    };
    assert_eq!(config.inv_freq(64), config.inv_freq(1), "unchanged up to L");
    let base = 100000.0 * (4.0f64 * 201.0 / 64.0 - 3.0).powf(64.0 / 62.0);
    let got = config.inv_freq(201);
    for (i, g) in got.iter().enumerate() {
        let want = base.powf(-2.0 * i as f64 / 64.0);
        assert!((g - want).abs() <= 1e-15 + 1e-12 * want, "pair {i}");
    }
}

/// Llama 3 scaling against Hugging Face's `_compute_llama3_parameters`, transcribed here
/// independently (per element, as its torch.where chain reads), for Llama 3.1's settings.
#[test]
fn llama3_factors_match_the_transformers_formula() {
    let (base, dims) = (500000.0f64, 128usize);
    let (factor, low, high, old_ctx) = (8.0f64, 1.0f64, 4.0f64, 8192.0f64);
    let params = Llama3Params {
        factor,
        low_freq_factor: low,
        high_freq_factor: high,
        original_ctx: 8192,
    };
    let config = RopeConfig {
        dims,
        freq_base: base,
        scaling: RopeScaling::FreqFactors {
            factors: params.divisors(base, dims),
            origin: "test".into(),
        },
        trained_ctx: 8192,
        ntk_alpha: None,
    };
    let got = config.inv_freq(1);
    let (low_wavelen, high_wavelen) = (old_ctx / low, old_ctx / high);
    let (mut scaled, mut kept, mut blended) = (0, 0, 0);
    for (i, &got) in got.iter().enumerate() {
        let inv_freq = 1.0 / base.powf((2 * i) as f64 / dims as f64);
        let wavelen = 2.0 * std::f64::consts::PI / inv_freq;
        let inv_freq_llama = if wavelen > low_wavelen {
            inv_freq / factor
        } else {
            inv_freq
        };
        let smooth = (old_ctx / wavelen - low) / (high - low);
        let smoothed = (1.0 - smooth) * inv_freq_llama / factor + smooth * inv_freq_llama;
        // ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
        let is_medium = (high_wavelen..=low_wavelen).contains(&wavelen);
        let want = if is_medium { smoothed } else { inv_freq_llama };
        match (is_medium, wavelen > low_wavelen) {
            (true, _) => blended += 1,
            (false, true) => scaled += 1,
            (false, false) => kept += 1,
        }
        assert!(
            (got - want).abs() <= 1e-12 * want,
            "pair {i}: {got} vs {want}"
        );
    }
    assert!(
        scaled > 0 && kept > 0 && blended > 0,
        "all three regimes are exercised"
    );
}
