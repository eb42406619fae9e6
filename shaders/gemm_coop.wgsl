enable f16;
enable wgpu_cooperative_matrix;

// out[t][row] (+)= Σ_c W[row][c] · act[t][c] for a batch of tokens on the GPU's matrix
// units (cooperative matrices: tensor cores, where the adapter has 16x16x16 products of
// f16 with f32 sums). Each workgroup computes a tile of BM rows by BN tokens, stepping
// through the columns two blocks (64 values) at a time: the threads decode the tile's
// weight blocks (the type's `block_values`, appended with `block.wgsl`) and load the
// tokens' activations, both as f16 into workgroup memory; then each of the 8 subgroups
// (of 32 lanes) multiplies 16x16 pieces of them into its share of the tile, TT pieces of
// tokens by TR of rows, with f32 sums. The sums go out through workgroup memory a piece at a time, so
// that partial tiles and the residual add are plain per-value writes.
//
// Workgroup memory holds a column's values across the tile (k-major): the threads that
// fill it write neighbouring rows or tokens, so their stores fall in different banks.
//
// As f16, weights and activations keep 11 significant bits (the 8-bit activations of one
// token keep fewer); a value beyond ±65504 would become infinite, which normalized
// activations and quantized weights do not reach.
//
// Defines: BM (64 or 128), BN (64, or 128 with BM 128), ADD (1: add into out, the
// residual stream; 0: store).

const BM: u32 = {{BM}}u;
const BN: u32 = {{BN}}u;
// columns in workgroup memory per pass: two blocks
const BK: u32 = 64u;
// strides of a column in workgroup memory, padded so that the eight 16-byte rows a piece
// loads at once start in different banks
const LDW: u32 = BM + 8u;
const LDX: u32 = BN + 8u;
// the 8 subgroups are 2 (tokens) by 4 (rows); each has TT by TR pieces of 16x16
const TT: u32 = BN / 32u;
const TR: u32 = BM / 64u;
// activation values a thread loads per pass: BN tokens by BK columns over 256 threads
const VPT: u32 = BN / 4u;

// [BK][LDW]: the tile's weights, column by column
var<workgroup> w_tile: array<f16, BK * LDW>;
// [BK][LDX]: the tile's activations, column by column
var<workgroup> x_tile: array<f16, BK * LDX>;
// [8][16][16]: one 16x16 piece of sums per subgroup on its way out
var<workgroup> stage: array<f32, 2048>;

// Block `w` of a weight row into column `k0`.. of row `r` of the tile.
fn store_weights(k0: u32, r: u32, w: Block) {
    let v = array<vec4<f32>, 8>(w.v0, w.v1, w.v2, w.v3, w.v4, w.v5, w.v6, w.v7);
    for (var i = 0u; i < 8u; i++) {
        let h = vec4<f16>(v[i]);
        let at = (k0 + 4u * i) * LDW + r;
        w_tile[at] = h.x;
        w_tile[at + LDW] = h.y;
        w_tile[at + 2u * LDW] = h.z;
        w_tile[at + 3u * LDW] = h.w;
    }
}

// Writes a subgroup's 16x16 piece of sums (tokens by rows) to `out`, within the matrix
// and the step's tokens.
fn write_piece(c: coop_mat16x16<f32, C>, warp: u32, lane: u32, t0: u32, r0: u32, n: u32) {
    let s = warp * 256u;
    coopStoreT(c, &stage[s], 16u);
    workgroupBarrier();
    for (var e = lane; e < 256u; e += 32u) {
        let t = t0 + e / 16u;
        let row = r0 + e % 16u;
        if row < p.rows && t < n {
            _ = store_out(t, row, stage[s + e]);
        }
    }
    workgroupBarrier();
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row_base = (wg.y * p.groups_x + wg.x) * BM;
    let tokens = batch_tokens();
    let n = tokens.x;
    let src0 = tokens.y;
    let tok_base = wg.z * BN;
    let nb = p.cols / 32u;
    let warp = lid / 32u;
    let lane = lid % 32u;
    // this subgroup's pieces start at token wt and row wr of the tile
    let wt = (warp % 2u) * 16u * TT;
    let wr = (warp / 2u) * 16u * TR;
    // this thread's share of the activations: token lt, columns lk.. of the pass
    let lt = lid % BN;
    let lk = (lid / BN) * VPT;
    let act_row = (src0 + min(tok_base + lt, n - 1u)) * p.cols / 4u;

    // The sums start from zeros loaded from workgroup memory: the one constructor every
    // backend of cooperative matrices takes.
    for (var i = lid; i < 2048u; i += 256u) {
        stage[i] = 0.0;
    }
    workgroupBarrier();
    let zero = coopLoad<coop_mat16x16<f32, C>>(&stage[0], 16u);
    // c{token piece}{row piece}
    var c00 = zero;
    var c10 = zero;
    var c20 = zero;
    var c30 = zero;
    var c01 = zero;
    var c11 = zero;
    var c21 = zero;
    var c31 = zero;

    for (var b = 0u; b < nb; b += 2u) {
        for (var i = lid; i < 2u * BM; i += 256u) {
            let r = i % BM;
            let h = i / BM;
            var w = Block();
            if b + h < nb {
                w = block_values(min(row_base + r, p.rows - 1u), b + h, nb);
            }
            store_weights(h * 32u, r, w);
        }
        for (var j = 0u; j < VPT; j += 4u) {
            let k = lk + j;
            var a = vec4<f32>(0.0);
            if b * 32u + k < p.cols {
                a = act[act_row + (b * 32u + k) / 4u];
            }
            let h = vec4<f16>(a);
            let at = k * LDX + lt;
            x_tile[at] = h.x;
            x_tile[at + LDX] = h.y;
            x_tile[at + 2u * LDX] = h.z;
            x_tile[at + 3u * LDX] = h.w;
        }
        workgroupBarrier();
        for (var k = 0u; k < BK; k += 16u) {
            let xk = k * LDX + wt;
            let wk = k * LDW + wr;
            let a0 = coopLoad<coop_mat16x16<f16, A>>(&x_tile[xk], LDX);
            let a1 = coopLoad<coop_mat16x16<f16, A>>(&x_tile[xk + 16u], LDX);
            let b0 = coopLoadT<coop_mat16x16<f16, B>>(&w_tile[wk], LDW);
            c00 = coopMultiplyAdd(a0, b0, c00);
            c10 = coopMultiplyAdd(a1, b0, c10);
            if TR == 2u {
                let b1 = coopLoadT<coop_mat16x16<f16, B>>(&w_tile[wk + 16u], LDW);
                c01 = coopMultiplyAdd(a0, b1, c01);
                c11 = coopMultiplyAdd(a1, b1, c11);
                if TT == 4u {
                    let a2 = coopLoad<coop_mat16x16<f16, A>>(&x_tile[xk + 32u], LDX);
                    let a3 = coopLoad<coop_mat16x16<f16, A>>(&x_tile[xk + 48u], LDX);
                    c20 = coopMultiplyAdd(a2, b0, c20);
                    c30 = coopMultiplyAdd(a3, b0, c30);
                    c21 = coopMultiplyAdd(a2, b1, c21);
                    c31 = coopMultiplyAdd(a3, b1, c31);
                }
            }
        }
        workgroupBarrier();
    }

    let t0 = tok_base + wt;
    let r0 = row_base + wr;
    write_piece(c00, warp, lane, t0, r0, n);
    write_piece(c10, warp, lane, t0 + 16u, r0, n);
    if TR == 2u {
        write_piece(c01, warp, lane, t0, r0 + 16u, n);
        write_piece(c11, warp, lane, t0 + 16u, r0 + 16u, n);
        if TT == 4u {
            write_piece(c20, warp, lane, t0 + 32u, r0, n);
            write_piece(c30, warp, lane, t0 + 48u, r0, n);
            write_piece(c21, warp, lane, t0 + 32u, r0 + 16u, n);
            write_piece(c31, warp, lane, t0 + 48u, r0 + 16u, n);
        }
    }
}
