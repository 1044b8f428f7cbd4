//! Writing a model file: encoding in memory, then an atomic rename into place.

use std::io::Write;
use std::path::Path;

use super::meta::Metadata;
use super::{
    ALIGN, DType, DirectoryEntry, Error, HEADER_SIZE, Layout, MAGIC, SECTION_ENTRY_SIZE, VERSION_MAJOR, VERSION_MINOR,
    bincode_config, flags, section,
};

/// One tensor to store: its bytes are already in `dtype` and `layout` order.
#[derive(Debug, Clone)]
pub struct TensorBytes {
    pub name: String,
    pub dtype: DType,
    pub layout: Layout,
    pub shape: Vec<u64>,
    /// Little-endian element bytes.
    pub data: Vec<u8>,
}

fn align_up(x: u64) -> u64 {
    x.div_ceil(ALIGN) * ALIGN
}

/// Encodes a complete v1 file: header, section table, metadata, tensor
/// directory and tensor data, each tensor on a 64-byte boundary.
///
/// Does not check the tensors against the metadata; `lstmrt::ModelWriter`
/// does that, and the result is parsed back by the tests.
pub fn encode(meta: &Metadata, tensors: &[TensorBytes]) -> Result<Vec<u8>, Error> {
    let metadata = bincode::serde::encode_to_vec(meta, bincode_config())
        .map_err(|e| Error::InvalidWeights { reason: format!("cannot encode metadata: {e}") })?;
    let mut entries: Vec<DirectoryEntry> = tensors
        .iter()
        .map(|t| DirectoryEntry {
            name: t.name.clone(),
            dtype: t.dtype.code(),
            layout: t.layout.code(),
            shape: t.shape.clone(),
            offset: 0,
            length: t.data.len() as u64,
            crc32c: crc32c::crc32c(&t.data),
        })
        .collect();
    // Integers are fixed-width, so the directory's length does not depend on the
    // offsets: encode once to learn it, then again with the real offsets.
    let directory_len = encode_directory(&entries).len() as u64;
    let stages = match &meta.stages {
        Some(s) => Some(
            bincode::serde::encode_to_vec(s, bincode_config())
                .map_err(|e| Error::InvalidWeights { reason: format!("cannot encode the stages: {e}") })?,
        ),
        None => None,
    };
    let table_len = (3 + stages.is_some() as u64) * SECTION_ENTRY_SIZE as u64;
    let metadata_offset = HEADER_SIZE as u64 + table_len;
    let stages_offset = metadata_offset + metadata.len() as u64;
    let directory_offset = stages_offset + stages.as_ref().map_or(0, |s| s.len() as u64);
    let data_offset = align_up(directory_offset + directory_len);
    let mut cursor = data_offset;
    for e in &mut entries {
        e.offset = cursor;
        cursor = align_up(cursor + e.length);
    }
    let data_end = entries.last().map_or(data_offset, |e| e.offset + e.length);
    let mut data = vec![0u8; (data_end - data_offset) as usize];
    for (e, t) in entries.iter().zip(tensors) {
        let at = (e.offset - data_offset) as usize;
        data[at..at + t.data.len()].copy_from_slice(&t.data);
    }
    let directory = encode_directory(&entries);
    debug_assert_eq!(directory.len() as u64, directory_len);
    let int8 = tensors.iter().any(|t| t.dtype == DType::I8);
    let initial_names = crate::initial_state_tensors(meta);
    let initial = tensors.iter().any(|t| initial_names.iter().any(|e| e.name == t.name));
    let required_flags = if meta.architecture.reverse { flags::REVERSE } else { 0 }
        | if int8 { flags::INT8 } else { 0 }
        | if initial { flags::INITIAL_STATE } else { 0 };
    // The lowest minor version whose features the file uses: 1.0 readers
    // still read every file without int8 weights or initial states.
    let minor = if stages.is_some() {
        3
    } else if initial {
        2
    } else if int8 {
        1
    } else {
        0
    };
    debug_assert!(minor <= VERSION_MINOR);
    let mut sections = vec![RawSection::new(section::METADATA, 0, metadata_offset, metadata)];
    if let Some(body) = stages {
        sections.push(RawSection::new(section::STAGES, section::FLAG_REQUIRED, stages_offset, body));
    }
    sections.push(RawSection::new(section::TENSOR_DIRECTORY, 0, directory_offset, directory));
    sections.push(RawSection::new(section::TENSOR_DATA, 0, data_offset, data));
    Ok(assemble_with_flags((VERSION_MAJOR, minor), required_flags, &sections))
}

#[doc(hidden)]
pub fn encode_directory(entries: &[DirectoryEntry]) -> Vec<u8> {
    bincode::serde::encode_to_vec(entries, bincode_config()).expect("a directory always encodes")
}

/// A section to place at a given offset (building block of [`encode`], and of
/// the tests that craft malformed files).
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct RawSection {
    pub kind: u32,
    pub flags: u32,
    pub offset: u64,
    pub body: Vec<u8>,
}

impl RawSection {
    pub fn new(kind: u32, flags: u32, offset: u64, body: Vec<u8>) -> Self {
        RawSection { kind, flags, offset, body }
    }
}

/// Lays out header, section table (right after the header) and the given
/// sections at their offsets; gaps are zero. Computes lengths and checksums.
#[doc(hidden)]
pub fn assemble(version: (u16, u16), sections: &[RawSection]) -> Vec<u8> {
    assemble_with_flags(version, 0, sections)
}

/// [`assemble`] with the header's required flags set to `required_flags`.
#[doc(hidden)]
pub fn assemble_with_flags(version: (u16, u16), required_flags: u64, sections: &[RawSection]) -> Vec<u8> {
    let table_len = sections.len() * SECTION_ENTRY_SIZE;
    let end = sections.iter().map(|s| s.offset as usize + s.body.len()).max().unwrap_or(0).max(HEADER_SIZE + table_len);
    let mut out = vec![0u8; end];
    out[0..8].copy_from_slice(&MAGIC);
    out[8..10].copy_from_slice(&version.0.to_le_bytes());
    out[10..12].copy_from_slice(&version.1.to_le_bytes());
    out[12..16].copy_from_slice(&(HEADER_SIZE as u32).to_le_bytes());
    out[16..24].copy_from_slice(&required_flags.to_le_bytes());
    // 24..32 optional flags: none defined.
    out[32..40].copy_from_slice(&(end as u64).to_le_bytes());
    out[40..48].copy_from_slice(&(HEADER_SIZE as u64).to_le_bytes());
    out[48..52].copy_from_slice(&(sections.len() as u32).to_le_bytes());
    out[52..56].copy_from_slice(&(SECTION_ENTRY_SIZE as u32).to_le_bytes());
    for (i, s) in sections.iter().enumerate() {
        let e = HEADER_SIZE + i * SECTION_ENTRY_SIZE;
        out[e..e + 4].copy_from_slice(&s.kind.to_le_bytes());
        out[e + 4..e + 8].copy_from_slice(&s.flags.to_le_bytes());
        out[e + 8..e + 16].copy_from_slice(&s.offset.to_le_bytes());
        out[e + 16..e + 24].copy_from_slice(&(s.body.len() as u64).to_le_bytes());
        out[e + 24..e + 28].copy_from_slice(&crc32c::crc32c(&s.body).to_le_bytes());
        let at = s.offset as usize;
        out[at..at + s.body.len()].copy_from_slice(&s.body);
    }
    seal_header(&mut out);
    out
}

/// Recomputes the header CRC32C (over header bytes 0..60 and the section
/// table) after the header or table was edited in place.
#[doc(hidden)]
pub fn seal_header(file: &mut [u8]) {
    let table_offset = u64::from_le_bytes(file[40..48].try_into().expect("8 bytes")) as usize;
    let count = u32::from_le_bytes(file[48..52].try_into().expect("4 bytes")) as usize;
    let entry = u32::from_le_bytes(file[52..56].try_into().expect("4 bytes")) as usize;
    let table_end = (table_offset + count * entry).min(file.len());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&file[..60]), &file[table_offset.min(table_end)..table_end]);
    file[60..64].copy_from_slice(&crc.to_le_bytes());
}

/// Writes `bytes` to `path` so that `path` holds either its old content or all
/// of the new one, never a part: write a temporary file in the same folder,
/// flush it to disk, then rename it over `path`.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let file_name =
        path.file_name().ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{}.tmp-{}-{n}", file_name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
