// What the two passes of a shortlist share (shortlist_max.wgsl, then
// shortlist_gather.wgsl): the last token's k most likely logits, and every logit tied with
// them, go to the CPU in place of the whole row.
// Defines: CAPACITY, PER_THREAD.

struct ShortlistParams {
    n_vocab: u32,
}

// What comes back: how many logits reached the threshold (more than CAPACITY: the list
// overflowed, and the CPU reads the row instead), then the first CAPACITY of them as
// (token id, logit bits), in no order.
struct Shortlist {
    count: atomic<u32>,
    pad: u32,
    items: array<vec2<u32>, CAPACITY>,
}

@group(0) @binding(0) var<uniform> p: ShortlistParams;
@group(0) @binding(1) var<uniform> step: Step;
// [n_vocab] the logits of the step's output token
@group(0) @binding(2) var<storage, read> logits: array<f32>;
// [CHUNKS] the largest logit of each chunk of the row
@group(0) @binding(3) var<storage, read_write> maxima: array<f32, CHUNKS>;
@group(0) @binding(4) var<storage, read_write> list: Shortlist;

const CHUNKS: u32 = 256u;
const WG: u32 = 256u;
const CAPACITY: u32 = {{CAPACITY}}u;
const PER_THREAD: u32 = {{PER_THREAD}}u;
// The least logit a shortlist holds: NaN and -inf are never picked, so never listed.
const LOWEST: f32 = -3.40282347e38;
