// out[t][row] (+)= Σ_c W[row][c] · act[t][c] for a batch of tokens: prompt processing.
// Each workgroup computes a tile of BM rows by BN tokens, stepping through the columns a
// block of 32 at a time: BM threads decode the tile's weight blocks (the type's
// `block_values`, appended with `block.wgsl`) and every thread loads a share of the
// tokens' activations, both into workgroup memory; then each thread accumulates BM / 16
// rows (fours, 64 apart) by 4 tokens from there. A weight block is decoded once per BN
// tokens, and each value read from workgroup memory serves 4 or 8 multiply-adds.
//
// Defines: BM (64 or 128: rows of a tile; 128 reads workgroup memory less per
// multiply-add, 64 makes more workgroups of a small matrix), ADD (1: add into out, the
// residual stream; 0: store).

const BM: u32 = {{BM}}u;
const BN: u32 = 64u;
const W_ROW: u32 = BM / 4u;

// [32][BM / 4]: the tile's weights, column-major in fours of rows
var<workgroup> w_tile: array<vec4<f32>, 8u * BM>;
// [32][BN / 4]: the tile's activations, column-major in fours of tokens
var<workgroup> x_tile: array<vec4<f32>, 512>;

fn store_weights(k: u32, r: u32, v: vec4<f32>) {
    w_tile[(k + 0u) * W_ROW + r / 4u][r % 4u] = v.x;
    w_tile[(k + 1u) * W_ROW + r / 4u][r % 4u] = v.y;
    w_tile[(k + 2u) * W_ROW + r / 4u][r % 4u] = v.z;
    w_tile[(k + 3u) * W_ROW + r / 4u][r % 4u] = v.w;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row_base = (wg.y * p.groups_x + wg.x) * BM;
    let tokens = batch_tokens();
    let n = tokens.x;
    let src0 = tokens.y;
    let tok_base = wg.z * BN;
    let nb = p.cols / 32u;
    // this thread's outputs: rows tr·4.. (and 64 + tr·4.. when BM is 128), tokens tc·4..
    let tr = lid / 16u;
    let tc = lid % 16u;
    // this thread's share of the activations: token lt, values lp·8..lp·8 + 7
    let lt = lid / 4u;
    let lp = lid % 4u;
    let act_row = (src0 + min(tok_base + lt, n - 1u)) * p.cols / 4u;

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var acc4 = vec4<f32>(0.0);
    var acc5 = vec4<f32>(0.0);
    var acc6 = vec4<f32>(0.0);
    var acc7 = vec4<f32>(0.0);
    for (var b = 0u; b < nb; b++) {
        if lid < BM {
            let w = block_values(min(row_base + lid, p.rows - 1u), b, nb);
            store_weights(0u, lid, w.v0);
            store_weights(4u, lid, w.v1);
            store_weights(8u, lid, w.v2);
            store_weights(12u, lid, w.v3);
            store_weights(16u, lid, w.v4);
            store_weights(20u, lid, w.v5);
            store_weights(24u, lid, w.v6);
            store_weights(28u, lid, w.v7);
        }
        let a0 = act[act_row + b * 8u + lp * 2u];
        let a1 = act[act_row + b * 8u + lp * 2u + 1u];
        let k0 = lp * 8u;
        x_tile[(k0 + 0u) * 16u + lt / 4u][lt % 4u] = a0.x;
        x_tile[(k0 + 1u) * 16u + lt / 4u][lt % 4u] = a0.y;
        x_tile[(k0 + 2u) * 16u + lt / 4u][lt % 4u] = a0.z;
        x_tile[(k0 + 3u) * 16u + lt / 4u][lt % 4u] = a0.w;
        x_tile[(k0 + 4u) * 16u + lt / 4u][lt % 4u] = a1.x;
        x_tile[(k0 + 5u) * 16u + lt / 4u][lt % 4u] = a1.y;
        x_tile[(k0 + 6u) * 16u + lt / 4u][lt % 4u] = a1.z;
        x_tile[(k0 + 7u) * 16u + lt / 4u][lt % 4u] = a1.w;
        workgroupBarrier();
        for (var k = 0u; k < 32u; k++) {
            let w = w_tile[k * W_ROW + tr];
            let x = x_tile[k * 16u + tc];
            acc0 += w.x * x;
            acc1 += w.y * x;
            acc2 += w.z * x;
            acc3 += w.w * x;
            if BM == 128u {
                let w2 = w_tile[k * W_ROW + 16u + tr];
                acc4 += w2.x * x;
                acc5 += w2.y * x;
                acc6 += w2.z * x;
                acc7 += w2.w * x;
            }
        }
        workgroupBarrier();
    }
    let accs = array<vec4<f32>, 8>(acc0, acc1, acc2, acc3, acc4, acc5, acc6, acc7);
    for (var i = 0u; i < BM / 16u; i++) {
        let row = row_base + (i / 4u) * 64u + tr * 4u + i % 4u;
        for (var j = 0u; j < 4u; j++) {
            let t = tok_base + tc * 4u + j;
            if row < p.rows && t < n {
                _ = store_out(t, row, accs[i][j]);
            }
        }
    }
}
