//! `ropewalk random-model`: a model of a standard shape with random weights, written by the
//! binary alone, for benchmarks on machines that cannot receive a real model. It runs at
//! the speed of the real model of that shape and type; its text is noise.
//!
//! Tensor types follow llama-quantize for the chosen file type: the output matrix (the
//! token embedding when the two are tied) in Q6_K, and for Q4_K_M / Q5_K_M the attention
//! values and feed-forward down projections of half the layers (`use_more_bits`) in Q6_K;
//! a K-quant that does not fit a row length falls back to Q5_0 / Q5_1 / Q8_0 as there.
//! `--pure` uses the one type everywhere. Norm vectors are F32.
//!
//! The tokenizer is a minimal SentencePiece (`llama`) vocabulary: `<unk>`, `<s>`, `</s>`,
//! the 256 byte tokens, then `<pad_N>` tokens up to the shape's vocabulary size. Any text
//! encodes (as bytes), so `ropewalk run` and llama.cpp's tools work on the file.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, ValueEnum};
use rayon::prelude::*;

use super::random_blocks::{self, Rng};
use super::CliResult;
use ropewalk::gguf::{keys, Array, GgufError, GgufWriter, Metadata, TensorSpec, Value};
use ropewalk::quant::GgmlType;

#[derive(Args)]
pub struct RandomModelArgs {
    /// The architecture to copy.
    #[arg(long, value_enum)]
    pub shape: Shape,
    /// File type, as llama-quantize names them.
    #[arg(long = "type", value_enum, ignore_case = true, default_value = "q4_0")]
    pub ftype: FileType,
    /// Where to write the model.
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// Seed of the random weights; the same seed gives the same file.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Every matrix in the file type's own type (llama-quantize --pure).
    #[arg(long)]
    pub pure: bool,
    /// Keep only this many layers (a smaller model of the same width).
    #[arg(long)]
    pub layers: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shape {
    #[value(name = "smollm2-135m")]
    Smollm2_135m,
    #[value(name = "llama2-7b")]
    Llama2_7b,
    #[value(name = "llama3-8b")]
    Llama3_8b,
}

/// The hyper-parameters of a shape.
pub struct Dims {
    pub name: &'static str,
    pub dim: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub ffn_dim: usize,
    pub n_vocab: usize,
    pub tied: bool,
    pub rope_base: f32,
    pub context_length: usize,
}

impl Shape {
    pub fn dims(self) -> Dims {
        match self {
            Shape::Smollm2_135m => Dims {
                name: "SmolLM2-135M",
                dim: 576,
                n_layers: 30,
                n_heads: 9,
                n_kv_heads: 3,
                ffn_dim: 1536,
                n_vocab: 49152,
                tied: true,
                rope_base: 100_000.0,
                context_length: 8192,
            },
            Shape::Llama2_7b => Dims {
                name: "Llama-2-7B",
                dim: 4096,
                n_layers: 32,
                n_heads: 32,
                n_kv_heads: 32,
                ffn_dim: 11008,
                n_vocab: 32000,
                tied: false,
                rope_base: 10_000.0,
                context_length: 4096,
            },
            Shape::Llama3_8b => Dims {
                name: "Llama-3-8B",
                dim: 4096,
                n_layers: 32,
                n_heads: 32,
                n_kv_heads: 8,
                ffn_dim: 14336,
                n_vocab: 128_256,
                tied: false,
                rope_base: 500_000.0,
                context_length: 8192,
            },
        }
    }
}

/// llama.cpp's file types (`general.file_type`): a base type plus a mixture rule.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FileType {
    #[value(name = "f32")]
    F32,
    #[value(name = "f16")]
    F16,
    #[value(name = "bf16")]
    Bf16,
    #[value(name = "q4_0")]
    Q4_0,
    #[value(name = "q4_1")]
    Q4_1,
    #[value(name = "q5_0")]
    Q5_0,
    #[value(name = "q5_1")]
    Q5_1,
    #[value(name = "q8_0")]
    Q8_0,
    #[value(name = "q4_k_s")]
    Q4_K_S,
    #[value(name = "q4_k_m")]
    Q4_K_M,
    #[value(name = "q5_k_s")]
    Q5_K_S,
    #[value(name = "q5_k_m")]
    Q5_K_M,
    #[value(name = "q6_k")]
    Q6_K,
}

impl FileType {
    /// `general.file_type` (llama.cpp's `llama_ftype`).
    pub fn id(self) -> u32 {
        match self {
            FileType::F32 => 0,
            FileType::F16 => 1,
            FileType::Q4_0 => 2,
            FileType::Q4_1 => 3,
            FileType::Q8_0 => 7,
            FileType::Q5_0 => 8,
            FileType::Q5_1 => 9,
            FileType::Q4_K_S => 14,
            FileType::Q4_K_M => 15,
            FileType::Q5_K_S => 16,
            FileType::Q5_K_M => 17,
            FileType::Q6_K => 18,
            FileType::Bf16 => 32,
        }
    }

    pub fn base(self) -> GgmlType {
        match self {
            FileType::F32 => GgmlType::F32,
            FileType::F16 => GgmlType::F16,
            FileType::Bf16 => GgmlType::BF16,
            FileType::Q4_0 => GgmlType::Q4_0,
            FileType::Q4_1 => GgmlType::Q4_1,
            FileType::Q5_0 => GgmlType::Q5_0,
            FileType::Q5_1 => GgmlType::Q5_1,
            FileType::Q8_0 => GgmlType::Q8_0,
            FileType::Q4_K_S | FileType::Q4_K_M => GgmlType::Q4_K,
            FileType::Q5_K_S | FileType::Q5_K_M => GgmlType::Q5_K,
            FileType::Q6_K => GgmlType::Q6_K,
        }
    }

    fn is_quantized(self) -> bool {
        !matches!(self, FileType::F32 | FileType::F16 | FileType::Bf16)
    }
}

/// What a tensor is for, which is what llama-quantize's mixture rules look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    TokenEmbd,
    Output,
    Norm,
    AttnQ,
    AttnK,
    AttnV,
    AttnOutput,
    FfnGate,
    FfnUp,
    FfnDown,
}

/// One tensor of the model: `[cols, rows]` innermost first, or `[cols]` for a norm.
pub struct Planned {
    pub name: String,
    pub role: Role,
    pub layer: usize,
    pub dims: Vec<u64>,
}

pub fn plan(d: &Dims, n_layers: usize) -> Vec<Planned> {
    let head_dim = d.dim / d.n_heads;
    let (q_dim, kv_dim) = (d.n_heads * head_dim, d.n_kv_heads * head_dim);
    let one = |name: String, role, layer, dims: &[usize]| Planned {
        name,
        role,
        layer,
        dims: dims.iter().map(|&x| x as u64).collect(),
    };
    let mut t = vec![one(
        "token_embd.weight".into(),
        Role::TokenEmbd,
        0,
        &[d.dim, d.n_vocab],
    )];
    for l in 0..n_layers {
        let n = |s: &str| format!("blk.{l}.{s}.weight");
        t.push(one(n("attn_norm"), Role::Norm, l, &[d.dim]));
        t.push(one(n("attn_q"), Role::AttnQ, l, &[d.dim, q_dim]));
        t.push(one(n("attn_k"), Role::AttnK, l, &[d.dim, kv_dim]));
        t.push(one(n("attn_v"), Role::AttnV, l, &[d.dim, kv_dim]));
        t.push(one(n("attn_output"), Role::AttnOutput, l, &[q_dim, d.dim]));
        t.push(one(n("ffn_norm"), Role::Norm, l, &[d.dim]));
        t.push(one(n("ffn_gate"), Role::FfnGate, l, &[d.dim, d.ffn_dim]));
        t.push(one(n("ffn_up"), Role::FfnUp, l, &[d.dim, d.ffn_dim]));
        t.push(one(n("ffn_down"), Role::FfnDown, l, &[d.ffn_dim, d.dim]));
    }
    t.push(one("output_norm.weight".into(), Role::Norm, 0, &[d.dim]));
    if !d.tied {
        t.push(one(
            "output.weight".into(),
            Role::Output,
            0,
            &[d.dim, d.n_vocab],
        ));
    }
    t
}

/// llama-quantize's `use_more_bits`: the first and last eighth of the layers and every
/// third one between.
fn use_more_bits(i: usize, n: usize) -> bool {
    let (i, n) = (i as i64, n as i64);
    i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
}

/// The type llama-quantize gives a tensor (its `llama_tensor_get_type`, for the roles and
/// file types here).
pub fn tensor_type(
    ftype: FileType,
    pure: bool,
    tied: bool,
    t: &Planned,
    n_layers: usize,
) -> GgmlType {
    if t.role == Role::Norm {
        return GgmlType::F32;
    }
    let base = ftype.base();
    if !ftype.is_quantized() {
        return base;
    }
    let cols = t.dims[0] as usize;
    let mut ty = base;
    if !pure {
        let more = use_more_bits(t.layer, n_layers);
        ty = match t.role {
            Role::Output | Role::TokenEmbd if t.role == Role::Output || tied => {
                if !cols.is_multiple_of(base.block_len()) {
                    GgmlType::Q8_0
                } else if base != GgmlType::Q8_0 {
                    GgmlType::Q6_K
                } else {
                    base
                }
            }
            Role::AttnV | Role::FfnDown
                if more && matches!(ftype, FileType::Q4_K_M | FileType::Q5_K_M) =>
            {
                GgmlType::Q6_K
            }
            Role::AttnV if ftype == FileType::Q4_K_S && t.layer < 4 => GgmlType::Q5_K,
            Role::FfnDown if ftype == FileType::Q4_K_S && t.layer < n_layers / 8 => GgmlType::Q5_K,
            _ => base,
        };
    }
    if !cols.is_multiple_of(ty.block_len()) {
        ty = match ty {
            GgmlType::Q4_K => GgmlType::Q5_0,
            GgmlType::Q5_K => GgmlType::Q5_1,
            GgmlType::Q6_K => GgmlType::Q8_0,
            other => other,
        };
    }
    if !cols.is_multiple_of(ty.block_len()) {
        ty = GgmlType::F16;
    }
    ty
}

fn metadata(d: &Dims, n_layers: usize, ftype: FileType) -> Metadata {
    let mut m = Metadata::new();
    let arch = "llama";
    let key = |s| keys::arch_key(arch, s);
    m.set(keys::GENERAL_ARCHITECTURE, Value::String(arch.into()));
    m.set(
        keys::GENERAL_NAME,
        Value::String(format!("{} random weights", d.name)),
    );
    m.set(keys::GENERAL_FILE_TYPE, Value::U32(ftype.id()));
    if ftype.is_quantized() {
        m.set(keys::GENERAL_QUANTIZATION_VERSION, Value::U32(2));
    }
    let u32_of = |x: usize| Value::U32(x as u32);
    m.set(key(keys::CONTEXT_LENGTH), u32_of(d.context_length));
    m.set(key(keys::EMBEDDING_LENGTH), u32_of(d.dim));
    m.set(key(keys::BLOCK_COUNT), u32_of(n_layers));
    m.set(key(keys::FEED_FORWARD_LENGTH), u32_of(d.ffn_dim));
    m.set(key(keys::HEAD_COUNT), u32_of(d.n_heads));
    m.set(key(keys::HEAD_COUNT_KV), u32_of(d.n_kv_heads));
    m.set(key(keys::RMS_EPS), Value::F32(1e-5));
    m.set(key(keys::ROPE_FREQ_BASE), Value::F32(d.rope_base));
    m.set(key(keys::ROPE_DIMENSION_COUNT), u32_of(d.dim / d.n_heads));
    m.set(key(keys::VOCAB_SIZE), u32_of(d.n_vocab));

    let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    let mut types = vec![2i32, 3, 3];
    tokens.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
    types.extend([6; 256]);
    for id in tokens.len()..d.n_vocab {
        tokens.push(format!("<pad_{id}>"));
        types.push(1);
    }
    let n = tokens.len();
    m.set(keys::TOKENIZER_MODEL, Value::String("llama".into()));
    m.set(keys::TOKENIZER_TOKENS, Value::Array(Array::String(tokens)));
    m.set(
        keys::TOKENIZER_SCORES,
        Value::Array(Array::F32(vec![0.0; n])),
    );
    m.set(keys::TOKENIZER_TOKEN_TYPE, Value::Array(Array::I32(types)));
    m.set(keys::TOKENIZER_UNK_ID, Value::U32(0));
    m.set(keys::TOKENIZER_BOS_ID, Value::U32(1));
    m.set(keys::TOKENIZER_EOS_ID, Value::U32(2));
    m.set(keys::TOKENIZER_ADD_BOS, Value::Bool(true));
    m.set(keys::TOKENIZER_ADD_EOS, Value::Bool(false));
    m
}

/// Bytes generated per piece of work: big enough that threads rarely wait on each other,
/// small enough that a few in flight cost little memory.
const PIECE_BYTES: u64 = 8 << 20;

pub fn run(args: &RandomModelArgs) -> CliResult {
    let d = args.shape.dims();
    let n_layers = args.layers.unwrap_or(d.n_layers);
    if n_layers == 0 || n_layers > d.n_layers {
        return Err(format!(
            "--layers must be 1 to {} for {} (got {n_layers})",
            d.n_layers, d.name
        )
        .into());
    }
    let start = Instant::now();
    let planned = plan(&d, n_layers);
    let mut writer = GgufWriter::new(metadata(&d, n_layers, args.ftype))?;
    for t in &planned {
        let ty = tensor_type(args.ftype, args.pure, d.tied, t, n_layers);
        writer.add_tensor(TensorSpec::new(t.name.clone(), ty, &t.dims))?;
    }
    let total: u64 = writer.tensors().iter().map(|t| t.n_bytes()).sum();
    let n_params: u64 = writer.tensors().iter().map(|t| t.n_elements()).sum();
    eprintln!(
        "random-model: {} shape, {n_layers} layers, {:?}{}: {:.2} GiB, {:.2} M parameters",
        d.name,
        args.ftype,
        if args.pure { " (pure)" } else { "" },
        total as f64 / (1u64 << 30) as f64,
        n_params as f64 / 1e6
    );

    let mut done = 0u64;
    let mut shown = 0u64;
    let mut index = 0u64;
    // Reused from tensor to tensor: fresh 8 MiB buffers would cost a page fault per page.
    let mut bufs: Vec<Vec<u8>> = (0..2 * rayon::current_num_threads())
        .map(|_| Vec::with_capacity(PIECE_BYTES as usize))
        .collect();
    writer.write_file(&args.output, |t, sink| {
        let rows = t.n_rows();
        let row_bytes = t.n_bytes() / rows;
        let rows_per_piece = (PIECE_BYTES / row_bytes).max(1);
        let n_pieces = rows.div_ceil(rows_per_piece);
        let sigma = if t.dims.len() == 1 {
            0.0
        } else {
            1.0 / (t.row_len() as f32).sqrt()
        };
        let batch = bufs.len() as u64;
        let mut first = 0;
        while first < n_pieces {
            let last = (first + batch).min(n_pieces);
            let in_flight = &mut bufs[..(last - first) as usize];
            in_flight.par_iter_mut().enumerate().for_each(|(j, buf)| {
                let p = first + j as u64;
                let n_rows = rows_per_piece.min(rows - p * rows_per_piece);
                buf.resize((n_rows * row_bytes) as usize, 0);
                if sigma == 0.0 {
                    // Norm weights: ones, as a freshly initialized model has.
                    buf.chunks_exact_mut(4)
                        .for_each(|b| b.copy_from_slice(&1f32.to_le_bytes()));
                } else {
                    let mut rng = Rng::for_part(args.seed, index, p);
                    random_blocks::fill(t.ty, buf, sigma, &mut rng);
                }
            });
            for piece in in_flight.iter() {
                sink.write_all(piece).map_err(|e| GgufError::Io {
                    path: args.output.display().to_string(),
                    source: e,
                })?;
                done += piece.len() as u64;
            }
            let percent = done * 100 / total.max(1);
            if percent >= shown + 10 {
                shown = percent / 10 * 10;
                eprintln!("random-model: {shown}%");
            }
            first = last;
        }
        index += 1;
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "wrote {} in {secs:.1} s ({:.2} GB/s)",
        args.output.display(),
        total as f64 / secs / 1e9
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types_of(shape: Shape, ftype: FileType) -> Vec<(String, GgmlType)> {
        let d = shape.dims();
        plan(&d, d.n_layers)
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    tensor_type(ftype, false, d.tied, t, d.n_layers),
                )
            })
            .collect()
    }

    fn type_of(types: &[(String, GgmlType)], name: &str) -> GgmlType {
        types.iter().find(|(n, _)| n == name).unwrap().1
    }

    #[test]
    fn q4_0_of_llama2_7b_is_llama_quantizes_mix() {
        let t = types_of(Shape::Llama2_7b, FileType::Q4_0);
        assert_eq!(type_of(&t, "output.weight"), GgmlType::Q6_K);
        assert_eq!(type_of(&t, "token_embd.weight"), GgmlType::Q4_0);
        assert_eq!(type_of(&t, "blk.5.ffn_down.weight"), GgmlType::Q4_0);
        assert_eq!(type_of(&t, "blk.5.attn_norm.weight"), GgmlType::F32);
    }

    #[test]
    fn q4_k_m_gives_half_the_layers_more_bits() {
        let t = types_of(Shape::Llama2_7b, FileType::Q4_K_M);
        let six = (0..32)
            .filter(|l| type_of(&t, &format!("blk.{l}.ffn_down.weight")) == GgmlType::Q6_K)
            .count();
        assert_eq!(six, 16);
        assert_eq!(type_of(&t, "blk.0.attn_v.weight"), GgmlType::Q6_K);
        assert_eq!(type_of(&t, "blk.4.attn_v.weight"), GgmlType::Q4_K);
        assert_eq!(type_of(&t, "blk.6.attn_v.weight"), GgmlType::Q6_K);
        assert_eq!(type_of(&t, "blk.4.attn_q.weight"), GgmlType::Q4_K);
        assert_eq!(type_of(&t, "token_embd.weight"), GgmlType::Q4_K);
        assert_eq!(type_of(&t, "output.weight"), GgmlType::Q6_K);
    }

    #[test]
    fn rows_of_576_fall_back_as_llama_quantize_does() {
        // SmolLM2's width is not a multiple of 256: its K-quant files are mostly Q5_0.
        let t = types_of(Shape::Smollm2_135m, FileType::Q4_K_M);
        assert_eq!(type_of(&t, "token_embd.weight"), GgmlType::Q8_0);
        assert_eq!(type_of(&t, "blk.4.attn_q.weight"), GgmlType::Q5_0);
        assert_eq!(type_of(&t, "blk.0.attn_v.weight"), GgmlType::Q8_0);
        assert_eq!(type_of(&t, "blk.0.ffn_down.weight"), GgmlType::Q6_K);
        assert_eq!(type_of(&t, "blk.4.ffn_down.weight"), GgmlType::Q4_K);
        let t = types_of(Shape::Smollm2_135m, FileType::Q4_0);
        assert_eq!(type_of(&t, "token_embd.weight"), GgmlType::Q8_0);
        assert_eq!(type_of(&t, "blk.4.attn_q.weight"), GgmlType::Q4_0);
    }

    fn totals(shape: Shape, ftype: FileType) -> (u64, u64) {
        let d = shape.dims();
        plan(&d, d.n_layers).iter().fold((0, 0), |(e, b), t| {
            let n: u64 = t.dims.iter().product();
            let ty = tensor_type(ftype, false, d.tied, t, d.n_layers);
            (e + n, b + ty.bytes_for(n).unwrap())
        })
    }

    #[test]
    fn shapes_have_their_models_parameter_counts() {
        // Llama-2-7B's and Llama-3-8B's published counts; SmolLM2's as its GGUF files have it.
        assert_eq!(totals(Shape::Llama2_7b, FileType::Q4_0).0, 6_738_415_616);
        assert_eq!(totals(Shape::Llama3_8b, FileType::Q4_0).0, 8_030_261_248);
        assert_eq!(totals(Shape::Smollm2_135m, FileType::Q4_0).0, 134_515_008);
        // llama.cpp's Llama-2-7B Q4_0: 3.56 GiB.
        assert_eq!(totals(Shape::Llama2_7b, FileType::Q4_0).1, 3_825_065_984);
    }
}
