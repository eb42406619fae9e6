// Activations quantized to 8 bits in blocks of 32 (quantize_q8.wgsl writes them), which
// the fast matrix-vector product reads: the weights' integers meet them in
// `dot4I8Packed`, four products a call, and the block's scales are applied once to the
// integer sum (the type's `row_dot` in its idot_*.wgsl). A block is 40 bytes rather than
// 128, and decoding weights to floats is left out.

// [n_tokens][blocks][2]: values 0-15 of a block, then 16-31, as signed bytes (value j at
// byte j % 4 of word j / 4)
@group(0) @binding(4) var<storage, read> aq: array<vec4<u32>>;
// [n_tokens][blocks]: the block's scale d and d · Σ q
@group(0) @binding(6) var<storage, read> ad: array<vec2<f32>>;

struct Act {
    lo: vec4<u32>,
    hi: vec4<u32>,
    d: f32,
    // d · Σ q: what a weight offset (Q4_0's 8, Q4_1's m, a K-quant's min) multiplies
    s: f32,
}

fn load_act(t: u32, b: u32, nb: u32) -> Act {
    let k = t * nb + b;
    let ds = ad[k];
    return Act(aq[2u * k], aq[2u * k + 1u], ds.x, ds.y);
}

// Σ of the sixteen products of two vectors of signed bytes.
fn dot16(w: vec4<u32>, a: vec4<u32>) -> i32 {
    return dot4I8Packed(w.x, a.x) + dot4I8Packed(w.y, a.y)
        + dot4I8Packed(w.z, a.z) + dot4I8Packed(w.w, a.w);
}

const NIBBLES: u32 = 0x0F0F0F0Fu;

// The low (shift 0) or high (shift 4) nibbles of each byte of `q`.
fn nibble_bytes(q: vec4<u32>, shift: u32) -> vec4<u32> {
    return (q >> vec4<u32>(shift)) & vec4<u32>(NIBBLES);
}
