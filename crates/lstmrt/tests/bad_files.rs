//! Every way a model file can be wrong gets its own clear error, never a
//! panic, an out-of-bounds read or a huge allocation.

use lstmrt_testkit as common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::TempDir;
use lstmrt::{Model, ModelWriter, Weights};
use lstmrt_format::{
    self as format, Architecture, CellKind, DirectoryEntry, Error, Metadata, RawSection, assemble, bincode_config,
    encode_directory, section,
};

/// Records the largest single allocation, to prove hostile counts never size one.
struct Tracking;
static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to the system allocator unchanged (and notes the size).
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which is
        // `System.alloc`'s: the call is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract, which is
        // `System.dealloc`'s: the call is passed on unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract, which is
        // `System.realloc`'s: the call is passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

fn meta() -> Metadata {
    let mut m = Metadata::new(Architecture::new(CellKind::Lstm, 3, 4, 1));
    m.provenance.producer = "PRODUCER-STRING".into();
    m
}

fn valid_file() -> Vec<u8> {
    let meta = meta();
    let mut w = Weights::zeros(&meta);
    w.layers[0].w_ih.iter_mut().enumerate().for_each(|(i, v)| *v = i as f32 * 0.01);
    ModelWriter::new(&meta, &w).to_bytes().unwrap()
}

fn open_err(bytes: &[u8]) -> Error {
    match Model::from_bytes(bytes) {
        Ok(_) => panic!("a bad file was accepted"),
        Err(lstmrt::Error::Format(e)) => e,
        Err(other) => panic!("unexpected error kind: {other}"),
    }
}

/// The directory entries of the valid file, with offsets relative to the data section.
fn entries() -> Vec<DirectoryEntry> {
    let shapes: [(&str, Vec<u64>); 4] = [
        ("weight_ih_l0", vec![16, 3]),
        ("weight_hh_l0", vec![16, 4]),
        ("bias_ih_l0", vec![16]),
        ("bias_hh_l0", vec![16]),
    ];
    let mut offset = 0;
    shapes
        .into_iter()
        .map(|(name, shape)| {
            let length = shape.iter().product::<u64>() * 4;
            let e = DirectoryEntry { name: name.into(), dtype: 0, layout: 0, shape, offset, length, crc32c: 0 };
            offset += length.div_ceil(64) * 64;
            e
        })
        .collect()
}

/// Builds a file from parts, placing metadata, directory and data like the
/// writer does; `entries` offsets are relative to the data section.
fn craft(
    version: (u16, u16),
    meta_bytes: Vec<u8>,
    mut entries: Vec<DirectoryEntry>,
    extra: Vec<RawSection>,
) -> Vec<u8> {
    let table = (3 + extra.len()) as u64 * 32;
    let meta_at = 64 + table;
    let dir_len = encode_directory(&entries).len() as u64;
    let dir_at = meta_at + meta_bytes.len() as u64;
    let mut data_at = (dir_at + dir_len).div_ceil(64) * 64;
    let extra_len: u64 = extra.iter().map(|s| s.body.len() as u64).sum();
    let extra_at = data_at;
    data_at = (data_at + extra_len).div_ceil(64) * 64;
    let data_len = entries.iter().map(|e| e.offset.saturating_add(e.length)).max().unwrap_or(0).min(1 << 20);
    for e in &mut entries {
        e.offset = e.offset.wrapping_add(data_at);
    }
    let mut sections = vec![
        RawSection::new(section::METADATA, 0, meta_at, meta_bytes),
        RawSection::new(section::TENSOR_DIRECTORY, 0, dir_at, encode_directory(&entries)),
        RawSection::new(section::TENSOR_DATA, 0, data_at, vec![0u8; data_len as usize]),
    ];
    let mut at = extra_at;
    for mut s in extra {
        s.offset = at;
        at += s.body.len() as u64;
        sections.push(s);
    }
    assemble(version, &sections)
}

fn meta_bytes(meta: &Metadata) -> Vec<u8> {
    bincode::serde::encode_to_vec(meta, bincode_config()).unwrap()
}

fn crafted(entries: Vec<DirectoryEntry>) -> Vec<u8> {
    craft((1, 0), meta_bytes(&meta()), entries, vec![])
}

#[test]
fn crafted_baseline_is_valid() {
    // The helpers build a valid file when nothing is broken, so each test
    // below fails for the one reason it introduces.
    Model::from_bytes(&crafted(entries())).unwrap();
    Model::from_bytes(&valid_file()).unwrap();
}

#[test]
fn rejects_empty_file() {
    assert_eq!(open_err(&[]), Error::TooShort { len: 0, needed: 64 });
    let dir = TempDir::new("empty");
    std::fs::write(dir.path("e.lstm"), b"").unwrap();
    assert!(matches!(Model::open(dir.path("e.lstm")), Err(lstmrt::Error::Format(Error::TooShort { .. }))));
}

#[test]
fn rejects_missing_file_naming_the_path() {
    let err = Model::open("/nonexistent/model.lstm").err().unwrap();
    assert!(err.to_string().contains("/nonexistent/model.lstm"), "{err}");
}

#[test]
fn rejects_truncated_file() {
    let bytes = valid_file();
    for cut in [10, 63, 64, 100, bytes.len() / 2, bytes.len() - 1] {
        let e = open_err(&bytes[..cut]);
        assert!(matches!(e, Error::TooShort { .. } | Error::Truncated { .. }), "cut at {cut}: {e}");
    }
    let e = open_err(&bytes[..bytes.len() - 1]);
    assert_eq!(e, Error::Truncated { declared: bytes.len() as u64, actual: bytes.len() as u64 - 1 });
}

#[test]
fn rejects_trailing_garbage() {
    let mut bytes = valid_file();
    bytes.extend_from_slice(b"garbage");
    assert!(matches!(open_err(&bytes), Error::TrailingBytes { .. }));
}

#[test]
fn rejects_wrong_magic() {
    let mut bytes = valid_file();
    bytes[1] = b'X';
    assert!(matches!(open_err(&bytes), Error::BadMagic { .. }));
    let e = open_err(b"PK\x03\x04 this is a zip file, not a model, padded to be long enough for a header....");
    assert!(e.to_string().contains("not an lstmrt model file"), "{e}");
}

#[test]
fn rejects_unknown_major_version_naming_both_versions() {
    let bytes = craft((2, 0), meta_bytes(&meta()), entries(), vec![]);
    let e = open_err(&bytes);
    assert_eq!(e, Error::UnsupportedVersion { file_major: 2, file_minor: 0, reader_major: 1, reader_minor: 3 });
    let msg = e.to_string();
    assert!(msg.contains("2.0") && msg.contains("1.3"), "{msg}");
}

#[test]
fn loads_newer_minor_version_skipping_unknown_optional_section() {
    let extra = RawSection::new(77, 0, 0, b"something from the future".to_vec());
    let bytes = craft((1, 4), meta_bytes(&meta()), entries(), vec![extra]);
    let model = Model::from_bytes(&bytes).unwrap();
    assert_eq!(model.file_info().skipped_sections, vec![77]);
    assert_eq!(model.file_info().version_minor, 4);
}

#[test]
fn newer_minor_version_may_append_metadata_fields_and_tensors() {
    let mut m = meta_bytes(&meta());
    m.extend_from_slice(&[1, 2, 3, 4]);
    let mut e = entries();
    e.push(DirectoryEntry {
        name: "future_tensor".into(),
        dtype: 0,
        layout: 0,
        shape: vec![4],
        offset: 1024,
        length: 16,
        crc32c: 0,
    });
    Model::from_bytes(&craft((1, 4), m.clone(), e.clone(), vec![])).unwrap();
    // The same in a file of a version this reader knows is corruption.
    assert!(matches!(open_err(&craft((1, 3), m, entries(), vec![])), Error::TrailingSectionBytes { .. }));
    assert_eq!(
        open_err(&craft((1, 0), meta_bytes(&meta()), e, vec![])),
        Error::UnexpectedTensor { name: "future_tensor".into() }
    );
}

#[test]
fn rejects_unknown_required_section() {
    let extra = RawSection::new(77, section::FLAG_REQUIRED, 0, b"must understand".to_vec());
    let bytes = craft((1, 3), meta_bytes(&meta()), entries(), vec![extra]);
    assert_eq!(open_err(&bytes), Error::UnknownRequiredSection { kind: 77 });
}

#[test]
fn rejects_unknown_required_flags() {
    let mut bytes = valid_file();
    bytes[16] = 1 | 8 | 0x80; // REVERSE is known; 8 and 0x80 are not
    format::seal_header(&mut bytes);
    let e = open_err(&bytes);
    assert_eq!(e, Error::UnknownRequiredFlags { flags: 0x88 });
    assert!(e.to_string().contains("needs a newer lstmrt"), "{e}");
}

#[test]
fn the_reverse_flag_is_read_and_refused_on_a_bidirectional_stack() {
    let mut bytes = valid_file();
    bytes[16] = 1;
    format::seal_header(&mut bytes);
    assert!(Model::from_bytes(&bytes).unwrap().architecture().reverse);
    let mut meta = meta();
    meta.architecture.bidirectional = true;
    let mut bytes = ModelWriter::new(&meta, &Weights::zeros(&meta)).to_bytes().unwrap();
    bytes[16] = 1;
    format::seal_header(&mut bytes);
    let err = open_err(&bytes);
    assert!(matches!(&err, Error::InvalidMetadata { field, .. } if field == "architecture.reverse"), "{err}");
    // The writer refuses it too.
    meta.architecture.reverse = true;
    assert!(ModelWriter::new(&meta, &Weights::zeros(&meta)).to_bytes().is_err());
}

#[test]
fn rejects_header_checksum_mismatch() {
    let mut bytes = valid_file();
    bytes[24] ^= 0x40; // an optional flag: only the checksum can catch it
    assert!(matches!(open_err(&bytes), Error::HeaderChecksum { .. }));
    let mut bytes = valid_file();
    bytes[64 + 9] ^= 1; // a section offset
    assert!(matches!(open_err(&bytes), Error::HeaderChecksum { .. }));
}

#[test]
fn rejects_section_checksum_mismatch() {
    let mut bytes = valid_file();
    let meta_at = u64::from_le_bytes(bytes[64 + 8..64 + 16].try_into().unwrap()) as usize;
    bytes[meta_at + 2] ^= 0x10;
    assert!(matches!(open_err(&bytes), Error::SectionChecksum { .. }));
}

#[test]
fn rejects_section_past_end_of_file() {
    for (field, value) in [(8, 1u64 << 40), (16, 1 << 40), (8, u64::MAX - 3)] {
        let mut bytes = valid_file();
        let entry = 64 + 32; // the directory's entry
        bytes[entry + field..entry + field + 8].copy_from_slice(&value.to_le_bytes());
        format::seal_header(&mut bytes);
        assert!(matches!(open_err(&bytes), Error::SectionOutOfBounds { .. }), "field {field} = {value}");
    }
}

#[test]
fn rejects_overlapping_sections() {
    let mut bytes = valid_file();
    let meta_at = u64::from_le_bytes(bytes[64 + 8..64 + 16].try_into().unwrap());
    // Point the directory at the metadata.
    bytes[64 + 32 + 8..64 + 32 + 16].copy_from_slice(&meta_at.to_le_bytes());
    format::seal_header(&mut bytes);
    assert!(matches!(open_err(&bytes), Error::SectionsOverlap { .. }));
}

#[test]
fn rejects_tensor_past_end_of_file() {
    let mut e = entries();
    e[1].offset = 1 << 30;
    let err = open_err(&crafted(e));
    assert!(matches!(&err, Error::TensorOutOfBounds { name, .. } if name == "weight_hh_l0"), "{err}");
    let mut e = entries();
    e[1].offset = u64::MAX - 63; // offset + length overflows
    assert!(matches!(open_err(&crafted(e)), Error::TensorOutOfBounds { .. }));
}

#[test]
fn rejects_dimensions_that_overflow() {
    let mut e = entries();
    e[0].shape = vec![1 << 32, 1 << 31, 4];
    let err = open_err(&crafted(e));
    assert!(matches!(&err, Error::TensorSizeOverflow { name, .. } if name == "weight_ih_l0"), "{err}");
}

#[test]
fn rejects_length_that_does_not_match_shape() {
    let mut e = entries();
    e[2].length = 60;
    assert!(matches!(open_err(&crafted(e)), Error::TensorLengthMismatch { .. }));
}

#[test]
fn rejects_misaligned_tensor() {
    let mut e = entries();
    e[3].offset += 4;
    let err = open_err(&crafted(e));
    assert!(matches!(&err, Error::TensorMisaligned { name, .. } if name == "bias_hh_l0"), "{err}");
}

#[test]
fn rejects_overlapping_tensors() {
    let mut e = entries();
    e[1].offset = e[0].offset + 64;
    assert!(matches!(open_err(&crafted(e)), Error::TensorsOverlap { .. }));
}

#[test]
fn rejects_duplicate_tensor_names() {
    let mut e = entries();
    e[3].name = "bias_ih_l0".into();
    assert_eq!(open_err(&crafted(e)), Error::DuplicateTensor { name: "bias_ih_l0".into() });
}

#[test]
fn rejects_unknown_dtype_and_layout_codes() {
    let mut e = entries();
    e[0].dtype = 9;
    assert_eq!(open_err(&crafted(e)), Error::UnknownDtype { name: "weight_ih_l0".into(), code: 9 });
    let mut e = entries();
    e[0].layout = 9;
    assert_eq!(open_err(&crafted(e)), Error::UnknownLayout { name: "weight_ih_l0".into(), code: 9 });
}

#[test]
fn rejects_shapes_that_do_not_match_the_architecture() {
    let mut e = entries();
    e[1].shape = vec![16, 5];
    e[1].length = 16 * 5 * 4;
    e[1].offset = 1024; // clear of the others
    let err = open_err(&crafted(e));
    assert_eq!(err, Error::TensorShape { name: "weight_hh_l0".into(), expected: vec![16, 4], found: vec![16, 5] });
    let e: Vec<_> = entries().into_iter().filter(|e| e.name != "weight_ih_l0").collect();
    assert_eq!(open_err(&crafted(e)), Error::MissingTensor { name: "weight_ih_l0".into() });
}

#[test]
fn rejects_invalid_architecture() {
    let mut m = meta();
    m.architecture.hidden_size = 0;
    let err = open_err(&craft((1, 0), meta_bytes(&m), entries(), vec![]));
    assert!(matches!(&err, Error::InvalidMetadata { field, .. } if field == "architecture.hidden_size"), "{err}");
    let mut m = meta();
    m.architecture.proj_size = 4; // must be below hidden_size
    assert!(matches!(open_err(&craft((1, 0), meta_bytes(&m), entries(), vec![])), Error::InvalidMetadata { .. }));
    // The layer limit is the spec's, and the message says so.
    let mut m = meta();
    m.architecture.num_layers = 5000;
    let err = open_err(&craft((1, 0), meta_bytes(&m), entries(), vec![]));
    assert!(err.to_string().contains("5000 is outside 1..=1024"), "{err}");
}

#[test]
fn a_truncated_metadata_section_is_reported_in_one_plain_line() {
    let mut bytes = meta_bytes(&meta());
    bytes.truncate(bytes.len() - 3);
    let err = open_err(&craft((1, 0), bytes, entries(), vec![])).to_string();
    assert!(err.contains("cannot decode the metadata section: it ends") && err.contains("bytes early"), "{err}");
    assert!(!err.contains('{') && !err.contains('\n'), "{err}");
}

#[test]
fn rejects_unknown_cell_kind_code() {
    let mut bytes = meta_bytes(&meta());
    bytes[0] = 9; // the cell kind is the first field
    let err = open_err(&craft((1, 0), bytes, entries(), vec![]));
    assert!(err.to_string().contains("unknown cell kind code 9"), "{err}");
}

#[test]
fn huge_counts_and_string_lengths_never_size_an_allocation() {
    // The producer string's u64 length sits right before its bytes.
    let good = meta_bytes(&meta());
    let at = good.windows(15).position(|w| w == b"PRODUCER-STRING").unwrap() - 8;
    let mut cases = Vec::new();
    for huge in [u64::MAX, 1 << 62, 1 << 40, 1 << 33] {
        let mut m = good.clone();
        m[at..at + 8].copy_from_slice(&huge.to_le_bytes());
        cases.push(craft((1, 0), m, entries(), vec![]));
        // The directory's entry count is its first u64.
        let mut bytes = crafted(entries());
        let dir_at = u64::from_le_bytes(bytes[64 + 32 + 8..64 + 32 + 16].try_into().unwrap()) as usize;
        bytes[dir_at..dir_at + 8].copy_from_slice(&huge.to_le_bytes());
        let mut sections: Vec<RawSection> = Vec::new();
        for i in 0..3 {
            let e = 64 + 32 * i;
            let kind = u32::from_le_bytes(bytes[e..e + 4].try_into().unwrap());
            let off = u64::from_le_bytes(bytes[e + 8..e + 16].try_into().unwrap()) as usize;
            let len = u64::from_le_bytes(bytes[e + 16..e + 24].try_into().unwrap()) as usize;
            sections.push(RawSection::new(kind, 0, off as u64, bytes[off..off + len].to_vec()));
        }
        cases.push(assemble((1, 0), &sections)); // re-sealed with the right checksums
        // A shape with a huge rank count.
        let mut e = entries();
        e[0].shape = vec![1; 9];
        cases.push(crafted(e));
    }
    for bytes in &cases {
        LARGEST.store(0, Ordering::Relaxed);
        let err = open_err(bytes);
        let largest = LARGEST.load(Ordering::Relaxed);
        assert!(largest < 4 << 20, "an allocation of {largest} bytes for a {}-byte file ({err})", bytes.len());
    }
}

#[test]
fn every_error_message_names_what_is_wrong() {
    let mut e = entries();
    e[1].offset = 1 << 30;
    let msg = open_err(&crafted(e)).to_string();
    assert!(msg.contains("weight_hh_l0") && msg.contains("outside"), "{msg}");
}

#[test]
fn verify_finds_corrupt_tensor_bytes() {
    let mut bytes = valid_file();
    let model = Model::from_bytes(&bytes).unwrap();
    model.verify().unwrap();
    let t = model.file_info().tensor("weight_ih_l0").unwrap().clone();
    bytes[t.offset as usize + 5] ^= 0xff;
    let model = Model::from_bytes(&bytes).unwrap(); // opening does not read tensor bytes
    let err = model.verify().unwrap_err();
    assert!(err.to_string().contains("weight_ih_l0"), "{err}");
}

/// The crafted tensors of an int8 LSTM 3 -> 4: both matrices int8 in
/// panel16x4 (`[1 panel, 1 group of 4 inputs, 4 gates, 16, 4]`), their f32
/// scales, f32 biases.
fn int8_entries() -> Vec<DirectoryEntry> {
    let tensors: [(&str, u32, u32, Vec<u64>); 6] = [
        ("weight_ih_l0", 3, 2, vec![1, 1, 4, 16, 4]),
        ("weight_ih_l0.scale", 0, 0, vec![16]),
        ("weight_hh_l0", 3, 2, vec![1, 1, 4, 16, 4]),
        ("weight_hh_l0.scale", 0, 0, vec![16]),
        ("bias_ih_l0", 0, 0, vec![16]),
        ("bias_hh_l0", 0, 0, vec![16]),
    ];
    let mut offset = 0;
    tensors
        .into_iter()
        .map(|(name, dtype, layout, shape)| {
            let size = if dtype == 3 { 1 } else { 4 };
            let length = shape.iter().product::<u64>() * size;
            let e = DirectoryEntry { name: name.into(), dtype, layout, shape, offset, length, crc32c: 0 };
            offset += length.div_ceil(64) * 64;
            e
        })
        .collect()
}

/// A file of these entries, their offsets laid out again after the lengths changed.
fn int8_crafted(mut entries: Vec<DirectoryEntry>) -> Vec<u8> {
    let mut offset = 0;
    for e in &mut entries {
        e.offset = offset;
        offset += e.length.div_ceil(64) * 64;
    }
    craft((1, 1), meta_bytes(&meta()), entries, vec![])
}

#[test]
fn int8_files_need_their_scales_the_panel16x4_layout_and_f32_scales() {
    Model::from_bytes(&int8_crafted(int8_entries())).unwrap();
    let kind = |e: Error, what: &str| match e {
        Error::TensorKind { name, reason } => assert!(reason.contains(what), "{name}: {reason}"),
        other => panic!("expected a tensor-kind error about {what:?}, got {other}"),
    };
    // No scales for an int8 matrix.
    let e: Vec<_> = int8_entries().into_iter().filter(|e| e.name != "weight_hh_l0.scale").collect();
    assert_eq!(open_err(&int8_crafted(e)), Error::MissingTensor { name: "weight_hh_l0.scale".into() });
    // Scales in f16.
    let mut e = int8_entries();
    e[1].dtype = 1;
    e[1].length = 32;
    kind(open_err(&int8_crafted(e)), "int8 scales are f32");
    // int8 in the float panel layout, and f32 in the int8 one.
    let mut e = int8_entries();
    e[0].layout = 1;
    e[0].shape = vec![1, 3, 4, 16];
    e[0].length = 192;
    kind(open_err(&int8_crafted(e)), "panel16x4");
    let mut e = int8_entries();
    e[2].dtype = 0;
    e[2].length *= 4;
    kind(open_err(&int8_crafted(e)), "panel16x4 holds only int8");
    // int8 for a vector.
    let mut e = int8_entries();
    e[4].dtype = 3;
    e[4].length = 16;
    kind(open_err(&int8_crafted(e)), "panel16x4");
    // A scale tensor without an int8 matrix is a tensor of no use.
    let mut e = entries();
    e.push(DirectoryEntry {
        name: "weight_ih_l0.scale".into(),
        dtype: 0,
        layout: 0,
        shape: vec![16],
        offset: 1024,
        length: 64,
        crc32c: 0,
    });
    assert_eq!(open_err(&crafted(e)), Error::UnexpectedTensor { name: "weight_ih_l0.scale".into() });
}

#[test]
fn int8_scales_that_are_not_finite_and_non_negative_are_refused_naming_the_row() {
    let meta = meta();
    let w = Weights::zeros(&meta);
    let good = ModelWriter::new(&meta, &w).dtype(lstmrt::format::DType::I8).to_bytes().unwrap();
    let info = lstmrt_format::parse(&good).unwrap();
    let scale = info.tensor("weight_hh_l0.scale").unwrap();
    for bad in [f32::NAN, -1.0, f32::INFINITY] {
        let mut bytes = good.clone();
        let at = scale.offset as usize + 5 * 4;
        bytes[at..at + 4].copy_from_slice(&bad.to_le_bytes());
        match Model::from_bytes(&bytes) {
            Err(lstmrt::Error::Format(Error::TensorKind { name, reason })) => {
                assert_eq!(name, "weight_hh_l0.scale");
                assert!(reason.contains("row 5"), "{reason}");
            }
            Err(other) => panic!("{bad}: unexpected error {other}"),
            Ok(_) => panic!("a scale of {bad} was accepted"),
        }
    }
}

#[test]
fn int8_writer_refuses_rows_too_long_for_exact_sums_and_non_finite_weights() {
    let big = Metadata::new(Architecture::new(CellKind::Lstm, 70_000, 1, 1));
    let w = Weights::zeros(&big);
    let e = ModelWriter::new(&big, &w).dtype(lstmrt::format::DType::I8).to_bytes().unwrap_err();
    assert!(e.to_string().contains("at most 65536"), "{e}");
    let meta = meta();
    let mut w = Weights::zeros(&meta);
    w.layers[0].w_hh[7] = f32::NAN;
    let e = ModelWriter::new(&meta, &w).dtype(lstmrt::format::DType::I8).to_bytes().unwrap_err();
    assert!(e.to_string().contains("weight_hh_l0") && e.to_string().contains("element 7"), "{e}");
}

#[test]
fn the_initial_state_flag_and_tensors_go_together() {
    // The flag without an initial state.
    let mut bytes = valid_file();
    bytes[16] = 4;
    format::seal_header(&mut bytes);
    let e = open_err(&bytes).to_string();
    assert!(e.contains("INITIAL_STATE is set but the file stores no initial state"), "{e}");
    // An initial state without the flag (as a 1.1 writer could never write it).
    let meta = meta();
    let mut weights = Weights::zeros(&meta);
    weights.layers[0].initial_h = Some(vec![0.5; meta.architecture.output_size()]);
    let mut bytes = ModelWriter::new(&meta, &weights).to_bytes().unwrap();
    assert_eq!(bytes[16] & 4, 4, "the writer sets the flag");
    bytes[16] &= !4;
    format::seal_header(&mut bytes);
    let e = open_err(&bytes).to_string();
    assert!(e.contains("initial_h_l0") && e.contains("without the INITIAL_STATE required flag"), "{e}");
}
