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
