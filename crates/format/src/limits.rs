//! The largest inputs lstmrt accepts, in one place: each is refused beyond
//! its limit, before anything is allocated for it, with a message naming the
//! file and the limit. `docs/reliability.md` lists them with the limits that
//! live beside the code they bound (the model's sizes in
//! [`crate::Architecture::validate`], the importers' walks).

use std::fmt;

/// A cap on the size of a file that is read, with what it caps for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimit {
    /// The largest size accepted, in bytes.
    pub bytes: u64,
    /// What the limit is for, plural ("model files").
    pub what: &'static str,
}

/// Model files (`Model::open`, `Model::load`): 64 GiB, above the largest
/// model the sizes allow in practice (16 layers of hidden size 16384 in f32
/// are 32 GiB).
pub const MODEL_FILE: FileLimit = FileLimit { bytes: 1 << 36, what: "model files" };

/// Source models given to `lstm-convert` (read whole into memory), and ONNX
/// external data: 16 GiB.
pub const SOURCE_FILE: FileLimit = FileLimit { bytes: 1 << 34, what: "source models" };

/// Input sequences, lengths and state files given to `lstm-run`, and the
/// trainer's data files and checkpoints: 4 GiB.
pub const DATA_FILE: FileLimit = FileLimit { bytes: 1 << 32, what: "data files" };

/// Values one `lstm-run` call may produce (its output array, f32): 2^30
/// (4 GiB). Checked from the input's shape before the run.
pub const MAX_OUTPUT_VALUES: u64 = 1 << 30;

/// The longest line `lstm-run --stream` reads for a model of `features`
/// inputs: 4 KiB plus 64 bytes per feature (a float written in full is at
/// most 16 characters; the rest is room for spaces and comments).
pub fn max_stream_line(features: usize) -> usize {
    4096 + 64 * features
}

/// Nodes, initializers and inputs of an ONNX graph, each: 65536.
pub const ONNX_GRAPH_ENTRIES: usize = 1 << 16;

/// Inputs, outputs and attributes of one ONNX node, and a tensor's
/// dimensions, each: 1024.
pub const ONNX_NODE_ENTRIES: usize = 1024;

/// Bytes in one vocabulary token: 1024.
pub const MAX_TOKEN_BYTES: usize = 1024;

impl FileLimit {
    /// Refuses a file of `len` bytes that is over the limit.
    pub fn check(&self, len: u64) -> Result<(), TooLarge> {
        if len > self.bytes { Err(TooLarge { len, limit: *self }) } else { Ok(()) }
    }
}

/// A file over its [`FileLimit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge {
    pub len: u64,
    pub limit: FileLimit,
}

/// `bytes` as the largest binary unit that divides it ("64 GiB"), or bytes.
fn binary(bytes: u64) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{} {unit}", bytes >> shift);
        }
    }
    format!("{bytes} bytes")
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "is {} bytes, over the limit of {} ({} bytes) for {}",
            self.len,
            binary(self.limit.bytes),
            self.limit.bytes,
            self.limit.what
        )
    }
}

impl std::error::Error for TooLarge {}

impl From<TooLarge> for std::io::Error {
    fn from(e: TooLarge) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_at_the_limit_passes_and_one_byte_more_is_refused_naming_the_limit() {
        for limit in [MODEL_FILE, SOURCE_FILE, DATA_FILE] {
            assert_eq!(limit.check(limit.bytes), Ok(()));
            let e = limit.check(limit.bytes + 1).unwrap_err();
            let text = e.to_string();
            assert!(text.starts_with(&format!("is {} bytes, over the limit of ", limit.bytes + 1)), "{text}");
            assert!(text.ends_with(&format!("({} bytes) for {}", limit.bytes, limit.what)), "{text}");
        }
        assert_eq!(
            TooLarge { len: 5, limit: DATA_FILE }.to_string(),
            format!("is 5 bytes, over the limit of 4 GiB ({} bytes) for data files", 1u64 << 32)
        );
        assert_eq!(binary(3 << 20), "3 MiB");
        assert_eq!(binary(1000), "1000 bytes");
    }
}
