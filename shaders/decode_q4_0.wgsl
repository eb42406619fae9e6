// Q4_0: wq is one vector of nibbles per block (byte j: value j low, value j + 16 high),
// ws the blocks' f16 scales two a word. value = (q - 8) · d.
fn block_values(row: u32, b: u32, nb: u32) -> Block {
    let k = row * nb + b;
    let d = unpack2x16float(ws[k / 2u])[k % 2u];
    let q = wq[k];
    return Block(nibbles(q.x, 0u, 8.0) * d, nibbles(q.y, 0u, 8.0) * d,
                 nibbles(q.z, 0u, 8.0) * d, nibbles(q.w, 0u, 8.0) * d,
                 nibbles(q.x, 4u, 8.0) * d, nibbles(q.y, 4u, 8.0) * d,
                 nibbles(q.z, 4u, 8.0) * d, nibbles(q.w, 4u, 8.0) * d);
}
