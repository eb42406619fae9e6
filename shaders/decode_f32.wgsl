// F32: wq is the matrix's values as bits, [rows][cols / 4] vectors.
fn block_values(row: u32, b: u32, nb: u32) -> Block {
    let o = (row * nb + b) * 8u;
    return Block(bitcast<vec4<f32>>(wq[o]), bitcast<vec4<f32>>(wq[o + 1u]),
                 bitcast<vec4<f32>>(wq[o + 2u]), bitcast<vec4<f32>>(wq[o + 3u]),
                 bitcast<vec4<f32>>(wq[o + 4u]), bitcast<vec4<f32>>(wq[o + 5u]),
                 bitcast<vec4<f32>>(wq[o + 6u]), bitcast<vec4<f32>>(wq[o + 7u]));
}
