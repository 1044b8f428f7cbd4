//! The reference engine: plain scalar code that computes exactly what
//! `torch.nn.LSTM`, `torch.nn.GRU` and `torch.nn.RNN` compute, plus ONNX's
//! peepholes, `clip` and `input_forget`.
//!
//! It is the oracle every fast path is tested against, so it is written to be
//! read next to the equations, not to be fast. It works in f64 internally, so
//! its own rounding is far below any tolerance a test uses.
//!
//! LSTM (gate rows `i, f, g, o`; `P*` peepholes, `clip` clamps every
//! pre-activation to `[-clip, clip]`):
//!
//! ```text
//! i  = σ(W_ii x + b_ii + W_hi h + b_hi + P_i ⊙ c)
//! f  = σ(W_if x + b_if + W_hf h + b_hf + P_f ⊙ c)      or 1 - i with input_forget
//! g  = tanh(W_ig x + b_ig + W_hg h + b_hg)
//! c' = f ⊙ c + i ⊙ g
//! o  = σ(W_io x + b_io + W_ho h + b_ho + P_o ⊙ c')
//! h' = o ⊙ tanh(c')                                     then h' = W_hr h' with projection
//! ```
//!
//! GRU (gate rows `r, z, n`):
//!
//! ```text
//! r  = σ(W_ir x + b_ir + W_hr h + b_hr)
//! z  = σ(W_iz x + b_iz + W_hz h + b_hz)
//! n  = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))        linear_before_reset (PyTorch)
//! n  = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn)        otherwise (ONNX default)
//! h' = (1 - z) ⊙ n + z ⊙ h
//! ```
//!
//! RNN: `h' = tanh(W_ih x + b_ih + W_hh h + b_hh)` (or ReLU).
//!
//! Stacking: layer `l > 0` reads the previous layer's output sequence; a
//! bidirectional layer's output at step `t` is `[forward_t; backward_t]`, the
//! backward direction having read the sequence from the end. A `reverse`
//! stack (ONNX `direction = "reverse"`) has one direction, which reads the
//! sequence from the end in every layer.

use crate::weights::{HeadWeights, LayerWeights, Weights};
use lstmrt_format::{Architecture, CellKind, Head, HeadActivation};

/// What [`run`] returns, in PyTorch's shapes.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// `[steps, batch, directions * P]`: the top layer's `h` at every step.
    pub output: Vec<f32>,
    /// `[layers * directions, batch, P]`: the final `h` of every layer and direction.
    pub h_n: Vec<f32>,
    /// `[layers * directions, batch, H]`: the final `c` (LSTM only; empty otherwise).
    pub c_n: Vec<f32>,
}

#[doc(hidden)]
/// The values inside one cell at one step, handed to a trace callback.
#[derive(Debug)]
pub struct StepTrace<'a> {
    /// Layer, from the bottom.
    pub layer: usize,
    /// 0 forward, 1 backward.
    pub direction: usize,
    /// Position in the sequence (a backward direction visits it from the end).
    pub t: usize,
    /// Which sequence of the batch.
    pub batch_index: usize,
    /// Gate activations `[G, H]` in the cell's gate order (LSTM `i, f, g, o`;
    /// GRU `r, z, n`; RNN the new `h` before projection).
    pub gates: &'a [f64],
    /// The new cell state `c'` (LSTM; empty otherwise).
    pub c: &'a [f64],
    /// The new hidden state `h'`.
    pub h: &'a [f64],
}

/// Runs the stack over `xs` (`[steps, batch, input_size]`) from initial
/// states `h0` (`[layers*directions, batch, P]`) and `c0`
/// (`[layers*directions, batch, H]`); when absent, every row starts from the
/// weights' stored initial state (`LayerWeights::initial_h`/`initial_c`), or zeros.
///
/// # Panics
/// If a slice length does not match the architecture (this is a test oracle;
/// the runtime API checks its inputs and returns errors).
pub fn run(
    arch: &Architecture,
    weights: &Weights,
    xs: &[f32],
    batch: usize,
    h0: Option<&[f32]>,
    c0: Option<&[f32]>,
) -> Output {
    run_traced(arch, weights, xs, batch, h0, c0, &mut |_| {})
}

#[doc(hidden)]
/// [`run`], calling `trace` after every cell step.
pub fn run_traced(
    arch: &Architecture,
    weights: &Weights,
    xs: &[f32],
    batch: usize,
    h0: Option<&[f32]>,
    c0: Option<&[f32]>,
    trace: &mut dyn FnMut(&StepTrace),
) -> Output {
    run_rows(arch, weights, xs, batch, None, h0, c0, trace)
}

/// [`run`] where row `b` of the batch is only `lengths[b]` steps long, as
/// PyTorch runs a `pack_padded_sequence` batch: each row reads its own steps
/// only (a backward direction starts at the row's own last step), its outputs
/// past its length are zero, and `h_n`/`c_n` hold its state after its own
/// last step (the initial state for a length of 0).
///
/// # Panics
/// As [`run`], and if `lengths` is not one length per row, each at most the
/// number of steps.
pub fn run_lengths(
    arch: &Architecture,
    weights: &Weights,
    xs: &[f32],
    batch: usize,
    lengths: &[usize],
    h0: Option<&[f32]>,
    c0: Option<&[f32]>,
) -> Output {
    run_rows(arch, weights, xs, batch, Some(lengths), h0, c0, &mut |_| {})
}

#[allow(clippy::too_many_arguments)]
fn run_rows(
    arch: &Architecture,
    weights: &Weights,
    xs: &[f32],
    batch: usize,
    lengths: Option<&[usize]>,
    h0: Option<&[f32]>,
    c0: Option<&[f32]>,
    trace: &mut dyn FnMut(&StepTrace),
) -> Output {
    let (hidden, p, dirs) = (arch.hidden(), arch.output_size(), arch.directions());
    let input_size = arch.input_size as usize;
    assert!(batch > 0 && xs.len().is_multiple_of(batch * input_size), "xs is not [steps, batch, input_size]");
    let steps = xs.len() / (batch * input_size);
    let states = arch.layers() * dirs;
    if let Some(h0) = h0 {
        assert_eq!(h0.len(), states * batch * p, "h0 is not [layers*directions, batch, P]");
    }
    if let Some(c0) = c0 {
        assert_eq!(c0.len(), states * batch * hidden, "c0 is not [layers*directions, batch, H]");
    }
    assert_eq!(weights.layers.len(), states, "one LayerWeights per layer and direction");
    if let Some(lengths) = lengths {
        assert_eq!(lengths.len(), batch, "one length per row");
        assert!(lengths.iter().all(|&l| l <= steps), "a length is longer than the sequence");
    }

    let mut h_n = vec![0.0f32; states * batch * p];
    let mut c_n = if arch.has_cell_state() { vec![0.0f32; states * batch * hidden] } else { Vec::new() };
    let mut layer_input: Vec<f64> = xs.iter().map(|&v| v as f64).collect();
    for layer in 0..arch.layers() {
        let in_size = arch.layer_input_size(layer);
        let mut layer_output = vec![0.0f64; steps * batch * dirs * p];
        for dir in 0..dirs {
            let index = layer * dirs + dir;
            let lw = &weights.layers[index];
            for b in 0..batch {
                let state_h = (index * batch + b) * p;
                let state_c = (index * batch + b) * hidden;
                // Without h0/c0: the weights' stored initial state, else zeros.
                let widen = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
                let mut h: Vec<f64> = match (h0, &lw.initial_h) {
                    (Some(h0), _) => widen(&h0[state_h..state_h + p]),
                    (None, Some(init)) => widen(init),
                    (None, None) => vec![0.0; p],
                };
                let mut c: Vec<f64> = match (c0, &lw.initial_c) {
                    (Some(c0), _) if arch.has_cell_state() => widen(&c0[state_c..state_c + hidden]),
                    (None, Some(init)) if arch.has_cell_state() => widen(init),
                    _ => vec![0.0; hidden],
                };
                // The backward direction, or every layer of a reverse stack,
                // reads the sequence from the end.
                let backward = dir == 1 || arch.reverse;
                let len = lengths.map_or(steps, |l| l[b]);
                for n in 0..len {
                    let t = if backward { len - 1 - n } else { n };
                    let x = &layer_input[(t * batch + b) * in_size..][..in_size];
                    let (h_new, c_new, gates) = cell(arch, lw, x, &h, &c);
                    trace(&StepTrace {
                        layer,
                        direction: dir,
                        t,
                        batch_index: b,
                        gates: &gates,
                        c: if arch.has_cell_state() { &c_new } else { &[] },
                        h: &h_new,
                    });
                    layer_output[(t * batch + b) * dirs * p + dir * p..][..p].copy_from_slice(&h_new);
                    h = h_new;
                    c = c_new;
                }
                for (dst, &v) in h_n[state_h..state_h + p].iter_mut().zip(&h) {
                    *dst = v as f32;
                }
                if arch.has_cell_state() {
                    for (dst, &v) in c_n[state_c..state_c + hidden].iter_mut().zip(&c) {
                        *dst = v as f32;
                    }
                }
            }
        }
        layer_input = layer_output;
    }
    Output { output: layer_input.iter().map(|&v| v as f32).collect(), h_n, c_n }
}

/// `w[row, :] · x` for a row-major matrix with `x.len()` columns.
fn dot_row(w: &[f32], row: usize, x: &[f64]) -> f64 {
    w[row * x.len()..][..x.len()].iter().zip(x).map(|(&a, &b)| a as f64 * b).sum()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// One step of one cell: returns `(h', c', gates)`.
fn cell(arch: &Architecture, lw: &LayerWeights, x: &[f64], h: &[f64], c: &[f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let hidden = arch.hidden();
    let clip = |v: f64| match arch.clip {
        Some(limit) => v.clamp(-(limit as f64), limit as f64),
        None => v,
    };
    // Pre-activation parts of gate `g` for unit `j`, input side and hidden side.
    let from_x = |g: usize, j: usize| lw.b_ih[g * hidden + j] as f64 + dot_row(&lw.w_ih, g * hidden + j, x);
    let from_h = |g: usize, j: usize| lw.b_hh[g * hidden + j] as f64 + dot_row(&lw.w_hh, g * hidden + j, h);
    let mut gates = vec![0.0; arch.cell.gates() * hidden];
    match arch.cell {
        CellKind::Lstm => {
            let peephole = |row: usize, j: usize| lw.peephole.as_ref().map_or(0.0, |p| p[row * hidden + j] as f64);
            let mut c_new = vec![0.0; hidden];
            let mut r = vec![0.0; hidden];
            for j in 0..hidden {
                let pre = |g: usize| from_x(g, j) + from_h(g, j);
                let i = sigmoid(clip(pre(0) + peephole(0, j) * c[j]));
                let f = if arch.input_forget { 1.0 - i } else { sigmoid(clip(pre(1) + peephole(1, j) * c[j])) };
                let g = clip(pre(2)).tanh();
                c_new[j] = f * c[j] + i * g;
                let o = sigmoid(clip(pre(3) + peephole(2, j) * c_new[j]));
                r[j] = o * c_new[j].tanh();
                for (gate, v) in [i, f, g, o].into_iter().enumerate() {
                    gates[gate * hidden + j] = v;
                }
            }
            let h_new = match &lw.w_hr {
                Some(w_hr) => (0..arch.output_size()).map(|row| dot_row(w_hr, row, &r)).collect(),
                None => r,
            };
            (h_new, c_new, gates)
        }
        CellKind::Gru => {
            let mut r = vec![0.0; hidden];
            let mut z = vec![0.0; hidden];
            for j in 0..hidden {
                r[j] = sigmoid(clip(from_x(0, j) + from_h(0, j)));
                z[j] = sigmoid(clip(from_x(1, j) + from_h(1, j)));
            }
            let reset_h: Vec<f64> = r.iter().zip(h).map(|(r, h)| r * h).collect();
            let mut h_new = vec![0.0; hidden];
            for j in 0..hidden {
                let n_pre = if arch.linear_before_reset {
                    from_x(2, j) + r[j] * from_h(2, j)
                } else {
                    from_x(2, j) + lw.b_hh[2 * hidden + j] as f64 + dot_row(&lw.w_hh, 2 * hidden + j, &reset_h)
                };
                let n = clip(n_pre).tanh();
                h_new[j] = (1.0 - z[j]) * n + z[j] * h[j];
                gates[j] = r[j];
                gates[hidden + j] = z[j];
                gates[2 * hidden + j] = n;
            }
            (h_new, vec![0.0; hidden], gates)
        }
        CellKind::RnnTanh | CellKind::RnnRelu => {
            let h_new: Vec<f64> = (0..hidden)
                .map(|j| {
                    let pre = clip(from_x(0, j) + from_h(0, j));
                    if arch.cell == CellKind::RnnTanh { pre.tanh() } else { pre.max(0.0) }
                })
                .collect();
            gates.copy_from_slice(&h_new);
            (h_new, vec![0.0; hidden], gates)
        }
    }
}

/// The largest absolute difference between `a` and `b`, element by element,
/// as fast paths are compared with this reference. A NaN on either side, or
/// slices of different lengths, count as infinitely different, so
/// `max_abs_diff(..) <= tol` can never pass for an output that is NaN.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return f32::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| if x.is_nan() || y.is_nan() { f32::INFINITY } else { (x - y).abs() })
        .fold(0.0, f32::max)
}

/// The output head on one timestep's output `x`: `act(W x + b)`.
pub fn head(head: &Head, weights: &HeadWeights, x: &[f32]) -> Vec<f32> {
    let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let out = head.out_features as usize;
    let mut y: Vec<f64> =
        (0..out).map(|o| weights.bias.get(o).map_or(0.0, |&b| b as f64) + dot_row(&weights.weight, o, &x)).collect();
    match head.activation {
        HeadActivation::None => {}
        HeadActivation::Sigmoid => y.iter_mut().for_each(|v| *v = sigmoid(*v)),
        HeadActivation::Softmax => {
            let max = y.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = y.iter().map(|v| (v - max).exp()).sum();
            y.iter_mut().for_each(|v| *v = (*v - max).exp() / sum);
        }
    }
    y.into_iter().map(|v| v as f32).collect()
}

/// Runs a chunked model (format 1.3 stages) over one stream's signal
/// `[chunks][chunk][channels]`, returning every chunk's result
/// `[chunks][out_positions][out_channels]`: the window (context then chunk,
/// zeros before the first), the front stages as PyTorch computes them (an
/// explicitly padded copy of the input, then `Conv1d`'s sum), the stack from
/// the state the last chunk left, the back stages. f64 inside.
///
/// # Panics
/// If `meta` has no stages or `signal` is not whole chunks (a test oracle).
pub fn run_chunks(meta: &lstmrt_format::Metadata, weights: &Weights, signal: &[f32]) -> Vec<f32> {
    use lstmrt_format::Chain;
    let stages = meta.stages.as_ref().expect("a model with stages");
    let plan = meta.stages_plan().expect("valid stages");
    let arch = &meta.architecture;
    let (frames, channels, context) = (stages.chunk as usize, stages.channels as usize, stages.context as usize);
    let per_chunk = frames * channels;
    assert!(signal.len().is_multiple_of(per_chunk), "whole chunks");
    // Positions x channels, position-major.
    let mut ctx = vec![0.0f64; context * channels];
    let (mut h, mut c): (Option<Vec<f32>>, Option<Vec<f32>>) = (None, None);
    let mut results = Vec::new();
    for chunk in signal.chunks_exact(per_chunk) {
        let x: Vec<f64> = ctx.iter().copied().chain(chunk.iter().map(|&v| v as f64)).collect();
        ctx.copy_from_slice(&x[x.len() - context * channels..]);
        let x = reference_chain(Chain::Front, &stages.front, x, channels, weights);
        let xs: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let out = run(arch, weights, &xs, 1, h.as_deref(), c.as_deref());
        h = Some(out.h_n);
        c = if arch.has_cell_state() { Some(out.c_n) } else { None };
        let y: Vec<f64> = out.output.iter().map(|&v| v as f64).collect();
        let y = reference_chain(Chain::Back, &stages.back, y, arch.sequence_output_size(), weights);
        debug_assert_eq!(y.len(), plan.out_values());
        results.extend(y.iter().map(|&v| v as f32));
    }
    results
}

/// The stages of `chain` in turn on `x` (`[positions][width]`).
fn reference_chain(
    chain: lstmrt_format::Chain,
    stages: &[lstmrt_format::Stage],
    mut x: Vec<f64>,
    mut width: usize,
    weights: &Weights,
) -> Vec<f64> {
    use lstmrt_format::Stages;
    for (i, s) in stages.iter().enumerate() {
        let (weight, bias) = (Stages::weight_name(chain, i), Stages::bias_name(chain, i));
        (x, width) = reference_stage(s, &x, width, weights, &weight, &bias);
    }
    x
}

/// One stage on `x` (`[positions][width]`): the new activations and width.
fn reference_stage(
    s: &lstmrt_format::Stage,
    x: &[f64],
    width: usize,
    weights: &Weights,
    weight: &str,
    bias: &str,
) -> (Vec<f64>, usize) {
    use lstmrt_format::{Padding, StageKind};
    let positions = x.len() / width;
    let at = |p: usize, ch: usize| x[p * width + ch];
    match s.kind {
        StageKind::Conv1d => {
            let (out, taps) = (s.out_channels as usize, s.kernel as usize);
            let (pl, pr) = (s.pad_left as usize, s.pad_right as usize);
            // The padded input, as F.pad makes it.
            let n = positions + pl + pr;
            let mut xp = vec![0.0f64; n * width];
            for q in 0..n {
                let src = q as isize - pl as isize;
                let src = match s.padding {
                    _ if (0..positions as isize).contains(&src) => Some(src as usize),
                    Padding::Zeros => None,
                    Padding::Reflect if src < 0 => Some((-src) as usize),
                    Padding::Reflect => Some(2 * (positions - 1) - src as usize),
                };
                if let Some(src) = src {
                    for ch in 0..width {
                        xp[q * width + ch] = at(src, ch);
                    }
                }
            }
            let w = weights.stages.get(weight).expect("conv weight");
            let b = weights.stages.get(bias);
            let span = (taps - 1) * s.dilation as usize + 1;
            let np = (n - span) / s.stride as usize + 1;
            let mut y = vec![0.0f64; np * out];
            for p in 0..np {
                for o in 0..out {
                    let mut sum = b.map_or(0.0, |b| b[o] as f64);
                    for tap in 0..taps {
                        let q = p * s.stride as usize + tap * s.dilation as usize;
                        for ch in 0..width {
                            sum += w[(o * taps + tap) * width + ch] as f64 * xp[q * width + ch];
                        }
                    }
                    y[p * out + o] = sum;
                }
                activate_f64(s.activation, &mut y[p * out..][..out]);
            }
            (y, out)
        }
        StageKind::Magnitude => {
            let half = width / 2;
            let y = (0..positions)
                .flat_map(|p| (0..half).map(move |ch| (at(p, ch).powi(2) + at(p, ch + half).powi(2)).sqrt()))
                .collect();
            (y, half)
        }
        StageKind::Activation => {
            let mut y = x.to_vec();
            for row in y.chunks_exact_mut(width) {
                activate_f64(s.activation, row);
            }
            (y, width)
        }
        StageKind::Mean => {
            let y = (0..width).map(|ch| (0..positions).map(|p| at(p, ch)).sum::<f64>() / positions as f64).collect();
            (y, width)
        }
    }
}

fn activate_f64(a: lstmrt_format::StageActivation, v: &mut [f64]) {
    use lstmrt_format::StageActivation as A;
    match a {
        A::None => {}
        A::Relu => v.iter_mut().for_each(|x| *x = x.max(0.0)),
        A::Sigmoid => v.iter_mut().for_each(|x| *x = 1.0 / (1.0 + (-*x).exp())),
        A::Tanh => v.iter_mut().for_each(|x| *x = x.tanh()),
        A::Softmax => {
            let max = v.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x));
            let sum: f64 = v.iter().map(|x| (x - max).exp()).sum();
            v.iter_mut().for_each(|x| *x = (*x - max).exp() / sum);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::max_abs_diff;

    #[test]
    fn max_abs_diff_counts_nan_and_length_mismatch_as_infinite() {
        assert_eq!(max_abs_diff(&[1.0, 2.0], &[1.5, 1.0]), 1.0);
        assert_eq!(max_abs_diff(&[], &[]), 0.0);
        assert_eq!(max_abs_diff(&[1.0, f32::NAN], &[1.0, 2.0]), f32::INFINITY);
        assert_eq!(max_abs_diff(&[f32::NAN], &[f32::NAN]), f32::INFINITY);
        assert_eq!(max_abs_diff(&[1.0], &[1.0, 2.0]), f32::INFINITY);
        // An all-NaN output can never pass a tolerance.
        assert!(max_abs_diff(&[f32::NAN; 4], &[0.0; 4]) > 1e9);
    }
}
