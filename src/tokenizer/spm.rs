//! SentencePiece BPE (`tokenizer.ggml.model = llama`), as SentencePiece and llama.cpp
//! run it: spaces become `▁`, every character starts as a symbol, and the adjacent pair
//! whose concatenation is a vocabulary piece with the highest score is merged first
//! (the leftmost among equal scores), until no pair forms a piece. Characters that are not
//! pieces fall back to their UTF-8 bytes as `<0xXX>` tokens.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::vocab::Vocab;
use super::TokenType;

const SPACE: char = '\u{2581}';

pub(crate) struct Spm {
    /// Merge priority of each token: higher merges first.
    scores: Vec<f32>,
    byte_token: [Option<u32>; 256],
    pub add_space_prefix: bool,
}

#[derive(Clone, Copy)]
struct Symbol {
    /// Byte range in the escaped text; empty once merged into its left neighbour.
    start: usize,
    end: usize,
    prev: usize,
    next: usize,
}

struct Bigram {
    score: f32,
    left: usize,
    right: usize,
    len: usize,
}

impl Ord for Bigram {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.left.cmp(&self.left))
    }
}

impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Bigram {}

impl Spm {
    pub fn new(vocab: &Vocab, scores: Vec<f32>, add_space_prefix: bool) -> Spm {
        let mut byte_token = [None; 256];
        for (b, slot) in byte_token.iter_mut().enumerate() {
            *slot = vocab.index.get(format!("<0x{b:02X}>").as_str()).copied();
        }
        Spm {
            scores,
            byte_token,
            add_space_prefix,
        }
    }

    /// Tokenizes one piece of raw text; `prefix_space` puts the `▁` in front that
    /// SentencePiece adds at the start of a text (and llama.cpp after special tokens).
    pub fn encode(
        &self,
        vocab: &Vocab,
        text: &str,
        prefix_space: bool,
        unk: Option<u32>,
        out: &mut Vec<u32>,
    ) {
        let mut escaped = String::with_capacity(text.len() + 3);
        if prefix_space {
            escaped.push(SPACE);
        }
        escaped.extend(text.chars().map(|c| if c == ' ' { SPACE } else { c }));
        if escaped.is_empty() {
            return;
        }

        let mut symbols: Vec<Symbol> = escaped
            .char_indices()
            .enumerate()
            .map(|(i, (at, c))| Symbol {
                start: at,
                end: at + c.len_utf8(),
                prev: i.wrapping_sub(1),
                next: i + 1,
            })
            .collect();
        let n = symbols.len();
        let mut heap = BinaryHeap::new();
        for i in 1..n {
            self.push_candidate(vocab, &escaped, &symbols, i - 1, i, &mut heap);
        }
        while let Some(b) = heap.pop() {
            let (l, r) = (symbols[b.left], symbols[b.right]);
            let current =
                l.start < l.end && r.start < r.end && l.next == b.right && r.end - l.start == b.len;
            if !current {
                continue;
            }
            symbols[b.left].end = r.end;
            symbols[b.left].next = r.next;
            symbols[b.right].end = symbols[b.right].start;
            if r.next < n {
                symbols[r.next].prev = b.left;
                self.push_candidate(vocab, &escaped, &symbols, b.left, r.next, &mut heap);
            }
            if l.prev < n {
                self.push_candidate(vocab, &escaped, &symbols, l.prev, b.left, &mut heap);
            }
        }

        let mut i = 0;
        while i < n {
            let s = symbols[i];
            let piece = &escaped[s.start..s.end];
            match vocab.index.get(piece) {
                Some(&id) if usable_as_text(vocab, id) => out.push(id),
                _ => {
                    for &byte in piece.as_bytes() {
                        out.extend(self.byte_token[byte as usize].or(unk));
                    }
                }
            }
            i = s.next;
        }
    }

    fn push_candidate(
        &self,
        vocab: &Vocab,
        escaped: &str,
        symbols: &[Symbol],
        left: usize,
        right: usize,
        heap: &mut BinaryHeap<Bigram>,
    ) {
        let (start, end) = (symbols[left].start, symbols[right].end);
        // Only normal pieces are merge results: control and byte pieces whose text happens
        // to appear in the input (`<s>`, `<0x41>`) are not, as in SentencePiece itself.
        if let Some(&id) = vocab.index.get(&escaped[start..end]) {
            if vocab.token_type(id) == Some(TokenType::Normal) {
                heap.push(Bigram {
                    score: self.scores.get(id as usize).copied().unwrap_or(0.0),
                    left,
                    right,
                    len: end - start,
                });
            }
        }
    }
}

fn usable_as_text(vocab: &Vocab, id: u32) -> bool {
    matches!(
        vocab.token_type(id),
        Some(TokenType::Normal | TokenType::UserDefined)
    )
}
