//! The constants of the vector kernels' e^x (Cephes' single-precision `expf`, about 1 ulp),
//! shared by the AVX2, AVX-512 and NEON versions so that all three compute one function.

/// Inputs are clamped to `MIN..=MAX`; below `MIN` the result is exactly 0.
pub const MIN: f32 = -87.336_54;
pub const MAX: f32 = 88.376_26;
/// ln 2 in two parts, for the range reduction `r = x - n * LN2_HI - n * LN2_LO`.
pub const LN2_HI: f32 = 0.693_359_4;
pub const LN2_LO: f32 = -2.121_944_4e-4;
/// The polynomial in `r`, highest degree first (Horner's scheme).
pub const POLY: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    0.166_666_65,
    0.5,
];
