//! The writer API: canonical f32 weights plus metadata in, a model file out.

use std::path::Path;

use half::{bf16, f16};

use crate::weights::Weights;
use lstmrt_format::panel as pack;
use lstmrt_format::{self as format, DType, Error, Layout, Metadata, TensorBytes, expected_tensors};

/// Writes a model file from metadata and canonical weights.
///
/// ```no_run
/// # use lstmrt::{ModelWriter, Weights, format::{Architecture, CellKind, Metadata, DType}};
/// let meta = Metadata::new(Architecture::new(CellKind::Lstm, 8, 16, 1));
/// let weights = Weights::zeros(&meta);
/// ModelWriter::new(&meta, &weights).dtype(DType::F16).write("model.lstm")?;
/// # Ok::<(), lstmrt::Error>(())
/// ```
pub struct ModelWriter<'a> {
    meta: &'a Metadata,
    weights: &'a Weights,
    dtype: DType,
    /// The stages' convolution weights, when not `dtype`.
    stage_dtype: Option<DType>,
    layout: Layout,
}

impl<'a> ModelWriter<'a> {
    /// A writer of `weights` as described by `meta`: f32, panel layout.
    pub fn new(meta: &'a Metadata, weights: &'a Weights) -> Self {
        ModelWriter { meta, weights, dtype: DType::F32, stage_dtype: None, layout: Layout::Panel16 }
    }

    /// Layout of the weight matrices: [`Layout::Panel16`] (the default) is what
    /// the kernels read in place; [`Layout::Canonical`] is PyTorch's row-major
    /// form, repacked at every open.
    pub fn layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// Element type of the weight matrices (biases and peepholes stay f32).
    /// [`DType::I8`] quantizes the recurrent matrices (`W_ih`, `W_hh`, `W_hr`)
    /// to symmetric int8 with one scale per row, in the `panel16x4` layout
    /// whatever [`ModelWriter::layout`] says; the embedding and the head stay f32.
    pub fn dtype(mut self, dtype: DType) -> Self {
        self.dtype = dtype;
        self
    }

    /// Element type of the stages' convolution weights (format 1.3), when
    /// it should differ from the default: [`ModelWriter::dtype`], except
    /// that int8 leaves the stages f32. Quantizing a front-end to int8
    /// costs far more than quantizing the stack: on Silero VAD, int8 stages
    /// move probabilities by up to 0.5 and flip 3 of 372 speech decisions,
    /// f32 stages beside an int8 stack by 0.017 and none (docs/silero-vad.md).
    /// f32 rather than f16: an STFT stage runs as an FFT only from f32
    /// weights (a rounded basis is not recognised), which made Silero's int8
    /// variant 15.3 -> 12.5 us per chunk, for 366 KB more file.
    pub fn stage_dtype(mut self, dtype: DType) -> Self {
        self.stage_dtype = Some(dtype);
        self
    }

    fn stages_dtype(&self) -> DType {
        match (self.stage_dtype, self.dtype) {
            (Some(d), _) => d,
            (None, DType::I8) => DType::F32,
            (None, d) => d,
        }
    }

    /// The complete file in memory.
    pub fn to_bytes(&self) -> Result<Vec<u8>, crate::Error> {
        self.weights.check(self.meta)?;
        let arch = &self.meta.architecture;
        let mut tensors = Vec::new();
        for t in expected_tensors(self.meta) {
            // Checked: every required tensor is present; an absent stage bias is zeros.
            let Some(values) = self.weights.get(arch, &t.name) else { continue };
            let dtype = if format::Stages::is_stage_tensor(&t.name) { self.stages_dtype() } else { self.dtype };
            if dtype == DType::I8
                && let Some((gates, n)) = t.packable
            {
                let k = t.shape[1] as usize;
                let (q, scales) = quantize_rows(&t.name, values, k)?;
                let packed: Vec<u8> = pack::pack_i8(&q, gates, n, k).iter().map(|&v| v as u8).collect();
                tensors.push(TensorBytes {
                    name: format::names::scale(&t.name),
                    dtype: DType::F32,
                    layout: Layout::Canonical,
                    shape: vec![t.shape[0]],
                    data: encode_values(&t.name, &scales, DType::F32)?,
                });
                tensors.push(TensorBytes {
                    data: packed,
                    dtype: DType::I8,
                    layout: Layout::Panel16x4,
                    shape: t.shape_in(Layout::Panel16x4).expect("packable"),
                    name: t.name,
                });
                continue;
            }
            // Matrices take the chosen dtype; vectors (biases, peepholes) stay
            // exact, and so does everything int8 is not for.
            let matrix = t.shape.len() == 2 && !t.name.starts_with("weight_peephole");
            let dtype = if matrix && dtype != DType::I8 { dtype } else { DType::F32 };
            let (layout, shape, data) = match (self.layout, t.packable) {
                (Layout::Panel16, Some((gates, n))) => {
                    let packed = pack::pack(values, gates, n, t.shape[1] as usize);
                    (Layout::Panel16, t.shape_in(Layout::Panel16).expect("packable"), packed)
                }
                _ => (Layout::Canonical, t.shape.clone(), values.to_vec()),
            };
            tensors.push(TensorBytes {
                data: encode_values(&t.name, &data, dtype)?,
                name: t.name,
                dtype,
                layout,
                shape,
            });
        }
        // Initial states, f32 and canonical; zeros (the default) are not stored,
        // so files without one stay readable by older readers.
        for t in format::initial_state_tensors(self.meta) {
            if let Some(values) = self.weights.get(arch, &t.name).filter(|v| v.iter().any(|&x| x != 0.0)) {
                tensors.push(TensorBytes {
                    data: encode_values(&t.name, values, DType::F32)?,
                    name: t.name,
                    dtype: DType::F32,
                    layout: Layout::Canonical,
                    shape: t.shape,
                });
            }
        }
        Ok(format::encode(self.meta, &tensors)?)
    }

    /// Writes the file atomically: a temporary file in the same folder, renamed
    /// into place, so `path` never holds a partial model.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), crate::Error> {
        let path = path.as_ref();
        let bytes = self.to_bytes()?;
        format::atomic_write(path, &bytes).map_err(|e| crate::Error::io(path, e))
    }
}

/// Little-endian bytes of `values` in `dtype`; refuses values that would not
/// survive the conversion (f16 overflows to infinity above 65504).
pub(crate) fn encode_values(name: &str, values: &[f32], dtype: DType) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(values.len() * dtype.size() as usize);
    match dtype {
        DType::F32 => values.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        DType::F16 => {
            for (i, &v) in values.iter().enumerate() {
                let h = f16::from_f32(v);
                if !h.is_finite() {
                    return Err(Error::InvalidWeights {
                        reason: format!("`{name}` element {i} = {v} does not fit in f16 (max 65504)"),
                    });
                }
                out.extend_from_slice(&h.to_le_bytes());
            }
        }
        DType::BF16 => values.iter().for_each(|&v| out.extend_from_slice(&bf16::from_f32(v).to_le_bytes())),
        DType::I8 => unreachable!("int8 matrices are quantized by quantize_rows"),
    }
    Ok(out)
}

/// Symmetric int8 with one scale per row of `k` values: `scale = max|w| / 127`,
/// `q = round(w / scale)` in `[-127, 127]` (an all-zero row gets scale 0).
/// Refuses matrices with too many inputs for exact i32 sums, and non-finite weights.
pub(crate) fn quantize_rows(name: &str, values: &[f32], k: usize) -> Result<(Vec<i8>, Vec<f32>), Error> {
    if k > format::MAX_INT8_K {
        return Err(Error::InvalidWeights {
            reason: format!("`{name}` has {k} inputs per row; int8 takes at most {}", format::MAX_INT8_K),
        });
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::InvalidWeights {
            reason: format!("`{name}` element {i} = {} cannot be quantized to int8", values[i]),
        });
    }
    let mut q = Vec::with_capacity(values.len());
    let mut scales = Vec::with_capacity(values.len() / k.max(1));
    for row in values.chunks_exact(k) {
        let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let scale = max / 127.0;
        let inv = if max > 0.0 { 127.0 / max } else { 0.0 };
        q.extend(row.iter().map(|&v| (v * inv).round().clamp(-127.0, 127.0) as i8));
        scales.push(scale);
    }
    Ok((q, scales))
}
