//! Per-stream states: made, reset, threaded, reserved, read, saved and loaded.

use super::*;
use crate::ffi::*;

/// A fresh state for `batch` streams run together (zeros, or the file's
/// initial state), into `*out`.
///
/// # Safety
/// `model` is NULL or a live model; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_state_new(
    model: *const lstmrt_model,
    batch: usize,
    out: *mut *mut lstmrt_state,
) -> lstmrt_status {
    guard(|| {
        // SAFETY: the contract.
        let model = &unsafe { get(model, "model") }?.model;
        check_out(out, "out")?;
        let state = model.new_batch_state(batch)?;
        // SAFETY: `out` checked, writable by the contract.
        unsafe { new_handle(out, lstmrt_state { state }) };
        Ok(())
    })
}

/// Frees a state (NULL is fine).
///
/// # Safety
/// `state` is NULL or from `lstmrt_state_new`/`_load`, not freed before,
/// and no other thread uses it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_state_free(state: *mut lstmrt_state) {
    // SAFETY: the contract: made by this library, freed once.
    unsafe { free_handle(state) }
}

/// Returns the state to the model's initial state: the next step starts a
/// new sequence.
///
/// # Safety
/// `state` is NULL or a live state no other thread uses.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_state_reset(state: *mut lstmrt_state) -> lstmrt_status {
    guard(|| {
        // SAFETY: the contract.
        unsafe { get_mut(state, "state") }?.state.reset();
        Ok(())
    })
}

/// Streams in the state (0 for NULL).
///
/// # Safety
/// `state` is NULL or a live state.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_state_batch(state: *const lstmrt_state) -> usize {
    // SAFETY: the contract.
    guard_value(0, || unsafe { state.as_ref() }.map(|s| s.state.batch()))
}

/// Lets each step of this state use `threads` threads (1 = the caller only;
/// the pool's threads are started now).
///
/// # Safety
/// `state` is NULL or a live state no other thread uses.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_state_set_threads(state: *mut lstmrt_state, threads: usize) -> lstmrt_status {
    guard(|| {
        // SAFETY: the contract.
        let state = unsafe { get_mut(state, "state") }?;
        if threads == 0 || threads > 1024 {
            return Err(bad(format!("threads {threads} is outside 1..=1024")));
        }
        state.state.set_threads(threads);
        Ok(())
    })
}

/// Makes room so that `lstmrt_run` on up to `steps` steps never allocates.
///
/// # Safety
/// `model` and `state` are NULL or live; no other thread uses `state`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_state_reserve(
    model: *const lstmrt_model,
    state: *mut lstmrt_state,
    steps: usize,
) -> lstmrt_status {
    guard(|| {
        // SAFETY: the contract.
        let (model, state) = unsafe { (&get(model, "model")?.model, get_mut(state, "state")?) };
        let per_step = state.state.batch() * model.architecture().input_size as usize;
        if steps.checked_mul(per_step).is_none_or(|n| n > 1 << 30) {
            return Err(bad(format!("{steps} steps of {per_step} values is over the 2^30 values lstmrt reserves")));
        }
        state.state.reserve(model, steps);
        Ok(())
    })
}

/// `h` of the state, `[layers x directions, batch, P]` as PyTorch's `h_n`:
/// `*values` points into the state (valid until its next use), `*len` values.
///
/// # Safety
/// `state` is NULL or live; `values` and `len` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_state_h(
    state: *const lstmrt_state,
    values: *mut *const f32,
    len: *mut usize,
) -> lstmrt_status {
    state_part(state, values, len, State::h)
}

/// `c` of the state, `[layers x directions, batch, H]` as `c_n` (empty
/// unless LSTM), as `lstmrt_state_h`.
///
/// # Safety
/// As `lstmrt_state_h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_state_c(
    state: *const lstmrt_state,
    values: *mut *const f32,
    len: *mut usize,
) -> lstmrt_status {
    state_part(state, values, len, State::c)
}

pub(crate) fn state_part(
    state: *const lstmrt_state,
    values: *mut *const f32,
    len: *mut usize,
    part: fn(&State) -> &[f32],
) -> lstmrt_status {
    guard(|| {
        // SAFETY: the contract of lstmrt_state_h / _c.
        let state = unsafe { get(state, "state") }?;
        check_out(values, "values")?;
        check_out(len, "len")?;
        let v = part(&state.state);
        // SAFETY: both checked, writable by the contract.
        unsafe {
            put(values, v.as_ptr());
            put(len, v.len());
        }
        Ok(())
    })
}

/// Saves the state (to resume the streams later, in another process) into
/// `buf`: `*written` is set to the blob's size; when `capacity` is smaller,
/// nothing is written to `buf` and the status is LSTMRT_BUFFER_TOO_SMALL
/// (`buf` may be NULL to ask for the size).
///
/// # Safety
/// `state` is NULL or live; `buf` is NULL or `capacity` writable bytes;
/// `written` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_state_save(
    state: *const lstmrt_state,
    buf: *mut u8,
    capacity: usize,
    written: *mut usize,
) -> lstmrt_status {
    // SAFETY: `written` is NULL or writable by the contract.
    unsafe {
        guard_sized(written, |needed| {
            // SAFETY: the contract.
            let state = get(state, "state")?;
            check_out(written, "written")?;
            let blob = state.state.to_bytes();
            *needed = Some(blob.len());
            // SAFETY: `capacity` writable bytes at `buf` by the contract.
            copy_out(&blob, buf, capacity, "buf", || {
                format!("the state needs {} bytes, the buffer has {capacity}", blob.len())
            })
        })
    }
}

/// A state of `model` from a blob of `lstmrt_state_save` (refused, naming
/// why, when the blob is not a state of this model), into `*out`.
///
/// # Safety
/// `model` is NULL or live; `bytes` is NULL or `len` readable bytes; `out`
/// is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_state_load(
    model: *const lstmrt_model,
    bytes: *const u8,
    len: usize,
    out: *mut *mut lstmrt_state,
) -> lstmrt_status {
    guard(|| {
        // SAFETY: the contract.
        let model = &unsafe { get(model, "model") }?.model;
        if bytes.is_null() {
            return Err(bad("bytes is NULL"));
        }
        // SAFETY: `len` readable bytes by the contract.
        let bytes = unsafe { slice(bytes, len, "bytes") }?;
        check_out(out, "out")?;
        let state = State::from_bytes(model, bytes)?;
        // SAFETY: `out` checked, writable by the contract.
        unsafe { new_handle(out, lstmrt_state { state }) };
        Ok(())
    })
}
