// SwiGLU folded into the one-token product of the stacked gate and up matrices
// ([gate; up], 2 · width rows): run `run` takes gate row h and up row h + width, for
// hidden value h = first / 2 + run, and stores silu(gate) · up into `out` (the hidden
// row, width wide) as silu_mul.wgsl does. A workgroup's 32 runs (ROWS = 2, GROUPS = 32)
// make one block of the hidden row, whose 8-bit copy it writes (`store_q8_block`:
// q8_block.wgsl).

fn row_of(first: u32, run: u32, r: u32) -> u32 {
    return first / 2u + run + r * (p.rows / 2u);
}

fn out_prefetch(first: u32, lid: u32) -> f32 {
    return 0.0;
}

fn emit(first: u32, run: u32, lane: u32, sums: array<f32, ROWS>) {
    let g = sums[0];
    let v = g / (1.0 + exp(-g)) * sums[1];
    if lane == 0u {
        out[p.row_offset + first / 2u + run] = v;
        kept[run] = v;
    }
}

fn finish(first: u32, lid: u32, weight: f32) {
    workgroupBarrier();
    store_q8_block((p.row_offset + first / 2u) / 32u, kept[lid % LANES], lid);
}
