//! Keys and values of every position seen so far, per layer, so each new token attends
//! to the past without recomputing it. Stored as f32, f16 or Q8_0: at long contexts the
//! cache, not the weights, is what fills memory.

use std::str::FromStr;

use crate::backend::cpu::ops::{self, Cached, KEY_GROUP};
use crate::quant::{self, floats, GgmlType};

/// How the cache stores keys and values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheType {
    F32,
    F16,
    /// 32-value blocks along each head: 8.5 bits a value.
    Q8_0,
}

impl CacheType {
    fn ggml(self) -> GgmlType {
        match self {
            CacheType::F32 => GgmlType::F32,
            CacheType::F16 => GgmlType::F16,
            CacheType::Q8_0 => GgmlType::Q8_0,
        }
    }

    /// Bytes of one row of `kv_dim` values.
    pub fn row_bytes(self, kv_dim: usize) -> usize {
        self.ggml()
            .bytes_for(kv_dim as u64)
            .expect("kv_dim is a whole number of blocks") as usize
    }

    /// Whether rows of `head_dim` values split into whole blocks of this type.
    pub fn fits(self, head_dim: usize) -> bool {
        head_dim.is_multiple_of(self.ggml().block_len())
    }
}

impl FromStr for CacheType {
    type Err = String;

    fn from_str(s: &str) -> Result<CacheType, String> {
        match s {
            "f32" => Ok(CacheType::F32),
            "f16" => Ok(CacheType::F16),
            "q8_0" => Ok(CacheType::Q8_0),
            _ => Err(format!("'{s}' is not a cache type (f32, f16, q8_0)")),
        }
    }
}

impl std::fmt::Display for CacheType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CacheType::F32 => "f32",
            CacheType::F16 => "f16",
            CacheType::Q8_0 => "q8_0",
        })
    }
}

/// One layer's keys or values, typed so rows can be handed to kernels as slices.
enum Store {
    F32(Vec<f32>),
    /// f16 bit patterns
    F16(Vec<u16>),
    /// Q8_0 blocks
    Q8_0(Vec<u8>),
}

impl Store {
    fn new(ty: CacheType, n_values: usize) -> Store {
        match ty {
            CacheType::F32 => Store::F32(vec![0.0; n_values]),
            CacheType::F16 => Store::F16(vec![0; n_values]),
            CacheType::Q8_0 => Store::Q8_0(vec![0; ty.row_bytes(n_values)]),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Store::F32(v) => std::mem::size_of_val(&v[..]),
            Store::F16(v) => std::mem::size_of_val(&v[..]),
            Store::Q8_0(v) => v.len(),
        }
    }

    /// Encodes `src` (whole rows) at value offset `at`.
    fn write(&mut self, at: usize, src: &[f32]) {
        let (ty, bytes): (GgmlType, &mut [u8]) = match self {
            Store::F32(v) => (
                GgmlType::F32,
                bytemuck::cast_slice_mut(&mut v[at..at + src.len()]),
            ),
            Store::F16(v) => (
                GgmlType::F16,
                bytemuck::cast_slice_mut(&mut v[at..at + src.len()]),
            ),
            Store::Q8_0(v) => {
                let block = GgmlType::Q8_0.block_bytes();
                let (from, to) = (at / 32 * block, (at + src.len()) / 32 * block);
                (GgmlType::Q8_0, &mut v[from..to])
            }
        };
        quant::quantize(ty, src, bytes).expect("rows of whole blocks");
    }

    /// Encodes `src` down a column of a transposed group: value `d` at `at + d ·
    /// KEY_GROUP` (f32 and f16 keys).
    fn write_column(&mut self, at: usize, src: &[f32]) {
        let column = |d: usize| at + d * KEY_GROUP;
        match self {
            Store::F32(v) => src.iter().enumerate().for_each(|(d, &x)| v[column(d)] = x),
            // rounded as `write` rounds values
            Store::F16(v) => src
                .iter()
                .enumerate()
                .for_each(|(d, &x)| v[column(d)] = floats::fp32_to_fp16(x).to_bits()),
            Store::Q8_0(_) => unreachable!("Q8_0 keys are rows"),
        }
    }
}

/// The shape of a cache: which positions it holds and how a row splits into heads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheShape {
    pub n_layers: usize,
    pub n_ctx: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
}

impl CacheShape {
    fn kv_dim(&self) -> usize {
        self.n_kv_heads * self.head_dim
    }

    /// Where the row of `head` at `pos` starts: values, and Q8_0 keys.
    fn row_at(&self, head: usize, pos: usize) -> usize {
        (head * self.n_ctx + pos) * self.head_dim
    }

    /// Where dimension 0 of the key of `head` at `pos` lies, for keys stored transposed
    /// (f32 and f16); dimension `d` is `d · KEY_GROUP` further on.
    fn key_at(&self, head: usize, pos: usize) -> usize {
        let group = head * self.n_ctx.div_ceil(KEY_GROUP) + pos / KEY_GROUP;
        group * KEY_GROUP * self.head_dim + pos % KEY_GROUP
    }

    /// The values one layer's keys take when stored transposed: whole groups.
    fn key_values(&self) -> usize {
        self.n_kv_heads * self.n_ctx.next_multiple_of(KEY_GROUP) * self.head_dim
    }
}

/// One layer's values are `[n_kv_heads][n_ctx][head_dim]`, its keys (f32, f16)
/// `[n_kv_heads][n_ctx / KEY_GROUP][head_dim][KEY_GROUP]`: each KV head's positions follow
/// one another, so attention streams a head's keys and values front to back (with whole
/// rows side by side, a 7B head's next position would be 8 KB further on, past where the
/// hardware prefetchers look), and keys come sixteen positions to a vector, which is how
/// the score kernels take them. Q8_0 keys are rows like the values, their blocks running
/// along the head.
pub struct KvCache {
    ty: CacheType,
    shape: CacheShape,
    k: Vec<Store>,
    v: Vec<Store>,
}

impl KvCache {
    pub fn new(ty: CacheType, shape: CacheShape) -> KvCache {
        let rows = shape.n_ctx * shape.kv_dim();
        let keys = match ty {
            CacheType::Q8_0 => rows,
            CacheType::F32 | CacheType::F16 => shape.key_values(),
        };
        KvCache {
            ty,
            shape,
            k: (0..shape.n_layers).map(|_| Store::new(ty, keys)).collect(),
            v: (0..shape.n_layers).map(|_| Store::new(ty, rows)).collect(),
        }
    }

    /// The bytes a cache of this shape takes, without making one: f32 and f16 keys come
    /// in whole groups of [`KEY_GROUP`] positions.
    pub fn bytes_for(ty: CacheType, n_layers: usize, n_ctx: usize, kv_dim: usize) -> usize {
        let key_positions = match ty {
            CacheType::Q8_0 => n_ctx,
            CacheType::F32 | CacheType::F16 => n_ctx.next_multiple_of(KEY_GROUP),
        };
        n_layers * (key_positions + n_ctx) * ty.row_bytes(kv_dim)
    }

    pub fn ty(&self) -> CacheType {
        self.ty
    }

    pub fn n_ctx(&self) -> usize {
        self.shape.n_ctx
    }

    /// The bytes the cache holds.
    pub fn bytes(&self) -> usize {
        self.k.iter().chain(&self.v).map(Store::bytes).sum()
    }

    /// Stores the keys and values of positions `pos..pos + n` (`n` rows of `kv_dim`),
    /// each row's heads in their own runs.
    pub fn store(&mut self, layer: usize, pos: usize, k: &[f32], v: &[f32]) {
        let s = self.shape;
        let rows = k.chunks_exact(s.kv_dim()).zip(v.chunks_exact(s.kv_dim()));
        for (t, (k, v)) in rows.enumerate() {
            let heads = k.chunks_exact(s.head_dim).zip(v.chunks_exact(s.head_dim));
            for (h, (k, v)) in heads.enumerate() {
                let row = s.row_at(h, pos + t);
                match self.ty {
                    CacheType::Q8_0 => self.k[layer].write(row, k),
                    _ => self.k[layer].write_column(s.key_at(h, pos + t), k),
                }
                self.v[layer].write(row, v);
            }
        }
    }

    /// Keys and values of `layer`, positions `0..len`.
    pub fn layer(&self, layer: usize, len: usize) -> KvView<'_> {
        assert!(
            len <= self.shape.n_ctx,
            "{len} positions in a cache of {}",
            self.shape.n_ctx
        );
        let rows = match (&self.k[layer], &self.v[layer]) {
            (Store::F32(k), Store::F32(v)) => Rows::F32 { k, v },
            (Store::F16(k), Store::F16(v)) => Rows::F16 { k, v },
            (Store::Q8_0(k), Store::Q8_0(v)) => Rows::Q8_0 { k, v },
            _ => unreachable!("keys and values share a type"),
        };
        KvView {
            shape: self.shape,
            len,
            rows,
        }
    }
}

/// One layer's cache, as stored (see [`KvCache`]).
#[derive(Clone, Copy)]
enum Rows<'a> {
    F32 { k: &'a [f32], v: &'a [f32] },
    F16 { k: &'a [u16], v: &'a [u16] },
    Q8_0 { k: &'a [u8], v: &'a [u8] },
}

/// The first `len` positions of one layer's cache.
#[derive(Clone, Copy)]
pub struct KvView<'a> {
    shape: CacheShape,
    len: usize,
    rows: Rows<'a>,
}

impl KvView<'_> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Panics unless positions `pos..pos + n` are in the view.
    fn check(&self, pos: usize, n: usize) {
        assert!(
            pos + n <= self.len,
            "positions {pos}..{} of {}",
            pos + n,
            self.len
        );
    }

    /// The keys of `head` at positions `start..start + out.len() / head_dim`, as f32, a
    /// row after another.
    pub fn keys(&self, head: usize, start: usize, out: &mut [f32]) {
        let hd = self.shape.head_dim;
        let n = out.len() / hd;
        self.check(start, n);
        let gather = |out: &mut [f32], x: &dyn Fn(usize) -> f32| {
            for (j, row) in out.chunks_exact_mut(hd).enumerate() {
                let at = self.shape.key_at(head, start + j);
                for (d, o) in row.iter_mut().enumerate() {
                    *o = x(at + d * KEY_GROUP);
                }
            }
        };
        match self.rows {
            Rows::F32 { k, .. } => gather(out, &|i| k[i]),
            Rows::F16 { k, .. } => gather(out, &|i| half::f16::from_bits(k[i]).to_f32()),
            Rows::Q8_0 { k, .. } => self.read_q8_0(k, head, start, out),
        }
    }

    /// The values of `head` at positions `start..start + out.len() / head_dim`.
    pub fn values(&self, head: usize, start: usize, out: &mut [f32]) {
        let n = out.len() / self.shape.head_dim;
        self.check(start, n);
        let at = self.shape.row_at(head, start);
        let end = at + out.len();
        match self.rows {
            Rows::F32 { v, .. } => out.copy_from_slice(&v[at..end]),
            Rows::F16 { v, .. } => ops::f16_to_f32(&v[at..end], out),
            Rows::Q8_0 { v, .. } => self.read_q8_0(v, head, start, out),
        }
    }

    /// The keys of `head` at positions `start..start + n` (`start` a multiple of
    /// [`KEY_GROUP`]) as f32 groups, transposed as the score kernels take them, into
    /// `kt` (`n.div_ceil(KEY_GROUP)` groups); `rows` is scratch of `n` rows. Lanes past
    /// `n` in the last group are left finite.
    pub fn keys_t(
        &self,
        head: usize,
        (start, n): (usize, usize),
        kt: &mut [f32],
        rows: &mut [f32],
    ) {
        let hd = self.shape.head_dim;
        let groups = self.key_groups(head, start, n);
        let kt = &mut kt[..groups.len()];
        match self.rows {
            Rows::F32 { k, .. } => kt.copy_from_slice(&k[groups]),
            Rows::F16 { k, .. } => ops::f16_to_f32(&k[groups], kt),
            Rows::Q8_0 { k, .. } => {
                let rows = &mut rows[..n * hd];
                self.read_q8_0(k, head, start, rows);
                kt.fill(0.0);
                for (j, row) in rows.chunks_exact(hd).enumerate() {
                    let group = &mut kt[j / KEY_GROUP * KEY_GROUP * hd..];
                    for (d, &x) in row.iter().enumerate() {
                        group[d * KEY_GROUP + j % KEY_GROUP] = x;
                    }
                }
            }
        }
    }

    /// The keys (as whole groups, transposed) and values (rows) of `head` at positions
    /// `start..start + n` as stored, `start` a multiple of [`KEY_GROUP`], for kernels
    /// that read them so; `None` for a Q8_0 cache, which is decoded first.
    pub fn rows(&self, head: usize, start: usize, n: usize) -> Option<(Cached<'_>, Cached<'_>)> {
        let keys = self.key_groups(head, start, n);
        let row = self.shape.row_at(head, start);
        let values = row..row + n * self.shape.head_dim;
        match self.rows {
            Rows::F32 { k, v } => Some((Cached::F32(&k[keys]), Cached::F32(&v[values]))),
            Rows::F16 { k, v } => Some((Cached::F16(&k[keys]), Cached::F16(&v[values]))),
            Rows::Q8_0 { .. } => None,
        }
    }

    /// Where the whole groups of transposed keys (f32, f16) holding positions `start..start
    /// + n` of `head` lie; panics unless they are in the view and `start` begins a group.
    fn key_groups(&self, head: usize, start: usize, n: usize) -> std::ops::Range<usize> {
        self.check(start, n);
        assert!(start.is_multiple_of(KEY_GROUP), "a group starts at {start}");
        let at = self.shape.key_at(head, start);
        at..at + n.div_ceil(KEY_GROUP) * KEY_GROUP * self.shape.head_dim
    }

    /// Rows of `head` from `start` out of Q8_0 blocks.
    fn read_q8_0(&self, src: &[u8], head: usize, start: usize, out: &mut [f32]) {
        // Rows are whole blocks (checked when the session is made).
        let block = GgmlType::Q8_0.block_bytes();
        let at = self.shape.row_at(head, start);
        let src = &src[at / 32 * block..(at + out.len()) / 32 * block];
        quant::dequantize(GgmlType::Q8_0, src, out).expect("whole blocks");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_reads_back_what_was_stored() {
        let (n_kv_heads, head_dim) = (2, 64);
        let kv_dim = n_kv_heads * head_dim;
        // Three positions of two heads, stored at positions 2..5 of 7.
        let k: Vec<f32> = (0..3 * kv_dim).map(|i| (i as f32 * 0.37).sin()).collect();
        let v: Vec<f32> = k.iter().map(|x| -x).collect();
        let shape = CacheShape {
            n_layers: 2,
            n_ctx: 7,
            n_kv_heads,
            head_dim,
        };
        for (ty, tol) in [
            (CacheType::F32, 0.0),
            (CacheType::F16, 1e-3),
            (CacheType::Q8_0, 1e-2),
        ] {
            let mut cache = KvCache::new(ty, shape);
            cache.store(1, 2, &k, &v);
            let view = cache.layer(1, 5);
            assert_eq!(view.len(), 5);
            for head in 0..n_kv_heads {
                let want = |src: &[f32], t: usize, d: usize| src[t * kv_dim + head * head_dim + d];
                // All three rows in one read, and each alone.
                let mut rows = vec![0.0; 3 * head_dim];
                view.keys(head, 2, &mut rows);
                let mut values = vec![0.0; 3 * head_dim];
                view.values(head, 2, &mut values);
                for (t, (key, value)) in rows
                    .chunks(head_dim)
                    .zip(values.chunks(head_dim))
                    .enumerate()
                {
                    let mut one = vec![0.0; head_dim];
                    view.keys(head, 2 + t, &mut one);
                    assert_eq!(one, key, "{ty} head {head} key {t}");
                    for d in 0..head_dim {
                        assert!((key[d] - want(&k, t, d)).abs() <= tol, "{ty} key {t}/{d}");
                        assert!(
                            (value[d] - want(&v, t, d)).abs() <= tol,
                            "{ty} value {t}/{d}"
                        );
                    }
                }
                // Positions 0..5, transposed as the score kernels take them, and as
                // stored where the kernels read them so.
                let mut all = vec![0.0; 5 * head_dim];
                view.keys(head, 0, &mut all);
                let mut all_values = vec![0.0; 5 * head_dim];
                view.values(head, 0, &mut all_values);
                let mut kt = vec![f32::NAN; KEY_GROUP * head_dim];
                view.keys_t(head, (0, 5), &mut kt, &mut vec![0.0; 5 * head_dim]);
                let lanes = |kt: &[f32]| -> Vec<f32> {
                    (0..5)
                        .flat_map(|j| (0..head_dim).map(move |d| (j, d)))
                        .map(|(j, d)| kt[d * KEY_GROUP + j])
                        .collect()
                };
                assert_eq!(lanes(&kt), all, "{ty} head {head}: keys transposed");
                assert!(kt.iter().all(|x| x.is_finite()), "{ty}: lanes past the run");
                if let Some((keys, values)) = view.rows(head, 0, 5) {
                    let mut got = vec![0.0; KEY_GROUP * head_dim];
                    match keys {
                        Cached::F32(k) => got.copy_from_slice(k),
                        Cached::F16(k) => ops::f16_to_f32(k, &mut got),
                    }
                    assert_eq!(lanes(&got), all, "{ty} head {head}: keys as stored");
                    let mut got = vec![0.0; 5 * head_dim];
                    match values {
                        Cached::F32(v) => got.copy_from_slice(v),
                        Cached::F16(v) => ops::f16_to_f32(v, &mut got),
                    }
                    assert_eq!(got, all_values, "{ty} head {head}: values as stored");
                } else {
                    assert_eq!(ty, CacheType::Q8_0);
                }
            }
            assert_eq!(cache.bytes(), KvCache::bytes_for(ty, 2, 7, kv_dim));
        }
    }

    #[test]
    #[should_panic(expected = "positions 4..6 of 5")]
    fn reads_stop_at_the_view() {
        let shape = CacheShape {
            n_layers: 1,
            n_ctx: 8,
            n_kv_heads: 2,
            head_dim: 32,
        };
        let cache = KvCache::new(CacheType::F16, shape);
        cache.layer(0, 5).values(0, 4, &mut [0.0; 64]);
    }

    #[test]
    fn sizes() {
        // The test model at 32k: 30 layers, 3 KV heads of 64.
        let gib = |ty| KvCache::bytes_for(ty, 30, 32768, 192) as f64 / (1u64 << 30) as f64;
        assert_eq!(gib(CacheType::F32), 1.40625);
        assert_eq!(gib(CacheType::F16), 0.703125);
        assert!((gib(CacheType::Q8_0) - 0.3735).abs() < 1e-3);
    }
}
