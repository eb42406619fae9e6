//! Keys and values of every position seen so far, per layer, so each new token attends
//! to the past without recomputing it. Stored as f32, f16 or Q8_0: at long contexts the
//! cache, not the weights, is what fills memory.

use std::str::FromStr;

use half::f16;

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

/// `[n_layers][n_ctx][kv_dim]` keys and values in `ty`.
pub struct KvCache {
    ty: CacheType,
    kv_dim: usize,
    n_ctx: usize,
    row_bytes: usize,
    k: Vec<Vec<u8>>,
    v: Vec<Vec<u8>>,
}

impl KvCache {
    pub fn new(ty: CacheType, n_layers: usize, n_ctx: usize, kv_dim: usize) -> KvCache {
        let row_bytes = ty.row_bytes(kv_dim);
        KvCache {
            ty,
            kv_dim,
            n_ctx,
            row_bytes,
            k: (0..n_layers).map(|_| vec![0; n_ctx * row_bytes]).collect(),
            v: (0..n_layers).map(|_| vec![0; n_ctx * row_bytes]).collect(),
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
        let start = pos * self.row_bytes;
        let n = k.len() / self.kv_dim;
        let (ty, row_bytes) = (self.ty.ggml(), self.row_bytes);
        for (dst, src) in [(&mut self.k[layer], k), (&mut self.v[layer], v)] {
            let dst = &mut dst[start..start + n * row_bytes];
            quant::quantize(ty, src, dst).expect("rows of kv_dim values");
        }
    }

    /// Keys and values of `layer` as stored, for positions `0..len`.
    pub fn layer(&self, layer: usize, len: usize) -> KvView<'_> {
        KvView {
            ty: self.ty,
            row_bytes: self.row_bytes,
            k: &self.k[layer][..len * self.row_bytes],
            v: &self.v[layer][..len * self.row_bytes],
        }
    }
}

/// One layer's cached rows, read one head slice at a time.
#[derive(Clone, Copy)]
pub struct KvView<'a> {
    ty: CacheType,
    row_bytes: usize,
    k: &'a [u8],
    v: &'a [u8],
}

impl KvView<'_> {
    pub fn len(&self) -> usize {
        self.k.len() / self.row_bytes
    }

    pub fn is_empty(&self) -> bool {
        self.k.is_empty()
    }

    /// Values `offset..offset + out.len()` of the key at position `pos`, as f32.
    pub fn key(&self, pos: usize, offset: usize, out: &mut [f32]) {
        self.read(self.k, pos, offset, out)
    }

    pub fn value(&self, pos: usize, offset: usize, out: &mut [f32]) {
        self.read(self.v, pos, offset, out)
    }

    fn read(&self, rows: &[u8], pos: usize, offset: usize, out: &mut [f32]) {
        let row = &rows[pos * self.row_bytes..(pos + 1) * self.row_bytes];
        match self.ty {
            CacheType::F32 => {
                let src = &row[offset * 4..(offset + out.len()) * 4];
                for (o, b) in out.iter_mut().zip(src.chunks_exact(4)) {
                    *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                }
            }
            CacheType::F16 => {
                let src = &row[offset * 2..(offset + out.len()) * 2];
                for (o, b) in out.iter_mut().zip(src.chunks_exact(2)) {
                    *o = f16::from_le_bytes([b[0], b[1]]).to_f32();
                }
            }
            CacheType::Q8_0 => {
                // A head slice starts on a block boundary (checked when the cache is made).
                let block = GgmlType::Q8_0.block_bytes();
                let first = offset / 32 * block;
                let src = &row[first..first + out.len() / 32 * block];
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
