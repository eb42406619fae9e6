// Activations quantized to 8 bits in blocks of 32 (q8_store.wgsl writes them), which the
// fast matrix-vector product reads: a weight block as signed bytes (the type's
// `weight_q8`, in its idot_*.wgsl) meets them in `dot4I8Packed`, four products a call,
// and the scales are applied once to each integer sum. A block is 40 bytes rather than 128, and decoding
// weights to floats is left out.

// [n_tokens][blocks][2]: values 0-15 of a block, then 16-31, as signed bytes (value j at
// byte j % 4 of word j / 4)
@group(0) @binding(4) var<storage, read> act_q: array<vec4<u32>>;
// [n_tokens][blocks]: the block's scale d and d · Σ q
@group(0) @binding(6) var<storage, read> act_d: array<vec2<f32>>;

struct Act {
    lo: vec4<u32>,
    hi: vec4<u32>,
    d: f32,
    // d · Σ q: what a weight offset (Q4_0's 8, Q4_1's m, a K-quant's min) multiplies
    s: f32,
}

fn load_act(t: u32, b: u32, nb: u32) -> Act {
    let k = t * nb + b;
    let ds = act_d[k];
    return Act(act_q[2u * k], act_q[2u * k + 1u], ds.x, ds.y);
}

// A weight block as the integer products take it: Σ w·a over the block is
// lo_scale·Σ lo·a + hi_scale·Σ hi·a (values 0-15 and 16-31 as signed bytes) plus
// offset·Σ a, where the type has one (Q4_0's -8·d, Q4_1's m, a K-quant's -dmin·min).
struct WeightQ8 {
    lo: vec4<u32>,
    hi: vec4<u32>,
    lo_scale: f32,
    hi_scale: f32,
    offset: f32,
}

// Block `b` of weight row `row` times the activations' block.
fn row_dot(row: u32, b: u32, nb: u32, a: Act) -> f32 {
    let w = weight_q8(row, b, nb);
    return a.d * (w.lo_scale * f32(dot16(w.lo, a.lo)) + w.hi_scale * f32(dot16(w.hi, a.hi)))
        + w.offset * a.s;
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
