// F16: wq holds eight values a vector, [rows][cols / 8].
fn halves(v: vec4<u32>, hi: u32) -> vec4<f32> {
    if hi == 0u {
        return vec4<f32>(unpack2x16float(v.x), unpack2x16float(v.y));
    }
    return vec4<f32>(unpack2x16float(v.z), unpack2x16float(v.w));
}

fn block_values(row: u32, b: u32, nb: u32) -> Block {
    let o = (row * nb + b) * 4u;
    let q0 = wq[o];
    let q1 = wq[o + 1u];
    let q2 = wq[o + 2u];
    let q3 = wq[o + 3u];
    return Block(halves(q0, 0u), halves(q0, 1u), halves(q1, 0u), halves(q1, 1u),
                 halves(q2, 0u), halves(q2, 1u), halves(q3, 0u), halves(q3, 1u));
}
