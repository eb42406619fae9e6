// Q5_1: wq is one vector of nibbles per block (as Q4_0); ws two words per block, (d, m)
// as two f16, then the 32 fifth bits (bit j for value j). value = q · d + m.

fn block_values(row: u32, b: u32, nb: u32) -> Block {
    let k = row * nb + b;
    let dm = unpack2x16float(ws[2u * k]);
    let qh = ws[2u * k + 1u];
    let q = wq[k];
    return block_of_bytes(five_bit_half(q, qh, 0u), five_bit_half(q, qh, 1u), 0.0, dm.x,
        dm.y);
}
