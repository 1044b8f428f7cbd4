//! One `#[target_feature]` entry point per kernel and tier: the generic bodies
//! of `body` are inlined into each, so they compile for that instruction set.
//! The tier is chosen by the caller (`Model` keeps the process-wide choice).

use std::ops::Range;

use half::{bf16, f16};

use crate::Isa;
use crate::amx::{NoTiles, Tiles};
use crate::blocking::Tier;
use crate::int8::{Dot8, Gemm8, Int8Dot, Layer8, Mat8};
use crate::operands::{Job, LayerKernel, Panels, StepIo};
use crate::portable::Wide;
use crate::probe::{fma_generic, read_generic};
use crate::scalar::Scalar;
use crate::simd::Weight;
use crate::{drive, gemm};
use lstmrt_format::{CellKind, DType};

/// A packed matrix as stored in the model: bytes, element type and shape.
#[derive(Clone, Copy)]
pub struct MatrixRef<'a> {
    pub bytes: &'a [u8],
    pub dtype: DType,
    pub panels: usize,
    /// Inputs per row (`K`).
    pub k: usize,
    pub gates: usize,
    /// int8 only: each row's scale, `[panels][gates][16]` (else empty).
    pub scale: &'a [f32],
    /// int8 only: each row's sum of its int8 weights, `[panels][gates][16]` (else empty).
    pub colsum: &'a [i32],
    /// int8 only: the activations this matrix multiplies take two bytes
    /// (as fine as 16 bits, two products per weight) rather than one.
    pub split: bool,
}

impl<'a> MatrixRef<'a> {
    /// The float kernels' view. For int8 matrices only the shape is
    /// meaningful (the int8 kernels read [`MatrixRef::mat8`]).
    fn typed<W: bytemuck::Pod>(&self) -> Panels<'a, W> {
        Panels { data: bytemuck::cast_slice(self.bytes), panels: self.panels, k: self.k, gates: self.gates }
    }

    fn mat8(&self) -> Mat8<'a> {
        let quads = self.k.div_ceil(lstmrt_format::panel::K_GROUP);
        let data: &[i8] = bytemuck::cast_slice(self.bytes);
        let rows = self.panels * self.gates * crate::simd::LANES;
        assert!(
            data.len() == self.panels * quads * self.gates * 64
                && self.scale.len() == rows
                && self.colsum.len() == rows,
            "int8 matrix with {} bytes, {} scales and {} sums for shape {}x{}x{}",
            data.len(),
            self.scale.len(),
            self.colsum.len(),
            self.panels,
            self.k,
            self.gates
        );
        Mat8 {
            data,
            panels: self.panels,
            quads,
            gates: self.gates,
            scale: self.scale,
            colsum: self.colsum,
            split: self.split,
        }
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
    fn typed<W: bytemuck::Pod>(&self) -> LayerKernel<'a, W> {
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
    /// This thread's buffer of [`crate::int8_buffer_bytes`] bytes, for int8
    /// weights (may be null otherwise).
    pub q8: *mut u8,
    /// Whether `q8` was sized with room for tiles (`tiles` true): a tile
    /// product needs it.
    pub q8_tiles: bool,
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
    /// This thread's buffer of [`crate::int8_buffer_bytes`] bytes, for int8
    /// weights (may be null otherwise).
    pub q8: *mut u8,
    /// Whether `q8` was sized with room for tiles.
    pub q8_tiles: bool,
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
            // SAFETY: `run_steps`'s contract: the tier is available, the
            // buffers are sized for the layer, threads cover disjoint parts.
            unsafe {
                let _ftz = FlushDenormals::new();
                let (rows, panels, proj) = (c.rows.clone(), c.panels.clone(), c.proj_panels.clone());
                drive::run_steps::<S, $w>(&c.layer.typed(), c.io, c.job, rows, panels, proj, c.wide, c.sync)
            }
        }
    };
}
steps_for!(steps_f32, f32);
#[cfg(not(target_family = "wasm"))]
steps_for!(steps_f16, f16);
#[cfg(not(target_family = "wasm"))]
steps_for!(steps_bf16, bf16);
#[cfg(target_arch = "x86_64")]
steps_for!(steps_bf16_dot, crate::simd::Bf16Dot);

/// Whether bf16 weights on tier `isa` multiply with bf16 dot products
/// (`vdpbf16ps`) in the blocked paths: the avx512 and amx tiers on a CPU
/// with AVX512-BF16 (AMD Zen 4 and later, Intel Cooper Lake and Sapphire
/// Rapids and later). Every activation is then rounded to bf16 (to
/// nearest, ties to even) where it meets bf16 weights, on every path, so a
/// row's result does not depend on the batch: the input projection of many
/// rows and the recurrence of batches of 6 rows or more use the dot
/// products; one or a few rows widen the weights to f32 as they load. On
/// other tiers and CPUs bf16 weights meet f32 activations.
pub fn bf16_dot(isa: Isa) -> bool {
    isa.available() && bf16_dot_on(isa)
}

/// [`bf16_dot`] for a tier already known to be available (the kernels'
/// entry points are only called with one): one cached feature check per
/// call rather than the tier's whole availability test.
#[inline(always)]
fn bf16_dot_on(isa: Isa) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        matches!(isa, Isa::Avx512 | Isa::Amx) && is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = isa;
        false
    }
}

/// bf16 weights with dot products: the avx512 tier's code with AVX512-BF16.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c,avx512bf16")]
unsafe fn run_steps_bf16_dot(c: &StepsCall<'_, '_>) {
    // SAFETY: only reached where `bf16_dot_on` holds for an available tier: the CPU has these subsets.
    unsafe { steps_bf16_dot::<crate::avx512::Avx512>(c) }
}

/// The input projection of bf16 weights with dot products (as just above).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c,avx512bf16")]
unsafe fn gemm_bf16_dot(c: &GemmCall<'_>) {
    // SAFETY: only reached where `bf16_dot_on` holds for an available tier; `gemm`'s contract for the rest.
    unsafe {
        let _ftz = FlushDenormals::new();
        drive::gemm::<crate::avx512::Avx512, crate::simd::Bf16Dot>(&c.typed(), c.panels.clone())
    }
}

#[inline(always)]
unsafe fn gemm_generic<S: Tier>(c: &GemmCall) {
    // SAFETY: `gemm`'s contract: the tier is available; `x`, `out`, `wide`
    // hold the rows and panels the call names.
    unsafe {
        let _ftz = FlushDenormals::new();
        let p = c.panels.clone();
        match c.w.dtype {
            DType::F32 => drive::gemm::<S, f32>(&c.typed(), p),
            #[cfg(not(target_family = "wasm"))]
            DType::F16 => drive::gemm::<S, f16>(&c.typed(), p),
            #[cfg(not(target_family = "wasm"))]
            DType::BF16 => drive::gemm::<S, bf16>(&c.typed(), p),
            #[cfg(target_family = "wasm")]
            DType::F16 | DType::BF16 => unreachable!("{WASM_HALF}"),
            DType::I8 => unreachable!("int8 GEMMs go through gemm_int8"),
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
                    #[cfg(not(target_family = "wasm"))]
                    Isa::Scalar => $generic::<Scalar>($arg),
                    #[cfg(target_family = "wasm")]
                    Isa::Scalar => unreachable!("a wasm build has no scalar tier"),
                    Isa::Wide => $generic::<Wide>($arg),
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 => avx2($arg),
                    // The amx tier's float code is the avx512 tier's.
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 | Isa::Amx => avx512($arg),
                    #[cfg(not(target_arch = "x86_64"))]
                    Isa::Avx2 | Isa::Avx512 | Isa::Amx => unreachable!("x86 tiers are never available here"),
                }
            }
        }
    };
}

tiered! {
    unsafe fn run_steps_f32(c: &StepsCall<'_, '_>) -> () = steps_f32;
}
#[cfg(not(target_family = "wasm"))]
tiered! {
    unsafe fn run_steps_f16(c: &StepsCall<'_, '_>) -> () = steps_f16;
}
#[cfg(not(target_family = "wasm"))]
tiered! {
    unsafe fn run_steps_bf16(c: &StepsCall<'_, '_>) -> () = steps_bf16;
}

/// Why a wasm build has no f16/bf16 kernels: a model loaded there widens
/// them to f32 once (`lstmrt::Model`), so the `.wasm` carries one float
/// kernel instead of three (the file a page downloads stays half the size).
#[cfg(target_family = "wasm")]
const WASM_HALF: &str = "a wasm build widens f16/bf16 weights to f32 when it loads a model";
/// The same for int8 weights: a wasm build keeps their f32 values.
#[cfg(target_family = "wasm")]
const WASM_INT8: &str = "a wasm build keeps int8 weights as their f32 values when it loads a model";

/// Runs timesteps of one layer and direction on tier `isa` (int8 weights:
/// with the product `dot`).
///
/// # Safety
/// `isa` and `dot` must be available on this CPU; the buffers in `io` and `job` must be
/// sized for the layer (see `engine`), and threads sharing them must cover
/// disjoint rows or panels and synchronise through `sync`.
pub unsafe fn run_steps(isa: Isa, dot: Int8Dot, c: &StepsCall<'_, '_>) {
    // WebAssembly has no int8 kernels (weights are f32 by then).
    #[cfg(target_family = "wasm")]
    let _ = dot;
    // SAFETY: this function's contract (the tier and product are
    // available, the buffers sized), which each entry point states again.
    unsafe {
        match c.layer.w_hh.dtype {
            DType::F32 => run_steps_f32(isa, c),
            #[cfg(not(target_family = "wasm"))]
            DType::F16 => run_steps_f16(isa, c),
            #[cfg(target_arch = "x86_64")]
            DType::BF16 if bf16_dot_on(isa) => run_steps_bf16_dot(c),
            #[cfg(not(target_family = "wasm"))]
            DType::BF16 => run_steps_bf16(isa, c),
            #[cfg(target_family = "wasm")]
            DType::F16 | DType::BF16 => unreachable!("{WASM_HALF}"),
            #[cfg(not(target_family = "wasm"))]
            DType::I8 => run_steps_int8(dot, c),
            #[cfg(target_family = "wasm")]
            DType::I8 => unreachable!("{WASM_INT8}"),
        }
    }
}

tiered! {
    unsafe fn gemm_float(c: &GemmCall<'_>) -> () = gemm_generic;
}

/// The input projection of many rows at once, on tier `isa` (int8 weights:
/// with the product `dot`).
///
/// # Safety
/// `isa` and `dot` must be available; `x` must hold `rows` rows of `w.k` floats
/// `x_stride` apart; `out` must hold `rows` rows of `w.panels * w.gates * 16`
/// floats; for int8 weights `q8` must be this thread's buffer of
/// [`crate::int8_buffer_bytes`] bytes for inputs of `w.k` values.
pub unsafe fn gemm(isa: Isa, dot: Int8Dot, c: &GemmCall<'_>) {
    // WebAssembly has no int8 kernels (weights are f32 by then).
    #[cfg(target_family = "wasm")]
    let _ = dot;
    // SAFETY: this function's contract (the tier and product are
    // available, the buffers sized), which each entry point states again.
    unsafe {
        match c.w.dtype {
            #[cfg(not(target_family = "wasm"))]
            DType::I8 => gemm_int8(dot, c),
            #[cfg(target_family = "wasm")]
            DType::I8 => unreachable!("{WASM_INT8}"),
            #[cfg(target_arch = "x86_64")]
            DType::BF16 if bf16_dot_on(isa) => gemm_bf16_dot(c),
            _ => gemm_float(isa, c),
        }
    }
}

/// Defines `$name(dot, call)`, which runs `$generic::<Product, Tiles>(call)`
/// for the int8 form `dot` (the AMX forms: VNNI's product with tiles), the
/// x86 forms through `#[target_feature]` functions.
macro_rules! tiered8 {
    ($name:ident($arg:ident: &$ty:ty) = $generic:ident;) => {
        unsafe fn $name(dot: Int8Dot, $arg: &$ty) {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma,f16c")]
            unsafe fn avx2($arg: &$ty) {
                // SAFETY: only reached when the CPU has AVX2, FMA and F16C.
                unsafe { $generic::<crate::avx2::Avx2Maddubs, NoTiles>($arg) }
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma,f16c,avxvnni")]
            unsafe fn avxvnni($arg: &$ty) {
                // SAFETY: only reached when the CPU has AVX2, FMA, F16C and AVX-VNNI.
                unsafe { $generic::<crate::avx2::AvxVnni, NoTiles>($arg) }
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")]
            unsafe fn avx512($arg: &$ty) {
                // SAFETY: only reached when the CPU has these AVX-512 subsets.
                unsafe { $generic::<crate::avx512::Avx512Maddubs, NoTiles>($arg) }
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c,avx512vnni")]
            unsafe fn avx512vnni($arg: &$ty) {
                // SAFETY: only reached when the CPU has these AVX-512 subsets and VNNI.
                unsafe { $generic::<crate::avx512::Avx512Vnni, NoTiles>($arg) }
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c,avx512vnni")]
            unsafe fn amx($arg: &$ty) {
                // SAFETY: only reached when the CPU has these AVX-512 subsets
                // and VNNI, and the OS granted tile state (`Isa::Amx`).
                unsafe { $generic::<crate::avx512::Avx512Vnni, crate::amx::Hardware>($arg) }
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c,avx512vnni")]
            unsafe fn amx_emulated($arg: &$ty) {
                // SAFETY: only reached when the CPU has these AVX-512 subsets and VNNI.
                unsafe { $generic::<crate::avx512::Avx512Vnni, crate::amx::Emulated>($arg) }
            }
            debug_assert!(dot.available());
            // SAFETY: the form is available (checked when it was chosen); the
            // rest is the caller's contract.
            unsafe {
                match dot {
                    #[cfg(not(target_family = "wasm"))]
                    Int8Dot::Scalar => $generic::<crate::int8::ScalarDot, NoTiles>($arg),
                    #[cfg(target_family = "wasm")]
                    Int8Dot::Scalar => unreachable!("a wasm build has no scalar tier"),
                    Int8Dot::Portable => $generic::<crate::int8::PortableDot, NoTiles>($arg),
                    #[cfg(target_arch = "x86_64")]
                    Int8Dot::Avx2Maddubs => avx2($arg),
                    #[cfg(target_arch = "x86_64")]
                    Int8Dot::AvxVnni => avxvnni($arg),
                    #[cfg(target_arch = "x86_64")]
                    Int8Dot::Avx512Maddubs => avx512($arg),
                    #[cfg(target_arch = "x86_64")]
                    Int8Dot::Avx512Vnni => avx512vnni($arg),
                    #[cfg(target_arch = "x86_64")]
                    Int8Dot::Amx => amx($arg),
                    #[cfg(target_arch = "x86_64")]
                    Int8Dot::AmxEmulated => amx_emulated($arg),
                    #[cfg(not(target_arch = "x86_64"))]
                    _ => unreachable!("x86 forms are never available here"),
                }
            }
        }
    };
}

#[inline(always)]
unsafe fn steps_int8<D: Dot8, T: Tiles>(c: &StepsCall) {
    assert!(!T::ON || c.q8_tiles, "a tile form with buffers sized without tile room");
    let l = c.layer;
    let m = Layer8 { w_hh: l.w_hh.mat8(), w_hr: l.w_hr.map(|w| w.mat8()) };
    // SAFETY: `run_steps`'s contract: the product is available, `q8` is
    // this thread's buffer sized for the layer (with tile room if it tiles).
    unsafe {
        let _ftz = FlushDenormals::new();
        let (rows, panels, proj) = (c.rows.clone(), c.panels.clone(), c.proj_panels.clone());
        crate::int8::run_steps::<D, T>(&l.typed::<i8>(), &m, c.io, c.job, rows, panels, proj, c.q8, c.sync)
    }
}

#[inline(always)]
unsafe fn gemm_int8_generic<D: Dot8, T: Tiles>(c: &GemmCall) {
    assert!(!T::ON || c.q8_tiles, "a tile form with buffers sized without tile room");
    let g = Gemm8 {
        w: c.w.mat8(),
        k: c.w.k,
        bias: c.bias,
        x: c.x,
        x_stride: c.x_stride,
        rows: c.rows,
        out: c.out,
        buf: c.q8,
    };
    // SAFETY: `gemm`'s contract: the product is available, `q8` is this
    // thread's buffer for inputs of `k` values, `x` and `out` hold the rows.
    unsafe {
        let _ftz = FlushDenormals::new();
        crate::int8::gemm::<D, T>(&g, c.panels.clone())
    }
}

#[cfg(not(target_family = "wasm"))]
tiered8! {
    run_steps_int8(c: &StepsCall<'_, '_>) = steps_int8;
}
#[cfg(not(target_family = "wasm"))]
tiered8! {
    gemm_int8(c: &GemmCall<'_>) = gemm_int8_generic;
}

/// Sets flush-to-zero and denormals-are-zero (x86's MXCSR FTZ/DAZ, AArch64's
/// FPCR.FZ) for the current thread while alive, so a kernel's speed never
/// depends on denormal inputs and its results match on both; restores the
/// previous mode on drop. Not under miri, which runs no `asm!` (the modes
/// only change denormal results, which the kernels' tests do not meet).
pub struct FlushDenormals {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    saved: u32,
    #[cfg(all(target_arch = "aarch64", not(miri)))]
    saved: u64,
}

impl FlushDenormals {
    #[inline(always)]
    pub(crate) fn new() -> Self {
        #[cfg(all(target_arch = "x86_64", not(miri)))]
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
        #[cfg(all(target_arch = "aarch64", not(miri)))]
        {
            let saved: u64;
            // SAFETY: mrs/msr read and write this thread's floating-point
            // control register (present on every AArch64); bit 24 (FZ) only
            // flushes denormal inputs and results to zero, as FTZ/DAZ do on x86.
            unsafe {
                std::arch::asm!("mrs {}, fpcr", out(reg) saved, options(nomem, nostack));
                std::arch::asm!("msr fpcr, {}", in(reg) saved | (1 << 24), options(nomem, nostack));
            }
            FlushDenormals { saved }
        }
        #[cfg(not(all(any(target_arch = "x86_64", target_arch = "aarch64"), not(miri))))]
        FlushDenormals {}
    }
}

impl Drop for FlushDenormals {
    #[inline(always)]
    fn drop(&mut self) {
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        // SAFETY: restores the value read in `new`.
        unsafe {
            std::arch::asm!("ldmxcsr [{}]", in(reg) &self.saved, options(nostack, readonly));
        }
        #[cfg(all(target_arch = "aarch64", not(miri)))]
        // SAFETY: restores the value read in `new`.
        unsafe {
            std::arch::asm!("msr fpcr, {}", in(reg) self.saved, options(nomem, nostack));
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

#[cfg(all(test, target_arch = "x86_64"))]
mod bf16_dot_tests {
    use super::*;
    use lstmrt_format::panel::{LANES, pack, panels};

    /// A small deterministic generator (xorshift), values in [-scale, scale).
    struct Gen(u64);
    impl Gen {
        fn next(&mut self, scale: f32) -> f32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            ((self.0 >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        }
    }

    /// The input projection with bf16 dot products against its definition:
    /// `bias + Σ_k bf16(x[k]) w[k]` (inputs rounded to nearest bf16, ties to
    /// even; products exact), summed in f64. Shapes cover odd `k`, `k` past
    /// one paired block (192 inputs of 4 gates, 768 of one), row blocks of
    /// 6, 2 and 1, one to four gates and partial panels (one gate from 9
    /// rows: fewer convert as they load, without dot products).
    #[test]
    fn the_gemm_with_bf16_dot_products_sums_the_inputs_rounded_to_bf16() {
        if !bf16_dot(Isa::Avx512) {
            eprintln!("skipped: this CPU has no AVX512-BF16 (the avx512 tier widens bf16 weights instead)");
            return;
        }
        let mut rng = Gen(0x9e37_79b9_7f4a_7c15);
        for (gates, n, k, rows) in
            [(4, 20, 1, 1), (4, 33, 7, 6), (4, 16, 401, 9), (1, 40, 1000, 13), (3, 17, 64, 8), (1, 5, 16, 9)]
        {
            let w: Vec<bf16> = (0..gates * n * k).map(|_| bf16::from_f32(rng.next(0.5))).collect();
            let x: Vec<f32> = (0..rows * k).map(|_| rng.next(3.0)).collect();
            let np = panels(n);
            let bias: Vec<f32> = (0..np * gates * LANES).map(|_| rng.next(1.0)).collect();
            let packed = pack(&w, gates, n, k);
            let mut out = vec![f32::NAN; rows * np * gates * LANES];
            let mut wide = vec![0f32; crate::WIDEN_BUFFER];
            let call = GemmCall {
                w: MatrixRef {
                    bytes: bytemuck::cast_slice(&packed),
                    dtype: DType::BF16,
                    panels: np,
                    k,
                    gates,
                    scale: &[],
                    colsum: &[],
                    split: false,
                },
                bias: &bias,
                x: x.as_ptr(),
                x_stride: k,
                rows,
                out: out.as_mut_ptr(),
                panels: 0..np,
                wide: wide.as_mut_ptr(),
                q8: std::ptr::null_mut(),
                q8_tiles: false,
            };
            // SAFETY: the buffers hold the rows, panels and the widening room the call names.
            unsafe { gemm(Isa::Avx512, Int8Dot::Scalar, &call) };
            for row in 0..rows {
                for g in 0..gates {
                    for unit in 0..np * LANES {
                        let (p, lane) = (unit / LANES, unit % LANES);
                        let b = bias[(p * gates + g) * LANES + lane] as f64;
                        let (mut want, mut size) = (b, b.abs());
                        if unit < n {
                            for kk in 0..k {
                                let term =
                                    bf16::from_f32(x[row * k + kk]).to_f64() * w[(g * n + unit) * k + kk].to_f64();
                                want += term;
                                size += term.abs();
                            }
                        }
                        let got = out[row * np * gates * LANES + (p * gates + g) * LANES + lane] as f64;
                        assert!(
                            (got - want).abs() <= 1e-6 * size,
                            "gates {gates} n {n} k {k} rows {rows}: row {row} gate {g} unit {unit}: {got} != {want}"
                        );
                    }
                }
            }
        }
    }
}
