//! The C ABI of lstmrt (`include/lstmrt.h`): a model handle, per-stream
//! states, `lstmrt_step` / `lstmrt_run`, stream batches, text helpers.
//!
//! Every entry point checks its pointers, runs inside `catch_unwind` (a panic
//! becomes [`lstmrt_status::LSTMRT_PANIC`]), and writes its outputs only on
//! success; the message of the last failure on a thread is
//! [`lstmrt_last_error`]'s.

#![allow(non_camel_case_types)]

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use lstmrt::format::HeadTask;
use lstmrt::{Error, Model, State, StreamBatch, StreamId};

/// What a call did. `LSTMRT_OK` is 0; on anything else nothing was written
/// and `lstmrt_last_error()` says why.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum lstmrt_status {
    /// Done.
    LSTMRT_OK = 0,
    /// A NULL or misaligned pointer, a size that does not fit the model, a
    /// state of another shape, a stream id that is not live, a bad token.
    LSTMRT_BAD_ARGUMENT = 1,
    /// Not a valid model file, or not a saved state of this model.
    LSTMRT_BAD_FILE = 2,
    /// The model cannot do it (stepping a bidirectional model, text on a
    /// model without vocabulary, an instruction-set tier this CPU lacks).
    LSTMRT_UNSUPPORTED = 3,
    /// A file could not be opened or read.
    LSTMRT_IO = 4,
    /// A bug in lstmrt: it panicked (the message says where).
    LSTMRT_PANIC = 5,
    /// The caller's buffer is too small; the size needed was written where
    /// the function's documentation says.
    LSTMRT_BUFFER_TOO_SMALL = 6,
    /// The sizes asked for (a batch, streams) need more memory than the
    /// process can allocate; the message says how much.
    LSTMRT_OUT_OF_MEMORY = 7,
}

use lstmrt_status::*;

/// A model file, opened and validated (memory-mapped by `lstmrt_model_open`).
pub struct lstmrt_model {
    model: Model,
}

/// The recurrent state of `batch` streams run together, with its buffers.
pub struct lstmrt_state {
    state: State,
}

/// Up to `capacity` streams of one model, stepped together by one call.
pub struct lstmrt_streams {
    batch: StreamBatch,
    /// The ids of a step, converted (room for `capacity`, so no allocation).
    ids: Vec<StreamId>,
}

/// The carried state of a chunked model's streams (format 1.3 stages, such
/// as Silero VAD): the recurrent state, each stream's context frames, and
/// every buffer a chunk needs.
pub struct lstmrt_chunks {
    chunks: lstmrt::ChunkState,
}

/// A stream of an `lstmrt_streams`: valid until the stream leaves; a later
/// stream in the same place has another `generation`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct lstmrt_stream_id {
    /// The stream's place, `0..capacity`.
    pub index: u32,
    /// How many streams held the place before.
    pub generation: u64,
}

/// A refusal: the status and the one-line message.
struct Failure(lstmrt_status, String);

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        use lstmrt::ErrorKind as K;
        // Every kind named: a new one does not compile until it has a status.
        let status = match e.kind() {
            K::Io => LSTMRT_IO,
            K::Format | K::BadState => LSTMRT_BAD_FILE,
            K::Isa | K::Unsupported => LSTMRT_UNSUPPORTED,
            K::OutOfMemory => LSTMRT_OUT_OF_MEMORY,
            K::Shape
            | K::StateMismatch
            | K::BadLengths
            | K::Stream
            | K::UnknownToken
            | K::BadTokenId
            | K::Batch
            | K::NotFinite => LSTMRT_BAD_ARGUMENT,
        };
        Failure(status, e.to_string())
    }
}

fn bad(msg: impl Into<String>) -> Failure {
    Failure(LSTMRT_BAD_ARGUMENT, msg.into())
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(msg: &str) {
    let msg = CString::new(msg.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = msg);
}

/// Runs `f` as an entry point: a refusal or a panic becomes the status and
/// this thread's last error.
fn guard(f: impl FnOnce() -> Result<(), Failure>) -> lstmrt_status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => LSTMRT_OK,
        Ok(Err(Failure(status, msg))) => {
            set_last_error(&msg);
            status
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            set_last_error(&format!("lstmrt panicked (a bug: please report it): {what}"));
            LSTMRT_PANIC
        }
    }
}

/// Like [`guard`] for functions that return a value, not a status:
/// `fallback` on a NULL argument or a panic.
fn guard_value<T>(fallback: T, f: impl FnOnce() -> Option<T>) -> T {
    catch_unwind(AssertUnwindSafe(f)).ok().flatten().unwrap_or(fallback)
}

/// `&*p`, or a refusal naming `what` when `p` is NULL.
///
/// # Safety
/// `p` is NULL or points to a live `T` that nothing mutates meanwhile.
unsafe fn get<'a, T>(p: *const T, what: &str) -> Result<&'a T, Failure> {
    // SAFETY: the caller's promise; NULL is refused by `as_ref`.
    unsafe { p.as_ref() }.ok_or_else(|| bad(format!("{what} is NULL")))
}

/// `&mut *p`, or a refusal naming `what` when `p` is NULL.
///
/// # Safety
/// `p` is NULL or points to a live `T` that nothing else uses meanwhile.
unsafe fn get_mut<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T, Failure> {
    // SAFETY: the caller's promise; NULL is refused by `as_mut`.
    unsafe { p.as_mut() }.ok_or_else(|| bad(format!("{what} is NULL")))
}

/// The `len` values at `p`, refused when `p` is NULL (unless `len` is 0) or
/// not aligned for `T`.
///
/// # Safety
/// `p` is NULL or points to `len` readable values of `T`.
unsafe fn slice<'a, T>(p: *const T, len: usize, what: &str) -> Result<&'a [T], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(bad(format!("{what} is NULL")));
    }
    if !p.is_aligned() {
        return Err(bad(format!("{what} is not aligned for its element type")));
    }
    // SAFETY: non-NULL, aligned, and the caller promises `len` values.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// The `len` writable values at `p`, checked as [`slice`].
///
/// # Safety
/// `p` is NULL or points to `len` writable values of `T` that nothing else
/// uses meanwhile.
unsafe fn slice_mut<'a, T>(p: *mut T, len: usize, what: &str) -> Result<&'a mut [T], Failure> {
    if len == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(bad(format!("{what} is NULL")));
    }
    if !p.is_aligned() {
        return Err(bad(format!("{what} is not aligned for its element type")));
    }
    // SAFETY: non-NULL, aligned, and the caller promises `len` values.
    Ok(unsafe { std::slice::from_raw_parts_mut(p, len) })
}

/// A NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string.
unsafe fn text<'a>(p: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if p.is_null() {
        return Err(bad(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's promise.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().map_err(|_| bad(format!("{what} is not UTF-8")))
}

/// Writes `value` to the out-pointer `out` (checked for NULL first).
///
/// # Safety
/// `out` is NULL or points to a writable `T`.
unsafe fn put<T>(out: *mut T, value: T) {
    // SAFETY: the caller's promise; every caller checked `out` for NULL.
    unsafe { out.write(value) }
}

/// Hands `value` to the caller as a new handle in `*out` (freed by
/// [`free_handle`] through the type's `_free` function).
///
/// # Safety
/// `out` was checked for NULL and is writable.
unsafe fn new_handle<T>(out: *mut *mut T, value: T) {
    // SAFETY: the caller's promise.
    unsafe { put(out, Box::into_raw(Box::new(value))) }
}

/// Frees a handle of [`new_handle`]; NULL is fine.
///
/// # Safety
/// `handle` is NULL or came from `new_handle` and is not used afterwards.
unsafe fn free_handle<T>(handle: *mut T) {
    if !handle.is_null() {
        // SAFETY: made by Box::into_raw in `new_handle`, not freed before (contract).
        drop(unsafe { Box::from_raw(handle) });
    }
}

fn check_out<T>(out: *mut T, what: &str) -> Result<(), Failure> {
    if out.is_null() { Err(bad(format!("{what} is NULL"))) } else { Ok(()) }
}

/// [`guard`] for functions filling a buffer whose size the caller cannot
/// know ("ask with NULL, 0, then allocate"): `f` sets `needed` once it knows
/// the size, and `*size` receives it when the call succeeds or returns
/// LSTMRT_BUFFER_TOO_SMALL (`f` checks `size` for NULL before that).
///
/// # Safety
/// `size` is NULL or points to a writable `usize`.
unsafe fn guard_sized(size: *mut usize, f: impl FnOnce(&mut Option<usize>) -> Result<(), Failure>) -> lstmrt_status {
    let mut needed = None;
    let status = guard(|| f(&mut needed));
    if let (Some(n), LSTMRT_OK | LSTMRT_BUFFER_TOO_SMALL) = (needed, status)
        && !size.is_null()
    {
        // SAFETY: non-NULL, writable by the caller's promise.
        unsafe { put(size, n) };
    }
    status
}

/// Copies `values` into the caller's `dst` of `capacity` elements, or
/// refuses with LSTMRT_BUFFER_TOO_SMALL and the message `too_small`.
///
/// # Safety
/// `dst` is NULL or points to `capacity` writable values.
unsafe fn copy_out<T: Copy>(
    values: &[T],
    dst: *mut T,
    capacity: usize,
    what: &str,
    too_small: impl FnOnce() -> String,
) -> Result<(), Failure> {
    if capacity < values.len() {
        return Err(Failure(LSTMRT_BUFFER_TOO_SMALL, too_small()));
    }
    // SAFETY: `capacity` >= `values.len()` writable values by the contract.
    unsafe { slice_mut(dst, values.len(), what) }?.copy_from_slice(values);
    Ok(())
}

// ---------------------------------------------------------------- library

/// The library's version, `"MAJOR.MINOR.PATCH"` (static; equal to the
/// header's `LSTMRT_VERSION_*` when header and library match).
#[unsafe(no_mangle)]
pub extern "C" fn lstmrt_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The message of the last failed call on this thread ("" if none). Valid
/// until the next failing call on this thread.
#[unsafe(no_mangle)]
pub extern "C" fn lstmrt_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// The status's name, `"LSTMRT_OK"` ... (static; `"unknown status"` otherwise).
#[unsafe(no_mangle)]
pub extern "C" fn lstmrt_status_name(status: u32) -> *const c_char {
    let name: &'static str = match status {
        0 => "LSTMRT_OK\0",
        1 => "LSTMRT_BAD_ARGUMENT\0",
        2 => "LSTMRT_BAD_FILE\0",
        3 => "LSTMRT_UNSUPPORTED\0",
        4 => "LSTMRT_IO\0",
        5 => "LSTMRT_PANIC\0",
        6 => "LSTMRT_BUFFER_TOO_SMALL\0",
        7 => "LSTMRT_OUT_OF_MEMORY\0",
        _ => "unknown status\0",
    };
    name.as_ptr().cast()
}

// ---------------------------------------------------------------- models

fn open_with(
    path: *const c_char,
    out: *mut *mut lstmrt_model,
    open: fn(&str) -> Result<Model, Error>,
) -> lstmrt_status {
    guard(|| {
        // SAFETY: `path` is NULL or a C string (the header's contract).
        let path = unsafe { text(path, "path") }?;
        check_out(out, "out")?;
        let model = open(path)?;
        // SAFETY: `out` is not NULL (checked) and writable (the contract).
        unsafe { new_handle(out, lstmrt_model { model }) };
        Ok(())
    })
}

/// Opens the model file at `path`, memory-mapped and validated once, into
/// `*out`. The file must not be truncated while the model is open (a mapped
/// page that vanishes is a SIGBUS): when it may change, use
/// `lstmrt_model_load`. World-writable files are read rather than mapped.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_model_open(path: *const c_char, out: *mut *mut lstmrt_model) -> lstmrt_status {
    open_with(path, out, |p| Model::open(p))
}

/// Reads the model file at `path` into memory of the model's own (no map:
/// the file may change or vanish afterwards), validated, into `*out`.
///
/// # Safety
/// As `lstmrt_model_open`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_model_load(path: *const c_char, out: *mut *mut lstmrt_model) -> lstmrt_status {
    open_with(path, out, |p| Model::load(p))
}

/// A model from the `len` bytes of a model file at `bytes` (copied: the
/// buffer may be freed when this returns), validated, into `*out`.
///
/// # Safety
/// `bytes` is NULL or points to `len` readable bytes; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_model_from_buffer(
    bytes: *const u8,
    len: usize,
    out: *mut *mut lstmrt_model,
) -> lstmrt_status {
    guard(|| {
        if bytes.is_null() {
            return Err(bad("bytes is NULL"));
        }
        // SAFETY: non-NULL, `len` bytes by the contract (u8 is always aligned).
        let bytes = unsafe { slice(bytes, len, "bytes") }?;
        check_out(out, "out")?;
        let model = Model::from_bytes(bytes)?;
        // SAFETY: `out` checked, writable by the contract.
        unsafe { new_handle(out, lstmrt_model { model }) };
        Ok(())
    })
}

/// Frees a model (NULL is fine). Free its states and stream batches first.
///
/// # Safety
/// `model` is NULL or from `lstmrt_model_*`, not freed before, and no other
/// thread uses it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_model_free(model: *mut lstmrt_model) {
    // SAFETY: the contract: made by this library, freed once.
    unsafe { free_handle(model) }
}

/// Reads a property of a model, `fallback` when `model` is NULL.
fn with_model<T>(model: *const lstmrt_model, fallback: T, f: impl FnOnce(&Model) -> T) -> T {
    // SAFETY: NULL or a live model (the header's contract for every getter).
    guard_value(fallback, || unsafe { model.as_ref() }.map(|m| f(&m.model)))
}

/// Features per timestep and stream (0 for NULL).
///
/// # Safety
/// `model` is NULL or a live model.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_model_input_size(model: *const lstmrt_model) -> usize {
    with_model(model, 0, |m| m.architecture().input_size as usize)
}

/// Outputs per timestep and stream of `lstmrt_step` / `lstmrt_run`: the top
/// layer's `h` (directions x hidden or projection size; 0 for NULL).
///
/// # Safety
/// `model` is NULL or a live model.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_model_output_size(model: *const lstmrt_model) -> usize {
    with_model(model, 0, |m| m.architecture().sequence_output_size())
}

/// Outputs of the model's head (`lstmrt_head`), 0 when it has none or for NULL.
///
/// # Safety
/// `model` is NULL or a live model.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_model_head_size(model: *const lstmrt_model) -> usize {
    with_model(model, 0, |m| m.metadata().head.as_ref().map_or(0, |h| h.out_features as usize))
}

/// The instruction-set tier the model's kernels run on (`"avx512"`, ...;
/// static; `""` for NULL).
///
/// # Safety
/// `model` is NULL or a live model.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_model_isa(model: *const lstmrt_model) -> *const c_char {
    let name = with_model(model, "", |m| m.isa().name());
    // Tier names are static; a NUL-terminated copy of each, made once.
    static NAMES: std::sync::OnceLock<Vec<(&'static str, CString)>> = std::sync::OnceLock::new();
    let names = NAMES.get_or_init(|| {
        ["", "scalar", "wide", "avx2", "avx512", "amx"]
            .into_iter()
            .map(|n| (n, CString::new(n).expect("no NUL")))
            .collect()
    });
    names.iter().find(|(n, _)| *n == name).map_or(c"?".as_ptr(), |(_, c)| c.as_ptr())
}

// ---------------------------------------------------------------- states

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

fn state_part(
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

// ---------------------------------------------------------------- running

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
fn sequence_sizes(model: &Model, batch: usize, steps: usize) -> Result<(usize, usize), Failure> {
    let arch = model.architecture();
    let n_in = steps.checked_mul(batch).and_then(|n| n.checked_mul(arch.input_size as usize));
    let n_out = steps.checked_mul(batch).and_then(|n| n.checked_mul(arch.sequence_output_size()));
    match (n_in, n_out) {
        (Some(i), Some(o)) if i <= isize::MAX as usize / 4 && o <= isize::MAX as usize / 4 => Ok((i, o)),
        _ => Err(bad(format!("{steps} steps of batch {batch} do not fit in memory"))),
    }
}

// ---------------------------------------------------------------- stream batches

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

fn to_id(id: lstmrt_stream_id) -> StreamId {
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

// ---------------------------------------------------------------- chunked models

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

// ---------------------------------------------------------------- text

/// Tokenizes the NUL-terminated UTF-8 `text` with the model's vocabulary:
/// `*count` is set to the number of tokens; their ids are written to `ids`
/// when `capacity` suffices, else the status is LSTMRT_BUFFER_TOO_SMALL
/// (`ids` may be NULL to ask for the count).
///
/// # Safety
/// `model` is NULL or live; `text` is NULL or a C string; `ids` is NULL or
/// holds `capacity` values; `count` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_tokenize(
    model: *const lstmrt_model,
    text: *const c_char,
    ids: *mut u32,
    capacity: usize,
    count: *mut usize,
) -> lstmrt_status {
    // SAFETY: `count` is NULL or writable by the contract.
    unsafe {
        guard_sized(count, |needed| {
            // SAFETY: the contract.
            let model = &get(model, "model")?.model;
            // SAFETY: the contract.
            let text = self::text(text, "text")?;
            check_out(count, "count")?;
            let tokens = model.tokenize(text)?;
            *needed = Some(tokens.len());
            // SAFETY: `capacity` values at `ids` by the contract.
            copy_out(&tokens, ids, capacity, "ids", || {
                format!("the text has {} tokens, the buffer has room for {capacity}", tokens.len())
            })
        })
    }
}

/// The input vector of token `id` (its embedding row, or one-hot) into `x`
/// (`[input_size]`).
///
/// # Safety
/// `model` is NULL or live; `x` is NULL or holds `input_size` floats.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_token_input(model: *const lstmrt_model, id: u32, x: *mut f32) -> lstmrt_status {
    guard(|| {
        // SAFETY: the contract.
        let model = &unsafe { get(model, "model") }?.model;
        // SAFETY: the size the contract promises.
        let x = unsafe { slice_mut(x, model.architecture().input_size as usize, "x") }?;
        model.token_input(id, x)?;
        Ok(())
    })
}

/// The model's head on one stream's step output `y` (`[output_size]`) into
/// `out` (`[head_size]`), as probabilities where the head is a classifier or
/// a language model (a softmax over logits, as `lstm-run --text` prints).
///
/// # Safety
/// `model` is NULL or live; `y` and `out` are NULL or hold `output_size`
/// and `head_size` floats.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_head(model: *const lstmrt_model, y: *const f32, out: *mut f32) -> lstmrt_status {
    guard(|| {
        // SAFETY: the contract.
        let model = &unsafe { get(model, "model") }?.model;
        let Some(head) = model.metadata().head.as_ref() else {
            return Err(Failure(LSTMRT_UNSUPPORTED, "this model has no output head".into()));
        };
        // SAFETY: the sizes the contract promises.
        let y = unsafe { slice(y, model.architecture().sequence_output_size(), "y") }?;
        // SAFETY: the contract stated on this function: the buffer holds that many values (NULL refused unless empty).
        let out = unsafe { slice_mut(out, head.out_features as usize, "out") }?;
        model.apply_head(y, out)?;
        let distribution = matches!(head.task, HeadTask::Classifier | HeadTask::LanguageModel);
        if head.activation == lstmrt::format::HeadActivation::None && distribution {
            lstmrt::text::softmax(out);
        }
        Ok(())
    })
}

/// The name of head output `index` (its label, or for a language model its
/// token) into `buf` as a NUL-terminated string; `*len` is set to its length
/// without the NUL. When `capacity` is less than `*len + 1`, nothing is
/// written to `buf` and the status is LSTMRT_BUFFER_TOO_SMALL.
///
/// # Safety
/// `model` is NULL or live; `buf` is NULL or holds `capacity` bytes; `len`
/// is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lstmrt_head_label(
    model: *const lstmrt_model,
    index: usize,
    buf: *mut c_char,
    capacity: usize,
    len: *mut usize,
) -> lstmrt_status {
    // SAFETY: `len` is NULL or writable by the contract.
    unsafe {
        guard_sized(len, |needed| {
            // SAFETY: the contract.
            let model = &get(model, "model")?.model;
            check_out(len, "len")?;
            let Some(head) = model.metadata().head.as_ref() else {
                return Err(Failure(LSTMRT_UNSUPPORTED, "this model has no output head".into()));
            };
            if index >= head.out_features as usize {
                return Err(bad(format!("head output {index} does not exist (the head has {})", head.out_features)));
            }
            let name = match head.labels.get(index) {
                Some(label) => label.as_str(),
                None if head.task == HeadTask::LanguageModel => model.token(index as u32)?,
                None => return Err(bad(format!("head output {index} has no label"))),
            };
            *needed = Some(name.len());
            let with_nul: Vec<u8> = name.bytes().chain([0]).collect();
            // SAFETY: `capacity` bytes at `buf` by the contract.
            copy_out(&with_nul, buf.cast::<u8>(), capacity, "buf", || {
                format!("the label needs {} bytes with its NUL, the buffer has {capacity}", with_nul.len())
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_status_and_a_message() {
        let status = guard(|| panic!("kernel bug at row {}", 3));
        assert_eq!(status, LSTMRT_PANIC);
        // SAFETY: NUL-terminated, valid until the next failure on this thread.
        let msg = unsafe { CStr::from_ptr(lstmrt_last_error()) }.to_str().unwrap().to_string();
        assert_eq!(msg, "lstmrt panicked (a bug: please report it): kernel bug at row 3");
        assert_eq!(guard_value(7, || -> Option<i32> { panic!("x") }), 7);
    }

    #[test]
    fn a_message_with_a_nul_is_kept_whole() {
        set_last_error("a\0b");
        // SAFETY: as above.
        assert_eq!(unsafe { CStr::from_ptr(lstmrt_last_error()) }.to_str().unwrap(), "a\\0b");
    }
}
