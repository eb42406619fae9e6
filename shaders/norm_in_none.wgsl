// A matrix-vector product whose input is not an RMSNorm folded into it.
fn in_prefetch(lid: u32) -> vec4<f32> {
    return vec4<f32>(0.0);
}

fn in_scale(lid: u32, first: vec4<f32>) -> f32 {
    return 1.0;
}
