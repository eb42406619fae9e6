//! Hostile and broken files: each must give an error that names the problem, never a
//! panic, and never an allocation sized by a count that was not checked first.

use ropewalk::gguf::{GgufError, GgufFile, Header};

/// Builds GGUF bytes field by field, so any field can be set to anything.
#[derive(Default)]
struct Bytes(Vec<u8>);

impl Bytes {
    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    fn str(self, s: &str) -> Self {
        self.u64(s.len() as u64).raw(s.as_bytes())
    }
    /// magic, version, tensor count, metadata count
    fn header(version: u32, n_tensors: u64, n_kv: u64) -> Self {
        Bytes::default()
            .raw(b"GGUF")
            .u32(version)
            .u64(n_tensors)
            .u64(n_kv)
    }
    fn kv_u32(self, key: &str, v: u32) -> Self {
        self.str(key).u32(4).u32(v)
    }
    /// name, dims, type id, offset
    fn tensor(self, name: &str, dims: &[u64], ty: u32, offset: u64) -> Self {
        let mut b = self.str(name).u32(dims.len() as u32);
        for &d in dims {
            b = b.u64(d);
        }
        b.u32(ty).u64(offset)
    }
    fn pad_to(mut self, align: usize) -> Self {
        self.0.resize(self.0.len().next_multiple_of(align), 0);
        self
    }
    fn zeros(mut self, n: usize) -> Self {
        self.0.resize(self.0.len() + n, 0);
        self
    }
}

/// A valid file: one key, two F32 tensors of 8 values, 32-aligned.
fn valid() -> Vec<u8> {
    Bytes::header(3, 2, 1)
        .kv_u32("general.alignment", 32)
        .tensor("a", &[8], 0, 0)
        .tensor("b", &[4, 2], 0, 32)
        .pad_to(32)
        .zeros(64)
        .0
}

fn err(bytes: &[u8]) -> String {
    match Header::parse(bytes) {
        Ok(_) => panic!("parsed a broken file"),
        Err(e) => e.to_string(),
    }
}

fn assert_err(bytes: &[u8], expected: &str) {
    let e = err(bytes);
    assert!(
        e.contains(expected),
        "error {e:?} does not say {expected:?}"
    );
    assert!(!e.contains('\n'), "error spans lines: {e:?}");
}

#[test]
fn the_valid_file_parses() {
    let h = Header::parse(&valid()).unwrap();
    assert_eq!(h.tensors.len(), 2);
    assert_eq!(h.tensors[1].dims, [4, 2]);
    assert_eq!(h.data_offset % 32, 0);
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = valid();
    for len in 0..bytes.len() {
        let e = err(&bytes[..len]);
        assert!(
            e.contains("truncated") || e.contains("past the end") || e.contains("bytes left"),
            "cut at {len}: {e}"
        );
    }
}

#[test]
fn truncation_names_what_was_cut() {
    let bytes = valid();
    assert_err(
        &bytes[..2],
        "truncated file: magic needs 4 bytes at offset 0",
    );
    assert_err(&bytes[..6], "version needs 4 bytes");
    let kv_only = Bytes::header(3, 0, 1).kv_u32("general.alignment", 32).0;
    assert_err(
        &kv_only[..kv_only.len() - 2],
        "metadata key 'general.alignment' needs 4 bytes",
    );
    let n = valid().len();
    assert_err(&bytes[..n - 64 - 40], "tensor 'b'");
    assert_err(
        &bytes[..bytes.len() - 1],
        "tensor 'b' data (32 bytes at data offset 32) runs past the end",
    );
}

#[test]
fn wrong_magic_and_versions() {
    let mut bytes = valid();
    bytes[..4].copy_from_slice(b"GGML");
    assert_err(&bytes, "not a GGUF file: it starts with \"GGML\"");
    assert_err(&Bytes::header(1, 0, 0).0, "GGUF version 1 is not supported");
    assert_err(&Bytes::header(4, 0, 0).0, "GGUF version 4 is not supported");
    assert_err(&Bytes::header(3u32.swap_bytes(), 0, 0).0, "big-endian");
    assert!(
        Header::parse(&Bytes::header(2, 0, 0).0).is_ok(),
        "v2 shares v3's layout"
    );
}

#[test]
fn huge_counts_are_refused_before_allocating() {
    assert_err(
        &Bytes::header(3, 1 << 60, 0).0,
        "tensor count is 1152921504606846976, more than",
    );
    assert_err(
        &Bytes::header(3, 0, 1 << 60).0,
        "metadata count is 1152921504606846976",
    );
    assert_err(&Bytes::header(3, u64::MAX, 0).0, "tensor count");
    // An array of 2^60 u64, 2^61 strings, 2^62 nested arrays.
    for (ty, n) in [(10u32, 1u64 << 60), (8, 1 << 61), (9, 1 << 62)] {
        let b = Bytes::header(3, 0, 1)
            .str("k")
            .u32(9)
            .u32(ty)
            .u64(n)
            .zeros(64);
        assert_err(&b.0, "element count of metadata key 'k'");
    }
}

#[test]
fn string_lengths_past_the_end() {
    let b = Bytes::header(3, 0, 1).u64(1 << 40).raw(b"key").zeros(16);
    assert_err(&b.0, "key of metadata entry 0 needs 1099511627776 bytes");
    let b = Bytes::header(3, 0, 1).str("k").u32(8).u64(u64::MAX);
    assert_err(&b.0, "metadata key 'k' needs 18446744073709551615 bytes");
    let b = Bytes::header(3, 1, 0).u64(100).raw(b"name").zeros(32);
    assert_err(&b.0, "name of tensor 0 needs 100 bytes");
}

#[test]
fn bad_dimensions() {
    let b = Bytes::header(3, 1, 0)
        .tensor("t", &[1, 1, 1, 1, 1], 0, 0)
        .zeros(64);
    assert_err(&b.0, "tensor 't' has 5 dimensions, expected 1 to 4");
    let b = Bytes::header(3, 1, 0).tensor("t", &[], 0, 0).zeros(64);
    assert_err(&b.0, "tensor 't' has 0 dimensions");
    let b = Bytes::header(3, 1, 0)
        .tensor("t", &[1 << 32, 1 << 32], 0, 0)
        .zeros(64);
    assert_err(
        &b.0,
        "dimensions [4294967296, 4294967296] whose product overflows",
    );
    let b = Bytes::header(3, 1, 0)
        .tensor("t", &[1 << 62, 3], 0, 0)
        .zeros(64);
    assert_err(&b.0, "product overflows");
    let b = Bytes::header(3, 1, 0).tensor("t", &[100], 2, 0).zeros(64);
    assert_err(
        &b.0,
        "rows of 100 values, not a multiple of the Q4_0 block of 32",
    );
    // i64::MAX elements of F32 is a size that does not fit in u64.
    let b = Bytes::header(3, 1, 0)
        .tensor("t", &[1 << 62], 0, 0)
        .zeros(64);
    assert_err(&b.0, "tensor 't' is too large");
}

#[test]
fn tensor_data_past_the_end_or_misplaced() {
    let b = Bytes::header(3, 1, 0)
        .tensor("t", &[8], 0, 1 << 40)
        .pad_to(32)
        .zeros(64);
    assert_err(
        &b.0,
        "tensor 't' data (32 bytes at data offset 1099511627776) runs past the end",
    );
    let b = Bytes::header(3, 1, 0)
        .tensor("t", &[8], 0, u64::MAX - 31)
        .pad_to(32)
        .zeros(64);
    assert_err(&b.0, "runs past the end");
    let b = Bytes::header(3, 1, 0)
        .tensor("t", &[8], 0, 4)
        .pad_to(32)
        .zeros(64);
    assert_err(
        &b.0,
        "tensor 't' has data offset 4 that is not a multiple of the alignment 32",
    );
    let b = Bytes::header(3, 1, 1)
        .kv_u32("general.alignment", 1)
        .tensor("t", &[8], 0, 1)
        .zeros(64);
    assert_err(&b.0, "is not aligned to 4 bytes for F32");
}

#[test]
fn bad_alignment_values() {
    for a in [0, 3, 48] {
        let b = Bytes::header(3, 0, 1).kv_u32("general.alignment", a);
        assert_err(
            &b.0,
            &format!("general.alignment = {a} is not a power of two"),
        );
    }
    let b = Bytes::header(3, 0, 1)
        .str("general.alignment")
        .u32(8)
        .str("32");
    assert_err(
        &b.0,
        "metadata key 'general.alignment' has type string, expected u32",
    );
}

#[test]
fn unknown_types() {
    let b = Bytes::header(3, 1, 0).tensor("t", &[32], 4, 0).zeros(64);
    assert_err(&b.0, "tensor 't' has unknown tensor type id 4");
    let b = Bytes::header(3, 1, 0)
        .tensor("t", &[32], 99999, 0)
        .zeros(64);
    assert_err(&b.0, "unknown tensor type id 99999");
    let b = Bytes::header(3, 0, 1).str("k").u32(13).zeros(8);
    assert_err(&b.0, "metadata key 'k' has unknown value type 13");
    let b = Bytes::header(3, 0, 1)
        .str("k")
        .u32(9)
        .u32(77)
        .u64(1)
        .zeros(8);
    assert_err(
        &b.0,
        "element type of metadata key 'k' has unknown value type 77",
    );
}

#[test]
fn duplicates() {
    let b = Bytes::header(3, 2, 0)
        .tensor("w", &[8], 0, 0)
        .tensor("w", &[8], 0, 32)
        .pad_to(32)
        .zeros(64);
    assert_err(&b.0, "duplicate tensor name 'w'");
    let b = Bytes::header(3, 0, 2).kv_u32("k", 1).kv_u32("k", 2);
    assert_err(&b.0, "duplicate metadata key 'k'");
}

#[test]
fn bad_values() {
    let b = Bytes::header(3, 0, 1).str("flag").u32(7).raw(&[2]);
    assert_err(&b.0, "metadata key 'flag' is a bool with byte value 2");
    let b = Bytes::header(3, 0, 1)
        .u64(2)
        .raw(&[0xff, 0xfe])
        .u32(4)
        .u32(0);
    assert_err(&b.0, "key of metadata entry 0 is not valid UTF-8");
    let b = Bytes::header(3, 0, 1).str("s").u32(8).u64(1).raw(&[0x80]);
    assert_err(&b.0, "metadata key 's' is not valid UTF-8");
}

#[test]
fn deeply_nested_arrays_are_refused() {
    // 100 levels of one-element arrays, then a u8.
    let mut b = Bytes::header(3, 0, 1).str("deep").u32(9);
    for _ in 0..100 {
        b = b.u32(9).u64(1);
    }
    let b = b.u32(0).u64(1).raw(&[0]);
    assert_err(&b.0, "nests arrays more than 8 deep");
}

#[test]
fn open_names_the_file_that_is_missing() {
    let Err(e) = GgufFile::open("/nonexistent/model.gguf") else {
        panic!("opened a missing file")
    };
    assert!(matches!(e, GgufError::Io { .. }));
    assert!(e.to_string().starts_with("/nonexistent/model.gguf: "));
}

#[test]
fn a_huge_alignment_is_read_and_written_without_allocating_it() {
    use ropewalk::gguf::{GgufWriter, Metadata, Value};
    use std::io::{self, Write};
    // 2^30 is a legal alignment; padding to it must stream, not allocate.
    let b = Bytes::header(3, 0, 1).kv_u32("general.alignment", 1 << 30);
    let h = Header::parse(&b.0).unwrap();
    assert_eq!(h.data_offset, 1 << 30);

    struct Count(u64);
    impl Write for Count {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut m = Metadata::new();
    m.set("general.alignment", Value::U32(1 << 30));
    let w = GgufWriter::new(m).unwrap();
    let mut out = Count(0);
    w.write_to(&mut out, |_, _| -> ropewalk::gguf::Result<()> { Ok(()) })
        .unwrap();
    assert_eq!(out.0, 1 << 30);
    assert_eq!(w.file_len(), 1 << 30);
}
