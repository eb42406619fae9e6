// hidden = silu(gate) · up, the SwiGLU of the feed-forward block, from the rows of the
// fused gate and up product.

struct SiluParams {
    // values in a row
    width: u32,
}

@group(0) @binding(0) var<uniform> p: SiluParams;
@group(0) @binding(1) var<uniform> step: Step;
// [n_tokens][2 · width]: gate, then up
@group(0) @binding(2) var<storage, read> gate_up: array<vec4<f32>>;
// [n_tokens][width]
@group(0) @binding(3) var<storage, read_write> hidden: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.y * 65535u * 64u + id.x;
    let w = p.width / 4u;
    if i >= step.n_tokens * w {
        return;
    }
    let t = i / w;
    let g = gate_up[i + t * w];
    hidden[i] = g / (1.0 + exp(-g)) * gate_up[i + (t + 1u) * w];
}
