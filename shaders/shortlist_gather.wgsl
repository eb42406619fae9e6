// A shortlist's second pass: the threshold is the k-th largest chunk maximum (k =
// step.shortlist, ties to the lower chunk), which k logits reach, so the k most likely all
// do; every logit at or above it goes on the list. Each workgroup ranks the maxima itself,
// 256 comparisons a thread, rather than wait on a dispatch of its own; then its threads
// take PER_THREAD logits each.
// Defines: shortlist.wgsl's.

var<workgroup> maxima_here: array<f32, CHUNKS>;
var<workgroup> threshold: f32;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    // WG == CHUNKS: a maximum a thread.
    maxima_here[lid] = maxima[lid];
    workgroupBarrier();
    let mine = maxima_here[lid];
    var ahead = 0u;
    for (var j = 0u; j < CHUNKS; j++) {
        let other = maxima_here[j];
        ahead += u32(other > mine || (other == mine && j < lid));
    }
    // The ranks are 0..CHUNKS, each once: one thread sets the threshold.
    if ahead == clamp(step.shortlist, 1u, CHUNKS) - 1u {
        threshold = mine;
    }
    workgroupBarrier();
    let t = threshold;
    let first = wg.x * WG * PER_THREAD + lid;
    for (var r = 0u; r < PER_THREAD; r++) {
        let i = first + r * WG;
        if i < p.n_vocab {
            // t >= LOWEST, so NaN and -inf fail.
            let x = logits[i];
            if x >= t {
                let slot = atomicAdd(&list.count, 1u);
                if slot < CAPACITY {
                    list.items[slot] = vec2<u32>(i, bitcast<u32>(x));
                }
            }
        }
    }
}
