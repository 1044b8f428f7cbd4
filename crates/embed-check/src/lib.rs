//! lstmrt used the way an embedder uses it: the `lstmrt` crate alone, built
//! in the dependent's debug profile (opt-level 0, where the kernels' inlined
//! bodies get no stack-slot sharing), called from threads with the 2 MiB stack
//! of `std::thread` and of async runtimes' workers.
//!
//! [`check`] runs one model on every tier this CPU has, stepping and over a
//! sequence, and compares it with the reference. `tests/debug_build.rs` runs
//! it for every dtype, batch 1 and 32, on such a thread; CI runs that test in
//! the dev profile.

use lstmrt::format::{Architecture, CellKind, DType, Metadata};
use lstmrt::reference::{self, max_abs_diff};
use lstmrt::rng::Rng;
use lstmrt::{Isa, Model, ModelWriter, Weights};

/// The stack of a `std::thread` (and of tokio's workers) by default.
pub const THREAD_STACK: usize = 2 << 20;

/// One model to check.
#[derive(Debug, Clone)]
pub struct Case {
    /// The architecture.
    pub arch: Architecture,
    /// Weight dtype in the file.
    pub dtype: DType,
    /// Sequences run together.
    pub batch: usize,
    /// Timesteps per sequence.
    pub steps: usize,
    /// Threads the state uses.
    pub threads: usize,
}

/// Builds the case's model (random weights), runs it on every available
/// tier, over the whole sequence and step by step, and returns the largest
/// difference from the reference (NaN counts as infinite).
pub fn check(case: &Case) -> Result<f32, String> {
    let meta = Metadata::new(case.arch.clone());
    let weights = Weights::random(&meta, &mut Rng::new(11), 1.0);
    let bytes = ModelWriter::new(&meta, &weights).dtype(case.dtype).to_bytes().map_err(|e| e.to_string())?;
    let base = Model::from_bytes(&bytes).map_err(|e| e.to_string())?;
    // The reference runs on the weights as stored (f16/bf16 rounded).
    let stored = base.weights();
    let input = case.arch.input_size as usize;
    let mut rng = Rng::new(5);
    let xs: Vec<f32> = (0..case.steps * case.batch * input).map(|_| rng.uniform_f32(-1.0, 1.0)).collect();
    let want = reference::run(&case.arch, &stored, &xs, case.batch, None, None).output;
    let mut worst = 0.0f32;
    for isa in Isa::available_tiers() {
        let model = Model::from_bytes(&bytes).and_then(|m| m.with_isa(isa)).map_err(|e| e.to_string())?;
        let mut state = model.new_batch_state(case.batch).map_err(|e| e.to_string())?;
        state.set_threads(case.threads);
        let whole = model.run(&mut state, &xs).map_err(|e| format!("{isa}: {e}"))?.to_vec();
        worst = worst.max(max_abs_diff(&whole, &want));
        if !case.arch.bidirectional {
            state.reset();
            let per_step = case.batch * input;
            let mut stepped = Vec::with_capacity(want.len());
            for x in xs.chunks(per_step) {
                stepped.extend_from_slice(model.step(&mut state, x).map_err(|e| format!("{isa}: {e}"))?);
            }
            worst = worst.max(max_abs_diff(&stepped, &want));
        }
    }
    Ok(worst)
}

/// Runs `f` on a new thread with a [`THREAD_STACK`]-byte stack.
pub fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(THREAD_STACK)
        .spawn(f)
        .expect("spawn a thread")
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// The cases: the hidden sizes where the debug build once overflowed its
/// stack (H = 512 f32 and f16, H = 128 bf16), and int8 at H = 512, every
/// cell, projection and bidirectional layers, each at batch 1 and 32.
pub fn cases() -> Vec<Case> {
    let lstm = |i: usize, h: usize| Architecture::new(CellKind::Lstm, i, h, 1);
    let mut archs = vec![
        (lstm(512, 512), DType::F32),
        (lstm(512, 512), DType::F16),
        (lstm(128, 128), DType::BF16),
        (lstm(512, 512), DType::I8),
    ];
    let mut proj = Architecture::new(CellKind::Lstm, 24, 40, 2);
    proj.proj_size = 16;
    let mut bi = Architecture::new(CellKind::Gru, 12, 48, 2);
    bi.bidirectional = true;
    for dtype in [DType::F32, DType::F16, DType::BF16, DType::I8] {
        archs.push((proj.clone(), dtype));
        archs.push((bi.clone(), dtype));
        archs.push((Architecture::new(CellKind::Gru, 20, 64, 1), dtype));
        archs.push((Architecture::new(CellKind::RnnTanh, 20, 64, 1), dtype));
    }
    let mut out = Vec::new();
    for (arch, dtype) in archs {
        for batch in [1, 32] {
            // Enough steps to cross a GEMM chunk at batch 1; few at batch 32 (opt-level 0 is slow).
            let steps = if batch == 1 { 3 } else { 2 };
            let threads = if batch == 32 { 2 } else { 1 };
            out.push(Case { arch: arch.clone(), dtype, batch, steps, threads });
        }
    }
    out
}
