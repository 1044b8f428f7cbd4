//! The library itself: its version, the last error on this thread, status names.

use super::*;
use crate::ffi::*;

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
