// Q5_K: wq is the 176-byte super-blocks as they are stored, eleven vectors each: the
// first as Q4_K's (d, dmin and the 6-bit scales and mins, read by `scale_min` in
// block.wgsl), two of fifth bits (byte l holds bit j for value l of sub-block j), then
// eight of nibbles as Q4_K's. ws is unused. value = d · scale · q - dmin · min.

// Values 0-15 (`half` 0) or 16-31 (1) of sub-block `j` of super-block `k` as bytes.
fn q5_k_bytes(k: u32, j: u32, half: u32) -> vec4<u32> {
    let q = wq[k * 11u + 3u + (j / 2u) * 2u + half];
    let h = wq[k * 11u + 1u + half];
    let fifths = ((h >> vec4<u32>(j)) & vec4<u32>(0x01010101u)) << vec4<u32>(4u);
    return ((q >> vec4<u32>(4u * (j % 2u))) & vec4<u32>(0x0F0F0F0Fu)) | fifths;
}

fn block_values(row: u32, b: u32, nb: u32) -> Block {
    let k = row * (nb / 8u) + b / 8u;
    let j = b % 8u;
    let dm = scale_min(wq[k * 11u], j);
    return block_of_bytes(q5_k_bytes(k, j, 0u), q5_k_bytes(k, j, 1u), 0.0, dm.x, -dm.y);
}
