// 32 values, a block of weights or of activations, as eight vectors: fields rather than an
// array, so that they stay in registers.
struct Block {
    v0: vec4<f32>,
    v1: vec4<f32>,
    v2: vec4<f32>,
    v3: vec4<f32>,
    v4: vec4<f32>,
    v5: vec4<f32>,
    v6: vec4<f32>,
    v7: vec4<f32>,
}

fn block_dot(w: Block, a: Block) -> f32 {
    return dot(w.v0, a.v0) + dot(w.v1, a.v1) + dot(w.v2, a.v2) + dot(w.v3, a.v3)
        + dot(w.v4, a.v4) + dot(w.v5, a.v5) + dot(w.v6, a.v6) + dot(w.v7, a.v7);
}

// Small integers become floats without a conversion instruction (a quarter-rate one on
// some GPUs): the bits of 2^23 with the integer in the low mantissa bits are exactly
// 2^23 + n, and one subtraction leaves n (less any offset).
const TWO_23: f32 = 8388608.0;
const TWO_23_BITS: u32 = 0x4B000000u;

// The four bytes of `q` shifted right by `shift` and masked to a nibble, less `offset`.
fn nibbles(q: u32, shift: u32, offset: f32) -> vec4<f32> {
    let n = (vec4<u32>(q, q >> 8u, q >> 16u, q >> 24u) >> vec4<u32>(shift)) & vec4<u32>(15u);
    return bitcast<vec4<f32>>(n | vec4<u32>(TWO_23_BITS)) - (TWO_23 + offset);
}

// The four signed bytes of `q` (flipping the sign bit makes them offset by 128).
fn signed_bytes(q: u32) -> vec4<f32> {
    let b = vec4<u32>(q, q >> 8u, q >> 16u, q >> 24u) & vec4<u32>(255u);
    return bitcast<vec4<f32>>((b ^ vec4<u32>(128u)) | vec4<u32>(TWO_23_BITS)) - (TWO_23 + 128.0);
}

// The four bytes of `b` as floats, less `offset`.
fn byte_values(b: u32, offset: f32) -> vec4<f32> {
    let n = vec4<u32>(b, b >> 8u, b >> 16u, b >> 24u) & vec4<u32>(255u);
    return bitcast<vec4<f32>>(n | vec4<u32>(TWO_23_BITS)) - (TWO_23 + offset);
}

// Four 5-bit values (Q5_0, Q5_1) as bytes: the nibbles of `q`'s bytes from bit `shift`,
// bits first..first + 3 of `qh` their fifth bits. The multiplication spreads four bits
// to bit 0 of four bytes (its shifted copies of them do not overlap).
fn five_bit_bytes(q: u32, shift: u32, qh: u32, first: u32) -> u32 {
    let fifths = (((qh >> first) & 15u) * 0x00204081u) & 0x01010101u;
    return ((q >> shift) & 0x0F0F0F0Fu) | (fifths << 4u);
}

// Values 0-15 (`half` 0) or 16-31 (1) of a Q5_0 or Q5_1 block as bytes: the low or high
// nibbles of its vector `q`, bits 16·half.. of `qh` their fifth bits.
fn five_bit_half(q: vec4<u32>, qh: u32, half: u32) -> vec4<u32> {
    let shift = 4u * half;
    let first = 16u * half;
    return vec4<u32>(five_bit_bytes(q.x, shift, qh, first),
        five_bit_bytes(q.y, shift, qh, first + 4u),
        five_bit_bytes(q.z, shift, qh, first + 8u),
        five_bit_bytes(q.w, shift, qh, first + 12u));
}

// A block of values (b - offset) · d + m, from bytes b: values 0-15 in `lo`, 16-31 in `hi`.
fn block_of_bytes(lo: vec4<u32>, hi: vec4<u32>, offset: f32, d: f32, m: f32) -> Block {
    return Block(byte_values(lo.x, offset) * d + m, byte_values(lo.y, offset) * d + m,
                 byte_values(lo.z, offset) * d + m, byte_values(lo.w, offset) * d + m,
                 byte_values(hi.x, offset) * d + m, byte_values(hi.y, offset) * d + m,
                 byte_values(hi.z, offset) * d + m, byte_values(hi.w, offset) * d + m);
}

// A K-quant's (Q4_K's, Q5_K's) sub-block j's multipliers from its super-block's first
// vector, which holds d and dmin (f16) and the twelve bytes of 6-bit scales and mins:
// (d · scale, dmin · min).
fn scale_min(head: vec4<u32>, j: u32) -> vec2<f32> {
    let dd = unpack2x16float(head.x);
    // bytes 0-11 of the scales: byte n is byte n % 4 of word n / 4
    let sc = vec3<u32>(head.y, head.z, head.w);
    let byte = vec4<u32>(0u, 8u, 16u, 24u);
    var scale: u32;
    var min: u32;
    if j < 4u {
        scale = (sc[0] >> byte[j]) & 63u;
        min = (sc[1] >> byte[j]) & 63u;
    } else {
        let hi = sc[2] >> byte[j - 4u];
        scale = (hi & 15u) | ((((sc[0] >> byte[j - 4u]) >> 6u) & 3u) << 4u);
        min = ((hi >> 4u) & 15u) | ((((sc[1] >> byte[j - 4u]) >> 6u) & 3u) << 4u);
    }
    return dd * vec2<f32>(f32(scale), f32(min));
}
