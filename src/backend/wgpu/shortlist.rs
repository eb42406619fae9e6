//! The next token's candidates, picked out on the GPU. When the output layer runs there
//! and the sampler needs only the k most likely logits (greedy decoding, top-k), a step
//! brings back those rather than the whole row: 16 KB at most, where the row is 196 KB
//! at SmolLM2's 49152 logits and 513 KB at Llama 3's 128256, and the CPU then looks
//! through a few hundred candidates rather than the whole vocabulary.
//!
//! Two passes (shaders/shortlist_max.wgsl, shortlist_gather.wgsl). The first finds the
//! largest logit of each of [`CHUNKS`] chunks of the row. The k-th largest of those
//! maxima is a threshold that k logits reach, so the k most likely all reach it, and so
//! does every logit tied with the k-th. The second pass lists every logit at or above
//! it, in no order: ranking them, breaking ties and applying the repetition penalty are
//! left to the sampler, which sees every logit that could be picked. Where the most
//! likely logits are spread over the chunks as chance would have it, about 1.3 k of them
//! reach the threshold; when more than [`CAPACITY`] do (or none does), the step reads
//! the row instead.

use super::kernel::{Grid, Kernel, Variants};
use super::ops::{activation_bytes, activations, combine_define, shader_variant};
use super::pipelines::Access::{Read as R, ReadWrite as RW};
use super::Gpu;

/// Chunks of the row whose maxima the first pass finds (the shaders' CHUNKS and their
/// workgroup size).
pub const CHUNKS: usize = 256;
/// The longest shortlist a step asks for: the higher k, the lower the threshold, and past
/// this the list would hold a large part of the row.
pub const MOST: usize = 128;
/// Logits the list has room for.
pub const CAPACITY: usize = 2048;
/// Logits each thread of the second pass looks at.
const PER_THREAD: usize = 8;

/// The least logit a list holds: NaN and -inf are never picked, so never listed.
const LOWEST: f32 = f32::MIN;

/// The two passes over row 0 of `logits` (`n_vocab` wide), and the list they fill
/// ([`list_bytes`]): a step asks for one by setting `Step::shortlist` to its k (at most
/// [`MOST`]); other steps do not dispatch them.
pub fn kernels(
    gpu: &Gpu,
    step: &wgpu::Buffer,
    logits: &wgpu::Buffer,
    n_vocab: usize,
) -> (Vec<Kernel>, wgpu::Buffer) {
    let maxima = activations(gpu, "shortlist maxima", CHUNKS);
    let list = gpu.buffer(&wgpu::BufferDescriptor {
        label: Some("shortlist"),
        size: list_bytes(),
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let buffers = [(logits, R), (&maxima, RW), (&list, RW)];
    let params = [n_vocab as u32];
    let [first, second] = variants(gpu.subgroups_of_32);
    let gather_groups = n_vocab.div_ceil(CHUNKS * PER_THREAD) as u32;
    let kernels =
        [(first, CHUNKS as u32), (second, gather_groups.max(1))].map(|((files, defines), x)| {
            let grid = Grid::Shortlist { x };
            let shader = (&files[..], &defines[..]);
            Kernel::new(Variants::Same(shader_variant(
                gpu, shader, &params, step, &buffers, grid,
            )))
        });
    (kernels.into(), list)
}

/// The shaders of the two passes, with sums through subgroup operations or not.
pub(super) fn variants(subgroups_of_32: bool) -> [super::ops::ShaderVariant; 2] {
    let defines = vec![
        ("CAPACITY", CAPACITY.to_string()),
        ("PER_THREAD", PER_THREAD.to_string()),
    ];
    let mut with_combine = defines.clone();
    with_combine.push(combine_define(subgroups_of_32));
    [
        (vec!["shortlist", "combine", "shortlist_max"], with_combine),
        (vec!["shortlist", "shortlist_gather"], defines),
    ]
}

/// Bytes of the list: its count, a pad word, then `CAPACITY` (id, logit) pairs.
pub fn list_bytes() -> u64 {
    (8 + 8 * CAPACITY) as u64
}

/// Bytes the GPU holds for shortlists, with the output layer: the chunks' maxima, the
/// list, and its readback.
pub(super) fn bytes() -> u64 {
    activation_bytes(CHUNKS) + 2 * list_bytes()
}

/// The listed `(id, logit)` pairs of a list read back as `words` (its u32s), into `out`;
/// false, with `out` empty, where the list overflowed or nothing reached the threshold
/// (every logit NaN or -inf): then the row itself must be read.
pub fn parse(words: &[u32], out: &mut Vec<(u32, f32)>) -> bool {
    out.clear();
    let count = words[0] as usize;
    if count == 0 || count > CAPACITY {
        return false;
    }
    out.extend(
        words[2..2 + 2 * count]
            .chunks_exact(2)
            .map(|pair| (pair[0], f32::from_bits(pair[1]))),
    );
    true
}

/// A segment's shortlists: the list its kernels fill, the list's readback, and what the
/// last step brought back.
pub(super) struct Lists {
    list: wgpu::Buffer,
    readback: wgpu::Buffer,
    /// The readback's words, as [`parse`] takes them.
    words: Vec<u32>,
    /// The last step's list; empty where it brought none back (a list is never empty).
    picked: Vec<(u32, f32)>,
    /// Off with `ROPEWALK_GPU_NO_SHORTLIST` (for measuring what they save).
    pub enabled: bool,
    /// Steps that brought a shortlist back.
    pub served: u64,
    /// Treat the next list as overflowed (for testing the fallback to the row).
    pub spoil_next: bool,
}

impl Lists {
    pub fn new(gpu: &Gpu, list: wgpu::Buffer) -> Lists {
        let readback = gpu.buffer(&wgpu::BufferDescriptor {
            label: Some("shortlist readback"),
            size: list_bytes(),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Lists {
            list,
            readback,
            words: vec![0; list_bytes() as usize / 4],
            picked: Vec::new(),
            enabled: std::env::var_os("ROPEWALK_GPU_NO_SHORTLIST").is_none(),
            served: 0,
            spoil_next: false,
        }
    }

    /// Whether a step can ask for a shortlist of `k`.
    pub fn take(&self, k: usize) -> bool {
        self.enabled && (1..=MOST).contains(&k)
    }

    /// Records the list's copy back.
    pub fn copy_back(&self, encoder: &mut wgpu::CommandEncoder) {
        encoder.copy_buffer_to_buffer(&self.list, 0, &self.readback, 0, list_bytes());
    }

    /// Reads the step's list back once the GPU is done; false where it will not do.
    pub fn read(&mut self, gpu: &Gpu) -> super::Result<bool> {
        super::kernel::read_into(gpu, &self.readback, &mut self.words)?;
        let spoiled = std::mem::take(&mut self.spoil_next);
        if !parse(&self.words, &mut self.picked) || spoiled {
            self.picked.clear();
            return Ok(false);
        }
        self.served += 1;
        Ok(true)
    }

    /// Forgets the last list: a new step begins.
    pub fn clear(&mut self) {
        self.picked.clear();
    }

    /// The last step's list, if it brought one back.
    pub fn last(&self) -> Option<&[(u32, f32)]> {
        (!self.picked.is_empty()).then_some(&self.picked[..])
    }
}

/// What the two passes list for `k`, in id order: the shaders' twin on the CPU, which
/// the op tests hold them to.
pub fn reference(logits: &[f32], k: usize) -> Vec<(u32, f32)> {
    let size = logits.len().div_ceil(CHUNKS);
    let maxima: Vec<f32> = (0..CHUNKS)
        .map(|c| {
            let start = (c * size).min(logits.len());
            let end = ((c + 1) * size).min(logits.len());
            logits[start..end]
                .iter()
                .fold(LOWEST, |m, &x| if x > m { x } else { m })
        })
        .collect();
    // Ranked as the shader ranks them, with `>` and `==`: -0.0 ties with 0.0.
    let rank = |i: usize| {
        let mine = maxima[i];
        (0..CHUNKS)
            .filter(|&j| maxima[j] > mine || (maxima[j] == mine && j < i))
            .count()
    };
    let k = k.clamp(1, CHUNKS);
    let chunk = (0..CHUNKS)
        .find(|&i| rank(i) == k - 1)
        .expect("the ranks are 0..CHUNKS, each once");
    let threshold = maxima[chunk];
    logits
        .iter()
        .enumerate()
        .filter(|&(_, &x)| x >= threshold)
        .map(|(i, &x)| (i as u32, x))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_lists_at_least_the_k_most_likely_and_their_ties() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for n in [1usize, 7, 255, 256, 257, 1000, 49152] {
            let logits: Vec<f32> = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    match x % 50 {
                        0 => f32::NAN,
                        1 => f32::NEG_INFINITY,
                        _ => ((x >> 40) % 64) as f32 * 0.5,
                    }
                })
                .collect();
            let mut finite: Vec<f32> = logits.iter().copied().filter(|l| *l > f32::MIN).collect();
            finite.sort_by(|a, b| b.total_cmp(a));
            if finite.is_empty() {
                assert!(reference(&logits, 1).is_empty());
                continue;
            }
            for k in [1, 2, 40, 104, MOST] {
                let listed = reference(&logits, k);
                let ids: Vec<u32> = listed.iter().map(|&(i, _)| i).collect();
                assert!(ids.windows(2).all(|w| w[0] < w[1]));
                assert!(listed
                    .iter()
                    .all(|&(i, l)| logits[i as usize].to_bits() == l.to_bits() && l >= f32::MIN));
                // The k-th most likely, and every logit tied with it or above it.
                let kth = finite[(k - 1).min(finite.len() - 1)];
                let must = (0..n as u32).filter(|&i| logits[i as usize] >= kth);
                assert!(
                    must.into_iter().all(|i| ids.binary_search(&i).is_ok()),
                    "n {n} k {k}"
                );
            }
        }
    }

    #[test]
    fn a_list_that_overflowed_or_holds_nothing_is_not_used() {
        let mut out = vec![(9, 9.0)];
        let mut words = vec![0u32; 2 + 2 * CAPACITY];
        assert!(!parse(&words, &mut out) && out.is_empty());
        words[0] = CAPACITY as u32 + 1;
        assert!(!parse(&words, &mut out) && out.is_empty());
        words[0] = 2;
        words[2..6].copy_from_slice(&[5, 1.5f32.to_bits(), 3, (-2.0f32).to_bits()]);
        assert!(parse(&words, &mut out));
        assert_eq!(out, [(5, 1.5), (3, -2.0)]);
    }
}
