//! Stream batches: streams that join and leave a batch stepped as one.

use super::*;
use crate::ffi::*;

/// Room for `capacity` streams of `model`, stepped together, into `*out`.
///
/// # Safety
/// `model` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_streams_new(
    model: *const lstmrt_model,
    capacity: usize,
    out: *mut *mut lstmrt_streams,
) -> lstmrt_status {
    guard(|| {
        // SAFETY: the contract.
        let model = &unsafe { get(model, "model") }?.model;
        check_out(out, "out")?;
        let streams = lstmrt_streams { batch: model.new_stream_batch(capacity)?, ids: Vec::with_capacity(capacity) };
        // SAFETY: `out` checked, writable by the contract.
        unsafe { new_handle(out, streams) };
        Ok(())
    })
}

/// Frees a stream batch (NULL is fine).
///
/// # Safety
/// `streams` is NULL or from `lstmrt_streams_new`, not freed before, unused
/// by other threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_streams_free(streams: *mut lstmrt_streams) {
    // SAFETY: the contract: made by this library, freed once.
    unsafe { free_handle(streams) }
}

pub(crate) fn to_id(id: lstmrt_stream_id) -> StreamId {
    StreamId::from_parts(id.index, id.generation)
}

/// A new stream (from the model's initial state) into `*id`; refused when
/// all `capacity` places are taken.
///
/// # Safety
/// `streams` is NULL or live and unused by other threads; `id` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_streams_join(streams: *mut lstmrt_streams, id: *mut lstmrt_stream_id) -> lstmrt_status {
    guard(|| {
        // SAFETY: the contract.
        let streams = unsafe { get_mut(streams, "streams") }?;
        check_out(id, "id")?;
        let joined = streams.batch.join()?;
        let c_id = lstmrt_stream_id { index: joined.index() as u32, generation: joined.generation() };
        // SAFETY: `id` checked, writable by the contract.
        unsafe { put(id, c_id) };
        Ok(())
    })
}

/// Ends a stream; its id is refused from now on.
///
/// # Safety
/// `streams` is NULL or live and unused by other threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_streams_leave(streams: *mut lstmrt_streams, id: lstmrt_stream_id) -> lstmrt_status {
    guard(|| {
        // SAFETY: the contract.
        unsafe { get_mut(streams, "streams") }?.batch.leave(to_id(id))?;
        Ok(())
    })
}

/// Returns one stream to the model's initial state.
///
/// # Safety
/// `streams` is NULL or live and unused by other threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_streams_reset(streams: *mut lstmrt_streams, id: lstmrt_stream_id) -> lstmrt_status {
    guard(|| {
        // SAFETY: the contract.
        unsafe { get_mut(streams, "streams") }?.batch.reset(to_id(id))?;
        Ok(())
    })
}

/// Steps the `n` streams `ids` (each once, any order) as one batch: `xs` is
/// `[n, input_size]` in the order of `ids`, `ys` receives `[n,
/// output_size]`. The other streams keep their state untouched; nothing
/// changes when an id is refused.
///
/// # Safety
/// `model` and `streams` are NULL or live (`streams` unused by other
/// threads); `ids`, `xs`, `ys` are NULL or hold `n`, `n x input_size`,
/// `n x output_size` values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_streams_step(
    model: *const lstmrt_model,
    streams: *mut lstmrt_streams,
    ids: *const lstmrt_stream_id,
    n: usize,
    xs: *const f32,
    ys: *mut f32,
) -> lstmrt_status {
    guard(|| {
        // SAFETY: the contract.
        let (model, streams) = unsafe { (&get(model, "model")?.model, get_mut(streams, "streams")?) };
        if n == 0 {
            return Err(bad("a step needs at least one stream (n is 0)"));
        }
        if n > streams.batch.capacity() {
            return Err(bad(format!("{n} streams in one step, the batch has room for {}", streams.batch.capacity())));
        }
        let arch = model.architecture();
        // SAFETY: the sizes the contract promises.
        let ids = unsafe { slice(ids, n, "ids") }?;
        // SAFETY: the contract stated on this function: the buffer holds that many values (NULL refused unless empty).
        let xs = unsafe { slice(xs, n * arch.input_size as usize, "xs") }?;
        // SAFETY: the contract stated on this function: the buffer holds that many values (NULL refused unless empty).
        let ys = unsafe { slice_mut(ys, n * arch.sequence_output_size(), "ys") }?;
        streams.ids.clear();
        streams.ids.extend(ids.iter().map(|&id| to_id(id)));
        let out = streams.batch.step(model, &streams.ids, xs)?;
        ys.copy_from_slice(out);
        Ok(())
    })
}
