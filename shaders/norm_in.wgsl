// The input side of an RMSNorm folded into the one-token products around it: the 8-bit
// copy this product reads holds x · weight, unscaled (the bytes of a block do not change
// with the scale, only its d), so the row sums are multiplied by the norm's scale
// 1 / sqrt(mean(x²) + eps), from the Σ x² of each block that the copy's makers wrote
// beside it (fold_store.wgsl, norm_out.wgsl).

// [cols / 32]
@group(0) @binding(7) var<storage, read> norm_sums: array<f32>;

// The lane's first four blocks' sums, loaded as the product starts so that they are at
// hand at the end (four cover rows of 4096 values).
fn in_prefetch(lid: u32) -> vec4<f32> {
    let nb = p.cols / 32u;
    let b = lid % LANES + vec4<u32>(0u, 1u, 2u, 3u) * LANES;
    let s = vec4<f32>(norm_sums[min(b.x, nb - 1u)], norm_sums[min(b.y, nb - 1u)],
        norm_sums[min(b.z, nb - 1u)], norm_sums[min(b.w, nb - 1u)]);
    return select(vec4<f32>(0.0), s, b < vec4<u32>(nb));
}

// Every lane calls it, with what `in_prefetch` gave it.
fn in_scale(lid: u32, first: vec4<f32>) -> f32 {
    var ss = first.x + first.y + first.z + first.w;
    for (var b = lid % LANES + 4u * LANES; b < p.cols / 32u; b += LANES) {
        ss += norm_sums[b];
    }
    return 1.0 / sqrt(sum32(ss, lid) / f32(p.cols) + p.eps);
}
