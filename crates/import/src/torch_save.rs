//! Files written by `torch.save`, read without Python.
//!
//! Two layouts exist:
//!
//! - **zip** (the default since PyTorch 1.6): a zip archive whose entries sit
//!   under one folder (`archive/` or the file's stem): `data.pkl` is the pickle,
//!   `data/{key}` the raw bytes of each storage, `byteorder` says `little` or `big`.
//! - **legacy** (`_use_new_zipfile_serialization=False`): five pickles in a row
//!   (magic number, protocol version 1001, system info, the object, the list of
//!   storage keys), then each storage in key-list order as a little-endian u64
//!   element count followed by its bytes.
//!
//! The pickle is run by [`super::pickle`], which refuses anything but tensors,
//! dicts and plain values. Tensors are strided views of storages; they are
//! materialised here element by element, with every index checked against the
//! storage. Floating-point tensors (f64, f32, f16, bf16) are returned widened
//! to f32; integer and bool tensors (such as a BatchNorm's
//! `num_batches_tracked`) are never weights of a recurrent model and are skipped.

use std::collections::HashMap;
use std::io::{Cursor, Read};

use super::pickle::{self, Object, StorageDType, StorageRef, TensorRef};
use super::{ImportError, ImportErrorKind, SourceTensor};
use ImportErrorKind as E;

/// `torch.serialization.MAGIC_NUMBER`, the first pickle of a legacy file.
const LEGACY_MAGIC: i128 = 0x1950A86A20F9469CFC6C;
/// `torch.serialization.PROTOCOL_VERSION`, the second pickle of a legacy file.
const LEGACY_PROTOCOL: i128 = 1001;

/// Whether `bytes` start like a zip archive (local file header).
pub fn is_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
}

/// Whether `bytes` start with the legacy format's magic-number pickle.
pub fn is_legacy(bytes: &[u8]) -> bool {
    bytes.first() == Some(&0x80)
        && matches!(pickle::load(&bytes[..bytes.len().min(64)]), Ok(p) if p.root() == &Object::Int(LEGACY_MAGIC))
}

/// Opens a zip archive held in memory (a `torch.save` file, or any zip
/// [`detect`](super::convert::detect) looks into).
pub(crate) fn open_zip(bytes: &[u8]) -> Result<zip::ZipArchive<Cursor<&[u8]>>, ImportErrorKind> {
    zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| E::Archive { reason: format!("corrupt zip archive: {e}") })
}

/// Whether a zip archive (given its entry names) is a `torch.save` file.
pub fn is_torch_zip(names: &[String]) -> bool {
    data_pickle(names).is_some()
}

/// The `data.pkl` entry: at the top of the archive or one folder down.
fn data_pickle(names: &[String]) -> Option<&str> {
    names
        .iter()
        .map(String::as_str)
        .find(|n| *n == "data.pkl" || n.split_once('/').is_some_and(|(_, r)| r == "data.pkl"))
}

/// Reads every floating-point tensor of a `torch.save` file held in `bytes`.
pub fn parse(bytes: &[u8], file: &str) -> Result<Vec<SourceTensor>, ImportError> {
    let result = if is_zip(bytes) {
        parse_zip(bytes)
    } else if bytes.len() > 262 && &bytes[257..262] == b"ustar" {
        Err(E::Unsupported {
            what: "a tar archive: the pre-1.0 torch.save format is not supported; re-save it with a recent PyTorch"
                .into(),
        })
    } else if bytes.first() == Some(&0x80) {
        parse_legacy(bytes)
    } else {
        Err(E::UnknownFormat { reason: "not a torch.save file: neither a zip archive nor a pickle".into() })
    };
    result.map_err(|kind| ImportError::new(file, kind))
}

fn parse_zip(bytes: &[u8]) -> Result<Vec<SourceTensor>, ImportErrorKind> {
    let mut zip = open_zip(bytes)?;
    let names: Vec<String> = zip.file_names().map(str::to_owned).collect();
    let Some(pkl) = data_pickle(&names) else {
        let hint = if names.iter().any(|n| n.ends_with("constants.pkl")) {
            " (this looks like a TorchScript archive from torch.jit.save; save model.state_dict() with torch.save)"
        } else {
            ""
        };
        return Err(E::UnknownFormat {
            reason: format!("zip archive without a data.pkl entry: not a torch.save file{hint}"),
        });
    };
    let folder = pkl.strip_suffix("data.pkl").expect("found by suffix").to_owned();
    let byteorder = format!("{folder}byteorder");
    let big_endian = match names.contains(&byteorder) {
        true => match read_entry(&mut zip, &byteorder, 16)?.as_slice() {
            b"little" => false,
            b"big" => true,
            other => return Err(E::ByteOrder { entry: byteorder, found: String::from_utf8_lossy(other).into() }),
        },
        false => false,
    };
    let entry = format!("{folder}data.pkl");
    let pkl_bytes = read_entry(&mut zip, &entry, MAX_PICKLE)?;
    let pickle = pickle::load(&pkl_bytes).map_err(|source| E::Pickle { entry: entry.clone(), source })?;
    let tensors = pickle.tensors().map_err(|source| E::StateDict { entry: Some(entry), source })?;
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    let mut out = Vec::new();
    for (name, t) in tensors {
        if !t.storage.dtype.is_float() {
            continue;
        }
        let key = &t.storage.key;
        if !storages.contains_key(key) {
            let entry = format!("{folder}data/{key}");
            if !names.contains(&entry) {
                return Err(E::Tensor { name, reason: format!("storage entry `{entry}` is missing from the archive") });
            }
            let want = storage_bytes(&t.storage)
                .ok_or_else(|| E::Tensor { name: name.clone(), reason: "storage size overflows".into() })?;
            storages.insert(key.clone(), read_entry(&mut zip, &entry, want)?);
        }
        out.push(materialize(&name, &t, &storages[key], big_endian)?);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Most bytes `data.pkl` may inflate to: a state dict's pickle holds names,
/// shapes and storage keys, not values.
const MAX_PICKLE: u64 = 256 << 20;

/// Deflate cannot expand data by more than about 1032 to 1; an entry that
/// declares more is a bomb (or corrupt).
const MAX_INFLATION: u64 = 1032;

/// Reads at most `limit` bytes of a zip entry (storages need no more than
/// their declared size, whatever the entry claims once decompressed), and
/// never more than its declared size, which is checked against what deflate
/// can make of its compressed bytes before anything is inflated.
fn read_entry(zip: &mut zip::ZipArchive<Cursor<&[u8]>>, name: &str, limit: u64) -> Result<Vec<u8>, ImportErrorKind> {
    let fail = |e: &dyn std::fmt::Display| E::Archive { reason: format!("zip entry `{name}`: {e}") };
    let entry = zip.by_name(name).map_err(|e| fail(&e))?;
    let (declared, compressed) = (entry.size(), entry.compressed_size());
    if declared > compressed.saturating_mul(MAX_INFLATION).saturating_add(64) {
        return Err(fail(&format!(
            "declares {declared} bytes from {compressed} compressed, more than deflate can produce"
        )));
    }
    if declared > limit && limit == MAX_PICKLE {
        return Err(fail(&format!("declares {declared} bytes; a state dict's pickle may have at most {MAX_PICKLE}")));
    }
    let mut out = Vec::new();
    entry.take(limit.min(declared)).read_to_end(&mut out).map_err(|e| fail(&e))?;
    Ok(out)
}

fn storage_bytes(s: &StorageRef) -> Option<u64> {
    s.numel.checked_mul(s.dtype.size() as u64)
}

fn parse_legacy(bytes: &[u8]) -> Result<Vec<SourceTensor>, ImportErrorKind> {
    let legacy = |reason: String| E::Legacy { reason };
    let mut pos = 0usize;
    let mut next = |part: &'static str| -> Result<pickle::Pickle, ImportErrorKind> {
        let p = pickle::load(&bytes[pos..]).map_err(|source| E::LegacyPickle { part, offset: pos, source })?;
        pos += p.len;
        Ok(p)
    };
    if next("magic number")?.root() != &Object::Int(LEGACY_MAGIC) {
        return Err(E::UnknownFormat { reason: "a pickle, but not a torch.save file (wrong magic number)".into() });
    }
    match next("protocol version")?.root() {
        Object::Int(LEGACY_PROTOCOL) => {}
        other => return Err(legacy(format!("legacy torch.save protocol {other:?}, expected {LEGACY_PROTOCOL}"))),
    }
    let sys_info = next("system info")?;
    let big_endian = match sys_info.root() {
        Object::Dict(items) => items.iter().any(|&(k, v)| {
            sys_info.get(k) == &Object::Str("little_endian".into()) && sys_info.get(v) == &Object::Bool(false)
        }),
        _ => return Err(legacy("legacy torch.save system info is not a dict".into())),
    };
    let object = next("object")?;
    let keys = next("storage key list")?;
    let Object::List(key_ids) = keys.root() else {
        return Err(legacy("legacy torch.save storage key list is not a list".into()));
    };
    let tensors = object.tensors().map_err(|source| E::StateDict { entry: None, source })?;
    let mut refs: HashMap<&str, &StorageRef> = HashMap::new();
    for (_, t) in &tensors {
        refs.insert(&t.storage.key, &t.storage);
    }
    // Storage records follow in key-list order; each one's element size comes
    // from the storage type its persistent id named.
    let mut storages: HashMap<String, &[u8]> = HashMap::new();
    for &k in key_ids {
        let Object::Str(key) = keys.get(k) else { return Err(legacy("a legacy storage key is not a string".into())) };
        let Some(storage) = refs.get(key.as_str()) else {
            return Err(legacy(format!(
                "legacy storage `{key}` is not used by any tensor (storages on their own are not supported)"
            )));
        };
        let storage_error = |reason: String| E::Storage { key: key.clone(), offset: pos, reason };
        let header = bytes.get(pos..pos + 8).ok_or_else(|| storage_error("truncated".into()))?;
        let header: [u8; 8] = header.try_into().expect("8 bytes");
        let numel = if big_endian { u64::from_be_bytes(header) } else { u64::from_le_bytes(header) };
        let len = numel
            .checked_mul(storage.dtype.size() as u64)
            .and_then(|n| usize::try_from(n).ok())
            .and_then(|n| n.checked_add(pos + 8))
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| storage_error(format!("{numel} elements run past the end of the file")))?;
        storages.insert(key.clone(), &bytes[pos + 8..len]);
        pos = len;
    }
    let mut out = Vec::new();
    for (name, t) in &tensors {
        if !t.storage.dtype.is_float() {
            continue;
        }
        let data = storages.get(t.storage.key.as_str()).ok_or_else(|| E::Tensor {
            name: name.clone(),
            reason: format!("storage `{}` is not in the storage list", t.storage.key),
        })?;
        out.push(materialize(name, t, data, big_endian)?);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Copies the strided view `t` out of its storage's bytes, widening to f32.
fn materialize(name: &str, t: &TensorRef, storage: &[u8], big_endian: bool) -> Result<SourceTensor, ImportErrorKind> {
    let fail = |reason: String| E::Tensor { name: name.to_owned(), reason };
    let size = t.storage.dtype.size();
    let have = (storage.len() / size) as u64;
    if have < t.storage.numel {
        return Err(fail(format!(
            "storage `{}` holds {have} {} elements, its persistent id declares {}",
            t.storage.key,
            t.storage.dtype.name(),
            t.storage.numel
        )));
    }
    let numel = t.storage.numel;
    let count = t.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d)).ok_or_else(|| fail("size overflows".into()))?;
    let shape: Vec<usize> = t.shape.iter().map(|&d| d as usize).collect();
    if count == 0 {
        return Ok(SourceTensor { name: name.to_owned(), shape, data: Vec::new() });
    }
    // The furthest element the view reaches must lie inside the storage.
    let last = t
        .shape
        .iter()
        .zip(&t.stride)
        .try_fold(t.offset, |a, (&d, &s)| (d - 1).checked_mul(s).and_then(|x| a.checked_add(x)))
        .ok_or_else(|| fail("offset and strides overflow".into()))?;
    if last >= numel {
        return Err(fail(format!(
            "size {:?}, stride {:?} and offset {} reach element {last} of a storage of {numel}",
            t.shape, t.stride, t.offset
        )));
    }
    if count > numel {
        return Err(fail(format!(
            "{count} elements viewed in a storage of {numel}: an expanded (stride 0) view; save it with .contiguous()"
        )));
    }
    let read = |i: u64| -> f32 {
        let at = i as usize * size;
        let mut b = [0u8; 8];
        b[..size].copy_from_slice(&storage[at..at + size]);
        if big_endian {
            b[..size].reverse();
        }
        match t.storage.dtype {
            StorageDType::F64 => f64::from_le_bytes(b) as f32,
            StorageDType::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            StorageDType::F16 => half::f16::from_le_bytes([b[0], b[1]]).to_f32(),
            StorageDType::BF16 => half::bf16::from_le_bytes([b[0], b[1]]).to_f32(),
            _ => unreachable!("only float storages are materialised"),
        }
    };
    // Walk the view in row-major order with an odometer over the indices.
    let mut data = Vec::with_capacity(count as usize);
    let mut index = vec![0u64; t.shape.len()];
    let mut at = t.offset;
    for _ in 0..count {
        data.push(read(at));
        for d in (0..index.len()).rev() {
            index[d] += 1;
            at += t.stride[d];
            if index[d] < t.shape[d] {
                break;
            }
            at -= t.stride[d] * t.shape[d];
            index[d] = 0;
        }
    }
    Ok(SourceTensor { name: name.to_owned(), shape, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(offset: u64, shape: &[u64], stride: &[u64], numel: u64) -> TensorRef {
        TensorRef {
            storage: StorageRef { dtype: StorageDType::F32, key: "0".into(), numel },
            offset,
            shape: shape.to_vec(),
            stride: stride.to_vec(),
        }
    }

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn materializes_transposed_views_with_offsets() {
        let storage = f32_bytes(&[9.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        // A [3, 2] view of the [2, 3] matrix starting at element 1, transposed.
        let t = materialize("w", &view(1, &[3, 2], &[1, 3], 7), &storage, false).unwrap();
        assert_eq!(t.shape, [3, 2]);
        assert_eq!(t.data, [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    }

    /// The reason of a [`ImportErrorKind::Tensor`] error about tensor `name`.
    fn tensor_reason(e: ImportErrorKind, name: &str) -> String {
        match e {
            E::Tensor { name: n, reason } if n == name => reason,
            other => panic!("expected a Tensor error naming `{name}`, got {other:?}"),
        }
    }

    #[test]
    fn rejects_views_past_the_storage() {
        let storage = f32_bytes(&[0.0; 6]);
        let e = materialize("w", &view(1, &[2, 3], &[3, 1], 6), &storage, false).unwrap_err();
        let reason = tensor_reason(e, "w");
        assert!(reason.contains("reach element 6"), "{reason}");
        let e = materialize("w", &view(0, &[2, 3], &[3, 1], 8), &storage, false).unwrap_err();
        let reason = tensor_reason(e, "w");
        assert!(reason.contains("declares 8"), "{reason}");
    }

    #[test]
    fn rejects_expanded_views() {
        let e = materialize("w", &view(0, &[4, 3], &[0, 1], 3), &f32_bytes(&[1.0; 3]), false).unwrap_err();
        let reason = tensor_reason(e, "w");
        assert!(reason.contains("contiguous"), "{reason}");
    }

    #[test]
    fn reads_big_endian_storages() {
        let storage: Vec<u8> = [1.5f32, -2.0].iter().flat_map(|x| x.to_be_bytes()).collect();
        let t = materialize("w", &view(0, &[2], &[1], 2), &storage, true).unwrap();
        assert_eq!(t.data, [1.5, -2.0]);
    }

    #[test]
    fn refuses_files_that_are_neither_zip_nor_pickle() {
        let e = parse(b"hello", "x.pt").unwrap_err();
        assert_eq!(e.file, std::path::Path::new("x.pt"));
        assert!(matches!(&e.kind, E::UnknownFormat { reason } if reason.contains("not a torch.save file")), "{e}");
    }

    #[test]
    fn a_truncated_zip_is_an_archive_error() {
        let e = parse(b"PK\x03\x04 and then nothing a zip needs", "x.pt").unwrap_err();
        assert!(matches!(&e.kind, E::Archive { reason } if reason.starts_with("corrupt zip archive: ")), "{e}");
    }

    #[test]
    fn a_refused_legacy_pickle_names_the_part_and_keeps_the_pickle_error() {
        // The first pickle of a legacy file, calling `posix.system`.
        let e = parse(b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00ls\x85R.", "evil.pt").unwrap_err();
        let E::LegacyPickle { part, offset, source } = &e.kind else { panic!("expected LegacyPickle, got {e:?}") };
        assert_eq!((*part, *offset, source.position), ("magic number", 0, 2));
        assert!(source.message.contains("`posix.system`"), "{e}");
        let inner = std::error::Error::source(&e).expect("the pickle error is the source");
        assert_eq!(inner.to_string(), source.to_string());
        assert!(e.to_string().starts_with("evil.pt: legacy torch.save magic number at byte 0: pickle byte 2: "), "{e}");
    }
}
