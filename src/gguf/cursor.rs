//! A little-endian reader over the header bytes. Every read is bounds-checked and every
//! count is checked against the bytes left before anything is allocated for it.

use super::error::{GgufError, Result};
use super::value::{Array, Value, ValueType};

/// Arrays of arrays may nest this deep; a hostile file could otherwise nest millions of
/// 12-byte array headers and exhaust the stack.
const MAX_ARRAY_DEPTH: usize = 8;

pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(bytes: &'a [u8]) -> Cursor<'a> {
        Cursor { bytes, pos: 0 }
    }

    pub fn pos(&self) -> u64 {
        self.pos as u64
    }

    pub fn remaining(&self) -> u64 {
        (self.bytes.len() - self.pos) as u64
    }

    pub fn take(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(GgufError::Truncated {
                what: what(),
                offset: self.pos(),
                need: n,
                len: self.bytes.len() as u64,
            });
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok(&self.bytes[start..self.pos])
    }

    fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N]> {
        Ok(self.take(N as u64, what)?.try_into().expect("took N bytes"))
    }

    pub fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A count of items that each take at least `min_item_len` bytes: larger than the rest
    /// of the file could hold means the file is corrupt, and nothing is allocated for it.
    pub fn count(&mut self, min_item_len: u64, what: &dyn Fn() -> String) -> Result<u64> {
        let n = self.u64(what)?;
        match n.checked_mul(min_item_len) {
            Some(need) if need <= self.remaining() => Ok(n),
            _ => Err(GgufError::invalid(format!(
                "{} is {n}, more than the {} bytes left in the file could hold",
                what(),
                self.remaining()
            ))),
        }
    }

    pub fn string(&mut self, what: &dyn Fn() -> String) -> Result<String> {
        let len = self.u64(&|| format!("length of {}", what()))?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| GgufError::invalid(format!("{} is not valid UTF-8", what())))
    }

    pub fn value_type(&mut self, what: &dyn Fn() -> String) -> Result<ValueType> {
        let id = self.u32(&|| format!("type of {}", what()))?;
        ValueType::from_id(id)
            .ok_or_else(|| GgufError::invalid(format!("{} has unknown value type {id}", what())))
    }

    pub fn value(&mut self, ty: ValueType, what: &dyn Fn() -> String) -> Result<Value> {
        Ok(match ty {
            ValueType::U8 => Value::U8(self.array::<1>(what)?[0]),
            ValueType::I8 => Value::I8(i8::from_le_bytes(self.array(what)?)),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array(what)?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array(what)?)),
            ValueType::U32 => Value::U32(self.u32(what)?),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.array(what)?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.array(what)?)),
            ValueType::Bool => Value::Bool(self.bool(what)?),
            ValueType::String => Value::String(self.string(what)?),
            ValueType::Array => Value::Array(self.array_value(what, 0)?),
            ValueType::U64 => Value::U64(self.u64(what)?),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.array(what)?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.array(what)?)),
        })
    }

    fn bool(&mut self, what: &dyn Fn() -> String) -> Result<bool> {
        match self.array::<1>(what)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(GgufError::invalid(format!(
                "{} is a bool with byte value {b}, expected 0 or 1",
                what()
            ))),
        }
    }

    fn array_value(&mut self, what: &dyn Fn() -> String, depth: usize) -> Result<Array> {
        if depth >= MAX_ARRAY_DEPTH {
            return Err(GgufError::invalid(format!(
                "{} nests arrays more than {MAX_ARRAY_DEPTH} deep",
                what()
            )));
        }
        let ty = self.value_type(&|| format!("element type of {}", what()))?;
        let n = self.count(ty.min_encoded_len(), &|| {
            format!("element count of {}", what())
        })? as usize;
        let item = |i: usize| move || format!("element {i} of {}", what());
        Ok(match ty {
            ValueType::U8 => Array::U8(self.take(n as u64, what)?.to_vec()),
            ValueType::I8 => Array::I8(self.fixed(n, what, |b: [u8; 1]| b[0] as i8)?),
            ValueType::U16 => Array::U16(self.fixed(n, what, u16::from_le_bytes)?),
            ValueType::I16 => Array::I16(self.fixed(n, what, i16::from_le_bytes)?),
            ValueType::U32 => Array::U32(self.fixed(n, what, u32::from_le_bytes)?),
            ValueType::I32 => Array::I32(self.fixed(n, what, i32::from_le_bytes)?),
            ValueType::F32 => Array::F32(self.fixed(n, what, f32::from_le_bytes)?),
            ValueType::U64 => Array::U64(self.fixed(n, what, u64::from_le_bytes)?),
            ValueType::I64 => Array::I64(self.fixed(n, what, i64::from_le_bytes)?),
            ValueType::F64 => Array::F64(self.fixed(n, what, f64::from_le_bytes)?),
            ValueType::Bool => {
                Array::Bool((0..n).map(|i| self.bool(&item(i))).collect::<Result<_>>()?)
            }
            ValueType::String => Array::String(
                (0..n)
                    .map(|i| self.string(&item(i)))
                    .collect::<Result<_>>()?,
            ),
            ValueType::Array => Array::Array(
                (0..n)
                    .map(|i| self.array_value(&item(i), depth + 1))
                    .collect::<Result<_>>()?,
            ),
        })
    }

    /// `n` fixed-size little-endian elements; `count` has already bounded `n * N`.
    fn fixed<const N: usize, T>(
        &mut self,
        n: usize,
        what: &dyn Fn() -> String,
        decode: fn([u8; N]) -> T,
    ) -> Result<Vec<T>> {
        let bytes = self.take((n * N) as u64, what)?;
        Ok(bytes
            .chunks_exact(N)
            .map(|c| decode(c.try_into().expect("chunks of N")))
            .collect())
    }
}
