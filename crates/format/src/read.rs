//! Reading a model file: every check happens here, once, before anything is
//! handed out. After [`parse`] succeeds, every tensor range lies inside the
//! file, is 64-byte aligned, does not overlap another, and has the length its
//! shape and dtype need; the tensor set matches the architecture.

use std::collections::HashMap;

use super::meta::Metadata;
use super::{
    ALIGN, DType, DirectoryEntry, Error, ExpectedTensor, HEADER_SIZE, Layout, MAGIC, MAX_RANK, MAX_SECTIONS,
    SECTION_ENTRY_SIZE, TensorInfo, VERSION_MAJOR, VERSION_MINOR, bincode_config, expected_tensors, flags, section,
};

/// What [`parse`] found in a valid file.
#[derive(Debug, Clone)]
pub struct FileInfo {
    pub version_major: u16,
    pub version_minor: u16,
    /// Optional header flags (none are defined in v1.0; kept for display).
    pub optional_flags: u64,
    pub file_len: u64,
    pub metadata: Metadata,
    pub tensors: Vec<TensorInfo>,
    /// Kinds of optional sections this reader skipped.
    pub skipped_sections: Vec<u32>,
    /// `[start, end)` of the tensor data section.
    pub data_section: (u64, u64),
}

impl FileInfo {
    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

struct SectionEntry {
    kind: u32,
    flags: u32,
    offset: u64,
    len: u64,
    crc32c: u32,
}

/// Validates a whole model file held in `bytes` and returns what it contains.
///
/// Reads only the header, the section table, the metadata and the tensor
/// directory; tensor bytes are not touched (their checksums are checked by
/// [`verify_tensor`]).
pub fn parse(bytes: &[u8]) -> Result<FileInfo, Error> {
    if cfg!(target_endian = "big") {
        return Err(Error::BigEndianHost);
    }
    let file_len = bytes.len() as u64;
    if bytes.len() < HEADER_SIZE {
        return Err(Error::TooShort { len: file_len, needed: HEADER_SIZE as u64 });
    }
    let magic: [u8; 8] = bytes[0..8].try_into().expect("8 bytes");
    if magic != MAGIC {
        return Err(Error::BadMagic { found: magic });
    }
    let (major, minor) = (u16_at(bytes, 8), u16_at(bytes, 10));
    if major != VERSION_MAJOR {
        return Err(Error::UnsupportedVersion {
            file_major: major,
            file_minor: minor,
            reader_major: VERSION_MAJOR,
            reader_minor: VERSION_MINOR,
        });
    }
    let newer_minor = minor > VERSION_MINOR;
    let header_size = u32_at(bytes, 12);
    if header_size as usize != HEADER_SIZE {
        return Err(Error::BadHeaderSize { found: header_size, expected: HEADER_SIZE as u32 });
    }
    let required_flags = u64_at(bytes, 16);
    let unknown_flags = required_flags & !flags::KNOWN_REQUIRED;
    if unknown_flags != 0 {
        return Err(Error::UnknownRequiredFlags { flags: unknown_flags });
    }
    let optional_flags = u64_at(bytes, 24);
    let declared_len = u64_at(bytes, 32);
    if file_len < declared_len {
        return Err(Error::Truncated { declared: declared_len, actual: file_len });
    }
    if file_len > declared_len {
        return Err(Error::TrailingBytes { declared: declared_len, actual: file_len });
    }

    // The section table.
    let table_offset = u64_at(bytes, 40);
    let count = u32_at(bytes, 48);
    let entry_size = u32_at(bytes, 52);
    if table_offset < HEADER_SIZE as u64 || !table_offset.is_multiple_of(8) {
        return Err(Error::BadSectionTable {
            reason: format!("offset {table_offset} is inside the header or not a multiple of 8"),
        });
    }
    if (entry_size as usize) < SECTION_ENTRY_SIZE || entry_size > 1024 || !entry_size.is_multiple_of(8) {
        return Err(Error::BadSectionTable {
            reason: format!("entry size {entry_size} is not a multiple of 8 in 32..=1024"),
        });
    }
    if count > MAX_SECTIONS {
        return Err(Error::BadSectionTable { reason: format!("{count} sections is more than {MAX_SECTIONS}") });
    }
    let table_len = count as u64 * entry_size as u64; // both bounded: cannot overflow
    let table_end =
        table_offset.checked_add(table_len).filter(|&e| e <= file_len).ok_or_else(|| Error::BadSectionTable {
            reason: format!("table at offset {table_offset} with {count} entries runs past the end of the file"),
        })?;
    let table = &bytes[table_offset as usize..table_end as usize];

    let stored_crc = u32_at(bytes, 60);
    let computed_crc = crc32c::crc32c_append(crc32c::crc32c(&bytes[..60]), table);
    if stored_crc != computed_crc {
        return Err(Error::HeaderChecksum { stored: stored_crc, computed: computed_crc });
    }

    let entries: Vec<SectionEntry> = table
        .chunks_exact(entry_size as usize)
        .map(|e| SectionEntry {
            kind: u32_at(e, 0),
            flags: u32_at(e, 4),
            offset: u64_at(e, 8),
            len: u64_at(e, 16),
            crc32c: u32_at(e, 24),
        })
        .collect();

    // Every section inside the file, after the header, and no two sharing bytes.
    let mut ranges: Vec<(u64, u64, String)> = vec![(0, HEADER_SIZE as u64, "header".into())];
    if table_len > 0 {
        ranges.push((table_offset, table_end, "section table".into()));
    }
    for e in &entries {
        let name = section::name(e.kind);
        let end = e.offset.checked_add(e.len).filter(|&end| end <= file_len);
        match end {
            Some(end) if e.offset >= HEADER_SIZE as u64 || e.len == 0 => {
                if e.len > 0 {
                    ranges.push((e.offset, end, name));
                }
            }
            _ => {
                return Err(Error::SectionOutOfBounds { section: name, offset: e.offset, len: e.len, file_len });
            }
        }
    }
    ranges.sort_by_key(|r| (r.0, r.1));
    for pair in ranges.windows(2) {
        if pair[1].0 < pair[0].1 {
            return Err(Error::SectionsOverlap { first: pair[0].2.clone(), second: pair[1].2.clone() });
        }
    }

    let mut metadata_section = None;
    let mut directory_section = None;
    let mut data_section = None;
    let mut stages_section = None;
    let mut skipped_sections = Vec::new();
    for e in &entries {
        let slot = match e.kind {
            section::METADATA => &mut metadata_section,
            section::TENSOR_DIRECTORY => &mut directory_section,
            section::TENSOR_DATA => &mut data_section,
            section::STAGES => &mut stages_section,
            other if e.flags & section::FLAG_REQUIRED != 0 => {
                return Err(Error::UnknownRequiredSection { kind: other });
            }
            other => {
                skipped_sections.push(other);
                continue;
            }
        };
        if slot.is_some() {
            return Err(Error::DuplicateSection { section: section::name(e.kind) });
        }
        *slot = Some(e);
    }
    let missing = |kind| Error::MissingSection { section: section::name(kind) };
    let metadata_section = metadata_section.ok_or_else(|| missing(section::METADATA))?;
    let directory_section = directory_section.ok_or_else(|| missing(section::TENSOR_DIRECTORY))?;
    let data_section = data_section.ok_or_else(|| missing(section::TENSOR_DATA))?;
    if data_section.offset % ALIGN != 0 {
        return Err(Error::MisalignedSection {
            section: section::name(section::TENSOR_DATA),
            offset: data_section.offset,
        });
    }

    let mut metadata: Metadata = decode_section(bytes, metadata_section, newer_minor)?;
    metadata.architecture.reverse = required_flags & flags::REVERSE != 0;
    if let Some(entry) = stages_section {
        metadata.stages = Some(decode_section(bytes, entry, newer_minor)?);
    }
    metadata.validate()?;
    let directory: Vec<DirectoryEntry> = decode_section(bytes, directory_section, newer_minor)?;
    let data_range = (data_section.offset, data_section.offset + data_section.len);
    let tensors = validate_directory(directory, data_range)?;
    check_tensor_set(&metadata, &tensors, newer_minor, required_flags & flags::INITIAL_STATE != 0)?;

    Ok(FileInfo {
        version_major: major,
        version_minor: minor,
        optional_flags,
        file_len,
        metadata,
        tensors,
        skipped_sections,
        data_section: data_range,
    })
}

/// Checks a section's CRC and decodes it with the format's bincode configuration.
fn decode_section<'a, T: serde::Deserialize<'a>>(
    bytes: &'a [u8],
    entry: &SectionEntry,
    newer_minor: bool,
) -> Result<T, Error> {
    let name = section::name(entry.kind);
    // Bounds were checked against the file when the table was read.
    let body = &bytes[entry.offset as usize..(entry.offset + entry.len) as usize];
    let computed = crc32c::crc32c(body);
    if computed != entry.crc32c {
        return Err(Error::SectionChecksum { section: name, stored: entry.crc32c, computed });
    }
    let (value, used) = bincode::serde::borrow_decode_from_slice::<T, _>(body, bincode_config())
        .map_err(|e| Error::Decode { section: name.clone(), message: decode_message(&e, body.len()) })?;
    // Later minor versions may append fields; in a file of this version or
    // older, bytes after the last field mean the section is corrupt.
    if used < body.len() && !newer_minor {
        return Err(Error::TrailingSectionBytes { section: name, extra: (body.len() - used) as u64 });
    }
    Ok(value)
}

/// One line for a bincode decode error, in the format's terms rather than as
/// bincode's debug dump.
fn decode_message(e: &bincode::error::DecodeError, len: usize) -> String {
    use bincode::error::DecodeError as D;
    match e {
        D::UnexpectedEnd { additional } => format!("it ends {additional} bytes early ({len} bytes)"),
        D::Utf8 { .. } => "a string is not valid UTF-8".into(),
        D::UnexpectedVariant { found, .. } => format!("an option or enum has the invalid tag {found}"),
        D::InvalidBooleanValue(v) => format!("a boolean is {v}, neither 0 nor 1"),
        D::InvalidCharEncoding(_) => "a character is not valid UTF-8".into(),
        D::LimitExceeded => "a length is larger than the section".into(),
        D::OtherString(s) => s.clone(),
        D::Other(s) => (*s).to_string(),
        other => {
            // Whatever else bincode reports, on one line.
            let text = other.to_string();
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        }
    }
}

/// Turns raw directory entries into [`TensorInfo`]s, checking names, codes,
/// sizes, alignment, bounds and overlap.
fn validate_directory(directory: Vec<DirectoryEntry>, data: (u64, u64)) -> Result<Vec<TensorInfo>, Error> {
    let mut seen: HashMap<&str, ()> = HashMap::with_capacity(directory.len());
    let mut tensors = Vec::with_capacity(directory.len());
    for e in &directory {
        let name = e.name.clone();
        if e.name.is_empty() || e.name.len() > 256 || e.name.chars().any(char::is_control) {
            return Err(Error::BadTensorName { name });
        }
        if seen.insert(e.name.as_str(), ()).is_some() {
            return Err(Error::DuplicateTensor { name });
        }
        let dtype = DType::from_code(e.dtype).ok_or(Error::UnknownDtype { name: name.clone(), code: e.dtype })?;
        let layout = Layout::from_code(e.layout).ok_or(Error::UnknownLayout { name: name.clone(), code: e.layout })?;
        if e.shape.len() > MAX_RANK {
            return Err(Error::BadRank { name, rank: e.shape.len() });
        }
        let expected = e
            .shape
            .iter()
            .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| Error::TensorSizeOverflow { name: name.clone(), shape: e.shape.clone() })?;
        if expected != e.length {
            return Err(Error::TensorLengthMismatch {
                name,
                shape: e.shape.clone(),
                dtype: dtype.name().into(),
                expected,
                len: e.length,
            });
        }
        if e.offset % ALIGN != 0 {
            return Err(Error::TensorMisaligned { name, offset: e.offset });
        }
        let inside = e.offset >= data.0 && e.offset.checked_add(e.length).is_some_and(|end| end <= data.1);
        if !inside {
            return Err(Error::TensorOutOfBounds {
                name,
                offset: e.offset,
                len: e.length,
                section_start: data.0,
                section_end: data.1,
            });
        }
        tensors.push(TensorInfo {
            name,
            dtype,
            layout,
            shape: e.shape.clone(),
            offset: e.offset,
            length: e.length,
            crc32c: e.crc32c,
        });
    }
    let mut by_offset: Vec<&TensorInfo> = tensors.iter().filter(|t| t.length > 0).collect();
    by_offset.sort_by_key(|t| t.offset);
    for pair in by_offset.windows(2) {
        if pair[1].offset < pair[0].offset + pair[0].length {
            return Err(Error::TensorsOverlap { first: pair[0].name.clone(), second: pair[1].name.clone() });
        }
    }
    Ok(tensors)
}

/// Checks that the tensors are exactly those the metadata calls for, with the
/// right shapes. Tensors of unknown names are allowed only in files of a newer
/// minor version (they belong to features this reader does not know).
fn check_tensor_set(
    meta: &Metadata,
    tensors: &[TensorInfo],
    newer_minor: bool,
    initial_flag: bool,
) -> Result<(), Error> {
    let mut expected = expected_tensors(meta);
    let mut scales = Vec::new();
    for want in &expected {
        if let Some(t) = tensors.iter().find(|t| t.name == want.name)
            && let Some(scale) = check_int8(want, t)?
        {
            scales.push(scale);
        }
    }
    for scale in &scales {
        if let Some(t) = tensors.iter().find(|t| t.name == scale.name)
            && t.dtype != DType::F32
        {
            return Err(Error::TensorKind {
                name: t.name.clone(),
                reason: format!("int8 scales are f32, not {}", t.dtype.name()),
            });
        }
    }
    expected.extend(scales);
    let initial = crate::initial_state_tensors(meta);
    let stored_initial = tensors.iter().filter(|t| initial.iter().any(|e| e.name == t.name));
    for t in stored_initial.clone() {
        if t.dtype != DType::F32 {
            return Err(Error::TensorKind {
                name: t.name.clone(),
                reason: format!("initial states are f32, not {}", t.dtype.name()),
            });
        }
    }
    if let Some(t) = stored_initial.clone().next()
        && !initial_flag
    {
        return Err(Error::TensorKind {
            name: t.name.clone(),
            reason: "an initial state in a file without the INITIAL_STATE required flag".into(),
        });
    }
    if initial_flag && stored_initial.count() == 0 {
        return Err(Error::invalid("required_flags", "INITIAL_STATE is set but the file stores no initial state"));
    }
    expected.extend(initial);
    for want in &expected {
        match tensors.iter().find(|t| t.name == want.name) {
            None if want.required => return Err(Error::MissingTensor { name: want.name.clone() }),
            None => {}
            Some(t) => {
                let shape = want.shape_in(t.layout).ok_or_else(|| Error::TensorKind {
                    name: t.name.clone(),
                    reason: format!("the {} layout is only for weight matrices", t.layout.name()),
                })?;
                if t.shape != shape {
                    return Err(Error::TensorShape { name: t.name.clone(), expected: shape, found: t.shape.clone() });
                }
            }
        }
    }
    if !newer_minor && let Some(extra) = tensors.iter().find(|t| !expected.iter().any(|e| e.name == t.name)) {
        return Err(Error::UnexpectedTensor { name: extra.name.clone() });
    }
    Ok(())
}

/// The int8 rules for one stored tensor: int8 only for weight matrices, always
/// in the `panel16x4` layout (and that layout only for int8), `K` at most
/// [`crate::MAX_INT8_K`]. Returns the f32 scale tensor an int8 matrix needs.
fn check_int8(want: &ExpectedTensor, t: &TensorInfo) -> Result<Option<ExpectedTensor>, Error> {
    let kind = |reason: String| Err(Error::TensorKind { name: t.name.clone(), reason });
    let int8 = t.dtype == DType::I8;
    if int8 != (t.layout == Layout::Panel16x4) {
        return kind(format!(
            "dtype {} in layout {}: int8 weights are stored in panel16x4, and panel16x4 holds only int8",
            t.dtype.name(),
            t.layout.name()
        ));
    }
    if !int8 {
        return Ok(None);
    }
    if want.packable.is_none() {
        return kind("int8 is only for weight matrices".into());
    }
    let k = want.shape[1] as usize;
    if k > crate::MAX_INT8_K {
        return kind(format!("an int8 matrix takes at most {} inputs, this one {k}", crate::MAX_INT8_K));
    }
    Ok(Some(ExpectedTensor {
        name: crate::names::scale(&want.name),
        shape: vec![want.shape[0]],
        required: true,
        packable: None,
    }))
}

/// Checks one tensor's bytes against its stored CRC32C.
pub fn verify_tensor(bytes: &[u8], info: &TensorInfo) -> Result<(), Error> {
    let data = &bytes[info.offset as usize..(info.offset + info.length) as usize];
    let computed = crc32c::crc32c(data);
    if computed != info.crc32c {
        return Err(Error::TensorChecksum { name: info.name.clone(), stored: info.crc32c, computed });
    }
    Ok(())
}
