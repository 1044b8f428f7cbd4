//! Opening the files lstmrt reads: regular files only. A FIFO with no writer
//! would block the open forever, and a device such as `/dev/zero` never ends;
//! both (and directories, sockets) are refused with a message saying what the
//! path is, before anything is read.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::path::Path;

use crate::limits::FileLimit;

/// `O_NONBLOCK` where its value is known (Linux, the same value on these
/// architectures): opening a FIFO that `stat` just called a regular file
/// must not block. Named once, so the list of targets is written once.
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
const O_NONBLOCK: Option<i32> = Some(0o4000);
#[cfg(not(all(
    target_os = "linux",
    any(
        target_arch = "x86_64",
        target_arch = "x86",
        target_arch = "aarch64",
        target_arch = "arm",
        target_arch = "riscv64"
    )
)))]
#[cfg_attr(not(unix), allow(dead_code))]
const O_NONBLOCK: Option<i32> = None;

/// What a non-regular file is, for messages.
fn kind(meta: &Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if meta.is_dir() { "a directory" } else { "not a regular file" }
}

fn check(meta: &Metadata) -> io::Result<()> {
    if meta.is_file() {
        return Ok(());
    }
    let what = kind(meta);
    let message = if what.starts_with("not") { what.to_string() } else { format!("is {what}, not a regular file") };
    Err(io::Error::new(io::ErrorKind::InvalidInput, message))
}

/// Opens `path` for reading if it is a regular file (symlinks followed);
/// returns the file and the metadata of the file opened (its length, its
/// permissions). The type is checked before the open and again on the
/// opened file, so a swap in between is caught too.
pub fn open_regular(path: &Path) -> io::Result<(File, Metadata)> {
    check(&std::fs::metadata(path)?)?;
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    if let Some(flag) = O_NONBLOCK {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(flag);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    check(&meta)?;
    Ok((file, meta))
}

/// Reads the whole of regular file `path` (see [`open_regular`]): exactly the
/// length it had when opened, which is allocated once, and refused before
/// anything is read when that is over `limit`.
pub fn read_regular(path: &Path, limit: FileLimit) -> io::Result<Vec<u8>> {
    let (file, meta) = open_regular(path)?;
    let len = meta.len();
    limit.check(len)?;
    let len_usize = usize::try_from(len).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "is too large"))?;
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(len_usize).map_err(|_| {
        io::Error::new(io::ErrorKind::OutOfMemory, format!("is {len} bytes, more than this machine can hold"))
    })?;
    file.take(len).read_to_end(&mut bytes)?;
    if bytes.len() as u64 != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("shrank from {len} to {} bytes while being read", bytes.len()),
        ));
    }
    Ok(bytes)
}

/// The identity of the file at `path`, if it exists (unix: device and
/// inode, so another name or a hard link is the same file).
fn file_id(path: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        // Without inodes, the canonical path stands for the file.
        let canonical = std::fs::canonicalize(path).ok()?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(&canonical, &mut h);
        Some((0, std::hash::Hasher::finish(&h)))
    }
}

/// The files a tool has read (its inputs, and files found while reading
/// them: an ONNX model's external data, a description), each once, so that
/// no output is ever written over one of them under any name.
#[derive(Debug, Clone, Default)]
pub struct ReadFiles {
    files: Vec<(std::path::PathBuf, (u64, u64))>,
}

impl ReadFiles {
    /// None read yet.
    pub const fn new() -> ReadFiles {
        ReadFiles { files: Vec::new() }
    }

    /// Notes `path` as read (nothing if it does not exist).
    pub fn note(&mut self, path: &Path) {
        if let Some(id) = file_id(path)
            && !self.files.iter().any(|(_, i)| *i == id)
        {
            self.files.push((path.to_path_buf(), id));
        }
    }

    /// Refuses `path` as an output when it is a file that was read: writing
    /// it, even by rename, would destroy an input.
    pub fn check_output(&self, path: &Path) -> Result<(), String> {
        let Some(id) = file_id(path) else { return Ok(()) };
        match self.files.iter().find(|(_, i)| *i == id) {
            Some((input, _)) => Err(format!(
                "{}: is the same file as the input {}; refusing to write an output over an input",
                path.display(),
                input.display()
            )),
            None => Ok(()),
        }
    }

    /// How many files were noted.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// Refuses an output path that cannot be used, before any work is done:
/// its folder does not exist, or it is a folder itself. (The tools answer
/// these with exit code 2, like any bad argument; a write that fails
/// later, a full disk, is exit code 1.)
pub fn check_output_place(path: &Path) -> Result<(), String> {
    if path.as_os_str().is_empty() {
        return Err("an output path is empty".into());
    }
    if path.is_dir() {
        return Err(format!("{}: is a folder; give a file name", path.display()));
    }
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => {
            Err(format!("{}: the folder {} does not exist", path.display(), dir.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_under_another_name_is_refused_as_an_output() {
        let dir = std::env::temp_dir().join(format!("lstmrt-readfiles-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b, c) = (dir.join("a"), dir.join("b"), dir.join("c"));
        std::fs::write(&a, b"x").unwrap();
        std::fs::hard_link(&a, &b).unwrap();
        let mut read = ReadFiles::default();
        read.note(&a);
        read.note(&b);
        read.note(&dir.join("missing"));
        assert_eq!(read.len(), 1, "the same file under two names is one file; a missing one is none");
        let e = read.check_output(&b).unwrap_err();
        assert!(e.contains("is the same file as the input") && e.contains("/a"), "{e}");
        assert!(read.check_output(&c).is_ok(), "a new file is not an input");
        assert!(check_output_place(&c).is_ok());
        assert!(check_output_place(&dir).unwrap_err().contains("is a folder"));
        assert!(check_output_place(&dir.join("no/such/x")).unwrap_err().contains("does not exist"));
        assert!(check_output_place(Path::new("bare-name")).is_ok(), "a bare name lands in the current folder");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn directories_and_devices_are_refused_saying_what_they_are() {
        let dir = std::env::temp_dir();
        let e = read_regular(&dir, crate::limits::DATA_FILE).unwrap_err();
        assert!(e.to_string().contains("is a directory, not a regular file"), "{e}");
        #[cfg(unix)]
        {
            let e = read_regular(Path::new("/dev/zero"), crate::limits::DATA_FILE).unwrap_err();
            assert!(e.to_string().contains("character device"), "{e}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_without_a_writer_is_refused_at_once() {
        let path = std::env::temp_dir().join(format!("lstmrt-fifo-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let made = std::process::Command::new("mkfifo").arg(&path).status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("mkfifo is not available; skipped");
            return;
        }
        let e = read_regular(&path, crate::limits::DATA_FILE).unwrap_err();
        std::fs::remove_file(&path).ok();
        assert!(e.to_string().contains("FIFO"), "{e}");
    }

    #[test]
    fn regular_files_are_read_whole() {
        let path = std::env::temp_dir().join(format!("lstmrt-regular-{}", std::process::id()));
        std::fs::write(&path, b"hello").unwrap();
        assert_eq!(read_regular(&path, crate::limits::DATA_FILE).unwrap(), b"hello");
        assert_eq!(open_regular(&path).unwrap().1.len(), 5);
        let at = FileLimit { bytes: 5, what: "tests" };
        assert_eq!(read_regular(&path, at).unwrap(), b"hello");
        let below = FileLimit { bytes: 4, what: "tests" };
        let e = read_regular(&path, below).unwrap_err();
        assert_eq!(e.to_string(), "is 5 bytes, over the limit of 4 bytes (4 bytes) for tests");
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn a_sparse_file_one_byte_over_a_limit_is_refused_before_it_is_read() {
        // Sparse: the length costs no disk, and nothing is read or allocated.
        let path = std::env::temp_dir().join(format!("lstmrt-sparse-{}", std::process::id()));
        for limit in [crate::limits::DATA_FILE, crate::limits::SOURCE_FILE] {
            File::create(&path).unwrap().set_len(limit.bytes + 1).unwrap();
            let e = read_regular(&path, limit).unwrap_err();
            assert!(e.to_string().contains("over the limit of"), "{e}");
        }
        std::fs::remove_file(&path).ok();
    }
}
