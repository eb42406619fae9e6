// Q5_0 as signed bytes (layout: decode_q5_0.wgsl). The values are 0..31 for q - 16, so
// Σ (q - 16)·a = Σ q·a - 16·Σ a: the offset is -16·d.
fn weight_q8(row: u32, b: u32, nb: u32) -> WeightQ8 {
    let k = row * nb + b;
    let h = q5_0_head(k);
    let q = wq[k];
    return WeightQ8(five_bit_half(q, h.qh, 0u), five_bit_half(q, h.qh, 1u), h.d, h.d,
        -16.0 * h.d);
}
