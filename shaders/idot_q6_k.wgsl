// Q6_K as signed bytes (layout and `signed_byte`: decode_q6_k.wgsl). Each value's q - 32
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
    let k = row * (nb / 8u) + b / 8u;
    let j = b % 8u;
    let half = j / 4u;
    let s = j % 4u;
    let base = k * 13u;
    let d = unpack2x16float(ws[k / 2u])[k % 2u];
    let ql = base + 4u * half + 2u * (s % 2u);
    let qh = base + 8u + 2u * half;
    let nib = 4u * (s / 2u);
    let pair = 2u * s;
    let scales = wq[base + 12u];
    let sc0 = signed_byte(scales, 8u * half + 2u * s);
    let sc1 = signed_byte(scales, 8u * half + 2u * s + 1u);
    let lo = q6_bytes(wq[ql], nib, wq[qh], pair);
    let hi = q6_bytes(wq[ql + 1u], nib, wq[qh + 1u], pair);
    return WeightQ8(lo, hi, d * sc0, d * sc1, 0.0);
}
