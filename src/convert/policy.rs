//! Which type each tensor gets: the `--outtype` names, their `general.file_type`, and the
//! per-tensor choice, which follows llama.cpp's `llama_tensor_get_type` (without an
//! importance matrix) so that our q4_k_m is llama.cpp's Q4_K_M tensor for tensor.
//!
//! - Only weight matrices are quantized: one-dimensional tensors (norms, rope_freqs) and
//!   `*_norm.weight` keep their type (F32 from a converter).
//! - The output matrix, and the token embedding when it doubles as the output, get Q6_K
//!   under every quantized type but Q8_0 (Q8_0 when its rows do not fit 256-blocks).
//! - q4_k_m: attn_v and ffn_down get Q6_K in the first and last eighth of the layers and
//!   in every third layer between; everything else Q4_K.
//! - A type whose block does not divide the row length falls back: Q4_K to Q5_0, Q5_K to
//!   Q5_1, Q6_K to Q8_0, and to F16 when even 32 does not divide it.

use std::fmt;
use std::str::FromStr;

use crate::quant::GgmlType;

/// The file types `--outtype` and `--type` offer.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutType {
    F32,
    F16,
    BF16,
    Q8_0,
    Q4_0,
    Q4_1,
    Q4_K_M,
    Q6_K,
}

impl OutType {
    pub const ALL: [OutType; 8] = [
        OutType::F32,
        OutType::F16,
        OutType::BF16,
        OutType::Q8_0,
        OutType::Q4_0,
        OutType::Q4_1,
        OutType::Q4_K_M,
        OutType::Q6_K,
    ];

    pub fn name(self) -> &'static str {
        match self {
            OutType::F32 => "f32",
            OutType::F16 => "f16",
            OutType::BF16 => "bf16",
            OutType::Q8_0 => "q8_0",
            OutType::Q4_0 => "q4_0",
            OutType::Q4_1 => "q4_1",
            OutType::Q4_K_M => "q4_k_m",
            OutType::Q6_K => "q6_k",
        }
    }

    /// llama.cpp's `llama_ftype`, written as `general.file_type`.
    pub fn file_type(self) -> u32 {
        match self {
            OutType::F32 => 0,
            OutType::F16 => 1,
            OutType::Q4_0 => 2,
            OutType::Q4_1 => 3,
            OutType::Q8_0 => 7,
            OutType::Q4_K_M => 15,
            OutType::Q6_K => 18,
            OutType::BF16 => 32,
        }
    }

    /// The type of most weight matrices.
    pub fn default_type(self) -> GgmlType {
        match self {
            OutType::F32 => GgmlType::F32,
            OutType::F16 => GgmlType::F16,
            OutType::BF16 => GgmlType::BF16,
            OutType::Q8_0 => GgmlType::Q8_0,
            OutType::Q4_0 => GgmlType::Q4_0,
            OutType::Q4_1 => GgmlType::Q4_1,
            OutType::Q4_K_M => GgmlType::Q4_K,
            OutType::Q6_K => GgmlType::Q6_K,
        }
    }
}

impl FromStr for OutType {
    type Err = String;

    fn from_str(s: &str) -> Result<OutType, String> {
        OutType::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<&str> = OutType::ALL.iter().map(|t| t.name()).collect();
                format!("'{s}' is not one of {}", names.join(", "))
            })
    }
}

impl fmt::Display for OutType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Chooses tensor types in file order: the layer-dependent rules count attn_v and
/// ffn_down tensors as they come, as llama.cpp does.
pub struct TypeChooser {
    out: OutType,
    n_layers: usize,
    n_attn_v: usize,
    tied: bool,
    /// llama.cpp gives a 70B Llama (80 layers with grouped-query attention) Q5_K attn_v
    /// where it would use Q4_K: the matrix is small and sensitive.
    is_70b: bool,
    i_attn_v: usize,
    i_ffn_down: usize,
}

impl TypeChooser {
    /// `names`: every tensor of the file, in file order.
    pub fn new(out: OutType, names: &[&str], n_layers: usize, is_70b: bool) -> TypeChooser {
        TypeChooser {
            out,
            n_layers,
            n_attn_v: names.iter().filter(|n| is_attn_v(n)).count(),
            tied: !names.contains(&"output.weight"),
            is_70b,
            i_attn_v: 0,
            i_ffn_down: 0,
        }
    }

    /// The type of tensor `name` with `dims` (innermost first); tensors that are not
    /// quantized get `keep`.
    pub fn choose(&mut self, name: &str, dims: &[u64], keep: GgmlType) -> GgmlType {
        if !allows_quantization(name, dims) {
            return keep;
        }
        let default = self.out.default_type();
        if !default.is_quantized() {
            return default;
        }
        let row_len = dims[0];
        let mut ty = default;
        if name == "output.weight" || (self.tied && name == "token_embd.weight") {
            if !row_len.is_multiple_of(default.block_len() as u64) {
                ty = GgmlType::Q8_0;
            } else if ty != GgmlType::Q8_0 {
                ty = GgmlType::Q6_K;
            }
        } else if name == "token_embd.weight" {
            // An embedding that is not also the output keeps the default type.
        } else if is_attn_v(name) {
            if self.out == OutType::Q4_K_M && use_more_bits(self.i_attn_v, self.n_attn_v) {
                ty = GgmlType::Q6_K;
            }
            if self.is_70b && ty == GgmlType::Q4_K {
                ty = GgmlType::Q5_K;
            }
            self.i_attn_v += 1;
        } else if name.contains("ffn_down") {
            if self.out == OutType::Q4_K_M && use_more_bits(self.i_ffn_down, self.n_layers) {
                ty = GgmlType::Q6_K;
            }
            self.i_ffn_down += 1;
        }
        fallback(ty, row_len)
    }
}

fn is_attn_v(name: &str) -> bool {
    ["attn_v.weight", "attn_qkv.weight", "attn_kv_b.weight"]
        .iter()
        .any(|s| name.contains(s))
}

/// llama.cpp quantizes tensors of two or more dimensions named `*weight`, except norms.
fn allows_quantization(name: &str, dims: &[u64]) -> bool {
    let n_dims = dims.iter().rposition(|&d| d > 1).map_or(1, |i| i + 1);
    n_dims >= 2 && name.ends_with("weight") && !name.contains("_norm.weight")
}

fn use_more_bits(i_layer: usize, n_layers: usize) -> bool {
    i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2
}

fn fallback(ty: GgmlType, row_len: u64) -> GgmlType {
    if row_len.is_multiple_of(ty.block_len() as u64) {
        return ty;
    }
    let smaller = match ty {
        GgmlType::Q4_K => GgmlType::Q5_0,
        GgmlType::Q5_K => GgmlType::Q5_1,
        GgmlType::Q6_K => GgmlType::Q8_0,
        other => other,
    };
    if row_len.is_multiple_of(smaller.block_len() as u64) {
        smaller
    } else {
        GgmlType::F16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer_names(n_layers: usize, tied: bool) -> Vec<String> {
        let mut names = vec!["token_embd.weight".to_string()];
        for i in 0..n_layers {
            for t in [
                "attn_norm",
                "attn_q",
                "attn_k",
                "attn_v",
                "attn_output",
                "ffn_norm",
                "ffn_gate",
                "ffn_up",
                "ffn_down",
            ] {
                names.push(format!("blk.{i}.{t}.weight"));
            }
        }
        names.push("output_norm.weight".into());
        if !tied {
            names.push("output.weight".into());
        }
        names
    }

    fn choose_all(out: OutType, names: &[String], dim: u64, ffn: u64) -> Vec<GgmlType> {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let n_layers = names
            .iter()
            .filter(|n| n.ends_with("attn_q.weight"))
            .count();
        let mut c = TypeChooser::new(out, &refs, n_layers, false);
        names
            .iter()
            .map(|n| {
                let dims: Vec<u64> = if n.contains("norm") {
                    vec![dim]
                } else if n.contains("ffn_down") {
                    vec![ffn, dim]
                } else {
                    vec![dim, ffn]
                };
                c.choose(n, &dims, GgmlType::F32)
            })
            .collect()
    }

    #[test]
    fn q4_k_m_of_a_7b_shape() {
        let names = layer_names(32, false);
        let types = choose_all(OutType::Q4_K_M, &names, 4096, 11008);
        let of = |n: &str| types[names.iter().position(|x| x == n).unwrap()];
        assert_eq!(of("token_embd.weight"), GgmlType::Q4_K);
        assert_eq!(of("output.weight"), GgmlType::Q6_K);
        assert_eq!(of("blk.0.attn_norm.weight"), GgmlType::F32);
        // use_more_bits for 32 layers: 0..4, 28..32 and 4 + 3k + 2.
        let more: Vec<usize> = (0..32).filter(|&i| use_more_bits(i, 32)).collect();
        assert_eq!(
            more,
            [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]
        );
        for i in 0..32 {
            let want = if more.contains(&i) {
                GgmlType::Q6_K
            } else {
                GgmlType::Q4_K
            };
            assert_eq!(of(&format!("blk.{i}.attn_v.weight")), want);
            assert_eq!(of(&format!("blk.{i}.ffn_down.weight")), want);
            assert_eq!(of(&format!("blk.{i}.attn_q.weight")), GgmlType::Q4_K);
        }
    }

    #[test]
    fn rows_of_576_fall_back_as_llama_cpp_does() {
        // The test model: tied embeddings, rows of 576 (not a multiple of 256).
        let names = layer_names(30, true);
        let types = choose_all(OutType::Q4_K_M, &names, 576, 1536);
        let of = |n: &str| types[names.iter().position(|x| x == n).unwrap()];
        assert_eq!(of("token_embd.weight"), GgmlType::Q8_0);
        assert_eq!(of("blk.5.attn_q.weight"), GgmlType::Q5_0);
        assert_eq!(of("blk.0.attn_v.weight"), GgmlType::Q8_0);
        assert_eq!(of("blk.4.attn_v.weight"), GgmlType::Q5_0);
        assert_eq!(of("blk.5.attn_v.weight"), GgmlType::Q8_0);
        // ffn_down's rows are 1536 long: K-quants fit.
        assert_eq!(of("blk.0.ffn_down.weight"), GgmlType::Q6_K);
        assert_eq!(of("blk.4.ffn_down.weight"), GgmlType::Q4_K);

        let types = choose_all(OutType::Q4_0, &names, 576, 1536);
        assert_eq!(
            types[0],
            GgmlType::Q8_0,
            "tied embedding: Q6_K falls back to Q8_0"
        );
        assert!(types[1..]
            .iter()
            .all(|&t| t == GgmlType::Q4_0 || t == GgmlType::F32));
        let types = choose_all(OutType::Q8_0, &names, 576, 1536);
        assert!(types
            .iter()
            .all(|&t| t == GgmlType::Q8_0 || t == GgmlType::F32));
    }

    #[test]
    fn float_types_convert_every_matrix() {
        let names = layer_names(2, false);
        for (out, ty) in [
            (OutType::F16, GgmlType::F16),
            (OutType::BF16, GgmlType::BF16),
        ] {
            let types = choose_all(out, &names, 64, 96);
            for (n, t) in names.iter().zip(types) {
                let want = if n.contains("norm") {
                    GgmlType::F32
                } else {
                    ty
                };
                assert_eq!(t, want, "{n}");
            }
        }
    }

    #[test]
    fn odd_rows_fall_back_to_f16() {
        assert_eq!(fallback(GgmlType::Q4_K, 100), GgmlType::F16);
        assert_eq!(fallback(GgmlType::Q4_0, 100), GgmlType::F16);
        assert_eq!(fallback(GgmlType::Q4_0, 96), GgmlType::Q4_0);
    }

    #[test]
    fn names_parse() {
        assert_eq!("Q4_K_M".parse::<OutType>(), Ok(OutType::Q4_K_M));
        assert!("q5_k".parse::<OutType>().unwrap_err().contains("q4_k_m"));
    }
}
