//! Tokenizers built from GGUF metadata: byte-level BPE (`tokenizer.ggml.model = gpt2`)
//! with the pre-tokenizer named by `tokenizer.ggml.pre`, and SentencePiece BPE (`llama`)
//! with scores and `<0xXX>` byte fallback. Special tokens written in the text
//! (`<|im_start|>`) are recognised on request; decoding can stream.
//!
//! Ids agree with Hugging Face `tokenizers` and llama.cpp: `tests/tokenizer_*.rs` check
//! them against Hugging Face's ids for the test model and against two independent
//! JavaScript tokenizers for the Llama-2 and Llama-3 vocabularies.

mod bpe;
mod hash;
mod load;
mod pretokenize;
mod spm;
mod stream;
mod vocab;

pub use stream::StreamDecoder;

use crate::gguf::{GgufError, Metadata};
use bpe::Bpe;
use spm::Spm;
use vocab::{Piece, Vocab};

/// `tokenizer.ggml.token_type` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenType {
    Undefined = 0,
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

impl TokenType {
    pub fn from_i32(v: i32) -> Option<TokenType> {
        use TokenType::*;
        Some(match v {
            0 => Undefined,
            1 => Normal,
            2 => Unknown,
            3 => Control,
            4 => UserDefined,
            5 => Unused,
            6 => Byte,
            _ => return None,
        })
    }

    /// Control and unknown-type tokens: markup rather than text (BOS, `<|im_end|>`).
    pub fn is_special(self) -> bool {
        matches!(self, TokenType::Control | TokenType::Unknown)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("tokenizer: {0}")]
    Metadata(#[from] GgufError),
    #[error(
        "unknown tokenizer model '{0}' in tokenizer.ggml.model (ropewalk reads 'llama' and 'gpt2')"
    )]
    UnknownModel(String),
    #[error("unknown pre-tokenizer '{0}' in tokenizer.ggml.pre")]
    UnknownPre(String),
    #[error("tokenizer.ggml.tokens is empty")]
    EmptyVocab,
    #[error("tokenizer.ggml.tokens has {0} tokens, more than 32-bit token ids can address")]
    VocabTooLarge(usize),
    #[error("{key} has {found} entries, fewer than the {expected} of tokenizer.ggml.tokens")]
    TooShort {
        key: &'static str,
        found: usize,
        expected: usize,
    },
    #[error("duplicate token {text:?} in tokenizer.ggml.tokens (ids {first} and {second})")]
    DuplicateToken {
        text: String,
        first: u32,
        second: u32,
    },
    #[error("tokenizer.ggml.token_type[{index}] = {value} is not a token type (0 to 6)")]
    BadTokenType { index: usize, value: i32 },
    #[error(
        "bad merge tokenizer.ggml.merges[{index}] = {text:?}: not two tokens separated by a space"
    )]
    BadMerge { index: usize, text: String },
    #[error("{key} = {id} is outside the vocabulary of {vocab} tokens")]
    IdOutOfRange {
        key: &'static str,
        id: u32,
        vocab: usize,
    },
    #[error("tokenizer.ggml.add_bos_token is true, but there is no BOS token (tokenizer.ggml.bos_token_id)")]
    MissingBos,
}

/// The words `text` is split into before BPE by the pre-tokenizer a model names in
/// `tokenizer.ggml.pre` (`None`: the key is absent).
pub fn pre_tokenize<'t>(pre: Option<&str>, text: &'t str) -> Result<Vec<&'t str>, TokenizerError> {
    let mut ranges = Vec::new();
    pretokenize::PreConfig::from_name(pre)?
        .pre
        .split(text, &mut ranges);
    Ok(ranges.into_iter().map(|r| &text[r]).collect())
}

enum Model {
    Bpe(Box<Bpe>),
    Spm(Box<Spm>),
}

pub struct Tokenizer {
    vocab: Vocab,
    model: Model,
    bos: Option<u32>,
    eos: Option<u32>,
    unk: Option<u32>,
    add_bos: bool,
    /// End-of-generation tokens, sorted.
    eog: Vec<u32>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.model {
            Model::Bpe(_) => "byte-level BPE",
            Model::Spm(_) => "SentencePiece BPE",
        };
        f.debug_struct("Tokenizer")
            .field("kind", &kind)
            .field("vocab_size", &self.vocab.len())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("add_bos", &self.add_bos)
            .finish_non_exhaustive()
    }
}

impl Tokenizer {
    /// Builds the tokenizer described by a model's `tokenizer.ggml.*` metadata.
    pub fn from_metadata(m: &Metadata) -> Result<Tokenizer, TokenizerError> {
        load::load(m)
    }

    /// Tokenizes `text`. `add_bos`: prepend BOS if the model asks for it
    /// (`tokenizer.ggml.add_bos_token`; absent, SentencePiece and Llama-3 models do, other
    /// byte-level models do not). `parse_special`: text such as `<|im_start|>` that spells
    /// a control token becomes that token; otherwise it is tokenized as plain text.
    /// User-defined tokens are recognised either way.
    pub fn encode(&self, text: &str, add_bos: bool, parse_special: bool) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_bos && self.add_bos {
            out.extend(self.bos);
        }
        match &self.model {
            Model::Bpe(bpe) => self
                .vocab
                .split_special(text, parse_special, |piece| match piece {
                    Piece::Text(t) => bpe.encode(&self.vocab, t, self.unk, &mut out),
                    Piece::Token(id) => out.push(id),
                }),
            Model::Spm(spm) => {
                // SentencePiece puts `▁` at the start of the text; llama.cpp also puts
                // one after every special token, as the start of a new text.
                let mut after_special = true;
                self.vocab
                    .split_special(text, parse_special, |piece| match piece {
                        Piece::Text(t) => {
                            let prefix = spm.add_space_prefix && after_special;
                            spm.encode(&self.vocab, t, prefix, self.unk, &mut out);
                            after_special = false;
                        }
                        Piece::Token(id) => {
                            out.push(id);
                            after_special = true;
                        }
                    })
            }
        }
        out
    }

    /// The text of `ids`, the inverse of [`Self::encode`]: control tokens (BOS,
    /// `<|im_end|>`) and unknown ids are left out, the space SentencePiece put in front of
    /// the text is removed, and invalid UTF-8 becomes U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::new();
        let mut strip_space = matches!(&self.model, Model::Spm(s) if s.add_space_prefix);
        for &id in ids.iter().filter(|&&id| self.is_text(id)) {
            let mut piece = self.token_bytes(id);
            if strip_space {
                piece = piece.strip_prefix(b" ").unwrap_or(piece);
                strip_space = false;
            }
            bytes.extend_from_slice(piece);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// A decoder that returns text as soon as it is complete UTF-8.
    pub fn stream(&self) -> StreamDecoder<'_> {
        StreamDecoder::new(self)
    }

    /// The bytes a token stands for: the byte-level mapping undone, `▁` as a space,
    /// `<0xXX>` as its byte; control and user-defined tokens as their text. Empty for an id
    /// outside the vocabulary.
    pub fn token_bytes(&self, id: u32) -> &[u8] {
        self.vocab.bytes(id)
    }

    /// The token as written in the vocabulary.
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.vocab.texts.get(id as usize).map(String::as_str)
    }

    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.vocab.index.get(text).copied()
    }

    pub fn token_type(&self, id: u32) -> Option<TokenType> {
        self.vocab.token_type(id)
    }

    /// Whether decoding shows this token: an id in the vocabulary that is not a control
    /// or unknown-type token.
    pub fn is_text(&self, id: u32) -> bool {
        self.vocab.token_type(id).is_some_and(|t| !t.is_special())
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    pub fn unk_id(&self) -> Option<u32> {
        self.unk
    }

    /// Whether `encode(.., add_bos = true, ..)` prepends BOS.
    pub fn add_bos_token(&self) -> bool {
        self.add_bos && self.bos.is_some()
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// End of generation: EOS, and the end-of-turn control tokens chat models stop on
    /// (`<|im_end|>`, `<|eot_id|>`, ...).
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.binary_search(&id).is_ok()
    }

    /// All end-of-generation ids, sorted.
    pub fn eog_ids(&self) -> &[u32] {
        &self.eog
    }
}
