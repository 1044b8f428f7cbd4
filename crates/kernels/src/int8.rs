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
// Register blocks are indexed [row][panel][gate] across several arrays at once;
// index loops over the const bounds read like the math.
#![allow(clippy::needless_range_loop)]

use std::ops::Range;

use lstmrt_format::CellKind;
use lstmrt_format::panel::K_GROUP;

use crate::blocking::{Blocking, PanelCover, Tier, block_height};
use crate::operands::{Job, LayerKernel, Source, StepIo};
use crate::simd::{LANES, Simd};
use crate::step::StepCtx;

/// Bytes of one gate's weights for one group of 4 input indices: 16 lanes x 4.
const GROUP_BYTES: usize = LANES * K_GROUP;

/// An int8 matrix in `panel16x4` with its per-row scales and sums, both
/// `[panels][gates][16]`.
#[derive(Clone, Copy)]
pub(crate) struct Mat8<'a> {
    pub data: &'a [i8],
    pub panels: usize,
    /// Groups of 4 input indices (`ceil(K / 4)`).
    pub quads: usize,
    pub gates: usize,
    pub scale: &'a [f32],
    pub colsum: &'a [i32],
    /// Multiply with two-byte (split) activations ([`QRows`]).
    pub split: bool,
}

impl Mat8<'_> {
    /// First weight of panel `p` (group 0, gate 0).
    #[inline(always)]
    fn panel(&self, p: usize) -> *const i8 {
        debug_assert!(p < self.panels);
        self.data[p * self.quads * self.gates * GROUP_BYTES..].as_ptr()
    }
}

/// Activations quantized per row: `rows` rows of `stride` bytes (zero past
/// the row's `k` values), with each row's scale and zero point. When `split`,
/// each row is two byte rows (physical rows `2r` and `2r + 1`): the u8 `hi`
/// of the row, and `lo`, the rounding error of `hi` quantized again at a
/// 254th of its step, so `x ≈ s (hi - zp) + (s / 254) (lo - 127)`, as fine
/// as 16-bit activations for two `u8 x s8` products per weight byte.
///
/// For the AMX form (`tiles`) rows are whole tile rows (64 bytes, zero past
/// `k`), 16 rows of room follow the last (a tile reads 16 rows at a time),
/// and a scratch area follows for the tile sums of one panel ([`TileSums`]).
#[derive(Clone, Copy)]
pub(crate) struct QRows {
    data: *mut u8,
    stride: usize,
    scale: *mut f32,
    zp: *mut i32,
    split: bool,
    /// After the rows: `TAIL_BYTES` for the tiles' weight tail, then the sums.
    scratch: *mut u8,
    /// The i32 sums of the panel being finished, when tiles computed them.
    sums: Option<TileSums>,
}

/// The tile sums of one panel for physical rows `row0..row0 + rows` and
/// gates `gate0..`: `[gate - gate0][row - row0][16]` i32.
#[derive(Clone, Copy)]
pub(crate) struct TileSums {
    ptr: *const i32,
    panel: usize,
    gate0: usize,
    row0: usize,
    rows: usize,
}

impl TileSums {
    /// The 16 sums of physical row `i`, panel `p`, gate `g`.
    #[inline(always)]
    fn at(&self, i: usize, p: usize, g: usize) -> *const i32 {
        debug_assert!(p == self.panel && g >= self.gate0 && i >= self.row0 && i < self.row0 + self.rows);
        self.ptr.wrapping_add(((g - self.gate0) * self.rows + i - self.row0) * LANES)
    }
}

/// The most gates a matrix has (LSTM), so the most the tile scratch holds.
const TILE_GATES: usize = 4;

/// Bytes of the tiles' copy of the last, partial 16 groups of every gate.
const TAIL_BYTES: usize = TILE_GATES * crate::amx::TILE_ROWS * crate::amx::TILE_BYTES;

/// Physical rows at least for which the AMX form sums with tiles: below,
/// `vpdpbusd` does as many products per instruction and loads less (as
/// oneDNN and ggml keep few rows off the tiles). Not measured yet: no AMX
/// machine has run it; set it from `lstm-run --bench --batch 4|8|16` on the
/// avx512 and amx tiers (docs/performance.md, "The amx tier").
pub const TILE_MIN_ROWS: usize = 8;

/// Bytes of a [`QRows`] buffer of `rows` rows of `k` values (room for split
/// rows, and for the tiles' rows and scratch when `tiles`).
fn qrows_bytes(rows: usize, k: usize, tiles: bool) -> usize {
    let physical = 2 * rows;
    if !tiles {
        return params_bytes(physical) + physical * row_bytes(k);
    }
    let room = physical + crate::amx::TILE_ROWS;
    let sums = TILE_GATES * room.next_multiple_of(crate::amx::TILE_ROWS) * crate::amx::TILE_BYTES;
    params_bytes(physical) + room * tile_row_bytes(k) + TAIL_BYTES + sums
}

/// Bytes per quantized row for tiles: whole 64-byte tile rows.
fn tile_row_bytes(k: usize) -> usize {
    row_bytes(k).next_multiple_of(crate::amx::TILE_BYTES)
}

/// Bytes before the first row of a [`QRows`] buffer of `physical` byte rows:
/// their scales and zero points, rounded to 64.
fn params_bytes(physical: usize) -> usize {
    (8 * physical).next_multiple_of(64)
}

/// Bytes per quantized row: whole groups of 4.
fn row_bytes(k: usize) -> usize {
    k.div_ceil(K_GROUP).max(1) * K_GROUP
}

impl QRows {
    /// Lays out `rows` rows of `k` values in `buf` (at least [`qrows_bytes`]
    /// bytes, 64-byte aligned), in tile rows when `tiles`.
    fn carve(buf: *mut u8, rows: usize, k: usize, split: bool, tiles: bool) -> QRows {
        let physical = if split { 2 * rows } else { rows };
        let stride = if tiles { tile_row_bytes(k) } else { row_bytes(k) };
        let data = buf.wrapping_add(params_bytes(physical));
        let room = if tiles { physical + crate::amx::TILE_ROWS } else { physical };
        QRows {
            scale: buf.cast(),
            zp: buf.wrapping_add(4 * physical).cast(),
            data,
            stride,
            split,
            scratch: data.wrapping_add(room * stride),
            sums: None,
        }
    }

    /// The physical row of row `r`'s `hi` bytes (its `lo` bytes follow when split).
    #[inline(always)]
    fn physical(&self, r: usize) -> usize {
        if self.split { 2 * r } else { r }
    }

    /// Physical row `i`'s bytes.
    #[inline(always)]
    fn bytes(&self, i: usize) -> *const u8 {
        self.data.wrapping_add(i * self.stride).cast_const()
    }

    /// Physical row `i`'s scale and zero point.
    #[inline(always)]
    unsafe fn params(&self, i: usize) -> (f32, i32) {
        // SAFETY: the caller guarantees row `i` exists.
        unsafe { (*self.scale.add(i), *self.zp.add(i)) }
    }
}

/// Rows of the GEMM quantized at a time: as many as fit in 256 KiB (a
/// multiple of the 6-row block), at least 6 and at most 48; for tiles, 64
/// (4 row tiles, or 8 of split rows), as many as keep them in L1 for k=512.
fn gemm_rows(k: usize, tiles: bool) -> usize {
    if tiles { 64 } else { ((256 << 10) / row_bytes(k) / 6 * 6).clamp(6, 48) }
}

/// Bytes of the per-thread buffer the int8 kernels need for a batch of
/// `batch` rows, GEMM inputs of up to `k_in` values and recurrent inputs of
/// up to `k_rec` values (with room for the tiles where this CPU has AMX,
/// or where `LSTMRT_INT8_DOT=amx-emulated` asks for their emulation).
pub fn buffer_bytes(batch: usize, k_in: usize, k_rec: usize) -> usize {
    let tiles = crate::dispatch::tile_room();
    let plain = qrows_bytes(gemm_rows(k_in, false), k_in, false).max(qrows_bytes(batch, k_rec, false));
    if !tiles {
        return plain;
    }
    plain.max(qrows_bytes(gemm_rows(k_in, true), k_in, true)).max(qrows_bytes(batch, k_rec, true))
}

/// `x + 0.5` rounded down, ties to even: exact for `|x| < 2^22`, and the
/// same bits on every tier (no rounding instruction needed).
#[inline(always)]
fn round_even(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23
    (x + MAGIC) - MAGIC
}

/// Quantizes `k` values at `x` to u8 at `out` (zero-padded to the row's
/// bytes); returns the scale and zero point. A row holding NaN or infinity
/// gets a NaN scale, so every output it feeds is NaN rather than a number.
///
/// Plain code over 16-lane arrays: inlined into each tier's entry point it
/// compiles to that tier's vectors, and it gives the same bits everywhere.
#[inline(always)]
unsafe fn quantize_row(x: *const f32, k: usize, out: *mut u8, out_len: usize) -> (f32, i32) {
    // SAFETY: the caller guarantees `k` values at `x` and `out_len >= k` bytes at `out`.
    let (xs, out) = unsafe { (std::slice::from_raw_parts(x, k), std::slice::from_raw_parts_mut(out, out_len)) };
    let (mut lo, mut hi, mut bad) = ([0.0f32; LANES], [0.0f32; LANES], [false; LANES]);
    let mut chunks = xs.chunks_exact(LANES);
    for c in &mut chunks {
        for i in 0..LANES {
            lo[i] = lo[i].min(c[i]);
            hi[i] = hi[i].max(c[i]);
            bad[i] |= !c[i].is_finite();
        }
    }
    for (i, &v) in chunks.remainder().iter().enumerate() {
        lo[i] = lo[i].min(v);
        hi[i] = hi[i].max(v);
        bad[i] |= !v.is_finite();
    }
    let lo = lo.into_iter().fold(0.0f32, f32::min);
    let hi = hi.into_iter().fold(0.0f32, f32::max);
    let range = hi - lo;
    out.fill(0);
    if bad.contains(&true) || !range.is_finite() {
        return (f32::NAN, 0);
    }
    if range == 0.0 {
        return (0.0, 0);
    }
    let inv = 255.0 / range;
    let zp = round_even(-lo * inv).clamp(0.0, 255.0);
    for (q, &v) in out.iter_mut().zip(xs) {
        // SAFETY: finite (checked above) and clamped to [0, 255], so the
        // unchecked conversion is exact; it vectorizes, `as` does not.
        *q = unsafe { (round_even(v * inv) + zp).clamp(0.0, 255.0).to_int_unchecked::<i32>() } as u8;
    }
    (range / 255.0, zp as i32)
}

/// The `lo` bytes of a split row: the error `x - s (hi - zp)` of the `hi`
/// bytes (within half a step `s`) quantized at step `s / 254` around 127.
#[inline(always)]
unsafe fn quantize_residual(
    x: *const f32,
    k: usize,
    hi: *const u8,
    (s, zp): (f32, i32),
    out: *mut u8,
    out_len: usize,
) -> (f32, i32) {
    // SAFETY: the caller guarantees `k` values at `x` and at `hi`, `out_len >= k` bytes at `out`.
    let (xs, hi, out) = unsafe {
        (
            std::slice::from_raw_parts(x, k),
            std::slice::from_raw_parts(hi, k),
            std::slice::from_raw_parts_mut(out, out_len),
        )
    };
    out.fill(0);
    if !(s.is_finite() && s > 0.0) {
        // NaN stays NaN; an all-zero row has nothing left to add.
        return (if s.is_nan() { f32::NAN } else { 0.0 }, 0);
    }
    let (zp, inv) = (zp as f32, 254.0 / s);
    for ((q, &v), &h) in out.iter_mut().zip(xs).zip(hi) {
        let error = v - s * (f32::from(h) - zp);
        // SAFETY: finite (its row passed `quantize_row`) and clamped to [0, 255].
        *q = unsafe { (round_even(error * inv) + 127.0).clamp(0.0, 255.0).to_int_unchecked::<i32>() } as u8;
    }
    (s / 254.0, 127)
}

/// Quantizes rows `rows` of `src` (`stride` floats apart, `k` values each)
/// into `buf`, laid out for `total` rows (split into `hi` and `lo` when `split`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn quantize_rows(
    src: *const f32,
    stride: usize,
    rows: Range<usize>,
    k: usize,
    buf: *mut u8,
    total: usize,
    split: bool,
    tiles: bool,
) -> QRows {
    let q = QRows::carve(buf, total, k, split, tiles);
    for r in rows {
        let i = q.physical(r);
        // SAFETY: row r of `src` holds `k` values; `buf` holds `total` rows.
        unsafe {
            let x = src.add(r * stride);
            let hi = quantize_row(x, k, q.data.add(i * q.stride), q.stride);
            *q.scale.add(i) = hi.0;
            *q.zp.add(i) = hi.1;
            if split {
                let lo = quantize_residual(x, k, q.bytes(i), hi, q.data.add((i + 1) * q.stride), q.stride);
                *q.scale.add(i + 1) = lo.0;
                *q.zp.add(i + 1) = lo.1;
            }
        }
    }
    q
}

/// The integer product of one tier: `acc[l] += Σ_j a[j] w[4l + j]` for the 16
/// lanes of a 64-byte weight group and 4 activation bytes, exactly.
pub(crate) trait Dot8: Copy + 'static {
    /// The f32 tier the rest of the step runs on.
    type S: Tier;
    /// 16 i32 accumulators.
    type I: Copy;
    /// 4 activation bytes, prepared for [`Dot8::dot`].
    type A: Copy;
    unsafe fn izero() -> Self::I;
    /// Prepares the 4 bytes at `a`.
    unsafe fn bcast(a: *const u8) -> Self::A;
    /// Adds the products with the 64 weight bytes at `w`.
    unsafe fn dot(acc: Self::I, a: Self::A, w: *const i8) -> Self::I;
    /// `acc - zp * colsum` (16 i32 at `colsum`), as f32.
    unsafe fn finish(acc: Self::I, colsum: *const i32, zp: i32) -> <Self::S as Simd>::V;
    /// Loads 16 sums computed elsewhere (by tiles).
    unsafe fn load(p: *const i32) -> Self::I;
    /// Whether the form sums many rows with AMX tiles ([`crate::amx`]).
    const TILES: bool = false;
    /// Configures this thread's tiles until the guard drops (`TILES` forms).
    unsafe fn configure_tiles() -> crate::amx::TileGuard {
        unreachable!("a form without tiles")
    }
    /// Runs a panel's tile sums (`TILES` forms), tiles configured.
    unsafe fn panel_sums(_: &crate::amx::PanelSums) {
        unreachable!("a form without tiles")
    }
    /// Stores the 16 accumulators (for tests).
    #[cfg(test)]
    unsafe fn store(acc: Self::I, out: *mut i32);
}

/// The integer oracle: plain Rust, one product at a time.
#[derive(Clone, Copy)]
pub(crate) struct ScalarDot;

/// The same integer code compiled for the portable tier's baseline.
#[derive(Clone, Copy)]
pub(crate) struct PortableDot;

macro_rules! plain_dot {
    ($ty:ty, $tier:ty) => {
        impl Dot8 for $ty {
            type S = $tier;
            type I = [i32; LANES];
            type A = [u8; 4];
            #[inline(always)]
            unsafe fn izero() -> [i32; LANES] {
                [0; LANES]
            }
            #[inline(always)]
            unsafe fn bcast(a: *const u8) -> [u8; 4] {
                // SAFETY: the caller guarantees 4 readable bytes.
                unsafe { a.cast::<[u8; 4]>().read_unaligned() }
            }
            #[inline(always)]
            unsafe fn dot(mut acc: [i32; LANES], a: [u8; 4], w: *const i8) -> [i32; LANES] {
                // SAFETY: the caller guarantees 64 readable bytes.
                let w = unsafe { w.cast::<[i8; GROUP_BYTES]>().read_unaligned() };
                for l in 0..LANES {
                    for j in 0..K_GROUP {
                        acc[l] += i32::from(a[j]) * i32::from(w[K_GROUP * l + j]);
                    }
                }
                acc
            }
            #[inline(always)]
            unsafe fn finish(acc: [i32; LANES], colsum: *const i32, zp: i32) -> <$tier as Simd>::V {
                // SAFETY: the caller guarantees 16 readable i32.
                let cs = unsafe { colsum.cast::<[i32; LANES]>().read_unaligned() };
                let f: [f32; LANES] = std::array::from_fn(|l| (acc[l] - zp * cs[l]) as f32);
                // SAFETY: `f` holds 16 floats.
                unsafe { <$tier as Simd>::load(f.as_ptr()) }
            }
            #[inline(always)]
            unsafe fn load(p: *const i32) -> [i32; LANES] {
                // SAFETY: the caller guarantees 16 readable i32.
                unsafe { p.cast::<[i32; LANES]>().read_unaligned() }
            }
            #[cfg(test)]
            unsafe fn store(acc: [i32; LANES], out: *mut i32) {
                // SAFETY: the caller guarantees room for 16 i32.
                unsafe { out.cast::<[i32; LANES]>().write_unaligned(acc) }
            }
        }
    };
}
plain_dot!(ScalarDot, crate::scalar::Scalar);
plain_dot!(PortableDot, crate::portable::Wide);

/// What one step's int8 passes read beyond the float context.
#[derive(Clone, Copy)]
struct Ctx8<'c, 'a, 'k> {
    s: &'c StepCtx<'a, 'k, i8>,
    m: &'c Layer8<'k>,
    /// The quantized input of this pass (`h_{t-1}`, or `io.r`).
    x: QRows,
    /// `pre` of the GEMM (int8 layers always project first).
    pre: *mut f32,
    row_stride: usize,
    /// Sum this thread's rows with tiles (configured on this thread).
    tiles: bool,
}

/// The int8 matrices of one layer and direction.
#[derive(Clone, Copy)]
pub(crate) struct Layer8<'a> {
    pub w_hh: Mat8<'a>,
    pub w_hr: Option<Mat8<'a>>,
}

/// `Σ_k x[r][k] W[p0+q][k][gate0+g]` in i32 for `R` rows x `Q` panels x `G`
/// gates, reading physical rows `rows[r]` of `x`.
#[inline(always)]
unsafe fn dots<D: Dot8, const R: usize, const Q: usize, const G: usize>(
    m: &Mat8<'_>,
    gate0: usize,
    p0: usize,
    x: &QRows,
    rows: [usize; R],
) -> [[[D::I; G]; Q]; R] {
    // SAFETY: the caller guarantees the rows of `x` and panels p0..p0+Q of `m`.
    unsafe {
        if let (true, Some(t)) = (D::TILES, x.sums) {
            return std::array::from_fn(|r| {
                std::array::from_fn(|q| std::array::from_fn(|g| D::load(t.at(rows[r], p0 + q, gate0 + g))))
            });
        }
        let mut acc = [[[D::izero(); G]; Q]; R];
        let step = m.gates * GROUP_BYTES;
        let w: [*const i8; Q] = std::array::from_fn(|q| m.panel(p0 + q).add(gate0 * GROUP_BYTES));
        let xs: [*const u8; R] = std::array::from_fn(|r| x.bytes(rows[r]));
        for quad in 0..m.quads {
            let a: [D::A; R] = std::array::from_fn(|r| D::bcast(xs[r].add(K_GROUP * quad)));
            for q in 0..Q {
                for g in 0..G {
                    let wp = w[q].add(quad * step + g * GROUP_BYTES);
                    for r in 0..R {
                        acc[r][q][g] = D::dot(acc[r][q][g], a[r], wp);
                    }
                }
            }
        }
        acc
    }
}

/// The i32 sums of a register block: `[row][panel][gate]`.
type Sums<D, const R: usize, const Q: usize, const G: usize> = [[[<D as Dot8>::I; G]; Q]; R];

/// [`dots`] of the `hi` and the `lo` bytes of split rows `r0..r0+R`, each
/// weight group loaded once for both.
#[inline(always)]
unsafe fn dots_split<D: Dot8, const R: usize, const Q: usize, const G: usize>(
    m: &Mat8<'_>,
    gate0: usize,
    p0: usize,
    x: &QRows,
    r0: usize,
) -> (Sums<D, R, Q, G>, Sums<D, R, Q, G>) {
    // SAFETY: the caller guarantees rows r0..r0+R of `x` (split) and panels p0..p0+Q of `m`.
    unsafe {
        if D::TILES && x.sums.is_some() {
            let hi = dots::<D, R, Q, G>(m, gate0, p0, x, std::array::from_fn(|r| 2 * (r0 + r)));
            let lo = dots::<D, R, Q, G>(m, gate0, p0, x, std::array::from_fn(|r| 2 * (r0 + r) + 1));
            return (hi, lo);
        }
        let (mut hi, mut lo) = ([[[D::izero(); G]; Q]; R], [[[D::izero(); G]; Q]; R]);
        let step = m.gates * GROUP_BYTES;
        let w: [*const i8; Q] = std::array::from_fn(|q| m.panel(p0 + q).add(gate0 * GROUP_BYTES));
        let xh: [*const u8; R] = std::array::from_fn(|r| x.bytes(2 * (r0 + r)));
        let xl: [*const u8; R] = std::array::from_fn(|r| x.bytes(2 * (r0 + r) + 1));
        for quad in 0..m.quads {
            let ah: [D::A; R] = std::array::from_fn(|r| D::bcast(xh[r].add(K_GROUP * quad)));
            let al: [D::A; R] = std::array::from_fn(|r| D::bcast(xl[r].add(K_GROUP * quad)));
            for q in 0..Q {
                for g in 0..G {
                    let wp = w[q].add(quad * step + g * GROUP_BYTES);
                    for r in 0..R {
                        hi[r][q][g] = D::dot(hi[r][q][g], ah[r], wp);
                        lo[r][q][g] = D::dot(lo[r][q][g], al[r], wp);
                    }
                }
            }
        }
        (hi, lo)
    }
}

/// `out += dequantized Σ_k x[r][k] W[...]` for rows `r0..r0+R` (see [`dots`]).
/// Split rows take two products per weight, read once: `R` is then at most 3
/// (and `Q * G` at most 8), so the accumulators still fit the registers.
#[inline(always)]
unsafe fn add_product<D: Dot8, const R: usize, const Q: usize, const G: usize>(
    out: &mut [[[<D::S as Simd>::V; G]; Q]; R],
    m: &Mat8<'_>,
    gate0: usize,
    p0: usize,
    x: &QRows,
    r0: usize,
) {
    type S<D> = <D as Dot8>::S;
    // SAFETY: forwarded; the scales and sums hold `panels * gates * 16` values.
    unsafe {
        let at = |q: usize, g: usize| ((p0 + q) * m.gates + gate0 + g) * LANES;
        if !x.split {
            let acc = dots::<D, R, Q, G>(m, gate0, p0, x, std::array::from_fn(|r| r0 + r));
            for r in 0..R {
                let (sa, zp) = x.params(r0 + r);
                let sa = S::<D>::splat(sa);
                for q in 0..Q {
                    for g in 0..G {
                        let f = D::finish(acc[r][q][g], m.colsum.as_ptr().add(at(q, g)), zp);
                        let s = S::<D>::mul(sa, S::<D>::load(m.scale.as_ptr().add(at(q, g))));
                        out[r][q][g] = S::<D>::fma(f, s, out[r][q][g]);
                    }
                }
            }
            return;
        }
        let (hi, lo) = dots_split::<D, R, Q, G>(m, gate0, p0, x, r0);
        for r in 0..R {
            let (sh, zh) = x.params(2 * (r0 + r));
            let (sl, zl) = x.params(2 * (r0 + r) + 1);
            for q in 0..Q {
                for g in 0..G {
                    let cs = m.colsum.as_ptr().add(at(q, g));
                    let fh = D::finish(hi[r][q][g], cs, zh);
                    let fl = D::finish(lo[r][q][g], cs, zl);
                    let v = S::<D>::fma(fh, S::<D>::splat(sh), S::<D>::mul(fl, S::<D>::splat(sl)));
                    out[r][q][g] = S::<D>::fma(v, S::<D>::load(m.scale.as_ptr().add(at(q, g))), out[r][q][g]);
                }
            }
        }
    }
}

/// One int8 pass over rows x panels within a step.
trait Pass8 {
    /// Single-row blocks take up to 4 panels of a 1-gate pass (else pairs too).
    const ONE_GATE: bool = false;
    unsafe fn block<D: Dot8, const R: usize, const Q: usize>(c: &Ctx8<'_, '_, '_>, r0: usize, p0: usize);
    /// The matrix the pass multiplies, its first gate and how many: what
    /// tiles sum for it.
    fn product<'c, 'k>(c: &Ctx8<'c, '_, 'k>) -> (&'c Mat8<'k>, usize, usize);
}

/// LSTM, RNN, GRU (PyTorch form).
struct Gates8;
/// GRU (ONNX form), first pass.
struct GruReset8;
/// GRU (ONNX form), second pass, from `r h`.
struct GruCandidate8;
/// LSTM projection, from `o tanh(c')`.
struct Projection8;

impl Pass8 for Gates8 {
    fn product<'c, 'k>(c: &Ctx8<'c, '_, 'k>) -> (&'c Mat8<'k>, usize, usize) {
        (&c.m.w_hh, 0, c.m.w_hh.gates)
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline(never))]
    unsafe fn block<D: Dot8, const R: usize, const Q: usize>(c: &Ctx8<'_, '_, '_>, r0: usize, p0: usize) {
        let (s, hh) = (c.s, &c.m.w_hh);
        // SAFETY: forwarded; rows and panels exist.
        unsafe {
            match s.k.cell {
                CellKind::Lstm => {
                    let mut acc = s.pre_part::<D::S, R, Q, 4>(c.pre, c.row_stride, r0, p0);
                    add_product::<D, R, Q, 4>(&mut acc, hh, 0, p0, &c.x, r0);
                    s.lstm_finish::<D::S, R, Q>(&acc, r0, p0);
                }
                CellKind::Gru => {
                    let x = s.pre_part::<D::S, R, Q, 3>(c.pre, c.row_stride, r0, p0);
                    let mut acc = s.bias_h_part::<D::S, R, Q, 3>(p0);
                    add_product::<D, R, Q, 3>(&mut acc, hh, 0, p0, &c.x, r0);
                    s.gru_finish::<D::S, R, Q>(&x, &acc, r0, p0);
                }
                CellKind::RnnTanh | CellKind::RnnRelu => {
                    let mut acc = s.pre_part::<D::S, R, Q, 1>(c.pre, c.row_stride, r0, p0);
                    add_product::<D, R, Q, 1>(&mut acc, hh, 0, p0, &c.x, r0);
                    s.rnn_finish::<D::S, R, Q>(&acc, r0, p0);
                }
            }
        }
    }
}

impl Pass8 for GruReset8 {
    fn product<'c, 'k>(c: &Ctx8<'c, '_, 'k>) -> (&'c Mat8<'k>, usize, usize) {
        (&c.m.w_hh, 0, 2)
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline(never))]
    unsafe fn block<D: Dot8, const R: usize, const Q: usize>(c: &Ctx8<'_, '_, '_>, r0: usize, p0: usize) {
        // SAFETY: forwarded.
        unsafe {
            let x = c.s.pre_part::<D::S, R, Q, 3>(c.pre, c.row_stride, r0, p0);
            let mut acc = crate::cells::first_two::<D::S, R, Q>(&x);
            add_product::<D, R, Q, 2>(&mut acc, &c.m.w_hh, 0, p0, &c.x, r0);
            c.s.gru_reset_finish::<D::S, R, Q>(&acc, r0, p0);
        }
    }
}

impl Pass8 for GruCandidate8 {
    const ONE_GATE: bool = true;
    fn product<'c, 'k>(c: &Ctx8<'c, '_, 'k>) -> (&'c Mat8<'k>, usize, usize) {
        (&c.m.w_hh, 2, 1)
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline(never))]
    unsafe fn block<D: Dot8, const R: usize, const Q: usize>(c: &Ctx8<'_, '_, '_>, r0: usize, p0: usize) {
        // SAFETY: forwarded; `c.x` holds `r h` of these rows (synced).
        unsafe {
            let x = c.s.pre_part::<D::S, R, Q, 3>(c.pre, c.row_stride, r0, p0);
            let mut acc = c.s.b_hn_part::<D::S, R, Q>(p0);
            add_product::<D, R, Q, 1>(&mut acc, &c.m.w_hh, 2, p0, &c.x, r0);
            c.s.gru_candidate_finish::<D::S, R, Q>(&x, &acc, r0, p0);
        }
    }
}

impl Pass8 for Projection8 {
    const ONE_GATE: bool = true;
    fn product<'c, 'k>(c: &Ctx8<'c, '_, 'k>) -> (&'c Mat8<'k>, usize, usize) {
        (c.m.w_hr.as_ref().expect("projection pass only with w_hr"), 0, 1)
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline(never))]
    unsafe fn block<D: Dot8, const R: usize, const Q: usize>(c: &Ctx8<'_, '_, '_>, r0: usize, p0: usize) {
        // SAFETY: forwarded; `w_hr` is present in this pass.
        unsafe {
            let w = c.m.w_hr.as_ref().expect("projection pass only with w_hr");
            let mut acc = [[[<D::S as Simd>::zero(); 1]; Q]; R];
            add_product::<D, R, Q, 1>(&mut acc, w, 0, p0, &c.x, r0);
            c.s.projection_finish::<D::S, R, Q>(&acc, r0, p0);
        }
    }
}

/// Walks rows x panels in the tier's register blocks: with many registers,
/// 6-row blocks of one panel for batches (each weight group loaded once for
/// 6 rows) and 4- or 2-panel blocks for a single row; else one by one.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline(never))]
unsafe fn for_blocks<D: Dot8, P: Pass8>(c: &Ctx8<'_, '_, '_>, rows: Range<usize>, panels: Range<usize>) {
    let tall = <<D::S as Tier>::Blocking as Blocking>::TALL;
    let split = c.x.split;
    // SAFETY: every block lies inside rows x panels; tiles are configured
    // on this thread when `c.tiles`.
    unsafe {
        if D::TILES && c.tiles {
            let (m, gate0, gates) = P::product(c);
            for i in 0..panels.len() {
                let p = panels.start + c.s.in_step_order(panels.len(), i);
                let x = tile_sums::<D>(m, p, gate0, gates, &c.x, rows.clone());
                panel_rows::<D, P>(&Ctx8 { x, ..*c }, rows.clone(), p);
            }
        } else if tall && rows.len() >= 6 {
            for i in 0..panels.len() {
                panel_rows::<D, P>(c, rows.clone(), panels.start + c.s.in_step_order(panels.len(), i));
            }
        } else if tall {
            let gates = if P::ONE_GATE { 1 } else { c.s.k.cell.gates() };
            // Split rows double the accumulators: blocks of at most 2 panels of several gates.
            let cover =
                if split && gates > 1 { PanelCover::up_to_pairs(panels) } else { PanelCover::new(panels, gates > 1) };
            for r in rows {
                for j in 0..cover.blocks() {
                    match cover.block(c.s.in_step_order(cover.blocks(), j)) {
                        (p, 4) => P::block::<D, 1, 4>(c, r, p),
                        (p, 2) => P::block::<D, 1, 2>(c, r, p),
                        (p, _) => P::block::<D, 1, 1>(c, r, p),
                    }
                }
            }
        } else {
            for r in rows {
                for i in 0..panels.len() {
                    P::block::<D, 1, 1>(c, r, panels.start + c.s.in_step_order(panels.len(), i));
                }
            }
        }
    }
}

/// Rows `rows` of panel `p` in blocks of 6 rows (3 of split rows), then fewer.
#[inline(always)]
unsafe fn panel_rows<D: Dot8, P: Pass8>(c: &Ctx8<'_, '_, '_>, rows: Range<usize>, p: usize) {
    let mut r = rows.start;
    while r < rows.end {
        let n = if c.x.split { split_height(rows.end - r) } else { block_height(rows.end - r) };
        // SAFETY: the block lies inside rows x {p} (the caller's).
        unsafe {
            match n {
                6 => P::block::<D, 6, 1>(c, r, p),
                3 => P::block::<D, 3, 1>(c, r, p),
                2 => P::block::<D, 2, 1>(c, r, p),
                _ => P::block::<D, 1, 1>(c, r, p),
            }
        }
        r += n;
    }
}

/// Physical rows (byte rows) of `rows` rows of `x`.
#[inline(always)]
fn physical_rows(x: &QRows, rows: &Range<usize>) -> Range<usize> {
    if x.split { 2 * rows.start..2 * rows.end } else { rows.clone() }
}

/// Whether the AMX form sums `rows` rows with tiles rather than `vpdpbusd`.
#[inline(always)]
fn use_tiles<D: Dot8>(rows: usize, split: bool) -> bool {
    D::TILES && rows * (1 + usize::from(split)) >= TILE_MIN_ROWS
}

/// Sums rows `rows` of `x` times gates `gate0..gate0 + gates` of panel `p`
/// of `m` with tiles, into `x`'s scratch; returns `x` reading those sums.
///
/// # Safety
/// Tiles are configured on this thread; `x` was carved for tiles; the rows
/// and the panel exist.
#[inline(always)]
unsafe fn tile_sums<D: Dot8>(
    m: &Mat8<'_>,
    p: usize,
    gate0: usize,
    gates: usize,
    x: &QRows,
    rows: Range<usize>,
) -> QRows {
    use crate::amx::{PanelSums, TILE_ROWS};
    let phys = physical_rows(x, &rows);
    let tiles_m = phys.len().div_ceil(TILE_ROWS);
    let out: *mut i32 = x.scratch.wrapping_add(TAIL_BYTES).cast();
    let sums = PanelSums {
        a: x.bytes(phys.start),
        a_stride: x.stride,
        tiles_m,
        w: m.panel(p).wrapping_add(gate0 * GROUP_BYTES),
        w_stride: m.gates * GROUP_BYTES,
        gates,
        quads: m.quads,
        tail: x.scratch.cast(),
        out,
    };
    // SAFETY: the rows lie in `x` with 16 rows of room after them and zeros
    // past each row's `k` bytes (carved for tiles); the scratch holds the
    // tail and `gates` x `16 tiles_m` rows of sums; tiles are configured.
    unsafe { D::panel_sums(&sums) };
    let sums = TileSums { ptr: out, panel: p, gate0, row0: phys.start, rows: TILE_ROWS * tiles_m };
    QRows { sums: Some(sums), ..*x }
}

/// Rows in the next register block of split rows when `left` remain: 3
/// (24 accumulators of 4 gates), then 2, then 1.
#[inline(always)]
fn split_height(left: usize) -> usize {
    match left {
        3.. => 3,
        2 => 2,
        _ => 1,
    }
}

/// The int8 counterpart of `step::run_steps`: the input part must be in
/// `pre` (int8 layers always project with [`gemm`] first); `buf` is this
/// thread's buffer of [`buffer_bytes`] bytes for the quantized rows.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn run_steps<D: Dot8>(
    k: &LayerKernel<'_, i8>,
    m: &Layer8<'_>,
    io: &StepIo,
    job: &Job,
    rows: Range<usize>,
    panels: Range<usize>,
    proj_panels: Range<usize>,
    buf: *mut u8,
    sync: &dyn Fn(),
) {
    let Source::Pre { ptr: pre, row_stride } = job.source else {
        unreachable!("int8 layers always project the input first")
    };
    let tiles = use_tiles::<D>(rows.len(), m.w_hh.split);
    // SAFETY: the hardware AMX form runs only where `amx::status` is Ok.
    let _tiles = tiles.then(|| unsafe { D::configure_tiles() });
    let mut cur = job.cur;
    for n in 0..job.steps {
        let t = if job.reverse { job.steps - 1 - n } else { n };
        let (h_prev, h_new) = (io.h[cur], io.h[cur ^ 1]);
        let out_t = job.out.wrapping_add(t * job.out_step);
        let s = StepCtx { k, io, job, t, h_prev, h_new, out_t, backward: cur == 1, wide: std::ptr::null_mut() };
        // SAFETY: buffers are sized by the engine for this layer; each thread
        // writes only its rows x panels; `sync` orders cross-thread reads.
        unsafe {
            // Not a closure: a closure is a function of its own, and would not
            // be compiled for the tier's instruction set.
            let split = m.w_hh.split;
            let x = quantize_rows(h_prev, io.h_stride, rows.clone(), k.out_size, buf, io.batch, split, D::TILES);
            let mut c = Ctx8 { s: &s, m, x, pre, row_stride, tiles };
            if k.cell == CellKind::Gru && !k.linear_before_reset {
                for_blocks::<D, GruReset8>(&c, rows.clone(), panels.clone());
                sync();
                c.x = quantize_rows(io.r, io.c_stride, rows.clone(), k.hidden, buf, io.batch, split, D::TILES);
                for_blocks::<D, GruCandidate8>(&c, rows.clone(), panels.clone());
            } else {
                for_blocks::<D, Gates8>(&c, rows.clone(), panels.clone());
            }
            if m.w_hr.is_some() {
                sync();
                c.x = quantize_rows(io.r, io.c_stride, rows.clone(), k.hidden, buf, io.batch, split, D::TILES);
                for_blocks::<D, Projection8>(&c, rows.clone(), proj_panels.clone());
            }
        }
        sync();
        cur ^= 1;
    }
}

/// The operands of the int8 input projection `out[row] = bias + W x[row]`.
pub(crate) struct Gemm8<'a> {
    pub w: Mat8<'a>,
    /// Inputs per row (the `K` of `w`).
    pub k: usize,
    pub bias: &'a [f32],
    pub x: *const f32,
    pub x_stride: usize,
    pub rows: usize,
    pub out: *mut f32,
    /// This thread's buffer of [`buffer_bytes`] bytes.
    pub buf: *mut u8,
}

/// The int8 input projection for panels `panels` of every row: rows are
/// quantized a block at a time, then each panel's weights serve the whole
/// block from cache.
#[inline(always)]
pub(crate) unsafe fn gemm<D: Dot8>(g: &Gemm8<'_>, panels: Range<usize>) {
    // SAFETY: forwarded.
    unsafe {
        match g.w.gates {
            4 => gemm_g::<D, 4>(g, panels),
            3 => gemm_g::<D, 3>(g, panels),
            _ => gemm_g::<D, 1>(g, panels),
        }
    }
}

#[inline(always)]
unsafe fn gemm_g<D: Dot8, const G: usize>(g: &Gemm8<'_>, panels: Range<usize>) {
    let tall = <<D::S as Tier>::Blocking as Blocking>::TALL;
    let split = g.w.split;
    let tiles = use_tiles::<D>(g.rows, split);
    let block = gemm_rows(g.k, D::TILES);
    // SAFETY: the hardware AMX form runs only where `amx::status` is Ok.
    let _tiles = tiles.then(|| unsafe { D::configure_tiles() });
    // SAFETY: the caller guarantees `rows` rows of `k` inputs at `x` and of
    // `panels * G * 16` floats at `out`; blocks never pass `rows`.
    unsafe {
        for b0 in (0..g.rows).step_by(block) {
            let n = block.min(g.rows - b0);
            let x = quantize_rows(g.x.add(b0 * g.x_stride), g.x_stride, 0..n, g.k, g.buf, block, split, D::TILES);
            let tiled = tiles && use_tiles::<D>(n, split);
            for p in panels.clone() {
                let x = if tiled { tile_sums::<D>(&g.w, p, 0, G, &x, 0..n) } else { x };
                let mut r = 0;
                while r < n {
                    let h = match (tall, split) {
                        (false, _) => 1,
                        (true, false) => block_height(n - r),
                        (true, true) => split_height(n - r),
                    };
                    match h {
                        6 => gemm_block::<D, 6, G>(g, &x, b0, r, p),
                        3 => gemm_block::<D, 3, G>(g, &x, b0, r, p),
                        2 => gemm_block::<D, 2, G>(g, &x, b0, r, p),
                        _ => gemm_block::<D, 1, G>(g, &x, b0, r, p),
                    }
                    r += h;
                }
            }
        }
    }
}

#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline(never))]
unsafe fn gemm_block<D: Dot8, const R: usize, const G: usize>(
    g: &Gemm8<'_>,
    x: &QRows,
    b0: usize,
    r0: usize,
    p: usize,
) {
    type S<D> = <D as Dot8>::S;
    let out_stride = g.w.panels * G * LANES;
    // SAFETY: rows b0+r0..b0+r0+R exist in `out`, r0..r0+R in `x`; panel p exists.
    unsafe {
        let b = g.bias[p * G * LANES..].as_ptr();
        let mut acc = [[[S::<D>::zero(); G]; 1]; R];
        for row in acc.iter_mut() {
            for (gate, v) in row[0].iter_mut().enumerate() {
                *v = S::<D>::load(b.add(gate * LANES));
            }
        }
        add_product::<D, R, 1, G>(&mut acc, &g.w, 0, p, x, r0);
        for (r, a) in acc.iter().enumerate() {
            let o = g.out.add((b0 + r0 + r) * out_stride + p * G * LANES);
            for (gate, v) in a[0].iter().enumerate() {
                S::<D>::store(o.add(gate * LANES), *v);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use lstmrt_format::panel::{pack_i8, panels};

    /// A small deterministic generator (xorshift).
    struct Gen(u64);
    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Stores a block's sums at rows r0.., panel p, gates gate0.. of `out`.
    #[inline(always)]
    unsafe fn put<D: Dot8, const R: usize, const G: usize>(
        out: &mut [i32],
        m: &Mat8<'_>,
        acc: [[[D::I; G]; 1]; R],
        r0: usize,
        p: usize,
        gate0: usize,
    ) {
        for (r, a) in acc.iter().enumerate() {
            for (g, v) in a[0].iter().enumerate() {
                let at = (((r0 + r) * m.panels + p) * m.gates + gate0 + g) * LANES;
                // SAFETY: `out` has room for 16 values at `at`.
                unsafe { D::store(*v, out[at..at + LANES].as_mut_ptr()) }
            }
        }
    }

    /// The i32 sums of rows x panels x gates through form `D`, in the
    /// register blocks the kernels use (6, 2 and 1 rows of 4 gates; 1 row of
    /// one gate otherwise).
    #[inline(always)]
    pub(crate) unsafe fn products<D: Dot8>(m: &Mat8<'_>, x: &QRows, rows: usize) -> Vec<i32> {
        let mut out = vec![0i32; rows * m.panels * m.gates * LANES];
        // SAFETY: every block lies inside rows x panels.
        unsafe {
            for p in 0..m.panels {
                let mut r = 0;
                while r < rows {
                    let h = if m.gates == 4 { block_height(rows - r) } else { 1 };
                    match (h, m.gates) {
                        (6, 4) => put::<D, 6, 4>(
                            &mut out,
                            m,
                            dots::<D, 6, 1, 4>(m, 0, p, x, std::array::from_fn(|i| r + i)),
                            r,
                            p,
                            0,
                        ),
                        (2, 4) => put::<D, 2, 4>(&mut out, m, dots::<D, 2, 1, 4>(m, 0, p, x, [r, r + 1]), r, p, 0),
                        (_, 4) => put::<D, 1, 4>(&mut out, m, dots::<D, 1, 1, 4>(m, 0, p, x, [r]), r, p, 0),
                        _ => {
                            for g in 0..m.gates {
                                put::<D, 1, 1>(&mut out, m, dots::<D, 1, 1, 1>(m, g, p, x, [r]), r, p, g);
                            }
                        }
                    }
                    r += h;
                }
            }
        }
        out
    }

    /// [`products`] of split rows: `rows / 2` rows of two byte rows each, through
    /// [`dots_split`]; physical row `2r` holds the `hi` sums, `2r + 1` the `lo`.
    #[inline(always)]
    pub(crate) unsafe fn products_split<D: Dot8>(m: &Mat8<'_>, x: &QRows, rows: usize) -> Vec<i32> {
        let mut out = vec![0i32; rows * m.panels * m.gates * LANES];
        // SAFETY: every block lies inside rows x panels.
        unsafe {
            for p in 0..m.panels {
                for r in 0..rows / 2 {
                    if m.gates == 4 {
                        let (hi, lo) = dots_split::<D, 1, 1, 4>(m, 0, p, x, r);
                        put::<D, 1, 4>(&mut out, m, hi, 2 * r, p, 0);
                        put::<D, 1, 4>(&mut out, m, lo, 2 * r + 1, p, 0);
                    } else {
                        for g in 0..m.gates {
                            let (hi, lo) = dots_split::<D, 1, 1, 1>(m, g, p, x, r);
                            put::<D, 1, 1>(&mut out, m, hi, 2 * r, p, g);
                            put::<D, 1, 1>(&mut out, m, lo, 2 * r + 1, p, g);
                        }
                    }
                }
            }
        }
        out
    }

    /// [`products`] for each x86 form, compiled with its instructions.
    #[cfg(target_arch = "x86_64")]
    mod x86 {
        use super::*;
        #[target_feature(enable = "avx2,fma,f16c")]
        pub(super) unsafe fn avx2(m: &Mat8<'_>, x: &QRows, rows: usize, split: bool) -> Vec<i32> {
            unsafe {
                if split {
                    products_split::<crate::avx2::Avx2Maddubs>(m, x, rows)
                } else {
                    products::<crate::avx2::Avx2Maddubs>(m, x, rows)
                }
            }
        }
        #[target_feature(enable = "avx2,fma,f16c,avxvnni")]
        pub(super) unsafe fn avxvnni(m: &Mat8<'_>, x: &QRows, rows: usize, split: bool) -> Vec<i32> {
            unsafe {
                if split {
                    products_split::<crate::avx2::AvxVnni>(m, x, rows)
                } else {
                    products::<crate::avx2::AvxVnni>(m, x, rows)
                }
            }
        }
        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")]
        pub(super) unsafe fn avx512(m: &Mat8<'_>, x: &QRows, rows: usize, split: bool) -> Vec<i32> {
            unsafe {
                if split {
                    products_split::<crate::avx512::Avx512Maddubs>(m, x, rows)
                } else {
                    products::<crate::avx512::Avx512Maddubs>(m, x, rows)
                }
            }
        }
        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c,avx512vnni")]
        pub(super) unsafe fn avx512vnni(m: &Mat8<'_>, x: &QRows, rows: usize, split: bool) -> Vec<i32> {
            unsafe {
                if split {
                    products_split::<crate::avx512::Avx512Vnni>(m, x, rows)
                } else {
                    products::<crate::avx512::Avx512Vnni>(m, x, rows)
                }
            }
        }
    }

    /// The sums of form `dot`, or `None` when this CPU lacks it.
    fn products_of(dot: crate::Int8Dot, m: &Mat8<'_>, x: &QRows, rows: usize, split: bool) -> Option<Vec<i32>> {
        use crate::Int8Dot as F;
        if !dot.available() {
            return None;
        }
        // SAFETY: the form is available; the case sizes `m` and `x`.
        unsafe {
            Some(match dot {
                F::Scalar if split => products_split::<ScalarDot>(m, x, rows),
                F::Scalar => products::<ScalarDot>(m, x, rows),
                F::Portable if split => products_split::<PortableDot>(m, x, rows),
                F::Portable => products::<PortableDot>(m, x, rows),
                #[cfg(target_arch = "x86_64")]
                F::Avx2Maddubs => x86::avx2(m, x, rows, split),
                #[cfg(target_arch = "x86_64")]
                F::AvxVnni => x86::avxvnni(m, x, rows, split),
                #[cfg(target_arch = "x86_64")]
                F::Avx512Maddubs => x86::avx512(m, x, rows, split),
                // The form's products below the tiles' rows; its tiles have a test of their own.
                #[cfg(target_arch = "x86_64")]
                F::Avx512Vnni | F::Amx | F::AmxEmulated => x86::avx512vnni(m, x, rows, split),
                #[cfg(not(target_arch = "x86_64"))]
                _ => return None,
            })
        }
    }

    #[test]
    fn every_form_sums_exactly_as_the_scalar_oracle() {
        let mut ran = Vec::new();
        for mut case in cases() {
            let x = case.rows();
            let buf = case.q.as_mut_ptr();
            let m = case.mat();
            let want = case.expected();
            // SAFETY: the scalar form runs anywhere.
            let oracle = unsafe { products::<ScalarDot>(&m, &x, case.rows) };
            assert_eq!(oracle, want, "the oracle against i64 sums, k={}", case.k);
            for dot in crate::Int8Dot::ALL {
                if let Some(got) = products_of(dot, &m, &x, case.rows, false) {
                    assert_eq!(got, oracle, "{dot}: gates={} n={} k={} rows={}", case.gates, case.n, case.k, case.rows);
                    ran.push(dot);
                }
                // The same bytes read as split rows (pairs of byte rows).
                if case.rows % 2 == 0 {
                    let split = QRows::carve(buf, case.rows / 2, case.k, true, false);
                    if let Some(got) = products_of(dot, &m, &split, case.rows, true) {
                        assert_eq!(got, oracle, "{dot} split: gates={} k={} rows={}", case.gates, case.k, case.rows);
                    }
                }
            }
        }
        eprintln!("int8 forms checked: {:?}", ran.iter().collect::<std::collections::BTreeSet<_>>());
    }

    /// Random int8 weights and u8 activations, including the extremes
    /// (255 x -128 is where `vpmaddubsw` would saturate).
    pub(crate) struct Case {
        pub packed: Vec<i8>,
        pub q: Vec<u8>,
        pub gates: usize,
        pub n: usize,
        pub k: usize,
        pub rows: usize,
    }

    pub(crate) fn cases() -> Vec<Case> {
        let mut rng = Gen(0x9E37_79B9_7F4A_7C15);
        let mut out = Vec::new();
        for (gates, n, k, rows, extreme) in [
            (4, 16, 4, 1, false),
            (4, 33, 17, 7, false),
            (1, 20, 130, 3, false),
            (3, 17, 9, 2, false),
            (4, 32, 1, 6, false),
            (4, 16, 4096, 2, true),
            (1, 48, 515, 13, true),
        ] {
            let canonical: Vec<i8> = (0..gates * n * k)
                .map(|_| if extreme { [-128i8, 127, -127][(rng.next() % 3) as usize] } else { rng.next() as i8 })
                .collect();
            let stride = row_bytes(k);
            let mut q = vec![0u8; qrows_bytes(rows, k, false)];
            let params = params_bytes(rows);
            for r in 0..rows {
                for j in 0..k {
                    q[params + r * stride + j] = if extreme { 255 } else { rng.next() as u8 };
                }
            }
            out.push(Case { packed: pack_i8(&canonical, gates, n, k), q, gates, n, k, rows });
        }
        out
    }

    impl Case {
        pub(crate) fn mat(&self) -> Mat8<'_> {
            Mat8 {
                data: &self.packed,
                panels: panels(self.n),
                quads: self.k.div_ceil(K_GROUP),
                gates: self.gates,
                scale: &[],
                colsum: &[],
                split: false,
            }
        }

        pub(crate) fn rows(&mut self) -> QRows {
            QRows::carve(self.q.as_mut_ptr(), self.rows, self.k, false, false)
        }

        /// The sums computed straight from the definition, in i64.
        pub(crate) fn expected(&self) -> Vec<i32> {
            let canonical = lstmrt_format::panel::unpack_i8(&self.packed, self.gates, self.n, self.k);
            let params = params_bytes(self.rows);
            let p = panels(self.n);
            let mut out = vec![0i32; self.rows * p * self.gates * LANES];
            for r in 0..self.rows {
                for g in 0..self.gates {
                    for u in 0..self.n {
                        let sum: i64 = (0..self.k)
                            .map(|j| {
                                i64::from(self.q[params + r * row_bytes(self.k) + j])
                                    * i64::from(canonical[(g * self.n + u) * self.k + j])
                            })
                            .sum();
                        out[((r * p + u / LANES) * self.gates + g) * LANES + u % LANES] = sum as i32;
                    }
                }
            }
            out
        }
    }

    /// `bytes` copied to the end of an anonymous mapping followed by an
    /// inaccessible page, so a read past them is a fault, not a silent
    /// read of the next allocation. Never unmapped (tests only).
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    fn guarded(bytes: &[u8]) -> &'static [u8] {
        const PAGE: usize = 4096;
        let len = bytes.len().next_multiple_of(PAGE);
        let mut addr: isize;
        // SAFETY: mmap(NULL, len + PAGE, READ|WRITE, PRIVATE|ANONYMOUS, -1, 0)
        // and mprotect(last page, NONE) through raw syscalls (rcx and r11
        // clobbered); they touch only the new mapping.
        unsafe {
            std::arch::asm!("syscall", inlateout("rax") 9isize => addr, in("rdi") 0usize, in("rsi") len + PAGE,
                in("rdx") 3usize, in("r10") 0x22usize, in("r8") -1isize, in("r9") 0usize,
                lateout("rcx") _, lateout("r11") _, options(nostack));
            assert!(addr > 0, "mmap failed: {addr}");
            let mut ret: isize;
            std::arch::asm!("syscall", inlateout("rax") 10isize => ret, in("rdi") addr as usize + len,
                in("rsi") PAGE, in("rdx") 0usize, lateout("rcx") _, lateout("r11") _, options(nostack));
            assert_eq!(ret, 0, "mprotect failed");
            let start = (addr as usize + len - bytes.len()) as *mut u8;
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), start, bytes.len());
            std::slice::from_raw_parts(start, bytes.len())
        }
    }

    /// The tile sums of every case (weights ending at an inaccessible page),
    /// of all gates, of the last gate alone, and of rows starting mid-batch
    /// (as a second thread's do), equal the definition's: with the tile
    /// instructions emulated everywhere, and with the instructions where
    /// the CPU has AMX.
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    #[test]
    fn tile_sums_equal_the_oracle_and_read_inside_the_weights() {
        use crate::amx::{Emulated, Hardware};
        use crate::avx512::AmxInt8;
        // SAFETY: the emulation runs anywhere.
        unsafe { check_tile_sums::<AmxInt8<Emulated>>() };
        match crate::amx::status() {
            // SAFETY: AMX is available (checked).
            Ok(()) => unsafe { check_tile_sums::<AmxInt8<Hardware>>() },
            Err(why) => eprintln!("no AMX here ({why}): tile instructions not run, their emulation checked"),
        }
    }

    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    unsafe fn check_tile_sums<D: Dot8>() {
        // SAFETY: the caller guarantees D's tiles run here; buffers are sized for tiles.
        unsafe {
            let _tiles = D::configure_tiles();
            for mut case in cases().into_iter().chain(more_cases()) {
                let want = case.expected();
                let x = case.rows();
                let mut buf = crate::AlignedVec::<u8>::zeroed(qrows_bytes(case.rows, case.k, true));
                // Stale bytes in the rows' room and the scratch must not matter.
                buf.as_mut_slice().fill(0xA5);
                let t = QRows::carve(buf.as_mut_ptr(), case.rows, case.k, false, true);
                for r in 0..case.rows {
                    let row = t.data.add(r * t.stride);
                    std::ptr::write_bytes(row, 0, t.stride);
                    std::ptr::copy_nonoverlapping(x.bytes(r), row, row_bytes(case.k));
                }
                let packed: &[i8] = bytemuck::cast_slice(guarded(bytemuck::cast_slice(&case.packed)));
                let m = Mat8 { data: packed, ..case.mat() };
                let at = |r: usize, p: usize, g: usize| ((r * m.panels + p) * m.gates + g) * LANES;
                let last = m.gates - 1;
                for (rows, gate0, gates) in
                    [(0..case.rows, 0, m.gates), (0..case.rows, last, 1), (case.rows / 2..case.rows, 0, m.gates)]
                {
                    for p in 0..m.panels {
                        let s = tile_sums::<D>(&m, p, gate0, gates, &t, rows.clone()).sums.unwrap();
                        for r in rows.clone() {
                            for g in gate0..gate0 + gates {
                                let got = std::slice::from_raw_parts(s.at(r, p, g), LANES);
                                let (k, n) = (case.k, case.n);
                                assert_eq!(
                                    got,
                                    &want[at(r, p, g)..][..LANES],
                                    "k={k} n={n} row {r} panel {p} gate {g}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    /// Shapes the tiles meet: whole and partial 16-row tiles and 16-group
    /// K tiles, one to three row tiles, one to four gates.
    fn more_cases() -> Vec<Case> {
        let mut rng = Gen(0x2545_F491_4F6C_DD1D);
        [(4, 32, 64, 16), (4, 48, 512, 32), (3, 16, 100, 17), (1, 16, 256, 33), (4, 16, 40, 47), (2, 32, 68, 8)]
            .into_iter()
            .map(|(gates, n, k, rows)| {
                let canonical: Vec<i8> = (0..gates * n * k).map(|_| rng.next() as i8).collect();
                let mut q = vec![0u8; qrows_bytes(rows, k, false)];
                let params = params_bytes(rows);
                for r in 0..rows {
                    for j in 0..k {
                        q[params + r * row_bytes(k) + j] = rng.next() as u8;
                    }
                }
                Case { packed: pack_i8(&canonical, gates, n, k), q, gates, n, k, rows }
            })
            .collect()
    }

    #[test]
    fn quantized_rows_round_trip_within_half_a_step() {
        let xs: Vec<f32> = (0..37).map(|i| ((i * 7919) % 100) as f32 / 50.0 - 0.7).collect();
        let mut out = vec![0u8; 40];
        // SAFETY: 37 values in, 40 bytes out.
        let (scale, zp) = unsafe { quantize_row(xs.as_ptr(), xs.len(), out.as_mut_ptr(), out.len()) };
        let lo = xs.iter().copied().fold(0.0f32, f32::min);
        let hi = xs.iter().copied().fold(0.0f32, f32::max);
        assert!((scale - (hi - lo) / 255.0).abs() < 1e-7);
        for (x, q) in xs.iter().zip(&out) {
            let back = (i32::from(*q) - zp) as f32 * scale;
            assert!((back - x).abs() <= 0.5 * scale * 1.0001, "{x} came back as {back}");
        }
        assert_eq!(&out[37..], &[0, 0, 0], "padding is zero");
        // Split rows: hi + lo reconstruct each value within half of a 254th step.
        let mut low = vec![0u8; 40];
        // SAFETY: 37 values and bytes in, 40 bytes out.
        let (sl, zl) =
            unsafe { quantize_residual(xs.as_ptr(), xs.len(), out.as_ptr(), (scale, zp), low.as_mut_ptr(), 40) };
        assert_eq!((sl, zl), (scale / 254.0, 127));
        for ((x, q), l) in xs.iter().zip(&out).zip(&low) {
            let back = (i32::from(*q) - zp) as f32 * scale + (i32::from(*l) - zl) as f32 * sl;
            assert!((back - x).abs() <= 0.5 * sl * 1.01 + 1e-7, "{x} came back as {back} from two bytes");
        }
        // Zero maps to the zero point exactly.
        let zeros = [0.0f32, 1.0, -1.0];
        // SAFETY: 3 values in, 40 bytes out.
        let (s, zp) = unsafe { quantize_row(zeros.as_ptr(), 3, out.as_mut_ptr(), 4) };
        assert_eq!(i32::from(out[0]), zp);
        assert!((s - 2.0 / 255.0).abs() < 1e-7);
        // NaN and infinity poison the row's scale instead of quantizing garbage.
        for bad in [f32::NAN, f32::INFINITY] {
            let v = [0.5, bad, 0.25];
            // SAFETY: as above.
            let (s, _) = unsafe { quantize_row(v.as_ptr(), 3, out.as_mut_ptr(), 4) };
            assert!(s.is_nan());
        }
    }
}
