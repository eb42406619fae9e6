// The step after the q, k and v products: rotates each query and key head's pairs
// (x[2i], x[2i+1]) by the angle of the token's position, then writes the token's key and
// value into the layer's cache at pos0 + t. cos and sin come from the host's tables for
// the step's positions, so every scaling method (linear, NTK, dynamic NTK, YaRN, Llama 3)
// is the CPU's to the bit. One invocation per pair of a row.
// Defines: KV_WORD and KV_STORE (how a pair is stored: two f16 in a word, or f32).

struct RopeParams {
    // pairs in the q part of a row, and in the k part (= the v part)
    q_pairs: u32,
    kv_pairs: u32,
    // pairs per head
    half: u32,
}

@group(0) @binding(0) var<uniform> p: RopeParams;
@group(0) @binding(1) var<uniform> step: Step;
// [n_tokens][half] cos, then [n_tokens][half] sin
@group(0) @binding(2) var<storage, read> table: array<f32>;
// [n_tokens][q_pairs + 2 · kv_pairs] pairs: q, k, v; q and k rotated in place
@group(0) @binding(3) var<storage, read_write> qkv: array<vec2<f32>>;
// [n_ctx][kv_pairs] each
@group(0) @binding(4) var<storage, read_write> k_cache: array<{{KV_WORD}}>;
@group(0) @binding(5) var<storage, read_write> v_cache: array<{{KV_WORD}}>;

fn store(kv: vec2<f32>) -> {{KV_WORD}} {
    {{KV_STORE}}
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.y * 65535u * 64u + id.x;
    let width = p.q_pairs + 2u * p.kv_pairs;
    if i >= step.n_tokens * width {
        return;
    }
    let t = i / width;
    let j = i % width;
    let cache_row = (step.pos0 + t) * p.kv_pairs;
    var v = qkv[i];
    if j < p.q_pairs + p.kv_pairs {
        let pair = j % p.half;
        let c = table[t * p.half + pair];
        let s = table[(step.n_tokens + t) * p.half + pair];
        v = vec2<f32>(v.x * c - v.y * s, v.x * s + v.y * c);
        qkv[i] = v;
        if j >= p.q_pairs {
            k_cache[cache_row + j - p.q_pairs] = store(v);
        }
    } else {
        v_cache[cache_row + j - p.q_pairs - p.kv_pairs] = store(v);
    }
}
