//! NumPy `.npy` files: reading float and integer arrays, writing f32 arrays.
//!
//! Enough of the format (versions 1-3, C order, little- or big-endian
//! `f4`/`f8`/`f2`/`i4`/`i8`/`u1`...) for model inputs, outputs and states.

use std::path::Path;

/// An array read from a `.npy` file, widened to f64 so integers and floats
/// share one type (every f32, and every integer label, is exact in f64).
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
    /// The stored element type, as NumPy names it (`float32`, `int64`, ...).
    pub dtype: &'static str,
    /// int32 and int64 arrays: the values exactly (an int64 above 2^53 is
    /// not exact in `data`); empty for other types.
    pub ints: Vec<i64>,
}

impl Array {
    /// The elements as f32.
    pub fn to_f32(&self) -> Vec<f32> {
        self.data.iter().map(|&v| v as f32).collect()
    }
}

/// What is wrong with a `.npy` file.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyError(pub String);

impl std::fmt::Display for NpyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for NpyError {}

fn err(msg: impl Into<String>) -> NpyError {
    NpyError(msg.into())
}

/// Reads a `.npy` file.
pub fn read(path: impl AsRef<Path>) -> Result<Array, NpyError> {
    let path = path.as_ref();
    let bytes = lstmrt_format::read_regular(path, lstmrt_format::limits::DATA_FILE)
        .map_err(|e| err(format!("{}: {e}", path.display())))?;
    parse(&bytes).map_err(|e| err(format!("{}: {}", path.display(), e.0)))
}

/// Parses the bytes of a `.npy` file.
pub fn parse(bytes: &[u8]) -> Result<Array, NpyError> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(err("not a .npy file (bad magic)"));
    }
    let (header_len, header_start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize, 12),
        v => return Err(err(format!("unsupported .npy version {v}"))),
    };
    let data_start =
        header_start.checked_add(header_len).filter(|&e| e <= bytes.len()).ok_or_else(|| err("truncated header"))?;
    let header = std::str::from_utf8(&bytes[header_start..data_start]).map_err(|_| err("header is not text"))?;
    let descr = dict_value(header, "descr").ok_or_else(|| err("header has no 'descr'"))?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let fortran = dict_value(header, "fortran_order").ok_or_else(|| err("header has no 'fortran_order'"))?;
    if fortran.trim() != "False" {
        return Err(err("Fortran-order arrays are not supported; save with np.ascontiguousarray"));
    }
    let shape_text = dict_value(header, "shape").ok_or_else(|| err("header has no 'shape'"))?;
    let shape: Vec<usize> = shape_text
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| err(format!("bad shape {shape_text}"))))
        .collect::<Result<_, _>>()?;
    let (big_endian, kind) = match descr.as_bytes().first() {
        Some(b'<') | Some(b'|') | Some(b'=') => (false, &descr[1..]),
        Some(b'>') => (true, &descr[1..]),
        _ => (false, descr),
    };
    let (size, name): (usize, &'static str) = match kind {
        "f4" => (4, "float32"),
        "f8" => (8, "float64"),
        "f2" => (2, "float16"),
        "i1" => (1, "int8"),
        "u1" => (1, "uint8"),
        "i2" => (2, "int16"),
        "i4" => (4, "int32"),
        "i8" => (8, "int64"),
        "u4" => (4, "uint32"),
        "u8" => (8, "uint64"),
        "b1" => (1, "bool"),
        other => return Err(err(format!("unsupported dtype '{other}' (use float32 or float64)"))),
    };
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| err("shape overflows"))?;
    let body = &bytes[data_start..];
    if count.checked_mul(size) != Some(body.len()) {
        return Err(err(format!(
            "shape {shape:?} of {name} needs {} bytes, file has {}",
            count.saturating_mul(size),
            body.len()
        )));
    }
    // Eight bytes per value: refused, not aborted, when that is more than
    // the process can have (a large float32 input doubles here).
    let mut data = Vec::new();
    data.try_reserve_exact(count).map_err(|_| {
        err(format!("{count} values need {} bytes of memory as float64, more than could be allocated", count * 8))
    })?;
    data.extend(body.chunks_exact(size).map(|c| {
        let mut b = [0u8; 8];
        b[..size].copy_from_slice(c);
        if big_endian {
            b[..size].reverse();
        }
        match kind {
            "f4" => f32::from_le_bytes(b[..4].try_into().expect("4")) as f64,
            "f8" => f64::from_le_bytes(b),
            "f2" => half::f16::from_le_bytes([b[0], b[1]]).to_f64(),
            "i1" => b[0] as i8 as f64,
            "u1" | "b1" => b[0] as f64,
            "i2" => i16::from_le_bytes([b[0], b[1]]) as f64,
            "i4" => i32::from_le_bytes(b[..4].try_into().expect("4")) as f64,
            "u4" => u32::from_le_bytes(b[..4].try_into().expect("4")) as f64,
            "i8" => i64::from_le_bytes(b) as f64,
            _ => u64::from_le_bytes(b) as f64,
        }
    }));
    let ints = match kind {
        "i4" | "i8" => body
            .chunks_exact(size)
            .map(|c| {
                let mut b = [0u8; 8];
                b[..size].copy_from_slice(c);
                if big_endian {
                    b[..size].reverse();
                }
                if size == 4 { i32::from_le_bytes(b[..4].try_into().expect("4")) as i64 } else { i64::from_le_bytes(b) }
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(Array { shape, data, dtype: name, ints })
}

/// The text of `'key': value` in a Python dict literal (value up to the next
/// top-level comma or the closing brace).
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header.find(&format!("'{key}'")).or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = &header[at + key.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let mut depth = 0;
    for (i, ch) in rest.char_indices() {
        match ch {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' | '}' if depth == 0 => return Some(&rest[..i]),
            _ => {}
        }
    }
    None
}

/// The bytes of a little-endian f32 `.npy` file (version 1.0).
pub fn encode_f32(shape: &[usize], data: &[f32]) -> Vec<u8> {
    debug_assert_eq!(shape.iter().product::<usize>(), data.len());
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Pad so the data starts on a 64-byte boundary, header ending in '\n'.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat(total.div_ceil(64) * 64 - total));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    data.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
    out
}

/// Writes an f32 `.npy` file atomically.
pub fn write_f32(path: impl AsRef<Path>, shape: &[usize], data: &[f32]) -> std::io::Result<()> {
    lstmrt_format::atomic_write(path.as_ref(), &encode_f32(shape, data))
}
