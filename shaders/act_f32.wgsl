// Activations in f32, which the tiled product and the exact matrix-vector product read:
// each block of 32 weights is decoded to floats (the type's `block_values`) and
// multiplied with them.

// [n_tokens][cols]
@group(0) @binding(4) var<storage, read> act: array<vec4<f32>>;

// Block `b` of token `t`'s activations (rows of `nb` blocks).
fn load_act(t: u32, b: u32, nb: u32) -> Block {
    let base = (t * nb + b) * 8u;
    return Block(act[base], act[base + 1u], act[base + 2u], act[base + 3u],
                 act[base + 4u], act[base + 5u], act[base + 6u], act[base + 7u]);
}

// Block `b` of weight row `row` times the activations' block.
fn row_dot(row: u32, b: u32, nb: u32, a: Block) -> f32 {
    return block_dot(block_values(row, b, nb), a);
}
