//! A convolution that is a short-time Fourier transform runs as an FFT.
//!
//! An STFT written as a convolution (Silero VAD's first stage, PyTorch's
//! `forward_basis_buffer`) has one input channel, a kernel of `N` taps and
//! `N + 2` output channels: the real parts `w[n] cos(2 pi k n / N)` for
//! `k = 0..=N/2`, then the imaginary parts `-w[n] sin(2 pi k n / N)`, for
//! some window `w`. As a matrix product that is `N (N + 2)` multiply-adds
//! per position (66,000 for N = 256, 40% of a Silero chunk); as a real FFT
//! (a complex FFT of `N/2` points and one pass to separate the halves) it is
//! about `N log2 N`. [`Dft::detect`] recognises the basis in a stage's f32
//! weights at open, to within 2^-22 of the window's largest value (the
//! file's rounding of the exact basis is 2^-24), and [`Dft::run`] computes
//! the same outputs in f64 with exact twiddles, rounded once to f32: on
//! Silero VAD's fixture the probabilities are as close to ONNX Runtime's as
//! the matrix product's (max 1.33e-5, mean 2.5e-7; an f32 FFT gave 1.73e-5).
//!
//! Four positions (or streams) run side by side, one per lane, so the
//! compiler's vectors carry them on every tier (one AVX2 register from the
//! avx2 tier up).

use lstmrt_kernels::Isa;

/// Positions transformed side by side.
const LANES: usize = 4;
/// The largest transform recognised (`N`): the work area lives on the stack.
const MAX_N: usize = 1024;
/// Half of the largest transform whose work area is the small one.
const SMALL_HALF: usize = 128;

type Lanes = [f64; LANES];

/// The real FFT of a windowed frame of `n` samples, for a recognised stage.
#[derive(Debug, Clone)]
pub(crate) struct Dft {
    n: usize,
    window: Vec<f64>,
    /// `exp(-2 pi i j / n)` for `j < n / 2`, as (cos, sin) pairs.
    twiddles: Vec<(f64, f64)>,
    /// Bit reversal of `0..n/2`.
    reversed: Vec<u32>,
}

impl Dft {
    /// The transform that `weights` (`[out, kernel]` rows of one input
    /// channel, the file's canonical layout) compute, when they are a
    /// windowed DFT basis as described above; `None` otherwise.
    pub(crate) fn detect(weights: &[f32], out: usize, kernel: usize) -> Option<Dft> {
        let n = kernel;
        if !Dft::fits(out, kernel) || weights.len() != out * n {
            return None;
        }
        let half = n / 2;
        // Row 0 is the window itself (cos 0 = 1).
        let window = weights[..n].to_vec();
        let scale = window.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        if !(scale.is_finite() && scale > 0.0) {
            return None;
        }
        let tolerance = f64::from(scale) * (2.0f64).powi(-22);
        let step = std::f64::consts::TAU / n as f64;
        for k in 0..=half {
            let (re, im) = (&weights[k * n..][..n], &weights[(half + 1 + k) * n..][..n]);
            for (t, &w) in window.iter().enumerate() {
                // (k t) mod n keeps the angle small, so the reference is exact.
                let angle = step * ((k * t) % n) as f64;
                let (sin, cos) = angle.sin_cos();
                let w = f64::from(w);
                // Written so that NaN anywhere fails too.
                let near =
                    (f64::from(re[t]) - w * cos).abs() <= tolerance && (f64::from(im[t]) + w * sin).abs() <= tolerance;
                if !near {
                    return None;
                }
            }
        }
        let twiddles = (0..half)
            .map(|j| {
                let (sin, cos) = (step * j as f64).sin_cos();
                (cos, -sin)
            })
            .collect();
        let bits = half.trailing_zeros();
        let reversed = (0..half as u32).map(|m| if bits == 0 { 0 } else { m.reverse_bits() >> (32 - bits) }).collect();
        let window = window.iter().map(|&w| f64::from(w)).collect();
        Some(Dft { n, window, twiddles, reversed })
    }

    /// Whether a convolution of `kernel` taps and `out` channels has an
    /// STFT's shape (checked before its weights are read).
    pub(crate) fn fits(out: usize, kernel: usize) -> bool {
        (8..=MAX_N).contains(&kernel) && kernel.is_power_of_two() && out == kernel + 2
    }

    /// The taps (`N`).
    pub(crate) fn kernel(&self) -> usize {
        self.n
    }

    /// Transforms `rows` frames of `N` samples (`x_stride` apart in `x`)
    /// into rows of `N + 2` values (`out_stride` apart in `out`): the real
    /// parts of bins `0..=N/2`, then their imaginary parts.
    pub(crate) fn run(&self, isa: Isa, x: &[f32], x_stride: usize, rows: usize, out: &mut [f32], out_stride: usize) {
        let n = self.n;
        assert!(rows == 0 || (x.len() >= (rows - 1) * x_stride + n && out.len() >= (rows - 1) * out_stride + n + 2));
        #[cfg(target_arch = "x86_64")]
        if isa >= Isa::Avx2 {
            // SAFETY: a model's tier is available on this CPU (checked when
            // it was chosen), and every tier from avx2 up has AVX2.
            return unsafe { self.run_avx2(x, x_stride, rows, out, out_stride) };
        }
        let _ = isa;
        self.run_any(x, x_stride, rows, out, out_stride)
    }

    /// [`Dft::run`] compiled for AVX2: the four lanes of f64 are one
    /// register. The same operations in the same order (Rust does not fuse
    /// a multiply and an add), so the same bits as the baseline build.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn run_avx2(&self, x: &[f32], x_stride: usize, rows: usize, out: &mut [f32], out_stride: usize) {
        self.run_any(x, x_stride, rows, out, out_stride)
    }

    #[inline(always)]
    fn run_any(&self, x: &[f32], x_stride: usize, rows: usize, out: &mut [f32], out_stride: usize) {
        // The work area is on the stack and zeroed at every call: a small
        // one for small transforms (Silero's N = 256: 2 x 4 KiB, not 2 x 16).
        if self.n / 2 <= SMALL_HALF {
            self.run_in::<SMALL_HALF>(x, x_stride, rows, out, out_stride)
        } else {
            self.run_in::<{ MAX_N / 2 }>(x, x_stride, rows, out, out_stride)
        }
    }

    /// [`Dft::run`] with a work area of `H >= n / 2` lanes per part.
    #[inline(always)]
    fn run_in<const H: usize>(&self, x: &[f32], x_stride: usize, rows: usize, out: &mut [f32], out_stride: usize) {
        let (n, half) = (self.n, self.n / 2);
        let mut re = [[0.0f64; LANES]; H];
        let mut im = [[0.0f64; LANES]; H];
        let (re, im) = (&mut re[..half], &mut im[..half]);
        for first in (0..rows).step_by(LANES) {
            let lanes = LANES.min(rows - first);
            // Even samples are the real parts, odd ones the imaginary parts,
            // stored in bit-reversed order for the in-place transform.
            for (m, &to) in self.reversed.iter().enumerate() {
                let (r, i) = (&mut re[to as usize], &mut im[to as usize]);
                for l in 0..LANES {
                    let (a, b) = if l < lanes {
                        let frame = &x[(first + l) * x_stride..][..n];
                        (
                            f64::from(frame[2 * m]) * self.window[2 * m],
                            f64::from(frame[2 * m + 1]) * self.window[2 * m + 1],
                        )
                    } else {
                        (0.0, 0.0)
                    };
                    r[l] = a;
                    i[l] = b;
                }
            }
            self.transform(re, im);
            for l in 0..lanes {
                let row = &mut out[(first + l) * out_stride..][..n + 2];
                let (row_re, row_im) = row.split_at_mut(half + 1);
                separate(re, im, &self.twiddles, l, row_re, row_im);
            }
        }
    }

    /// The complex FFT of `half` points, in place, from bit-reversed input.
    #[inline(always)]
    fn transform(&self, re: &mut [Lanes], im: &mut [Lanes]) {
        let half = re.len();
        let mut len = 2;
        while len <= half {
            // exp(-2 pi i j / len) is twiddle j * (n / len).
            let stride = self.n / len;
            for start in (0..half).step_by(len) {
                for j in 0..len / 2 {
                    let (c, s) = self.twiddles[j * stride];
                    let (a, b) = (start + j, start + j + len / 2);
                    for l in 0..LANES {
                        let tr = re[b][l] * c - im[b][l] * s;
                        let ti = re[b][l] * s + im[b][l] * c;
                        re[b][l] = re[a][l] - tr;
                        im[b][l] = im[a][l] - ti;
                        re[a][l] += tr;
                        im[a][l] += ti;
                    }
                }
            }
            len *= 2;
        }
    }
}

/// Bins `0..=n/2` of the real input of lane `l` from the complex FFT `Z` of
/// its even (real) and odd (imaginary) samples: with `E = (Z[k] +
/// conj Z[n/2 - k]) / 2` and `O = (Z[k] - conj Z[n/2 - k]) / 2i`, bin `k` is
/// `E + exp(-2 pi i k / n) O`.
#[inline(always)]
fn separate(re: &[Lanes], im: &[Lanes], twiddles: &[(f64, f64)], l: usize, out_re: &mut [f32], out_im: &mut [f32]) {
    let half = re.len();
    out_re[0] = (re[0][l] + im[0][l]) as f32;
    out_im[0] = 0.0;
    out_re[half] = (re[0][l] - im[0][l]) as f32;
    out_im[half] = 0.0;
    for k in 1..half {
        let (ar, ai) = (re[k][l], im[k][l]);
        let (br, bi) = (re[half - k][l], -im[half - k][l]);
        let (er, ei) = (0.5 * (ar + br), 0.5 * (ai + bi));
        // (A - B) / 2i = -i (A - B) / 2
        let (or, oi) = (0.5 * (ai - bi), -0.5 * (ar - br));
        let (c, s) = twiddles[k];
        out_re[k] = (er + (or * c - oi * s)) as f32;
        out_im[k] = (ei + (or * s + oi * c)) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The windowed basis as a file holds it (f32), with `window`.
    fn basis(window: &[f32]) -> Vec<f32> {
        let n = window.len();
        let mut w = vec![0.0f32; (n + 2) * n];
        for k in 0..=n / 2 {
            for (t, &win) in window.iter().enumerate() {
                let a = std::f64::consts::TAU * (k * t) as f64 / n as f64;
                w[k * n + t] = (f64::from(win) * a.cos()) as f32;
                w[(n / 2 + 1 + k) * n + t] = (-f64::from(win) * a.sin()) as f32;
            }
        }
        w
    }

    fn hann(n: usize) -> Vec<f32> {
        (0..n).map(|t| (0.5 - 0.5 * (std::f64::consts::TAU * t as f64 / n as f64).cos()) as f32).collect()
    }

    /// The matrix product the stage would compute, in f64.
    fn direct(w: &[f32], x: &[f32], n: usize) -> Vec<f64> {
        w.chunks_exact(n).map(|row| row.iter().zip(x).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum()).collect()
    }

    fn values(rng: &mut crate::rng::Rng, n: usize) -> Vec<f32> {
        (0..n).map(|_| rng.uniform_f32(-1.0, 1.0)).collect()
    }

    #[test]
    fn the_fft_computes_the_basis_product_for_every_size_window_and_row_count() {
        let mut rng = crate::rng::Rng::new(3);
        for n in [8, 16, 128, 256, 1024] {
            let window: Vec<f32> = if n == 16 { values(&mut rng, n) } else { hann(n) };
            let w = basis(&window);
            let dft = Dft::detect(&w, n + 2, n).unwrap_or_else(|| panic!("n = {n}: not recognised"));
            assert_eq!(dft.kernel(), n);
            for rows in [1, 3, 4, 5, 9] {
                let (x_stride, out_stride) = (n + 3, n + 7);
                let x = values(&mut rng, rows * x_stride);
                let mut out = vec![f32::NAN; rows * out_stride];
                dft.run(Isa::Scalar, &x, x_stride, rows, &mut out, out_stride);
                // Every tier this CPU has computes the same bits (the avx2
                // build is the same operations in one register).
                for isa in Isa::available_tiers() {
                    let mut tier = vec![f32::NAN; rows * out_stride];
                    dft.run(isa, &x, x_stride, rows, &mut tier, out_stride);
                    let same = out.iter().zip(&tier).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "n = {n}, {rows} rows: {} differs from the baseline", isa.name());
                }
                for r in 0..rows {
                    let want = direct(&w, &x[r * x_stride..][..n], n);
                    let got = &out[r * out_stride..][..n + 2];
                    let worst = want.iter().zip(got).map(|(a, b)| (a - f64::from(*b)).abs()).fold(0.0, f64::max);
                    // Inputs in [-1, 1): |sum| <= n; f32 noise of log2(n) stages.
                    assert!(worst <= 2e-6 * n as f64, "n = {n}, {rows} rows, row {r}: {worst}");
                    // The row's padding is not written.
                    assert!(out[r * out_stride..][n + 2..out_stride].iter().all(|v| v.is_nan()));
                }
            }
        }
    }

    #[test]
    fn only_a_windowed_dft_basis_is_recognised() {
        let n = 64;
        let good = basis(&hann(n));
        assert!(Dft::detect(&good, n + 2, n).is_some());
        // One weight off by more than the file's rounding.
        let mut off = good.clone();
        off[5 * n + 7] += 1e-5;
        assert!(Dft::detect(&off, n + 2, n).is_none());
        // The imaginary parts with the other sign (a conjugate basis).
        let mut conj = good.clone();
        conj[(n / 2 + 1) * n..].iter_mut().for_each(|v| *v = -*v);
        assert!(Dft::detect(&conj, n + 2, n).is_none());
        // Shapes that are not an STFT: too few channels, not a power of two, no window.
        assert!(Dft::detect(&good[..n * n], n, n).is_none());
        assert!(Dft::detect(&basis(&hann(48)), 50, 48).is_none());
        assert!(Dft::detect(&vec![0.0; (n + 2) * n], n + 2, n).is_none());
        let mut nan = good;
        nan[3] = f32::NAN;
        assert!(Dft::detect(&nan, n + 2, n).is_none());
    }
}
