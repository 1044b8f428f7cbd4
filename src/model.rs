//! A loaded model: the validated file, mapped in place.

use std::path::Path;

use half::{bf16, f16};

use crate::format::{self, DType, FileInfo, Layout, Metadata, TensorInfo, names};
use crate::weights::{HeadWeights, LayerWeights, Weights};

/// The bytes of a model file: a read-only memory map, or an owned copy
/// aligned to 64 bytes (so tensors can be viewed in place either way).
enum Backing {
    Mapped(memmap2::Mmap),
    Owned { blocks: Vec<Block>, len: usize },
}

#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Block([u8; 64]);

impl Backing {
    fn copy_of(bytes: &[u8]) -> Backing {
        let mut blocks = vec![Block([0; 64]); bytes.len().div_ceil(64)];
        for (block, chunk) in blocks.iter_mut().zip(bytes.chunks(64)) {
            block.0[..chunk.len()].copy_from_slice(chunk);
        }
        Backing::Owned { blocks, len: bytes.len() }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Mapped(m) => m,
            // SAFETY: `blocks` is a contiguous allocation of `blocks.len() * 64`
            // initialised bytes and `len <= blocks.len() * 64`.
            Backing::Owned { blocks, len } => unsafe { std::slice::from_raw_parts(blocks.as_ptr().cast::<u8>(), *len) },
        }
    }
}

/// A borrowed view of one tensor's bytes in the file.
#[derive(Clone, Copy)]
pub struct TensorView<'a> {
    info: &'a TensorInfo,
    bytes: &'a [u8],
}

impl<'a> TensorView<'a> {
    pub fn name(&self) -> &'a str {
        &self.info.name
    }
    pub fn dtype(&self) -> DType {
        self.info.dtype
    }
    pub fn layout(&self) -> Layout {
        self.info.layout
    }
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

    /// The elements widened to f32 (a copy).
    pub fn to_f32_vec(&self) -> Vec<f32> {
        match self.dtype() {
            DType::F32 => cast_slice::<f32>(self.bytes).to_vec(),
            DType::F16 => cast_slice::<f16>(self.bytes).iter().map(|v| v.to_f32()).collect(),
            DType::BF16 => cast_slice::<bf16>(self.bytes).iter().map(|v| v.to_f32()).collect(),
        }
    }
}

/// Views validated tensor bytes as elements of `T` (f32, f16 or bf16).
fn cast_slice<T: Copy>(bytes: &[u8]) -> &[T] {
    let size = std::mem::size_of::<T>();
    assert!(bytes.len() % size == 0 && (bytes.as_ptr() as usize) % std::mem::align_of::<T>() == 0);
    // SAFETY: the length is a whole number of elements and the pointer is
    // aligned (both asserted; tensors start on 64-byte boundaries of a 64-byte
    // aligned buffer); f32/f16/bf16 are plain data valid for any bit pattern,
    // and the host is little-endian like the file (checked by `format::parse`).
    unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<T>(), bytes.len() / size) }
}

/// A recurrent model loaded from a file: validated once, weights used in place.
///
/// `Model` is `Send + Sync`: share one between threads behind an `Arc`, and
/// give each stream its own [`crate::State`].
pub struct Model {
    backing: Backing,
    info: FileInfo,
    /// Canonical f32 weights for the reference-backed engine.
    pub(crate) weights: Weights,
}

impl Model {
    /// Memory-maps the file at `path` and validates it.
    ///
    /// The file must not be modified while the model is alive (as with any
    /// memory map; replacing it by rename, as the writers here do, is safe).
    pub fn open(path: impl AsRef<Path>) -> Result<Model, crate::Error> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|e| format::Error::io(path, &e))?;
        let len = file.metadata().map_err(|e| format::Error::io(path, &e))?.len();
        if len < format::HEADER_SIZE as u64 {
            // Too short to map usefully (and zero-length maps are an error).
            let bytes = std::fs::read(path).map_err(|e| format::Error::io(path, &e))?;
            return Model::from_backing(Backing::copy_of(&bytes));
        }
        // SAFETY: the map is read-only and private; the documented contract is
        // that the file is not modified while mapped. Every read through it is
        // bounds-checked by `format::parse` first.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| format::Error::io(path, &e))?;
        Model::from_backing(Backing::Mapped(map))
    }

    /// Validates a model held in memory (copied once into an aligned buffer).
    pub fn from_bytes(bytes: &[u8]) -> Result<Model, crate::Error> {
        Model::from_backing(Backing::copy_of(bytes))
    }

    fn from_backing(backing: Backing) -> Result<Model, crate::Error> {
        crate::isa().map_err(|e| crate::Error::Unsupported { what: e.to_string() })?;
        let info = format::parse(backing.bytes())?;
        let mut model = Model { backing, info, weights: Weights::default() };
        model.weights = model.weights();
        Ok(model)
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

    /// All weights in canonical f32 form (a copy; absent biases are zeros).
    pub fn weights(&self) -> Weights {
        let arch = self.architecture();
        let get = |name: &str| self.tensor(name).map(|t| t.to_f32_vec());
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
                });
            }
        }
        let head = self.metadata().head.as_ref().map(|h| HeadWeights {
            weight: get(names::HEAD_WEIGHT).expect("validated: head weight present"),
            bias: get(names::HEAD_BIAS).unwrap_or_else(|| vec![0.0; h.out_features as usize]),
        });
        Weights { layers, embedding: get(names::EMBEDDING), head }
    }

    /// The dtype of the recurrent weight matrices (`weight_hh_l0`).
    pub fn dtype(&self) -> DType {
        self.tensor(&names::weight_hh(0, 0)).map_or(DType::F32, |t| t.dtype())
    }
}
