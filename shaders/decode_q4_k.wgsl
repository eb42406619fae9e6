// Q4_K: wq is the 144-byte super-blocks as they are stored, nine vectors each: the first
// holds d and dmin (f16) and the twelve bytes of 6-bit scales and mins, the other eight
// the nibbles (two vectors serve two 32-value sub-blocks: low nibbles, then high). ws is
// unused. value = d · scale · q - dmin · min, with `scale_min` (block.wgsl).
fn block_values(row: u32, b: u32, nb: u32) -> Block {
    let k = row * (nb / 8u) + b / 8u;
    let j = b % 8u;
    let dm = scale_min(wq[k * 9u], j);
    let d = dm.x;
    let m = dm.y;
    let shift = 4u * (j % 2u);
    let o = k * 9u + 1u + (j / 2u) * 2u;
    let q0 = wq[o];
    let q1 = wq[o + 1u];
    return Block(nibbles(q0.x, shift, 0.0) * d - m, nibbles(q0.y, shift, 0.0) * d - m,
                 nibbles(q0.z, shift, 0.0) * d - m, nibbles(q0.w, shift, 0.0) * d - m,
                 nibbles(q1.x, shift, 0.0) * d - m, nibbles(q1.y, shift, 0.0) * d - m,
                 nibbles(q1.z, shift, 0.0) * d - m, nibbles(q1.w, shift, 0.0) * d - m);
}
