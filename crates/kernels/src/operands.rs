//! What the kernels read and write: packed weight panels, one layer's
//! weights and options, the state buffers of a step, and a run of timesteps.

use lstmrt_format::CellKind;
use lstmrt_format::panel::LANES;

/// A packed weight matrix: `[panels][k][gates][16]` elements.
#[derive(Clone, Copy)]
pub(crate) struct Panels<'a, W> {
    pub data: &'a [W],
    pub panels: usize,
    pub k: usize,
    pub gates: usize,
}

impl<W> Panels<'_, W> {
    /// First element of panel `p` (k = 0, gate 0).
    #[inline(always)]
    pub(crate) fn panel(&self, p: usize) -> *const W {
        debug_assert!(p < self.panels);
        // In bounds: the data holds `panels * k * gates * 16` elements.
        self.data[p * self.k * self.gates * LANES..].as_ptr()
    }

    /// Elements between consecutive input indices.
    #[inline(always)]
    pub(crate) fn stride(&self) -> usize {
        self.gates * LANES
    }
}

/// The weights and options of one layer and direction, typed for the kernels.
pub(crate) struct LayerKernel<'a, W> {
    pub cell: CellKind,
    pub clip: Option<f32>,
    pub input_forget: bool,
    pub linear_before_reset: bool,
    /// H: units per gate.
    pub hidden: usize,
    /// P: size of `h` (projection size or H).
    pub out_size: usize,
    pub w_ih: Panels<'a, W>,
    pub w_hh: Panels<'a, W>,
    /// `[P, H]` packed as 1 gate over P units.
    pub w_hr: Option<Panels<'a, W>>,
    /// `[panels][G][16]`: biases added to the input part (LSTM/RNN: `b_ih + b_hh`;
    /// GRU: `b_ir + b_hr, b_iz + b_hz, b_in`).
    pub bias_x: &'a [f32],
    /// `[panels][G][16]`: GRU only, `0, 0, b_hn`.
    pub bias_h: &'a [f32],
    /// `[panels][3][16]`: peepholes `i, f, o`.
    pub peephole: Option<&'a [f32]>,
}

/// The buffers one layer and direction's recurrence reads and writes. Raw
/// pointers because several threads share them, each writing disjoint panels
/// or rows between barriers.
#[derive(Clone, Copy)]
pub struct StepIo {
    pub batch: usize,
    /// Two `[batch][h_stride]` buffers: `h_{t-1}` in `h[cur]`, `h_t` written to the other.
    pub h: [*mut f32; 2],
    pub h_stride: usize,
    /// `[batch][c_stride]`: LSTM `c`; GRU (ONNX form) `z`.
    pub c: *mut f32,
    /// `[batch][c_stride]`: LSTM with projection `o tanh(c')`; GRU (ONNX form) `r h`.
    pub r: *mut f32,
    pub c_stride: usize,
}

// SAFETY: the pointers are shared by the threads of one `run_steps` split;
// each thread writes only its own rows or panels, and reads what others wrote
// only after the barrier (`sync`) that follows the write.
unsafe impl Send for StepIo {}
// SAFETY: as for `Send` just above.
unsafe impl Sync for StepIo {}

/// Where the input part of the pre-activations comes from.
#[derive(Clone, Copy)]
pub enum Source {
    /// Precomputed by the GEMM (`dispatch::gemm`): `[steps][batch][row_stride]`, biases included.
    /// Writable: with many rows, LSTM and RNN steps add `W_hh h` into it in
    /// cache-sized blocks of `k` before the gates are computed.
    Pre { ptr: *mut f32, row_stride: usize },
    /// Computed in the same pass from the inputs `[steps][batch][x_stride]`.
    Fused { x: *const f32, x_stride: usize },
}

// SAFETY: as for `StepIo`: read-only pointers to inputs, and an output that
// threads write in disjoint rows or panels.
unsafe impl Send for Job {}
// SAFETY: as for `Send` just above.
unsafe impl Sync for Job {}

/// A run of timesteps of one layer and direction.
#[derive(Clone, Copy)]
pub struct Job {
    pub steps: usize,
    /// Visit the steps from the last to the first (backward direction).
    pub reverse: bool,
    pub source: Source,
    /// Output `h` of step `t`, row `b`, unit `u` goes to `out[t*out_step + b*out_row + u]`.
    pub out: *mut f32,
    pub out_step: usize,
    pub out_row: usize,
    /// Which of `io.h` holds `h_{t-1}` at the start.
    pub cur: usize,
}
