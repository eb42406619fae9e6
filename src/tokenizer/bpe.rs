//! Byte-level BPE (`tokenizer.ggml.model = gpt2`): text is split into words by the
//! pre-tokenizer, each word's bytes become one symbol each (GPT-2's byte <-> unicode
//! table names them), and adjacent pairs are merged lowest merge rank first, leftmost
//! first among equal ranks, until no listed pair is left. A heap of candidate pairs keeps
//! each word linear-logarithmic in its length.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::Range;

use super::hash::FastMap;
use super::pretokenize::{PreConfig, PreTokenizer};
use super::vocab::Vocab;
use super::TokenizerError;

/// A byte with no token of its own in the vocabulary.
const NO_TOKEN: u32 = u32::MAX;

/// GPT-2's printable stand-ins for bytes: printable Latin-1 bytes stand for themselves,
/// the other 68 (controls, space, DEL, NBSP, soft hyphen) for U+0100 onwards, in order.
const BYTE_CHARS: [char; 256] = {
    let mut table = ['\0'; 256];
    let mut next_extra = 0x100u32;
    let mut b = 0;
    while b < 256 {
        let c = if is_printable(b as u8) {
            b as u32
        } else {
            next_extra += 1;
            next_extra - 1
        };
        table[b] = match char::from_u32(c) {
            Some(c) => c,
            None => '\0',
        };
        b += 1;
    }
    table
};

/// The inverse of `BYTE_CHARS` for U+0100..U+0143.
const EXTRA_BYTES: [u8; 68] = {
    let mut table = [0u8; 68];
    let mut n = 0;
    let mut b = 0;
    while b < 256 {
        if !is_printable(b as u8) {
            table[n] = b as u8;
            n += 1;
        }
        b += 1;
    }
    table
};

const fn is_printable(b: u8) -> bool {
    matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF)
}

pub(crate) fn byte_to_unicode(b: u8) -> char {
    BYTE_CHARS[b as usize]
}

pub(crate) fn unicode_to_byte(c: char) -> Option<u8> {
    let u = c as u32;
    if u < 0x100 {
        is_printable(u as u8).then_some(u as u8)
    } else {
        EXTRA_BYTES.get((u - 0x100) as usize).copied()
    }
}

/// (left id, right id) packed by `pair` -> the merge.
type PairMap = FastMap<u64, Merge>;

#[derive(Clone, Copy)]
struct Merge {
    rank: u32,
    merged: u32,
}

fn pair(left: u32, right: u32) -> u64 {
    (left as u64) << 32 | right as u64
}

pub(crate) struct Bpe {
    pre: PreTokenizer,
    ignore_merges: bool,
    merges: PairMap,
    byte_token: [u32; 256],
}

#[derive(Clone, Copy)]
struct Symbol {
    id: u32,
    next: u32,
    prev: u32,
    alive: bool,
}

/// A pair that can merge, lowest rank then leftmost first. The ids detect entries made
/// stale by an earlier merge of either symbol.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Candidate {
    rank: u32,
    left: u32,
    right: u32,
    left_id: u32,
    right_id: u32,
    merged: u32,
}

/// Buffers reused across the words of one `encode` call.
#[derive(Default)]
struct Scratch {
    words: Vec<Range<usize>>,
    symbols: Vec<Symbol>,
    heap: BinaryHeap<Reverse<Candidate>>,
    mapped: String,
}

impl Bpe {
    /// Ranks the merges of `tokenizer.ggml.merges` ("left right", highest priority
    /// first). Merges whose parts or result are not tokens can never apply to token
    /// symbols and are left out.
    pub fn new(vocab: &Vocab, merges: &[String], config: PreConfig) -> Result<Bpe, TokenizerError> {
        let mut map = PairMap::with_capacity_and_hasher(merges.len(), Default::default());
        let mut joined = String::new();
        for (index, line) in merges.iter().enumerate() {
            // The first part may itself start with a space in vocabularies that are not
            // byte-level, so the separator is searched from the second byte, as llama.cpp does.
            let bytes = line.as_bytes();
            let sep = bytes
                .get(1..)
                .and_then(|rest| rest.iter().position(|&b| b == b' '));
            let (left, right) = match sep {
                Some(p) if p + 2 < bytes.len() => (&line[..p + 1], &line[p + 2..]),
                _ => {
                    return Err(TokenizerError::BadMerge {
                        index,
                        text: line.clone(),
                    })
                }
            };
            joined.clear();
            joined.push_str(left);
            joined.push_str(right);
            let ids = (
                vocab.index.get(left),
                vocab.index.get(right),
                vocab.index.get(joined.as_str()),
            );
            if let (Some(&l), Some(&r), Some(&merged)) = ids {
                map.entry(pair(l, r)).or_insert(Merge {
                    rank: index as u32,
                    merged,
                });
            }
        }
        let mut byte_token = [NO_TOKEN; 256];
        for (b, slot) in byte_token.iter_mut().enumerate() {
            let c = byte_to_unicode(b as u8);
            if let Some(&id) = vocab.index.get(c.encode_utf8(&mut [0; 4]) as &str) {
                *slot = id;
            }
        }
        Ok(Bpe {
            pre: config.pre,
            ignore_merges: config.ignore_merges,
            merges: map,
            byte_token,
        })
    }

    pub fn encode(&self, vocab: &Vocab, text: &str, unk: Option<u32>, out: &mut Vec<u32>) {
        let mut scratch = Scratch::default();
        self.pre.split(text, &mut scratch.words);
        let words = std::mem::take(&mut scratch.words);
        for w in &words {
            self.encode_word(vocab, text[w.clone()].as_bytes(), unk, &mut scratch, out);
        }
    }

    fn encode_word(
        &self,
        vocab: &Vocab,
        word: &[u8],
        unk: Option<u32>,
        s: &mut Scratch,
        out: &mut Vec<u32>,
    ) {
        if self.ignore_merges && word.len() > 1 {
            s.mapped.clear();
            s.mapped.extend(word.iter().map(|&b| byte_to_unicode(b)));
            if let Some(&id) = vocab.index.get(s.mapped.as_str()) {
                out.push(id);
                return;
            }
        }
        let n = word.len() as u32;
        s.symbols.clear();
        s.symbols
            .extend(word.iter().enumerate().map(|(i, &b)| Symbol {
                id: self.byte_token[b as usize],
                prev: (i as u32).wrapping_sub(1),
                next: i as u32 + 1,
                alive: true,
            }));
        s.heap.clear();
        for i in 1..n {
            self.push_candidate(s, i - 1, i);
        }
        while let Some(Reverse(c)) = s.heap.pop() {
            let (left, right) = (c.left, c.right);
            let (l, r) = (s.symbols[left as usize], s.symbols[right as usize]);
            let current =
                l.alive && r.alive && l.next == right && l.id == c.left_id && r.id == c.right_id;
            if !current {
                continue;
            }
            s.symbols[left as usize].id = c.merged;
            s.symbols[left as usize].next = r.next;
            s.symbols[right as usize].alive = false;
            if r.next < n {
                s.symbols[r.next as usize].prev = left;
            }
            if l.prev < n {
                self.push_candidate(s, l.prev, left);
            }
            if r.next < n {
                self.push_candidate(s, left, r.next);
            }
        }
        let mut i = 0;
        while i < n {
            match s.symbols[i as usize].id {
                NO_TOKEN => out.extend(unk),
                id => out.push(id),
            }
            i = s.symbols[i as usize].next;
        }
    }

    fn push_candidate(&self, s: &mut Scratch, left: u32, right: u32) {
        let (l, r) = (s.symbols[left as usize].id, s.symbols[right as usize].id);
        if let Some(m) = self.merges.get(&pair(l, r)) {
            s.heap.push(Reverse(Candidate {
                rank: m.rank,
                left,
                right,
                left_id: l,
                right_id: r,
                merged: m.merged,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_round_trips() {
        for b in 0..=255u8 {
            assert_eq!(unicode_to_byte(byte_to_unicode(b)), Some(b));
        }
        assert_eq!(byte_to_unicode(b' '), 'Ġ');
        assert_eq!(byte_to_unicode(b'\n'), 'Ċ');
        assert_eq!(byte_to_unicode(b'A'), 'A');
        assert_eq!(unicode_to_byte('\u{144}'), None);
        assert_eq!(unicode_to_byte(' '), None);
    }
}
