// Q4_1 as signed bytes (layout: decode_q4_1.wgsl): Σ (q·d + m)·a = d·Σ q·a + m·Σ a.
fn weight_q8(row: u32, b: u32, nb: u32) -> WeightQ8 {
    let k = row * nb + b;
    let dm = unpack2x16float(ws[k]);
    let q = wq[k];
    return WeightQ8(nibble_bytes(q, 0u), nibble_bytes(q, 4u), dm.x, dm.x, dm.y);
}
