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
    layout: Layout,
}

impl<'a> ModelWriter<'a> {
    /// A writer of `weights` as described by `meta`: f32, panel layout.
    pub fn new(meta: &'a Metadata, weights: &'a Weights) -> Self {
        ModelWriter { meta, weights, dtype: DType::F32, layout: Layout::Panel16 }
    }

    /// Layout of the weight matrices: [`Layout::Panel16`] (the default) is what
    /// the kernels read in place; [`Layout::Canonical`] is PyTorch's row-major
    /// form, repacked at every open.
    pub fn layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// Element type of the weight matrices (biases and peepholes stay f32).
    pub fn dtype(mut self, dtype: DType) -> Self {
        self.dtype = dtype;
        self
    }

    /// The complete file in memory.
    pub fn to_bytes(&self) -> Result<Vec<u8>, crate::Error> {
        self.weights.check(self.meta)?;
        let arch = &self.meta.architecture;
        let mut tensors = Vec::new();
        for t in expected_tensors(self.meta) {
            let values = self.weights.get(arch, &t.name).expect("checked: every expected tensor is present");
            // Matrices take the chosen dtype; vectors (biases, peepholes) stay exact.
            let dtype =
                if t.shape.len() == 2 && !t.name.starts_with("weight_peephole") { self.dtype } else { DType::F32 };
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
    }
    Ok(out)
}
