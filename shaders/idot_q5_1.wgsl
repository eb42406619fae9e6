// Q5_1 as signed bytes (layout: decode_q5_1.wgsl): Σ (q·d + m)·a = d·Σ q·a + m·Σ a.
fn weight_q8(row: u32, b: u32, nb: u32) -> WeightQ8 {
    let k = row * nb + b;
    let dm = unpack2x16float(ws[2u * k]);
    let qh = ws[2u * k + 1u];
    let q = wq[k];
    return WeightQ8(five_bit_half(q, qh, 0u), five_bit_half(q, qh, 1u), dm.x, dm.x, dm.y);
}
