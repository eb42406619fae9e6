// Q5_1: wq is one vector of nibbles per block (as Q4_0); ws two words per block, (d, m)
// as two f16, then the 32 fifth bits (bit j for value j). value = q · d + m.

fn block_values(row: u32, b: u32, nb: u32) -> Block {
    let k = row * nb + b;
    let dm = unpack2x16float(ws[2u * k]);
    let qh = ws[2u * k + 1u];
    let q = wq[k];
    let d = dm.x;
    let m = dm.y;
    return Block(byte_values(five_bit_bytes(q.x, 0u, qh, 0u), 0.0) * d + m,
                 byte_values(five_bit_bytes(q.y, 0u, qh, 4u), 0.0) * d + m,
                 byte_values(five_bit_bytes(q.z, 0u, qh, 8u), 0.0) * d + m,
                 byte_values(five_bit_bytes(q.w, 0u, qh, 12u), 0.0) * d + m,
                 byte_values(five_bit_bytes(q.x, 4u, qh, 16u), 0.0) * d + m,
                 byte_values(five_bit_bytes(q.y, 4u, qh, 20u), 0.0) * d + m,
                 byte_values(five_bit_bytes(q.z, 4u, qh, 24u), 0.0) * d + m,
                 byte_values(five_bit_bytes(q.w, 4u, qh, 28u), 0.0) * d + m);
}
