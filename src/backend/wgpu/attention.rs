//! The attention ops: how a KV cache on the GPU stores its values, the cache write of a
//! batch (`rope_store`), the causal attention over the cache, and how one token's
//! positions are split over workgroups and merged (`PositionSplit`).

use super::kernel::{Grid, PartedHeads, Variants};
use super::ops::{
    activations, combine_define, shader_variant, single_kernel, with_copy, Input, Kernel,
    ShaderVariant,
};
use super::pipelines::Access;
use super::Gpu;

use Access::{Read as R, ReadWrite as RW};

/// How a GPU KV cache stores values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvType {
    F32,
    /// Two f16 to a word; any adapter reads them (no shader-f16 feature needed).
    F16,
}

impl KvType {
    pub fn bytes_per_value(self) -> usize {
        match self {
            KvType::F32 => 4,
            KvType::F16 => 2,
        }
    }

    /// The kv_store shader's defines: how a pair of values is written.
    fn store_defines(self) -> [(&'static str, String); 2] {
        let (word, store) = match self {
            KvType::F32 => ("vec2<f32>", "return kv;"),
            KvType::F16 => ("u32", "return pack2x16float(kv);"),
        };
        [("KV_WORD", word.into()), ("KV_STORE", store.into())]
    }

    /// The attention shader's defines: how it reads eight key values and four values,
    /// writes eight of each, and rounds a value as the cache does.
    fn kv_defines(self) -> [(&'static str, String); 7] {
        let [vec, load8, store8, word, value, store_values8, round] = match self {
            KvType::F32 => [
                "vec4<f32>",
                "return Eight(k_cache[2u * i], k_cache[2u * i + 1u]);",
                "k_cache[2u * i] = e.lo;
    k_cache[2u * i + 1u] = e.hi;",
                "f32",
                "return vec4<f32>(v_cache[i], v_cache[i + 1u], v_cache[i + 2u], v_cache[i + 3u]);",
                "for (var j = 0u; j < 4u; j++) {
        v_cache[8u * i + j] = e.lo[j];
        v_cache[8u * i + 4u + j] = e.hi[j];
    }",
                "return x;",
            ],
            KvType::F16 => [
                "vec4<u32>",
                "let w = k_cache[i];
    return Eight(vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)),
                 vec4<f32>(unpack2x16float(w.z), unpack2x16float(w.w)));",
                "k_cache[i] = vec4<u32>(pack2x16float(e.lo.xy), pack2x16float(e.lo.zw),
        pack2x16float(e.hi.xy), pack2x16float(e.hi.zw));",
                "u32",
                "return vec4<f32>(unpack2x16float(v_cache[i / 2u]), unpack2x16float(v_cache[i / 2u + 1u]));",
                "v_cache[4u * i] = pack2x16float(e.lo.xy);
    v_cache[4u * i + 1u] = pack2x16float(e.lo.zw);
    v_cache[4u * i + 2u] = pack2x16float(e.hi.xy);
    v_cache[4u * i + 3u] = pack2x16float(e.hi.zw);",
                "return f16_round(x);",
            ],
        };
        [
            ("KV_VEC", vec),
            ("KV_LOAD8", load8),
            ("KV_STORE8", store8),
            ("KV_WORD", word),
            ("KV_VALUE4", value),
            ("KV_STORE_VALUES8", store_values8),
            ("KV_ROUND", round),
        ]
        .map(|(name, text)| (name, text.to_string()))
    }
}

/// The step after the q, k and v products of a batch (`qkv`: `[n][q | k | v]`, `shape`'s
/// heads): rotates q and k by the positions' rows of `table` (`[n][head_dim / 2]` cos,
/// then sin) and writes k and v into the caches at `pos0`. A step of one token dispatches
/// nothing: [`attention`] does this then.
pub fn rope_store(
    gpu: &Gpu,
    shape: AttnShape,
    ty: KvType,
    step: &wgpu::Buffer,
    table: &wgpu::Buffer,
    qkv: &wgpu::Buffer,
    (k_cache, v_cache): (&wgpu::Buffer, &wgpu::Buffer),
) -> Kernel {
    let half = shape.head_dim / 2;
    let (q_pairs, kv_pairs) = (shape.n_heads * half, shape.n_kv_heads * half);
    Kernel::new(Variants::BatchesOnly(shader_variant(
        gpu,
        (&["rope_store"], &ty.store_defines()),
        &[q_pairs as u32, kv_pairs as u32, half as u32],
        step,
        &[(table, R), (qkv, RW), (k_cache, RW), (v_cache, RW)],
        Grid::Items {
            per_token: (q_pairs + 2 * kv_pairs) as u32,
        },
    )))
}

/// The shape of an attention op.
#[derive(Clone, Copy, Debug)]
pub struct AttnShape {
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
}

/// Most workgroups a head of one token takes (attention_parts.wgsl). On the H200 a
/// SmolLM2-shaped model after 4096 tokens ran 440 t/s with 64 parts a head and 514 with
/// 32: past that, the merge reads more than the parts save.
pub const MAX_PARTS: u32 = 32;

/// How a step of one token spreads each head's cached positions over workgroups
/// (attention_parts.wgsl): a part takes `span` positions or more, and at least one whole
/// run of the head's size (the positions the attention walks at a time), and a head at
/// most [`MAX_PARTS`] parts. Long contexts then keep a large GPU busy where one workgroup a
/// head would leave most of it idle; short ones stay whole, since the parts cost a merge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PositionSplit {
    span: u32,
}

impl PositionSplit {
    /// Splits from 128 positions on. Measured on the H200 (docs/BENCHMARKS.md, "Splitting
    /// one token's attention"): spans of 64 to 512 against no split, tg64 after 256 to 4096
    /// tokens; against 128, a span of 64 gained 5-6% after 256 tokens for SmolLM2's heads
    /// of 64 and Llama 2's of 128, up to 4% after 1024, and was even after 4096.
    pub const DEFAULT: PositionSplit = PositionSplit { span: 64 };
    /// One workgroup a head, however long the context.
    pub const NEVER: PositionSplit = PositionSplit { span: u32::MAX };

    /// Parts of at least `span` positions; 0 never splits.
    pub fn new(span: u32) -> PositionSplit {
        match span {
            0 => PositionSplit::NEVER,
            span => PositionSplit { span },
        }
    }

    /// The parts of a head of `head_dim` values with `seen` cached positions before the
    /// token's own, as the shaders' `split_parts` counts them.
    pub fn parts(self, seen: u32, head_dim: u32) -> u32 {
        let runs = seen.div_ceil(head_dim);
        (seen / self.span).min(runs).clamp(1, MAX_PARTS)
    }

    /// The fewest cached positions that split into as many parts as `seen` does: steps
    /// at either dispatch the same workgroups. (Both bounds of [`PositionSplit::parts`]
    /// must allow `p` parts: `p · span` positions, and more than `p - 1` runs.)
    pub fn first_with_parts(self, seen: u32, head_dim: u32) -> u32 {
        match self.parts(seen, head_dim) {
            1 => 0,
            p => (p * self.span).max((p - 1) * head_dim + 1),
        }
    }

    fn defines(self) -> [(&'static str, String); 2] {
        [
            ("SPAN", self.span.to_string()),
            ("MAX_PARTS", MAX_PARTS.to_string()),
        ]
    }
}

/// Room for one token's split attention (`[n_heads][MAX_PARTS][head_dim + 2]`), which the
/// layers' attentions share since they run one after the other.
pub fn attention_parts(gpu: &Gpu, shape: AttnShape) -> wgpu::Buffer {
    activations(gpu, "attention parts", attention_parts_floats(shape))
}

/// The f32 values of [`attention_parts`]'s buffer.
pub fn attention_parts_floats(shape: AttnShape) -> usize {
    shape.n_heads * MAX_PARTS as usize * (shape.head_dim + 2)
}

/// Causal attention of the queries (`qkv`: `[n][q_stride]`, each row's `n_heads` query
/// heads, then its key and value heads) over the caches, into `out`
/// (`[n][n_heads][head_dim]`), with the 8-bit copy where `out` has one. A step of one
/// token also rotates its query and key by `table`'s row and writes its key and value into
/// the caches, which [`rope_store`] does for batches; where `split` divides its positions,
/// the parts go through `parts` ([`attention_parts`]) and the second kernel merges them.
pub fn attention<'a>(
    gpu: &Gpu,
    (shape, ty, split): (AttnShape, KvType, PositionSplit),
    step: &wgpu::Buffer,
    table: &wgpu::Buffer,
    (qkv, q_stride): (&wgpu::Buffer, usize),
    (k_cache, v_cache): (&wgpu::Buffer, &wgpu::Buffer),
    (parts, out): (&wgpu::Buffer, impl Into<Input<'a>>),
) -> [Kernel; 2] {
    let scale = 1.0 / (shape.head_dim as f32).sqrt();
    let params = [
        shape.n_heads as u32,
        (shape.n_heads / shape.n_kv_heads) as u32,
        (shape.n_kv_heads * shape.head_dim) as u32,
        scale.to_bits(),
        q_stride as u32,
    ];
    let out = out.into();
    let heads = shape.n_heads as u32;
    let parted = PartedHeads {
        heads,
        head_dim: shape.head_dim as u32,
        split,
    };
    let variant = |rope: bool, grid| {
        let defines = attention_defines(ty, shape.head_dim, gpu.subgroups_of_32, rope, split);
        let inputs = vec![
            (table, R),
            (qkv, R),
            (k_cache, RW),
            (v_cache, RW),
            (parts, RW),
        ];
        let variant = (vec!["attention", "attention_parts", "combine"], defines);
        let ((files, defines), buffers) = with_copy(variant, inputs, out);
        shader_variant(gpu, (&files, &defines), &params, step, &buffers, grid)
    };
    let attend = Kernel::new(Variants::ByTokens {
        one: variant(true, Grid::PerHeadPart(parted)),
        many: variant(false, Grid::PerHead { heads }),
    });
    let variant = (merge_files(), merge_defines(shape.head_dim, split));
    let ((files, defines), buffers) = with_copy(variant, vec![(parts, R)], out);
    let grid = Grid::PerHeadMerge(parted);
    let merge = single_kernel(gpu, (&files, &defines), &[heads], step, &buffers, grid);
    [attend, merge]
}

fn merge_files() -> Vec<&'static str> {
    vec!["attention_merge", "attention_parts"]
}

fn merge_defines(head_dim: usize, split: PositionSplit) -> Vec<(&'static str, String)> {
    let mut defines = vec![("HD", head_dim.to_string())];
    defines.extend(split.defines());
    defines
}

/// The attention shader's defines; `rope`: for a step of one token, which rotates and
/// caches its own key.
fn attention_defines(
    ty: KvType,
    head_dim: usize,
    subgroups_of_32: bool,
    rope: bool,
    split: PositionSplit,
) -> Vec<(&'static str, String)> {
    let mut defines = vec![
        ("HD", head_dim.to_string()),
        combine_define(subgroups_of_32),
        ("ROPE", u32::from(rope).to_string()),
    ];
    defines.extend(ty.kv_defines());
    defines.extend(split.defines());
    defines
}

/// The variants the ops build of these shaders, for the translation test: rope_store's,
/// and those that make a product's input (the attention and its merge, by the binding of
/// their output), with heads of 64 and 128.
pub(super) fn variants() -> (Vec<ShaderVariant>, Vec<(ShaderVariant, u32)>) {
    let split = PositionSplit::DEFAULT;
    let mut stores = Vec::new();
    let mut makers = Vec::new();
    for head_dim in [64, 128] {
        makers.push(((merge_files(), merge_defines(head_dim, split)), 3));
    }
    for ty in [KvType::F32, KvType::F16] {
        stores.push((vec!["rope_store"], ty.store_defines().to_vec()));
        for head_dim in [64, 128] {
            for subgroups in [false, true] {
                for rope in [false, true] {
                    let defines = attention_defines(ty, head_dim, subgroups, rope, split);
                    let files = vec!["attention", "attention_parts", "combine"];
                    makers.push(((files, defines), 7));
                }
            }
        }
    }
    (stores, makers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_counts_its_parts_as_the_shaders_do() {
        let split = PositionSplit::DEFAULT;
        let parts = |seen, head_dim| split.parts(seen, head_dim);
        assert_eq!(
            [0, 127, 128, 191, 192].map(|s| parts(s, 64)),
            [1, 1, 2, 2, 3]
        );
        // no more parts than runs of the head's size
        assert_eq!(
            [128, 129, 256, 257, 384].map(|s| parts(s, 128)),
            [1, 2, 2, 3, 3]
        );
        assert_eq!(parts(1 << 20, 64), MAX_PARTS);
        assert_eq!(PositionSplit::NEVER.parts(u32::MAX, 64), 1);
        assert_eq!(PositionSplit::new(0), PositionSplit::NEVER);
        for split in [1, 5, 128, 300, 0].map(PositionSplit::new) {
            for head_dim in [32, 64, 128, 256] {
                for seen in (0..100_000).chain([u32::MAX - 1, u32::MAX]) {
                    let first = split.first_with_parts(seen, head_dim);
                    let what = format!("{split:?} head {head_dim}, {seen} positions");
                    assert!(first <= seen, "{what}");
                    assert_eq!(
                        split.parts(first, head_dim),
                        split.parts(seen, head_dim),
                        "{what}"
                    );
                }
            }
        }
    }
}
