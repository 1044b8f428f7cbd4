//! Sequences in and out of files and text lines: the data formats of
//! `lstm-run`, usable by any program that feeds a model from files.
//!
//! - Input: `.npy` (float32 or float64, `[steps, features]` or
//!   `[steps, batch, features]`, or `[batch, steps, features]` with
//!   [`ReadOptions::batch_first`]) and `.csv` (one timestep per row).
//! - Output: `.npy`, `.csv` or `.json`, shaped as PyTorch's `output`.
//! - One timestep per text line (streaming): [`parse_values`], [`format_values`].
//! - States: `PREFIX.h.npy` and `PREFIX.c.npy`, shaped like PyTorch's `h_n` / `c_n`.
//!
//! CSV text: one row per line; values separated by commas, or by whitespace
//! when the line has no comma (NumPy's `savetxt` default). Blank lines and
//! lines starting with `#` are skipped. The first row is a header when none of
//! its fields is a number. Rows and columns in messages are 1-based; a row is
//! the line number in the file.

use lstmrt_format::limits::DATA_FILE;
use lstmrt_format::read_regular;
use std::fmt;
use std::path::{Path, PathBuf};

use lstmrt_format::Architecture;
use lstmrt_import::npy;

use crate::session::Session;

/// An empty `Vec` with room for `len` values, or a message naming `what`
/// and the bytes when this process cannot have them (rather than an abort):
/// for buffers sized by an input.
pub fn with_room<T>(len: usize, what: &str) -> Result<Vec<T>, String> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| {
        format!(
            "{what} needs {} bytes of memory, more than could be allocated",
            (len as u64).saturating_mul(std::mem::size_of::<T>() as u64)
        )
    })?;
    Ok(v)
}

/// `len` zero floats ([`with_room`]), refused with exit code 2.
pub fn zeros(len: usize, what: &str) -> Result<Vec<f32>, crate::exit::Failure> {
    let mut v = with_room(len, what).map_err(crate::exit::Failure::bad_input)?;
    v.resize(len, 0.0);
    Ok(v)
}

/// What is wrong with an input or state file, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct DataError {
    /// The file (or `stdin`), with the row and column or element index when known.
    pub location: String,
    pub message: String,
}

impl DataError {
    fn new(location: impl Into<String>, message: impl Into<String>) -> DataError {
        DataError { location: location.into(), message: message.into() }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}
impl std::error::Error for DataError {}

/// Added to every non-finite refusal, naming the way to accept such values.
const NONFINITE_HINT: &str = "inputs must be finite (--allow-nonfinite accepts NaN and infinity)";

/// How a sequence's dimensions are ordered in its file. Outputs keep the
/// order of their input, as PyTorch does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dims {
    /// `[steps, width]`: one sequence without a batch dimension (its states
    /// have no batch dimension either).
    Unbatched,
    /// `[steps, batch, width]`, PyTorch's default.
    SequenceMajor,
    /// `[batch, steps, width]`, PyTorch's `batch_first=True`.
    BatchFirst,
}

/// A sequence of vectors. In memory always `[steps, batch, width]`
/// (sequence-major, what [`lstmrt::Model::run`] takes); `dims` is the order
/// of the file it came from or goes to.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequence {
    pub steps: usize,
    pub batch: usize,
    pub width: usize,
    pub dims: Dims,
    /// `steps * batch * width` values, sequence-major.
    pub data: Vec<f32>,
}

impl Sequence {
    /// The shape in the file's order, as PyTorch reports it.
    pub fn shape(&self) -> Vec<usize> {
        match self.dims {
            Dims::Unbatched => vec![self.steps, self.width],
            Dims::SequenceMajor => vec![self.steps, self.batch, self.width],
            Dims::BatchFirst => vec![self.batch, self.steps, self.width],
        }
    }

    /// Whether the file has a batch dimension.
    pub fn is_batched(&self) -> bool {
        self.dims != Dims::Unbatched
    }

    /// The vector of sequence `b` at step `t`.
    pub fn row(&self, t: usize, b: usize) -> &[f32] {
        &self.data[(t * self.batch + b) * self.width..][..self.width]
    }

    /// `(t, b)` of every row in the file's order.
    pub fn rows_in_file_order(&self) -> Vec<(usize, usize)> {
        let (steps, batch) = (self.steps, self.batch);
        match self.dims {
            Dims::BatchFirst => (0..batch).flat_map(|b| (0..steps).map(move |t| (t, b))).collect(),
            _ => (0..steps).flat_map(|t| (0..batch).map(move |b| (t, b))).collect(),
        }
    }

    /// The values in the file's order (a copy).
    pub fn data_in_file_order(&self) -> Vec<f32> {
        match self.dims {
            Dims::BatchFirst => {
                self.rows_in_file_order().into_iter().flat_map(|(t, b)| self.row(t, b)).copied().collect()
            }
            _ => self.data.clone(),
        }
    }

    /// A sequence with the same steps, batch and dims holding `data`
    /// (`[steps, batch, width]`, sequence-major).
    pub fn like(&self, width: usize, data: Vec<f32>) -> Sequence {
        debug_assert_eq!(data.len(), self.steps * self.batch * width);
        Sequence { steps: self.steps, batch: self.batch, width, dims: self.dims, data }
    }
}

/// How to read an input file.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions {
    /// 3-D input is `[batch, steps, features]` (PyTorch's `batch_first=True`).
    pub batch_first: bool,
    /// Accept NaN and infinite values instead of refusing them.
    pub allow_nonfinite: bool,
}

fn extension(path: &Path) -> String {
    path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default()
}

/// Reads an input sequence of `features` values per step from a `.npy` or
/// `.csv` file.
pub fn read_input(
    session: &Session,
    path: &Path,
    features: usize,
    options: ReadOptions,
) -> Result<Sequence, DataError> {
    let source = path.display().to_string();
    session.note_input(path);
    match extension(path).as_str() {
        "npy" => {
            let bytes = read_regular(path, DATA_FILE).map_err(|e| DataError::new(&source, e.to_string()))?;
            let array = npy::parse(&bytes).map_err(|e| DataError::new(&source, e.0))?;
            sequence_from_npy(&array, &source, features, options)
        }
        "csv" => {
            let bytes = read_regular(path, DATA_FILE).map_err(|e| DataError::new(&source, e.to_string()))?;
            let text = String::from_utf8(bytes).map_err(|e| {
                DataError::new(&source, format!("not UTF-8 text (bad byte at offset {})", e.utf8_error().valid_up_to()))
            })?;
            if options.batch_first {
                return Err(DataError::new(
                    &source,
                    "--batch-first applies to 3-D .npy input; a .csv file is one sequence, one timestep per row",
                ));
            }
            sequence_from_csv(&text, &source, features, options.allow_nonfinite)
        }
        _ => Err(DataError::new(&source, "unknown input format: the file name must end in .npy or .csv")),
    }
}

fn shape_text(shape: &[usize]) -> String {
    format!("[{}]", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "))
}

/// Checks and reorders a `.npy` array into a [`Sequence`] of `features`
/// values per step. `source` names the file in messages.
pub fn sequence_from_npy(
    array: &npy::Array,
    source: &str,
    features: usize,
    options: ReadOptions,
) -> Result<Sequence, DataError> {
    let err = |message: String| DataError::new(source, message);
    if !matches!(array.dtype, "float32" | "float64") {
        return Err(err(format!("holds {} values; expected float32 or float64", array.dtype)));
    }
    let shape = &array.shape;
    let (steps, batch, dims) = match (shape.len(), options.batch_first) {
        (2, false) => (shape[0], 1, Dims::Unbatched),
        (3, false) => (shape[0], shape[1], Dims::SequenceMajor),
        (3, true) => (shape[1], shape[0], Dims::BatchFirst),
        (2, true) => {
            return Err(err(format!(
                "--batch-first needs 3-D input [batch, steps, features]; this array is 2-D {}",
                shape_text(shape)
            )));
        }
        (rank, _) => {
            return Err(err(format!(
                "has rank {rank} (shape {}); expected [steps, features] or [steps, batch, features]",
                shape_text(shape)
            )));
        }
    };
    let width = shape[shape.len() - 1];
    if width != features {
        return Err(err(format!(
            "has shape {}: {width} features per step, but the model takes {features}",
            shape_text(shape)
        )));
    }
    if steps == 0 || batch == 0 {
        return Err(err(format!("has shape {}: no timesteps to run", shape_text(shape))));
    }
    let mut data = with_room(steps * batch * width, "the input as float32").map_err(err)?;
    data.resize(steps * batch * width, 0.0f32);
    // Row-major over the file's own dimensions: (outer, inner, feature).
    let batched = dims != Dims::Unbatched;
    let inner_len = if batched { shape[1] } else { 1 };
    for (i, &v) in array.data.iter().enumerate() {
        let x = v as f32;
        let (outer, inner, k) = (i / (inner_len * width), (i / width) % inner_len, i % width);
        if !x.is_finite() && !options.allow_nonfinite {
            // The element's index as the user would look it up in the file.
            let index = if batched { shape_text(&[outer, inner, k]) } else { shape_text(&[outer, k]) };
            let what = if v.is_finite() { format!("{v:e} overflows float32") } else { format!("{v} is not finite") };
            return Err(err(format!("element {index}: {what}; {NONFINITE_HINT}")));
        }
        let (t, b) = if options.batch_first { (inner, outer) } else { (outer, inner) };
        data[(t * batch + b) * width + k] = x;
    }
    Ok(Sequence { steps, batch, width, dims, data })
}

/// Reads CSV text as one sequence (batch 1) of `features` values per row.
pub fn sequence_from_csv(
    text: &str,
    source: &str,
    features: usize,
    allow_nonfinite: bool,
) -> Result<Sequence, DataError> {
    let table = parse_csv(text, source, allow_nonfinite)?;
    if table.columns != features {
        return Err(DataError::new(
            source,
            format!("rows have {} values, but the model takes {features} features per step", table.columns),
        ));
    }
    Ok(Sequence { steps: table.rows, batch: 1, width: features, dims: Dims::Unbatched, data: table.data })
}

/// A table of numbers read from CSV text.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Column names, when the first row was a header.
    pub header: Option<Vec<String>>,
    pub rows: usize,
    pub columns: usize,
    /// `rows * columns` values, row-major.
    pub data: Vec<f32>,
}

/// Splits one line into fields: at commas if it has any, else at whitespace.
fn fields(line: &str) -> Vec<&str> {
    if line.contains(',') { line.split(',').map(str::trim).collect() } else { line.split_whitespace().collect() }
}

/// Parses one line of numbers separated by commas or whitespace. On error,
/// returns the 1-based column and what is wrong with it.
pub fn parse_values(line: &str, allow_nonfinite: bool) -> Result<Vec<f32>, (usize, String)> {
    fields(line)
        .into_iter()
        .enumerate()
        .map(|(i, field)| {
            let column = i + 1;
            if field.is_empty() {
                return Err((column, "is empty".to_string()));
            }
            let v: f32 = field.parse().map_err(|_| (column, format!("{field:?} is not a number")))?;
            if !v.is_finite() && !allow_nonfinite {
                let what =
                    if field.parse::<f64>().is_ok_and(f64::is_finite) { "overflows float32" } else { "is not finite" };
                return Err((column, format!("{field} {what}; {NONFINITE_HINT}")));
            }
            Ok(v)
        })
        .collect()
}

/// Parses CSV text of numbers (see the module doc for the rules). `source`
/// names the text in messages.
pub fn parse_csv(text: &str, source: &str, allow_nonfinite: bool) -> Result<Table, DataError> {
    let mut header = None;
    let mut columns = None;
    let mut rows = 0;
    let mut data = Vec::new();
    let mut first_row = 0;
    // Spreadsheets often start UTF-8 files with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (index, line) in text.lines().enumerate() {
        let row = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |column: usize| format!("{source}, row {row}, column {column}");
        if columns.is_none() && header.is_none() && fields(line).iter().all(|f| f.parse::<f32>().is_err()) {
            header = Some(fields(line).into_iter().map(str::to_owned).collect::<Vec<_>>());
            continue;
        }
        let values =
            parse_values(line, allow_nonfinite).map_err(|(column, message)| DataError::new(at(column), message))?;
        match columns {
            None => {
                if let Some(names) = &header
                    && names.len() != values.len()
                {
                    return Err(DataError::new(
                        format!("{source}, row {row}"),
                        format!("has {} values, but the header names {} columns", values.len(), names.len()),
                    ));
                }
                columns = Some(values.len());
                first_row = row;
            }
            Some(n) if n != values.len() => {
                return Err(DataError::new(
                    format!("{source}, row {row}"),
                    format!("has {} values, but row {first_row} has {n}", values.len()),
                ));
            }
            Some(_) => {}
        }
        data.extend_from_slice(&values);
        rows += 1;
    }
    let Some(columns) = columns else {
        return Err(DataError::new(source, "no rows of numbers"));
    };
    Ok(Table { header, rows, columns, data })
}

/// One output line: the values separated by commas, each printed with the
/// fewest digits that read back as the same f32.
pub fn format_values(values: &[f32]) -> String {
    let mut line = String::with_capacity(values.len() * 12);
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        push_value(&mut line, *v);
    }
    line
}

fn push_value(out: &mut String, v: f32) {
    use std::fmt::Write;
    // `{:?}` is the shortest round-trip form, with an exponent for tiny and huge values.
    write!(out, "{v:?}").expect("writing to a String cannot fail");
}

/// The file format of an output, chosen by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// A float32 `.npy` array shaped as [`Sequence::shape`].
    Npy,
    /// A header row, then one row per step; 3-D sequences have a row per step
    /// and sequence, with leading `step,sequence` columns (`sequence,step`
    /// for [`Dims::BatchFirst`], in that order).
    Csv,
    /// `{"shape": [...], "output": nested arrays}`; non-finite values are `null`.
    Json,
}

impl OutputFormat {
    /// The format named by `path`'s extension (`.npy`, `.csv`, `.json`).
    pub fn from_path(path: &Path) -> Result<OutputFormat, DataError> {
        match extension(path).as_str() {
            "npy" => Ok(OutputFormat::Npy),
            "csv" => Ok(OutputFormat::Csv),
            "json" => Ok(OutputFormat::Json),
            _ => Err(DataError::new(
                path.display().to_string(),
                "unknown output format: the file name must end in .npy, .csv or .json",
            )),
        }
    }
}

/// The bytes of `seq` in `format`. `names` name the columns of the CSV header
/// (default `y0, y1, ...`).
///
/// The bytes are refused (exit code 2, naming how many) rather than aborted
/// when this process cannot have them: an `.npy` needs 4 bytes per value,
/// text up to 16.
pub fn encode_output(
    format: OutputFormat,
    seq: &Sequence,
    names: Option<&[String]>,
) -> Result<Vec<u8>, crate::exit::Failure> {
    let per_value = if format == OutputFormat::Npy { 4 } else { 16 };
    // The largest buffer the encoding makes, asked for (and freed) first.
    drop(
        with_room::<u8>(seq.data.len().saturating_mul(per_value) + 4096, "the output file's bytes")
            .map_err(crate::exit::Failure::bad_input)?,
    );
    Ok(match format {
        OutputFormat::Npy => npy::encode_f32(&seq.shape(), &seq.data_in_file_order()),
        OutputFormat::Csv => to_csv(seq, names).into_bytes(),
        OutputFormat::Json => to_json(seq).into_bytes(),
    })
}

/// CSV text of a sequence (see [`OutputFormat::Csv`]).
pub fn to_csv(seq: &Sequence, names: Option<&[String]>) -> String {
    let mut out = String::with_capacity(seq.data.len() * 12 + 64);
    let mut header: Vec<String> = match names {
        // Names that look like numbers would make the header read back as data.
        Some(n) if n.len() == seq.width && n.iter().all(|s| s.parse::<f32>().is_err() && !s.is_empty()) => {
            n.iter().map(|s| csv_field(s)).collect()
        }
        _ => (0..seq.width).map(|i| format!("y{i}")).collect(),
    };
    let index_columns: &[&str] = match seq.dims {
        Dims::Unbatched => &[],
        Dims::SequenceMajor => &["step", "sequence"],
        Dims::BatchFirst => &["sequence", "step"],
    };
    header.splice(0..0, index_columns.iter().map(|c| c.to_string()));
    out.push_str(&header.join(","));
    out.push('\n');
    for (t, b) in seq.rows_in_file_order() {
        match seq.dims {
            Dims::Unbatched => {}
            Dims::SequenceMajor => out.push_str(&format!("{t},{b},")),
            Dims::BatchFirst => out.push_str(&format!("{b},{t},")),
        }
        out.push_str(&format_values(seq.row(t, b)));
        out.push('\n');
    }
    out
}

/// A CSV field, quoted when it holds a comma, quote or line break.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// JSON text of a sequence (see [`OutputFormat::Json`]).
pub fn to_json(seq: &Sequence) -> String {
    let nested: Vec<serde_json::Value> = match seq.dims {
        Dims::Unbatched => (0..seq.steps).map(|t| seq.row(t, 0).to_vec().into()).collect(),
        Dims::SequenceMajor => {
            (0..seq.steps).map(|t| (0..seq.batch).map(|b| seq.row(t, b).to_vec()).collect::<Vec<_>>().into()).collect()
        }
        Dims::BatchFirst => {
            (0..seq.batch).map(|b| (0..seq.steps).map(|t| seq.row(t, b).to_vec()).collect::<Vec<_>>().into()).collect()
        }
    };
    let value = serde_json::json!({ "shape": seq.shape(), "output": nested });
    let mut text = value.to_string();
    text.push('\n');
    text
}

/// The files of a saved state: `PREFIX.h.npy`, and `PREFIX.c.npy` for LSTM.
pub fn state_paths(prefix: &Path, arch: &Architecture) -> (PathBuf, Option<PathBuf>) {
    let with = |suffix: &str| {
        let mut name = prefix.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    (with(".h.npy"), arch.has_cell_state().then(|| with(".c.npy")))
}

/// Shapes of `h_n` and `c_n` as PyTorch gives them: `[L*D, batch, P]` and
/// `[L*D, batch, H]`, without the batch dimension for unbatched input.
pub fn state_shapes(arch: &Architecture, batch: usize, batched: bool) -> (Vec<usize>, Vec<usize>) {
    let slots = arch.layers() * arch.directions();
    if batched {
        (vec![slots, batch, arch.output_size()], vec![slots, batch, arch.hidden()])
    } else {
        (vec![slots, arch.output_size()], vec![slots, arch.hidden()])
    }
}

/// Refuses a run whose outputs would hold more than
/// [`lstmrt_format::limits::MAX_OUTPUT_VALUES`] values: `steps` x `batch`
/// rows of `per_step` values (the stack's output and the head's) plus
/// `batch` states of `per_row` values. A small input file can ask for a
/// large output (a wide model, many steps of few features); this is checked
/// from the input's shape before anything is allocated.
pub fn check_output_values(
    source: &str,
    steps: usize,
    batch: usize,
    per_step: usize,
    per_row: usize,
) -> Result<(), DataError> {
    let limit = lstmrt_format::limits::MAX_OUTPUT_VALUES;
    // Saturating: three usize factors can pass u128 (a debug build panics,
    // a release build would wrap to a small number and pass).
    let values = (steps as u128)
        .saturating_mul(batch as u128)
        .saturating_mul(per_step as u128)
        .saturating_add((batch as u128).saturating_mul(per_row as u128));
    if values > limit as u128 {
        return Err(DataError::new(
            source,
            format!(
                "{steps} steps of batch {batch} make {values} output values (with the state), over the limit of {limit}"
            ),
        ));
    }
    Ok(())
}

/// Writes `h` (and `c` for LSTM) to the files of [`state_paths`], shaped as
/// [`state_shapes`]. Each file is written atomically.
pub fn write_state(
    prefix: &Path,
    arch: &Architecture,
    batch: usize,
    batched: bool,
    h: &[f32],
    c: &[f32],
) -> Result<(), lstmrt::Error> {
    let (h_path, c_path) = state_paths(prefix, arch);
    let (h_shape, c_shape) = state_shapes(arch, batch, batched);
    npy::write_f32(&h_path, &h_shape, h).map_err(|e| lstmrt::Error::io(&h_path, e))?;
    if let Some(c_path) = c_path {
        npy::write_f32(&c_path, &c_shape, c).map_err(|e| lstmrt::Error::io(&c_path, e))?;
    }
    Ok(())
}

/// Reads per-row sequence lengths for `lengths`: an int32 or int64 `.npy` of
/// shape `[batch]`, each in `0..=steps`.
pub fn read_lengths(session: &Session, path: &Path, batch: usize, steps: usize) -> Result<Vec<usize>, DataError> {
    let source = path.display().to_string();
    let err = |message: String| DataError::new(&source, message);
    session.note_input(path);
    let bytes = read_regular(path, DATA_FILE).map_err(|e| err(e.to_string()))?;
    let array = npy::parse(&bytes).map_err(|e| err(e.0))?;
    if !matches!(array.dtype, "int32" | "int64") {
        return Err(err(format!("--lengths: holds {} values; expected int32 or int64", array.dtype)));
    }
    if array.shape != [batch] {
        return Err(err(format!(
            "--lengths: has shape {}; the input has {batch} sequences, so expected [{batch}]",
            shape_text(&array.shape)
        )));
    }
    // The integers themselves, not their float64 copies: 2^63 - 1 is
    // reported as 9223372036854775807.
    array
        .ints
        .iter()
        .enumerate()
        .map(|(b, &v)| match v {
            v if v < 0 => Err(err(format!("--lengths: element [{b}] is {v}, a negative length"))),
            v if v as u64 > steps as u64 => {
                Err(err(format!("--lengths: element [{b}] is {v}, longer than the input's {steps} steps")))
            }
            v => Ok(v as usize),
        })
        .collect()
}

/// Reads the state files of [`state_paths`] for `batch` sequences: returns
/// `(h, c)` (`c` empty unless LSTM). A 2-D state (no batch dimension) is
/// accepted for batch 1.
pub fn read_state(
    session: &Session,
    prefix: &Path,
    arch: &Architecture,
    batch: usize,
    allow_nonfinite: bool,
) -> Result<(Vec<f32>, Vec<f32>), DataError> {
    let (h_path, c_path) = state_paths(prefix, arch);
    let (h_shape, c_shape) = state_shapes(arch, batch, true);
    let h = read_state_file(session, &h_path, &h_shape, allow_nonfinite)?;
    let c = match c_path {
        Some(p) => read_state_file(session, &p, &c_shape, allow_nonfinite)?,
        None => Vec::new(),
    };
    Ok((h, c))
}

fn read_state_file(
    session: &Session,
    path: &Path,
    shape: &[usize],
    allow_nonfinite: bool,
) -> Result<Vec<f32>, DataError> {
    let source = path.display().to_string();
    session.note_input(path);
    let bytes = read_regular(path, DATA_FILE).map_err(|e| DataError::new(&source, e.to_string()))?;
    let array = npy::parse(&bytes).map_err(|e| DataError::new(&source, e.0))?;
    if !matches!(array.dtype, "float32" | "float64") {
        return Err(DataError::new(&source, format!("holds {} values; expected float32 or float64", array.dtype)));
    }
    let unbatched = [shape[0], shape[2]];
    if array.shape != shape && !(shape[1] == 1 && array.shape == unbatched) {
        return Err(DataError::new(
            &source,
            format!("has shape {}, but this model and input need {}", shape_text(&array.shape), shape_text(shape)),
        ));
    }
    let data = array.to_f32();
    if !allow_nonfinite && let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(DataError::new(&source, format!("element {i} (flat index) is {}; {NONFINITE_HINT}", data[i])));
    }
    Ok(data)
}

impl From<DataError> for crate::exit::Failure {
    fn from(e: DataError) -> crate::exit::Failure {
        crate::exit::Failure::bad_input(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lstmrt_format::CellKind;

    #[test]
    fn outputs_up_to_the_limit_pass_and_one_value_more_is_refused() {
        let limit = lstmrt_format::limits::MAX_OUTPUT_VALUES as usize;
        assert!(check_output_values("x.npy", limit / 1024, 1, 1024, 0).is_ok());
        assert!(check_output_values("x.npy", limit / 1024 - 1, 1, 1024, 1024).is_ok());
        let e = check_output_values("x.npy", limit / 1024, 1, 1024, 1).unwrap_err();
        assert_eq!(e.location, "x.npy");
        assert!(e.message.contains(&format!("make {} output values", limit + 1)), "{}", e.message);
        assert!(check_output_values("x.npy", usize::MAX, usize::MAX, usize::MAX, usize::MAX).is_err());
    }

    fn array(shape: &[usize], dtype: &'static str) -> npy::Array {
        let n = shape.iter().product::<usize>();
        npy::Array { shape: shape.to_vec(), data: (0..n).map(|i| i as f64).collect(), dtype, ints: Vec::new() }
    }

    #[test]
    fn npy_2d_is_one_unbatched_sequence() {
        let s = sequence_from_npy(&array(&[4, 3], "float32"), "x.npy", 3, ReadOptions::default()).unwrap();
        assert_eq!((s.steps, s.batch, s.width, s.dims), (4, 1, 3, Dims::Unbatched));
        assert_eq!(s.shape(), [4, 3]);
        assert_eq!(s.row(2, 0), [6.0, 7.0, 8.0]);
    }

    #[test]
    fn npy_batch_first_is_transposed_to_sequence_major() {
        // [B=2, T=3, F=2]: element (b, t, k) = b*6 + t*2 + k.
        let opts = ReadOptions { batch_first: true, ..Default::default() };
        let s = sequence_from_npy(&array(&[2, 3, 2], "float64"), "x.npy", 2, opts).unwrap();
        assert_eq!((s.steps, s.batch), (3, 2));
        assert_eq!(s.row(1, 0), [2.0, 3.0]);
        assert_eq!(s.row(1, 1), [8.0, 9.0]);
        assert_eq!(s.row(2, 1), [10.0, 11.0]);
        let plain = sequence_from_npy(&array(&[2, 3, 2], "float64"), "x.npy", 2, ReadOptions::default()).unwrap();
        assert_eq!((plain.steps, plain.batch), (2, 3));
        assert_eq!(plain.row(1, 0), [6.0, 7.0]);
    }

    #[test]
    fn npy_with_wrong_width_rank_dtype_or_batch_first_is_refused_with_its_shape() {
        let e = sequence_from_npy(&array(&[4, 5], "float32"), "x.npy", 3, ReadOptions::default()).unwrap_err();
        assert!(e.to_string().contains("x.npy: has shape [4, 5]: 5 features per step, but the model takes 3"), "{e}");
        let e = sequence_from_npy(&array(&[12], "float32"), "x.npy", 3, ReadOptions::default()).unwrap_err();
        assert!(e.message.contains("rank 1"), "{e}");
        let e = sequence_from_npy(&array(&[4, 3], "int64"), "x.npy", 3, ReadOptions::default()).unwrap_err();
        assert!(e.message.contains("int64"), "{e}");
        let opts = ReadOptions { batch_first: true, ..Default::default() };
        let e = sequence_from_npy(&array(&[4, 3], "float32"), "x.npy", 3, opts).unwrap_err();
        assert!(e.message.contains("--batch-first needs 3-D input"), "{e}");
        let e = sequence_from_npy(&array(&[0, 3], "float32"), "x.npy", 3, ReadOptions::default()).unwrap_err();
        assert!(e.message.contains("no timesteps"), "{e}");
    }

    #[test]
    fn npy_nonfinite_values_are_refused_with_their_index_unless_allowed() {
        let mut a = array(&[2, 3, 2], "float32");
        a.data[9] = f64::NAN; // [1, 1, 1]
        let e = sequence_from_npy(&a, "x.npy", 2, ReadOptions::default()).unwrap_err();
        assert!(e.message.contains("element [1, 1, 1]: NaN is not finite"), "{e}");
        a.data[9] = 1e300;
        let e = sequence_from_npy(&a, "x.npy", 2, ReadOptions::default()).unwrap_err();
        assert!(e.message.contains("1e300 overflows float32"), "{e}");
        assert!(e.message.len() < 200, "a short line, not 300 digits: {e}");
        let opts = ReadOptions { allow_nonfinite: true, ..Default::default() };
        let s = sequence_from_npy(&a, "x.npy", 2, opts).unwrap();
        assert!(s.row(1, 1)[1].is_infinite());
        let mut b = array(&[3, 2], "float32");
        b.data[5] = f64::INFINITY;
        let e = sequence_from_npy(&b, "x.npy", 2, ReadOptions::default()).unwrap_err();
        assert!(e.message.contains("element [2, 1]: inf is not finite"), "{e}");
    }

    #[test]
    fn csv_reads_commas_or_spaces_with_optional_header_comments_and_blank_lines() {
        let t = parse_csv("x0, x1\n# comment\n1, 2\n\n3,4.5\n", "a.csv", false).unwrap();
        assert_eq!(t.header, Some(vec!["x0".to_string(), "x1".to_string()]));
        assert_eq!((t.rows, t.columns), (2, 2));
        assert_eq!(t.data, [1.0, 2.0, 3.0, 4.5]);
        let t = parse_csv("\u{feff}1.0 2.0 -3e-2\r\n4 5 6\r\n", "a.csv", false).unwrap();
        assert_eq!(t.header, None);
        assert_eq!(t.data, [1.0, 2.0, -0.03, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn csv_non_numeric_field_is_named_by_row_and_column() {
        let e = parse_csv("1,2,3\n4,five,6\n", "a.csv", false).unwrap_err();
        assert_eq!(e.to_string(), "a.csv, row 2, column 2: \"five\" is not a number");
        let e = parse_csv("h1,h2\n1,2\n3,\n", "a.csv", false).unwrap_err();
        assert_eq!(e.to_string(), "a.csv, row 3, column 2: is empty");
    }

    #[test]
    fn csv_ragged_rows_and_empty_files_are_refused() {
        let e = parse_csv("1,2,3\n4,5\n", "a.csv", false).unwrap_err();
        assert_eq!(e.to_string(), "a.csv, row 2: has 2 values, but row 1 has 3");
        let e = parse_csv("a,b,c\n1,2\n", "a.csv", false).unwrap_err();
        assert!(e.message.contains("header names 3 columns"), "{e}");
        let e = parse_csv("a,b\n\n", "a.csv", false).unwrap_err();
        assert_eq!(e.message, "no rows of numbers");
    }

    #[test]
    fn csv_nonfinite_values_are_refused_with_row_and_column_unless_allowed() {
        let e = parse_csv("1,2\n3,nan\n", "a.csv", false).unwrap_err();
        assert!(e.to_string().starts_with("a.csv, row 2, column 2: nan is not finite"), "{e}");
        let e = parse_csv("1,1e39\n", "a.csv", false).unwrap_err();
        assert!(e.to_string().contains("row 1, column 2: 1e39 overflows float32"), "{e}");
        let t = parse_csv("1,2\n3,-inf\n", "a.csv", true).unwrap();
        assert_eq!(t.data[3], f32::NEG_INFINITY);
    }

    #[test]
    fn csv_width_must_match_the_model() {
        let e = sequence_from_csv("1,2\n3,4\n", "a.csv", 3, false).unwrap_err();
        assert!(e.message.contains("rows have 2 values, but the model takes 3"), "{e}");
        let s = sequence_from_csv("1,2\n3,4\n", "a.csv", 2, false).unwrap();
        assert_eq!((s.steps, s.batch, s.dims), (2, 1, Dims::Unbatched));
    }

    #[test]
    fn values_written_as_text_read_back_exactly() {
        let values = [0.1f32, -1.0, 1e-30, 3.4e38, 123456.79, -0.0];
        let line = format_values(&values);
        assert_eq!(parse_values(&line, false).unwrap(), values);
        assert_eq!(parse_values("1 2\t3", false).unwrap(), [1.0, 2.0, 3.0]);
        assert_eq!(parse_values("1,x", false).unwrap_err().0, 2);
    }

    #[test]
    fn csv_output_reads_back_as_the_same_table() {
        let seq =
            Sequence { steps: 2, batch: 1, width: 3, dims: Dims::Unbatched, data: vec![1.0, 2.5, -3.0, 4.0, 5.0, 6.0] };
        let text = to_csv(&seq, None);
        assert!(text.starts_with("y0,y1,y2\n"), "{text}");
        let t = parse_csv(&text, "out.csv", false).unwrap();
        assert_eq!(t.data, seq.data);
        let labels = ["cat".to_string(), "dog, big".to_string(), "x".to_string()];
        assert!(to_csv(&seq, Some(&labels)).starts_with("cat,\"dog, big\",x\n"));
        let numeric = ["0".to_string(), "1".to_string(), "2".to_string()];
        assert!(to_csv(&seq, Some(&numeric)).starts_with("y0,"));
        let mut batched =
            Sequence { steps: 2, batch: 2, width: 1, dims: Dims::SequenceMajor, data: vec![1.0, 2.0, 3.0, 4.0] };
        assert_eq!(to_csv(&batched, None), "step,sequence,y0\n0,0,1.0\n0,1,2.0\n1,0,3.0\n1,1,4.0\n");
        batched.dims = Dims::BatchFirst;
        assert_eq!(to_csv(&batched, None), "sequence,step,y0\n0,0,1.0\n0,1,3.0\n1,0,2.0\n1,1,4.0\n");
    }

    #[test]
    fn json_output_nests_as_the_shape_says() {
        let mut seq =
            Sequence { steps: 2, batch: 2, width: 1, dims: Dims::SequenceMajor, data: vec![1.0, 2.0, 3.0, f32::NAN] };
        let v: serde_json::Value = serde_json::from_str(&to_json(&seq)).unwrap();
        assert_eq!(v["shape"], serde_json::json!([2, 2, 1]));
        assert_eq!(v["output"], serde_json::json!([[[1.0], [2.0]], [[3.0], [null]]]));
        seq.dims = Dims::BatchFirst;
        let v: serde_json::Value = serde_json::from_str(&to_json(&seq)).unwrap();
        assert_eq!(v["output"], serde_json::json!([[[1.0], [3.0]], [[2.0], [null]]]));
        seq.data[3] = 4.0;
        assert_eq!(
            npy::parse(&encode_output(OutputFormat::Npy, &seq, None).unwrap()).unwrap().data,
            [1.0, 3.0, 2.0, 4.0]
        );
    }

    #[test]
    fn output_format_follows_the_extension() {
        assert_eq!(OutputFormat::from_path(Path::new("a/b.NPY")).unwrap(), OutputFormat::Npy);
        assert_eq!(OutputFormat::from_path(Path::new("b.json")).unwrap(), OutputFormat::Json);
        assert!(OutputFormat::from_path(Path::new("b.txt")).unwrap_err().message.contains(".npy, .csv or .json"));
    }

    #[test]
    fn state_files_are_shaped_like_pytorch_h_n_and_c_n() {
        let mut arch = Architecture::new(CellKind::Lstm, 3, 5, 2);
        arch.bidirectional = true;
        arch.proj_size = 4;
        assert_eq!(state_shapes(&arch, 7, true), (vec![4, 7, 4], vec![4, 7, 5]));
        assert_eq!(state_shapes(&arch, 1, false), (vec![4, 4], vec![4, 5]));
        let (h, c) = state_paths(Path::new("dir/run1"), &arch);
        assert_eq!(h, Path::new("dir/run1.h.npy"));
        assert_eq!(c.unwrap(), Path::new("dir/run1.c.npy"));
        let gru = Architecture::new(CellKind::Gru, 3, 5, 1);
        assert!(state_paths(Path::new("s"), &gru).1.is_none());
    }
}
