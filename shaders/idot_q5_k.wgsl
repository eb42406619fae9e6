// Q5_K as signed bytes (layout and `q5_k_bytes`: decode_q5_k.wgsl), one
// 32-value sub-block at a time: Σ (d·scale·q - dmin·min)·a = d·scale·Σ q·a - dmin·min·Σ a.
fn weight_q8(row: u32, b: u32, nb: u32) -> WeightQ8 {
    let k = row * (nb / 8u) + b / 8u;
    let j = b % 8u;
    let dm = scale_min(wq[k * 11u], j);
    return WeightQ8(q5_k_bytes(k, j, 0u), q5_k_bytes(k, j, 1u), dm.x, dm.x, -dm.y);
}
