//! A state's kernel buffers ([`Scratch`]): the padded `h`/`c` of every
//! layer and direction, one chunk's input projection and inter-layer
//! outputs, and each thread's widening and quantizing room, all sized
//! before anything is allocated; the buffers of runs with per-row lengths
//! ([`Packing`]); and the copies between a state's public `h`/`c` and the
//! padded buffers ([`Rows`]).

use crate::Error;
use lstmrt_format::panel::{self as pack, LANES};
use lstmrt_format::{Architecture, DType};
use lstmrt_kernels::AlignedVec;
use lstmrt_kernels::WIDEN_BUFFER;

/// Rows (timesteps x batch) of input projection computed per GEMM.
pub(crate) const CHUNK_ROWS: usize = 128;

/// Kernel buffers of one state: padded `h`/`c` per layer and direction, and
/// the GEMM output and inter-layer buffers of one chunk.
#[derive(Debug, Clone)]
pub(crate) struct Scratch {
    /// Floats per row of the padded `h` buffers (P rounded up to 16).
    pub(crate) h_stride: usize,
    /// Floats per row of the padded `c`/`r` buffers (H rounded up to 16).
    pub(crate) c_stride: usize,
    /// `[slots][2][batch][h_stride]`: `h_{t-1}` and `h_t` of every layer and direction.
    pub(crate) hbuf: AlignedVec<f32>,
    /// `[slots][batch][c_stride]`
    pub(crate) cbuf: AlignedVec<f32>,
    /// `[slots][batch][c_stride]`
    pub(crate) rbuf: AlignedVec<f32>,
    /// `[chunk * batch][panels * G * 16]`: one chunk's input projection.
    pub(crate) pre: AlignedVec<f32>,
    /// `[2][chunk * batch][P]`: a unidirectional stack's inter-layer outputs.
    pub(crate) mid: AlignedVec<f32>,
    /// `[2][steps * batch][D * P]`: a bidirectional stack's inter-layer
    /// sequences (grown to the longest sequence run).
    pub(crate) seq: AlignedVec<f32>,
    /// Timesteps per chunk.
    pub(crate) chunk: usize,
    /// Per slot, which of the two `h` buffers holds the latest `h`.
    pub(crate) cur: Vec<usize>,
    /// `[2][threads][WIDEN_BUFFER]`: where each thread running a kernel
    /// widens f16/bf16 weights (two halves: the directions of a bidirectional
    /// layer can run at once). Empty for f32 weights, which are read in place.
    pub(crate) wide: AlignedVec<f32>,
    /// `[2][threads][q8_part]` bytes: where each thread quantizes the
    /// activations of int8 layers (halves as for `wide`). Empty otherwise.
    pub(crate) q8: AlignedVec<u8>,
    /// Bytes per thread of `q8` (0 unless the weights are int8).
    pub(crate) q8_part: usize,
    /// The weights' dtype, which decides `wide` and `q8`.
    pub(crate) dtype: DType,
    /// Whether `q8` has room for an int8 product's tiles.
    pub(crate) tiles: bool,
    pub(crate) threads: usize,
}

/// The elements of each buffer of a [`Scratch`], computed before anything is
/// allocated (in `u64`, so a size no address space holds is refused rather
/// than wrapped): what [`Model::state_bytes`] counts and `Scratch` allocates.
struct ScratchSizes {
    h_stride: usize,
    c_stride: usize,
    chunk: usize,
    hbuf: u64,
    cbuf: u64,
    pre: u64,
    mid: u64,
    /// Bytes per thread of the int8 quantizing buffer.
    q8_part: u64,
}

impl ScratchSizes {
    fn of(arch: &Architecture, batch: usize, dtype: DType, tiles: bool) -> ScratchSizes {
        let slots = (arch.layers() * arch.directions()) as u64;
        let h_stride = pack::panels(arch.output_size()) * LANES;
        let c_stride = pack::panels(arch.hidden()) * LANES;
        let chunk = (CHUNK_ROWS / batch.max(1)).max(1);
        let rows = (chunk * batch) as u64;
        let pre_row = (pack::panels(arch.hidden()) * arch.cell.gates() * LANES) as u64;
        let mid = if !arch.bidirectional && arch.layers() > 1 { 2 * rows * arch.output_size() as u64 } else { 0 };
        let q8_part = if dtype == DType::I8 {
            let k_in = (0..arch.layers()).map(|l| arch.layer_input_size(l)).max().unwrap_or(0);
            let k_rec = arch.output_size().max(arch.hidden());
            (lstmrt_kernels::int8_buffer_bytes(batch, k_in, k_rec, tiles) as u64).next_multiple_of(64)
        } else {
            0
        };
        let batch = batch as u64;
        ScratchSizes {
            h_stride,
            c_stride,
            chunk,
            hbuf: slots * 2 * batch * h_stride as u64,
            cbuf: slots * batch * c_stride as u64,
            pre: arch.directions() as u64 * rows * pre_row,
            mid,
            q8_part,
        }
    }

    /// Bytes of every buffer for `threads` threads (`cbuf` twice: `c` and `r`).
    fn bytes(&self, dtype: DType, threads: usize) -> u64 {
        let floats = self.hbuf + 2 * self.cbuf + self.pre + self.mid;
        let wide = if matches!(dtype, DType::F16 | DType::BF16) { 2 * WIDEN_BUFFER as u64 } else { 0 };
        let per_thread = wide * 4 + 2 * self.q8_part;
        floats * 4 + per_thread * threads.max(1) as u64
    }
}

/// A zeroed buffer of `len` elements, or [`Error::OutOfMemory`] naming `what`.
pub(crate) fn try_buffer<T: bytemuck::Pod>(len: u64, what: &str) -> Result<AlignedVec<T>, Error> {
    let bytes = len.saturating_mul(std::mem::size_of::<T>() as u64);
    let oom = || Error::OutOfMemory { what: what.to_string(), bytes };
    let len = usize::try_from(len).map_err(|_| oom())?;
    AlignedVec::try_zeroed(len).map_err(|_| oom())
}

/// `len` zero floats in a `Vec`, or [`Error::OutOfMemory`] naming `what`.
pub(crate) fn try_zeros(len: u64, what: &str) -> Result<Vec<f32>, Error> {
    let oom = || Error::OutOfMemory { what: what.to_string(), bytes: len.saturating_mul(4) };
    let n = usize::try_from(len).map_err(|_| oom())?;
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| oom())?;
    v.resize(n, 0.0);
    Ok(v)
}

impl Scratch {
    /// Bytes a scratch of `batch` rows for weights of `dtype` allocates once
    /// it has `threads` threads (what [`Scratch::try_new`] and
    /// [`Scratch::set_threads`] will ask for).
    pub(crate) fn bytes(arch: &Architecture, batch: usize, dtype: DType, tiles: bool, threads: usize) -> u64 {
        ScratchSizes::of(arch, batch, dtype, tiles).bytes(dtype, threads)
    }

    /// The buffers of a state of `batch` rows, or an error if the memory
    /// cannot be had.
    pub(crate) fn try_new(arch: &Architecture, batch: usize, dtype: DType, tiles: bool) -> Result<Scratch, Error> {
        let sizes = ScratchSizes::of(arch, batch, dtype, tiles);
        let what = "the state's kernel buffers";
        let mut scratch = Scratch {
            h_stride: sizes.h_stride,
            c_stride: sizes.c_stride,
            hbuf: try_buffer(sizes.hbuf, what)?,
            cbuf: try_buffer(sizes.cbuf, what)?,
            rbuf: try_buffer(sizes.cbuf, what)?,
            // Two halves for a bidirectional stack: its directions can run at once.
            pre: try_buffer(sizes.pre, what)?,
            mid: try_buffer(sizes.mid, what)?,
            seq: AlignedVec::zeroed(0),
            chunk: sizes.chunk,
            cur: vec![0; arch.layers() * arch.directions()],
            wide: AlignedVec::zeroed(0),
            q8: AlignedVec::zeroed(0),
            q8_part: 0,
            dtype,
            tiles,
            threads: 1,
        };
        scratch.fit(arch, batch, dtype, tiles);
        Ok(scratch)
    }

    /// Sizes the widening and quantizing buffers for `threads` threads.
    pub(crate) fn set_threads(&mut self, threads: usize) {
        self.threads = threads.max(1);
        self.size_parts();
    }

    /// Sizes the per-thread buffers for weights of `dtype` and an int8
    /// product with or without `tiles` (a no-op when the state was made by a
    /// model of these, as `new_batch_state` does).
    pub(crate) fn fit(&mut self, arch: &Architecture, batch: usize, dtype: DType, tiles: bool) {
        self.dtype = dtype;
        self.tiles = tiles;
        self.q8_part = ScratchSizes::of(arch, batch, dtype, tiles).q8_part as usize;
        self.size_parts();
    }

    fn size_parts(&mut self) {
        let widened = matches!(self.dtype, DType::F16 | DType::BF16);
        let need = if widened { 2 * self.threads * WIDEN_BUFFER } else { 0 };
        if self.wide.len() != need {
            self.wide = AlignedVec::zeroed(need);
        }
        let need = 2 * self.threads * self.q8_part;
        if self.q8.len() != need {
            self.q8 = AlignedVec::zeroed(need);
        }
    }

    /// Makes room for bidirectional inter-layer sequences of `steps` steps
    /// (the only buffer that depends on the sequence length).
    pub(crate) fn reserve_sequence(&mut self, arch: &Architecture, batch: usize, steps: usize) {
        if arch.bidirectional && arch.layers() > 1 {
            let need = 2 * steps * batch * arch.sequence_output_size();
            if self.seq.len() < need {
                self.seq.resize(need);
            }
        }
    }
}

/// The buffers of a run with per-row lengths (see [`Schedule`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct Packing {
    /// The batch's rows, longest first (ties in batch order).
    pub(crate) order: Vec<usize>,
    /// Per step up to the longest length, the rows still running.
    pub(crate) sizes: Vec<usize>,
    /// Prefix sums of `sizes`.
    pub(crate) offsets: Vec<usize>,
    /// Packed inputs and outputs.
    pub(crate) x: Vec<f32>,
    pub(crate) out: Vec<f32>,
}

impl Packing {
    pub(crate) fn plan(&mut self, lengths: &[usize]) {
        self.order.clear();
        self.order.extend(0..lengths.len());
        self.order.sort_by_key(|&b| std::cmp::Reverse(lengths[b]));
        let longest = lengths.iter().copied().max().unwrap_or(0);
        self.sizes.clear();
        // Lengths sorted longest first: step t runs the rows before the first one that is at most t long.
        let sorted = |i: usize| lengths[self.order[i]];
        let mut running = lengths.len();
        for t in 0..longest {
            while running > 0 && sorted(running - 1) <= t {
                running -= 1;
            }
            self.sizes.push(running);
        }
        self.offsets.clear();
        self.offsets.push(0);
        for t in 0..longest {
            self.offsets.push(self.offsets[t] + self.sizes[t]);
        }
    }
}

/// Which of a state's rows a run carries: scratch row `i < count` holds the
/// state's row `map[i]` (row `i` without a map).
#[derive(Clone, Copy)]
pub(crate) struct Rows<'a> {
    pub count: usize,
    pub map: Option<&'a [usize]>,
    /// Load `h` into both buffers of each slot, not only the current one.
    pub both: bool,
}

impl Rows<'_> {
    fn state_row(&self, i: usize) -> usize {
        self.map.map_or(i, |m| m[i])
    }
}

impl Scratch {
    /// Copies a state's public `h`/`c` (`[slots, batch, P]`, `[slots, batch, H]`)
    /// into the padded kernel buffers.
    pub(crate) fn load_state(&mut self, arch: &Architecture, batch: usize, h: &[f32], c: &[f32], rows: Rows<'_>) {
        let (p, hidden) = (arch.output_size(), arch.hidden());
        let (hs, cs) = (self.h_stride, self.c_stride);
        // Into the buffer `cur` names, which stays as it was: its parity also
        // sets the kernels' panel order, which should keep alternating from one
        // call to the next (see `body::run_steps`).
        for slot in 0..self.cur.len() {
            for i in 0..rows.count {
                let b = rows.state_row(i);
                let src = &h[(slot * batch + b) * p..][..p];
                for buf in [self.cur[slot], self.cur[slot] ^ 1].into_iter().take(1 + rows.both as usize) {
                    self.hbuf.as_mut_slice()[((slot * 2 + buf) * batch + i) * hs..][..p].copy_from_slice(src);
                }
                if arch.has_cell_state() {
                    let src = &c[(slot * batch + b) * hidden..][..hidden];
                    self.cbuf.as_mut_slice()[(slot * batch + i) * cs..][..hidden].copy_from_slice(src);
                }
            }
        }
    }

    /// Copies the latest `h`/`c` from the kernel buffers back to a state's.
    pub(crate) fn store_state(&self, arch: &Architecture, batch: usize, h: &mut [f32], c: &mut [f32], rows: Rows<'_>) {
        let (p, hidden) = (arch.output_size(), arch.hidden());
        let (hs, cs) = (self.h_stride, self.c_stride);
        for slot in 0..self.cur.len() {
            for i in 0..rows.count {
                let b = rows.state_row(i);
                let src = &self.hbuf.as_slice()[((slot * 2 + self.cur[slot]) * batch + i) * hs..][..p];
                h[(slot * batch + b) * p..][..p].copy_from_slice(src);
                if arch.has_cell_state() {
                    let src = &self.cbuf.as_slice()[(slot * batch + i) * cs..][..hidden];
                    c[(slot * batch + b) * hidden..][..hidden].copy_from_slice(src);
                }
            }
        }
    }
}
