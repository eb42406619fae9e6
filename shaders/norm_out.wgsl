// The output side of an RMSNorm folded into the one-token products around it: the
// product that adds into the residual stream x also makes the next norm's input. Its
// workgroup's 32 rows (ROWS · GROUPS = 32) are one block of x, so once they are stored
// the workgroup writes that block's 8-bit copy of x · weight (`store_q8_block`:
// q8_block.wgsl) and its Σ x² (`norm_sums`: fold_store.wgsl); the products that read
// the copy apply the scale (norm_in.wgsl).
// Defines: NW (the weight's binding).

// [rows] the next norm's weight
@group(0) @binding({{NW}}) var<storage, read> norm_weight: array<f32>;

fn row_of(first: u32, run: u32, r: u32) -> u32 {
    return first + run * ROWS + r;
}

// The weight of the lane's row of the block, loaded as the product starts so that it
// is at hand at the end.
fn out_prefetch(first: u32, lid: u32) -> f32 {
    return norm_weight[p.row_offset + first + lid % LANES];
}

// Stores the run's rows and keeps what x now holds there.
fn emit(first: u32, run: u32, lane: u32, sums: array<f32, ROWS>) {
    for (var r = 0u; r < ROWS; r++) {
        let row = row_of(first, run, r);
        if lane == 0u && row < p.rows {
            kept[run * ROWS + r] = store_out(0u, row, sums[r]);
        }
    }
}

// Every thread calls it, with what `out_prefetch` gave it.
fn finish(first: u32, lid: u32, weight: f32) {
    workgroupBarrier();
    let x = kept[lid % LANES];
    let ss = sum32(x * x, lid);
    let k = (p.row_offset + first) / 32u;
    store_q8_block(k, x * weight, lid);
    if lid == 0u {
        norm_sums[k] = ss;
    }
}
