// 8-bit copies of activation blocks, in act_q8.wgsl's layout, made where the values are
// made (RMSNorm, the attention, SwiGLU): each block of 32 values becomes signed bytes
// q = round(x / d) with d = max |x| / 127, as the CPU quantizes its own activations
// (ggml's Q8_0), so the bytes are the CPU's. d stays in f32 (Q8_0 rounds it to f16 to
// store it in 2 bytes; here the 4 cost nothing). A shader that makes values calls
// `store_q8` for each block; q8_none.wgsl stands in where no copy is wanted.
// Defines: AQ, AD (the bindings' numbers in the including shader).

// [n_tokens][cols / 32][2] vectors of signed bytes
@group(0) @binding({{AQ}}) var<storage, read_write> aq: array<vec4<u32>>;
// [n_tokens][cols / 32]: d and d · Σ q
@group(0) @binding({{AD}}) var<storage, read_write> ad: array<vec2<f32>>;

fn abs_max(v: vec4<f32>) -> f32 {
    let a = abs(v);
    return max(max(a.x, a.y), max(a.z, a.w));
}

// Rounds halves away from zero, as C's roundf (WGSL's round takes them to even). A value
// less its truncation is exact, so a half is seen for what it is.
fn round_away(v: vec4<f32>) -> vec4<f32> {
    let t = trunc(v);
    return select(round(v), t + sign(v), abs(v - t) == vec4<f32>(0.5));
}

// Stores block `k` (counted from the start of the buffers), whose values are `v`.
fn store_q8(k: u32, v: array<vec4<f32>, 8>) {
    var amax = 0.0;
    for (var j = 0u; j < 8u; j++) {
        amax = max(amax, abs_max(v[j]));
    }
    let d = amax / 127.0;
    let inv = select(0.0, 1.0 / d, d != 0.0);
    var words: array<u32, 8>;
    var sum = vec4<i32>(0);
    for (var j = 0u; j < 8u; j++) {
        let q = vec4<i32>(round_away(v[j] * inv));
        sum += q;
        words[j] = pack4xI8(q);
    }
    aq[2u * k] = vec4<u32>(words[0], words[1], words[2], words[3]);
    aq[2u * k + 1u] = vec4<u32>(words[4], words[5], words[6], words[7]);
    ad[k] = vec2<f32>(d, d * f32(sum.x + sum.y + sum.z + sum.w));
}
