//! The GPU ops: each builds a [`Kernel`] once, when a segment is set up, with its
//! shader's defines, its parameters and its buffers; a step only encodes them.

use std::sync::Arc;

use super::fold::{self, OutSide, Then};
use super::kernel::{self, params, Grid, Variant, Variants, MAX_GROUPS};
use super::pipelines::{Access, Pipeline};
use super::upload::{integer_dot, GpuMatrix};
use super::Gpu;

pub use super::attention::{
    attention, attention_parts, attention_parts_floats, rope_store, AttnShape, KvType,
    PositionSplit, MAX_PARTS,
};
pub use super::fold::{Folded, GluOut, NormOut};
pub use super::kernel::{
    activation_bytes, activations, read, run, step_buffer, upload_f32, Kernel, Step,
};

use Access::{Read as R, ReadWrite as RW, Uniform as U};

/// Workgroups a matrix-vector product should have at least, to keep a large GPU busy.
const MATVEC_MIN_GROUPS: usize = 1024;

/// The matrix-vector product's rows per run of 32 lanes and runs per workgroup. With
/// 8-bit activations, one row a run (the best of 1-4 rows by 1-8 runs on the H200: 2100-
/// 2200 GiB/s of weights on a 7B layer's large matrices, where a copy makes 2960): four
/// runs a workgroup for matrices of 4096 rows and more, two for smaller ones, which then
/// have twice the workgroups (the 135M model's 576-3072 rows: 552 tokens/s against 535).
/// With f32 activations (128 bytes a block: the exact path), rows share each activation
/// load: 4 rows by 2 runs was best on the H100, fewer rows for small matrices so that they
/// still fill the GPU.
fn matvec_shape(rows: usize, q8: bool) -> (u32, u32) {
    if q8 {
        return (1, if rows >= 4096 { 4 } else { 2 });
    }
    let rows_per_run = [4, 2]
        .into_iter()
        .find(|&r| rows / (r * 2) as usize >= MATVEC_MIN_GROUPS)
        .unwrap_or(1);
    (rows_per_run, 2)
}

/// Matrices with fewer rows take tiles of 64 rows rather than 128: more workgroups for a
/// small matrix (the 135M model's prompts ran 26% slower on 128-row tiles), fewer reads of
/// workgroup memory for a large one (the 7B model's, 10% faster). On matrix units their
/// tiles are 128 tokens wide too, 64 otherwise.
const GEMM_WIDE_FROM: usize = 4096;

/// What a matrix product does with its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    /// `out[t] = W · act[t]`
    Store,
    /// `out[t] += W · act[t]`: the residual stream
    Add,
    /// `out[i] = W · act[out_first + i]` for the step's output tokens: logits
    OutputRows,
}

/// 8-bit copies of activation rows, in blocks of 32 (`q8_store.wgsl` writes them where
/// the rows are made, `act_q8.wgsl` reads them): what the matrix-vector product of a
/// quantized type reads on the fast path, as the CPU's products read Q8_0 activations.
pub struct Q8Rows {
    /// `[n][cols / 32][2]` vectors of signed bytes
    pub q: wgpu::Buffer,
    /// `[n][cols / 32]` (d, d · Σ q)
    pub d: wgpu::Buffer,
}

impl Q8Rows {
    /// Room for `n` rows of `cols` values.
    pub fn new(gpu: &Gpu, n: usize, cols: usize) -> Q8Rows {
        Q8Rows {
            q: activations(gpu, "q8", n * cols / 4),
            d: activations(gpu, "q8 scales", n * cols / 16),
        }
    }

    /// The bytes [`Q8Rows::new`] makes.
    pub fn bytes(n: usize, cols: usize) -> u64 {
        activation_bytes(n * cols / 4) + activation_bytes(n * cols / 16)
    }
}

/// What a matrix product reads.
#[derive(Clone, Copy)]
pub struct Input<'a> {
    /// `[n][cols]` f32: what batches read, and one token where `q8` is absent (the exact
    /// path) or the weight type has no integer product
    pub f32: &'a wgpu::Buffer,
    /// The rows' 8-bit copy, which the op that makes the rows fills ([`rms_norm`],
    /// [`attention`], [`silu_mul`]).
    pub q8: Option<&'a Q8Rows>,
    /// Set where the rows are an RMSNorm's output folded into the products around it:
    /// then on one-token steps `q8` holds x · weight, to be scaled from these sums.
    pub folded: Option<Folded<'a>>,
}

impl<'a> From<&'a wgpu::Buffer> for Input<'a> {
    fn from(f32: &'a wgpu::Buffer) -> Input<'a> {
        Input {
            f32,
            q8: None,
            folded: None,
        }
    }
}

/// The defines of `q8_store.wgsl` for a shader that binds the copy at `first` and
/// `first + 1`.
fn q8_bindings(first: u32) -> [(&'static str, String); 2] {
    [("AQ", first.to_string()), ("AD", (first + 1).to_string())]
}

/// A shader that reads `inputs` and makes the f32 rows of `out`, and their 8-bit copy
/// where `out` has one: its variant, and every buffer it binds after the uniforms.
pub(super) fn with_copy<'a>(
    variant: ShaderVariant,
    mut inputs: Vec<(&'a wgpu::Buffer, Access)>,
    out: Input<'a>,
) -> (ShaderVariant, Vec<(&'a wgpu::Buffer, Access)>) {
    let out_binding = 2 + inputs.len() as u32;
    inputs.push((out.f32, RW));
    if let Some(q8) = out.q8 {
        inputs.extend([(&q8.q, RW), (&q8.d, RW)]);
    }
    (copy_variant(variant, out.q8.is_some(), out_binding), inputs)
}

/// `variant` with how it stores 8-bit copies: `q8_store.wgsl` bound after its output at
/// `out_binding`, or `q8_none.wgsl`.
fn copy_variant(
    (mut files, mut defines): ShaderVariant,
    q8: bool,
    out_binding: u32,
) -> ShaderVariant {
    if q8 {
        files.push("q8_store");
        defines.extend(q8_bindings(out_binding + 1));
    } else {
        files.push("q8_none");
    }
    (files, defines)
}

/// `out` ← `m` times each token of `act` (`[n][cols]`); `out` rows are `m.rows` wide.
/// One kernel per buffer the matrix is split into.
pub fn matmul<'a>(
    gpu: &Gpu,
    m: &GpuMatrix,
    step: &wgpu::Buffer,
    act: impl Into<Input<'a>>,
    out: &wgpu::Buffer,
    dest: Dest,
) -> Vec<Kernel> {
    matmul_into(gpu, m, step, act.into(), (out, 0, m.rows), dest)
}

/// [`matmul`] into columns `offset..offset + m.rows` of an `out` whose rows are `width`
/// wide: one of several products that fill one buffer (q, k and v; gate and up).
pub fn matmul_into(
    gpu: &Gpu,
    m: &GpuMatrix,
    step: &wgpu::Buffer,
    act: Input,
    into: (&wgpu::Buffer, usize, usize),
    dest: Dest,
) -> Vec<Kernel> {
    product(gpu, m, step, act, into, dest, Then::Store)
}

/// `x += m · act` that, on one-token steps, also makes the input of the RMSNorm after it
/// folded (see [`fold`]); `m` has an integer product and one chunk.
pub fn matmul_folding<'a>(
    gpu: &Gpu,
    m: &GpuMatrix,
    step: &wgpu::Buffer,
    act: impl Into<Input<'a>>,
    x: &wgpu::Buffer,
    norm: NormOut,
) -> Vec<Kernel> {
    let into = (x, 0, m.rows);
    product(gpu, m, step, act.into(), into, Dest::Add, Then::Norm(norm))
}

/// `gate_up = m · act` (`m` the stacked `[gate; up]` matrix) whose one-token steps fold
/// SwiGLU in: they store silu(gate) · up into `glu.hidden`, and its 8-bit copy (see
/// [`fold`]); `m` has an integer product and one chunk.
pub fn matmul_glu<'a>(
    gpu: &Gpu,
    m: &GpuMatrix,
    step: &wgpu::Buffer,
    act: impl Into<Input<'a>>,
    gate_up: &wgpu::Buffer,
    glu: GluOut,
) -> Vec<Kernel> {
    let into = (gate_up, 0, m.rows);
    product(gpu, m, step, act.into(), into, Dest::Store, Then::Glu(glu))
}

fn product(
    gpu: &Gpu,
    m: &GpuMatrix,
    step: &wgpu::Buffer,
    act: Input,
    (out, offset, width): (&wgpu::Buffer, usize, usize),
    dest: Dest,
    then: Then,
) -> Vec<Kernel> {
    let add = ("ADD", u32::from(dest == Dest::Add).to_string());
    // One token takes the integer product where it has 8-bit activations to read.
    let idot = act.q8.and(integer_dot(m.decode));
    let (folded_in, side) = (act.folded.is_some(), then.side());
    // fold::foldable and fold::glu_foldable chose these products.
    assert!(
        (!folded_in && side == OutSide::Store) || idot.is_some(),
        "an op folded into a product without an integer product"
    );
    assert!(
        side == OutSide::Store || m.chunks.len() == 1,
        "an op folded into a matrix in several chunks"
    );
    // A norm's maker adds into x from the attention or the hidden row, never a norm.
    assert!(
        !(folded_in && side == OutSide::Norm),
        "a folded norm's maker reading a folded norm"
    );
    let eps = act.folded.map_or(0.0, |f| f.eps);
    // Batches take the matrix units on the fast path, where the adapter has them.
    let units = gpu.matrix_units && act.q8.is_some();
    let (gemm, (tile_rows, tile_tokens)) = gemm_variant(m.rows, m.decode, add.clone(), units);
    let matrix = gpu
        .pipelines
        .get(&gpu.device, &gemm.0, &gemm.1, &F32_PRODUCT);
    let out_rows = dest == Dest::OutputRows;
    m.chunks
        .iter()
        .map(|c| {
            let rows = c.rows as u32;
            let variant = |pipeline: &Arc<Pipeline>, rows_per_group: u32, tok: u32, q8: bool| {
                let groups = rows.div_ceil(rows_per_group);
                let x = groups.min(MAX_GROUPS);
                let params = params(
                    gpu,
                    &[
                        rows,
                        m.cols as u32,
                        (offset + c.first_row) as u32,
                        width as u32,
                        u32::from(out_rows),
                        x,
                        eps.to_bits(),
                    ],
                );
                let grid = Grid::Rows {
                    x,
                    y: groups.div_ceil(x),
                    tok,
                    out_rows,
                };
                let mut buffers: Vec<&wgpu::Buffer> = match act.q8.filter(|_| q8) {
                    Some(a) => {
                        // SwiGLU folded in stores the hidden row, not gate and up.
                        let out = match then {
                            Then::Glu(g) => g.hidden,
                            _ => out,
                        };
                        vec![step, &c.quants, &c.scales, &a.q, out, &a.d]
                    }
                    None => vec![step, &c.quants, &c.scales, act.f32, out],
                };
                if q8 {
                    buffers.extend(act.folded.map(|f| f.sums));
                    buffers.extend(then.buffers());
                }
                Variant::new(gpu, pipeline.clone(), &params, &buffers, grid)
            };
            let shape = side
                .shape()
                .unwrap_or_else(|| matvec_shape(c.rows, idot.is_some()));
            let (files, defines) = matvec_variant(
                gpu.subgroups_of_32,
                (m.decode, idot),
                shape,
                add.clone(),
                (folded_in, side),
            );
            let mut bindings = if idot.is_some() {
                Q8_PRODUCT.to_vec()
            } else {
                F32_PRODUCT.to_vec()
            };
            bindings.extend(fold::side_bindings(folded_in, side));
            let vector = gpu.pipelines.get(&gpu.device, &files, &defines, &bindings);
            Kernel {
                variants: Variants::ByTokens {
                    one: variant(&vector, shape.0 * shape.1, u32::MAX, idot.is_some()),
                    many: variant(&matrix, tile_rows, tile_tokens, false),
                },
                label: format!(
                    "matmul {}{}{} {}x{}{}{}",
                    m.decode.trim_start_matches("decode_"),
                    if idot.is_some() { " q8" } else { "" },
                    if units { " mma" } else { "" },
                    c.rows,
                    m.cols,
                    if folded_in { " norm in" } else { "" },
                    match side {
                        OutSide::Store => "",
                        OutSide::Norm => " norm out",
                        OutSide::Glu => " glu",
                    }
                ),
            }
        })
        .collect()
}

/// The bindings of a product of f32 activations: parameters, step, quants, scales,
/// activations, out.
const F32_PRODUCT: [Access; 6] = [U, U, R, R, R, RW];
/// The bindings of a product of 8-bit activations: as [`F32_PRODUCT`], the activations'
/// quants at 4 and their scales last.
const Q8_PRODUCT: [Access; 7] = [U, U, R, R, R, RW, R];

/// The tiled product's variant, on the matrix units or not, and its tiles' rows and
/// tokens.
fn gemm_variant(
    rows: usize,
    decode: &'static str,
    add: (&'static str, String),
    matrix_units: bool,
) -> (ShaderVariant, (u32, u32)) {
    let wide = rows >= GEMM_WIDE_FROM;
    let bm: u32 = if wide { 128 } else { 64 };
    let mut defines = vec![add, ("BM", bm.to_string())];
    if !matrix_units {
        let files = vec!["product", "gemm", "block", decode, "act_f32"];
        return ((files, defines), (bm, 64));
    }
    let bn: u32 = if wide { 128 } else { 64 };
    defines.push(("BN", bn.to_string()));
    let files = vec!["product", "gemm_coop", "block", decode, "act_f32"];
    ((files, defines), (bm, bn))
}

/// The matrix-vector shader's files and defines, for a weight decoder and, on the fast
/// path, its integer dot product: lanes summed by subgroup operations where the
/// adapter's subgroups are exactly 32 wide, else through workgroup memory.
fn matvec_variant(
    subgroups_of_32: bool,
    (decode, idot): (&'static str, Option<&'static str>),
    (rows_per_run, groups): (u32, u32),
    add: (&'static str, String),
    (folded_in, side): (bool, OutSide),
) -> ShaderVariant {
    // WGSL's `enable subgroups;` is not parsed yet: the device feature alone allows them.
    let (reduce, reduce_max) = if subgroups_of_32 {
        (
            "return subgroupAdd(x);".into(),
            "return subgroupMax(x);".into(),
        )
    } else {
        (shared_tree("+"), shared_tree("max"))
    };
    let mut defines = vec![
        ("REDUCE", reduce),
        ("REDUCE_MAX", reduce_max),
        ("ROWS", rows_per_run.to_string()),
        ("GROUPS", groups.to_string()),
        add,
    ];
    let mut files = vec!["product", "matvec", "block", decode];
    match idot {
        Some(idot) => files.extend(["act_q8", idot]),
        None => files.push("act_f32"),
    }
    let (side_files, side_defines) = fold::side_files(folded_in, side);
    files.extend(side_files);
    defines.extend(side_defines);
    (files, defines)
}

/// `sum32` (`op` "+") or `max32` (`op` "max") through workgroup memory: a tree over
/// each run of 32 lanes.
fn shared_tree(op: &str) -> String {
    let step = match op {
        "+" => "partial[lid] += partial[lid + s];",
        _ => "partial[lid] = max(partial[lid], partial[lid + s]);",
    };
    format!(
        "partial[lid] = x;
    workgroupBarrier();
    for (var s = 16u; s > 0u; s >>= 1u) {{
        if lid % LANES < s {{
            {step}
        }}
        workgroupBarrier();
    }}
    let total = partial[lid - lid % LANES];
    workgroupBarrier();
    return total;"
    )
}

/// `out[t] = rms_norm(x[t]) · weight`, rows of `dim`, with the 8-bit copy where `out`
/// has one.
pub fn rms_norm<'a>(
    gpu: &Gpu,
    weight: &wgpu::Buffer,
    dim: usize,
    eps: f32,
    step: &wgpu::Buffer,
    x: &wgpu::Buffer,
    out: impl Into<Input<'a>>,
) -> Kernel {
    let inputs = vec![(weight, R), (x, R)];
    let variant = (
        vec!["rms_norm", "norm_input", "combine"],
        vec![combine_define(gpu.subgroups_of_32)],
    );
    let ((files, defines), buffers) = with_copy(variant, inputs, out.into());
    single_kernel(
        gpu,
        (&files, &defines),
        &[dim as u32, eps.to_bits()],
        step,
        &buffers,
        Grid::PerToken,
    )
}

/// A kernel of one shader that every step runs: see [`shader_variant`].
pub(super) fn single_kernel(
    gpu: &Gpu,
    shader: (&[&'static str], &[(&'static str, String)]),
    params: &[u32],
    step: &wgpu::Buffer,
    buffers: &[(&wgpu::Buffer, Access)],
    grid: Grid,
) -> Kernel {
    Kernel::new(Variants::Same(shader_variant(
        gpu, shader, params, step, buffers, grid,
    )))
}

/// A shader's variant with its buffers bound: `params` at binding 0 and the step's
/// uniform at 1, then `buffers`, each with how the shader uses it.
pub(super) fn shader_variant(
    gpu: &Gpu,
    (files, defines): (&[&'static str], &[(&'static str, String)]),
    params: &[u32],
    step: &wgpu::Buffer,
    buffers: &[(&wgpu::Buffer, Access)],
    grid: Grid,
) -> Variant {
    let mut bindings = vec![U, U];
    bindings.extend(buffers.iter().map(|&(_, access)| access));
    let pipeline = gpu.pipelines.get(&gpu.device, files, defines, &bindings);
    let params = kernel::params(gpu, params);
    let mut bound = vec![step];
    bound.extend(buffers.iter().map(|&(buffer, _)| buffer));
    Variant::new(gpu, pipeline, &params, &bound, grid)
}

/// combine.wgsl's define: through subgroup operations where the adapter's subgroups are
/// exactly 32 wide, else through workgroup memory.
pub(super) fn combine_define(subgroups_of_32: bool) -> (&'static str, String) {
    let combine = if subgroups_of_32 {
        SUBGROUP_COMBINE
    } else {
        TREE_COMBINE
    };
    ("COMBINE", combine.to_string())
}

/// `combine` through subgroup operations: each subgroup's result, then the WG / 32 of
/// them.
const SUBGROUP_COMBINE: &str = "if take_max {
        reduce[lid] = subgroupMax(x);
    } else {
        reduce[lid] = subgroupAdd(x);
    }
    workgroupBarrier();
    var r = reduce[0];
    for (var i = 32u; i < WG; i += 32u) {
        if take_max {
            r = max(r, reduce[i]);
        } else {
            r += reduce[i];
        }
    }
    workgroupBarrier();
    return r;";

/// `combine` through workgroup memory: a tree over the workgroup.
const TREE_COMBINE: &str = "reduce[lid] = x;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if lid < s {
            if take_max {
                reduce[lid] = max(reduce[lid], reduce[lid + s]);
            } else {
                reduce[lid] += reduce[lid + s];
            }
        }
        workgroupBarrier();
    }
    let r = reduce[0];
    workgroupBarrier();
    return r;";

/// A shader's files and defines.
pub type ShaderVariant = (Vec<&'static str>, Vec<(&'static str, String)>);

/// Every shader variant the ops build (attention for heads of 64 and 128), with and
/// without subgroup operations: what the translation test hands to naga's SPIR-V, MSL
/// and HLSL writers, so Metal and DX12 users get shaders that translate.
pub fn shader_variants() -> Vec<ShaderVariant> {
    let mut out = Vec::new();
    for decode in super::upload::DECODERS {
        let idots = std::iter::once(None).chain(integer_dot(decode).map(Some));
        for idot in idots {
            for add in ["0", "1"] {
                for subgroups in [false, true] {
                    for rows in [16, 4096, 8192] {
                        let shape = matvec_shape(rows, idot.is_some());
                        let add = ("ADD", add.into());
                        let with = (decode, idot);
                        let sides = (false, OutSide::Store);
                        out.push(matvec_variant(subgroups, with, shape, add, sides));
                    }
                    if idot.is_some() {
                        // every side of a fold, on the shapes it takes
                        let with = (decode, idot);
                        for folded_in in [false, true] {
                            for side in [OutSide::Store, OutSide::Norm, OutSide::Glu] {
                                if folded_in && side == OutSide::Norm {
                                    continue;
                                }
                                let shape = side.shape().unwrap_or((1, 4));
                                let add = ("ADD", add.to_string());
                                let sides = (folded_in, side);
                                out.push(matvec_variant(subgroups, with, shape, add, sides));
                            }
                        }
                    }
                }
            }
        }
    }
    out.extend(gemm_variants(false));
    // The shaders that make a product's input, with and without its 8-bit copy, by the
    // binding of their output.
    let mut makers = vec![
        (
            (
                vec!["rms_norm", "norm_input", "combine"],
                vec![combine_define(false)],
            ),
            4,
        ),
        (
            (
                vec!["rms_norm", "norm_input", "combine"],
                vec![combine_define(true)],
            ),
            4,
        ),
        ((vec!["silu_mul"], vec![]), 3),
    ];
    let (stores, attention_makers) = super::attention::variants();
    out.extend(stores);
    makers.extend(attention_makers);
    for (variant, out_binding) in makers {
        for q8 in [false, true] {
            out.push(copy_variant(variant.clone(), q8, out_binding));
        }
    }
    out.push(fold::first_variant());
    for subgroups in [false, true] {
        out.extend(super::shortlist::variants(subgroups));
    }
    out.push((vec!["copy"], Vec::new()));
    out
}

/// The tiled product's variants on matrix units, which only adapters with cooperative
/// matrices build (so no DX12 one: naga's HLSL writer has no cooperative matrices yet).
pub fn matrix_unit_variants() -> Vec<ShaderVariant> {
    gemm_variants(true)
}

/// The tiled product's variants, on matrix units or not, for every decoder, with the
/// residual add and without, in both tile heights.
fn gemm_variants(matrix_units: bool) -> Vec<ShaderVariant> {
    let mut out = Vec::new();
    for decode in super::upload::DECODERS {
        for add in ["0", "1"] {
            for rows in [64, GEMM_WIDE_FROM] {
                out.push(gemm_variant(rows, decode, ("ADD", add.into()), matrix_units).0);
            }
        }
    }
    out
}

/// `hidden = silu(gate) · up`, rows of `width` (a multiple of 32), from `gate_up`
/// (`[n][gate | up]`), with the 8-bit copy where `hidden` has one.
pub fn silu_mul<'a>(
    gpu: &Gpu,
    width: usize,
    step: &wgpu::Buffer,
    gate_up: &wgpu::Buffer,
    hidden: impl Into<Input<'a>>,
) -> Kernel {
    let inputs = vec![(gate_up, R)];
    let ((files, defines), buffers) = with_copy((vec!["silu_mul"], vec![]), inputs, hidden.into());
    single_kernel(
        gpu,
        (&files, &defines),
        &[width as u32],
        step,
        &buffers,
        Grid::Items {
            per_token: (width / 32) as u32,
        },
    )
}

/// `dst = src` for `bytes` (a multiple of 16), in a shader: what the copy ceiling is
/// measured with.
pub fn copy(gpu: &Gpu, src: &wgpu::Buffer, dst: &wgpu::Buffer, bytes: u64) -> Kernel {
    let n = (bytes / 16) as u32;
    let groups = n.div_ceil(256);
    let x = groups.min(MAX_GROUPS);
    single_kernel(
        gpu,
        (&["copy"], &[]),
        &[n, x],
        &step_buffer(gpu),
        &[(src, R), (dst, RW)],
        Grid::Fixed {
            x,
            y: groups.div_ceil(x),
        },
    )
}
