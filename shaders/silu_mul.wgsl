// hidden = silu(gate) · up, the SwiGLU of the feed-forward block, from the rows of the
// fused gate and up product: one invocation per block of 32 values, with the block's
// 8-bit copy where the down product wants one (`store_q8`: q8_store.wgsl at bindings 4
// and 5, or q8_none.wgsl).

struct SiluParams {
    // values in a row (a multiple of 32)
    width: u32,
}

@group(0) @binding(0) var<uniform> p: SiluParams;
@group(0) @binding(1) var<uniform> step: Step;
// [n_tokens][2 · width]: gate, then up
@group(0) @binding(2) var<storage, read> gate_up: array<vec4<f32>>;
// [n_tokens][width]
@group(0) @binding(3) var<storage, read_write> hidden: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let k = id.y * 65535u * 64u + id.x;
    let nb = p.width / 32u;
    if k >= step.n_tokens * nb {
        return;
    }
    // block b of token t: vectors 8b.. of its hidden row, of its gate row and of its up row
    let t = k / nb;
    let gate = t * 16u * nb + (k % nb) * 8u;
    var v: array<vec4<f32>, 8>;
    for (var j = 0u; j < 8u; j++) {
        let g = gate_up[gate + j];
        v[j] = g / (1.0 + exp(-g)) * gate_up[gate + 8u * nb + j];
        hidden[8u * k + j] = v[j];
    }
    store_q8(k, v);
}
