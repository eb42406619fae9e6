// out[row] (+)= Σ_c W[row][c] · act[token][c] for one token: the matrix-vector product of
// token generation, which streams every weight once and is bound by memory bandwidth.
// Each run of 32 lanes takes ROWS rows: lane l multiplies blocks l, l + 32, ... of
// them with the token's block, loaded once for the ROWS rows (`load_act` and `row_dot`:
// act_f32.wgsl with the type's `block_values`, or act_q8.wgsl with the type's integer
// dot product); then the 32 partial sums of each row are added across lanes. The lanes
// read 32 consecutive weight blocks at a time.
// What the rows become is the output side's (`row_of`, `emit` and `finish`: out_store.wgsl,
// or norm_out.wgsl or glu_out.wgsl, which fold the next op in); the input side may scale
// the sums (`in_scale`: norm_in.wgsl, or norm_in_none.wgsl).
//
// Defines: ROWS, GROUPS (runs of 32 lanes per workgroup), ADD (1: add into out), REDUCE
// and REDUCE_MAX (the bodies of `sum32` and `max32`: subgroup operations where subgroups
// are 32 lanes wide, else trees in workgroup memory).

const LANES: u32 = 32u;
const ROWS: u32 = {{ROWS}}u;
const GROUPS: u32 = {{GROUPS}}u;
const WG: u32 = LANES * GROUPS;

var<workgroup> partial: array<f32, WG>;

// The sum of `x` over the 32 lanes of `lid`'s run; every lane calls it.
fn sum32(x: f32, lid: u32) -> f32 {
    {{REDUCE}}
}

// The maximum of `x` over the 32 lanes of `lid`'s run; every lane calls it.
fn max32(x: f32, lid: u32) -> f32 {
    {{REDUCE_MAX}}
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let lane = lid % LANES;
    let run = lid / LANES;
    let first = (wg.y * p.groups_x + wg.x) * GROUPS * ROWS;
    let in_sums = in_prefetch(lid);
    let out_weight = out_prefetch(first, lid);
    let src = batch_tokens().y;
    let nb = p.cols / 32u;
    var acc: array<f32, ROWS>;
    for (var b = lane; b < nb; b += LANES) {
        let a = load_act(src, b, nb);
        for (var r = 0u; r < ROWS; r++) {
            acc[r] += row_dot(min(row_of(first, run, r), p.rows - 1u), b, nb, a);
        }
    }
    let scale = in_scale(lid, in_sums);
    for (var r = 0u; r < ROWS; r++) {
        acc[r] = sum32(acc[r], lid) * scale;
    }
    emit(first, run, lane, acc);
    finish(first, lid, out_weight);
}
