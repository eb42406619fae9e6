// Q6_K: wq is each 256-value super-block's first 208 bytes, 13 vectors: 128 bytes of low
// nibbles (ql), 64 of high bit pairs (qh), 16 signed 8-bit scales (one per 16 values);
// ws the blocks' f16 d, two a word. A super-block is two halves of 128 values; in a half,
// sub-block s (32 values) takes ql[l + 32·(s % 2)] (low nibble for s < 2, high after)
// and bits 2s of qh[l]. value = d · scale · (q - 32).

// Four 6-bit values less 32: nibbles of `lo` (from `nib`) over bit pairs of `hi` (from `pair`).
fn q6(lo: u32, nib: u32, hi: u32, pair: u32) -> vec4<f32> {
    let l = (vec4<u32>(lo, lo >> 8u, lo >> 16u, lo >> 24u) >> vec4<u32>(nib)) & vec4<u32>(15u);
    let h = (vec4<u32>(hi, hi >> 8u, hi >> 16u, hi >> 24u) >> vec4<u32>(pair)) & vec4<u32>(3u);
    return vec4<f32>(l | (h << vec4<u32>(4u))) - 32.0;
}

// Signed byte `n` of the vector `v`.
fn signed_byte(v: vec4<u32>, n: u32) -> f32 {
    return f32(bitcast<i32>((v[n / 4u] >> (8u * (n % 4u))) << 24u) >> 24u);
}

// Where sub-block `b` of row `row` lives: the first of its two vectors of low nibbles and
// of high bit pairs, the shifts that bring its values down, and its two halves'
// multipliers d · scale.
struct Q6Sub {
    ql: u32,
    qh: u32,
    nib: u32,
    pair: u32,
    d0: f32,
    d1: f32,
}

fn q6_sub(row: u32, b: u32, nb: u32) -> Q6Sub {
    let k = row * (nb / 8u) + b / 8u;
    let j = b % 8u;
    let half = j / 4u;
    let s = j % 4u;
    let base = k * 13u;
    let d = unpack2x16float(ws[k / 2u])[k % 2u];
    let scales = wq[base + 12u];
    return Q6Sub(base + 4u * half + 2u * (s % 2u), base + 8u + 2u * half, 4u * (s / 2u),
        2u * s, d * signed_byte(scales, 8u * half + 2u * s),
        d * signed_byte(scales, 8u * half + 2u * s + 1u));
}

fn block_values(row: u32, b: u32, nb: u32) -> Block {
    let q = q6_sub(row, b, nb);
    let l0 = wq[q.ql];
    let l1 = wq[q.ql + 1u];
    let h0 = wq[q.qh];
    let h1 = wq[q.qh + 1u];
    let nib = q.nib;
    let pair = q.pair;
    let d0 = q.d0;
    let d1 = q.d1;
    return Block(q6(l0.x, nib, h0.x, pair) * d0, q6(l0.y, nib, h0.y, pair) * d0,
                 q6(l0.z, nib, h0.z, pair) * d0, q6(l0.w, nib, h0.w, pair) * d0,
                 q6(l1.x, nib, h1.x, pair) * d1, q6(l1.y, nib, h1.y, pair) * d1,
                 q6(l1.z, nib, h1.z, pair) * d1, q6(l1.w, nib, h1.w, pair) * d1);
}
