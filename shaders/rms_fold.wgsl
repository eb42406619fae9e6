// The first RMSNorm of a one-token step, where x comes from the host rather than from a
// product that could fold it (norm_out.wgsl): one invocation per block of 32 values,
// writing what the folded norm's readers take (`store_folded`: fold_store.wgsl, with
// q8_store.wgsl at bindings 4 and 5). Its inputs: norm_input.wgsl.

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let b = id.x;
    if b >= p.dim / 32u {
        return;
    }
    var xs: array<vec4<f32>, 8>;
    var w: array<vec4<f32>, 8>;
    for (var j = 0u; j < 8u; j++) {
        xs[j] = x[8u * b + j];
        w[j] = xs[j] * weight[8u * b + j];
    }
    store_folded(b, xs, w);
}
