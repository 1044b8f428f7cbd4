//! What every entry point shares: failures and their status, the guard
//! that catches panics and records the last error, and checked pointers.

use super::*;

/// A refusal: the status and the one-line message.
pub(crate) struct Failure(pub(crate) lstmrt_status, pub(crate) String);

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

pub(crate) fn bad(msg: impl Into<String>) -> Failure {
    Failure(LSTMRT_BAD_ARGUMENT, msg.into())
}

thread_local! {
    pub(crate) static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

pub(crate) fn set_last_error(msg: &str) {
    let msg = CString::new(msg.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = msg);
}

/// Runs `f` as an entry point: a refusal or a panic becomes the status and
/// this thread's last error.
pub(crate) fn guard(f: impl FnOnce() -> Result<(), Failure>) -> lstmrt_status {
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
pub(crate) fn guard_value<T>(fallback: T, f: impl FnOnce() -> Option<T>) -> T {
    catch_unwind(AssertUnwindSafe(f)).ok().flatten().unwrap_or(fallback)
}

/// `&*p`, or a refusal naming `what` when `p` is NULL.
///
/// # Safety
/// `p` is NULL or points to a live `T` that nothing mutates meanwhile.
pub(crate) unsafe fn get<'a, T>(p: *const T, what: &str) -> Result<&'a T, Failure> {
    // SAFETY: the caller's promise; NULL is refused by `as_ref`.
    unsafe { p.as_ref() }.ok_or_else(|| bad(format!("{what} is NULL")))
}

/// `&mut *p`, or a refusal naming `what` when `p` is NULL.
///
/// # Safety
/// `p` is NULL or points to a live `T` that nothing else uses meanwhile.
pub(crate) unsafe fn get_mut<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T, Failure> {
    // SAFETY: the caller's promise; NULL is refused by `as_mut`.
    unsafe { p.as_mut() }.ok_or_else(|| bad(format!("{what} is NULL")))
}

/// The `len` values at `p`, refused when `p` is NULL (unless `len` is 0) or
/// not aligned for `T`.
///
/// # Safety
/// `p` is NULL or points to `len` readable values of `T`.
pub(crate) unsafe fn slice<'a, T>(p: *const T, len: usize, what: &str) -> Result<&'a [T], Failure> {
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
pub(crate) unsafe fn slice_mut<'a, T>(p: *mut T, len: usize, what: &str) -> Result<&'a mut [T], Failure> {
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
pub(crate) unsafe fn text<'a>(p: *const c_char, what: &str) -> Result<&'a str, Failure> {
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
pub(crate) unsafe fn put<T>(out: *mut T, value: T) {
    // SAFETY: the caller's promise; every caller checked `out` for NULL.
    unsafe { out.write(value) }
}

/// Hands `value` to the caller as a new handle in `*out` (freed by
/// [`free_handle`] through the type's `_free` function).
///
/// # Safety
/// `out` was checked for NULL and is writable.
pub(crate) unsafe fn new_handle<T>(out: *mut *mut T, value: T) {
    // SAFETY: the caller's promise.
    unsafe { put(out, Box::into_raw(Box::new(value))) }
}

/// Frees a handle of [`new_handle`]; NULL is fine.
///
/// # Safety
/// `handle` is NULL or came from `new_handle` and is not used afterwards.
pub(crate) unsafe fn free_handle<T>(handle: *mut T) {
    if !handle.is_null() {
        // SAFETY: made by Box::into_raw in `new_handle`, not freed before (contract).
        drop(unsafe { Box::from_raw(handle) });
    }
}

pub(crate) fn check_out<T>(out: *mut T, what: &str) -> Result<(), Failure> {
    if out.is_null() { Err(bad(format!("{what} is NULL"))) } else { Ok(()) }
}

/// [`guard`] for functions filling a buffer whose size the caller cannot
/// know ("ask with NULL, 0, then allocate"): `f` sets `needed` once it knows
/// the size, and `*size` receives it when the call succeeds or returns
/// LSTMRT_BUFFER_TOO_SMALL (`f` checks `size` for NULL before that).
///
/// # Safety
/// `size` is NULL or points to a writable `usize`.
pub(crate) unsafe fn guard_sized(
    size: *mut usize,
    f: impl FnOnce(&mut Option<usize>) -> Result<(), Failure>,
) -> lstmrt_status {
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
pub(crate) unsafe fn copy_out<T: Copy>(
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
