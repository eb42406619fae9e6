// Rotates each head's pairs (x[2i], x[2i+1]) of every token by the angle of its
// position: cos and sin come from the host's tables for the step's positions, so every
// scaling method (linear, NTK, dynamic NTK, YaRN, Llama 3) is the CPU's to the bit.

struct RopeParams {
    // heads in a row, and half a head (pairs per head)
    n_heads: u32,
    half: u32,
}

struct Step {
    n_tokens: u32,
    pos0: u32,
    out_first: u32,
    n_out: u32,
}

@group(0) @binding(0) var<uniform> p: RopeParams;
@group(0) @binding(1) var<uniform> step: Step;
// [n_tokens][half] cos, then [n_tokens][half] sin
@group(0) @binding(2) var<storage, read> table: array<f32>;
// [n_tokens][n_heads][2 * half], rotated in place
@group(0) @binding(3) var<storage, read_write> x: array<vec2<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    // one invocation per pair
    let per_token = p.n_heads * p.half;
    let i = id.y * 65535u * 64u + id.x;
    if i >= step.n_tokens * per_token {
        return;
    }
    let t = i / per_token;
    let pair = i % p.half;
    let c = table[t * p.half + pair];
    let s = table[(step.n_tokens + t) * p.half + pair];
    let v = x[i];
    x[i] = vec2<f32>(v.x * c - v.y * s, v.x * s + v.y * c);
}
