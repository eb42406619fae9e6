// Q5_1 as signed bytes (layout: decode_q5_1.wgsl): Σ (q·d + m)·a = d·Σ q·a + m·Σ a.
fn weight_q8(row: u32, b: u32, nb: u32) -> WeightQ8 {
    let k = row * nb + b;
    let dm = unpack2x16float(ws[2u * k]);
    let qh = ws[2u * k + 1u];
    let q = wq[k];
    let lo = vec4<u32>(five_bit_bytes(q.x, 0u, qh, 0u), five_bit_bytes(q.y, 0u, qh, 4u),
        five_bit_bytes(q.z, 0u, qh, 8u), five_bit_bytes(q.w, 0u, qh, 12u));
    let hi = vec4<u32>(five_bit_bytes(q.x, 4u, qh, 16u), five_bit_bytes(q.y, 4u, qh, 20u),
        five_bit_bytes(q.z, 4u, qh, 24u), five_bit_bytes(q.w, 4u, qh, 28u));
    return WeightQ8(lo, hi, dm.x, dm.x, dm.y);
}
