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

// The 32 activations at vector `base` of `act`.
fn load_act(base: u32) -> Block {
    return Block(act[base], act[base + 1u], act[base + 2u], act[base + 3u],
                 act[base + 4u], act[base + 5u], act[base + 6u], act[base + 7u]);
}

fn block_dot(w: Block, a: Block) -> f32 {
    return dot(w.v0, a.v0) + dot(w.v1, a.v1) + dot(w.v2, a.v2) + dot(w.v3, a.v3)
        + dot(w.v4, a.v4) + dot(w.v5, a.v5) + dot(w.v6, a.v6) + dot(w.v7, a.v7);
}

// The four bytes of `q` shifted right by `shift` and masked to a nibble.
fn nibbles(q: u32, shift: u32) -> vec4<f32> {
    return vec4<f32>((vec4<u32>(q, q >> 8u, q >> 16u, q >> 24u) >> vec4<u32>(shift)) & vec4<u32>(15u));
}

// The four signed bytes of `q`.
fn signed_bytes(q: u32) -> vec4<f32> {
    return vec4<f32>(vec4<i32>(bitcast<i32>(q << 24u), bitcast<i32>(q << 16u),
                               bitcast<i32>(q << 8u), bitcast<i32>(q)) >> vec4<u32>(24u));
}
