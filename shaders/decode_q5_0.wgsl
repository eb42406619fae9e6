// Q5_0: wq is one vector of nibbles per block (as Q4_0); ws two words per block, the f16
// d in the low half of the first word and the 32 fifth bits (bit j for value j) across
// its high half and the second word's low half. value = (q - 16) · d.

struct Q5Head {
    d: f32,
    // bit j: the fifth bit of value j
    qh: u32,
}

fn q5_0_head(k: u32) -> Q5Head {
    let w = ws[2u * k];
    return Q5Head(unpack2x16float(w).x, (w >> 16u) | (ws[2u * k + 1u] << 16u));
}

fn block_values(row: u32, b: u32, nb: u32) -> Block {
    let k = row * nb + b;
    let h = q5_0_head(k);
    let q = wq[k];
    let d = h.d;
    return Block(byte_values(five_bit_bytes(q.x, 0u, h.qh, 0u), 16.0) * d,
                 byte_values(five_bit_bytes(q.y, 0u, h.qh, 4u), 16.0) * d,
                 byte_values(five_bit_bytes(q.z, 0u, h.qh, 8u), 16.0) * d,
                 byte_values(five_bit_bytes(q.w, 0u, h.qh, 12u), 16.0) * d,
                 byte_values(five_bit_bytes(q.x, 4u, h.qh, 16u), 16.0) * d,
                 byte_values(five_bit_bytes(q.y, 4u, h.qh, 20u), 16.0) * d,
                 byte_values(five_bit_bytes(q.z, 4u, h.qh, 24u), 16.0) * d,
                 byte_values(five_bit_bytes(q.w, 4u, h.qh, 28u), 16.0) * d);
}
