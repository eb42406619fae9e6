// Q4_K: wq is the 144-byte super-blocks as they are stored, nine vectors each: the first
// holds d and dmin (f16) and the twelve bytes of 6-bit scales and mins, the other eight
// the nibbles (two vectors serve two 32-value sub-blocks: low nibbles, then high). ws is
// unused. value = d · scale · q - dmin · min.
// Sub-block j's multipliers from the super-block's first vector: (d · scale, dmin · min).
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

fn block_values(row: u32, b: u32, nb: u32) -> Block {
    let k = row * (nb / 8u) + b / 8u;
    let j = b % 8u;
    let dm = scale_min(wq[k * 9u], j);
    let d = dm.x;
    let m = dm.y;
    let shift = 4u * (j % 2u);
    let o = k * 9u + 1u + (j / 2u) * 2u;
    let q0 = wq[o];
    let q1 = wq[o + 1u];
    return Block(nibbles(q0.x, shift, 0.0) * d - m, nibbles(q0.y, shift, 0.0) * d - m,
                 nibbles(q0.z, shift, 0.0) * d - m, nibbles(q0.w, shift, 0.0) * d - m,
                 nibbles(q1.x, shift, 0.0) * d - m, nibbles(q1.y, shift, 0.0) * d - m,
                 nibbles(q1.z, shift, 0.0) * d - m, nibbles(q1.w, shift, 0.0) * d - m);
}
