// What an RMSNorm reads (rms_norm.wgsl, rms_fold.wgsl): its parameters, its weight and
// the rows of x.

struct NormParams {
    dim: u32,
    eps: f32,
}

@group(0) @binding(0) var<uniform> p: NormParams;
@group(0) @binding(1) var<uniform> step: Step;
// [dim / 4]
@group(0) @binding(2) var<storage, read> weight: array<vec4<f32>>;
// [n_tokens][dim / 4]
@group(0) @binding(3) var<storage, read> x: array<vec4<f32>>;
