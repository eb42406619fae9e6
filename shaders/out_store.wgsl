// A matrix-vector product that stores its rows and nothing more: run `run` of the
// workgroup takes rows first + run · ROWS.. of the slice.

fn row_of(first: u32, run: u32, r: u32) -> u32 {
    return first + run * ROWS + r;
}

fn out_prefetch(first: u32, lid: u32) -> f32 {
    return 0.0;
}

fn emit(first: u32, run: u32, lane: u32, sums: array<f32, ROWS>) {
    for (var r = 0u; r < ROWS; r++) {
        let row = row_of(first, run, r);
        if lane == 0u && row < p.rows {
            _ = store_out(0u, row, sums[r]);
        }
    }
}

fn finish(first: u32, lid: u32, weight: f32) {}
