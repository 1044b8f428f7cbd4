//! The number type the network is computed in, and the one matrix product
//! everything else is built from.
//!
//! Training runs in f32; the gradient check runs the very same code in f64,
//! so the analytic gradients it checks are the ones training uses.

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

/// f32 or f64.
pub trait Real:
    Copy
    + Default
    + Send
    + Sync
    + PartialEq
    + PartialOrd
    + Debug
    + Display
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + Sum
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    fn from_f32(v: f32) -> Self;
    fn to_f32(self) -> f32;
    fn exp(self) -> Self;
    fn tanh(self) -> Self;
    fn ln(self) -> Self;
    fn sqrt(self) -> Self;
    fn abs(self) -> Self;
    fn max(self, other: Self) -> Self;

    /// The logistic function `1 / (1 + e^-x)`.
    #[inline(always)]
    fn sigmoid(self) -> Self {
        Self::ONE / (Self::ONE + (-self).exp())
    }

    /// `C = alpha A B + beta C` on raw strided storage (matrixmultiply's contract).
    ///
    /// # Safety
    /// Every element `(i, l)` of A at `a + i*rsa + l*csa` for `i < m, l < k`, of B
    /// likewise, and of C at `c + i*rsc + j*csc`, must be in bounds; C must not
    /// alias A or B.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
}

macro_rules! impl_real {
    ($t:ty, $gemm:path) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn from_f32(v: f32) -> Self {
                v as $t
            }
            #[inline(always)]
            fn to_f32(self) -> f32 {
                self as f32
            }
            #[inline(always)]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline(always)]
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            #[inline(always)]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline(always)]
            fn max(self, other: Self) -> Self {
                <$t>::max(self, other)
            }
            unsafe fn gemm_raw(
                m: usize,
                k: usize,
                n: usize,
                alpha: Self,
                a: *const Self,
                rsa: isize,
                csa: isize,
                b: *const Self,
                rsb: isize,
                csb: isize,
                beta: Self,
                c: *mut Self,
                rsc: isize,
                csc: isize,
            ) {
                // SAFETY: `gemm_raw`'s contract (every element of A, B and C in
                // bounds, C aliasing neither) is the one `$gemm` requires.
                unsafe { $gemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
            }
        }
    };
}

impl_real!(f32, matrixmultiply::sgemm);
impl_real!(f64, matrixmultiply::dgemm);

/// A read-only matrix view of `rows x cols` elements; element `(i, j)` is
/// `data[i * rs + j * cs]`. Transposing swaps the strides, so `A^T B` needs no copy.
#[derive(Clone, Copy, Debug)]
pub struct Mat<'a, R> {
    data: &'a [R],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a, R: Real> Mat<'a, R> {
    /// The row-major matrix in the first `rows * cols` elements of `data`.
    ///
    /// # Panics
    /// If `data` is shorter than `rows * cols`.
    pub fn new(data: &'a [R], rows: usize, cols: usize) -> Self {
        assert!(data.len() >= rows * cols, "matrix view {rows}x{cols} over {} elements", data.len());
        Mat { data, rows, cols, rs: cols, cs: 1 }
    }

    /// The transposed view.
    pub fn t(self) -> Self {
        Mat { data: self.data, rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }
}

/// `C = alpha A B + beta C`, C row-major `[A.rows, B.cols]` in the first
/// elements of `c`. With `beta == 0` the old contents of C are ignored.
///
/// # Panics
/// If the inner dimensions differ or `c` is too short.
pub fn gemm<R: Real>(alpha: R, a: Mat<'_, R>, b: Mat<'_, R>, beta: R, c: &mut [R]) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows, "gemm inner dimensions {m}x{k} * {}x{n}", b.rows);
    assert!(c.len() >= m * n, "gemm output {m}x{n} in {} elements", c.len());
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        let c = &mut c[..m * n];
        if beta == R::ZERO {
            c.fill(R::ZERO)
        } else {
            c.iter_mut().for_each(|v| *v *= beta)
        }
        return;
    }
    // SAFETY: `Mat::new` checked `rows * cols <= data.len()` for the row-major
    // view, so every (i, l) of A and B (transposed or not) is in bounds; C is
    // checked above and is a `&mut` distinct from the shared A and B.
    unsafe {
        R::gemm_raw(
            m,
            k,
            n,
            alpha,
            a.data.as_ptr(),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr(),
            b.rs as isize,
            b.cs as isize,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        )
    }
}

/// Adds the column sums of the row-major `[rows, cols]` matrix `x` to `out` (`[cols]`).
pub fn add_column_sums<R: Real>(x: &[R], cols: usize, out: &mut [R]) {
    for row in x.chunks_exact(cols) {
        for (o, &v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|l| a[i * k + l] * b[l * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn gemm_with_transposed_views_matches_naive_product() {
        let (m, k, n) = (3, 5, 4);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.11).cos()).collect();
        let want = naive(&a, &b, m, k, n);
        let mut c = vec![1.0; m * n];
        gemm(1.0, Mat::new(&a, m, k), Mat::new(&b, k, n), 0.0, &mut c);
        c.iter().zip(&want).for_each(|(x, y)| assert!((x - y).abs() < 1e-12));
        // A^T stored as [k, m]; (A^T)^T B == A B.
        let at: Vec<f64> = (0..k * m).map(|idx| a[(idx % m) * k + idx / m]).collect();
        let mut c2 = vec![0.5; m * n];
        gemm(2.0, Mat::new(&at, k, m).t(), Mat::new(&b, k, n), 1.0, &mut c2);
        c2.iter().zip(&want).for_each(|(x, y)| assert!((x - (0.5 + 2.0 * y)).abs() < 1e-12));
    }

    #[test]
    fn gemm_with_empty_inner_dimension_scales_output() {
        let mut c = vec![2.0f32; 6];
        gemm(1.0, Mat::new(&[], 2, 0), Mat::new(&[], 0, 3), 0.5, &mut c);
        assert_eq!(c, vec![1.0; 6]);
    }
}
