// Q8_0: wq is two vectors of signed bytes per block, ws the blocks' f16 scales two a
// word. value = q · d.
fn block_values(row: u32, b: u32, nb: u32) -> Block {
    let k = row * nb + b;
    let d = unpack2x16float(ws[k / 2u])[k % 2u];
    let q0 = wq[k * 2u];
    let q1 = wq[k * 2u + 1u];
    return Block(signed_bytes(q0.x) * d, signed_bytes(q0.y) * d,
                 signed_bytes(q0.z) * d, signed_bytes(q0.w) * d,
                 signed_bytes(q1.x) * d, signed_bytes(q1.y) * d,
                 signed_bytes(q1.z) * d, signed_bytes(q1.w) * d);
}
