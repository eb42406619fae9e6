// dst = src, a vector of four words per invocation: the copy ceiling of a shader
// (bytes read plus written), which token generation is measured against.

struct CopyParams {
    // vectors to copy, and workgroups along x
    n: u32,
    groups_x: u32,
}

@group(0) @binding(0) var<uniform> p: CopyParams;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> dst: array<vec4<u32>>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wg.y * p.groups_x + wg.x) * 256u + lid;
    if i < p.n {
        dst[i] = src[i];
    }
}
