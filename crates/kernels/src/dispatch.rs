//! One `#[target_feature]` entry point per kernel and tier: the generic bodies
//! of `body` are inlined into each, so they compile for that instruction set.
//! The tier is chosen by the caller (`Model` keeps the process-wide choice).

use std::ops::Range;

use half::{bf16, f16};

use crate::Isa;
use crate::blocking::Tier;
use crate::operands::{Job, LayerKernel, Panels, StepIo};
use crate::portable::Wide;
use crate::probe::{fma_generic, read_generic};
use crate::scalar::Scalar;
use crate::simd::Weight;
use crate::{gemm, step};
use lstmrt_format::{CellKind, DType};

/// A packed matrix as stored in the model: bytes, element type and shape.
#[derive(Clone, Copy)]
pub struct MatrixRef<'a> {
    pub bytes: &'a [u8],
    pub dtype: DType,
    pub panels: usize,
    pub k: usize,
    pub gates: usize,
}

impl<'a> MatrixRef<'a> {
    fn typed<W: Weight + bytemuck::Pod>(&self) -> Panels<'a, W> {
        Panels { data: bytemuck::cast_slice(self.bytes), panels: self.panels, k: self.k, gates: self.gates }
    }
}

/// One layer and direction as the model stores it (any dtype).
#[derive(Clone, Copy)]
pub struct LayerRef<'a> {
    pub cell: CellKind,
    pub clip: Option<f32>,
    pub input_forget: bool,
    pub linear_before_reset: bool,
    pub hidden: usize,
    pub out_size: usize,
    pub w_ih: MatrixRef<'a>,
    pub w_hh: MatrixRef<'a>,
    pub w_hr: Option<MatrixRef<'a>>,
    pub bias_x: &'a [f32],
    pub bias_h: &'a [f32],
    pub peephole: Option<&'a [f32]>,
}

impl<'a> LayerRef<'a> {
    fn typed<W: Weight + bytemuck::Pod>(&self) -> LayerKernel<'a, W> {
        LayerKernel {
            cell: self.cell,
            clip: self.clip,
            input_forget: self.input_forget,
            linear_before_reset: self.linear_before_reset,
            hidden: self.hidden,
            out_size: self.out_size,
            w_ih: self.w_ih.typed(),
            w_hh: self.w_hh.typed(),
            w_hr: self.w_hr.map(|m| m.typed()),
            bias_x: self.bias_x,
            bias_h: self.bias_h,
            peephole: self.peephole,
        }
    }
}

/// The arguments of [`run_steps`], bundled so each tier's entry point takes one.
pub struct StepsCall<'a, 'b> {
    pub layer: &'b LayerRef<'a>,
    pub io: &'b StepIo,
    pub job: &'b Job,
    pub rows: Range<usize>,
    pub panels: Range<usize>,
    pub proj_panels: Range<usize>,
    /// This thread's buffer of [`crate::WIDEN_BUFFER`] floats, for f16/bf16
    /// weights (may be null for f32).
    pub wide: *mut f32,
    pub sync: &'b dyn Fn(),
}

/// The arguments of [`gemm`].
pub struct GemmCall<'a> {
    pub w: MatrixRef<'a>,
    pub bias: &'a [f32],
    pub x: *const f32,
    pub x_stride: usize,
    pub rows: usize,
    pub out: *mut f32,
    pub panels: Range<usize>,
    /// This thread's buffer of [`crate::WIDEN_BUFFER`] floats, for f16/bf16
    /// weights (may be null for f32).
    pub wide: *mut f32,
}

impl<'a> GemmCall<'a> {
    fn typed<W: Weight + bytemuck::Pod>(&self) -> gemm::Gemm<'a, W> {
        gemm::Gemm {
            w: self.w.typed(),
            bias: self.bias,
            x: self.x,
            x_stride: self.x_stride,
            rows: self.rows,
            out: self.out,
            wide: self.wide,
        }
    }
}

/// One generic entry per weight type, so each tier's code for a dtype is a
/// function of its own (one function for all would take minutes to optimise).
macro_rules! steps_for {
    ($name:ident, $w:ty) => {
        #[inline(always)]
        unsafe fn $name<S: Tier>(c: &StepsCall) {
            // SAFETY: forwarded from `run_steps`.
            unsafe {
                let _ftz = FlushDenormals::new();
                let (rows, panels, proj) = (c.rows.clone(), c.panels.clone(), c.proj_panels.clone());
                step::run_steps::<S, $w>(&c.layer.typed(), c.io, c.job, rows, panels, proj, c.wide, c.sync)
            }
        }
    };
}
steps_for!(steps_f32, f32);
steps_for!(steps_f16, f16);
steps_for!(steps_bf16, bf16);

#[inline(always)]
unsafe fn gemm_generic<S: Tier>(c: &GemmCall) {
    // SAFETY: forwarded from `gemm`.
    unsafe {
        let _ftz = FlushDenormals::new();
        let p = c.panels.clone();
        match c.w.dtype {
            DType::F32 => gemm::gemm::<S, f32>(&c.typed(), p),
            DType::F16 => gemm::gemm::<S, f16>(&c.typed(), p),
            DType::BF16 => gemm::gemm::<S, bf16>(&c.typed(), p),
        }
    }
}

/// Defines `$name(isa, call)`, which runs `$generic::<Tier>(call)` for the
/// tier `isa`: the x86 tiers through `#[target_feature]` functions, into which
/// the `#[inline(always)]` generic body is compiled for that instruction set.
macro_rules! tiered {
    ($(#[$doc:meta])* $vis:vis unsafe fn $name:ident($arg:ident: &$ty:ty) -> $ret:ty = $generic:ident;) => {
        $(#[$doc])*
        $vis unsafe fn $name(isa: Isa, $arg: &$ty) -> $ret {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma,f16c")]
            unsafe fn avx2($arg: &$ty) -> $ret {
                // SAFETY: only reached when the CPU has AVX2, FMA and F16C.
                unsafe { $generic::<crate::avx2::Avx2>($arg) }
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")]
            unsafe fn avx512($arg: &$ty) -> $ret {
                // SAFETY: only reached when the CPU has these AVX-512 subsets.
                unsafe { $generic::<crate::avx512::Avx512>($arg) }
            }
            debug_assert!(isa.available());
            // SAFETY: the tier is available (checked when it was chosen); the
            // rest is the caller's contract, stated on this function.
            unsafe {
                match isa {
                    Isa::Scalar => $generic::<Scalar>($arg),
                    Isa::Wide => $generic::<Wide>($arg),
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 => avx2($arg),
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => avx512($arg),
                    #[cfg(not(target_arch = "x86_64"))]
                    Isa::Avx2 | Isa::Avx512 => unreachable!("x86 tiers are never available here"),
                }
            }
        }
    };
}

tiered! {
    unsafe fn run_steps_f32(c: &StepsCall<'_, '_>) -> () = steps_f32;
}
tiered! {
    unsafe fn run_steps_f16(c: &StepsCall<'_, '_>) -> () = steps_f16;
}
tiered! {
    unsafe fn run_steps_bf16(c: &StepsCall<'_, '_>) -> () = steps_bf16;
}

/// Runs timesteps of one layer and direction on tier `isa`.
///
/// # Safety
/// `isa` must be available on this CPU; the buffers in `io` and `job` must be
/// sized for the layer (see `engine`), and threads sharing them must cover
/// disjoint rows or panels and synchronise through `sync`.
pub unsafe fn run_steps(isa: Isa, c: &StepsCall<'_, '_>) {
    // SAFETY: forwarded.
    unsafe {
        match c.layer.w_hh.dtype {
            DType::F32 => run_steps_f32(isa, c),
            DType::F16 => run_steps_f16(isa, c),
            DType::BF16 => run_steps_bf16(isa, c),
        }
    }
}

tiered! {
    /// The input projection of many rows at once, on tier `isa`.
    ///
    /// # Safety
    /// `isa` must be available; `x` must hold `rows` rows of `w.k` floats
    /// `x_stride` apart; `out` must hold `rows` rows of `w.panels * w.gates * 16` floats.
    pub unsafe fn gemm(c: &GemmCall<'_>) -> () = gemm_generic;
}

/// Sets flush-to-zero and denormals-are-zero for the current thread while
/// alive, so a kernel's speed never depends on denormal inputs; restores the
/// previous mode on drop.
pub struct FlushDenormals {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

impl FlushDenormals {
    #[inline(always)]
    pub(crate) fn new() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let mut saved: u32 = 0;
            // SAFETY: stmxcsr/ldmxcsr read and write this thread's SSE control
            // register (present on every x86-64); bits 15 (FTZ) and 6 (DAZ)
            // only change how denormals are treated.
            unsafe {
                std::arch::asm!("stmxcsr [{}]", in(reg) &mut saved, options(nostack));
                let mode = saved | 0x8040;
                std::arch::asm!("ldmxcsr [{}]", in(reg) &mode, options(nostack, readonly));
            }
            FlushDenormals { saved }
        }
        #[cfg(not(target_arch = "x86_64"))]
        FlushDenormals {}
    }
}

impl Drop for FlushDenormals {
    #[inline(always)]
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: restores the value read in `new`.
        unsafe {
            std::arch::asm!("ldmxcsr [{}]", in(reg) &self.saved, options(nostack, readonly));
        }
    }
}

/// An activation the kernels compute, for [`activation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Sigmoid,
    Tanh,
}

/// The arguments of [`activation`].
struct ActivationCall<'a> {
    which: Activation,
    xs: &'a [f32],
    out: *mut f32,
}

#[inline(always)]
unsafe fn activation_generic<S: Tier>(c: &ActivationCall) {
    use crate::simd::{LANES, sigmoid, tanh};
    let _ftz = FlushDenormals::new();
    for (i, x) in c.xs.chunks_exact(LANES).enumerate() {
        // SAFETY: each chunk holds 16 floats and `out` as many as `xs`.
        unsafe {
            let v = S::load(x.as_ptr());
            let r = match c.which {
                Activation::Sigmoid => sigmoid::<S>(v),
                Activation::Tanh => tanh::<S>(v),
            };
            S::store(c.out.add(i * LANES), r);
        }
    }
}

tiered! {
    /// # Safety
    /// `isa` available; `out` has room for `xs.len()` floats, a multiple of 16.
    unsafe fn activation_on(c: &ActivationCall<'_>) -> () = activation_generic;
}

/// Applies the kernels' own sigmoid or tanh of tier `isa` to `xs` (a multiple
/// of 16 values), exactly as a recurrent step computes it. For accuracy tests.
pub fn activation(isa: Isa, which: Activation, xs: &[f32], out: &mut [f32]) -> Result<(), crate::IsaError> {
    if !isa.available() {
        return Err(crate::IsaError::unavailable(isa, false));
    }
    assert!(xs.len() == out.len() && xs.len().is_multiple_of(16), "activation takes whole vectors of 16");
    // SAFETY: the tier is available and `out` is as long as `xs`.
    unsafe { activation_on(isa, &ActivationCall { which, xs, out: out.as_mut_ptr() }) };
    Ok(())
}

tiered! {
    /// The FMA-peak probe on tier `isa`.
    ///
    /// # Safety
    /// `isa` must be available.
    pub unsafe fn fma_probe(c: &crate::probe::FmaCall) -> f32 = fma_generic;
}

tiered! {
    /// The read-bandwidth probe on tier `isa`.
    ///
    /// # Safety
    /// `isa` must be available; `bytes` must be 64-byte aligned.
    pub unsafe fn read_probe(c: &crate::probe::ReadCall<'_>) -> f32 = read_generic;
}
