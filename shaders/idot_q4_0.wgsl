// Q4_0 against 8-bit activations (layout: decode_q4_0.wgsl). The nibbles are 0..15 for
// value q - 8, so Σ (q - 8)·a = Σ q·a - 8·Σ a, and the activations carry d·Σ a.
fn row_dot(row: u32, b: u32, nb: u32, a: Act) -> f32 {
    let k = row * nb + b;
    let d = unpack2x16float(ws[k / 2u])[k % 2u];
    let q = wq[k];
    let sumi = dot16(nibble_bytes(q, 0u), a.lo) + dot16(nibble_bytes(q, 4u), a.hi);
    return d * (a.d * f32(sumi) - 8.0 * a.s);
}
