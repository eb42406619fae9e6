//! Streaming decode for generation: a token may end in the middle of a UTF-8 sequence
//! (byte-fallback tokens, byte-level BPE pieces of an emoji), so bytes are held back until
//! the character they start is complete.

use super::Tokenizer;

/// Decodes ids one at a time into text. Control tokens are skipped, as in
/// [`Tokenizer::decode`]; unlike it, no leading space is stripped, since a stream
/// continues a prompt rather than starting a text. The concatenation of everything
/// returned equals the lossy UTF-8 decoding of all the tokens' bytes.
pub struct StreamDecoder<'a> {
    tokenizer: &'a Tokenizer,
    pending: Vec<u8>,
}

impl<'a> StreamDecoder<'a> {
    pub fn new(tokenizer: &'a Tokenizer) -> StreamDecoder<'a> {
        StreamDecoder {
            tokenizer,
            pending: Vec::new(),
        }
    }

    /// Adds a token; returns the text that is now complete (possibly empty).
    pub fn push(&mut self, id: u32) -> String {
        if self.tokenizer.is_text(id) {
            self.pending
                .extend_from_slice(self.tokenizer.token_bytes(id));
        }
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let good = e.valid_up_to();
                    out.push_str(&String::from_utf8_lossy(&self.pending[..good]));
                    match e.error_len() {
                        // An incomplete sequence at the end: wait for the next token.
                        None => {
                            self.pending.drain(..good);
                            return out;
                        }
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..good + bad);
                        }
                    }
                }
            }
        }
    }

    /// Bytes still held back: the start of a character no token has completed yet.
    pub fn pending(&self) -> &[u8] {
        &self.pending
    }

    /// Ends the stream: an incomplete sequence left over becomes U+FFFD.
    pub fn finish(self) -> String {
        String::from_utf8_lossy(&self.pending).into_owned()
    }
}
