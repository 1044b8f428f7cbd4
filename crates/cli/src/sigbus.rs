//! A model file changed while `lstm-run` runs it: one line, exit code 2.
//!
//! `lstm-run` maps its model file (so every process running a model shares
//! its pages). If another process truncates that file, the next read of a
//! page past the new end raises SIGBUS, which would kill the tool without a
//! word. Reading every model into memory instead would give that sharing up
//! (and cost a copy of a large model per process), so the tools keep the map
//! and install a handler that reports what happened and exits with code 2.
//! Only the model is mapped, so a SIGBUS here means the model file changed.
//! (`--no-mmap` reads the model into memory, immune to any change.)

use std::path::Path;
use std::sync::OnceLock;

/// The line the handler writes, made before the handler is installed (the
/// handler itself may only do async-signal-safe things: no formatting, no
/// allocation, no locks).
static MESSAGE: OnceLock<Vec<u8>> = OnceLock::new();

#[cfg(all(
    target_os = "linux",
    any(
        target_arch = "x86_64",
        target_arch = "x86",
        target_arch = "aarch64",
        target_arch = "arm",
        target_arch = "riscv64"
    )
))]
mod handler {
    use std::ffi::c_int;

    /// `SIGBUS` on these Linux targets.
    pub const SIGBUS: c_int = 7;

    unsafe extern "C" {
        fn signal(signum: c_int, handler: usize) -> usize;
        fn write(fd: c_int, buf: *const u8, count: usize) -> isize;
        fn _exit(status: c_int) -> !;
    }

    extern "C" fn on_sigbus(_signum: c_int) {
        if let Some(m) = super::MESSAGE.get() {
            // SAFETY: `write` and `_exit` are async-signal-safe; the message
            // is a live static made before the handler was installed.
            let _ = unsafe { write(2, m.as_ptr(), m.len()) };
        }
        // SAFETY: ends the process at once, as the signal would have.
        unsafe { _exit(crate::exit::BAD_INPUT.into()) }
    }

    /// Installs [`on_sigbus`] for SIGBUS.
    pub fn install() {
        // SAFETY: `signal` with a plain `extern "C" fn(c_int)` handler, whose
        // body is async-signal-safe. Tested by
        // `cli_run::a_model_file_truncated_while_streaming_is_one_line_and_exit_2`.
        unsafe { signal(SIGBUS, on_sigbus as extern "C" fn(c_int) as usize) };
    }
}

/// From now on, a SIGBUS ends the process with one line saying that
/// `model` changed while in use, and exit code 2. The first call wins.
pub fn report_changes_to(model: &Path) {
    let line = format!(
        "lstm-run: {}: the model file changed while in use (truncated or rewritten in place); replace model files by renaming them, or run with --no-mmap\n",
        model.display()
    );
    if MESSAGE.set(line.into_bytes()).is_ok() {
        #[cfg(all(
            target_os = "linux",
            any(
                target_arch = "x86_64",
                target_arch = "x86",
                target_arch = "aarch64",
                target_arch = "arm",
                target_arch = "riscv64"
            )
        ))]
        handler::install();
    }
}
