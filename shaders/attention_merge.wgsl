// One token's attention whose cached positions attention.wgsl split over workgroups
// (attention_parts.wgsl): each head's parts, each weighed by exp(its maximum score - the
// largest), make the head's output and its 8-bit copy, as the CPU merges its chunks.
// One workgroup of HD threads a head; thread i makes value i.
// Defines: HD, SPAN and MAX_PARTS (attention_parts.wgsl).

// Not read: a uniform binding may not be empty.
struct MergeParams {
    n_heads: u32,
}

@group(0) @binding(0) var<uniform> p: MergeParams;
@group(0) @binding(1) var<uniform> step: Step;
// [n_heads][MAX_PARTS][HD + 2]: each part's unnormalized output, maximum and sum
@group(0) @binding(2) var<storage, read> parts: array<f32>;
// [n_heads][HD]
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const HD: u32 = {{HD}}u;

@compute @workgroup_size(HD)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let h = wg.x;
    // one token's cached positions: those before its own
    let n_parts = split_parts(step.pos0);
    var m = LOW;
    for (var i = 0u; i < n_parts; i++) {
        m = max(m, parts[part_at(h, i) + HD]);
    }
    var l = 0.0;
    var x = 0.0;
    for (var i = 0u; i < n_parts; i++) {
        let at = part_at(h, i);
        // an empty part's maximum is LOW: its weight is 0
        let w = exp(parts[at + HD] - m);
        l += w * parts[at + HD + 1u];
        x += w * parts[at + lid];
    }
    store_head(h * HD, lid, x / l);
}
