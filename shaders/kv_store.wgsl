// Writes the step's keys and values into the layer's cache at positions pos0...
// Defines: KV_WORD (u32: the cache holds f16 pairs, two values a word; vec2<f32>: f32)
// and KV_STORE, the body that makes a word from a pair.

struct KvParams {
    // values in a row of k (= of v)
    kv_dim: u32,
}

struct Step {
    n_tokens: u32,
    pos0: u32,
    out_first: u32,
    n_out: u32,
}

@group(0) @binding(0) var<uniform> p: KvParams;
@group(0) @binding(1) var<uniform> step: Step;
// [n_tokens][kv_dim] each
@group(0) @binding(2) var<storage, read> k: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read> v: array<vec2<f32>>;
// [n_ctx][kv_dim] each
@group(0) @binding(4) var<storage, read_write> k_cache: array<{{KV_WORD}}>;
@group(0) @binding(5) var<storage, read_write> v_cache: array<{{KV_WORD}}>;

fn store(kv: vec2<f32>) -> {{KV_WORD}} {
    {{KV_STORE}}
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    // one invocation per pair of values
    let i = id.y * 65535u * 64u + id.x;
    if i >= step.n_tokens * p.kv_dim / 2u {
        return;
    }
    let o = step.pos0 * p.kv_dim / 2u + i;
    k_cache[o] = store(k[i]);
    v_cache[o] = store(v[i]);
}
