// What attention.wgsl and attention_merge.wgsl share: how one token's cached positions
// are split over workgroups, and how a head's output row is stored.
// A head of one token is a single workgroup walking every cached position, which leaves
// most of a large GPU idle once the context is long (32 heads on 132 multiprocessors).
// So a step of one token gives each head PARTS workgroups, each over a run of the
// positions, with its own running maximum and sum; they leave their unnormalized
// outputs in `parts` and attention_merge.wgsl weighs them together. Where a head has one
// part, the attention stores its output itself and the merge dispatches nothing.
// Defines: SPAN (cached positions a part takes at least; 0xFFFFFFFF never splits),
// MAX_PARTS, and HD from the including shader. `split_parts` is mirrored by
// `PositionSplit::parts` (ops.rs), which sizes the dispatches.

const SPAN: u32 = {{SPAN}}u;
const MAX_PARTS: u32 = {{MAX_PARTS}}u;
// below any score, yet finite: exp(LOW - LOW) is 1, not NaN
const LOW: f32 = -3.0e38;

// The parts of one token's head that has `seen` cached positions before its own: one
// per SPAN positions, and no more than the runs of HD positions the attention walks.
fn split_parts(seen: u32) -> u32 {
    let runs = (seen + HD - 1u) / HD;
    return clamp(min(seen / SPAN, runs), 1u, MAX_PARTS);
}

// Where part `part` of head `h` keeps its HD output values, then its maximum score and
// its sum of weights.
fn part_at(h: u32, part: u32) -> u32 {
    return (h * MAX_PARTS + part) * (HD + 2u);
}

var<workgroup> head_row: array<f32, HD>;

// Stores value `lid` of the head whose row starts at `o` in `out`, and, once the whole
// workgroup has, the row's 8-bit copy (`store_q8`: q8_store.wgsl or q8_none.wgsl). Every
// thread calls it.
fn store_head(o: u32, lid: u32, x: f32) {
    head_row[lid] = x;
    out[o + lid] = x;
    workgroupBarrier();
    if lid < HD / 32u {
        let b = 32u * lid;
        store_q8(o / 32u + lid, array<vec4<f32>, 8>(
            vec4<f32>(head_row[b], head_row[b + 1u], head_row[b + 2u], head_row[b + 3u]),
            vec4<f32>(head_row[b + 4u], head_row[b + 5u], head_row[b + 6u], head_row[b + 7u]),
            vec4<f32>(head_row[b + 8u], head_row[b + 9u], head_row[b + 10u], head_row[b + 11u]),
            vec4<f32>(head_row[b + 12u], head_row[b + 13u], head_row[b + 14u], head_row[b + 15u]),
            vec4<f32>(head_row[b + 16u], head_row[b + 17u], head_row[b + 18u], head_row[b + 19u]),
            vec4<f32>(head_row[b + 20u], head_row[b + 21u], head_row[b + 22u], head_row[b + 23u]),
            vec4<f32>(head_row[b + 24u], head_row[b + 25u], head_row[b + 26u], head_row[b + 27u]),
            vec4<f32>(head_row[b + 28u], head_row[b + 29u], head_row[b + 30u], head_row[b + 31u])));
    }
}
