//! The kernel table: for each weight type, the function that quantizes activations to its
//! partner layout ([`acts`](super::acts)), the dot product of one weight row with one
//! activation row, and a tiled matrix kernel for batches. Chosen once at start-up from the
//! CPU's features, or forced with `ROPEWALK_CPU=scalar|avx2|avx512|neon|neon-dotprod`.
//!
//! SIMD kernels are `#[target_feature]` functions: calling one on a CPU without those
//! features is undefined behaviour. A [`Kernels`] table is only ever built for a path the
//! running CPU supports ([`Kernels::for_path`] checks), and its fields are private, so the
//! safe methods here are sound.

use std::sync::OnceLock;

use super::acts::{ActFormat, ActRow, ActRowMut, Acts};
use super::blocks::{view_blocks, Block, QK, QK_K};
use super::packed::{self, PackedFn, PackedJob};
use super::{dot, k_quants, quantize, GgmlType};

/// An instruction-set level with its own kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Path {
    /// The reference kernels, on any CPU.
    Scalar,
    /// x86-64 with AVX2, FMA and F16C.
    Avx2,
    /// x86-64 with AVX-512 F/BW/DQ/VL and VNNI (Ice Lake, Zen 4 and later).
    Avx512,
    /// AArch64 NEON.
    Neon,
    /// AArch64 NEON with the dot-product extension (Cortex-A76, Apple M1 and later).
    NeonDot,
}

impl Path {
    pub const ALL: [Path; 5] = [
        Path::Scalar,
        Path::Avx2,
        Path::Avx512,
        Path::Neon,
        Path::NeonDot,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Path::Scalar => "scalar",
            Path::Avx2 => "avx2",
            Path::Avx512 => "avx512",
            Path::Neon => "neon",
            Path::NeonDot => "neon-dotprod",
        }
    }

    /// Whether this CPU runs the path's kernels.
    pub fn is_supported(self) -> bool {
        match self {
            Path::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 => super::x86::has_avx2(),
            #[cfg(target_arch = "x86_64")]
            Path::Avx512 => super::x86::has_avx512(),
            #[cfg(target_arch = "aarch64")]
            Path::Neon => super::aarch64::has_neon(),
            #[cfg(target_arch = "aarch64")]
            Path::NeonDot => super::aarch64::has_dotprod(),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The best supported path.
    pub fn detect() -> Path {
        [Path::Avx512, Path::Avx2, Path::NeonDot, Path::Neon]
            .into_iter()
            .find(|p| p.is_supported())
            .unwrap_or(Path::Scalar)
    }
}

/// Quantizes one row of f32 into the partner layout (`out`: at least `row_bytes`, 64-byte
/// aligned).
pub type QuantizeFn = unsafe fn(x: &[f32], out: &mut [u8]);
/// One weight row (whole blocks) · one activation row of the same length `n`.
pub type DotFn = unsafe fn(w: &[u8], a: &[u8], n: usize) -> f32;
/// A tile kernel over a [`GemmJob`], with `pack` scratch of `GemmKernel::pack_bytes`.
pub type GemmFn = unsafe fn(job: &GemmJob, pack: &mut [u8]);

/// `out[t * out_stride + r] = w_r · a_t` for `rows` weight rows and `n_tok` tokens.
pub struct GemmJob<'a> {
    pub w: &'a [u8],
    pub row_bytes: usize,
    pub rows: usize,
    pub cols: usize,
    pub acts: &'a [u8],
    pub act_stride: usize,
    pub n_tok: usize,
    pub out: *mut f32,
    pub out_stride: usize,
}

#[derive(Clone, Copy)]
pub struct GemmKernel {
    run: GemmFn,
    /// Scratch bytes for a row group of `cols` columns.
    pub pack_bytes: fn(cols: usize) -> usize,
    /// Rows packed together; callers split work in multiples of it.
    pub rows_per_group: usize,
}

/// The kernels for one weight type on one path.
#[derive(Clone, Copy)]
pub struct TypeKernels {
    pub ty: GgmlType,
    pub act: ActFormat,
    pub path: Path,
    quantize: QuantizeFn,
    dot: DotFn,
    gemm: Option<GemmKernel>,
    /// Rows x a few tokens without packing, lane for lane the tile kernel's arithmetic
    /// (a batch gives the same bits whichever of the two runs it).
    gemv: Option<GemmFn>,
    /// The kernel for matrices repacked at load ([`super::packed`]), where this type and
    /// path have one.
    packed: Option<PackedFn>,
}

impl TypeKernels {
    pub(crate) fn new(
        ty: GgmlType,
        path: Path,
        quantize: QuantizeFn,
        dot: DotFn,
        gemm: Option<GemmKernel>,
    ) -> TypeKernels {
        TypeKernels {
            ty,
            act: ActFormat::for_weight(ty).expect("a weight type"),
            path,
            quantize,
            dot,
            gemm,
            gemv: None,
            packed: None,
        }
    }

    /// This type's kernels with `dot` (of `path`) in place of the row dot product, and no
    /// tile kernels.
    #[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
    pub(crate) fn with_dot(self, path: Path, dot: DotFn) -> TypeKernels {
        TypeKernels {
            path,
            dot,
            gemm: None,
            gemv: None,
            packed: None,
            ..self
        }
    }

    /// Adds (or replaces) the kernel for repacked matrices.
    pub(crate) fn with_packed(mut self, packed: PackedFn) -> TypeKernels {
        self.packed = Some(packed);
        self
    }

    /// Whether matrices of this type are worth repacking at load for this path.
    pub fn has_packed(&self) -> bool {
        self.packed.is_some()
    }

    /// Runs the kernel for repacked matrices over `job`.
    ///
    /// # Safety
    /// `job.out` must be valid for writes of `out[t * out_stride + r]` for every token
    /// and row of the job, with no other access to them while this runs.
    pub unsafe fn run_packed(&self, job: &PackedJob) {
        let run = self.packed.expect("a kernel for repacked matrices");
        job.check();
        // SAFETY: path supported; the job is consistent (checked); the caller vouches
        // for `out`.
        unsafe { run(job) }
    }

    /// Adds the row kernel that matches this type's tile kernel bit for bit.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn with_gemv(mut self, gemv: GemmFn) -> TypeKernels {
        self.gemv = Some(gemv);
        self
    }

    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn gemm_kernel(
        run: GemmFn,
        pack_bytes: fn(usize) -> usize,
        rows_per_group: usize,
    ) -> Option<GemmKernel> {
        Some(GemmKernel {
            run,
            pack_bytes,
            rows_per_group,
        })
    }

    /// Quantizes `x` (a whole number of blocks) into `out`, which holds at least
    /// `self.act.row_bytes(x.len())` bytes and is 64-byte aligned (a row of [`Acts`]).
    pub fn quantize_row(&self, x: &[f32], out: &mut [u8]) {
        assert!(x.len().is_multiple_of(self.act.block_len()));
        assert!(out.len() >= self.act.row_bytes(x.len()));
        assert!((out.as_ptr() as usize).is_multiple_of(64));
        // SAFETY: the table holds this path only if the CPU supports it; sizes checked.
        unsafe { (self.quantize)(x, out) }
    }

    /// Quantizes every row of `x` (`[n_tok][cols]`) into `acts`.
    pub fn quantize_acts(&self, x: &[f32], cols: usize, acts: &mut Acts) {
        let n_tok = x.len() / cols;
        acts.reset(self.act, cols, n_tok);
        let stride = acts.stride();
        let rows = &mut acts.bytes_mut()[..n_tok * stride];
        if n_tok >= 8 {
            crate::backend::cpu::team::for_each_chunk_mut(rows, stride, &|t, out| {
                self.quantize_row(&x[t * cols..(t + 1) * cols], out)
            });
        } else {
            for (out, xr) in rows.chunks_exact_mut(stride).zip(x.chunks_exact(cols)) {
                self.quantize_row(xr, out);
            }
        }
    }

    /// `w · a` for one weight row and activation row `t` of `acts`.
    pub fn dot(&self, w: &[u8], acts: &Acts, t: usize) -> f32 {
        let n = acts.cols();
        assert_eq!(acts.format(), self.act);
        assert_eq!(Some(w.len() as u64), self.ty.bytes_for(n as u64));
        assert!(t < acts.n_tok());
        // SAFETY: path supported (see the module comment); the row and the activations
        // hold `n` values each, in this type's layouts.
        unsafe { (self.dot)(w, acts.row_bytes(t), n) }
    }

    /// `w · a` for one weight row and one activation row (`Acts::row_bytes`) of `n`
    /// values: the per-row form of [`Self::dot`] for loops that check the row once.
    pub fn dot_row(&self, w: &[u8], a: &[u8], n: usize) -> f32 {
        assert!(w.len() as u64 == self.ty.bytes_for(n as u64).unwrap_or(u64::MAX));
        assert!(a.len() >= self.act.row_bytes(n) && (a.as_ptr() as usize).is_multiple_of(4));
        // SAFETY: path supported; both rows hold `n` values in this type's layouts.
        unsafe { (self.dot)(w, a, n) }
    }

    pub fn gemm(&self) -> Option<GemmKernel> {
        self.gemm
    }

    /// Whether [`Self::run_gemv`] is available (exactly when a tile kernel is).
    pub fn has_gemv(&self) -> bool {
        self.gemv.is_some()
    }

    /// The row kernel over `rows` consecutive weight rows and every token of `acts`: the
    /// small-batch form of [`Self::run_gemm`], with identical results.
    ///
    /// # Safety
    /// As [`Self::run_gemm`].
    pub unsafe fn run_gemv(
        &self,
        w: &[u8],
        rows: usize,
        acts: &Acts,
        out: *mut f32,
        out_stride: usize,
    ) {
        let gemv = self.gemv.expect("a row kernel");
        let cols = acts.cols();
        assert_eq!(acts.format(), self.act);
        let row_bytes = self.ty.bytes_for(cols as u64).expect("whole blocks") as usize;
        assert_eq!(w.len(), rows * row_bytes);
        let job = GemmJob {
            w,
            row_bytes,
            rows,
            cols,
            acts: acts.bytes(),
            act_stride: acts.stride(),
            n_tok: acts.n_tok(),
            out,
            out_stride,
        };
        // SAFETY: path supported; sizes checked above; the caller vouches for `out`.
        unsafe { gemv(&job, &mut []) }
    }

    /// Runs the tile kernel over `rows` consecutive weight rows starting at `w`.
    ///
    /// # Safety
    /// `out` must be valid for writes of `out[t * out_stride + r]` for every `t < n_tok`
    /// and `r < rows`, with no other access to those elements while this runs.
    pub unsafe fn run_gemm(
        &self,
        g: &GemmKernel,
        w: &[u8],
        rows: usize,
        acts: &Acts,
        out: *mut f32,
        out_stride: usize,
    ) {
        let cols = acts.cols();
        assert_eq!(acts.format(), self.act);
        let row_bytes = self.ty.bytes_for(cols as u64).expect("whole blocks") as usize;
        assert_eq!(w.len(), rows * row_bytes);
        let job = GemmJob {
            w,
            row_bytes,
            rows,
            cols,
            acts: acts.bytes(),
            act_stride: acts.stride(),
            n_tok: acts.n_tok(),
            out,
            out_stride,
        };
        PACK.with_borrow_mut(|pack| {
            let need = (g.pack_bytes)(cols) + 64;
            if pack.len() < need {
                pack.resize(need, 0);
            }
            let off = pack.as_ptr().align_offset(64);
            // SAFETY: path supported; sizes checked above; the caller vouches for `out`.
            unsafe { (g.run)(&job, &mut pack[off..off + need - 64]) }
        })
    }
}

/// Every kernel for one path.
#[derive(Clone, Copy)]
pub struct Kernels {
    pub path: Path,
    types: [TypeKernels; 11],
}

/// The weight types with kernels, in table order.
pub const WEIGHT_TYPES: [GgmlType; 11] = [
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::F32,
];

impl Kernels {
    /// The table for `path`, or `None` when this CPU cannot run it.
    pub fn for_path(path: Path) -> Option<Kernels> {
        if !path.is_supported() {
            return None;
        }
        let scalar = Kernels {
            path: Path::Scalar,
            types: WEIGHT_TYPES.map(scalar_kernels),
        };
        match path {
            Path::Scalar => Some(scalar),
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 | Path::Avx512 => Some(super::x86::table(path, scalar)),
            #[cfg(target_arch = "aarch64")]
            Path::Neon | Path::NeonDot => Some(super::aarch64::table(path, scalar)),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// The kernels for weights of type `ty`; `None` for activation-only types.
    pub fn for_type(&self, ty: GgmlType) -> Option<&TypeKernels> {
        self.types.iter().find(|k| k.ty == ty)
    }

    pub(crate) fn types_mut(&mut self) -> &mut [TypeKernels; 11] {
        &mut self.types
    }
}

static GLOBAL: OnceLock<Result<Kernels, String>> = OnceLock::new();

thread_local! {
    /// Each thread's tile scratch, kept between calls so a forward pass does not allocate.
    static PACK: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn choose() -> Result<Kernels, String> {
    let path = match std::env::var("ROPEWALK_CPU") {
        Err(_) => Path::detect(),
        Ok(v) if v.is_empty() || v == "auto" => Path::detect(),
        Ok(v) => Path::ALL
            .into_iter()
            .find(|p| p.name() == v)
            .ok_or_else(|| {
                format!(
                    "ROPEWALK_CPU={v} is not a kernel path \
                     (scalar, avx2, avx512, neon, neon-dotprod, auto)"
                )
            })?,
    };
    Kernels::for_path(path).ok_or_else(|| {
        format!(
            "ROPEWALK_CPU={} asks for kernels this CPU cannot run (best here: {})",
            path.name(),
            Path::detect().name()
        )
    })
}

/// Chooses the kernels once; an impossible `ROPEWALK_CPU` is an error here.
pub fn init() -> Result<&'static Kernels, String> {
    GLOBAL.get_or_init(choose).as_ref().map_err(Clone::clone)
}

/// The kernels chosen at start-up. Panics with [`init`]'s message if `ROPEWALK_CPU` names a
/// path this CPU lacks (the CLI calls `init` first and reports it as an error).
pub fn kernels() -> &'static Kernels {
    init().unwrap_or_else(|e| panic!("{e}"))
}

// ---- the scalar path: the reference kernels of `dot`, on the activation layout ----

fn scalar_kernels(ty: GgmlType) -> TypeKernels {
    let quantize: QuantizeFn = match ActFormat::for_weight(ty).expect("weight type") {
        ActFormat::Q8_0 => quantize_q8_0_scalar,
        ActFormat::Q8_1 => quantize_q8_1_scalar,
        ActFormat::Q8K => quantize_q8_k_scalar,
        ActFormat::F32 => copy_f32,
    };
    use ActFormat::{Q8K, Q8_0, Q8_1};
    let dot: DotFn = match ty {
        GgmlType::Q4_0 => |w, a, n| blocks(w, a, n, Q8_0, |r, b| r.q8_0(b), dot::q4_0_q8_0),
        GgmlType::Q5_0 => |w, a, n| blocks(w, a, n, Q8_0, |r, b| r.q8_0(b), dot::q5_0_q8_0),
        GgmlType::Q8_0 => |w, a, n| blocks(w, a, n, Q8_0, |r, b| r.q8_0(b), dot::q8_0_q8_0),
        GgmlType::Q4_1 => |w, a, n| blocks(w, a, n, Q8_1, |r, b| r.q8_1(b), dot::q4_1_q8_1),
        GgmlType::Q5_1 => |w, a, n| blocks(w, a, n, Q8_1, |r, b| r.q8_1(b), dot::q5_1_q8_1),
        GgmlType::Q4_K => |w, a, n| blocks(w, a, n, Q8K, |r, b| r.q8_k(b), dot::q4_k_q8_k),
        GgmlType::Q5_K => |w, a, n| blocks(w, a, n, Q8K, |r, b| r.q8_k(b), dot::q5_k_q8_k),
        GgmlType::Q6_K => |w, a, n| blocks(w, a, n, Q8K, |r, b| r.q8_k(b), dot::q6_k_q8_k),
        GgmlType::F16 => |w, a, n| floats(GgmlType::F16, w, a, n),
        GgmlType::BF16 => |w, a, n| floats(GgmlType::BF16, w, a, n),
        _ => |w, a, n| floats(GgmlType::F32, w, a, n),
    };
    let k = TypeKernels::new(ty, Path::Scalar, quantize, dot, None);
    match packed::Layout::of(ty) {
        Some(_) => k.with_packed(packed::scalar),
        None => k,
    }
}

fn floats(ty: GgmlType, w: &[u8], a: &[u8], n: usize) -> f32 {
    dot::vec_dot_f32(ty, w, ActRow::new(ActFormat::F32, n, a).x)
}

fn blocks<W: Block, A>(
    w: &[u8],
    a: &[u8],
    n: usize,
    fmt: ActFormat,
    act_block: impl Fn(&ActRow<'_>, usize) -> A,
    dot: fn(&W, &A) -> f32,
) -> f32 {
    let row = ActRow::new(fmt, n, a);
    let w: &[W] = view_blocks(w).expect("weight row of whole, aligned blocks");
    w.iter()
        .enumerate()
        .map(|(b, w)| dot(w, &act_block(&row, b)))
        .sum()
}

fn quantize_q8_0_scalar(x: &[f32], out: &mut [u8]) {
    let mut row = ActRowMut::new(ActFormat::Q8_0, x.len(), out);
    for (b, xb) in x.as_chunks::<QK>().0.iter().enumerate() {
        row.put_q8_0(b, &quantize::quantize_q8_0(xb));
    }
}

fn quantize_q8_1_scalar(x: &[f32], out: &mut [u8]) {
    let mut row = ActRowMut::new(ActFormat::Q8_1, x.len(), out);
    for (b, xb) in x.as_chunks::<QK>().0.iter().enumerate() {
        row.put_q8_1(b, &quantize::quantize_q8_1(xb));
    }
}

fn quantize_q8_k_scalar(x: &[f32], out: &mut [u8]) {
    let mut row = ActRowMut::new(ActFormat::Q8K, x.len(), out);
    for (b, xb) in x.as_chunks::<QK_K>().0.iter().enumerate() {
        row.put_q8_k(b, &k_quants::quantize_q8_k(xb));
    }
}

fn copy_f32(x: &[f32], out: &mut [u8]) {
    ActRowMut::new(ActFormat::F32, x.len(), out)
        .x
        .copy_from_slice(x);
}
