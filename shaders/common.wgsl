// Prepended to every shader: the step's shape, which binding 1 of every op holds.
struct Step {
    n_tokens: u32,
    pos0: u32,
    // the first token whose logits are wanted, and how many
    out_first: u32,
    n_out: u32,
    // 0: the logits themselves come back; k > 0: a shortlist of at least the k most
    // likely of the one output token's (shortlist.wgsl)
    shortlist: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}
