//! Keys and values of every position seen so far, per layer, so each new token attends
//! to the past without recomputing it.

/// `[n_layers][n_ctx][kv_dim]` keys and values, in f32.
pub struct KvCache {
    kv_dim: usize,
    n_ctx: usize,
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

impl KvCache {
    pub fn new(n_layers: usize, n_ctx: usize, kv_dim: usize) -> KvCache {
        KvCache {
            kv_dim,
            n_ctx,
            k: (0..n_layers).map(|_| vec![0.0; n_ctx * kv_dim]).collect(),
            v: (0..n_layers).map(|_| vec![0.0; n_ctx * kv_dim]).collect(),
        }
    }

    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    pub fn bytes(&self) -> usize {
        2 * self.k.len() * self.n_ctx * self.kv_dim * std::mem::size_of::<f32>()
    }

    /// Stores the keys and values of positions `pos..pos + n` (rows of `kv_dim`).
    pub fn store(&mut self, layer: usize, pos: usize, k: &[f32], v: &[f32]) {
        let start = pos * self.kv_dim;
        self.k[layer][start..start + k.len()].copy_from_slice(k);
        self.v[layer][start..start + v.len()].copy_from_slice(v);
    }

    /// Keys and values of positions `0..len` of `layer`.
    pub fn layer(&self, layer: usize, len: usize) -> (&[f32], &[f32]) {
        let n = len * self.kv_dim;
        (&self.k[layer][..n], &self.v[layer][..n])
    }
}
