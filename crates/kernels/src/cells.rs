//! The cells, once a register block's pre-activations are summed:
//!
//! ```text
//! LSTM  i = σ(a_i + p_i c)  f = σ(a_f + p_f c) | 1 - i  g = tanh(a_g)
//!       c' = f c + i g      o = σ(a_o + p_o c')          h' = o tanh(c')  (then W_hr h')
//! GRU   r = σ(x_r + h_r)    z = σ(x_z + h_z)
//!       n = tanh(x_n + r (W_hn h + b_hn))   or   tanh(x_n + W_hn (r h) + b_hn)
//!       h' = (1 - z) n + z h
//! RNN   h' = tanh(a) | max(a, 0)
//! ```
//! (`a` = input part + hidden part + biases; `clip` clamps each pre-activation.)
// Register blocks are indexed [row][panel][gate] across several arrays at once;
// index loops over the const bounds read like the math.
#![allow(clippy::needless_range_loop)]

use lstmrt_format::CellKind;

use crate::microkernel::{accumulate, load_panels};
use crate::simd::{LANES, Simd, Weight, clamp, relu, sigmoid, tanh};
use crate::step::StepCtx;

impl<W: Weight> StepCtx<'_, '_, W> {
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline(never))]
    pub(crate) unsafe fn lstm<S: Simd, const R: usize, const Q: usize>(&self, r0: usize, p0: usize, add_hidden: bool) {
        // SAFETY: rows and panels exist; the state buffers are padded to whole panels.
        unsafe {
            let mut acc = self.input_part::<S, R, Q, 4>(r0, p0);
            if add_hidden {
                let w = &self.k.w_hh;
                let panels = std::array::from_fn(|q| w.panel(p0 + q));
                accumulate::<S, W, R, Q, 4>(&mut acc, panels, w.stride(), self.h_rows::<R>(r0), w.k);
            }
            self.lstm_finish::<S, R, Q>(&acc, r0, p0);
        }
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline(never))]
    pub(crate) unsafe fn projection<S: Simd, const R: usize, const Q: usize>(&self, r0: usize, p0: usize) {
        // SAFETY: `w_hr` is present in this phase; rows and output panels exist.
        unsafe {
            let w = self.k.w_hr.as_ref().expect("projection phase only with w_hr");
            let mut acc = [[[S::zero(); 1]; Q]; R];
            let xs: [*const f32; R] = std::array::from_fn(|r| self.io.r.add((r0 + r) * self.io.c_stride).cast_const());
            accumulate::<S, W, R, Q, 1>(&mut acc, std::array::from_fn(|q| w.panel(p0 + q)), w.stride(), xs, w.k);
            self.projection_finish::<S, R, Q>(&acc, r0, p0);
        }
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline(never))]
    pub(crate) unsafe fn rnn<S: Simd, const R: usize, const Q: usize>(&self, r0: usize, p0: usize, add_hidden: bool) {
        // SAFETY: rows and panels exist.
        unsafe {
            let mut acc = self.input_part::<S, R, Q, 1>(r0, p0);
            if add_hidden {
                let w = &self.k.w_hh;
                let panels = std::array::from_fn(|q| w.panel(p0 + q));
                accumulate::<S, W, R, Q, 1>(&mut acc, panels, w.stride(), self.h_rows::<R>(r0), w.k);
            }
            self.rnn_finish::<S, R, Q>(&acc, r0, p0);
        }
    }

    /// GRU, PyTorch form: `n = tanh(x_n + r (W_hn h + b_hn))`.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline(never))]
    pub(crate) unsafe fn gru<S: Simd, const R: usize, const Q: usize>(&self, r0: usize, p0: usize) {
        // SAFETY: rows and panels exist.
        unsafe {
            let x = self.input_part::<S, R, Q, 3>(r0, p0);
            let mut acc = self.bias_h_part::<S, R, Q, 3>(p0);
            let w = &self.k.w_hh;
            accumulate::<S, W, R, Q, 3>(
                &mut acc,
                std::array::from_fn(|q| w.panel(p0 + q)),
                w.stride(),
                self.h_rows::<R>(r0),
                w.k,
            );
            self.gru_finish::<S, R, Q>(&x, &acc, r0, p0);
        }
    }

    /// GRU, ONNX form, first pass: `r`, `z`; stores `r h` (for the second
    /// pass's broadcast) in `io.r` and `z` in `io.c`.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline(never))]
    pub(crate) unsafe fn gru_reset_gates<S: Simd, const R: usize, const Q: usize>(&self, r0: usize, p0: usize) {
        // SAFETY: rows and panels exist; this form always has a precomputed source.
        unsafe {
            let x = self.input_part::<S, R, Q, 3>(r0, p0);
            let mut acc = first_two::<S, R, Q>(&x);
            let w = &self.k.w_hh;
            accumulate::<S, W, R, Q, 2>(
                &mut acc,
                std::array::from_fn(|q| w.panel(p0 + q)),
                w.stride(),
                self.h_rows::<R>(r0),
                w.k,
            );
            self.gru_reset_finish::<S, R, Q>(&acc, r0, p0);
        }
    }

    /// GRU, ONNX form, second pass: `n = tanh(x_n + W_hn (r h) + b_hn)`, `h'`.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline(never))]
    pub(crate) unsafe fn gru_candidate<S: Simd, const R: usize, const Q: usize>(&self, r0: usize, p0: usize) {
        // SAFETY: rows and panels exist; `io.r` holds `r h` of every panel (synced).
        unsafe {
            let x = self.input_part::<S, R, Q, 3>(r0, p0);
            let mut acc = self.b_hn_part::<S, R, Q>(p0);
            let w = &self.k.w_hh;
            let rh: [*const f32; R] = std::array::from_fn(|r| self.io.r.add((r0 + r) * self.io.c_stride).cast_const());
            // Gate n is the third 16-element block of each input index.
            let wn: [*const W; Q] = std::array::from_fn(|q| w.panel(p0 + q).add(2 * LANES));
            accumulate::<S, W, R, Q, 1>(&mut acc, wn, w.stride(), rh, w.k);
            self.gru_candidate_finish::<S, R, Q>(&x, &acc, r0, p0);
        }
    }
}

/// The first two gates (`r`, `z`) of a GRU block's three.
#[inline(always)]
pub(crate) fn first_two<S: Simd, const R: usize, const Q: usize>(x: &[[[S::V; 3]; Q]; R]) -> [[[S::V; 2]; Q]; R] {
    std::array::from_fn(|r| std::array::from_fn(|q| [x[r][q][0], x[r][q][1]]))
}

/// The cells' second halves, from summed pre-activations on. They do not
/// read weights, so the int8 path (which sums its own) shares them.
impl<W> StepCtx<'_, '_, W> {
    /// GRU's `b_h` (`0, 0, b_hn`) as the starting value of the hidden part.
    #[inline(always)]
    pub(crate) unsafe fn bias_h_part<S: Simd, const R: usize, const Q: usize, const G: usize>(
        &self,
        p0: usize,
    ) -> [[[S::V; G]; Q]; R] {
        // SAFETY: panels p0..p0+Q exist in `bias_h`.
        unsafe {
            let mut acc = [[[S::zero(); G]; Q]; R];
            for row_acc in acc.iter_mut() {
                load_panels::<S, Q, G>(row_acc, self.k.bias_h.as_ptr(), p0);
            }
            acc
        }
    }

    /// GRU's `b_hn` alone, the starting value of `W_hn (r h)`.
    #[inline(always)]
    pub(crate) unsafe fn b_hn_part<S: Simd, const R: usize, const Q: usize>(&self, p0: usize) -> [[[S::V; 1]; Q]; R] {
        // SAFETY: panels p0..p0+Q of 3 gates exist in `bias_h`.
        unsafe {
            let b = self.k.bias_h.as_ptr();
            std::array::from_fn(|_| std::array::from_fn(|q| [S::load(b.add(((p0 + q) * 3 + 2) * LANES))]))
        }
    }

    /// LSTM: gates, `c'`, and `h'` (or `o tanh(c')` before a projection).
    #[inline(always)]
    pub(crate) unsafe fn lstm_finish<S: Simd, const R: usize, const Q: usize>(
        &self,
        acc: &[[[S::V; 4]; Q]; R],
        r0: usize,
        p0: usize,
    ) {
        let k = self.k;
        // SAFETY: rows and panels exist; the state buffers are padded to whole panels.
        unsafe {
            let clip = k.clip.map(|c| S::splat(c));
            let one = S::splat(1.0);
            for (r, row_acc) in acc.iter().enumerate() {
                let row = r0 + r;
                for (q, a) in row_acc.iter().enumerate() {
                    let p = p0 + q;
                    let c_ptr = self.io.c.add(row * self.io.c_stride + p * LANES);
                    let c = S::load(c_ptr);
                    let [mut ai, mut af, mut ag, mut ao] = *a;
                    let peep = k.peephole.map(|pp| pp[p * 3 * LANES..].as_ptr());
                    if let Some(pp) = peep {
                        ai = S::fma(S::load(pp), c, ai);
                        af = S::fma(S::load(pp.add(LANES)), c, af);
                    }
                    if let Some(l) = clip {
                        ai = clamp::<S>(ai, l);
                        af = clamp::<S>(af, l);
                        ag = clamp::<S>(ag, l);
                    }
                    let i = sigmoid::<S>(ai);
                    let f = if k.input_forget { S::sub(one, i) } else { sigmoid::<S>(af) };
                    let g = tanh::<S>(ag);
                    let c_new = S::fma(f, c, S::mul(i, g));
                    S::store(c_ptr, c_new);
                    if let Some(pp) = peep {
                        ao = S::fma(S::load(pp.add(2 * LANES)), c_new, ao);
                    }
                    if let Some(l) = clip {
                        ao = clamp::<S>(ao, l);
                    }
                    let h = S::mul(sigmoid::<S>(ao), tanh::<S>(c_new));
                    if k.w_hr.is_some() {
                        self.emit::<S>(self.io.r, self.io.c_stride, row, p, h, k.hidden);
                    } else {
                        self.emit::<S>(self.h_new, self.io.h_stride, row, p, h, k.out_size);
                    }
                }
            }
        }
    }

    /// LSTM projection: the summed `W_hr (o tanh(c'))` is `h'`.
    #[inline(always)]
    pub(crate) unsafe fn projection_finish<S: Simd, const R: usize, const Q: usize>(
        &self,
        acc: &[[[S::V; 1]; Q]; R],
        r0: usize,
        p0: usize,
    ) {
        // SAFETY: rows and output panels exist.
        unsafe {
            for (r, row_acc) in acc.iter().enumerate() {
                for (q, a) in row_acc.iter().enumerate() {
                    self.emit::<S>(self.h_new, self.io.h_stride, r0 + r, p0 + q, a[0], self.k.out_size);
                }
            }
        }
    }

    /// RNN: `h' = tanh(a)` or `max(a, 0)`.
    #[inline(always)]
    pub(crate) unsafe fn rnn_finish<S: Simd, const R: usize, const Q: usize>(
        &self,
        acc: &[[[S::V; 1]; Q]; R],
        r0: usize,
        p0: usize,
    ) {
        let k = self.k;
        // SAFETY: rows and panels exist.
        unsafe {
            for (r, row_acc) in acc.iter().enumerate() {
                for (q, a) in row_acc.iter().enumerate() {
                    let mut v = a[0];
                    if let Some(c) = k.clip {
                        v = clamp::<S>(v, S::splat(c));
                    }
                    let h = if k.cell == CellKind::RnnTanh { tanh::<S>(v) } else { relu::<S>(v) };
                    self.emit::<S>(self.h_new, self.io.h_stride, r0 + r, p0 + q, h, k.out_size);
                }
            }
        }
    }

    /// GRU, PyTorch form, from the input part `x` and the hidden part `hg`
    /// (`W_h h + b_h`).
    #[inline(always)]
    pub(crate) unsafe fn gru_finish<S: Simd, const R: usize, const Q: usize>(
        &self,
        x: &[[[S::V; 3]; Q]; R],
        hg: &[[[S::V; 3]; Q]; R],
        r0: usize,
        p0: usize,
    ) {
        let k = self.k;
        // SAFETY: rows and panels exist.
        unsafe {
            for r in 0..R {
                for q in 0..Q {
                    let (row, p) = (r0 + r, p0 + q);
                    let (xg, hg) = (x[r][q], hg[r][q]);
                    let mut ar = S::add(xg[0], hg[0]);
                    let mut az = S::add(xg[1], hg[1]);
                    if let Some(c) = k.clip {
                        ar = clamp::<S>(ar, S::splat(c));
                        az = clamp::<S>(az, S::splat(c));
                    }
                    let rg = sigmoid::<S>(ar);
                    let z = sigmoid::<S>(az);
                    let mut an = S::fma(rg, hg[2], xg[2]);
                    if let Some(c) = k.clip {
                        an = clamp::<S>(an, S::splat(c));
                    }
                    let n = tanh::<S>(an);
                    let h_old = S::load(self.h_prev.add(row * self.io.h_stride + p * LANES));
                    // h' = (1 - z) n + z h = n + z (h - n)
                    let h = S::fma(z, S::sub(h_old, n), n);
                    self.emit::<S>(self.h_new, self.io.h_stride, row, p, h, k.out_size);
                }
            }
        }
    }

    /// GRU, ONNX form, first pass, from `r` and `z`'s summed pre-activations.
    #[inline(always)]
    pub(crate) unsafe fn gru_reset_finish<S: Simd, const R: usize, const Q: usize>(
        &self,
        acc: &[[[S::V; 2]; Q]; R],
        r0: usize,
        p0: usize,
    ) {
        // SAFETY: rows and panels exist.
        unsafe {
            for r in 0..R {
                for q in 0..Q {
                    let (row, p) = (r0 + r, p0 + q);
                    let [mut ar, mut az] = acc[r][q];
                    if let Some(c) = self.k.clip {
                        ar = clamp::<S>(ar, S::splat(c));
                        az = clamp::<S>(az, S::splat(c));
                    }
                    let at = row * self.io.c_stride + p * LANES;
                    let h_old = S::load(self.h_prev.add(row * self.io.h_stride + p * LANES));
                    S::store(self.io.r.add(at), S::mul(sigmoid::<S>(ar), h_old));
                    S::store(self.io.c.add(at), sigmoid::<S>(az));
                }
            }
        }
    }

    /// GRU, ONNX form, second pass, from the input part `x` and the summed
    /// `W_hn (r h) + b_hn`.
    #[inline(always)]
    pub(crate) unsafe fn gru_candidate_finish<S: Simd, const R: usize, const Q: usize>(
        &self,
        x: &[[[S::V; 3]; Q]; R],
        acc: &[[[S::V; 1]; Q]; R],
        r0: usize,
        p0: usize,
    ) {
        // SAFETY: rows and panels exist; `io.c` holds `z` from the first pass.
        unsafe {
            for r in 0..R {
                for q in 0..Q {
                    let (row, p) = (r0 + r, p0 + q);
                    let mut an = S::add(x[r][q][2], acc[r][q][0]);
                    if let Some(c) = self.k.clip {
                        an = clamp::<S>(an, S::splat(c));
                    }
                    let n = tanh::<S>(an);
                    let at = row * self.io.c_stride + p * LANES;
                    let z = S::load(self.io.c.add(at));
                    let h_old = S::load(self.h_prev.add(row * self.io.h_stride + p * LANES));
                    let h = S::fma(z, S::sub(h_old, n), n);
                    self.emit::<S>(self.h_new, self.io.h_stride, row, p, h, self.k.out_size);
                }
            }
        }
    }
}
