// Q4_1 against 8-bit activations (layout: decode_q4_1.wgsl): Σ (q·d + m)·a =
// d·Σ q·a + m·Σ a.
fn row_dot(row: u32, b: u32, nb: u32, a: Act) -> f32 {
    let k = row * nb + b;
    let dm = unpack2x16float(ws[k]);
    let q = wq[k];
    let sumi = dot16(nibble_bytes(q, 0u), a.lo) + dot16(nibble_bytes(q, 4u), a.hi);
    return dm.x * a.d * f32(sumi) + dm.y * a.s;
}
