//! Our quantizers and dequantizers against ggml's own, on the fixtures that
//! tools/make_quant_fixtures.sh writes from ggml's C source (format: tests/data/quant/README.md).

use std::path::PathBuf;

use half::f16;
use ropewalk::quant::{dequantize, floats, quantize, GgmlType};

fn fixture(name: &str) -> Vec<u8> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests/data/quant", name]
        .iter()
        .collect();
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], magic: &[u8; 4]) -> Self {
        assert_eq!(&bytes[..4], magic, "fixture magic");
        let mut r = Reader { bytes, at: 4 };
        assert_eq!(r.u32(), 1, "fixture version");
        r
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let s = &self.bytes[self.at..self.at + n];
        self.at += n;
        s
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take(4).try_into().unwrap())
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take(2).try_into().unwrap())
    }
    fn f32s(&mut self, n: usize) -> Vec<f32> {
        self.take(4 * n)
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    }
    fn done(&self) {
        assert_eq!(self.at, self.bytes.len(), "trailing fixture bytes");
    }
}

struct Case {
    name: String,
    x: Vec<f32>,
}

fn inputs() -> Vec<Case> {
    let bytes = fixture("inputs.bin");
    let mut r = Reader::new(&bytes, b"RWQI");
    let cases = (0..r.u32())
        .map(|_| {
            let len = r.take(1)[0] as usize;
            let name = String::from_utf8(r.take(len).to_vec()).unwrap();
            let n = r.u32() as usize;
            Case { name, x: r.f32s(n) }
        })
        .collect();
    r.done();
    cases
}

/// ggml's blocks and their dequantization, per input case.
fn ggml_outputs(ty: GgmlType, cases: &[Case]) -> Vec<(Vec<u8>, Vec<f32>)> {
    let bytes = fixture(&format!("{}.bin", ty.name().to_lowercase()));
    let mut r = Reader::new(&bytes, b"RWQB");
    assert_eq!(r.u32(), ty.id());
    assert_eq!(r.u32() as usize, cases.len());
    let out = cases
        .iter()
        .map(|c| {
            let nbytes = r.u32() as usize;
            (r.take(nbytes).to_vec(), r.f32s(c.x.len()))
        })
        .collect();
    r.done();
    out
}

const QUANT_TYPES: [GgmlType; 10] = [
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q8_1,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
    GgmlType::Q8_K,
];

/// Bit equality, except that any NaN equals any NaN: which NaN an operation on two NaNs
/// returns differs between architectures.
fn same_f32(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

#[test]
fn quantize_matches_ggml_byte_for_byte() {
    let cases = inputs();
    let mut failures = Vec::new();
    for ty in QUANT_TYPES {
        for (case, (want, _)) in cases.iter().zip(ggml_outputs(ty, &cases)) {
            let mut got = vec![0u8; want.len()];
            quantize(ty, &case.x, &mut got).unwrap();
            if let Some(at) = got.iter().zip(&want).position(|(a, b)| a != b) {
                let block = at / ty.block_bytes();
                failures.push(format!(
                    "{ty} {}: block {block} differs at byte {} (ours {:#04x}, ggml {:#04x})",
                    case.name,
                    at % ty.block_bytes(),
                    got[at],
                    want[at]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn dequantize_matches_ggml_bit_for_bit() {
    let cases = inputs();
    let mut failures = Vec::new();
    for ty in QUANT_TYPES {
        for (case, (blocks, want)) in cases.iter().zip(ggml_outputs(ty, &cases)) {
            let mut got = vec![0f32; want.len()];
            dequantize(ty, &blocks, &mut got).unwrap();
            if let Some(i) = (0..got.len()).find(|&i| !same_f32(got[i], want[i])) {
                failures.push(format!(
                    "{ty} {}: value {i}: ours {:e}, ggml {:e}",
                    case.name, got[i], want[i]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The fixtures should exercise what they claim to: scales that underflow f16, zero
/// blocks, and clamped K-quant sub-block scales.
#[test]
fn fixtures_cover_the_edge_cases() {
    let cases = inputs();
    let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    for want in [
        "zero_blocks",
        "constant",
        "tiny",
        "f32_subnormal",
        "ties",
        "mixed_scale",
    ] {
        assert!(names.contains(&want), "missing case {want}");
    }
    assert!(cases.iter().all(|c| c.x.len() % 256 == 0));
    assert!(
        cases.iter().any(|c| c.x.len() >= 512),
        "K-quant rows of several blocks"
    );
    let q8_0 = ggml_outputs(GgmlType::Q8_0, &cases);
    let tiny = names.iter().position(|&n| n == "tiny").unwrap();
    assert!(q8_0[tiny]
        .0
        .chunks(34)
        .any(|b| b[0] == 0 && b[1] == 0 && b[2..].iter().any(|&q| q != 0)));
}

#[test]
fn float_conversions_match_ggml() {
    let bytes = fixture("floats.bin");
    let mut r = Reader::new(&bytes, b"RWQF");
    let mut failures = Vec::new();
    for _ in 0..r.u32() {
        let x = f32::from_bits(r.u32());
        let (h, b) = (r.u16(), r.u16());
        let ours_h = floats::fp32_to_fp16(x).to_bits();
        let ours_b = floats::fp32_to_bf16(x);
        if ours_h != h || ours_b != b {
            failures.push(format!(
                "{:#010x}: f16 ours {ours_h:#06x} ggml {h:#06x}, bf16 ours {ours_b:#06x} ggml {b:#06x}",
                x.to_bits()
            ));
        }
        // Through the public API too: one value is a whole "block" of F16/BF16.
        let mut out = [0u8; 2];
        quantize(GgmlType::F16, &[x], &mut out).unwrap();
        assert_eq!(u16::from_le_bytes(out), h);
        quantize(GgmlType::BF16, &[x], &mut out).unwrap();
        assert_eq!(u16::from_le_bytes(out), b);
        let mut y = [0f32];
        dequantize(GgmlType::BF16, &b.to_le_bytes(), &mut y).unwrap();
        assert_eq!(y[0].to_bits() >> 16, b as u32);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Every f16 decoded, hashed as the harness hashes ggml's results.
    let want = u64::from_le_bytes(r.take(8).try_into().unwrap());
    r.done();
    let halves: Vec<u8> = (0..=u16::MAX).flat_map(|h| h.to_le_bytes()).collect();
    let mut decoded = vec![0f32; 65536];
    dequantize(GgmlType::F16, &halves, &mut decoded).unwrap();
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for (h, y) in decoded.iter().enumerate() {
        assert_eq!(
            y.to_bits(),
            floats::fp16_to_fp32(f16::from_bits(h as u16)).to_bits()
        );
        for byte in y.to_bits().to_le_bytes() {
            hash = (hash ^ byte as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    assert_eq!(
        hash, want,
        "f16 -> f32 of all 65536 halves differs from ggml's"
    );
}
