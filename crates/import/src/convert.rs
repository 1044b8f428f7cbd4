//! The conversion `lstm-convert` runs: read a source file, recognise its
//! kind, import it, record where it came from, optionally check the result,
//! and write the model file atomically.
//!
//! ```no_run
//! use lstmrt_import::convert::{self, Request};
//! let mut request = Request::new("lstm.pt", "lstm.lstm");
//! request.check = true;
//! let outcome = convert::convert(&request)?;
//! println!("{}", outcome.check.unwrap());
//! # Ok::<(), lstmrt_import::convert::ConvertError>(())
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{ImportError, ImportErrorKind, Options};
use lstmrt::Weights;
use lstmrt::reference::{self, max_abs_diff};
use lstmrt::{Model, ModelWriter};
use lstmrt_format::{DType, Metadata};

/// The framework a source file comes from (`--from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    PyTorch,
    Onnx,
    Keras,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::PyTorch => "pytorch",
            Family::Onnx => "onnx",
            Family::Keras => "keras",
        }
    }

    pub fn from_name(name: &str) -> Option<Family> {
        [Family::PyTorch, Family::Onnx, Family::Keras].into_iter().find(|f| f.name() == name)
    }
}

/// The exact kind of a source file, recognised from its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A PyTorch state dict saved with `safetensors`.
    Safetensors,
    /// `torch.save`, zip format (the default since PyTorch 1.6).
    TorchZip,
    /// `torch.save(..., _use_new_zipfile_serialization=False)`.
    TorchLegacy,
    /// An ONNX `ModelProto`.
    Onnx,
    /// The `.npz` written by `tools/export_keras.py`.
    Keras,
}

impl SourceKind {
    /// The name recorded in the provenance (`source.kind`).
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Safetensors => "pytorch-safetensors",
            SourceKind::TorchZip => "pytorch-zip",
            SourceKind::TorchLegacy => "pytorch-legacy",
            SourceKind::Onnx => "onnx",
            SourceKind::Keras => "keras-npz",
        }
    }

    pub fn family(self) -> Family {
        match self {
            SourceKind::Safetensors | SourceKind::TorchZip | SourceKind::TorchLegacy => Family::PyTorch,
            SourceKind::Onnx => Family::Onnx,
            SourceKind::Keras => Family::Keras,
        }
    }
}

/// Recognises a source file from its first bytes (and, for zip archives,
/// their entry names), whatever its extension. `Err` says what the file is
/// when it is something recognisable that cannot be converted
/// ([`ImportErrorKind::Unsupported`], [`ImportErrorKind::UnknownArchive`]),
/// or that it is nothing recognisable ([`ImportErrorKind::UnknownFormat`]).
pub fn detect(bytes: &[u8]) -> Result<SourceKind, ImportErrorKind> {
    let unsupported = |what: &str| Err(ImportErrorKind::Unsupported { what: what.into() });
    if bytes.starts_with(&lstmrt_format::MAGIC) {
        return unsupported("this is already an lstmrt model file");
    }
    if bytes.starts_with(b"\x89HDF\r\n\x1a\n") {
        return unsupported("an HDF5 file (Keras .h5): export it to .npz with tools/export_keras.py first");
    }
    if super::torch_save::is_zip(bytes) {
        let names = super::torch_save::open_zip(bytes)?.file_names().map(str::to_owned).collect::<Vec<_>>();
        if super::torch_save::is_torch_zip(&names) {
            return Ok(SourceKind::TorchZip);
        }
        if super::keras::is_keras_export(&names) {
            return Ok(SourceKind::Keras);
        }
        if names.iter().any(|n| n == "config.json") && names.iter().any(|n| n.ends_with(".h5")) {
            return unsupported("a Keras .keras archive: export it to .npz with tools/export_keras.py first");
        }
        return Err(ImportErrorKind::UnknownArchive { entries: names });
    }
    if super::pytorch::is_safetensors(bytes) {
        return Ok(SourceKind::Safetensors);
    }
    if super::torch_save::is_legacy(bytes) {
        return Ok(SourceKind::TorchLegacy);
    }
    if super::onnx::is_onnx(bytes) {
        return Ok(SourceKind::Onnx);
    }
    Err(ImportErrorKind::UnknownFormat {
        reason: "unrecognised content: expected a PyTorch state dict (.pt/.pth/.safetensors), an ONNX model or a \
                 Keras export (.npz)"
            .into(),
    })
}

/// A model imported into canonical form.
#[derive(Debug, Clone)]
pub struct Imported {
    pub meta: Metadata,
    pub weights: Weights,
    pub kind: SourceKind,
    /// Things the user should know: parts of the source not converted, inputs to feed.
    pub notes: Vec<String>,
}

/// Imports the source file `path` whose content is `bytes`. With `from`, the
/// content must be of that family; without, the kind is detected.
pub fn import(path: &Path, bytes: &[u8], from: Option<Family>, options: &Options) -> Result<Imported, ImportError> {
    let file = path.display().to_string();
    let fail = |kind| ImportError::new(path, kind);
    let kind = detect(bytes).map_err(fail)?;
    if let Some(from) = from
        && kind.family() != from
    {
        return Err(fail(ImportErrorKind::WrongFamily { from, kind }));
    }
    if let Some(arch) = &options.arch {
        // A state dict: a PyTorch file's, or an ONNX export's initializers.
        let tensors = match kind.family() {
            Family::PyTorch => super::pytorch::parse(bytes, &file)?,
            Family::Onnx => super::onnx::initializers(bytes, path)?,
            Family::Keras => {
                return Err(fail(ImportErrorKind::Unsupported {
                    what: "--arch reads PyTorch state dicts and ONNX initializers, not Keras exports".into(),
                }));
            }
        };
        let (meta, weights, notes) = with_arch(arch, &tensors, options, &file).map_err(fail)?;
        return Ok(Imported { meta, weights, kind, notes });
    }
    if kind.family() != Family::PyTorch {
        let pytorch_only = [
            ("--cell", options.cell.is_some()),
            ("--prefix", options.prefix.is_some()),
            ("--embedding", options.embedding.is_some()),
            ("--head", options.head.is_some()),
            ("--head-activation", options.head_activation.is_some()),
        ];
        if let Some(&(option, _)) = pytorch_only.iter().find(|(_, given)| *given) {
            return Err(fail(ImportErrorKind::PyTorchOnly { option, family: kind.family() }));
        }
    }
    let (meta, weights, notes) = match kind.family() {
        Family::PyTorch => {
            let tensors = super::pytorch::parse(bytes, &file)?;
            let (meta, weights, unused) = super::pytorch::from_state_dict_unused(&tensors, options, &file)?;
            let notes = unused_note(
                &unused,
                "in neither the recurrent module nor an embedding or head",
                "; a model with convolutions around the module converts whole with --arch (docs/silero-vad.md)",
            );
            (meta, weights, notes)
        }
        Family::Onnx => super::onnx::import(bytes, path)?,
        Family::Keras => super::keras::import(bytes, &file)?,
    };
    Ok(Imported { meta, weights, kind, notes })
}

/// The note naming the tensors a conversion left (the first 8), or none.
fn unused_note(unused: &[String], why: &str, hint: &str) -> Vec<String> {
    if unused.is_empty() {
        return Vec::new();
    }
    let shown = unused.iter().take(8).map(String::as_str).collect::<Vec<_>>().join(", ");
    let more = if unused.len() > 8 { format!(" and {} more", unused.len() - 8) } else { String::new() };
    vec![format!("not converted ({why}): {shown}{more}{hint}")]
}

/// A state dict converted with an architecture description: the recurrent
/// module it names (or `--prefix`), then the stages around it.
fn with_arch(
    arch: &crate::arch::Arch,
    tensors: &[crate::SourceTensor],
    options: &Options,
    file: &str,
) -> Result<(Metadata, Weights, Vec<String>), ImportErrorKind> {
    let picked = Options {
        prefix: options.prefix.clone().or_else(|| arch.prefix.clone()),
        cell: options.cell.or(arch.cell),
        ..options.clone()
    };
    // With a description, no embedding or head is looked for: what the
    // module leaves is what the stages may take.
    let (mut meta, mut weights, unused) =
        super::pytorch::from_state_dict_unused(tensors, &picked, file).map_err(|e| e.kind)?;
    let used = arch.apply(tensors, &mut meta, &mut weights).map_err(|e| ImportErrorKind::Arch { reason: e.0 })?;
    let left: Vec<String> = unused.into_iter().filter(|n| !used.contains(n)).collect();
    let notes = unused_note(&left, "used by neither the stages nor the recurrent module", "");
    Ok((meta, weights, notes))
}

/// Everything `lstm-convert` is asked to do.
#[derive(Debug, Clone)]
pub struct Request {
    pub input: PathBuf,
    pub output: PathBuf,
    /// The source family; detected from the content when `None`.
    pub from: Option<Family>,
    /// Element type of the weight matrices written.
    pub dtype: DType,
    /// Chunked models: the stages' convolution weights, when not `dtype`'s
    /// default ([`lstmrt::ModelWriter::stage_dtype`]).
    pub stage_dtype: Option<DType>,
    pub options: Options,
    /// Run the converted model against the reference before writing.
    pub check: bool,
    /// Largest difference `check` accepts; [`default_tolerance`] when `None`.
    pub tolerance: Option<f32>,
    /// Files read besides `input` to make the request (an `--arch`
    /// description): the output is never written over one of them.
    pub read: Vec<PathBuf>,
}

impl Request {
    /// Converts `input` to `output` as f32 with no options.
    pub fn new(input: impl Into<PathBuf>, output: impl Into<PathBuf>) -> Request {
        Request {
            input: input.into(),
            output: output.into(),
            from: None,
            dtype: DType::F32,
            stage_dtype: None,
            options: Options::default(),
            check: false,
            tolerance: None,
            read: Vec::new(),
        }
    }
}

/// The largest output difference `--check` accepts for each weight dtype.
///
/// f32 weights are stored exactly, so any difference is the runtime's own
/// arithmetic (summation order, activation approximations): 1e-5. Rounding a
/// weight to f16 changes it by up to 2^-11 (4.9e-4) of its value and to bf16
/// by up to 2^-8 (3.9e-3); on a model with unit-scale inputs and PyTorch-sized
/// weights these shift the outputs by about 1e-3 and 1e-2, so 1e-2 (f16) and
/// 5e-2 (bf16) leave a margin while still catching weights too large for the
/// format or a model that amplifies small changes. int8 rounds each weight
/// by up to half a step of its row's 127 and each activation by half a
/// step of its row's 255; on the random PyTorch models of
/// `docs/quantization.md` that costs at most a few 1e-3, so 2e-2.
pub fn default_tolerance(dtype: DType) -> f32 {
    match dtype {
        DType::F32 => 1e-5,
        DType::F16 => 1e-2,
        DType::BF16 => 5e-2,
        DType::I8 => 2e-2,
    }
}

/// The largest difference `--check` accepts between the converted model and
/// the reference engine on the weights as stored, whatever the dtype.
pub const RUNTIME_TOLERANCE: f32 = 1e-5;

/// What `--check` measured.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    pub dtype: DType,
    pub steps: usize,
    pub batch: usize,
    /// Chunked models: chunks of a signal also run through the stages (else 0).
    pub chunks: usize,
    /// Largest difference between the converted model and the reference engine
    /// run on the weights as stored (rounded to `dtype`): the runtime's own error.
    pub runtime_error: f32,
    /// Largest difference between the converted model and the reference engine
    /// run on the source's own f32 weights: everything the conversion costs.
    pub total_error: f32,
    /// `total_error` minus what the runtime alone explains: the cost of rounding
    /// the weights to `dtype` (0 for f32).
    pub rounding_error: f32,
    /// Mean absolute difference of the output sequence from the reference
    /// engine on the source's f32 weights.
    pub mean_error: f32,
    pub tolerance: f32,
    /// Whether the kernels round the activations where they meet the
    /// weights (int8; bf16 with dot products, `lstmrt::bf16_dot`), so the
    /// runtime's own error is held to `tolerance` rather than
    /// [`RUNTIME_TOLERANCE`].
    pub rounds_activations: bool,
}

impl CheckReport {
    /// Whether both the runtime and the whole conversion stay within tolerance.
    /// int8 kernels (and bf16 ones with dot products) also round the
    /// activations, so their difference from the reference on the stored
    /// weights is held to the tolerance too.
    pub fn passed(&self) -> bool {
        let runtime = if self.rounds_activations { self.tolerance } else { RUNTIME_TOLERANCE };
        self.runtime_error <= runtime && self.total_error <= self.tolerance
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "check: {} steps x batch {} of random input{}; largest difference from the reference engine on the \
             source's f32 weights: {:.3e} (tolerance {:.0e}); runtime vs reference on the stored weights: {:.3e}",
            self.steps,
            self.batch,
            if self.chunks > 0 { format!(" and {} chunks through the stages", self.chunks) } else { String::new() },
            self.total_error,
            self.tolerance,
            self.runtime_error
        )?;
        if self.dtype != DType::F32 {
            write!(f, "; rounding the weights to {} costs {:.3e}", self.dtype.name(), self.rounding_error)?;
        }
        write!(f, "; mean difference {:.3e}", self.mean_error)?;
        write!(f, " -> {}", if self.passed() { "ok" } else { "FAILED" })
    }
}

/// What a conversion produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The metadata written, provenance included.
    pub meta: Metadata,
    pub kind: SourceKind,
    /// Hex SHA-256 of the source file.
    pub sha256: String,
    pub bytes_written: usize,
    /// Present when the request asked for a check.
    pub check: Option<CheckReport>,
    /// See [`Imported::notes`].
    pub notes: Vec<String>,
}

/// Why a conversion failed.
#[derive(Debug, Clone)]
pub enum ConvertError {
    /// The source cannot be read or converted (`lstm-convert` exits with 2).
    Input(ImportError),
    /// The converted weights cannot be stored as asked (a value does not fit
    /// the dtype, say), or the model they make is invalid (exit 2).
    Model { path: PathBuf, source: lstmrt::Error },
    /// The output file cannot be written (exit 1); nothing is left at `path`.
    Write { path: PathBuf, source: lstmrt::Error },
    /// `--check` found differences above the tolerance; nothing was written (exit 1).
    CheckFailed(CheckReport),
    /// The output path cannot be used (its folder does not exist, it is a
    /// folder, it is a file that was read); checked before the work (exit 2).
    Output { reason: String },
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConvertError::Input(e) => e.fmt(f),
            ConvertError::Model { path, source } => write!(f, "{}: {source}", path.display()),
            ConvertError::Write { source, .. } => write!(f, "cannot write {source}"),
            ConvertError::CheckFailed(r) => write!(f, "{r}; nothing was written"),
            ConvertError::Output { reason } => f.write_str(reason),
        }
    }
}

impl std::error::Error for ConvertError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConvertError::Input(e) => Some(e),
            ConvertError::Model { source, .. } | ConvertError::Write { source, .. } => Some(source),
            ConvertError::CheckFailed(_) | ConvertError::Output { .. } => None,
        }
    }
}

impl From<ImportError> for ConvertError {
    fn from(e: ImportError) -> Self {
        ConvertError::Input(e)
    }
}

/// Runs a whole conversion. The output is written (atomically) only when
/// everything succeeded, so a failure leaves nothing at `request.output`.
pub fn convert(request: &Request) -> Result<Outcome, ConvertError> {
    // The output is checked before anything is read, and against every file
    // read once the source (and what it names) has been.
    let output = |reason: String| ConvertError::Output { reason };
    lstmrt_format::check_output_place(&request.output).map_err(output)?;
    let mut read = lstmrt_format::ReadFiles::new();
    for path in std::iter::once(&request.input).chain(&request.read) {
        read.note(path);
    }
    read.check_output(&request.output).map_err(output)?;
    let bytes = lstmrt_format::read_regular(&request.input, lstmrt_format::limits::SOURCE_FILE)
        .map_err(|e| ImportError::io(&request.input, e))?;
    let Imported { mut meta, weights, kind, notes } = import(&request.input, &bytes, request.from, &request.options)?;
    // Hashed once it imports: content of no known kind is refused at once.
    let sha256 = hex(&Sha256::digest(&bytes));
    if kind.family() == Family::Onnx {
        for path in super::onnx::external_files(&bytes, &request.input) {
            read.note(&path);
        }
        read.check_output(&request.output).map_err(output)?;
    }
    record_provenance(&mut meta, request, kind, &sha256);

    let out_path = &request.output;
    let mut writer = ModelWriter::new(&meta, &weights).dtype(request.dtype);
    if let Some(d) = request.stage_dtype {
        writer = writer.stage_dtype(d);
    }
    let model_bytes = writer.to_bytes().map_err(|e| ConvertError::Model { path: out_path.clone(), source: e })?;
    let check = if request.check {
        let model =
            Model::from_bytes(&model_bytes).map_err(|e| ConvertError::Model { path: out_path.clone(), source: e })?;
        let tolerance = request.tolerance.unwrap_or_else(|| default_tolerance(request.dtype));
        let report = check(&model, &weights, request.dtype, tolerance);
        if !report.passed() {
            return Err(ConvertError::CheckFailed(report));
        }
        Some(report)
    } else {
        None
    };
    lstmrt_format::atomic_write(out_path, &model_bytes)
        .map_err(|e| ConvertError::Write { path: out_path.clone(), source: lstmrt::Error::io(out_path, e) })?;
    Ok(Outcome { meta, kind, sha256, bytes_written: model_bytes.len(), check, notes })
}

/// One line describing what was written, for the command line.
pub fn summary(request: &Request, outcome: &Outcome) -> String {
    let meta = &outcome.meta;
    let a = &meta.architecture;
    let mut parts = vec![format!(
        "{} x{} layer{}{}, input {}, hidden {}",
        a.cell.name(),
        a.num_layers,
        if a.num_layers == 1 { "" } else { "s" },
        match (a.bidirectional, a.reverse) {
            (true, _) => " bidirectional",
            (false, true) => " reverse",
            (false, false) => "",
        },
        a.input_size,
        a.hidden_size
    )];
    if a.proj_size > 0 {
        parts.push(format!("projection {}", a.proj_size));
    }
    if a.peepholes {
        parts.push("peepholes".into());
    }
    if let Some(clip) = a.clip {
        parts.push(format!("clip {clip}"));
    }
    if a.input_forget {
        parts.push("input_forget".into());
    }
    if a.cell == lstmrt_format::CellKind::Gru && !a.linear_before_reset {
        parts.push("linear_before_reset=0".into());
    }
    if let Some(e) = &meta.embedding {
        parts.push(format!("embedding {}", e.num_embeddings));
    }
    if let Some(h) = &meta.head {
        parts.push(format!("head {} ({})", h.out_features, head_activation_name(h.activation)));
    }
    format!(
        "{}: wrote {} ({} bytes, {}) from {} {}: {}",
        request.input.display(),
        request.output.display(),
        outcome.bytes_written,
        request.dtype.name(),
        outcome.kind.name(),
        &outcome.sha256[..12],
        parts.join(", ")
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Provenance: producer, source file name, its kind and SHA-256, and every
/// option that shaped the conversion.
fn record_provenance(meta: &mut Metadata, request: &Request, kind: SourceKind, sha256: &str) {
    let p = &mut meta.provenance;
    p.producer = format!("lstm-convert {}", env!("CARGO_PKG_VERSION"));
    p.source_file = request.input.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    p.push("source.kind", kind.name());
    p.push("source.sha256", sha256);
    p.push("convert.dtype", request.dtype.name());
    if let Some(from) = request.from {
        p.push("convert.from", from.name());
    }
    let o = &request.options;
    if let Some(cell) = o.cell {
        p.push("convert.cell", cell.name());
    }
    if let Some(prefix) = &o.prefix {
        p.push("convert.prefix", prefix);
    }
    if let Some(embedding) = &o.embedding {
        p.push("convert.embedding", embedding);
    }
    if let Some(head) = &o.head {
        p.push("convert.head", head);
    }
    if let Some(act) = o.head_activation {
        p.push("convert.head_activation", head_activation_name(act));
    }
}

/// The `--head-activation` spelling of an activation.
pub fn head_activation_name(a: lstmrt_format::HeadActivation) -> &'static str {
    use lstmrt_format::HeadActivation::*;
    match a {
        None => "none",
        Softmax => "softmax",
        Sigmoid => "sigmoid",
    }
}

/// Steps and batch of the `--check` input.
const CHECK_STEPS: usize = 8;
const CHECK_BATCH: usize = 2;

/// Chunks a chunked model's check runs (besides the stack's own sequence).
const CHECK_CHUNKS: usize = 8;

/// Runs `model` (as converted) and the reference engine on the same random
/// input (fixed seed) and compares, including the head when there is one
/// and, for a chunked model, whole chunks through its stages.
pub fn check(model: &Model, source: &Weights, dtype: DType, tolerance: f32) -> CheckReport {
    let arch = model.architecture();
    let mut rng = lstmrt::rng::Rng::new(0x5EED_CAFE);
    let xs: Vec<f32> =
        (0..CHECK_STEPS * CHECK_BATCH * arch.input_size as usize).map(|_| rng.uniform_f32(-1.0, 1.0)).collect();
    let mut state = model.new_batch_state(CHECK_BATCH).expect("a batch of a few rows of a model just made");
    let got = model.run(&mut state, &xs).expect("input sized from the architecture").to_vec();
    let stored = model.weights();
    let on_stored = reference::run(arch, &stored, &xs, CHECK_BATCH, None, None).output;
    let on_source = reference::run(arch, source, &xs, CHECK_BATCH, None, None).output;
    let mut runtime_error = max_abs_diff(&got, &on_stored);
    let mut total_error = max_abs_diff(&got, &on_source);
    let mut rounding_error = max_abs_diff(&on_stored, &on_source);
    let mean_error =
        got.iter().zip(&on_source).map(|(a, b)| f64::from((a - b).abs())).sum::<f64>() / got.len().max(1) as f64;
    if let (Some(head), Some(hw_stored), Some(hw_source)) = (&model.metadata().head, &stored.head, &source.head) {
        let width = arch.sequence_output_size();
        let mut y = vec![0.0; head.out_features as usize];
        for ((row, row_stored), row_source) in
            got.chunks_exact(width).zip(on_stored.chunks_exact(width)).zip(on_source.chunks_exact(width))
        {
            model.apply_head(row, &mut y).expect("sizes from the model");
            let want_stored = reference::head(head, hw_stored, row_stored);
            let want_source = reference::head(head, hw_source, row_source);
            runtime_error = runtime_error.max(max_abs_diff(&y, &want_stored));
            total_error = total_error.max(max_abs_diff(&y, &want_source));
            rounding_error = rounding_error.max(max_abs_diff(&want_stored, &want_source));
        }
    }
    // A chunked model: whole chunks of a tone with noise, through the stages
    // and the stack, against the reference on both weight sets.
    if let Some(stages) = &model.metadata().stages {
        let per = (stages.chunk * stages.channels) as usize;
        let signal: Vec<f32> =
            (0..CHECK_CHUNKS * per).map(|i| 0.3 * (i as f32 * 0.05).sin() + rng.uniform_f32(-0.05, 0.05)).collect();
        let mut st = model.new_chunk_state(1).expect("a chunked model");
        let mut got = Vec::new();
        for chunk in signal.chunks_exact(per) {
            got.extend_from_slice(model.run_chunk(&mut st, chunk).expect("chunks sized from the stages"));
        }
        let on_stored = reference::run_chunks(model.metadata(), &stored, &signal);
        let on_source = reference::run_chunks(model.metadata(), source, &signal);
        runtime_error = runtime_error.max(max_abs_diff(&got, &on_stored));
        total_error = total_error.max(max_abs_diff(&got, &on_source));
        rounding_error = rounding_error.max(max_abs_diff(&on_stored, &on_source));
    }
    CheckReport {
        rounds_activations: dtype == DType::I8 || (dtype == DType::BF16 && lstmrt::bf16_dot(model.isa())),
        dtype,
        steps: CHECK_STEPS,
        batch: CHECK_BATCH,
        chunks: if model.metadata().stages.is_some() { CHECK_CHUNKS } else { 0 },
        runtime_error,
        total_error,
        rounding_error,
        mean_error: mean_error as f32,
        tolerance,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::ErrorKind;

    #[test]
    fn detects_kinds_by_content_not_extension() {
        let e = detect(b"\x89HDF\r\n\x1a\n....").unwrap_err();
        assert!(matches!(&e, ImportErrorKind::Unsupported { what } if what.contains("export_keras.py")), "{e}");
        let e = detect(b"garbage").unwrap_err();
        assert!(matches!(&e, ImportErrorKind::UnknownFormat { reason } if reason.contains("unrecognised")), "{e}");
        let mut st = 2u64.to_le_bytes().to_vec();
        st.extend(b"{}");
        assert_eq!(detect(&st), Ok(SourceKind::Safetensors));
    }

    #[test]
    fn a_corrupt_zip_is_an_archive_error() {
        let e = detect(b"PK\x03\x04 but no central directory").unwrap_err();
        assert!(
            matches!(&e, ImportErrorKind::Archive { reason } if reason.starts_with("corrupt zip archive: ")),
            "{e}"
        );
    }

    /// A safetensors file of `(name, shape)` f32 tensors, all zeros.
    fn safetensors(tensors: &[(&str, &[usize])]) -> Vec<u8> {
        let mut header = serde_json::Map::new();
        let mut at = 0;
        for (name, shape) in tensors {
            let len = 4 * shape.iter().product::<usize>();
            header.insert(
                name.to_string(),
                serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [at, at + len]}),
            );
            at += len;
        }
        let header = serde_json::Value::Object(header).to_string();
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.resize(bytes.len() + at, 0);
        bytes
    }

    #[test]
    fn a_misshapen_tensor_is_named_with_its_shape_and_the_file() {
        // weight_hh_l0 [8, 2] says hidden 2 (4 gates), but weight_ih_l0 has 6 rows.
        let bytes = safetensors(&[("weight_ih_l0", &[6, 1]), ("weight_hh_l0", &[8, 2])]);
        let e = import(Path::new("dir/bad.safetensors"), &bytes, None, &Options::default()).unwrap_err();
        assert_eq!(e.file, Path::new("dir/bad.safetensors"));
        assert_eq!(
            e.kind,
            ImportErrorKind::TensorShape { name: "weight_ih_l0".into(), shape: vec![6, 1], expected: "[8, 1]".into() }
        );
        assert_eq!(e.to_string(), "dir/bad.safetensors: tensor `weight_ih_l0` has shape [6, 1], expected [8, 1]");
    }

    #[test]
    fn a_missing_layer_is_a_missing_tensor() {
        let bytes = safetensors(&[("rnn.weight_ih_l1", &[8, 2]), ("rnn.weight_hh_l1", &[8, 2])]);
        let e = import(Path::new("m.safetensors"), &bytes, None, &Options::default()).unwrap_err();
        assert_eq!(e.kind, ImportErrorKind::MissingTensor { name: "rnn.weight_ih_l0".into() });
    }

    #[test]
    fn a_cell_that_does_not_fit_the_gates_is_refused() {
        let bytes = safetensors(&[("weight_ih_l0", &[6, 1]), ("weight_hh_l0", &[6, 2])]);
        let options = Options { cell: Some(lstmrt_format::CellKind::Lstm), ..Options::default() };
        let e = import(Path::new("m.safetensors"), &bytes, None, &options).unwrap_err();
        assert_eq!(e.kind, ImportErrorKind::CellMismatch { gates: 3, cell: lstmrt_format::CellKind::Lstm });
    }

    #[test]
    fn from_and_pytorch_options_are_checked_against_the_content() {
        let bytes = safetensors(&[("weight_ih_l0", &[8, 1]), ("weight_hh_l0", &[8, 2])]);
        let e = import(Path::new("m.safetensors"), &bytes, Some(Family::Onnx), &Options::default()).unwrap_err();
        assert_eq!(e.kind, ImportErrorKind::WrongFamily { from: Family::Onnx, kind: SourceKind::Safetensors });
        assert_eq!(
            e.to_string(),
            "m.safetensors: --from onnx was given, but the file is a pytorch file (pytorch-safetensors)"
        );
        let onnx = [0x08, 0x07, 0x3a, 0x00];
        let options = Options { prefix: Some("rnn".into()), ..Options::default() };
        let e = import(Path::new("m.onnx"), &onnx, None, &options).unwrap_err();
        assert_eq!(e.kind, ImportErrorKind::PyTorchOnly { option: "--prefix", family: Family::Onnx });
    }

    #[test]
    fn a_missing_input_is_an_io_error_naming_the_file() {
        let request = Request::new("/nonexistent/model.pt", std::env::temp_dir().join("lstmrt-never-written.lstm"));
        let Err(ConvertError::Input(e)) = convert(&request) else { panic!("expected an input error") };
        assert_eq!(e.file, Path::new("/nonexistent/model.pt"));
        let ImportErrorKind::Io { source } = &e.kind else { panic!("expected Io, got {e:?}") };
        assert_eq!(source.kind(), ErrorKind::NotFound);
        let inner = std::error::Error::source(&e).expect("the I/O error is the source");
        assert!(inner.downcast_ref::<lstmrt_format::IoError>().is_some());
        assert!(e.to_string().starts_with("/nonexistent/model.pt: "), "{e}");
    }

    #[test]
    fn nan_counts_as_a_failure() {
        assert_eq!(max_abs_diff(&[1.0, f32::NAN], &[1.0, 2.0]), f32::INFINITY);
    }
}
