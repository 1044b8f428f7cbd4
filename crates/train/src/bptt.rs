//! The forward pass and backpropagation through time, for LSTM, GRU and tanh
//! RNN stacks with optional embedding, LSTM projection and linear head.
//!
//! Batches are time-major: row `t * B + b` of every `[T*B, ...]` buffer is
//! sequence `b` at step `t`. The work is shaped as GEMMs (via [`crate::real::gemm`]):
//!
//! ```text
//! forward, per layer:  Gx = X W_ih^T + b           one GEMM over all T*B rows
//!            per step: Gh = h_{t-1} W_hh^T          [B, P] x [P, G*H]
//!                      gates, c, h from Gx + Gh     elementwise (equations below)
//! backward, per step:  dh_{t-1} = dG_t W_hh         [B, G*H] x [G*H, P]
//!            per layer: dW_ih = dG^T X, dW_hh = dG_{1..}^T H_{..T-1}, dX = dG W_ih
//! ```
//!
//! LSTM (gate blocks `i, f, g, o` as in PyTorch):
//! `c_t = f ⊙ c_{t-1} + i ⊙ g`, `r_t = o ⊙ tanh(c_t)`, `h_t = W_hr r_t` (or `r_t`).
//! GRU: `n = tanh(Gx_n + r ⊙ Gh_n)`, `h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}`.
//! RNN: `h_t = tanh(Gx + Gh)`. Initial states are zero.
//!
//! Everything is generic over [`Real`]: training runs it in f32, the gradient
//! check in f64.

use crate::net::{Cell, Input, Loss, Net};
use crate::real::{Mat, Real, add_column_sums, gemm};

/// Marks a step without a class target.
pub const NO_CLASS: u32 = u32::MAX;

/// What enters layer 0, time-major.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchInputs {
    /// `[T*B]` token ids (padding steps hold any valid id).
    Tokens(Vec<u32>),
    /// `[T*B, features]`.
    Dense(Vec<f32>),
}

/// Targets at some positions `t * B + b` of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetValues {
    /// One class per position.
    Classes(Vec<u32>),
    /// `[positions, outputs]` real targets.
    Values(Vec<f32>),
}

/// A batch of sequences padded to a common length `steps`. Steps after a
/// sequence's end are computed but carry no target, so they do not affect
/// the loss or its gradient.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub steps: usize,
    pub batch: usize,
    pub inputs: BatchInputs,
    /// Increasing positions `t * batch + b` that carry a target.
    pub positions: Vec<usize>,
    pub targets: TargetValues,
}

/// Summed loss and accuracy counts over a batch's targets.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LossSum {
    pub loss: f64,
    pub correct: usize,
    pub count: usize,
}

impl LossSum {
    pub fn add(&mut self, other: LossSum) {
        self.loss += other.loss;
        self.correct += other.correct;
        self.count += other.count;
    }

    pub fn mean_loss(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.loss / self.count as f64 }
    }

    pub fn accuracy(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.correct as f64 / self.count as f64 }
    }
}

/// Options of the backward pass.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BackwardOptions {
    /// Truncated BPTT: no gradient flows from step `t` to `t - 1` when `t` is
    /// a multiple of this (0 = full BPTT).
    pub truncate: usize,
    /// Record `||dL/dh_t||` of the top layer for every position (see
    /// [`Workspace::dh_norms`]).
    pub record_dh_norms: bool,
}

/// Values one layer keeps from the forward pass for the backward pass.
#[derive(Debug, Default)]
struct LayerCache<R> {
    /// `[T*B, G*H]`: gate activations (LSTM `i, f, g, o`; GRU `r, z, n`; RNN `h`).
    acts: Vec<R>,
    /// `[T*B, H]`: LSTM cell state.
    c: Vec<R>,
    /// `[T*B, H]`: LSTM `tanh(c)`.
    tc: Vec<R>,
    /// `[T*B, H]`: LSTM `o ⊙ tanh(c)` before the projection (projection only).
    r: Vec<R>,
    /// `[T*B, H]`: GRU `W_hn h_{t-1} + b_hn`.
    ghn: Vec<R>,
    /// `[T*B, P]`: the layer's output `h`.
    h: Vec<R>,
}

/// Buffers of one forward/backward pass, reused across batches.
#[derive(Debug, Default)]
pub struct Workspace<R> {
    steps: usize,
    batch: usize,
    x0: Vec<R>,
    layers: Vec<LayerCache<R>>,
    /// `[positions, P]`: the top layer's `h` at the target positions.
    hsel: Vec<R>,
    /// `[positions, prediction_size]`: head outputs before any softmax.
    pub predictions: Vec<R>,
    d_pred: Vec<R>,
    gh: Vec<R>,
    dh_layer: Vec<R>,
    dx: Vec<R>,
    dg: Vec<R>,
    dgh: Vec<R>,
    dh_tot: Vec<R>,
    dh_rec: Vec<R>,
    dc_rec: Vec<R>,
    dr: Vec<R>,
    /// `[T*B]`: `||dL/dh_t||` of the top layer at every position, where `L`
    /// is the summed loss the backward pass was given; filled when
    /// [`BackwardOptions::record_dh_norms`] is set.
    pub dh_norms: Vec<f64>,
    /// `[T*B]`: `||dL/dc_t||` of the top layer's LSTM cell state (the total
    /// derivative, through `h_t` and through `c_{t+1}`); LSTM only.
    pub dc_norms: Vec<f64>,
}

impl<R: Real> Workspace<R> {
    /// Empty buffers; they grow to the largest batch seen and are reused.
    pub fn new() -> Self {
        Self::default()
    }
}

fn resize<R: Real>(v: &mut Vec<R>, n: usize) {
    v.clear();
    v.resize(n, R::ZERO);
}

/// Runs the network over `batch` and leaves the outputs at the target
/// positions in `ws.predictions` (logits for cross-entropy).
pub fn forward<R: Real>(net: &Net, params: &[R], batch: &Batch, ws: &mut Workspace<R>) {
    let spec = &net.spec;
    let (t_len, b) = (batch.steps, batch.batch);
    let rows = t_len * b;
    assert!(t_len > 0 && b > 0, "empty batch");
    ws.steps = t_len;
    ws.batch = b;

    // Layer 0's input vectors.
    let width = spec.input.width();
    resize(&mut ws.x0, rows * width);
    match (&batch.inputs, spec.input) {
        (BatchInputs::Tokens(ids), Input::Tokens { vocab, embed }) => {
            assert_eq!(ids.len(), rows, "token batch is not [T*B]");
            for (row, &id) in ws.x0.chunks_exact_mut(width).zip(ids) {
                let id = id as usize;
                assert!(id < vocab, "token id {id} outside the vocabulary of {vocab}");
                match net.layout.embedding {
                    Some(off) => row.copy_from_slice(&params[off + id * embed..][..embed]),
                    None => row[id] = R::ONE,
                }
            }
        }
        (BatchInputs::Dense(xs), Input::Dense { .. }) => {
            assert_eq!(xs.len(), rows * width, "dense batch is not [T*B, features]");
            ws.x0.iter_mut().zip(xs).for_each(|(d, &s)| *d = R::from_f32(s));
        }
        _ => panic!("batch inputs do not match the network's input kind"),
    }

    ws.layers.resize_with(spec.layers, LayerCache::default);
    for l in 0..spec.layers {
        let (lower, upper) = ws.layers.split_at_mut(l);
        let x: &[R] = if l == 0 { &ws.x0 } else { &lower[l - 1].h };
        layer_forward(net, params, l, x, t_len, b, &mut upper[0], &mut ws.gh);
    }

    // Gather the top layer's outputs at the target positions and apply the head.
    let p = spec.output_size();
    let n = batch.positions.len();
    let top = &ws.layers[spec.layers - 1].h;
    resize(&mut ws.hsel, n * p);
    for (dst, &pos) in ws.hsel.chunks_exact_mut(p).zip(&batch.positions) {
        dst.copy_from_slice(&top[pos * p..][..p]);
    }
    match (net.layout.head_weight, net.layout.head_bias, spec.head) {
        (Some(w), Some(bias), Some(head)) => {
            resize(&mut ws.predictions, n * head.out);
            gemm(
                R::ONE,
                Mat::new(&ws.hsel, n, p),
                Mat::new(&params[w..], head.out, p).t(),
                R::ZERO,
                &mut ws.predictions,
            );
            for row in ws.predictions.chunks_exact_mut(head.out) {
                row.iter_mut().zip(&params[bias..bias + head.out]).for_each(|(y, &bv)| *y += bv);
            }
        }
        _ => {
            ws.predictions.clear();
            ws.predictions.extend_from_slice(&ws.hsel);
        }
    }
}

/// One layer over the whole sequence; `x` is `[T*B, I]`.
#[allow(clippy::too_many_arguments)]
fn layer_forward<R: Real>(
    net: &Net,
    params: &[R],
    l: usize,
    x: &[R],
    t_len: usize,
    b: usize,
    cache: &mut LayerCache<R>,
    gh: &mut Vec<R>,
) {
    let spec = &net.spec;
    let slots = &net.layout.layers[l];
    let (h, p, i_size) = (spec.hidden, spec.output_size(), spec.layer_input(l));
    let gh_w = spec.cell.gates() * h;
    let rows = t_len * b;
    let w_hh = &params[slots.w_hh..slots.w_hh + gh_w * p];
    let b_ih = &params[slots.b_ih..slots.b_ih + gh_w];
    let b_hh = &params[slots.b_hh..slots.b_hh + gh_w];

    // Gx for every step at once; LSTM and RNN fold both biases in here, GRU
    // keeps b_hh on the hidden side because r multiplies W_hn h + b_hn.
    resize(&mut cache.acts, rows * gh_w);
    gemm(
        R::ONE,
        Mat::new(x, rows, i_size),
        Mat::new(&params[slots.w_ih..], gh_w, i_size).t(),
        R::ZERO,
        &mut cache.acts,
    );
    let fold_hh = spec.cell != Cell::Gru;
    for row in cache.acts.chunks_exact_mut(gh_w) {
        for (k, v) in row.iter_mut().enumerate() {
            *v += b_ih[k];
            if fold_hh {
                *v += b_hh[k];
            }
        }
    }
    resize(&mut cache.h, rows * p);
    if spec.cell == Cell::Lstm {
        resize(&mut cache.c, rows * h);
        resize(&mut cache.tc, rows * h);
        if spec.proj > 0 {
            resize(&mut cache.r, rows * h);
        }
    }
    if spec.cell == Cell::Gru {
        resize(&mut cache.ghn, rows * h);
    }
    resize(gh, b * gh_w);

    for t in 0..t_len {
        // Gh = h_{t-1} W_hh^T (+ b_hh for GRU); zero state before step 0.
        if t == 0 {
            gh.fill(R::ZERO);
        } else {
            gemm(R::ONE, Mat::new(&cache.h[(t - 1) * b * p..], b, p), Mat::new(w_hh, gh_w, p).t(), R::ZERO, gh);
        }
        if !fold_hh {
            for row in gh.chunks_exact_mut(gh_w) {
                row.iter_mut().zip(b_hh).for_each(|(v, &bv)| *v += bv);
            }
        }
        let acts_t = &mut cache.acts[t * b * gh_w..(t + 1) * b * gh_w];
        match spec.cell {
            Cell::Lstm => {
                let (c_done, c_rest) = cache.c.split_at_mut(t * b * h);
                let c_prev = (t > 0).then(|| &c_done[(t - 1) * b * h..]);
                let c_t = &mut c_rest[..b * h];
                let tc_t = &mut cache.tc[t * b * h..(t + 1) * b * h];
                // Without projection r is h itself.
                let r_t = if spec.proj > 0 {
                    &mut cache.r[t * b * h..(t + 1) * b * h]
                } else {
                    &mut cache.h[t * b * p..(t + 1) * b * p]
                };
                for bi in 0..b {
                    let a = &mut acts_t[bi * gh_w..(bi + 1) * gh_w];
                    let g_row = &gh[bi * gh_w..(bi + 1) * gh_w];
                    for j in 0..h {
                        let i = (a[j] + g_row[j]).sigmoid();
                        let f = (a[h + j] + g_row[h + j]).sigmoid();
                        let g = (a[2 * h + j] + g_row[2 * h + j]).tanh();
                        let o = (a[3 * h + j] + g_row[3 * h + j]).sigmoid();
                        let cp = c_prev.map_or(R::ZERO, |c| c[bi * h + j]);
                        let c = f * cp + i * g;
                        let tc = c.tanh();
                        a[j] = i;
                        a[h + j] = f;
                        a[2 * h + j] = g;
                        a[3 * h + j] = o;
                        c_t[bi * h + j] = c;
                        tc_t[bi * h + j] = tc;
                        r_t[bi * h + j] = o * tc;
                    }
                }
                if let Some(w_hr) = slots.w_hr {
                    let (r_t, h_t) = (&cache.r[t * b * h..(t + 1) * b * h], &mut cache.h[t * b * p..(t + 1) * b * p]);
                    gemm(R::ONE, Mat::new(r_t, b, h), Mat::new(&params[w_hr..], p, h).t(), R::ZERO, h_t);
                }
            }
            Cell::Gru => {
                let (h_done, h_rest) = cache.h.split_at_mut(t * b * p);
                let h_prev = (t > 0).then(|| &h_done[(t - 1) * b * p..]);
                let ghn_t = &mut cache.ghn[t * b * h..(t + 1) * b * h];
                for bi in 0..b {
                    let a = &mut acts_t[bi * gh_w..(bi + 1) * gh_w];
                    let g_row = &gh[bi * gh_w..(bi + 1) * gh_w];
                    for j in 0..h {
                        let r = (a[j] + g_row[j]).sigmoid();
                        let z = (a[h + j] + g_row[h + j]).sigmoid();
                        let n = (a[2 * h + j] + r * g_row[2 * h + j]).tanh();
                        let hp = h_prev.map_or(R::ZERO, |hp| hp[bi * h + j]);
                        a[j] = r;
                        a[h + j] = z;
                        a[2 * h + j] = n;
                        ghn_t[bi * h + j] = g_row[2 * h + j];
                        h_rest[bi * h + j] = (R::ONE - z) * n + z * hp;
                    }
                }
            }
            Cell::Rnn => {
                let h_t = &mut cache.h[t * b * p..(t + 1) * b * p];
                for ((a, &g), out) in acts_t.iter_mut().zip(gh.iter()).zip(h_t) {
                    *a = (*a + g).tanh();
                    *out = *a;
                }
            }
        }
    }
}

/// Loss, accuracy counts and (optionally) `scale * dLoss/dprediction` for
/// the predictions of the last [`forward`]. The loss is summed over positions.
pub fn loss<R: Real>(net: &Net, batch: &Batch, ws: &mut Workspace<R>, grad_scale: Option<R>) -> LossSum {
    let width = net.spec.prediction_size();
    let n = batch.positions.len();
    let mut sum = LossSum { loss: 0.0, correct: 0, count: n };
    if grad_scale.is_some() {
        resize(&mut ws.d_pred, n * width);
    }
    for k in 0..n {
        let y = &ws.predictions[k * width..(k + 1) * width];
        let dy = grad_scale.map(|_| &mut ws.d_pred[k * width..(k + 1) * width]);
        match (net.spec.loss, &batch.targets) {
            (Loss::CrossEntropy, TargetValues::Classes(classes)) => {
                let class = classes[k] as usize;
                assert!(class < width, "class {class} outside the {width} outputs");
                let max = y.iter().copied().fold(y[0], R::max);
                let sum_exp: R = y.iter().map(|&v| (v - max).exp()).sum();
                let lse = max + sum_exp.ln();
                sum.loss += (lse - y[class]).to_f64();
                // Ties count as wrong unless the target is the first maximum.
                let argmax = (0..width).fold(0, |best, j| if y[j] > y[best] { j } else { best });
                sum.correct += usize::from(argmax == class);
                if let (Some(dy), Some(scale)) = (dy, grad_scale) {
                    for j in 0..width {
                        let p = (y[j] - lse).exp();
                        dy[j] = scale * (if j == class { p - R::ONE } else { p });
                    }
                }
            }
            (Loss::SquaredError { tolerance }, TargetValues::Values(values)) => {
                let target = &values[k * width..(k + 1) * width];
                let mut ok = true;
                let mut l = R::ZERO;
                for j in 0..width {
                    let e = y[j] - R::from_f32(target[j]);
                    l += e * e;
                    ok &= e.abs().to_f64() <= tolerance as f64;
                }
                sum.loss += l.to_f64();
                sum.correct += usize::from(ok);
                if let (Some(dy), Some(scale)) = (dy, grad_scale) {
                    for j in 0..width {
                        dy[j] = scale * R::from_f64(2.0) * (y[j] - R::from_f32(target[j]));
                    }
                }
            }
            _ => panic!("the batch's targets do not match the network's loss"),
        }
    }
    sum
}

/// Backpropagates the gradient [`loss`] left in the workspace through the
/// head and every layer and step, adding `dLoss/dparams` into `grad`.
pub fn backward<R: Real>(
    net: &Net,
    params: &[R],
    batch: &Batch,
    ws: &mut Workspace<R>,
    grad: &mut [R],
    opts: &BackwardOptions,
) {
    let spec = &net.spec;
    let (t_len, b) = (ws.steps, ws.batch);
    let rows = t_len * b;
    let p = spec.output_size();
    let n = batch.positions.len();

    // Head: dW = dY^T Hsel, db = sum dY, dHsel = dY W.
    resize(&mut ws.dh_layer, rows * p);
    let dhsel: Vec<R> = match (net.layout.head_weight, net.layout.head_bias, spec.head) {
        (Some(w), Some(bias), Some(head)) => {
            let out = head.out;
            gemm(R::ONE, Mat::new(&ws.d_pred, n, out).t(), Mat::new(&ws.hsel, n, p), R::ONE, &mut grad[w..w + out * p]);
            add_column_sums(&ws.d_pred[..n * out], out, &mut grad[bias..bias + out]);
            let mut d = vec![R::ZERO; n * p];
            gemm(R::ONE, Mat::new(&ws.d_pred, n, out), Mat::new(&params[w..], out, p), R::ZERO, &mut d);
            d
        }
        _ => ws.d_pred[..n * p].to_vec(),
    };
    for (k, &pos) in batch.positions.iter().enumerate() {
        let dst = &mut ws.dh_layer[pos * p..(pos + 1) * p];
        dst.iter_mut().zip(&dhsel[k * p..(k + 1) * p]).for_each(|(d, &v)| *d += v);
    }
    if opts.record_dh_norms {
        ws.dh_norms.clear();
        ws.dh_norms.resize(rows, 0.0);
        ws.dc_norms.clear();
        if spec.cell == Cell::Lstm {
            ws.dc_norms.resize(rows, 0.0);
        }
    }

    for l in (0..spec.layers).rev() {
        layer_backward(net, params, l, ws, grad, opts.truncate, opts.record_dh_norms && l + 1 == spec.layers);
        std::mem::swap(&mut ws.dh_layer, &mut ws.dx);
    }
    // dL/dx0 is now in `dh_layer`; scatter it into the embedding rows.
    if let (Some(off), BatchInputs::Tokens(ids), Input::Tokens { embed, .. }) =
        (net.layout.embedding, &batch.inputs, spec.input)
    {
        for (row, &id) in ws.dh_layer.chunks_exact(embed).zip(ids) {
            let dst = &mut grad[off + id as usize * embed..][..embed];
            dst.iter_mut().zip(row).for_each(|(g, &v)| *g += v);
        }
    }
}

/// One layer's backward pass: `ws.dh_layer` holds dLoss/dh for this layer's
/// outputs; on return `ws.dx` holds dLoss/dx for its inputs (for `l > 0` or
/// with an embedding; otherwise it is not computed).
fn layer_backward<R: Real>(
    net: &Net,
    params: &[R],
    l: usize,
    ws: &mut Workspace<R>,
    grad: &mut [R],
    truncate: usize,
    record: bool,
) {
    let spec = &net.spec;
    let slots = &net.layout.layers[l];
    let (t_len, b) = (ws.steps, ws.batch);
    let rows = t_len * b;
    let (h, p, i_size) = (spec.hidden, spec.output_size(), spec.layer_input(l));
    let gh_w = spec.cell.gates() * h;
    let w_hh = &params[slots.w_hh..slots.w_hh + gh_w * p];
    let (lower, upper) = ws.layers.split_at(l);
    let cache = &upper[0];
    let x: &[R] = if l == 0 { &ws.x0 } else { &lower[l - 1].h };
    let gru = spec.cell == Cell::Gru;

    resize(&mut ws.dg, rows * gh_w);
    if gru {
        resize(&mut ws.dgh, rows * gh_w);
    }
    resize(&mut ws.dh_tot, rows * p);
    resize(&mut ws.dh_rec, b * p);
    resize(&mut ws.dc_rec, b * h);
    if spec.proj > 0 {
        resize(&mut ws.dr, b * h);
    }

    for t in (0..t_len).rev() {
        let span_p = t * b * p..(t + 1) * b * p;
        let span_h = t * b * h..(t + 1) * b * h;
        let span_g = t * b * gh_w..(t + 1) * b * gh_w;
        // Total dL/dh_t: from the layer above (or the head) plus from step t+1.
        let dh_t = &mut ws.dh_tot[span_p.clone()];
        for ((d, &above), &rec) in dh_t.iter_mut().zip(&ws.dh_layer[span_p.clone()]).zip(&ws.dh_rec) {
            *d = above + rec;
        }
        if record {
            for (bi, row) in dh_t.chunks_exact(p).enumerate() {
                ws.dh_norms[t * b + bi] = row.iter().map(|v| v.to_f64() * v.to_f64()).sum::<f64>().sqrt();
            }
        }
        let acts_t = &cache.acts[span_g.clone()];
        let dg_t = &mut ws.dg[span_g.clone()];
        match spec.cell {
            Cell::Lstm => {
                let dr: &[R] = match slots.w_hr {
                    Some(w_hr) => {
                        gemm(R::ONE, Mat::new(dh_t, b, p), Mat::new(&params[w_hr..], p, h), R::ZERO, &mut ws.dr);
                        &ws.dr
                    }
                    None => dh_t,
                };
                let tc_t = &cache.tc[span_h.clone()];
                for bi in 0..b {
                    let a = &acts_t[bi * gh_w..(bi + 1) * gh_w];
                    let d = &mut dg_t[bi * gh_w..(bi + 1) * gh_w];
                    for j in 0..h {
                        let (i, f, g, o) = (a[j], a[h + j], a[2 * h + j], a[3 * h + j]);
                        let tc = tc_t[bi * h + j];
                        let cp = if t > 0 { cache.c[((t - 1) * b + bi) * h + j] } else { R::ZERO };
                        let dr = dr[bi * h + j];
                        let dc = ws.dc_rec[bi * h + j] + dr * o * (R::ONE - tc * tc);
                        if record {
                            ws.dc_norms[t * b + bi] += dc.to_f64() * dc.to_f64();
                        }
                        d[j] = dc * g * i * (R::ONE - i);
                        d[h + j] = dc * cp * f * (R::ONE - f);
                        d[2 * h + j] = dc * i * (R::ONE - g * g);
                        d[3 * h + j] = dr * tc * o * (R::ONE - o);
                        ws.dc_rec[bi * h + j] = dc * f;
                    }
                    if record {
                        ws.dc_norms[t * b + bi] = ws.dc_norms[t * b + bi].sqrt();
                    }
                }
            }
            Cell::Gru => {
                let dgh_t = &mut ws.dgh[span_g.clone()];
                let ghn_t = &cache.ghn[span_h.clone()];
                for bi in 0..b {
                    let a = &acts_t[bi * gh_w..(bi + 1) * gh_w];
                    let dx_row = &mut dg_t[bi * gh_w..(bi + 1) * gh_w];
                    let dh_row = &mut dgh_t[bi * gh_w..(bi + 1) * gh_w];
                    for j in 0..h {
                        let (r, z, n) = (a[j], a[h + j], a[2 * h + j]);
                        let hp = if t > 0 { cache.h[((t - 1) * b + bi) * p + j] } else { R::ZERO };
                        let dh = dh_t[bi * p + j];
                        let dpre_n = dh * (R::ONE - z) * (R::ONE - n * n);
                        let dpre_r = dpre_n * ghn_t[bi * h + j] * r * (R::ONE - r);
                        let dpre_z = dh * (hp - n) * z * (R::ONE - z);
                        dx_row[j] = dpre_r;
                        dx_row[h + j] = dpre_z;
                        dx_row[2 * h + j] = dpre_n;
                        dh_row[j] = dpre_r;
                        dh_row[h + j] = dpre_z;
                        dh_row[2 * h + j] = dpre_n * r;
                        // The direct path h_{t-1} -> h_t; W_hh's part is added below.
                        ws.dh_rec[bi * p + j] = dh * z;
                    }
                }
            }
            Cell::Rnn => {
                for ((d, &a), &dh) in dg_t.iter_mut().zip(acts_t).zip(dh_t.iter()) {
                    *d = dh * (R::ONE - a * a);
                }
            }
        }
        // dL/dh_{t-1} through the recurrence, unless truncated here.
        if t > 0 && (truncate == 0 || t % truncate != 0) {
            let (src, beta) = if gru { (&ws.dgh[span_g], R::ONE) } else { (&ws.dg[span_g], R::ZERO) };
            gemm(R::ONE, Mat::new(src, b, gh_w), Mat::new(w_hh, gh_w, p), beta, &mut ws.dh_rec);
        } else {
            ws.dh_rec.fill(R::ZERO);
            ws.dc_rec.fill(R::ZERO);
        }
    }

    // Weight gradients for all steps at once.
    let dgh: &[R] = if gru { &ws.dgh } else { &ws.dg };
    gemm(
        R::ONE,
        Mat::new(&ws.dg, rows, gh_w).t(),
        Mat::new(x, rows, i_size),
        R::ONE,
        &mut grad[slots.w_ih..slots.w_ih + gh_w * i_size],
    );
    // Step t's pre-activation used h_{t-1}: pair dG rows of steps 1.. with h rows of steps ..T-1.
    let shifted = rows.saturating_sub(b);
    gemm(
        R::ONE,
        Mat::new(&dgh[b * gh_w..], shifted, gh_w).t(),
        Mat::new(&cache.h, shifted, p),
        R::ONE,
        &mut grad[slots.w_hh..slots.w_hh + gh_w * p],
    );
    add_column_sums(&ws.dg, gh_w, &mut grad[slots.b_ih..slots.b_ih + gh_w]);
    add_column_sums(dgh, gh_w, &mut grad[slots.b_hh..slots.b_hh + gh_w]);
    if let Some(w_hr) = slots.w_hr {
        gemm(
            R::ONE,
            Mat::new(&ws.dh_tot, rows, p).t(),
            Mat::new(&cache.r, rows, h),
            R::ONE,
            &mut grad[w_hr..w_hr + p * h],
        );
    }

    // dL/dx: the layer below's dL/dh, or the embedding's gradient.
    let embedding = if l == 0 { net.layout.embedding } else { None };
    if l > 0 || embedding.is_some() {
        resize(&mut ws.dx, rows * i_size);
        gemm(R::ONE, Mat::new(&ws.dg, rows, gh_w), Mat::new(&params[slots.w_ih..], gh_w, i_size), R::ZERO, &mut ws.dx);
    }
}

/// [`forward`], [`loss`] and [`backward`] in one call: adds
/// `scale * dLoss/dparams` into `grad` and returns the (unscaled) loss sums.
pub fn loss_and_gradient<R: Real>(
    net: &Net,
    params: &[R],
    batch: &Batch,
    ws: &mut Workspace<R>,
    grad: &mut [R],
    scale: R,
    opts: &BackwardOptions,
) -> LossSum {
    forward(net, params, batch, ws);
    let sum = loss(net, batch, ws, Some(scale));
    backward(net, params, batch, ws, grad, opts);
    sum
}
