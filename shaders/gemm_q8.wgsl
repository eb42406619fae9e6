// out[t][row] (+)= Σ_c W[row][c] · act[t][c] for a batch of tokens with 8-bit activations
// (act_q8.wgsl): prompt processing on the fast path. Each workgroup computes a tile of 64
// rows by 64 tokens, stepping through the columns KB blocks of 32 at a time: every thread
// turns one (row, block) of weights into signed bytes (the type's `weight_q8`) and loads
// one (token, block) of activations, both into workgroup memory, word-major so that one
// vector read gives a word of four rows (or tokens); then each thread accumulates 4 rows
// by 4 tokens, sixteen `dot4I8Packed` per pair of vector reads, and applies the scales
// once per block. A dot4I8Packed is four multiply-adds in one instruction, where the f32
// product (gemm.wgsl) spends one on each.
//
// Defines: ADD (1: add into out, the residual stream; 0: store).

const BM: u32 = 64u;
const BN: u32 = 64u;
// blocks per stage between barriers: 256 threads fill BM (and BN) times KB entries
const KB: u32 = 4u;

// [KB][8 words][BM / 4]: word w of the block, four rows a vector
var<workgroup> w_tile: array<vec4<u32>, KB * 8u * BM / 4u>;
// [KB][BM]: lo_scale, hi_scale, offset
var<workgroup> w_scales: array<vec3<f32>, KB * BM>;
// [KB][8 words][BN / 4]
var<workgroup> x_tile: array<vec4<u32>, KB * 8u * BN / 4u>;
// [KB][BN]: d, d · Σ q
var<workgroup> x_scales: array<vec2<f32>, KB * BN>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row_base = (wg.y * p.groups_x + wg.x) * BM;
    var n = step.n_tokens;
    var src0 = 0u;
    if p.out_rows_only == 1u {
        n = step.n_out;
        src0 = step.out_first;
    }
    let tok_base = wg.z * BN;
    let nb = p.cols / 32u;
    // this thread's outputs: rows 4·tr.., tokens 4·tc..
    let tr = lid / 16u;
    let tc = lid % 16u;
    // what this thread loads: entry e of block kb (row e for weights, token e for
    // activations)
    let e = lid % BM;
    let kb = lid / BM;
    let w_row = min(row_base + e, p.rows - 1u);
    let x_row = src0 + min(tok_base + e, n - 1u);

    var acc: array<vec4<f32>, 4>;
    for (var b0 = 0u; b0 < nb; b0 += KB) {
        // A stage past the row's end repeats its last block with zero scales.
        let b = min(b0 + kb, nb - 1u);
        let live = b0 + kb < nb;
        let w = weight_q8(w_row, b, nb);
        let words = array<vec4<u32>, 2>(w.lo, w.hi);
        for (var i = 0u; i < 8u; i++) {
            w_tile[(kb * 8u + i) * (BM / 4u) + e / 4u][e % 4u] = words[i / 4u][i % 4u];
        }
        let scales = vec3<f32>(w.lo_scale, w.hi_scale, w.offset);
        w_scales[kb * BM + e] = select(vec3<f32>(0.0), scales, live);
        let k = x_row * nb + b;
        let xs = array<vec4<u32>, 2>(aq[2u * k], aq[2u * k + 1u]);
        for (var i = 0u; i < 8u; i++) {
            x_tile[(kb * 8u + i) * (BN / 4u) + e / 4u][e % 4u] = xs[i / 4u][i % 4u];
        }
        x_scales[kb * BN + e] = ad[k];
        workgroupBarrier();
        for (var s = 0u; s < KB; s++) {
            // [row][token] integer sums of the two halves of the block
            var lo: array<vec4<i32>, 4>;
            var hi: array<vec4<i32>, 4>;
            for (var i = 0u; i < 8u; i++) {
                let wv = w_tile[(s * 8u + i) * (BM / 4u) + tr];
                let xv = x_tile[(s * 8u + i) * (BN / 4u) + tc];
                for (var r = 0u; r < 4u; r++) {
                    let d = vec4<i32>(dot4I8Packed(wv[r], xv.x), dot4I8Packed(wv[r], xv.y),
                        dot4I8Packed(wv[r], xv.z), dot4I8Packed(wv[r], xv.w));
                    if i < 4u {
                        lo[r] += d;
                    } else {
                        hi[r] += d;
                    }
                }
            }
            let x0 = s * BN + 4u * tc;
            let xd = array<vec2<f32>, 4>(x_scales[x0], x_scales[x0 + 1u], x_scales[x0 + 2u],
                x_scales[x0 + 3u]);
            let d = vec4<f32>(xd[0].x, xd[1].x, xd[2].x, xd[3].x);
            let sum = vec4<f32>(xd[0].y, xd[1].y, xd[2].y, xd[3].y);
            for (var r = 0u; r < 4u; r++) {
                let ws = w_scales[s * BM + 4u * tr + r];
                acc[r] += d * (ws.x * vec4<f32>(lo[r]) + ws.y * vec4<f32>(hi[r])) + ws.z * sum;
            }
        }
        workgroupBarrier();
    }
    for (var r = 0u; r < 4u; r++) {
        let row = row_base + 4u * tr + r;
        for (var j = 0u; j < 4u; j++) {
            let t = tok_base + 4u * tc + j;
            if row < p.rows && t < n {
                let o = t * p.out_stride + p.row_offset + row;
                if ADD == 1u {
                    out[o] += acc[r][j];
                } else {
                    out[o] = acc[r][j];
                }
            }
        }
    }
}
