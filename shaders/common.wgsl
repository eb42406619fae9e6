// Prepended to every shader: the step's shape, which binding 1 of every op holds.
struct Step {
    n_tokens: u32,
    pos0: u32,
    // the first token whose logits are wanted, and how many
    out_first: u32,
    n_out: u32,
}
