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
    return block_of_bytes(five_bit_half(q, h.qh, 0u), five_bit_half(q, h.qh, 1u), 16.0, h.d,
        0.0);
}
