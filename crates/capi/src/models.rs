//! Models: opened (memory-mapped), loaded or read from a buffer, freed, and their sizes.

use super::*;
use crate::ffi::*;

pub(crate) fn open_with(
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
pub(crate) fn with_model<T>(model: *const lstmrt_model, fallback: T, f: impl FnOnce(&Model) -> T) -> T {
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
