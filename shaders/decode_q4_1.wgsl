// Q4_1: wq is one vector of nibbles per block (as Q4_0), ws each block's (d, m) as two
// f16 in one word. value = q · d + m.
fn block_values(row: u32, b: u32, nb: u32) -> Block {
    let k = row * nb + b;
    let dm = unpack2x16float(ws[k]);
    let q = wq[k];
    return Block(nibbles(q.x, 0u, 0.0) * dm.x + dm.y, nibbles(q.y, 0u, 0.0) * dm.x + dm.y,
                 nibbles(q.z, 0u, 0.0) * dm.x + dm.y, nibbles(q.w, 0u, 0.0) * dm.x + dm.y,
                 nibbles(q.x, 4u, 0.0) * dm.x + dm.y, nibbles(q.y, 4u, 0.0) * dm.x + dm.y,
                 nibbles(q.z, 4u, 0.0) * dm.x + dm.y, nibbles(q.w, 4u, 0.0) * dm.x + dm.y);
}
