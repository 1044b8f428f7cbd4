//! One `lstm-run` invocation's shared facts, passed to each mode: how it
//! opens models and which files it has read so far (so that no output ever
//! lands on one of them). A value, not process state: two sessions in one
//! process (a test, a library caller) do not see each other's files.

use std::cell::RefCell;
use std::path::Path;

use lstmrt::Model;
use lstmrt_format::ReadFiles;

use crate::exit::Failure;

/// How a session opens models: the `lstm-run` options every mode shares.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenOptions {
    /// Read the file into memory instead of mapping it (`--no-mmap`).
    pub no_mmap: bool,
    /// How int8 kernels quantize activations (`--int8-activations`).
    pub int8_activations: lstmrt::Int8Activations,
    /// A mapped model file that changes under the process ends it with one
    /// line and exit code 2 instead of SIGBUS ([`crate::sigbus`]): for the
    /// `lstm-run` process, not for a library caller of these modes.
    pub report_changes: bool,
}

/// The open options and the files read, by identity (device and inode, so
/// a second name or a symlink is the same file).
#[derive(Debug, Default)]
pub struct Session {
    open: OpenOptions,
    read: RefCell<ReadFiles>,
}

impl Session {
    /// A session that opens models with `open` and has read nothing yet.
    pub fn new(open: OpenOptions) -> Session {
        Session { open, read: RefCell::default() }
    }

    /// Records `path` as an input of this session (see [`Session::check_not_an_input`]).
    pub fn note_input(&self, path: &Path) {
        self.read.borrow_mut().note(path);
    }

    /// Refuses `path` as an output when it is a file this session read:
    /// writing it (even by rename) would destroy an input.
    pub fn check_not_an_input(&self, path: &Path) -> Result<(), String> {
        self.read.borrow().check_output(path)
    }

    /// Opens and validates the model file (an input of this session).
    pub fn open_model(&self, path: &Path) -> Result<Model, Failure> {
        self.note_input(path);
        let model = if self.open.no_mmap { Model::load(path) } else { Model::open(path) };
        let model = model.map_err(|e| model_failure(path, e))?;
        if model.is_mapped() && self.open.report_changes {
            crate::sigbus::report_changes_to(path);
        }
        Ok(model.with_int8_activations(self.open.int8_activations))
    }

    /// Refuses an output path that cannot be used (its folder does not
    /// exist, it is a folder) or is an input already read, before any work.
    pub fn check_output_place(&self, path: &Path) -> Result<(), Failure> {
        lstmrt_format::check_output_place(path).map_err(Failure::bad_input)?;
        self.check_not_an_input(path).map_err(Failure::bad_input)
    }

    /// Writes an output atomically (a temporary name, then a rename), never
    /// over a file this session read.
    pub fn write_output(&self, path: &Path, bytes: &[u8]) -> Result<(), Failure> {
        self.check_not_an_input(path).map_err(Failure::bad_input)?;
        lstmrt_format::atomic_write(path, bytes)
            .map_err(|e| Failure::internal(format!("cannot write {}: {e}", path.display())))
    }

    #[cfg(test)]
    fn files_read(&self) -> usize {
        self.read.borrow().len()
    }
}

/// An error from the model about what it was asked to do, naming the model file.
pub(crate) fn model_failure(model: &Path, e: lstmrt::Error) -> Failure {
    match e {
        // I/O errors already name their file.
        lstmrt::Error::Io { .. } => Failure::bad_input(e.to_string()),
        e => Failure::bad_input(format!("{}: {e}", model.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_file(name: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("lstmrt-session-{name}-{}", std::process::id()));
        std::fs::write(&path, b"x").unwrap();
        path
    }

    #[test]
    fn a_file_read_again_is_noted_once() {
        let path = scratch_file("once");
        let session = Session::default();
        for _ in 0..3 {
            session.note_input(&path);
        }
        let refused = session.check_not_an_input(&path);
        std::fs::remove_file(&path).unwrap();
        assert!(refused.is_err());
        assert_eq!(session.files_read(), 1);
    }

    #[test]
    fn two_sessions_do_not_share_their_inputs() {
        let path = scratch_file("two");
        let (a, b) = (Session::default(), Session::default());
        a.note_input(&path);
        let (in_a, in_b) = (a.check_not_an_input(&path), b.check_not_an_input(&path));
        std::fs::remove_file(&path).unwrap();
        assert!(in_a.is_err());
        assert!(in_b.is_ok(), "{in_b:?}");
    }

    #[test]
    fn a_model_that_cannot_be_opened_is_bad_input_and_still_an_input() {
        let path = scratch_file("model");
        let session = Session::default();
        let Err(e) = session.open_model(&path) else { panic!("a one-byte file opened as a model") };
        let refused = session.check_not_an_input(&path);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(e.code, crate::exit::BAD_INPUT);
        assert!(e.message.contains(&path.display().to_string()), "{}", e.message);
        assert!(refused.is_err());
    }
}
