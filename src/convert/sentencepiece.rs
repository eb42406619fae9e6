//! SentencePiece `tokenizer.model` files: a protobuf `ModelProto`, decoded by hand for the
//! fields a GGUF vocabulary needs. Every length is checked against the bytes left before
//! anything is sliced or allocated, so a truncated or hostile file is an error, never a
//! panic or a huge allocation.
//!
//! The fields read (sentencepiece_model.proto):
//! - `ModelProto.pieces = 1` (repeated `SentencePiece`: `piece = 1` string, `score = 2`
//!   float, `type = 3` enum, NORMAL when absent);
//! - `ModelProto.trainer_spec = 2`: `model_type = 3`, `unk_id = 40`, `bos_id = 41`,
//!   `eos_id = 42`, `pad_id = 43`;
//! - `ModelProto.normalizer_spec = 3`: `add_dummy_prefix = 3`.
//!
//! Everything else is skipped by its wire type.

use std::path::Path;

use super::ConvertError;

/// Files larger than this are refused before they are read (real ones are a few MB).
pub const MAX_FILE_BYTES: u64 = 64 << 20;
/// More pieces than this are refused (real vocabularies have at most a few hundred thousand).
pub const MAX_PIECES: usize = 1 << 22;

/// `SentencePiece.Type`; the numbers are GGUF's `tokenizer.ggml.token_type` values too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PieceType {
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

impl PieceType {
    fn from_proto(v: u64) -> Option<PieceType> {
        use PieceType::*;
        Some(match v {
            1 => Normal,
            2 => Unknown,
            3 => Control,
            4 => UserDefined,
            5 => Unused,
            6 => Byte,
            _ => return None,
        })
    }
}

/// `TrainerSpec.ModelType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelType {
    Unigram = 1,
    Bpe = 2,
    Word = 3,
    Char = 4,
}

impl ModelType {
    fn from_proto(v: u64) -> Option<ModelType> {
        Some(match v {
            1 => ModelType::Unigram,
            2 => ModelType::Bpe,
            3 => ModelType::Word,
            4 => ModelType::Char,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            ModelType::Unigram => "Unigram",
            ModelType::Bpe => "BPE",
            ModelType::Word => "Word",
            ModelType::Char => "Char",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Piece {
    pub text: String,
    pub score: f32,
    pub kind: PieceType,
}

/// What a `tokenizer.model` says. Optional fields are `None` when the file leaves them out
/// (their proto defaults are then in force: Unigram, add_dummy_prefix true, unk 0, bos 1,
/// eos 2, no pad).
#[derive(Clone, Debug, PartialEq)]
pub struct SpmModel {
    pub pieces: Vec<Piece>,
    pub model_type: Option<ModelType>,
    pub add_dummy_prefix: Option<bool>,
    pub unk_id: Option<i32>,
    pub bos_id: Option<i32>,
    pub eos_id: Option<i32>,
    pub pad_id: Option<i32>,
}

/// Reads and decodes `path`; errors name the file.
pub fn read_model(path: &Path) -> Result<SpmModel, ConvertError> {
    let bytes = super::files::read_bounded(path, MAX_FILE_BYTES)?;
    parse_model(&bytes, &path.display().to_string())
}

/// Decodes a serialized `ModelProto`; `file` names it in errors.
pub fn parse_model(bytes: &[u8], file: &str) -> Result<SpmModel, ConvertError> {
    parse(bytes).map_err(|msg| ConvertError::invalid(file, msg))
}

fn parse(bytes: &[u8]) -> Result<SpmModel, String> {
    let mut model = SpmModel {
        pieces: Vec::new(),
        model_type: None,
        add_dummy_prefix: None,
        unk_id: None,
        bos_id: None,
        eos_id: None,
        pad_id: None,
    };
    let mut r = Reader::new(bytes, 0);
    while let Some((field, value)) = r.next()? {
        match field {
            1 => {
                if model.pieces.len() == MAX_PIECES {
                    return Err(format!("more than {MAX_PIECES} pieces"));
                }
                let (body, at) = value.bytes(field, "ModelProto.pieces")?;
                let piece = parse_piece(body, at, model.pieces.len())?;
                model.pieces.push(piece);
            }
            2 => {
                let (body, at) = value.bytes(field, "ModelProto.trainer_spec")?;
                parse_trainer_spec(body, at, &mut model)?;
            }
            3 => {
                let (body, at) = value.bytes(field, "ModelProto.normalizer_spec")?;
                let mut n = Reader::new(body, at);
                while let Some((f, v)) = n.next()? {
                    if f == 3 {
                        let flag = v.varint(f, "NormalizerSpec.add_dummy_prefix")?;
                        model.add_dummy_prefix = Some(flag != 0);
                    }
                }
            }
            _ => {}
        }
    }
    if model.pieces.is_empty() {
        return Err("no pieces: not a SentencePiece model".to_string());
    }
    Ok(model)
}

fn parse_piece(body: &[u8], at: usize, index: usize) -> Result<Piece, String> {
    let mut text = None;
    let mut score = 0.0;
    let mut kind = PieceType::Normal;
    let mut r = Reader::new(body, at);
    while let Some((field, value)) = r.next()? {
        match field {
            1 => {
                let (raw, at) = value.bytes(field, "SentencePiece.piece")?;
                let s = std::str::from_utf8(raw)
                    .map_err(|_| format!("piece {index} at byte {at} is not UTF-8"))?;
                text = Some(s.to_string());
            }
            2 => score = f32::from_bits(value.fixed32(field, "SentencePiece.score")?),
            3 => {
                let v = value.varint(field, "SentencePiece.type")?;
                kind = PieceType::from_proto(v)
                    .ok_or_else(|| format!("piece {index} has type {v}, not 1 to 6"))?;
            }
            _ => {}
        }
    }
    match text {
        Some(text) if !text.is_empty() => Ok(Piece { text, score, kind }),
        _ => Err(format!("piece {index} at byte {at} has no text")),
    }
}

fn parse_trainer_spec(body: &[u8], at: usize, model: &mut SpmModel) -> Result<(), String> {
    let mut r = Reader::new(body, at);
    while let Some((field, value)) = r.next()? {
        let id = |v: u64| v as i64 as i32; // int32 is sign-extended to 64 bits on the wire
        match field {
            3 => {
                let v = value.varint(field, "TrainerSpec.model_type")?;
                model.model_type = Some(
                    ModelType::from_proto(v)
                        .ok_or_else(|| format!("model_type {v} is not 1 to 4"))?,
                );
            }
            40 => model.unk_id = Some(id(value.varint(field, "TrainerSpec.unk_id")?)),
            41 => model.bos_id = Some(id(value.varint(field, "TrainerSpec.bos_id")?)),
            42 => model.eos_id = Some(id(value.varint(field, "TrainerSpec.eos_id")?)),
            43 => model.pad_id = Some(id(value.varint(field, "TrainerSpec.pad_id")?)),
            _ => {}
        }
    }
    Ok(())
}

/// One decoded field value, by wire type.
enum Wire<'a> {
    Varint(u64),
    Fixed64,
    /// The bytes and the file offset where they start.
    Bytes(&'a [u8], usize),
    Fixed32(u32),
}

impl<'a> Wire<'a> {
    fn kind(&self) -> &'static str {
        match self {
            Wire::Varint(_) => "varint",
            Wire::Fixed64 => "fixed64",
            Wire::Bytes(..) => "length-delimited",
            Wire::Fixed32(_) => "fixed32",
        }
    }

    fn varint(&self, field: u32, name: &str) -> Result<u64, String> {
        match *self {
            Wire::Varint(v) => Ok(v),
            _ => Err(wrong_wire(field, name, "varint", self.kind())),
        }
    }

    fn fixed32(&self, field: u32, name: &str) -> Result<u32, String> {
        match *self {
            Wire::Fixed32(v) => Ok(v),
            _ => Err(wrong_wire(field, name, "fixed32", self.kind())),
        }
    }

    fn bytes(&self, field: u32, name: &str) -> Result<(&'a [u8], usize), String> {
        match *self {
            Wire::Bytes(b, at) => Ok((b, at)),
            _ => Err(wrong_wire(field, name, "length-delimited", self.kind())),
        }
    }
}

fn wrong_wire(field: u32, name: &str, expected: &str, found: &str) -> String {
    format!("field {field} ({name}) is {found}, expected {expected}")
}

/// A cursor over one message's bytes; `base` is the message's offset in the file.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], base: usize) -> Reader<'a> {
        Reader { buf, pos: 0, base }
    }

    fn offset(&self) -> usize {
        self.base + self.pos
    }

    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8], String> {
        let left = self.buf.len() - self.pos;
        if n > left as u64 {
            return Err(format!(
                "truncated: {what} at byte {} needs {n} bytes, {left} are left",
                self.offset()
            ));
        }
        let s = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let start = self.offset();
        let mut v = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(format!(
                    "truncated: varint at byte {start} runs past the end"
                ));
            };
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(format!("varint at byte {start} is longer than 64 bits"));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!("varint at byte {start} is longer than 64 bits"))
    }

    /// The next field, or `None` at the end of the message.
    fn next(&mut self) -> Result<Option<(u32, Wire<'a>)>, String> {
        if self.pos == self.buf.len() {
            return Ok(None);
        }
        let at = self.offset();
        let key = self.varint()?;
        let field = key >> 3;
        if field == 0 || field > u64::from(u32::MAX >> 3) {
            return Err(format!("bad field number {field} at byte {at}"));
        }
        let field = field as u32;
        let value = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                self.take(8, "a fixed64 value")?;
                Wire::Fixed64
            }
            2 => {
                let len = self.varint()?;
                let start = self.offset();
                Wire::Bytes(self.take(len, "a length-delimited field")?, start)
            }
            5 => {
                let b = self.take(4, "a fixed32 value")?;
                Wire::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            w => return Err(format!("field {field} at byte {at} has wire type {w}, which SentencePiece models do not use")),
        };
        Ok(Some((field, value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push(v as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    #[test]
    fn varints_decode_at_every_width() {
        for v in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut b = Vec::new();
            varint(v, &mut b);
            assert_eq!(Reader::new(&b, 0).varint().unwrap(), v);
        }
        let eleven = [0xffu8; 11];
        assert!(Reader::new(&eleven, 0)
            .varint()
            .unwrap_err()
            .contains("64 bits"));
        let overflow = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(Reader::new(&overflow, 0)
            .varint()
            .unwrap_err()
            .contains("64 bits"));
    }

    #[test]
    fn negative_int32_ids_are_sign_extended() {
        // pad_id = -1, as SentencePiece writes it: ten bytes.
        let mut spec = Vec::new();
        varint(43 << 3, &mut spec);
        varint(-1i64 as u64, &mut spec);
        let mut file = vec![0x0a, 3, 0x0a, 1, b'a']; // one piece "a"
        file.push(0x12);
        varint(spec.len() as u64, &mut file);
        file.extend_from_slice(&spec);
        assert_eq!(parse(&file).unwrap().pad_id, Some(-1));
    }
}
