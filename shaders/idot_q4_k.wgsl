// Q4_K against 8-bit activations (layout and `scale_min`: decode_q4_k.wgsl), one 32-value
// sub-block at a time: Σ (d·scale·q - dmin·min)·a = d·scale·Σ q·a - dmin·min·Σ a.
fn row_dot(row: u32, b: u32, nb: u32, a: Act) -> f32 {
    let k = row * (nb / 8u) + b / 8u;
    let j = b % 8u;
    let dm = scale_min(wq[k * 9u], j);
    let shift = 4u * (j % 2u);
    let o = k * 9u + 1u + (j / 2u) * 2u;
    let sumi = dot16(nibble_bytes(wq[o], shift), a.lo)
        + dot16(nibble_bytes(wq[o + 1u], shift), a.hi);
    return dm.x * a.d * f32(sumi) - dm.y * a.s;
}
