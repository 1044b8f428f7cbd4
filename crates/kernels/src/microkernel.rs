//! The microkernels: register blocks of `R` rows x `Q` panels x `G` gates
//! of f32 accumulators, fed one input index at a time. Everything above
//! (the GEMM, the step, the cells) is built from these.
// Register blocks are indexed [row][panel][gate] across several arrays at once;
// index loops over the const bounds read like the math.
#![allow(clippy::needless_range_loop)]

use crate::simd::{LANES, Simd, Weight};

/// Adds `Σ_k x_r[k] · W_q[k][g]` to `acc[r][q][g]` for `R` rows and `Q` panels.
///
/// `w[q]` points at panel `q`'s first weight of the first gate to read;
/// consecutive input indices are `stride` elements apart; gates are 16
/// elements apart. Each weight vector is loaded once and used for all rows.
#[inline(always)]
pub(crate) unsafe fn accumulate<S: Simd, W: Weight, const R: usize, const Q: usize, const G: usize>(
    acc: &mut [[[S::V; G]; Q]; R],
    w: [*const W; Q],
    stride: usize,
    x: [*const f32; R],
    k: usize,
) {
    // SAFETY: the caller guarantees `k` input indices of `G` gates at each `w[q]`
    // and `k` readable inputs at each `x[r]`.
    unsafe {
        for kk in 0..k {
            let mut wv = [[S::zero(); G]; Q];
            for q in 0..Q {
                for g in 0..G {
                    wv[q][g] = W::load::<S>(w[q].add(kk * stride + g * LANES));
                }
            }
            for r in 0..R {
                let xv = S::splat(W::activation(*x[r].add(kk)));
                for q in 0..Q {
                    for g in 0..G {
                        acc[r][q][g] = S::fma(wv[q][g], xv, acc[r][q][g]);
                    }
                }
            }
        }
    }
}

/// Loads the `[Q][G]` vectors of panels `p0..p0+Q` from a `[panels][G][16]` buffer.
#[inline(always)]
pub(crate) unsafe fn load_panels<S: Simd, const Q: usize, const G: usize>(
    dst: &mut [[S::V; G]; Q],
    src: *const f32,
    p0: usize,
) {
    // SAFETY: the caller guarantees panels p0..p0+Q exist in `src`.
    unsafe {
        for (q, panel) in dst.iter_mut().enumerate() {
            for (g, v) in panel.iter_mut().enumerate() {
                *v = S::load(src.add(((p0 + q) * G + g) * LANES));
            }
        }
    }
}

/// For `R` rows of one panel: `out_r[g] = start_r[g] + Σ_{k<n} x_r[k] w[k][g]`,
/// where `start` is `init` (a bias vector) when given, else `out` itself.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline(never))]
pub(crate) unsafe fn accumulate_rows<S: Simd, W: Weight, const R: usize, const G: usize>(
    out: [*mut f32; R],
    init: Option<*const f32>,
    w: *const W,
    stride: usize,
    xs: [*const f32; R],
    n: usize,
) {
    // SAFETY: the caller guarantees R rows of G vectors at `out`, `n` input
    // indices of G gates at `w`, and `n` inputs at each `xs[r]`.
    unsafe {
        let mut acc = [[[S::zero(); G]; 1]; R];
        for r in 0..R {
            let start = init.unwrap_or(out[r]);
            for g in 0..G {
                acc[r][0][g] = S::load(start.add(g * LANES));
            }
        }
        accumulate::<S, W, R, 1, G>(&mut acc, [w], stride, xs, n);
        for r in 0..R {
            for g in 0..G {
                S::store(out[r].add(g * LANES), acc[r][0][g]);
            }
        }
    }
}

/// Widens `vectors` consecutive vectors of 16 weights to f32 at `dst`.
#[inline(always)]
pub(crate) unsafe fn widen<S: Simd, W: Weight>(src: *const W, vectors: usize, dst: *mut f32) {
    // SAFETY: the caller guarantees `vectors * 16` elements at both ends.
    unsafe {
        for i in 0..vectors {
            S::store(dst.add(i * LANES), W::load::<S>(src.add(i * LANES)));
        }
    }
}

/// Most input pairs one call of [`accumulate_rows_bf16`] takes: a block of
/// paired weights fills at most the caller's widening buffer
/// (`blocking::WIDEN_BUFFER`, which checks this), one gate of 16 pairs per
/// input pair.
pub(crate) const MAX_PAIRS: usize = 384;

/// [`accumulate_rows`] with bf16 dot products: `w` holds `n.div_ceil(2)`
/// input pairs of `G` gates of 16 weight pairs (from [`pair_block`]), and
/// each row's `n` inputs are rounded to bf16 pairs first.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline(never))]
pub(crate) unsafe fn accumulate_rows_bf16<S: Simd, const R: usize, const G: usize>(
    out: [*mut f32; R],
    init: Option<*const f32>,
    w: *const u32,
    xs: [*const f32; R],
    n: usize,
) {
    let pairs = n.div_ceil(2);
    assert!(pairs <= MAX_PAIRS, "{n} inputs in one block of bf16 pairs");
    let mut a = [[std::mem::MaybeUninit::<u32>::uninit(); MAX_PAIRS]; R];
    // SAFETY: the caller guarantees R rows of G vectors at `out`, `pairs`
    // input pairs of G gates at `w`, and `n` inputs at each `xs[r]`; the
    // first `pairs` entries of each `a[r]` are written before they are read.
    unsafe {
        for r in 0..R {
            S::bf16_pairs(xs[r], n, a[r].as_mut_ptr().cast());
        }
        let mut acc = [[S::zero(); G]; R];
        for r in 0..R {
            let start = init.unwrap_or(out[r]);
            for g in 0..G {
                acc[r][g] = S::load(start.add(g * LANES));
            }
        }
        for j in 0..pairs {
            let mut wv = [S::zero(); G];
            for g in 0..G {
                wv[g] = S::load(w.add((j * G + g) * LANES).cast());
            }
            for r in 0..R {
                let av = S::splat(f32::from_bits(a[r][j].assume_init()));
                for g in 0..G {
                    acc[r][g] = S::dot_bf16(acc[r][g], wv[g], av);
                }
            }
        }
        for r in 0..R {
            for g in 0..G {
                S::store(out[r].add(g * LANES), acc[r][g]);
            }
        }
    }
}

/// Pairs the weights of consecutive inputs for [`accumulate_rows_bf16`]:
/// `n` inputs of `gates` gates of 16 bf16 at `src` (the panel layout)
/// become `n.div_ceil(2)` pairs of `gates` gates of 16 pairs at `dst`, an
/// odd `n`'s last pair padded with zero.
#[inline(always)]
pub(crate) unsafe fn pair_block<S: Simd>(src: *const u16, n: usize, gates: usize, dst: *mut u32) {
    // SAFETY: the caller guarantees `n * gates * 16` values at `src` and
    // room for `n.div_ceil(2) * gates * 16` pairs at `dst`.
    unsafe {
        for j in 0..n.div_ceil(2) {
            for g in 0..gates {
                let lo = src.add((2 * j * gates + g) * LANES);
                let hi = if 2 * j + 1 < n { src.add(((2 * j + 1) * gates + g) * LANES) } else { std::ptr::null() };
                S::pair_bf16(lo, hi, dst.add((j * gates + g) * LANES));
            }
        }
    }
}
