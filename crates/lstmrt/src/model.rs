//! A loaded model: the validated file, mapped in place.

use std::path::Path;

use half::{bf16, f16};

use crate::dft::Dft;
use crate::weights::{HeadWeights, LayerWeights, Weights};
use lstmrt_format::panel as pack;
use lstmrt_format::{self as format, CellKind, DType, ExpectedTensor, FileInfo, Layout, Metadata, TensorInfo, names};
use lstmrt_kernels::AlignedVec;
use lstmrt_kernels::Isa;
use lstmrt_kernels::dispatch::{LayerRef, MatrixRef};

/// The bytes of a model file: a read-only memory map, or an owned copy
/// aligned to 64 bytes (so tensors can be viewed in place either way).
enum Backing {
    Mapped(memmap2::Mmap),
    Owned(AlignedVec<u8>),
}

impl Backing {
    fn copy_of(bytes: &[u8]) -> Backing {
        Backing::Owned(AlignedVec::from_slice(bytes))
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Mapped(m) => m,
            Backing::Owned(v) => v.as_slice(),
        }
    }
}

/// Where a packed weight matrix lives: in the file (used in place), or in a
/// buffer it was repacked into at open (for files in the canonical layout).
enum Storage {
    File { offset: usize, len: usize },
    Owned(AlignedVec<u8>),
}

/// A weight matrix in the panel16 layout (int8: panel16x4).
struct PackedMatrix {
    storage: Storage,
    dtype: DType,
    panels: usize,
    k: usize,
    gates: usize,
    /// int8: each row's scale, `[panels][gates][16]` (empty otherwise).
    scale: Vec<f32>,
    /// int8: each row's sum of its int8 weights, same order (empty otherwise).
    colsum: Vec<i32>,
}

/// The kernels' view of one layer and direction: packed matrices plus the
/// small vectors (biases, peepholes) packed at open.
struct PackedLayer {
    w_ih: PackedMatrix,
    w_hh: PackedMatrix,
    w_hr: Option<PackedMatrix>,
    bias_x: Vec<f32>,
    bias_h: Vec<f32>,
    peephole: Option<Vec<f32>>,
}

/// A convolution of the stages: its weight `[out, kernel * in]` packed with
/// one gate, and its bias padded to whole panels (zeros when absent).
pub(crate) struct PackedStage {
    matrix: PackedMatrix,
    bias: Vec<f32>,
    /// An STFT stage runs as an FFT ([`crate::dft`]).
    dft: Option<Dft>,
}

/// A borrowed view of one tensor's bytes in the file.
#[derive(Clone, Copy)]
pub struct TensorView<'a> {
    info: &'a TensorInfo,
    bytes: &'a [u8],
}

impl<'a> TensorView<'a> {
    /// The tensor's name (`weight_hh_l0`, ...).
    pub fn name(&self) -> &'a str {
        &self.info.name
    }
    /// Element type as stored.
    pub fn dtype(&self) -> DType {
        self.info.dtype
    }
    /// Canonical or packed panels.
    pub fn layout(&self) -> Layout {
        self.info.layout
    }
    /// Shape as stored (the packed shape for panel layouts).
    pub fn shape(&self) -> &'a [u64] {
        &self.info.shape
    }
    /// The raw little-endian element bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.info.elements()
    }
    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements, if the dtype is f32. Zero-copy.
    pub fn as_f32(&self) -> Option<&'a [f32]> {
        (self.dtype() == DType::F32).then(|| cast_slice(self.bytes))
    }
    /// The elements, if the dtype is f16. Zero-copy.
    pub fn as_f16(&self) -> Option<&'a [f16]> {
        (self.dtype() == DType::F16).then(|| cast_slice(self.bytes))
    }
    /// The elements, if the dtype is bf16. Zero-copy.
    pub fn as_bf16(&self) -> Option<&'a [bf16]> {
        (self.dtype() == DType::BF16).then(|| cast_slice(self.bytes))
    }

    /// The elements, if the dtype is int8 (without their scales). Zero-copy.
    pub fn as_i8(&self) -> Option<&'a [i8]> {
        (self.dtype() == DType::I8).then(|| cast_slice(self.bytes))
    }

    /// The elements widened to f32 (a copy). int8 elements are the integers
    /// as stored; [`Model::canonical_f32`] applies their scales.
    pub fn to_f32_vec(&self) -> Vec<f32> {
        match self.dtype() {
            DType::F32 => cast_slice::<f32>(self.bytes).to_vec(),
            DType::F16 => cast_slice::<f16>(self.bytes).iter().map(|v| v.to_f32()).collect(),
            DType::BF16 => cast_slice::<bf16>(self.bytes).iter().map(|v| v.to_f32()).collect(),
            DType::I8 => cast_slice::<i8>(self.bytes).iter().map(|&v| f32::from(v)).collect(),
        }
    }
}

/// Views validated tensor bytes as elements of `T` (f32, f16, bf16 or i8). Tensors
/// start on 64-byte boundaries of a 64-byte aligned buffer and hold whole
/// elements (checked by `format::parse`), so the cast cannot fail.
fn cast_slice<T: bytemuck::Pod>(bytes: &[u8]) -> &[T] {
    bytemuck::cast_slice(bytes)
}

/// A recurrent model loaded from a file: validated once, weights used in place.
///
/// `Model` is `Send + Sync`: share one between threads behind an `Arc`, and
/// give each stream its own [`crate::State`].
pub struct Model {
    backing: Backing,
    info: FileInfo,
    layers: Vec<PackedLayer>,
    repacked: bool,
    isa: Isa,
    /// The `u8 x s8` product of int8 weights (the tier's, unless chosen).
    int8_dot: lstmrt_kernels::Int8Dot,
    /// The dtype of the recurrent weights (read once: `run` checks it).
    dtype: DType,
    int8_activations: Int8Activations,
    /// The state every sequence starts from, when the file stores one.
    initial: Option<Initial>,
    /// The sizes of the stages, when the file has them.
    plan: Option<format::StagesPlan>,
    /// One entry per stage, front then back: `Some` for convolutions.
    stages: Vec<Option<PackedStage>>,
}

/// How finely an int8 model's kernels quantize the activations they multiply
/// with the int8 weights (the inputs `x`, and `h` in the recurrence). The
/// weights are the same in every mode; only the time and the error change.
///
/// On random PyTorch-style LSTMs (`docs/quantization.md`) one byte costs
/// about as much error as the int8 weights themselves; two bytes leave the
/// weights' rounding alone (max error about 30% lower), for about 25-30%
/// (`InputsBytes2`) or 40-55% (`Bytes2`) more time per step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Int8Activations {
    /// One u8 per activation, with a scale and zero point per row: the fastest.
    #[default]
    Bytes1,
    /// Two bytes for the input projection's `x` (a second u8 holding the
    /// first one's rounding error at a 254th of its step: as fine as 16 bits),
    /// one for the recurrence. Most of the gain of `Bytes2` for LSTMs.
    InputsBytes2,
    /// Two bytes everywhere: what remains is the weights' rounding.
    Bytes2,
}

impl Int8Activations {
    /// Every mode, fastest first.
    pub const ALL: [Int8Activations; 3] =
        [Int8Activations::Bytes1, Int8Activations::InputsBytes2, Int8Activations::Bytes2];

    /// The name `lstm-run --int8-activations` takes.
    pub fn name(self) -> &'static str {
        match self {
            Int8Activations::Bytes1 => "bytes1",
            Int8Activations::InputsBytes2 => "inputs-bytes2",
            Int8Activations::Bytes2 => "bytes2",
        }
    }

    /// The mode called `name`.
    pub fn from_name(name: &str) -> Option<Int8Activations> {
        Int8Activations::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl Model {
    /// Memory-maps the file at `path` and validates it.
    ///
    /// The file must not be modified while the model is alive (as with any
    /// memory map; replacing it by rename, as the writers here do, is safe):
    /// truncating a mapped file kills the process with SIGBUS at the next
    /// read of a lost page. A file that anyone may write (world-writable) is
    /// therefore read into owned memory instead, as [`Model::load`] does; use
    /// `load` yourself for files that may change while in use.
    pub fn open(path: impl AsRef<Path>) -> Result<Model, crate::Error> {
        let path = path.as_ref();
        // Regular files only: a FIFO would block, a device never end.
        let (file, meta) = format::open_regular(path).map_err(|e| crate::Error::io(path, e))?;
        format::limits::MODEL_FILE.check(meta.len()).map_err(|e| crate::Error::io(path, e.into()))?;
        #[cfg(unix)]
        let anyone_may_write = {
            use std::os::unix::fs::PermissionsExt;
            meta.permissions().mode() & 0o002 != 0
        };
        #[cfg(not(unix))]
        let anyone_may_write = false;
        // Writable by anyone, or too short to map usefully (zero-length maps
        // are an error): read into owned memory from the file already open.
        if anyone_may_write || meta.len() < format::HEADER_SIZE as u64 {
            return Model::read_owned(path, file, meta.len());
        }
        // SAFETY: the map is read-only and private; the documented contract is
        // that the file is not modified while mapped. Every read through it is
        // bounds-checked by `format::parse` first.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| crate::Error::io(path, e))?;
        Model::from_backing(Backing::Mapped(map))
    }

    /// Reads the file at `path` whole into owned, 64-byte aligned memory and
    /// validates it. Nothing done to the file afterwards (truncating it,
    /// rewriting it in place) affects the model; it costs one read of the
    /// file and its size in memory. `lstm-run --no-mmap` uses it.
    pub fn load(path: impl AsRef<Path>) -> Result<Model, crate::Error> {
        let path = path.as_ref();
        let (file, meta) = format::open_regular(path).map_err(|e| crate::Error::io(path, e))?;
        format::limits::MODEL_FILE.check(meta.len()).map_err(|e| crate::Error::io(path, e.into()))?;
        Model::read_owned(path, file, meta.len())
    }

    /// Reads the `len` bytes of the opened `file` into an aligned buffer.
    fn read_owned(path: &Path, mut file: std::fs::File, len: u64) -> Result<Model, crate::Error> {
        use std::io::Read;
        let too_large =
            || crate::Error::io(path, std::io::Error::new(std::io::ErrorKind::InvalidInput, "is too large"));
        let n = usize::try_from(len).map_err(|_| too_large())?;
        let mut buffer = AlignedVec::<u8>::zeroed(n);
        file.read_exact(buffer.as_mut_slice()).map_err(|e| crate::Error::io(path, e))?;
        Model::from_backing(Backing::Owned(buffer))
    }

    /// Validates a model held in memory (copied once into an aligned buffer).
    pub fn from_bytes(bytes: &[u8]) -> Result<Model, crate::Error> {
        Model::from_backing(Backing::copy_of(bytes))
    }

    fn from_backing(backing: Backing) -> Result<Model, crate::Error> {
        let isa = crate::isa()?;
        let info = format::parse(backing.bytes())?;
        let dtype = info.tensor(&names::weight_hh(0, 0)).map_or(DType::F32, |t| t.dtype);
        // Reads LSTMRT_INT8_DOT now, once, rather than on the first run (which never allocates).
        let int8_dot = lstmrt_kernels::Int8Dot::for_isa(isa);
        let int8_activations = Int8Activations::default();
        let plan = info.metadata.stages_plan();
        let mut model = Model {
            backing,
            info,
            layers: Vec::new(),
            repacked: false,
            isa,
            int8_dot,
            dtype,
            int8_activations,
            initial: None,
            plan,
            stages: Vec::new(),
        };
        model.layers = model.pack_layers()?;
        model.stages = model.pack_stages()?;
        model.initial = model.read_initial();
        Ok(model)
    }

    /// Uses instruction-set tier `isa` for this model instead of the process
    /// default (an error if this CPU lacks it).
    pub fn with_isa(mut self, isa: Isa) -> Result<Model, crate::Error> {
        if !isa.available() {
            return Err(lstmrt_kernels::IsaError::unavailable(isa, false).into());
        }
        self.isa = isa;
        self.int8_dot = lstmrt_kernels::Int8Dot::for_isa(isa);
        Ok(self)
    }

    /// Uses int8 product `dot` for this model's int8 weights instead of the
    /// tier's (what `LSTMRT_INT8_DOT` does for a whole process): for tests
    /// and measurements of each form in one process. An error if this CPU
    /// cannot run it.
    #[doc(hidden)]
    pub fn with_int8_dot(mut self, dot: lstmrt_kernels::Int8Dot) -> Result<Model, crate::Error> {
        if !dot.available() {
            return Err(crate::Error::Unsupported { what: format!("this CPU cannot run the {dot} int8 product") });
        }
        self.int8_dot = dot;
        Ok(self)
    }

    /// The `u8 x s8` product this model's int8 weights use.
    pub fn int8_dot(&self) -> lstmrt_kernels::Int8Dot {
        self.int8_dot
    }

    /// Whether the model reads its file through a memory map (else it owns a
    /// copy: [`Model::load`], [`Model::from_bytes`], or a world-writable file).
    pub fn is_mapped(&self) -> bool {
        matches!(self.backing, Backing::Mapped(_))
    }

    /// The instruction-set tier this model's kernels run on.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Quantizes activations as `mode` says when the weights are int8 (no
    /// effect on other dtypes). See [`Int8Activations`].
    pub fn with_int8_activations(mut self, mode: Int8Activations) -> Model {
        self.int8_activations = mode;
        self
    }

    /// How this model's int8 kernels quantize activations.
    pub fn int8_activations(&self) -> Int8Activations {
        self.int8_activations
    }

    #[doc(hidden)]
    /// Whether the file stored weights in the canonical layout, so they were
    /// repacked into the kernels' panel16 layout at open (a copy). Files
    /// written by lstmrt's writer are packed already and are used in place.
    pub fn repacked(&self) -> bool {
        self.repacked
    }

    fn expected(&self, name: &str) -> ExpectedTensor {
        format::expected_tensors(self.metadata())
            .into_iter()
            .find(|t| t.name == name)
            .expect("only called for tensors of this architecture")
    }

    /// The panel16 form of weight matrix `name`: the file's bytes when stored
    /// packed, else a repacked copy (same dtype, so no rounding). int8
    /// matrices are always packed; their scales are checked and their row
    /// sums computed here.
    fn packed_matrix(&mut self, name: &str) -> Result<PackedMatrix, crate::Error> {
        let expected = self.expected(name);
        let (gates, n) = expected.packable.expect("weight matrices are packable");
        let k = expected.shape[1] as usize;
        let info = self.info.tensor(name).expect("validated: present").clone();
        let (mut scale, mut colsum) = (Vec::new(), Vec::new());
        let storage = match info.layout {
            Layout::Panel16 => Storage::File { offset: info.offset as usize, len: info.length as usize },
            Layout::Panel16x4 => {
                let scales = self.tensor(&names::scale(name)).expect("validated: int8 matrices have scales");
                let scales = scales.as_f32().expect("validated: scales are f32");
                if let Some((row, v)) = scales.iter().enumerate().find(|(_, v)| !(v.is_finite() && **v >= 0.0)) {
                    return Err(format::Error::TensorKind {
                        name: names::scale(name),
                        reason: format!("row {row} has scale {v}; scales must be finite and not negative"),
                    }
                    .into());
                }
                scale = pack::pack_vector(scales, gates, n);
                let view = self.view(&info);
                colsum = pack::row_sums_i8(view.as_i8().expect("validated: int8"), gates, n, k);
                Storage::File { offset: info.offset as usize, len: info.length as usize }
            }
            Layout::Canonical => {
                self.repacked = true;
                let view = self.view(&info);
                let bytes: Vec<u8> = match info.dtype {
                    DType::F32 => bytemuck::cast_slice(&pack::pack(view.as_f32().expect("f32"), gates, n, k)).to_vec(),
                    DType::F16 => bytemuck::cast_slice(&pack::pack(view.as_f16().expect("f16"), gates, n, k)).to_vec(),
                    DType::BF16 => {
                        bytemuck::cast_slice(&pack::pack(view.as_bf16().expect("bf16"), gates, n, k)).to_vec()
                    }
                    DType::I8 => unreachable!("validated: int8 is always panel16x4"),
                };
                Storage::Owned(AlignedVec::from_slice(&bytes))
            }
        };
        #[cfg(target_family = "wasm")]
        match info.dtype {
            DType::F16 | DType::BF16 => return Ok(self.widened(storage, info.dtype, pack::panels(n), k, gates)),
            DType::I8 => {
                // Scales checked above; int8 weights are kept as their f32
                // values (int8 x scale), packed as f32 panels.
                let values = self.canonical_f32(name).expect("validated: present");
                let panels = pack::pack(&values, gates, n, k);
                let storage = Storage::Owned(AlignedVec::from_slice(bytemuck::cast_slice(&panels)));
                return Ok(PackedMatrix {
                    storage,
                    dtype: DType::F32,
                    panels: pack::panels(n),
                    k,
                    gates,
                    scale: Vec::new(),
                    colsum: Vec::new(),
                });
            }
            DType::F32 => {}
        }
        Ok(PackedMatrix { storage, dtype: info.dtype, panels: pack::panels(n), k, gates, scale, colsum })
    }

    /// A wasm build's f16/bf16 matrix, widened to f32 in the same panel
    /// order once at open: the `.wasm` then needs one float kernel, not
    /// three (the model file a page downloads stays half the size). int8
    /// matrices likewise become their f32 values: simd128 has no byte dot
    /// product to gain from them, and the int8 kernels stay out of the
    /// `.wasm` (the model a page downloads stays a quarter of the size).
    #[cfg(target_family = "wasm")]
    fn widened(&self, storage: Storage, dtype: DType, panels: usize, k: usize, gates: usize) -> PackedMatrix {
        let bytes = match &storage {
            Storage::File { offset, len } => &self.backing.bytes()[*offset..offset + len],
            Storage::Owned(v) => v.as_slice(),
        };
        let halves: &[u16] = bytemuck::cast_slice(bytes);
        let floats: Vec<f32> = match dtype {
            DType::F16 => halves.iter().map(|&b| f16::from_bits(b).to_f32()).collect(),
            _ => halves.iter().map(|&b| bf16::from_bits(b).to_f32()).collect(),
        };
        let storage = Storage::Owned(AlignedVec::from_slice(bytemuck::cast_slice(&floats)));
        PackedMatrix { storage, dtype: DType::F32, panels, k, gates, scale: Vec::new(), colsum: Vec::new() }
    }

    fn pack_layers(&mut self) -> Result<Vec<PackedLayer>, crate::Error> {
        let arch = self.architecture().clone();
        let (g, h) = (arch.cell.gates(), arch.hidden());
        let vector =
            |m: &Model, name: String| m.tensor(&name).map(|t| t.to_f32_vec()).unwrap_or_else(|| vec![0.0; g * h]);
        let mut layers = Vec::new();
        for layer in 0..arch.layers() {
            for dir in 0..arch.directions() {
                let b_ih = vector(self, names::bias_ih(layer, dir));
                let b_hh = vector(self, names::bias_hh(layer, dir));
                // The input part carries every bias that is simply added; only
                // GRU's b_hn sits inside r * (W_hn h + b_hn) and stays apart.
                let mut bias_x: Vec<f32> = b_ih.iter().zip(&b_hh).map(|(a, b)| a + b).collect();
                let mut bias_h = vec![0.0; g * h];
                if arch.cell == CellKind::Gru {
                    bias_x[2 * h..].copy_from_slice(&b_ih[2 * h..]);
                    bias_h[2 * h..].copy_from_slice(&b_hh[2 * h..]);
                }
                let peephole =
                    self.tensor(&names::weight_peephole(layer, dir)).map(|t| pack::pack_vector(&t.to_f32_vec(), 3, h));
                let w_hr =
                    if arch.proj_size > 0 { Some(self.packed_matrix(&names::weight_hr(layer, dir))?) } else { None };
                layers.push(PackedLayer {
                    w_ih: self.packed_matrix(&names::weight_ih(layer, dir))?,
                    w_hh: self.packed_matrix(&names::weight_hh(layer, dir))?,
                    w_hr,
                    bias_x: pack::pack_vector(&bias_x, g, h),
                    bias_h: pack::pack_vector(&bias_h, g, h),
                    peephole,
                });
            }
        }
        Ok(layers)
    }

    fn pack_stages(&mut self) -> Result<Vec<Option<PackedStage>>, crate::Error> {
        let Some(stages) = self.metadata().stages.clone() else { return Ok(Vec::new()) };
        let chains = [(format::Chain::Front, &stages.front), (format::Chain::Back, &stages.back)];
        let mut packed = Vec::new();
        for (chain, list) in chains {
            for (i, stage) in list.iter().enumerate() {
                if stage.kind != format::StageKind::Conv1d {
                    packed.push(None);
                    continue;
                }
                let out = stage.out_channels as usize;
                let bias = self
                    .tensor(&format::Stages::bias_name(chain, i))
                    .map(|t| t.to_f32_vec())
                    .unwrap_or_else(|| vec![0.0; out]);
                let name = format::Stages::weight_name(chain, i);
                let matrix = self.packed_matrix(&name)?;
                let dft = self.stft(stage, &name, &bias);
                packed.push(Some(PackedStage { matrix, bias: pack::pack_vector(&bias, 1, out), dft }));
            }
        }
        Ok(packed)
    }

    /// The FFT of convolution `stage` (weights `name`), when it is an STFT
    /// held in f32 with no bias ([`Dft::detect`]; its activation follows as
    /// for any convolution); a model stored in another dtype keeps the
    /// product of its own rounded weights.
    fn stft(&self, stage: &format::Stage, name: &str, bias: &[f32]) -> Option<Dft> {
        let (out, kernel) = (stage.out_channels as usize, stage.kernel as usize);
        let f32_weights = self.tensor(name)?.dtype() == DType::F32;
        if !f32_weights || bias.iter().any(|&b| b != 0.0) || !Dft::fits(out, kernel) {
            return None;
        }
        Dft::detect(&self.canonical_f32(name)?, out, kernel)
    }

    /// The FFT that computes stage `index` ([`Model::stage_ref`]'s numbering), if any.
    pub(crate) fn stage_dft(&self, index: usize) -> Option<&Dft> {
        self.stages.get(index)?.as_ref()?.dft.as_ref()
    }

    /// Whether stage `index` (front stages first, then back ones) is an
    /// STFT that runs as an FFT (`lstm-run --info` says so; tests check it).
    #[doc(hidden)]
    pub fn stage_runs_as_fft(&self, index: usize) -> bool {
        self.stage_dft(index).is_some()
    }

    /// The sizes of the stages, when the model has them.
    pub fn stages_plan(&self) -> Option<&format::StagesPlan> {
        self.plan.as_ref()
    }

    /// The kernels' view of stage `index` (front stages first, then back
    /// ones), with its padded bias: `None` unless it is a convolution.
    pub(crate) fn stage_ref(&self, index: usize) -> Option<(MatrixRef<'_>, &[f32])> {
        let s = self.stages.get(index)?.as_ref()?;
        let split = self.int8_activations != Int8Activations::Bytes1;
        Some((self.matrix_ref(&s.matrix, split), &s.bias))
    }

    fn matrix_ref<'a>(&'a self, m: &'a PackedMatrix, split: bool) -> MatrixRef<'a> {
        let bytes = match &m.storage {
            Storage::File { offset, len } => &self.backing.bytes()[*offset..offset + len],
            Storage::Owned(v) => v.as_slice(),
        };
        MatrixRef {
            bytes,
            dtype: m.dtype,
            panels: m.panels,
            k: m.k,
            gates: m.gates,
            scale: &m.scale,
            colsum: &m.colsum,
            split,
        }
    }

    /// The kernels' view of layer `index` (`layer * directions + direction`).
    pub(crate) fn layer_ref(&self, index: usize) -> LayerRef<'_> {
        let arch = self.architecture();
        let l = &self.layers[index];
        LayerRef {
            cell: arch.cell,
            clip: arch.clip,
            input_forget: arch.input_forget,
            linear_before_reset: arch.linear_before_reset,
            hidden: arch.hidden(),
            out_size: arch.output_size(),
            w_ih: self.matrix_ref(&l.w_ih, self.int8_activations != Int8Activations::Bytes1),
            w_hh: self.matrix_ref(&l.w_hh, self.int8_activations == Int8Activations::Bytes2),
            w_hr: l.w_hr.as_ref().map(|m| self.matrix_ref(m, self.int8_activations == Int8Activations::Bytes2)),
            bias_x: &l.bias_x,
            bias_h: &l.bias_h,
            peephole: l.peephole.as_deref(),
        }
    }

    /// Everything the metadata section holds.
    pub fn metadata(&self) -> &Metadata {
        &self.info.metadata
    }

    /// The recurrent stack's shape and options.
    pub fn architecture(&self) -> &format::Architecture {
        &self.info.metadata.architecture
    }

    /// Format version, file length, skipped sections.
    pub fn file_info(&self) -> &FileInfo {
        &self.info
    }

    /// The tensor called `name`, viewed in place.
    pub fn tensor(&self, name: &str) -> Option<TensorView<'_>> {
        self.info.tensor(name).map(|info| self.view(info))
    }

    /// All tensors in directory order.
    pub fn tensors(&self) -> impl Iterator<Item = TensorView<'_>> {
        self.info.tensors.iter().map(|info| self.view(info))
    }

    fn view<'a>(&'a self, info: &'a TensorInfo) -> TensorView<'a> {
        // The range was checked against the file by `format::parse`.
        let bytes = &self.backing.bytes()[info.offset as usize..(info.offset + info.length) as usize];
        TensorView { info, bytes }
    }

    /// Number of weights (elements of every tensor).
    pub fn parameter_count(&self) -> u64 {
        self.info.tensors.iter().map(|t| t.elements() as u64).sum()
    }

    /// Checks every tensor's bytes against its CRC32C (reads the whole file).
    pub fn verify(&self) -> Result<(), crate::Error> {
        for t in &self.info.tensors {
            format::verify_tensor(self.backing.bytes(), t)?;
        }
        Ok(())
    }

    #[doc(hidden)]
    /// Tensor `name` in canonical layout, widened to f32 (unpacking panel16;
    /// int8 matrices dequantized by their row scales).
    pub fn canonical_f32(&self, name: &str) -> Option<Vec<f32>> {
        let t = self.tensor(name)?;
        Some(match t.layout() {
            Layout::Canonical => t.to_f32_vec(),
            Layout::Panel16 => {
                let e = self.expected(name);
                let (gates, n) = e.packable.expect("only matrices are packed");
                pack::unpack(&t.to_f32_vec(), gates, n, e.shape[1] as usize)
            }
            Layout::Panel16x4 => {
                let e = self.expected(name);
                let (gates, n) = e.packable.expect("only matrices are packed");
                let k = e.shape[1] as usize;
                let q = pack::unpack_i8(t.as_i8().expect("validated: int8"), gates, n, k);
                let scale = self.tensor(&names::scale(name)).and_then(|s| s.as_f32()).expect("validated: scales");
                q.chunks_exact(k.max(1))
                    .zip(scale)
                    .flat_map(|(row, s)| row.iter().map(move |&v| f32::from(v) * s))
                    .collect()
            }
        })
    }

    /// All weights in canonical f32 form (a copy; absent biases are zeros).
    pub fn weights(&self) -> Weights {
        let arch = self.architecture();
        let get = |name: &str| self.canonical_f32(name);
        let gates_h = arch.cell.gates() * arch.hidden();
        let mut layers = Vec::with_capacity(arch.layers() * arch.directions());
        for layer in 0..arch.layers() {
            for dir in 0..arch.directions() {
                let required = |name: String| get(&name).expect("validated: required tensor present");
                layers.push(LayerWeights {
                    w_ih: required(names::weight_ih(layer, dir)),
                    w_hh: required(names::weight_hh(layer, dir)),
                    b_ih: get(&names::bias_ih(layer, dir)).unwrap_or_else(|| vec![0.0; gates_h]),
                    b_hh: get(&names::bias_hh(layer, dir)).unwrap_or_else(|| vec![0.0; gates_h]),
                    w_hr: get(&names::weight_hr(layer, dir)),
                    peephole: get(&names::weight_peephole(layer, dir)),
                    initial_h: get(&names::initial_h(layer, dir)),
                    initial_c: get(&names::initial_c(layer, dir)),
                });
            }
        }
        let head = self.metadata().head.as_ref().map(|h| HeadWeights {
            weight: get(names::HEAD_WEIGHT).expect("validated: head weight present"),
            bias: get(names::HEAD_BIAS).unwrap_or_else(|| vec![0.0; h.out_features as usize]),
        });
        let stages = format::expected_tensors(self.metadata())
            .into_iter()
            .filter(|t| format::Stages::is_stage_tensor(&t.name))
            .filter_map(|t| Some((t.name.clone(), get(&t.name)?)))
            .collect();
        Weights { layers, embedding: get(names::EMBEDDING), head, stages }
    }

    /// The stored initial state, one row per layer and direction (zeros where
    /// a tensor is absent), if the file stores any.
    fn read_initial(&self) -> Option<Initial> {
        let arch = self.architecture();
        let (p, hidden) = (arch.output_size(), if arch.has_cell_state() { arch.hidden() } else { 0 });
        let mut initial = Initial { h: Vec::new(), c: Vec::new() };
        let mut any = false;
        for layer in 0..arch.layers() {
            for dir in 0..arch.directions() {
                for (name, size, rows) in [
                    (names::initial_h(layer, dir), p, &mut initial.h),
                    (names::initial_c(layer, dir), hidden, &mut initial.c),
                ] {
                    match self.tensor(&name).and_then(|t| t.as_f32()) {
                        Some(v) if size > 0 => {
                            any = true;
                            rows.extend_from_slice(v);
                        }
                        _ => rows.resize(rows.len() + size, 0.0),
                    }
                }
            }
        }
        any.then_some(initial)
    }

    /// The state a new or reset sequence starts from: `h` `[layers * directions, P]`
    /// and `c` `[layers * directions, H]` (LSTM), as the file stores it (format
    /// 1.2, e.g. an ONNX model's constant `initial_h`/`initial_c`); `None`: zeros.
    pub fn initial_state(&self) -> Option<(&[f32], &[f32])> {
        self.initial.as_ref().map(|i| (i.h.as_slice(), i.c.as_slice()))
    }

    pub(crate) fn initial(&self) -> Option<&Initial> {
        self.initial.as_ref()
    }

    /// The dtype of the recurrent weight matrices (`weight_hh_l0`).
    pub fn dtype(&self) -> DType {
        self.dtype
    }
}

/// The state every sequence of a model starts from (a file's stored initial
/// state): `h` `[slots, P]`, `c` `[slots, H]` (empty unless LSTM).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Initial {
    pub h: Vec<f32>,
    pub c: Vec<f32>,
}
