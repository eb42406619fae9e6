// Q4_K as signed bytes (layout: decode_q4_k.wgsl; `scale_min`: block.wgsl), one 32-value
// sub-block at a time: Σ (d·scale·q - dmin·min)·a = d·scale·Σ q·a - dmin·min·Σ a.
fn weight_q8(row: u32, b: u32, nb: u32) -> WeightQ8 {
    let k = row * (nb / 8u) + b / 8u;
    let j = b % 8u;
    let dm = scale_min(wq[k * 9u], j);
    let shift = 4u * (j % 2u);
    let o = k * 9u + 1u + (j / 2u) * 2u;
    return WeightQ8(nibble_bytes(wq[o], shift), nibble_bytes(wq[o + 1u], shift), dm.x, dm.x,
        -dm.y);
}
