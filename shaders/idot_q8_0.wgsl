// Q8_0 against 8-bit activations (layout: decode_q8_0.wgsl): signed bytes on both sides.
fn row_dot(row: u32, b: u32, nb: u32, a: Act) -> f32 {
    let k = row * nb + b;
    let d = unpack2x16float(ws[k / 2u])[k % 2u];
    let sumi = dot16(wq[k * 2u], a.lo) + dot16(wq[k * 2u + 1u], a.hi);
    return d * a.d * f32(sumi);
}
