// Q5_0 as signed bytes (layout: decode_q5_0.wgsl). The values are 0..31 for q - 16, so
// Σ (q - 16)·a = Σ q·a - 16·Σ a: the offset is -16·d.
fn weight_q8(row: u32, b: u32, nb: u32) -> WeightQ8 {
    let k = row * nb + b;
    let h = q5_0_head(k);
    let q = wq[k];
    let lo = vec4<u32>(five_bit_bytes(q.x, 0u, h.qh, 0u), five_bit_bytes(q.y, 0u, h.qh, 4u),
        five_bit_bytes(q.z, 0u, h.qh, 8u), five_bit_bytes(q.w, 0u, h.qh, 12u));
    let hi = vec4<u32>(five_bit_bytes(q.x, 4u, h.qh, 16u), five_bit_bytes(q.y, 4u, h.qh, 20u),
        five_bit_bytes(q.z, 4u, h.qh, 24u), five_bit_bytes(q.w, 4u, h.qh, 28u));
    return WeightQ8(lo, hi, h.d, h.d, -16.0 * h.d);
}
