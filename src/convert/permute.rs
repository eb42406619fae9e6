//! The q/k row order. Hugging Face's Llama rotates element i of a head with element
//! i + d/2 (the half-split layout); GGUF `llama` models rotate 2i with 2i+1 (interleaved),
//! so llama.cpp's converter reorders the rows of q_proj and k_proj per head:
//! `w.reshape(n_head, 2, d/2, in).swapaxes(1, 2).reshape(out, in)`. Files that skip this
//! run, but attend to the wrong positions: short prompts look fine, perplexity does not.

/// Which stored row becomes output row `i`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowOrder {
    Identity,
    /// Half-split to interleaved, per head of `head_dim` rows.
    Interleave {
        head_dim: usize,
    },
}

impl RowOrder {
    /// The stored (Hugging Face) row that output (GGUF) row `i` comes from.
    pub fn source_row(self, i: usize) -> usize {
        match self {
            RowOrder::Identity => i,
            RowOrder::Interleave { head_dim } => {
                let (head, j) = (i / head_dim, i % head_dim);
                // Output row 2p + t of a head is pair member t of pair p: stored row
                // t * d/2 + p.
                head * head_dim + (j % 2) * (head_dim / 2) + j / 2
            }
        }
    }

    /// The inverse: the output row that stored row `r` goes to.
    pub fn output_row(self, r: usize) -> usize {
        match self {
            RowOrder::Identity => r,
            RowOrder::Interleave { head_dim } => {
                let (head, j) = (r / head_dim, r % head_dim);
                let half = head_dim / 2;
                head * head_dim + 2 * (j % half) + j / half
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The numpy expression, spelled out on row indices.
    fn numpy_permutation(n_head: usize, head_dim: usize) -> Vec<usize> {
        // reshape(n_head, 2, hd/2): stored row (h, t, p) = h*hd + t*hd/2 + p; swapaxes
        // gives output order (h, p, t).
        let mut out = Vec::new();
        for h in 0..n_head {
            for p in 0..head_dim / 2 {
                for t in 0..2 {
                    out.push(h * head_dim + t * head_dim / 2 + p);
                }
            }
        }
        out
    }

    #[test]
    fn matches_llama_cpp_permute() {
        for (n_head, hd) in [(1, 2), (3, 8), (9, 64), (4, 128)] {
            let order = RowOrder::Interleave { head_dim: hd };
            let ours: Vec<usize> = (0..n_head * hd).map(|i| order.source_row(i)).collect();
            assert_eq!(ours, numpy_permutation(n_head, hd));
            for i in 0..n_head * hd {
                assert_eq!(order.output_row(order.source_row(i)), i);
            }
        }
    }
}
