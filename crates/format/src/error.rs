//! The one error type for everything that can be wrong with a model file.

use std::fmt;

/// What is wrong with a model file's bytes (or with the metadata and weights
/// handed to the writer). Opening and writing files add the path and the
/// I/O error on top of this (`lstmrt::Error`).
///
/// Every variant names the field, tensor or section at fault and the values
/// that make it wrong, so the message alone is enough to find the problem.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// This reader only runs on little-endian hosts, which map tensors in place.
    BigEndianHost,
    /// The file is shorter than the fixed 64-byte header.
    TooShort { len: u64, needed: u64 },
    /// The first eight bytes are not the lstmrt magic.
    BadMagic { found: [u8; 8] },
    /// The file's major version is not one this reader understands.
    UnsupportedVersion { file_major: u16, file_minor: u16, reader_major: u16, reader_minor: u16 },
    /// The header declares a header size other than 64 bytes.
    BadHeaderSize { found: u32, expected: u32 },
    /// The header sets required flags this reader does not know.
    UnknownRequiredFlags { flags: u64 },
    /// The file is shorter than the length its header declares.
    Truncated { declared: u64, actual: u64 },
    /// The file is longer than the length its header declares.
    TrailingBytes { declared: u64, actual: u64 },
    /// The section table is malformed (place, entry size or count).
    BadSectionTable { reason: String },
    /// The CRC32C over the header and section table does not match.
    HeaderChecksum { stored: u32, computed: u32 },
    /// A section lies (partly) outside the file or over the header.
    SectionOutOfBounds { section: String, offset: u64, len: u64, file_len: u64 },
    /// Two sections share bytes.
    SectionsOverlap { first: String, second: String },
    /// A section kind appears twice.
    DuplicateSection { section: String },
    /// A section every v1 file has is absent.
    MissingSection { section: String },
    /// A section is marked required but this reader does not know its kind.
    UnknownRequiredSection { kind: u32 },
    /// A section's bytes do not match the CRC32C stored in the section table.
    SectionChecksum { section: String, stored: u32, computed: u32 },
    /// The tensor data section does not start on a 64-byte boundary.
    MisalignedSection { section: String, offset: u64 },
    /// The metadata or tensor directory could not be decoded.
    Decode { section: String, message: String },
    /// The metadata or directory has bytes after its last field in a file
    /// that is not from a newer minor version.
    TrailingSectionBytes { section: String, extra: u64 },
    /// A metadata field holds a value that is not allowed.
    InvalidMetadata { field: String, reason: String },
    /// A tensor has an empty, over-long or otherwise bad name.
    BadTensorName { name: String },
    /// Two tensors have the same name.
    DuplicateTensor { name: String },
    /// A tensor's dtype code is unknown.
    UnknownDtype { name: String, code: u32 },
    /// A tensor's layout code is unknown.
    UnknownLayout { name: String, code: u32 },
    /// A tensor's rank is above the limit of 8.
    BadRank { name: String, rank: usize },
    /// A tensor's dimensions multiplied by its element size overflow 64 bits.
    TensorSizeOverflow { name: String, shape: Vec<u64> },
    /// A tensor's stored byte length differs from what its shape and dtype need.
    TensorLengthMismatch { name: String, shape: Vec<u64>, dtype: String, expected: u64, len: u64 },
    /// A tensor does not start on a 64-byte boundary.
    TensorMisaligned { name: String, offset: u64 },
    /// A tensor's bytes lie (partly) outside the tensor data section.
    TensorOutOfBounds { name: String, offset: u64, len: u64, section_start: u64, section_end: u64 },
    /// Two tensors share bytes.
    TensorsOverlap { first: String, second: String },
    /// The architecture needs a tensor the file does not have.
    MissingTensor { name: String },
    /// The file has a tensor the architecture does not use.
    UnexpectedTensor { name: String },
    /// A tensor's shape does not match the architecture.
    TensorShape { name: String, expected: Vec<u64>, found: Vec<u64> },
    /// A tensor's dtype or layout is not allowed for its role.
    TensorKind { name: String, reason: String },
    /// A tensor's bytes do not match its stored CRC32C (found by `verify`).
    TensorChecksum { name: String, stored: u32, computed: u32 },
    /// The weights handed to the writer are inconsistent with the metadata.
    InvalidWeights { reason: String },
}

impl Error {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::InvalidMetadata { field: field.into(), reason: reason.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Error::*;
        match self {
            BigEndianHost => write!(f, "lstmrt model files can only be used on little-endian machines"),
            TooShort { len, needed } => {
                write!(
                    f,
                    "file is {len} bytes, shorter than the {needed}-byte header: not an lstmrt model or truncated"
                )
            }
            BadMagic { found } => write!(f, "not an lstmrt model file: the first 8 bytes are {found:02x?}"),
            UnsupportedVersion { file_major, file_minor, reader_major, reader_minor } => write!(
                f,
                "model file format version {file_major}.{file_minor} is not supported by this reader \
                 (format version {reader_major}.{reader_minor}); upgrade lstmrt or re-export the model"
            ),
            BadHeaderSize { found, expected } => {
                write!(f, "header size field is {found}, expected {expected}")
            }
            UnknownRequiredFlags { flags } => {
                write!(
                    f,
                    "header sets required flags {flags:#x} unknown to this reader (the file needs a newer lstmrt)"
                )
            }
            Truncated { declared, actual } => {
                write!(f, "file is truncated: header declares {declared} bytes, file has {actual}")
            }
            TrailingBytes { declared, actual } => write!(
                f,
                "file has {} trailing bytes: header declares {declared} bytes, file has {actual}",
                actual - declared
            ),
            BadSectionTable { reason } => write!(f, "bad section table: {reason}"),
            HeaderChecksum { stored, computed } => write!(
                f,
                "header checksum mismatch: stored CRC32C {stored:#010x}, computed {computed:#010x} (file corrupt)"
            ),
            SectionOutOfBounds { section, offset, len, file_len } => write!(
                f,
                "{section} section at offset {offset} with length {len} lies outside the file \
                 ({file_len} bytes) or over the header"
            ),
            SectionsOverlap { first, second } => write!(f, "{first} and {second} sections overlap"),
            DuplicateSection { section } => write!(f, "the {section} section appears twice"),
            MissingSection { section } => write!(f, "the {section} section is missing"),
            UnknownRequiredSection { kind } => write!(
                f,
                "the file has a required section of kind {kind} that this reader does not know; \
                 upgrade lstmrt to read it"
            ),
            SectionChecksum { section, stored, computed } => write!(
                f,
                "{section} section checksum mismatch: stored CRC32C {stored:#010x}, computed {computed:#010x}"
            ),
            MisalignedSection { section, offset } => {
                write!(f, "{section} section offset {offset} is not a multiple of 64")
            }
            Decode { section, message } => write!(f, "cannot decode the {section} section: {message}"),
            TrailingSectionBytes { section, extra } => {
                write!(f, "the {section} section has {extra} bytes after its last field")
            }
            InvalidMetadata { field, reason } => write!(f, "metadata field `{field}`: {reason}"),
            BadTensorName { name } => write!(f, "bad tensor name {name:?}"),
            DuplicateTensor { name } => write!(f, "tensor `{name}` appears twice in the directory"),
            UnknownDtype { name, code } => write!(f, "tensor `{name}` has unknown dtype code {code}"),
            UnknownLayout { name, code } => write!(f, "tensor `{name}` has unknown layout code {code}"),
            BadRank { name, rank } => write!(f, "tensor `{name}` has rank {rank}, more than 8"),
            TensorSizeOverflow { name, shape } => {
                write!(f, "tensor `{name}` with shape {shape:?}: size in bytes overflows")
            }
            TensorLengthMismatch { name, shape, dtype, expected, len } => write!(
                f,
                "tensor `{name}`: shape {shape:?} of {dtype} needs {expected} bytes, the directory says {len}"
            ),
            TensorMisaligned { name, offset } => {
                write!(f, "tensor `{name}` at offset {offset} is not aligned to 64 bytes")
            }
            TensorOutOfBounds { name, offset, len, section_start, section_end } => write!(
                f,
                "tensor `{name}` at offset {offset} with length {len} lies outside the tensor data \
                 section [{section_start}, {section_end})"
            ),
            TensorsOverlap { first, second } => write!(f, "tensors `{first}` and `{second}` overlap"),
            MissingTensor { name } => write!(f, "tensor `{name}` is required by the architecture but missing"),
            UnexpectedTensor { name } => write!(f, "tensor `{name}` is not used by the architecture"),
            TensorShape { name, expected, found } => {
                write!(f, "tensor `{name}` has shape {found:?}, the architecture needs {expected:?}")
            }
            TensorKind { name, reason } => write!(f, "tensor `{name}`: {reason}"),
            TensorChecksum { name, stored, computed } => write!(
                f,
                "tensor `{name}` checksum mismatch: stored CRC32C {stored:#010x}, computed {computed:#010x} (data corrupt)"
            ),
            InvalidWeights { reason } => write!(f, "invalid weights: {reason}"),
        }
    }
}

impl std::error::Error for Error {}

/// An I/O error kept as a value: the operating system's error, shared so that
/// the error types holding it stay `Clone`, compared by kind and message.
#[derive(Debug, Clone)]
pub struct IoError(std::sync::Arc<std::io::Error>);

impl IoError {
    /// What kind of failure it was (not found, permission denied, ...).
    pub fn kind(&self) -> std::io::ErrorKind {
        self.0.kind()
    }

    /// The operating system's error itself.
    pub fn get(&self) -> &std::io::Error {
        &self.0
    }
}

impl From<std::io::Error> for IoError {
    fn from(e: std::io::Error) -> Self {
        IoError(std::sync::Arc::new(e))
    }
}

impl PartialEq for IoError {
    fn eq(&self, other: &Self) -> bool {
        self.kind() == other.kind() && self.0.to_string() == other.0.to_string()
    }
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for IoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}
