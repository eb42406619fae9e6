// out[row] (+)= Σ_c W[row][c] · act[token][c] for one token: the matrix-vector product of
// token generation, which streams every weight once and is bound by memory bandwidth.
// Each run of 32 lanes takes ROWS rows: lane l multiplies blocks l, l + 32, ... of
// them with the token's block, loaded once for the ROWS rows (`load_act` and `row_dot`:
// act_f32.wgsl with the type's `block_values`, or act_q8.wgsl with the type's integer
// dot product); then the 32 partial sums of each row are added across lanes. The lanes
// read 32 consecutive weight blocks at a time.
//
// Defines: ROWS, GROUPS (runs of 32 lanes per workgroup), ADD (1: add into out), REDUCE
// (the body of `sum32`: a subgroup sum where subgroups are 32 lanes wide, else a tree in
// workgroup memory).

const LANES: u32 = 32u;
const ROWS: u32 = {{ROWS}}u;
const GROUPS: u32 = {{GROUPS}}u;
const WG: u32 = LANES * GROUPS;

var<workgroup> partial: array<f32, WG>;

// The sum of `x` over the 32 lanes of `lid`'s run; every lane calls it.
fn sum32(x: f32, lid: u32) -> f32 {
    {{REDUCE}}
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let lane = lid % LANES;
    let row0 = ((wg.y * p.groups_x + wg.x) * GROUPS + lid / LANES) * ROWS;
    let src = batch_tokens().y;
    let nb = p.cols / 32u;
    var acc: array<f32, ROWS>;
    for (var b = lane; b < nb; b += LANES) {
        let a = load_act(src, b, nb);
        for (var r = 0u; r < ROWS; r++) {
            acc[r] += row_dot(min(row0 + r, p.rows - 1u), b, nb, a);
        }
    }
    for (var r = 0u; r < ROWS; r++) {
        let total = sum32(acc[r], lid);
        let row = row0 + r;
        if lane == 0u && row < p.rows {
            store_out(0u, row, total);
        }
    }
}
