//! Roofline bounds: the fastest a recurrent step can possibly run on this
//! machine, measured on this machine, in this process.
//!
//! Two probes, run on the same instruction-set tier as the kernels: the
//! single-core FMA peak, and the single-core read bandwidth at a given working
//! set size (weights loaded, and for f16/bf16 widened, exactly as the kernels
//! load them). From them, per timestep:
//!
//! - **sequence bound** (whole sequence known): the input projection as a GEMM
//!   at FMA peak, plus, per layer and direction, reading the recurrent weights
//!   (`W_hh`, and `W_hr` with projection) once at the bandwidth of their
//!   working set — or their FLOPs at peak, whichever is larger (large batches);
//! - **stream bound** (one call per step): reading all weights of all layers
//!   once at the bandwidth of their combined working set, or all FLOPs at
//!   peak, whichever is larger.
//!
//! Bandwidths depend on where the working set fits (L1, L2, L3, DRAM), so
//! each is measured at the exact size in question and cached.

use std::time::Instant;

use lstmrt_format::panel::LANES;
use lstmrt_format::panel::panels;
use lstmrt_format::{Architecture, DType};
use lstmrt_kernels::probe::{FmaCall, ReadCall};
use lstmrt_kernels::{Isa, dispatch};

/// Measures and caches this machine's FMA peak and read bandwidths.
#[derive(Debug, Clone)]
pub struct Probe {
    isa: Isa,
    peak_gflops: f64,
    /// The AMX tiles' int8 peak in GOP/s (2 per multiply-add), on the amx tier.
    tile_gops: Option<f64>,
    bandwidths: Vec<(usize, DType, f64)>,
}

/// Work and bounds of one timestep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    /// Nanoseconds per step when the whole sequence is known.
    pub sequence_ns: f64,
    /// Nanoseconds per step when each step is its own call.
    pub stream_ns: f64,
    /// FLOPs per step of the input projections (`W_ih x`).
    pub input_flops: f64,
    /// FLOPs per step of the recurrences (`W_hh h`, `W_hr r`).
    pub recurrent_flops: f64,
    /// Bytes of recurrent weights read per step (all layers and directions).
    pub recurrent_bytes: f64,
    /// Bytes of all weights.
    pub all_bytes: f64,
}

impl Bounds {
    /// All FLOPs of one step.
    pub fn flops(&self) -> f64 {
        self.input_flops + self.recurrent_flops
    }
}

/// Best of `reps` timings of `f`, in seconds.
fn best_of(reps: usize, mut f: impl FnMut()) -> f64 {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

impl Probe {
    /// Measures the FMA peak of tier `isa` (about 0.1 s).
    pub fn new(isa: Isa) -> Probe {
        assert!(isa.available(), "the {isa} tier is not available on this CPU");
        let call = FmaCall { iters: 1 << 20 };
        let mut sink = 0.0;
        // SAFETY: the tier is available.
        let seconds = best_of(7, || sink += unsafe { dispatch::fma_probe(isa, &call) });
        std::hint::black_box(sink);
        let tile_gops = (isa == Isa::Amx).then(|| {
            let mut macs = 0;
            let seconds = best_of(7, || macs = lstmrt_kernels::amx::probe(1 << 16).expect("the amx tier runs tiles"));
            2.0 * macs as f64 / seconds / 1e9
        });
        Probe { isa, peak_gflops: call.flops() / seconds / 1e9, tile_gops, bandwidths: Vec::new() }
    }

    /// The AMX tiles' single-core int8 peak in GOP/s (2 per multiply-add),
    /// measured on the amx tier (else `None`).
    pub fn tile_gops(&self) -> Option<f64> {
        self.tile_gops
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Single-core FMA peak in GFLOP/s.
    pub fn peak_gflops(&self) -> f64 {
        self.peak_gflops
    }

    /// Single-core read bandwidth in GB/s of weight bytes, when a working set
    /// of `bytes` is read over and over (cached per size and dtype).
    pub fn bandwidth(&mut self, bytes: usize, dtype: DType) -> f64 {
        let block = 8 * LANES * dtype.size() as usize;
        let bytes = bytes.div_ceil(block).max(1) * block;
        if let Some(&(_, _, gbs)) = self.bandwidths.iter().find(|b| b.0 == bytes && b.1 == dtype) {
            return gbs;
        }
        let buffer = lstmrt_kernels::AlignedVec::<u8>::from_slice(&vec![0x3c; bytes]);
        // Read at least 64 MiB per timing so short sets are timed reliably.
        let passes = (64usize << 20).div_ceil(bytes).max(1);
        let call = ReadCall { bytes: buffer.as_slice(), dtype, passes };
        let mut sink = 0.0;
        // SAFETY: the tier is available and the buffer is 64-byte aligned.
        sink += unsafe { dispatch::read_probe(self.isa, &ReadCall { passes: 1, ..call }) };
        // SAFETY: `call` reads `bytes` floats of its own buffer on this tier, which is available.
        let seconds = best_of(5, || sink += unsafe { dispatch::read_probe(self.isa, &call) });
        std::hint::black_box(sink);
        let gbs = (bytes * passes) as f64 / seconds / 1e9;
        self.bandwidths.push((bytes, dtype, gbs));
        gbs
    }

    /// The bounds of one timestep of `arch` with weights in `dtype`, for `batch` sequences.
    pub fn bounds(&mut self, arch: &Architecture, dtype: DType, batch: usize) -> Bounds {
        let (g, h, p) = (arch.cell.gates(), arch.hidden(), arch.output_size());
        let size = dtype.size() as f64;
        // One vpdpbusd does 64 multiply-adds where an FMA does 16, at the same
        // issue rate on this core: the int8 compute peak is taken as 4x the
        // measured FMA peak (an estimate; the read bound is measured).
        // On the amx tier, batches of enough rows multiply on the tiles (for
        // one thread; split rows and per-thread rows aside): their measured
        // peak bounds them instead.
        let flops_per_ns = match (dtype, self.tile_gops) {
            (DType::I8, Some(tiles)) if batch >= lstmrt_kernels::INT8_TILE_MIN_ROWS => tiles,
            (DType::I8, _) => 4.0 * self.peak_gflops,
            _ => self.peak_gflops,
        };
        let b = batch as f64;
        let (mut input_flops, mut recurrent_flops, mut recurrent_bytes, mut all_bytes) = (0.0, 0.0, 0.0, 0.0);
        let mut sequence_ns = 0.0;
        for layer in 0..arch.layers() {
            let input = arch.layer_input_size(layer);
            for _ in 0..arch.directions() {
                // Packed sizes, padding included: what the kernels actually read.
                let ih = (panels(h) * LANES * g * input) as f64;
                let mut hh = (panels(h) * LANES * g * p) as f64;
                let mut rec_flops = 2.0 * b * (g * h * p) as f64;
                if arch.proj_size > 0 {
                    hh += (panels(p) * LANES * h) as f64;
                    rec_flops += 2.0 * b * (p * h) as f64;
                }
                let gemm_flops = 2.0 * b * (g * h * input) as f64;
                let rec_bytes = hh * size;
                let read_ns = rec_bytes / self.bandwidth(rec_bytes as usize, dtype);
                sequence_ns += gemm_flops / flops_per_ns + read_ns.max(rec_flops / flops_per_ns);
                input_flops += gemm_flops;
                recurrent_flops += rec_flops;
                recurrent_bytes += rec_bytes;
                all_bytes += (ih + hh) * size;
            }
        }
        let stream_read = all_bytes / self.bandwidth(all_bytes as usize, dtype);
        let stream_ns = stream_read.max((input_flops + recurrent_flops) / flops_per_ns);
        Bounds { sequence_ns, stream_ns, input_flops, recurrent_flops, recurrent_bytes, all_bytes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lstmrt_format::CellKind;

    #[test]
    fn bounds_count_the_work_of_a_step() {
        let mut probe = Probe::new(Isa::best());
        assert!(probe.peak_gflops() > 0.1);
        let arch = Architecture::new(CellKind::Lstm, 32, 64, 2);
        let b = probe.bounds(&arch, DType::F32, 1);
        // Layer 0: 4*64*32 input MACs, layer 1: 4*64*64; each 4*64*64 recurrent.
        assert_eq!(b.input_flops, 2.0 * (4.0 * 64.0 * 32.0 + 4.0 * 64.0 * 64.0));
        assert_eq!(b.recurrent_flops, 2.0 * 2.0 * 4.0 * 64.0 * 64.0);
        assert_eq!(b.recurrent_bytes, 2.0 * 4.0 * 64.0 * 64.0 * 4.0);
        assert!(b.sequence_ns > 0.0 && b.stream_ns > 0.0);
        // f16 halves the bytes.
        assert_eq!(probe.bounds(&arch, DType::F16, 1).recurrent_bytes, b.recurrent_bytes / 2.0);
        // int8 quarters them.
        assert_eq!(probe.bounds(&arch, DType::I8, 1).recurrent_bytes, b.recurrent_bytes / 4.0);
    }
}
