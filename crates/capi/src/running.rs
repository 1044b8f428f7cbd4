//! Running a model on a state: one step, a whole sequence, rows of their own lengths.

use super::*;
use crate::ffi::*;

/// One timestep of every stream in the state: `x` is `[batch, input_size]`,
/// `y` receives `[batch, output_size]`. Carries the state to the next call.
///
/// # Safety
/// `model` and `state` are NULL or live (no other thread uses `state`); `x`
/// and `y` are NULL or hold `batch x input_size` / `batch x output_size`
/// floats.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_step(
    model: *const lstmrt_model,
    state: *mut lstmrt_state,
    x: *const f32,
    y: *mut f32,
) -> lstmrt_status {
    guard(|| {
        // SAFETY: the contract.
        let (model, state) = unsafe { (&get(model, "model")?.model, &mut get_mut(state, "state")?.state) };
        let batch = state.batch();
        let arch = model.architecture();
        // SAFETY: the sizes the contract promises.
        let x = unsafe { slice(x, batch * arch.input_size as usize, "x") }?;
        // SAFETY: the contract stated on this function: the buffer holds that many values (NULL refused unless empty).
        let y = unsafe { slice_mut(y, batch * arch.sequence_output_size(), "y") }?;
        y.copy_from_slice(model.step(state, x)?);
        Ok(())
    })
}

/// A whole sequence from the state's `h`/`c`: `xs` is `[steps, batch,
/// input_size]` (sequence-major, as PyTorch), `ys` receives `[steps, batch,
/// output_size]`; the final `h`/`c` stay in the state.
///
/// # Safety
/// As `lstmrt_step`, with `steps` times the floats.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_run(
    model: *const lstmrt_model,
    state: *mut lstmrt_state,
    xs: *const f32,
    steps: usize,
    ys: *mut f32,
) -> lstmrt_status {
    guard(|| {
        // SAFETY: the contract.
        let (model, state) = unsafe { (&get(model, "model")?.model, &mut get_mut(state, "state")?.state) };
        let (n_in, n_out) = sequence_sizes(model, state.batch(), steps)?;
        // SAFETY: the sizes the contract promises.
        let xs = unsafe { slice(xs, n_in, "xs") }?;
        // SAFETY: the contract stated on this function: the buffer holds that many values (NULL refused unless empty).
        let ys = unsafe { slice_mut(ys, n_out, "ys") }?;
        model.run_into(state, xs, ys)?;
        Ok(())
    })
}

/// A batch whose streams have their own lengths (PyTorch's packed sequences):
/// as `lstmrt_run`, and row `b` is `lengths[b]` steps long (0..=steps, any
/// order); its outputs past its length are zero and its final state is the
/// one after its own last step.
///
/// # Safety
/// As `lstmrt_run`; `lengths` is NULL or holds `batch` values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_run_lengths(
    model: *const lstmrt_model,
    state: *mut lstmrt_state,
    xs: *const f32,
    steps: usize,
    lengths: *const usize,
    ys: *mut f32,
) -> lstmrt_status {
    guard(|| {
        // SAFETY: the contract.
        let (model, state) = unsafe { (&get(model, "model")?.model, &mut get_mut(state, "state")?.state) };
        let (n_in, n_out) = sequence_sizes(model, state.batch(), steps)?;
        // SAFETY: the sizes the contract promises.
        let xs = unsafe { slice(xs, n_in, "xs") }?;
        // SAFETY: the contract stated on this function: the buffer holds that many values (NULL refused unless empty).
        let lengths = unsafe { slice(lengths, state.batch(), "lengths") }?;
        // SAFETY: the contract stated on this function: the buffer holds that many values (NULL refused unless empty).
        let ys = unsafe { slice_mut(ys, n_out, "ys") }?;
        model.run_lengths_into(state, xs, lengths, ys)?;
        Ok(())
    })
}

/// Values in `[steps, batch, input_size]` and `[steps, batch, output_size]`,
/// refused when they overflow.
pub(crate) fn sequence_sizes(model: &Model, batch: usize, steps: usize) -> Result<(usize, usize), Failure> {
    let arch = model.architecture();
    let n_in = steps.checked_mul(batch).and_then(|n| n.checked_mul(arch.input_size as usize));
    let n_out = steps.checked_mul(batch).and_then(|n| n.checked_mul(arch.sequence_output_size()));
    match (n_in, n_out) {
        (Some(i), Some(o)) if i <= isize::MAX as usize / 4 && o <= isize::MAX as usize / 4 => Ok((i, o)),
        _ => Err(bad(format!("{steps} steps of batch {batch} do not fit in memory"))),
    }
}
