// Q6_K as signed bytes (layout and `q6_sub`: decode_q6_k.wgsl). Each value's q - 32
// fits a signed byte; the two 16-value halves of a sub-block have their own scales.

// The bytes q - 32 of four 6-bit values: nibbles of `lo` (from `nib`) over bit pairs of
// `hi` (from `pair`). Where bit 5 of q is set, q - 32 is q's low five bits; where it is
// not, it is negative and its byte is q | 0xE0.
fn q6_bytes(lo: vec4<u32>, nib: u32, hi: vec4<u32>, pair: u32) -> vec4<u32> {
    let q = ((lo >> vec4<u32>(nib)) & vec4<u32>(NIBBLES))
        | (((hi >> vec4<u32>(pair)) & vec4<u32>(0x03030303u)) << vec4<u32>(4u));
    let negative = ((~q) >> vec4<u32>(5u)) & vec4<u32>(0x01010101u);
    return (q & vec4<u32>(0x1F1F1F1Fu)) | (negative * 0xE0u);
}

fn weight_q8(row: u32, b: u32, nb: u32) -> WeightQ8 {
    let q = q6_sub(row, b, nb);
    let lo = q6_bytes(wq[q.ql], q.nib, wq[q.qh], q.pair);
    let hi = q6_bytes(wq[q.ql + 1u], q.nib, wq[q.qh + 1u], q.pair);
    return WeightQ8(lo, hi, q.d0, q.d1, 0.0);
}
