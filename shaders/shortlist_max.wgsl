// A shortlist's first pass: the largest logit of each of CHUNKS equal chunks of the row,
// NaN and -inf not counting (LOWEST where a chunk has none). One workgroup a chunk;
// workgroup 0 also empties the list for the second pass.
// Defines: COMBINE (combine.wgsl), and shortlist.wgsl's.

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let size = (p.n_vocab + CHUNKS - 1u) / CHUNKS;
    let end = min(p.n_vocab, (wg.x + 1u) * size);
    var m = LOWEST;
    for (var i = wg.x * size + lid; i < end; i += WG) {
        // NaN is never above anything.
        let x = logits[i];
        if x > m {
            m = x;
        }
    }
    let top = combine(m, lid, true);
    if lid == 0u {
        maxima[wg.x] = top;
        if wg.x == 0u {
            atomicStore(&list.count, 0u);
        }
    }
}
