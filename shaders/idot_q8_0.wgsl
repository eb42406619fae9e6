// Q8_0 as signed bytes (layout: decode_q8_0.wgsl): they are already.
fn weight_q8(row: u32, b: u32, nb: u32) -> WeightQ8 {
    let k = row * nb + b;
    let d = unpack2x16float(ws[k / 2u])[k % 2u];
    return WeightQ8(wq[k * 2u], wq[k * 2u + 1u], d, d, 0.0);
}
