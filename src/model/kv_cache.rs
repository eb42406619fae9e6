//! Keys and values of every position seen so far, per layer, so each new token attends
//! to the past without recomputing it. Stored as f32, f16 or Q8_0: at long contexts the
//! cache, not the weights, is what fills memory.

use std::str::FromStr;

use crate::backend::cpu::ops;
use crate::quant::{self, GgmlType};

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
}

/// `[n_layers][n_ctx][kv_dim]` keys and values in `ty`.
pub struct KvCache {
    ty: CacheType,
    kv_dim: usize,
    n_ctx: usize,
    k: Vec<Store>,
    v: Vec<Store>,
}

impl KvCache {
    pub fn new(ty: CacheType, n_layers: usize, n_ctx: usize, kv_dim: usize) -> KvCache {
        let layer = || Store::new(ty, n_ctx * kv_dim);
        KvCache {
            ty,
            kv_dim,
            n_ctx,
            k: (0..n_layers).map(|_| layer()).collect(),
            v: (0..n_layers).map(|_| layer()).collect(),
        }
    }

    /// The bytes a cache of this shape takes, without making one.
    pub fn bytes_for(ty: CacheType, n_layers: usize, n_ctx: usize, kv_dim: usize) -> usize {
        2 * n_layers * n_ctx * ty.row_bytes(kv_dim)
    }

    pub fn ty(&self) -> CacheType {
        self.ty
    }

    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    pub fn bytes(&self) -> usize {
        Self::bytes_for(self.ty, self.k.len(), self.n_ctx, self.kv_dim)
    }

    /// Stores the keys and values of positions `pos..pos + n` (`n` rows of `kv_dim`).
    pub fn store(&mut self, layer: usize, pos: usize, k: &[f32], v: &[f32]) {
        self.k[layer].write(pos * self.kv_dim, k);
        self.v[layer].write(pos * self.kv_dim, v);
    }

    /// Keys and values of `layer`, positions `0..len`.
    pub fn layer(&self, layer: usize, len: usize) -> KvView<'_> {
        let n = len * self.kv_dim;
        let rows = match (&self.k[layer], &self.v[layer]) {
            (Store::F32(k), Store::F32(v)) => Rows::F32 {
                k: &k[..n],
                v: &v[..n],
            },
            (Store::F16(k), Store::F16(v)) => Rows::F16 {
                k: &k[..n],
                v: &v[..n],
            },
            (Store::Q8_0(k), Store::Q8_0(v)) => {
                let b = n / 32 * GgmlType::Q8_0.block_bytes();
                Rows::Q8_0 {
                    k: &k[..b],
                    v: &v[..b],
                }
            }
            _ => unreachable!("keys and values share a type"),
        };
        KvView {
            kv_dim: self.kv_dim,
            rows,
        }
    }
}

/// One layer's cached rows, as stored.
#[derive(Clone, Copy)]
pub enum Rows<'a> {
    F32 { k: &'a [f32], v: &'a [f32] },
    F16 { k: &'a [u16], v: &'a [u16] },
    Q8_0 { k: &'a [u8], v: &'a [u8] },
}

#[derive(Clone, Copy)]
pub struct KvView<'a> {
    pub kv_dim: usize,
    pub rows: Rows<'a>,
}

impl KvView<'_> {
    pub fn len(&self) -> usize {
        match self.rows {
            Rows::F32 { k, .. } => k.len() / self.kv_dim,
            Rows::F16 { k, .. } => k.len() / self.kv_dim,
            Rows::Q8_0 { k, .. } => k.len() / CacheType::Q8_0.row_bytes(self.kv_dim),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values `offset..offset + out.len()` of the key at position `pos`, as f32.
    pub fn key(&self, pos: usize, offset: usize, out: &mut [f32]) {
        self.read(true, pos, offset, out)
    }

    /// Values `offset..offset + kt.len() / w` of the keys at positions `start..start + n`
    /// into `kt[d * w + j]` (column-major, as attention scores them); `row` is scratch of
    /// a row's length. Columns from `n` up to the next multiple of 16 may be overwritten.
    pub fn keys_t(
        &self,
        (start, n): (usize, usize),
        offset: usize,
        (kt, w): (&mut [f32], usize),
        row: &mut [f32],
    ) {
        let at = start * self.kv_dim + offset;
        match self.rows {
            Rows::F32 { k, .. } => ops::keys_t_f32(&k[at..], self.kv_dim, n, kt, w),
            Rows::F16 { k, .. } => ops::keys_t_f16(&k[at..], self.kv_dim, n, kt, w),
            Rows::Q8_0 { .. } => {
                for j in 0..n {
                    self.key(start + j, offset, row);
                    for (d, &x) in row.iter().enumerate() {
                        kt[d * w + j] = x;
                    }
                }
            }
        }
    }

    pub fn value(&self, pos: usize, offset: usize, out: &mut [f32]) {
        self.read(false, pos, offset, out)
    }

    fn read(&self, key: bool, pos: usize, offset: usize, out: &mut [f32]) {
        let at = pos * self.kv_dim + offset;
        match self.rows {
            Rows::F32 { k, v } => {
                out.copy_from_slice(&(if key { k } else { v })[at..at + out.len()])
            }
            Rows::F16 { k, v } => {
                ops::f16_to_f32(&(if key { k } else { v })[at..at + out.len()], out)
            }
            Rows::Q8_0 { k, v } => {
                // A head slice starts on a block boundary (checked when the cache is made).
                let block = GgmlType::Q8_0.block_bytes();
                let src =
                    &(if key { k } else { v })[at / 32 * block..(at + out.len()) / 32 * block];
                quant::dequantize(GgmlType::Q8_0, src, out).expect("whole blocks");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_reads_back_what_was_stored() {
        let kv_dim = 128;
        let k: Vec<f32> = (0..2 * kv_dim).map(|i| (i as f32 * 0.37).sin()).collect();
        let v: Vec<f32> = k.iter().map(|x| -x).collect();
        for (ty, tol) in [
            (CacheType::F32, 0.0),
            (CacheType::F16, 1e-3),
            (CacheType::Q8_0, 1e-2),
        ] {
            let mut cache = KvCache::new(ty, 2, 4, kv_dim);
            cache.store(1, 2, &k, &v);
            let view = cache.layer(1, 4);
            assert_eq!(view.len(), 4);
            let mut out = [0.0; 64];
            for pos in 0..2 {
                view.key(2 + pos, 64, &mut out);
                for (i, o) in out.iter().enumerate() {
                    assert!(
                        (o - k[pos * kv_dim + 64 + i]).abs() <= tol,
                        "{ty} key {pos}/{i}"
                    );
                }
                view.value(2 + pos, 0, &mut out);
                assert!((out[5] - v[pos * kv_dim + 5]).abs() <= tol, "{ty} value");
            }
            assert_eq!(cache.bytes(), KvCache::bytes_for(ty, 2, 4, kv_dim));
        }
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
