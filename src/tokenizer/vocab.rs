//! The token table shared by both tokenizer kinds: texts, types, the text -> id index,
//! the bytes each token decodes to, and the special tokens that are matched in raw text.

use super::hash::FastMap;
use super::{bpe, TokenType, TokenizerError};

pub(crate) struct Vocab {
    pub texts: Vec<String>,
    pub types: Vec<TokenType>,
    pub index: FastMap<String, u32>,
    /// The decoded bytes of token `i` are `bytes[offsets[i]..offsets[i + 1]]`.
    bytes: Vec<u8>,
    offsets: Vec<usize>,
    /// Tokens matched in raw text before tokenizing it, by first byte, longest first.
    specials: Vec<Vec<u32>>,
}

/// How a token's text maps to the bytes it stands for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Escape {
    /// SentencePiece: `▁` is a space, `<0xXX>` byte tokens are one byte.
    Spm,
    /// Byte-level BPE: each character is one byte through GPT-2's byte <-> unicode table.
    ByteLevel,
}

/// Either piece of a text split at special tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Piece<'t> {
    Text(&'t str),
    Token(u32),
}

impl Vocab {
    pub fn new(
        texts: Vec<String>,
        types: Vec<TokenType>,
        escape: Escape,
    ) -> Result<Vocab, TokenizerError> {
        let mut index = FastMap::with_capacity_and_hasher(texts.len(), Default::default());
        for (id, text) in texts.iter().enumerate() {
            if let Some(first) = index.insert(text.clone(), id as u32) {
                return Err(TokenizerError::DuplicateToken {
                    text: text.clone(),
                    first,
                    second: id as u32,
                });
            }
        }
        let mut bytes = Vec::new();
        let mut offsets = Vec::with_capacity(texts.len() + 1);
        offsets.push(0);
        for (text, &ty) in texts.iter().zip(&types) {
            token_bytes(text, ty, escape, &mut bytes);
            offsets.push(bytes.len());
        }
        let mut specials = vec![Vec::new(); 256];
        for (id, (text, ty)) in texts.iter().zip(&types).enumerate() {
            if (ty.is_special() || *ty == TokenType::UserDefined) && !text.is_empty() {
                specials[text.as_bytes()[0] as usize].push(id as u32);
            }
        }
        for list in &mut specials {
            list.sort_by_key(|&id| std::cmp::Reverse(texts[id as usize].len()));
        }
        Ok(Vocab {
            texts,
            types,
            index,
            bytes,
            offsets,
            specials,
        })
    }

    pub fn len(&self) -> usize {
        self.texts.len()
    }

    pub fn bytes(&self, id: u32) -> &[u8] {
        let i = id as usize;
        match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&a), Some(&b)) => &self.bytes[a..b],
            _ => &[],
        }
    }

    pub fn token_type(&self, id: u32) -> Option<TokenType> {
        self.types.get(id as usize).copied()
    }

    /// Calls `f` with the pieces of `text`: raw text and the special tokens found in it,
    /// leftmost first and the longest where several start at the same place (as Hugging
    /// Face's added-token matcher does). User-defined tokens are always matched; control
    /// and unknown-type tokens only with `parse_special`.
    pub fn split_special<'t>(
        &self,
        text: &'t str,
        parse_special: bool,
        mut f: impl FnMut(Piece<'t>),
    ) {
        let bytes = text.as_bytes();
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            let found = self.specials[bytes[i] as usize].iter().find(|&&id| {
                let usable = parse_special || self.types[id as usize] == TokenType::UserDefined;
                usable && bytes[i..].starts_with(self.texts[id as usize].as_bytes())
            });
            match found {
                Some(&id) => {
                    if start < i {
                        f(Piece::Text(&text[start..i]));
                    }
                    f(Piece::Token(id));
                    i += self.texts[id as usize].len();
                    start = i;
                }
                None => i += 1,
            }
        }
        if start < bytes.len() {
            f(Piece::Text(&text[start..]));
        }
    }
}

/// Appends the bytes `text` stands for. Special and user-defined tokens stand for their
/// text as written.
fn token_bytes(text: &str, ty: TokenType, escape: Escape, out: &mut Vec<u8>) {
    if ty.is_special() || ty == TokenType::UserDefined {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    if ty == TokenType::Byte {
        if let Some(b) = parse_byte_token(text) {
            out.push(b);
            return;
        }
    }
    match escape {
        Escape::Spm => {
            for c in text.chars() {
                match c {
                    '\u{2581}' => out.push(b' '),
                    c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                }
            }
        }
        Escape::ByteLevel => {
            for c in text.chars() {
                match bpe::unicode_to_byte(c) {
                    Some(b) => out.push(b),
                    // Not a byte-level vocabulary entry after all: keep the text.
                    None => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                }
            }
        }
    }
}

/// The byte of a `<0xXX>` token.
pub(crate) fn parse_byte_token(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}
