//! int8 weights: `u8 x s8` products summed in i32, dequantized once per
//! output vector, then the same f32 cells as every other dtype.
//!
//! Weights are symmetric int8 with one f32 scale per output row, stored in
//! the `panel16x4` layout ([`lstmrt_format::panel::pack_i8`]): four
//! consecutive input indices per 32-bit lane, 16 units of a gate per 64
//! bytes. Activations (the inputs `x` of the GEMM, `h_{t-1}` of each step,
//! `o tanh(c)` before a projection, GRU's `r h`) are quantized per row as
//! they are needed: asymmetric u8 over the row's `[min(x, 0), max(x, 0)]`
//! with a zero point `zp`, so
//!
//! ```text
//! Σ_k x[k] w[k]  ≈  a_scale w_scale (Σ_k q[k] w8[k]  -  zp Σ_k w8[k])
//! ```
//!
//! where `Σ_k w8[k]` (the row's `colsum`) is computed when the model opens.
//! The integer sum is exact on every tier ([`Dot8`]): VNNI's `vpdpbusd`, or
//! `vpmaddubsw` on the two halves `q = 2 (q >> 1) + (q & 1)`, which keeps
//! each i16 pair sum below 2^15 (no saturation), or plain integer code.
//!
//! The modules, named after their float twins: [`quantize`] (activation
//! rows to bytes, the buffers' sizes), [`dot`] (the `Dot8` contract of
//! exact `u8 x s8` sums, a product's broadcast and dot, and `Lanes8`, a
//! tier's i32 lanes; the tier files implement both for their
//! instructions, the plain forms are here), [`step`] (the passes of one timestep over rows
//! x panels, like `crate::step` and `crate::blocking`), [`gemm`] (the
//! input projection, like `crate::gemm`). [`form`] chooses the form
//! ([`crate::Int8Dot`]). The GEMM and the step take the product and the
//! tiles (`crate::amx::Tiles`: none, the AMX instructions, or their
//! emulation) as two type parameters: an AMX form is VNNI's product with
//! tiles.

mod dot;
mod form;
mod gemm;
mod quantize;
mod step;
#[cfg(test)]
pub(crate) mod tests;

#[cfg(target_arch = "x86_64")]
pub(crate) use dot::Lanes8;
pub(crate) use dot::{Dot8, PortableDot, ScalarDot};
pub use form::Int8Dot;
pub(crate) use gemm::{Gemm8, gemm};
pub(crate) use quantize::Mat8;
pub use quantize::{TILE_MIN_ROWS, buffer_bytes};
pub(crate) use step::{Layer8, run_steps};
