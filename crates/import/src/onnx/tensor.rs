//! Tensors' values: every float and integer type widened to f32, raw,
//! typed or external data (which must stay inside the model's folder).

use super::*;

/// ONNX `TensorProto.DataType` codes this importer reads.
pub(super) mod dtype {
    pub const FLOAT: u64 = 1;
    pub const INT32: u64 = 6;
    pub const INT64: u64 = 7;
    pub const FLOAT16: u64 = 10;
    pub const DOUBLE: u64 = 11;
    pub const BFLOAT16: u64 = 16;
}

/// A constant's values widened to f32, with its shape.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Values {
    pub(super) shape: Vec<usize>,
    pub(super) data: Vec<f32>,
}

impl TensorProto<'_> {
    /// The tensor's values; external data is read from `dir`.
    pub(super) fn values(&self, dir: &Path) -> Result<Values, ImportErrorKind> {
        let refuse = |reason: String| E::Constant { tensor: self.name.clone(), reason };
        let mut shape = Vec::with_capacity(self.dims.len());
        for &d in &self.dims {
            shape.push(usize::try_from(d).map_err(|_| refuse(format!("has a negative dimension {d}")))?);
        }
        let overflows = || refuse(format!("has a shape {shape:?} that overflows"));
        let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(overflows)?;
        let (size, name) = match self.data_type {
            dtype::FLOAT => (4, "float"),
            dtype::DOUBLE => (8, "double"),
            dtype::FLOAT16 => (2, "float16"),
            dtype::BFLOAT16 => (2, "bfloat16"),
            dtype::INT32 => (4, "int32"),
            dtype::INT64 => (8, "int64"),
            other => return Err(refuse(format!("has data type {other}; expected a float type"))),
        };
        let external;
        let raw = if self.external_location {
            external = self.read_external(dir, count.checked_mul(size).ok_or_else(overflows)?)?;
            Some(external.as_slice())
        } else {
            self.raw_data
        };
        let data: Vec<f32> = match raw {
            Some(raw) => {
                if raw.len() != count * size {
                    return Err(refuse(format!(
                        "of shape {shape:?} needs {} bytes of {name}, has {}",
                        count * size,
                        raw.len()
                    )));
                }
                raw.chunks_exact(size)
                    .map(|c| match self.data_type {
                        dtype::FLOAT => f32::from_le_bytes(c.try_into().expect("4")),
                        dtype::DOUBLE => f64::from_le_bytes(c.try_into().expect("8")) as f32,
                        dtype::FLOAT16 => half::f16::from_le_bytes([c[0], c[1]]).to_f32(),
                        dtype::BFLOAT16 => half::bf16::from_le_bytes([c[0], c[1]]).to_f32(),
                        dtype::INT32 => i32::from_le_bytes(c.try_into().expect("4")) as f32,
                        _ => i64::from_le_bytes(c.try_into().expect("8")) as f32,
                    })
                    .collect()
            }
            None => match self.data_type {
                dtype::FLOAT => self.float_data.clone(),
                dtype::DOUBLE => self.double_data.iter().map(|&v| v as f32).collect(),
                dtype::FLOAT16 => self.int32_data.iter().map(|&v| half::f16::from_bits(v as u16).to_f32()).collect(),
                dtype::BFLOAT16 => self.int32_data.iter().map(|&v| half::bf16::from_bits(v as u16).to_f32()).collect(),
                dtype::INT32 => self.int32_data.iter().map(|&v| v as f32).collect(),
                _ => self.int64_data.iter().map(|&v| v as f32).collect(),
            },
        };
        if data.len() != count {
            return Err(refuse(format!("of shape {shape:?} has {} values, expected {count}", data.len())));
        }
        Ok(Values { shape, data })
    }

    /// Reads `len` bytes of external data, refusing a location outside `dir`.
    pub(super) fn read_external(&self, dir: &Path, len: usize) -> Result<Vec<u8>, ImportErrorKind> {
        let refuse = |reason: String| E::ExternalData { tensor: self.name.clone(), reason };
        let io = |what: &'static str, path: &Path| {
            let (tensor, path) = (self.name.clone(), path.to_path_buf());
            move |e: std::io::Error| E::ExternalDataIo { tensor, what, path, source: e.into() }
        };
        let get = |key: &str| self.external.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        let location = get("location").ok_or_else(|| refuse("external data without a `location`".into()))?;
        let rel = Path::new(location);
        if rel.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
            return Err(refuse(format!("external data location `{location}` leaves the model's folder; refused")));
        }
        let full = dir.join(rel);
        let real_dir = dir.canonicalize().map_err(io("model folder", dir))?;
        let real = full.canonicalize().map_err(io("external data file", &full))?;
        if !real.starts_with(&real_dir) {
            return Err(refuse(format!(
                "external data location `{location}` resolves outside the model's folder; refused"
            )));
        }
        let number = |key: &str| -> Result<Option<u64>, ImportErrorKind> {
            get(key)
                .map(|v| v.parse::<u64>().map_err(|_| refuse(format!("external data {key} `{v}` is not a number"))))
                .transpose()
        };
        let offset = number("offset")?.unwrap_or(0);
        if let Some(length) = number("length")?
            && length != len as u64
        {
            return Err(refuse(format!("external data length {length}, but the shape needs {len} bytes")));
        }
        use std::io::{Read, Seek, SeekFrom};
        let (mut f, meta) = lstmrt_format::open_regular(&real).map_err(io("external data file", &full))?;
        let file_len = meta.len();
        lstmrt_format::limits::SOURCE_FILE.check(file_len).map_err(|e| io("external data file", &full)(e.into()))?;
        if offset.checked_add(len as u64).is_none_or(|end| end > file_len) {
            return Err(refuse(format!(
                "external data {location} is {file_len} bytes; {len} bytes at offset {offset} run past it"
            )));
        }
        f.seek(SeekFrom::Start(offset)).map_err(io("external data file", &full))?;
        let mut buf = vec![0u8; len];
        f.read_exact(&mut buf).map_err(io("external data file", &full))?;
        Ok(buf)
    }
}
