// What a shader that makes activation blocks includes when no 8-bit copy of them is
// wanted (the exact path): `store_q8` (q8_store.wgsl) does nothing, and binds nothing.
fn store_q8(k: u32, v: array<vec4<f32>, 8>) {}
