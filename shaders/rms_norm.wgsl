// out[t] = x[t] / sqrt(mean(x[t]²) + eps) · weight, one workgroup per token, with the
// result's 8-bit copy where the product that reads it wants one (`store_q8`:
// q8_store.wgsl at bindings 5 and 6, or q8_none.wgsl).
// Its inputs: norm_input.wgsl.
// Defines: COMBINE (combine.wgsl).

// [n_tokens][dim / 4]
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;

const WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    // Vectors, so that a thread has few loads to wait for in turn.
    let t = wg.x;
    let n = p.dim / 4u;
    let base = t * n;
    var ss = 0.0;
    for (var i = lid; i < n; i += WG) {
        ss += dot(x[base + i], x[base + i]);
    }
    let scale = 1.0 / sqrt(combine(ss, lid, false) / f32(p.dim) + p.eps);
    // A block of 32 values a thread, so that each block's copy is made where its values
    // are.
    for (var b = lid; b < n / 8u; b += WG) {
        var v: array<vec4<f32>, 8>;
        for (var j = 0u; j < 8u; j++) {
            let i = 8u * b + j;
            v[j] = x[base + i] * scale * weight[i];
            out[base + i] = v[j];
        }
        store_q8(base / 8u + b, v);
    }
}
