//! Running a model: `step` (one timestep, streaming) and `run` (a whole
//! sequence), for one stream or a batch.

use crate::Error;
use crate::model::Model;
use crate::reference;
use crate::state::{State, StateShape};

impl Model {
    /// A fresh zero state for one stream.
    pub fn new_state(&self) -> State {
        self.new_batch_state(1)
    }

    /// A fresh zero state for `batch` streams run together.
    pub fn new_batch_state(&self, batch: usize) -> State {
        State::new(self.architecture(), batch.max(1))
    }

    fn check_state(&self, state: &State) -> Result<(), Error> {
        let want = StateShape::of(self.architecture(), state.shape.batch);
        if state.shape != want {
            return Err(Error::StateMismatch {
                reason: format!("state is for {:?}, model needs {:?}", state.shape, want),
            });
        }
        Ok(())
    }

    /// Number of timesteps in `xs` (`[steps, batch, input_size]`).
    fn steps_in(&self, state: &State, xs: &[f32]) -> Result<usize, Error> {
        let per_step = state.batch() * self.architecture().input_size as usize;
        if xs.len() % per_step != 0 {
            return Err(Error::Shape {
                what: "input",
                expected: format!(
                    "a multiple of {per_step} (steps x batch {} x input size {})",
                    state.batch(),
                    self.architecture().input_size
                ),
                got: xs.len(),
            });
        }
        Ok(xs.len() / per_step)
    }

    /// Runs one timestep: `x` is `[batch, input_size]`; returns the top
    /// layer's new `h`, `[batch, P]`. Carries the state to the next call.
    pub fn step<'s>(&self, state: &'s mut State, x: &[f32]) -> Result<&'s [f32], Error> {
        if self.architecture().bidirectional {
            return Err(Error::Unsupported {
                what: "a bidirectional model cannot run one step at a time: its backward direction needs the \
                       whole sequence; use run"
                    .into(),
            });
        }
        let per_step = state.batch() * self.architecture().input_size as usize;
        if x.len() != per_step {
            return Err(Error::Shape {
                what: "step input",
                expected: format!("{per_step} (batch x input size)"),
                got: x.len(),
            });
        }
        self.run(state, x)
    }

    /// Runs a whole sequence `xs` (`[steps, batch, input_size]`, sequence-major
    /// as in PyTorch) from the state's `h`/`c`, leaves the final `h`/`c` in the
    /// state, and returns the top layer's output `[steps, batch, directions * P]`.
    pub fn run<'s>(&self, state: &'s mut State, xs: &[f32]) -> Result<&'s [f32], Error> {
        self.check_state(state)?;
        let steps = self.steps_in(state, xs)?;
        let width = state.batch() * self.architecture().sequence_output_size();
        let mut out = std::mem::take(&mut state.out);
        out.resize(steps * width, 0.0);
        self.run_into(state, xs, &mut out)?;
        state.out = out;
        Ok(&state.out)
    }

    /// [`Model::run`] writing the output into `out` (`[steps, batch, directions * P]`).
    pub fn run_into(&self, state: &mut State, xs: &[f32], out: &mut [f32]) -> Result<(), Error> {
        self.check_state(state)?;
        let steps = self.steps_in(state, xs)?;
        let width = state.batch() * self.architecture().sequence_output_size();
        if out.len() != steps * width {
            return Err(Error::Shape { what: "output buffer", expected: (steps * width).to_string(), got: out.len() });
        }
        if steps == 0 {
            return Ok(());
        }
        let arch = self.architecture();
        let batch = state.batch();
        let threads = state.threads.min(batch);
        if threads <= 1 {
            let c0 = if arch.has_cell_state() { Some(state.c.as_slice()) } else { None };
            let result = reference::run(arch, &self.weights, xs, batch, Some(&state.h), c0);
            out.copy_from_slice(&result.output);
            state.h.copy_from_slice(&result.h_n);
            state.c.copy_from_slice(&result.c_n);
            return Ok(());
        }
        // Split the batch into contiguous groups of sequences, one per thread.
        let per = batch.div_ceil(threads);
        let groups: Vec<(usize, usize)> = (0..batch).step_by(per).map(|b0| (b0, (b0 + per).min(batch))).collect();
        let results: Vec<reference::Output> = std::thread::scope(|scope| {
            let handles: Vec<_> = groups
                .iter()
                .map(|&(b0, b1)| {
                    let g = (b0, b1);
                    let xs_g = gather(xs, batch, arch.input_size as usize, g);
                    let h_g = gather(&state.h, batch, arch.output_size(), g);
                    let c_g =
                        if arch.has_cell_state() { gather(&state.c, batch, arch.hidden(), g) } else { Vec::new() };
                    scope.spawn(move || {
                        let c0 = arch.has_cell_state().then_some(c_g.as_slice());
                        reference::run(arch, &self.weights, &xs_g, b1 - b0, Some(&h_g), c0)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("a worker thread panicked")).collect()
        });
        for (&g, r) in groups.iter().zip(&results) {
            scatter(&r.output, out, batch, arch.sequence_output_size(), g);
            scatter(&r.h_n, &mut state.h, batch, arch.output_size(), g);
            if arch.has_cell_state() {
                scatter(&r.c_n, &mut state.c, batch, arch.hidden(), g);
            }
        }
        Ok(())
    }
}

/// Copies sequences `b0..b1` out of a `[rows, batch, width]` buffer.
fn gather(all: &[f32], batch: usize, width: usize, (b0, b1): (usize, usize)) -> Vec<f32> {
    all.chunks_exact(batch * width).flat_map(|row| &row[b0 * width..b1 * width]).copied().collect()
}

/// Writes `[rows, b1-b0, width]` back as sequences `b0..b1` of `[rows, batch, width]`.
fn scatter(part: &[f32], all: &mut [f32], batch: usize, width: usize, (b0, b1): (usize, usize)) {
    if width == 0 {
        return;
    }
    for (dst, src) in all.chunks_exact_mut(batch * width).zip(part.chunks_exact((b1 - b0) * width)) {
        dst[b0 * width..b1 * width].copy_from_slice(src);
    }
}
