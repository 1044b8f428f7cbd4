//! Chunked models (Silero VAD and the like): chunk states and runs.

use super::*;
use crate::ffi::*;

/// For a chunked model (a conv front-end and head around the stack: Silero
/// VAD): the state of `streams` signals run together on `threads` threads,
/// into `*out`. LSTMRT_UNSUPPORTED for a model without stages.
///
/// # Safety
/// `model` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_chunks_new(
    model: *const lstmrt_model,
    streams: usize,
    threads: usize,
    out: *mut *mut lstmrt_chunks,
) -> lstmrt_status {
    guard(|| {
        // SAFETY: the contract.
        let model = &unsafe { get(model, "model") }?.model;
        check_out(out, "out")?;
        let mut chunks = model.new_chunk_state(streams)?;
        chunks.set_threads(threads.max(1));
        // SAFETY: `out` checked, writable by the contract.
        unsafe { new_handle(out, lstmrt_chunks { chunks }) };
        Ok(())
    })
}

/// Frees a chunk state (NULL is fine).
///
/// # Safety
/// `chunks` is NULL or from `lstmrt_chunks_new`, not freed before, unused by
/// other threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_chunks_free(chunks: *mut lstmrt_chunks) {
    // SAFETY: the contract: made by this library, freed once.
    unsafe { free_handle(chunks) }
}

/// Values per stream of a chunk (frames x channels) and of its result, for
/// a chunked model; 0 and 0 for another.
///
/// # Safety
/// `model` is NULL or live; `chunk` and `outputs` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_model_chunk_sizes(
    model: *const lstmrt_model,
    chunk: *mut usize,
    outputs: *mut usize,
) -> lstmrt_status {
    guard(|| {
        // SAFETY: the contract.
        let model = &unsafe { get(model, "model") }?.model;
        check_out(chunk, "chunk")?;
        check_out(outputs, "outputs")?;
        let (c, o) = match (&model.metadata().stages, model.stages_plan()) {
            (Some(s), Some(p)) => ((s.chunk * s.channels) as usize, p.out_values()),
            _ => (0, 0),
        };
        // SAFETY: both checked, writable by the contract.
        unsafe {
            put(chunk, c);
            put(outputs, o);
        }
        Ok(())
    })
}

/// Runs one chunk of every stream: `x` is `[streams][chunk values]`, `y`
/// receives `[streams][outputs]` (sizes from `lstmrt_model_chunk_sizes`).
/// Never allocates.
///
/// # Safety
/// `model` and `chunks` are NULL or live (`chunks` unused by other threads,
/// made for this model); `x` and `y` are NULL or hold those many values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_chunks_run(
    model: *const lstmrt_model,
    chunks: *mut lstmrt_chunks,
    x: *const f32,
    y: *mut f32,
) -> lstmrt_status {
    guard(|| {
        // SAFETY: the contract.
        let (model, chunks) = unsafe { (&get(model, "model")?.model, &mut get_mut(chunks, "chunks")?.chunks) };
        let (Some(stages), Some(plan)) = (&model.metadata().stages, model.stages_plan()) else {
            return Err(lstmrt::Error::Unsupported { what: "this model has no stages".into() }.into());
        };
        let streams = chunks.batch();
        // SAFETY: the sizes the contract promises.
        let xs = unsafe { slice(x, streams * (stages.chunk * stages.channels) as usize, "x") }?;
        // SAFETY: the contract stated on this function: the buffer holds that many values (NULL refused unless empty).
        let ys = unsafe { slice_mut(y, streams * plan.out_values(), "y") }?;
        let out = model.run_chunk(chunks, xs)?;
        ys.copy_from_slice(out);
        Ok(())
    })
}

/// Stream `stream` of a chunk state starts afresh (initial state, zero
/// context); the others keep theirs.
///
/// # Safety
/// `chunks` is NULL or live and unused by other threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_chunks_reset_stream(chunks: *mut lstmrt_chunks, stream: usize) -> lstmrt_status {
    guard(|| {
        // SAFETY: the contract.
        unsafe { get_mut(chunks, "chunks") }?.chunks.reset_stream(stream)?;
        Ok(())
    })
}
