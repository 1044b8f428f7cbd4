//! Activations quantized per row to bytes, and the buffers they go in:
//! asymmetric u8 over `[min(x, 0), max(x, 0)]` with a zero point, one or
//! two bytes per value, rows padded for the tiles when a product uses them.
// Register blocks are indexed [row][panel][gate] across several arrays at once;
// index loops over the const bounds read like the math.
#![allow(clippy::needless_range_loop)]

use std::ops::Range;

use lstmrt_format::panel::K_GROUP;

use super::dot::GROUP_BYTES;
use crate::simd::LANES;

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
    pub(crate) fn panel(&self, p: usize) -> *const i8 {
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
    pub(crate) data: *mut u8,
    pub(crate) stride: usize,
    pub(crate) scale: *mut f32,
    pub(crate) zp: *mut i32,
    pub(crate) split: bool,
    /// After the rows: `TAIL_BYTES` for the tiles' weight tail, then the sums.
    pub(crate) scratch: *mut u8,
    /// The i32 sums of the panel being finished, when tiles computed them.
    pub(crate) sums: Option<TileSums>,
}

/// The tile sums of one panel for physical rows `row0..row0 + rows` and
/// gates `gate0..`: `[gate - gate0][row - row0][16]` i32.
#[derive(Clone, Copy)]
pub(crate) struct TileSums {
    pub(crate) ptr: *const i32,
    pub(crate) panel: usize,
    pub(crate) gate0: usize,
    pub(crate) row0: usize,
    pub(crate) rows: usize,
}

impl TileSums {
    /// The 16 sums of physical row `i`, panel `p`, gate `g`.
    #[inline(always)]
    pub(crate) fn at(&self, i: usize, p: usize, g: usize) -> *const i32 {
        debug_assert!(p == self.panel && g >= self.gate0 && i >= self.row0 && i < self.row0 + self.rows);
        self.ptr.wrapping_add(((g - self.gate0) * self.rows + i - self.row0) * LANES)
    }
}

/// The most gates a matrix has (LSTM), so the most the tile scratch holds.
pub(crate) const TILE_GATES: usize = 4;

/// Bytes of the tiles' copy of the last, partial 16 groups of every gate.
pub(crate) const TAIL_BYTES: usize = TILE_GATES * crate::amx::TILE_ROWS * crate::amx::TILE_BYTES;

/// Physical rows at least for which the AMX form sums with tiles: below,
/// `vpdpbusd` does as many products per instruction and loads less (as
/// oneDNN and ggml keep few rows off the tiles). Not measured yet: no AMX
/// machine has run it; set it from `lstm-run --bench --batch 4|8|16` on the
/// avx512 and amx tiers (docs/performance.md, "The amx tier").
pub const TILE_MIN_ROWS: usize = 8;

/// Bytes of a [`QRows`] buffer of `rows` rows of `k` values (room for split
/// rows, and for the tiles' rows and scratch when `tiles`).
pub(crate) fn qrows_bytes(rows: usize, k: usize, tiles: bool) -> usize {
    let physical = 2 * rows;
    if !tiles {
        return params_bytes(physical) + physical * row_bytes(k);
    }
    let room = physical + crate::amx::TILE_ROWS;
    let sums = TILE_GATES * room.next_multiple_of(crate::amx::TILE_ROWS) * crate::amx::TILE_BYTES;
    params_bytes(physical) + room * tile_row_bytes(k) + TAIL_BYTES + sums
}

/// Bytes per quantized row for tiles: whole 64-byte tile rows.
pub(crate) fn tile_row_bytes(k: usize) -> usize {
    row_bytes(k).next_multiple_of(crate::amx::TILE_BYTES)
}

/// Bytes before the first row of a [`QRows`] buffer of `physical` byte rows:
/// their scales and zero points, rounded to 64.
pub(crate) fn params_bytes(physical: usize) -> usize {
    (8 * physical).next_multiple_of(64)
}

/// Bytes per quantized row: whole groups of 4.
pub(crate) fn row_bytes(k: usize) -> usize {
    k.div_ceil(K_GROUP).max(1) * K_GROUP
}

impl QRows {
    /// Lays out `rows` rows of `k` values in `buf` (at least [`qrows_bytes`]
    /// bytes, 64-byte aligned), in tile rows when `tiles`.
    pub(crate) fn carve(buf: *mut u8, rows: usize, k: usize, split: bool, tiles: bool) -> QRows {
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
    pub(crate) fn physical(&self, r: usize) -> usize {
        if self.split { 2 * r } else { r }
    }

    /// Physical row `i`'s bytes.
    #[inline(always)]
    pub(crate) fn bytes(&self, i: usize) -> *const u8 {
        self.data.wrapping_add(i * self.stride).cast_const()
    }

    /// Physical row `i`'s scale and zero point.
    #[inline(always)]
    pub(crate) unsafe fn params(&self, i: usize) -> (f32, i32) {
        // SAFETY: the caller guarantees row `i` exists.
        unsafe { (*self.scale.add(i), *self.zp.add(i)) }
    }
}

/// Rows of the GEMM quantized at a time: as many as fit in 256 KiB (a
/// multiple of the 6-row block), at least 6 and at most 48; for tiles, 64
/// (4 row tiles, or 8 of split rows), as many as keep them in L1 for k=512.
pub(crate) fn gemm_rows(k: usize, tiles: bool) -> usize {
    if tiles { 64 } else { ((256 << 10) / row_bytes(k) / 6 * 6).clamp(6, 48) }
}

/// Bytes of the per-thread buffer the int8 kernels need for a batch of
/// `batch` rows, GEMM inputs of up to `k_in` values and recurrent inputs of
/// up to `k_rec` values, with room for the tiles when the product uses them
/// (`tiles`: [`crate::Int8Dot::tiles`]).
pub fn buffer_bytes(batch: usize, k_in: usize, k_rec: usize, tiles: bool) -> usize {
    let plain = qrows_bytes(gemm_rows(k_in, false), k_in, false).max(qrows_bytes(batch, k_rec, false));
    if !tiles {
        return plain;
    }
    plain.max(qrows_bytes(gemm_rows(k_in, true), k_in, true)).max(qrows_bytes(batch, k_rec, true))
}

/// `x + 0.5` rounded down, ties to even: exact for `|x| < 2^22`, and the
/// same bits on every tier (no rounding instruction needed).
#[inline(always)]
pub(crate) fn round_even(x: f32) -> f32 {
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
pub(crate) unsafe fn quantize_row(x: *const f32, k: usize, out: *mut u8, out_len: usize) -> (f32, i32) {
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
pub(crate) unsafe fn quantize_residual(
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
pub(crate) unsafe fn quantize_rows(
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
