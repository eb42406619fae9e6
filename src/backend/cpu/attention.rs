//! Causal attention that streams over the KV cache with an online softmax: keys are
//! taken a block at a time, the running maximum and sum rescale what came before, and
//! no score row of the whole context is ever held. Prompt processing at 32k positions
//! needs memory for one block, not an n-by-n matrix.
//!
//! Work comes in tiles: the query heads that share one KV head, for a run of
//! consecutive tokens. A tile of a few rows (one token's query heads) reads each block
//! of cached keys and values as stored, converting f16 as it loads, so generation
//! streams the cache once and writes nothing in between; a bigger tile (a batch's)
//! decodes the block to f32 once and every row reads it from L1. Keys come transposed
//! (sixteen positions to a vector, as the cache keeps them), so a row's scores need
//! neither a transposition nor a sum across lanes; the kernels give a row the same bits
//! from either kind of tile.
//!
//! A tile's positions come in chunks of [`CHUNK`] whose softmax parts merge in order:
//! one token's attention over a long context can then be spread over threads, chunk by
//! chunk, and still give the bits of the same token in a batch.

use crate::model::kv_cache::KvView;

use super::ops::{self, Cached, KEY_GROUP};

/// Positions scored together: enough to amortize the rescaling, small enough that a
/// block of keys and one of values stay in L1.
pub const BLOCK: usize = 32;

/// Positions whose softmax is taken on its own and then merged, in order, into what the
/// positions before gave: the unit a long one-token attention spreads over threads.
/// Chunks start at absolute multiples of CHUNK however the work is split, so a token's
/// attention keeps the same bits; a multiple of [`BLOCK`], so that only a context's last
/// block is ever partial.
pub const CHUNK: usize = 512;
const _: () = assert!(CHUNK.is_multiple_of(BLOCK) && BLOCK.is_multiple_of(KEY_GROUP));

/// Rows of a tile from which a block of keys and values is decoded once for all of them
/// rather than converted as each row reads it.
const DECODE_AT: usize = 4;

/// The blocks a chunk is scored through, per thread, grown to the largest tile seen and
/// then reused.
#[derive(Default)]
struct Blocks {
    /// `[rows][head_dim]` the tile's queries, pre-scaled by 1/sqrt(head_dim)
    q: Vec<f32>,
    /// one block of keys, decoded, as transposed groups (`[BLOCK / KEY_GROUP][head_dim]
    /// [KEY_GROUP]`), for tiles that decode them
    kt: Vec<f32>,
    /// `[BLOCK][head_dim]` one block of values, decoded, likewise
    v: Vec<f32>,
}

/// Per-thread buffers: the blocks, and a tile's softmax so far and of its current chunk
/// (each laid out as a part: see [`part_len`]).
#[derive(Default)]
pub struct AttnScratch {
    blocks: Blocks,
    acc: Vec<f32>,
    part: Vec<f32>,
}

fn grow(v: &mut Vec<f32>, n: usize) {
    if v.len() < n {
        v.resize(n, 0.0);
    }
}

/// One tile: the `group` query heads that read KV head `kv_head`, for consecutive tokens. Row `r` of the tile is head
/// `r % group` of token `r / group`, which sees positions `0..first_seen + r / group`
/// (causal).
pub struct Tile {
    pub head_dim: usize,
    pub group: usize,
    pub kv_head: usize,
    pub first_seen: usize,
    /// distance between consecutive tokens' queries
    pub q_stride: usize,
}

impl Tile {
    fn seen(&self, r: usize) -> usize {
        self.first_seen + r / self.group
    }

    /// The chunks of positions that some row of a tile of `rows` sees.
    pub fn chunks(&self, rows: usize) -> usize {
        self.seen(rows - 1).div_ceil(CHUNK)
    }
}

/// The floats of a tile's part, the softmax of one chunk of positions or of several
/// merged: `[rows][head_dim]` the values weighted by e^(score - max), then `[rows]` the
/// maximum, then `[rows]` the sum of the weights.
pub fn part_len(rows: usize, head_dim: usize) -> usize {
    rows * (head_dim + 2)
}

thread_local! {
    static SCRATCH: std::cell::RefCell<AttnScratch> = Default::default();
}

/// `out[r] = softmax(q[r] · Kᵀ / sqrt(d)) · V` over the positions row `r` sees, with
/// `out` laid out `[rows][head_dim]` and row `r`'s query at
/// `q[(r / group) * q_stride + (r % group) * head_dim..]`. Buffers are the calling
/// thread's own, reused from call to call.
pub fn attend(out: &mut [f32], q: &[f32], kv: &KvView, tile: &Tile) {
    SCRATCH.with_borrow_mut(|s| {
        let rows = out.len() / tile.head_dim;
        let len = part_len(rows, tile.head_dim);
        grow(&mut s.acc, len);
        grow(&mut s.part, len);
        let (acc, part) = (&mut s.acc[..len], &mut s.part[..len]);
        chunk_into(acc, q, kv, tile, 0, &mut s.blocks);
        for c in 1..tile.chunks(rows) {
            chunk_into(part, q, kv, tile, c, &mut s.blocks);
            merge(acc, part, rows);
        }
        finish(out, acc, rows);
    })
}

/// The part of chunk `c` of the tile's positions (see [`part_len`]): what [`attend`]
/// merges in order, for threads that take chunks of one tile apart.
pub fn attend_chunk(part: &mut [f32], q: &[f32], kv: &KvView, tile: &Tile, c: usize) {
    SCRATCH.with_borrow_mut(|s| chunk_into(part, q, kv, tile, c, &mut s.blocks))
}

/// `out` from a tile's parts (`[chunks][part_len]`, chunk by chunk), merged in the order
/// [`attend`] merges them.
pub fn merge_parts(out: &mut [f32], parts: &[f32], head_dim: usize) {
    SCRATCH.with_borrow_mut(|s| {
        let rows = out.len() / head_dim;
        let len = part_len(rows, head_dim);
        grow(&mut s.acc, len);
        let acc = &mut s.acc[..len];
        acc.copy_from_slice(&parts[..len]);
        for part in parts.chunks_exact(len).skip(1) {
            merge(acc, part, rows);
        }
        finish(out, acc, rows);
    })
}

/// A part's three arrays: weighted values, maxima, sums.
fn split_part(part: &mut [f32], rows: usize) -> (&mut [f32], &mut [f32], &mut [f32]) {
    let (o, rest) = part.split_at_mut(part.len() - 2 * rows);
    let (max, sum) = rest.split_at_mut(rows);
    (o, max, sum)
}

/// `acc` takes the positions of `part`, which come after its own: both rescaled to the
/// larger maximum. A row that saw none of the part's positions (sum 0) is left alone.
fn merge(acc: &mut [f32], part: &[f32], rows: usize) {
    let hd = (part.len() - 2 * rows) / rows;
    let (o, max, sum) = split_part(acc, rows);
    let (po, rest) = part.split_at(rows * hd);
    let (pmax, psum) = rest.split_at(rows);
    for r in 0..rows {
        if psum[r] == 0.0 {
            continue;
        }
        let m = max[r].max(pmax[r]);
        let (ca, cb) = ((max[r] - m).exp(), (pmax[r] - m).exp());
        sum[r] = sum[r] * ca + psum[r] * cb;
        let o = &mut o[r * hd..][..hd];
        ops::scale(o, ca);
        ops::axpy(cb, &po[r * hd..][..hd], o);
        max[r] = m;
    }
}

/// `out` ← a part's weighted values over its sums.
fn finish(out: &mut [f32], acc: &[f32], rows: usize) {
    let hd = out.len() / rows;
    debug_assert_eq!(acc.len(), part_len(rows, hd));
    let (o, rest) = acc.split_at(out.len());
    out.copy_from_slice(o);
    for (o, &sum) in out.chunks_mut(hd).zip(&rest[rows..]) {
        ops::scale(o, 1.0 / sum);
    }
}

/// The part (see [`part_len`]) of chunk `c` of the tile's positions: an online softmax
/// over its blocks from a fresh start.
fn chunk_into(part: &mut [f32], q: &[f32], kv: &KvView, tile: &Tile, c: usize, s: &mut Blocks) {
    let hd = tile.head_dim;
    let rows = part.len() / (hd + 2);
    grow(&mut s.q, rows * hd);
    grow(&mut s.kt, BLOCK * hd);
    grow(&mut s.v, BLOCK * hd);
    let scale = 1.0 / (hd as f32).sqrt();
    for (r, sq) in s.q.chunks_mut(hd).take(rows).enumerate() {
        let at = (r / tile.group) * tile.q_stride + (r % tile.group) * hd;
        for (a, &b) in sq.iter_mut().zip(&q[at..at + hd]) {
            *a = b * scale;
        }
    }
    let (out, max, sum) = split_part(part, rows);
    max.fill(f32::NEG_INFINITY);
    sum.fill(0.0);
    out.fill(0.0);
    let last = tile.seen(rows - 1).min((c + 1) * CHUNK);

    for start in (c * CHUNK..last).step_by(BLOCK) {
        let nb = BLOCK.min(last - start);
        let len = nb * hd;
        // A few rows read the cache's rows as stored, so one token streams its context
        // once with nothing written; more rows (and a Q8_0 cache) decode the block once
        // for all of them. The kernels give a row the same bits either way.
        let stored = (rows < DECODE_AT)
            .then(|| kv.rows(tile.kv_head, start, nb))
            .flatten();
        let (keys, values) = stored.unwrap_or_else(|| {
            // (The value block is the scratch Q8_0 keys decode through.)
            kv.keys_t(tile.kv_head, (start, nb), &mut s.kt, &mut s.v);
            kv.values(tile.kv_head, start, &mut s.v[..len]);
            (Cached::F32(&s.kt), Cached::F32(&s.v[..len]))
        });
        let mut r = 0;
        while r < rows {
            // Four rows that all see the whole block of decoded keys and values go
            // through the four-row kernels, which load each key and value once for all
            // four.
            let four = r + 4 <= rows && nb == BLOCK && tile.seen(r) >= start + BLOCK;
            match values {
                Cached::F32(v) if four => {
                    let mut scores = [0.0f32; 4 * BLOCK];
                    ops::scores4(&s.q[r * hd..(r + 4) * hd], keys, &mut scores);
                    for (i, scores) in scores.chunks_exact_mut(BLOCK).enumerate() {
                        let o = &mut out[(r + i) * hd..(r + i + 1) * hd];
                        softmax_step(scores, &mut max[r + i], &mut sum[r + i], o);
                    }
                    ops::add_weighted_rows4(&scores, v, &mut out[r * hd..(r + 4) * hd]);
                    r += 4;
                    continue;
                }
                _ => {}
            }
            let Some(n) = tile.seen(r).checked_sub(start).filter(|&n| n > 0) else {
                r += 1;
                continue;
            };
            let n = n.min(nb);
            let mut scores = [0.0f32; BLOCK];
            let scores = &mut scores[..n];
            ops::scores(&s.q[r * hd..(r + 1) * hd], keys, scores);
            let o = &mut out[r * hd..(r + 1) * hd];
            softmax_step(scores, &mut max[r], &mut sum[r], o);
            ops::add_weighted(scores, values.first(n * hd), o);
            r += 1;
        }
    }
}

/// One block of the online softmax for one row: `scores` become `e^(score - max)` against
/// the running maximum, the running sum takes them, and `out` (what earlier blocks added)
/// is rescaled when the maximum grows.
fn softmax_step(scores: &mut [f32], max: &mut f32, sum: &mut f32, out: &mut [f32]) {
    let new_max = max.max(ops::max(scores));
    if new_max > *max {
        // What was summed against the old maximum is worth exp(old - new) of it now.
        let rescale = (*max - new_max).exp();
        *sum *= rescale;
        ops::scale(out, rescale);
        *max = new_max;
    }
    *sum += ops::exp_sub_sum(scores, new_max);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::ops::softmax;
    use crate::model::kv_cache::{CacheShape, CacheType, KvCache};

    /// The two-pass textbook version for one query row over positions `0..n`, reading
    /// the cache through the same decoding.
    fn textbook(q: &[f32], kv: &KvView, n: usize, head: usize) -> Vec<f32> {
        let hd = q.len();
        let (mut key, mut value) = (vec![0.0; hd], vec![0.0; hd]);
        let mut scores: Vec<f32> = (0..n)
            .map(|t| {
                kv.keys(head, t, &mut key);
                ops::scalar::dot(q, &key) / (hd as f32).sqrt()
            })
            .collect();
        softmax(&mut scores);
        let mut want = vec![0.0f32; hd];
        for (t, w) in scores.iter().enumerate() {
            kv.values(head, t, &mut value);
            ops::scalar::axpy(*w, &value, &mut want);
        }
        want
    }

    /// Tiles of several tokens and query heads, causal limits that end inside and on the
    /// edges of blocks, every cache type.
    #[test]
    fn tiles_equal_the_full_softmax() {
        for (hd, n_kv_heads, head) in [(64, 2, 1), (96, 2, 0)] {
            let kv_dim = n_kv_heads * hd;
            let value = |i: usize, m: usize| ((i * m) % 1000) as f32 / 250.0 - 2.0;
            for ty in [CacheType::F32, CacheType::F16, CacheType::Q8_0] {
                for (n, group, tokens) in [
                    (1, 1, 1),
                    (2, 3, 2),
                    (33, 1, 5),
                    (100, 3, 4),
                    (257, 4, 16),
                    (2 * CHUNK + 70, 3, 2),
                    // rows that see none of the last chunk, and a context ending on a
                    // chunk's end
                    (CHUNK + 2, 3, 4),
                    (2 * CHUNK, 1, 1),
                ] {
                    let keys: Vec<f32> = (0..n * kv_dim).map(|i| value(i, 7919)).collect();
                    let values: Vec<f32> =
                        (0..n * kv_dim).map(|i| value(i, 104729) * 0.5).collect();
                    let shape = CacheShape {
                        n_layers: 1,
                        n_ctx: n + 3,
                        n_kv_heads,
                        head_dim: hd,
                    };
                    let mut cache = KvCache::new(ty, shape);
                    cache.store(0, 0, &keys, &values);
                    let kv = cache.layer(0, n);
                    let rows = group * tokens;
                    let q: Vec<f32> = (0..rows * hd).map(|i| (i as f32 * 0.1).cos()).collect();
                    let tile = Tile {
                        head_dim: hd,
                        group,
                        kv_head: head,
                        first_seen: n + 1 - tokens,
                        q_stride: group * hd,
                    };
                    let mut got = vec![0.0f32; rows * hd];
                    attend(&mut got, &q, &kv, &tile);
                    // The first row alone, as a one-row tile: the same bits.
                    let mut one = vec![0.0f32; hd];
                    let alone = Tile { group: 1, ..tile };
                    attend(&mut one, &q[..hd], &kv, &alone);
                    assert_eq!(
                        one,
                        got[..hd],
                        "{ty} n {n}: a row alone differs from its tile"
                    );
                    // Chunk by chunk, as threads take a long one-token attention apart:
                    // the same bits.
                    let len = part_len(rows, hd);
                    let mut parts = vec![0.0f32; tile.chunks(rows) * len];
                    for (c, part) in parts.chunks_mut(len).enumerate() {
                        attend_chunk(part, &q, &kv, &tile, c);
                    }
                    let mut merged = vec![0.0f32; rows * hd];
                    merge_parts(&mut merged, &parts, hd);
                    assert_eq!(
                        merged, got,
                        "{ty} n {n}: chunks merged differ from the tile"
                    );
                    for r in 0..rows {
                        let want =
                            textbook(&q[r * hd..][..hd], &kv, tile.first_seen + r / group, head);
                        for (g, w) in got[r * hd..][..hd].iter().zip(&want) {
                            assert!((g - w).abs() < 1e-5, "{ty} n {n} row {r}: {g} vs {w}");
                        }
                    }
                }
            }
        }
    }
}
