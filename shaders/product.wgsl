// What the matrix-product drivers (matvec.wgsl, gemm.wgsl, gemm_coop.wgsl) bind: the
// product of rows of a weight matrix with activation rows, written to (or, with ADD = 1,
// added into) `out`.
// The activations (binding 4, and 6 for 8-bit ones) are declared by act_f32.wgsl or
// act_q8.wgsl.

struct MatParams {
    // rows of this binding's slice of the matrix
    rows: u32,
    cols: u32,
    // where this slice's first row lands in an `out` row, and the width of an `out` row
    row_offset: u32,
    out_stride: u32,
    // 1: read the tokens the step wants logits for (Step.out_first, Step.n_out) rather
    // than all of them
    out_rows_only: u32,
    // workgroups along x of the dispatch (row groups beyond 65535 go along y)
    groups_x: u32,
    // the epsilon of an RMSNorm folded into this product's input (norm_in.wgsl)
    eps: f32,
}

@group(0) @binding(0) var<uniform> p: MatParams;
@group(0) @binding(1) var<uniform> step: Step;
// the type's quants, in 16-byte vectors (layout: see the type's decode_*.wgsl)
@group(0) @binding(2) var<storage, read> wq: array<vec4<u32>>;
// the type's scales, in words (a dummy vector for f16, f32 and Q4_K)
@group(0) @binding(3) var<storage, read> ws: array<u32>;
// [tokens][out_stride]
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

const ADD: u32 = {{ADD}}u;

// The tokens a product reads: how many, and the first (the step's output tokens, where the
// product makes logits for them only).
fn batch_tokens() -> vec2<u32> {
    if p.out_rows_only == 1u {
        return vec2<u32>(step.n_out, step.out_first);
    }
    return vec2<u32>(step.n_tokens, 0u);
}

// Stores (or, with ADD = 1, adds) `v`, the sum of row `row` of this slice for output
// token `t`; returns what `out` now holds there.
fn store_out(t: u32, row: u32, v: f32) -> f32 {
    let o = t * p.out_stride + p.row_offset + row;
    var now = v;
    if ADD == 1u {
        now += out[o];
    }
    out[o] = now;
    return now;
}
