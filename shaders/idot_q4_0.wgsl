// Q4_0 as signed bytes (layout: decode_q4_0.wgsl). The nibbles are 0..15 for value
// q - 8, so Σ (q - 8)·a = Σ q·a - 8·Σ a: the offset is -8·d.
fn weight_q8(row: u32, b: u32, nb: u32) -> WeightQ8 {
    let k = row * nb + b;
    let d = unpack2x16float(ws[k / 2u])[k % 2u];
    let q = wq[k];
    return WeightQ8(nibble_bytes(q, 0u), nibble_bytes(q, 4u), d, d, -8.0 * d);
}
