// What an RMSNorm folded into the products around it leaves for its readers
// (norm_in.wgsl): each block's 8-bit copy of x · weight (`store_q8`: q8_store.wgsl) and
// its Σ x², from which they take the norm's scale. rms_fold.wgsl stores a block a
// thread with `store_folded`; norm_out.wgsl, a block a workgroup, writes `norm_sums`
// itself.
// Defines: SUMS (the binding's number).

// [dim / 32]
@group(0) @binding({{SUMS}}) var<storage, read_write> norm_sums: array<f32>;

// Stores block `k`, whose values are `x` and weighted values `w`.
fn store_folded(k: u32, x: array<vec4<f32>, 8>, w: array<vec4<f32>, 8>) {
    var ss = 0.0;
    for (var j = 0u; j < 8u; j++) {
        ss += dot(x[j], x[j]);
    }
    store_q8(k, w);
    norm_sums[k] = ss;
}
