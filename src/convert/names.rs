//! Hugging Face tensor names and shapes to GGUF ones. Every tensor the config implies must
//! be in the weights with exactly the implied shape; every tensor in the weights must be
//! one of them (or a buffer transformers saves and nobody needs).

use super::config::HfConfig;
use super::error::ConvertError;
use super::permute::RowOrder;
use super::shards::{Shards, StoredTensor};

/// One tensor of the output and where it comes from.
#[derive(Clone, Debug)]
pub struct Planned<'a> {
    pub name: String,
    pub stored: &'a StoredTensor,
    /// GGUF order: innermost (row length) first.
    pub dims: Vec<u64>,
    pub order: RowOrder,
}

/// Hugging Face name, GGUF name, shape (outermost first), row order.
type Expected = (String, String, Vec<usize>, RowOrder);

fn expected(c: &HfConfig, with_output: bool) -> Vec<Expected> {
    let (d, ffn) = (c.hidden_size, c.intermediate_size);
    let interleave = RowOrder::Interleave {
        head_dim: c.head_dim,
    };
    let id = RowOrder::Identity;
    let mut v: Vec<Expected> = vec![(
        "model.embed_tokens.weight".into(),
        "token_embd.weight".into(),
        vec![c.vocab_size, d],
        id,
    )];
    for i in 0..c.n_layers {
        let hf = |s: &str| format!("model.layers.{i}.{s}.weight");
        let gg = |s: &str| format!("blk.{i}.{s}.weight");
        v.extend([
            (hf("input_layernorm"), gg("attn_norm"), vec![d], id),
            (
                hf("self_attn.q_proj"),
                gg("attn_q"),
                vec![c.q_dim(), d],
                interleave,
            ),
            (
                hf("self_attn.k_proj"),
                gg("attn_k"),
                vec![c.kv_dim(), d],
                interleave,
            ),
            (
                hf("self_attn.v_proj"),
                gg("attn_v"),
                vec![c.kv_dim(), d],
                id,
            ),
            (
                hf("self_attn.o_proj"),
                gg("attn_output"),
                vec![d, c.q_dim()],
                id,
            ),
            (hf("post_attention_layernorm"), gg("ffn_norm"), vec![d], id),
            (hf("mlp.gate_proj"), gg("ffn_gate"), vec![ffn, d], id),
            (hf("mlp.up_proj"), gg("ffn_up"), vec![ffn, d], id),
            (hf("mlp.down_proj"), gg("ffn_down"), vec![d, ffn], id),
        ]);
    }
    v.push((
        "model.norm.weight".into(),
        "output_norm.weight".into(),
        vec![d],
        id,
    ));
    if with_output {
        v.push((
            "lm_head.weight".into(),
            "output.weight".into(),
            vec![c.vocab_size, d],
            id,
        ));
    }
    v
}

/// Buffers that transformers once saved with the weights; they are recomputed from the
/// config and dropped, as llama.cpp's converter does.
fn is_ignored(name: &str) -> bool {
    name.ends_with(".rotary_emb.inv_freq")
}

pub const LM_HEAD: &str = "lm_head.weight";

/// The output tensors in file order. The output matrix is left out (tied to the token
/// embedding) when the config ties them or the weights have no `lm_head.weight`.
pub fn plan<'a>(c: &HfConfig, shards: &'a Shards) -> Result<Vec<Planned<'a>>, ConvertError> {
    let with_output = !c.tie_word_embeddings && shards.get(LM_HEAD).is_some();
    let expected = expected(c, with_output);
    let mut known: std::collections::HashSet<&str> =
        expected.iter().map(|e| e.0.as_str()).collect();
    if !with_output {
        known.insert(LM_HEAD);
    }
    for name in shards.names() {
        if !known.contains(name) && !is_ignored(name) {
            let t = shards.get(name).expect("listed");
            return Err(ConvertError::invalid(
                shards.file_of(t),
                format!("tensor '{name}' is not part of a {} model", c.architecture),
            ));
        }
    }
    expected
        .into_iter()
        .map(|(hf, name, shape, order)| {
            let stored = shards.get(&hf).ok_or_else(|| {
                ConvertError::invalid("weights", format!("tensor '{hf}' is missing"))
            })?;
            if stored.shape != shape {
                return Err(ConvertError::invalid(
                    shards.file_of(stored),
                    format!(
                        "tensor '{hf}' has shape {:?}, but config.json implies {shape:?}",
                        stored.shape
                    ),
                ));
            }
            Ok(Planned {
                name,
                stored,
                dims: shape.iter().rev().map(|&n| n as u64).collect(),
                order,
            })
        })
        .collect()
}
