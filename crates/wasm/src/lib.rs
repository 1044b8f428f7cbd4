//! lstmrt for WebAssembly: the runtime's models, states, stream batches,
//! chunk states and Silero's speech segments behind plain C-ABI exports
//! that the hand-written JavaScript of `crates/wasm/npm/` calls.
//!
//! Why plain exports rather than wasm-bindgen: the shapes are the C ABI's
//! (opaque handles, a status, a one-line message, caller-owned buffers), so
//! the JavaScript layer is a few hundred lines written once; no generated
//! glue ships, no second toolchain builds it, and the `.wasm` holds only
//! what the exports reach.
//!
//! Conventions (as `lstmrt.h`):
//! - A function that can fail returns a status: 0 for success, 1 for a
//!   refusal whose one-line message [`lstmrt_text`] then holds. Functions
//!   that make a handle return it, or null (0) on refusal.
//! - Buffers are the caller's, in this module's memory, allocated with
//!   [`lstmrt_alloc`]: inputs are read in place, outputs written in place.
//!   Nothing is allocated per step or per chunk.
//! - The runtime's tier is `wide`: simd128 where the build enables it.

use std::cell::RefCell;

use lstmrt::vad::{SpeechOptions, VadEvent, VadIterator, speech_timestamps};
use lstmrt::{ChunkState, Model, State, StreamBatch, StreamId};

thread_local! {
    /// The last message: a refusal, or text a call returns (model info).
    static TEXT: RefCell<String> = const { RefCell::new(String::new()) };
}

fn set_text(text: String) {
    TEXT.with(|t| *t.borrow_mut() = text);
}

/// Status of a call: `0` success, `1` refused ([`lstmrt_text`] says why).
const OK: i32 = 0;
const REFUSED: i32 = 1;

fn status(result: Result<(), String>) -> i32 {
    match result {
        Ok(()) => OK,
        Err(e) => {
            set_text(e);
            REFUSED
        }
    }
}

/// A handle, or null with the message kept.
fn handle<T>(result: Result<T, String>) -> *mut T {
    match result {
        Ok(v) => Box::into_raw(Box::new(v)),
        Err(e) => {
            set_text(e);
            std::ptr::null_mut()
        }
    }
}

/// The alignment of [`lstmrt_alloc`]'s buffers (a SIMD vector and more).
const ALIGN: usize = 16;

/// `len` bytes the caller owns (16-byte aligned, zeroed), for model bytes
/// and input/output buffers; null when `len` is 0 or too large.
#[unsafe(no_mangle)]
pub extern "C" fn lstmrt_alloc(len: usize) -> *mut u8 {
    match std::alloc::Layout::from_size_align(len, ALIGN) {
        // SAFETY: a layout of non-zero size.
        Ok(layout) if len > 0 => unsafe { std::alloc::alloc_zeroed(layout) },
        _ => std::ptr::null_mut(),
    }
}

/// Frees a buffer of [`lstmrt_alloc`] (`len` as allocated; null is fine).
///
/// # Safety
/// `ptr` came from `lstmrt_alloc(len)` and is not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_free(ptr: *mut u8, len: usize) {
    if ptr.is_null() || len == 0 {
        return;
    }
    // SAFETY: the contract: allocated with this size and alignment.
    unsafe { std::alloc::dealloc(ptr, std::alloc::Layout::from_size_align_unchecked(len, ALIGN)) }
}

/// The last message's UTF-8 bytes (valid until the next call).
#[unsafe(no_mangle)]
pub extern "C" fn lstmrt_text() -> *const u8 {
    TEXT.with(|t| t.borrow().as_ptr())
}

/// The last message's length in bytes.
#[unsafe(no_mangle)]
pub extern "C" fn lstmrt_text_len() -> usize {
    TEXT.with(|t| t.borrow().len())
}

/// # Safety
/// `len` bytes are readable at `ptr` (or `len` is 0).
unsafe fn slice<'a, T>(ptr: *const T, len: usize) -> &'a [T] {
    if len == 0 {
        return &[];
    }
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts(ptr, len) }
}

/// # Safety
/// `len` values are writable at `ptr` (or `len` is 0), not aliased.
unsafe fn slice_mut<'a, T>(ptr: *mut T, len: usize) -> &'a mut [T] {
    if len == 0 {
        return &mut [];
    }
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts_mut(ptr, len) }
}

/// # Safety
/// `ptr` is null or a live handle of this type.
unsafe fn get<'a, T>(ptr: *const T, what: &str) -> Result<&'a T, String> {
    // SAFETY: the caller's contract.
    unsafe { ptr.as_ref() }.ok_or_else(|| format!("{what} is null (freed, or never made)"))
}

/// # Safety
/// `ptr` is null or a live handle of this type, not in use elsewhere.
unsafe fn get_mut<'a, T>(ptr: *mut T, what: &str) -> Result<&'a mut T, String> {
    // SAFETY: the caller's contract.
    unsafe { ptr.as_mut() }.ok_or_else(|| format!("{what} is null (freed, or never made)"))
}

/// # Safety
/// `ptr` is null or a handle made by this module and not freed yet.
unsafe fn free<T>(ptr: *mut T) {
    if !ptr.is_null() {
        // SAFETY: made by `Box::into_raw` in `handle`, freed once.
        drop(unsafe { Box::from_raw(ptr) });
    }
}

// ------------------------------------------------------------------ models

/// A model from the `len` bytes of a model file at `bytes` (validated and
/// copied; the bytes may be freed afterwards), or null.
///
/// # Safety
/// `len` bytes are readable at `bytes`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_model_new(bytes: *const u8, len: usize) -> *mut Model {
    // SAFETY: the contract.
    let bytes = unsafe { slice(bytes, len) };
    handle(Model::from_bytes(bytes).map_err(|e| e.to_string()))
}

/// # Safety
/// A handle of `lstmrt_model_new`, freed once, after every state made from it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_model_free(model: *mut Model) {
    // SAFETY: the contract.
    unsafe { free(model) }
}

/// JSON text for a string.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What the model is, as JSON in [`lstmrt_text`]: sizes, cell, dtype, the
/// head, the chunks of a chunked model, the tier.
fn info(model: &Model) -> String {
    let a = model.architecture();
    let meta = model.metadata();
    let head = meta.head.as_ref().map_or("null".to_string(), |h| {
        let labels: Vec<String> = h.labels.iter().map(|l| json_string(l)).collect();
        format!(r#"{{"outputs":{},"labels":[{}]}}"#, h.out_features, labels.join(","))
    });
    let chunks = match (meta.stages.as_ref(), model.stages_plan()) {
        (Some(s), Some(plan)) => format!(
            r#"{{"chunk":{},"channels":{},"context":{},"sampleRate":{},"outputs":{}}}"#,
            s.chunk,
            s.channels,
            s.context,
            s.sample_rate,
            plan.out_values()
        ),
        _ => "null".to_string(),
    };
    format!(
        r#"{{"cell":{},"inputSize":{},"hiddenSize":{},"outputSize":{},"layers":{},"bidirectional":{},"dtype":{},"head":{},"chunks":{},"isa":{},"vocabulary":{}}}"#,
        json_string(a.cell.name()),
        a.input_size,
        a.hidden_size,
        a.sequence_output_size(),
        a.num_layers,
        a.bidirectional,
        json_string(model.dtype().name()),
        head,
        chunks,
        json_string(model.isa().name()),
        meta.vocabulary.as_ref().map_or(0, |v| v.tokens.len()),
    )
}

/// Puts the model's JSON description in [`lstmrt_text`].
///
/// # Safety
/// `model` is a live model handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_model_info(model: *const Model) -> i32 {
    // SAFETY: the contract.
    status(unsafe { get(model, "model") }.map(|m| set_text(info(m))))
}

/// Applies the model's head to one output `y` (`outputSize` values) into
/// `out` (the head's outputs).
///
/// # Safety
/// Live handle; `y` and `out` sized as the model says.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_head(model: *const Model, y: *const f32, out: *mut f32) -> i32 {
    status((|| {
        // SAFETY: the contract.
        let model = unsafe { get(model, "model") }?;
        let head = model.metadata().head.as_ref().ok_or("this model has no output head")?;
        let width = model.architecture().sequence_output_size();
        // SAFETY: the contract: sized by the model.
        let (y, out) = unsafe { (slice(y, width), slice_mut(out, head.out_features as usize)) };
        model.apply_head(y, out).map_err(|e| e.to_string())
    })())
}

// ------------------------------------------------------------------ states

/// A state for `batch` sequences (zeros, or the file's initial state), or null.
///
/// # Safety
/// `model` is a live model handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_state_new(model: *const Model, batch: usize) -> *mut State {
    // SAFETY: the contract.
    handle(unsafe { get(model, "model") }.and_then(|m| m.new_batch_state(batch).map_err(|e| e.to_string())))
}

/// # Safety
/// A state handle, freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_state_free(state: *mut State) {
    // SAFETY: the contract.
    unsafe { free(state) }
}

/// Back to the initial state.
///
/// # Safety
/// A live state handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_state_reset(state: *mut State) -> i32 {
    // SAFETY: the contract.
    status(unsafe { get_mut(state, "state") }.map(State::reset))
}

/// Copies `h` (`which` 0) or `c` (1) of the state into `out` (`len` floats,
/// exactly the state's size: `[layers * directions, batch, size]`).
///
/// # Safety
/// A live state handle; `len` floats writable at `out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_state_get(state: *const State, which: u32, out: *mut f32, len: usize) -> i32 {
    status((|| {
        // SAFETY: the contract.
        let state = unsafe { get(state, "state") }?;
        let values = if which == 0 { state.h() } else { state.c() };
        if values.len() != len {
            return Err(format!("the state holds {} values, the buffer {len}", values.len()));
        }
        // SAFETY: the contract.
        unsafe { slice_mut(out, len) }.copy_from_slice(values);
        Ok(())
    })())
}

/// The number of values of `h` (`which` 0) or `c` (1).
///
/// # Safety
/// A live state handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_state_len(state: *const State, which: u32) -> usize {
    // SAFETY: the contract.
    unsafe { get(state, "state") }.map_or(0, |s| if which == 0 { s.h().len() } else { s.c().len() })
}

/// Sets `h` (`which` 0) or `c` (1) from `len` floats at `values`.
///
/// # Safety
/// A live state handle; `len` floats readable at `values`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_state_set(state: *mut State, which: u32, values: *const f32, len: usize) -> i32 {
    status((|| {
        // SAFETY: the contract.
        let state = unsafe { get_mut(state, "state") }?;
        // SAFETY: the contract.
        let values = unsafe { slice(values, len) };
        if which == 0 { state.set_h(values) } else { state.set_c(values) }.map_err(|e| e.to_string())
    })())
}

/// One step: `x` `[batch, inputSize]` in, the top layer's `h` `[batch,
/// outputSize]` written to `y`.
///
/// # Safety
/// Live handles; `x` and `y` sized as the state's batch and the model say.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_step(model: *const Model, state: *mut State, x: *const f32, y: *mut f32) -> i32 {
    status((|| {
        // SAFETY: the contract.
        let (model, state) = unsafe { (get(model, "model")?, get_mut(state, "state")?) };
        let a = model.architecture();
        let batch = state.batch();
        // SAFETY: the contract: sized by the batch and the model.
        let (x, y) =
            unsafe { (slice(x, batch * a.input_size as usize), slice_mut(y, batch * a.sequence_output_size())) };
        let out = model.step(state, x).map_err(|e| e.to_string())?;
        y.copy_from_slice(out);
        Ok(())
    })())
}

/// A whole sequence: `xs` `[steps, batch, inputSize]` in, `out` `[steps,
/// batch, outputSize]` written; the state carries on.
///
/// # Safety
/// Live handles; buffers sized by `steps`, the batch and the model.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_run(
    model: *const Model,
    state: *mut State,
    xs: *const f32,
    steps: usize,
    out: *mut f32,
) -> i32 {
    status((|| {
        // SAFETY: the contract.
        let (model, state) = unsafe { (get(model, "model")?, get_mut(state, "state")?) };
        let a = model.architecture();
        let rows = steps.checked_mul(state.batch()).ok_or("too many steps")?;
        let n_in = rows.checked_mul(a.input_size as usize).ok_or("too many steps")?;
        let n_out = rows.checked_mul(a.sequence_output_size()).ok_or("too many steps")?;
        // SAFETY: the contract.
        let (xs, out) = unsafe { (slice(xs, n_in), slice_mut(out, n_out)) };
        model.run_into(state, xs, out).map_err(|e| e.to_string())
    })())
}

// ------------------------------------------------------------------ stream batches

/// A stream batch of `capacity` streams, or null.
///
/// # Safety
/// A live model handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_streams_new(model: *const Model, capacity: usize) -> *mut StreamBatch {
    // SAFETY: the contract.
    handle(unsafe { get(model, "model") }.and_then(|m| m.new_stream_batch(capacity).map_err(|e| e.to_string())))
}

/// # Safety
/// A stream batch handle, freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_streams_free(streams: *mut StreamBatch) {
    // SAFETY: the contract.
    unsafe { free(streams) }
}

/// A stream id as JavaScript holds it: index, generation's low and high
/// 32 bits (a generation can pass 2^32; a JavaScript number is exact to 2^53).
fn id_of(words: &[u32]) -> StreamId {
    StreamId::from_parts(words[0], (words[2] as u64) << 32 | words[1] as u64)
}

fn write_id(id: StreamId, out: &mut [u32]) {
    out[0] = id.index() as u32;
    out[1] = id.generation() as u32;
    out[2] = (id.generation() >> 32) as u32;
}

/// A new stream; its id is written to `id` (3 words).
///
/// # Safety
/// A live handle; 3 u32 writable at `id`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_streams_join(streams: *mut StreamBatch, id: *mut u32) -> i32 {
    status((|| {
        // SAFETY: the contract.
        let (streams, id) = unsafe { (get_mut(streams, "stream batch")?, slice_mut(id, 3)) };
        write_id(streams.join().map_err(|e| e.to_string())?, id);
        Ok(())
    })())
}

/// `leave` (`what` 0) or `reset` (1) the stream of `id` (3 words).
///
/// # Safety
/// A live handle; 3 u32 readable at `id`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_streams_change(streams: *mut StreamBatch, id: *const u32, what: u32) -> i32 {
    status((|| {
        // SAFETY: the contract.
        let (streams, id) = unsafe { (get_mut(streams, "stream batch")?, id_of(slice(id, 3))) };
        if what == 0 { streams.leave(id) } else { streams.reset(id) }.map_err(|e| e.to_string())
    })())
}

/// One step of `n` streams (`ids`: 3 words each), `xs` `[n, inputSize]`,
/// outputs `[n, outputSize]` to `out` in the order given.
///
/// # Safety
/// Live handles; buffers sized by `n` and the model.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_streams_step(
    model: *const Model,
    streams: *mut StreamBatch,
    ids: *const u32,
    n: usize,
    xs: *const f32,
    out: *mut f32,
) -> i32 {
    status((|| {
        // SAFETY: the contract.
        let (model, streams) = unsafe { (get(model, "model")?, get_mut(streams, "stream batch")?) };
        let a = model.architecture();
        if n > streams.capacity() {
            return Err(format!("{n} streams, but the batch holds {}", streams.capacity()));
        }
        // SAFETY: the contract.
        let words = unsafe { slice(ids, 3 * n) };
        let mut list = [StreamId::from_parts(0, 0); 64];
        let mut many = Vec::new();
        let ids: &[StreamId] = if n <= list.len() {
            for (slot, w) in list.iter_mut().zip(words.chunks_exact(3)) {
                *slot = id_of(w);
            }
            &list[..n]
        } else {
            many.extend(words.chunks_exact(3).map(id_of));
            &many
        };
        // SAFETY: the contract.
        let (xs, out) = unsafe { (slice(xs, n * a.input_size as usize), slice_mut(out, n * a.sequence_output_size())) };
        out.copy_from_slice(streams.step(model, ids, xs).map_err(|e| e.to_string())?);
        Ok(())
    })())
}

// ------------------------------------------------------------------ chunked models

/// A chunk state of `streams` streams of a chunked model, or null.
///
/// # Safety
/// A live model handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_chunks_new(model: *const Model, streams: usize) -> *mut ChunkState {
    // SAFETY: the contract.
    handle(unsafe { get(model, "model") }.and_then(|m| m.new_chunk_state(streams).map_err(|e| e.to_string())))
}

/// # Safety
/// A chunk state handle, freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_chunks_free(chunks: *mut ChunkState) {
    // SAFETY: the contract.
    unsafe { free(chunks) }
}

/// One chunk of every stream: `x` `[streams, chunk, channels]`, the results
/// `[streams, outputs]` to `out`.
///
/// # Safety
/// Live handles; buffers sized by the streams and the model's chunks.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_chunks_run(
    model: *const Model,
    chunks: *mut ChunkState,
    x: *const f32,
    out: *mut f32,
) -> i32 {
    status((|| {
        // SAFETY: the contract.
        let (model, chunks) = unsafe { (get(model, "model")?, get_mut(chunks, "chunk state")?) };
        let stages = model.metadata().stages.as_ref().ok_or("this model has no stages")?;
        let plan = model.stages_plan().ok_or("this model has no stages")?;
        let streams = chunks.batch();
        // SAFETY: the contract.
        let (x, out) = unsafe {
            (slice(x, streams * (stages.chunk * stages.channels) as usize), slice_mut(out, streams * plan.out_values()))
        };
        out.copy_from_slice(model.run_chunk(chunks, x).map_err(|e| e.to_string())?);
        Ok(())
    })())
}

/// Starts stream `stream` afresh (`stream` = -1: every stream).
///
/// # Safety
/// A live chunk state handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_chunks_reset(chunks: *mut ChunkState, stream: i32) -> i32 {
    status((|| {
        // SAFETY: the contract.
        let chunks = unsafe { get_mut(chunks, "chunk state") }?;
        if stream < 0 {
            chunks.reset();
            Ok(())
        } else {
            chunks.reset_stream(stream as usize).map_err(|e| e.to_string())
        }
    })())
}

// ------------------------------------------------------------------ speech segments

/// Silero's segments (`lstmrt::vad::speech_timestamps`) of `n`
/// probabilities, one per `window` samples at `rate`, of a signal of
/// `length` samples. `options` holds 8 numbers: threshold, neg_threshold
/// (NaN: the default), min_speech_duration_ms, max_speech_duration_s
/// (Infinity: none), min_silence_duration_ms, speech_pad_ms,
/// min_silence_at_max_speech, use_max_poss_sil_at_max_speech (0 or 1).
/// Writes `[start, end]` pairs (samples) to `out` (room for `n` pairs);
/// returns the number of segments, or -1 (refused).
///
/// # Safety
/// `n` floats at `probs`, 8 doubles at `options`, `2 * n` doubles at `out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_speech_timestamps(
    probs: *const f32,
    n: usize,
    window: usize,
    rate: u32,
    options: *const f64,
    length: f64,
    out: *mut f64,
) -> i32 {
    // SAFETY: the contract.
    let (probs, o, out) = unsafe { (slice(probs, n), slice(options, 8), slice_mut(out, 2 * n)) };
    if window == 0 || rate == 0 || length.is_nan() || length < 0.0 {
        set_text("speech segments need a window, a rate and a length".into());
        return -1;
    }
    let options = SpeechOptions {
        threshold: o[0],
        neg_threshold: (!o[1].is_nan()).then_some(o[1]),
        min_speech_duration_ms: o[2],
        max_speech_duration_s: o[3],
        min_silence_duration_ms: o[4],
        speech_pad_ms: o[5],
        min_silence_at_max_speech: o[6],
        use_max_poss_sil_at_max_speech: o[7] != 0.0,
    };
    let segments = speech_timestamps(probs, window, rate, &options, Some(length as usize));
    for (pair, s) in out.chunks_exact_mut(2).zip(&segments) {
        pair[0] = s.start as f64;
        pair[1] = s.end as f64;
    }
    segments.len() as i32
}

/// A `VADIterator` (speech starts and ends chunk by chunk).
#[unsafe(no_mangle)]
pub extern "C" fn lstmrt_vad_new(
    threshold: f64,
    rate: u32,
    min_silence_ms: f64,
    speech_pad_ms: f64,
) -> *mut VadIterator {
    handle(Ok(VadIterator::new(threshold, rate, min_silence_ms, speech_pad_ms)))
}

/// # Safety
/// A handle of `lstmrt_vad_new`, freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_vad_free(vad: *mut VadIterator) {
    // SAFETY: the contract.
    unsafe { free(vad) }
}

/// The next chunk's probability: returns 0 (nothing), 1 (speech started at
/// `*at`) or 2 (speech ended at `*at`); -1 for a null handle. `window` < 0
/// resets the iterator instead.
///
/// # Safety
/// A live handle; one double writable at `at`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_vad_push(vad: *mut VadIterator, p: f32, window: i32, at: *mut f64) -> i32 {
    // SAFETY: the contract.
    let Ok(vad) = (unsafe { get_mut(vad, "VAD iterator") }) else { return -1 };
    if window < 0 {
        vad.reset();
        return 0;
    }
    // SAFETY: the contract.
    let at = unsafe { &mut *at };
    match vad.push(p, window as usize) {
        None => 0,
        Some(VadEvent::Start(s)) => {
            *at = s;
            1
        }
        Some(VadEvent::End(e)) => {
            *at = e;
            2
        }
    }
}
