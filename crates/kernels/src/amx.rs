//! Intel AMX: whether this process may use the tile unit, and the `u8 x s8`
//! tile product of the int8 kernels.
//!
//! Rust 1.95 has no stable AMX intrinsics or `target_feature`s, so the tile
//! instructions are `asm!` (which assembles them whatever the target
//! features) and detection reads CPUID and XCR0 itself. Linux hands out tile
//! state only on request (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`,
//! once per process, inherited by forks): before that, the first tile
//! instruction would be a SIGILL, so nothing here runs one unless
//! [`status`] is `Ok`.
//!
//! The tile product computes the same i32 sums as every other int8 form
//! (`int8::Dot8`): integer sums do not depend on the order of
//! their terms, so the results are the oracle's bit for bit.

use std::sync::OnceLock;

/// Why the AMX tier cannot run here, or `Ok` once the kernel has granted
/// this process tile state. Checked once per process, when the tier is
/// chosen (`Isa::best`, so by any model, f32 included) or an int8 buffer is
/// sized, whichever comes first. The grant lasts for the process: afterwards
/// Linux refuses `sigaltstack` stacks too small for tile state (std's are
/// sized by `AT_MINSIGSTKSZ`, which counts it). A host that must not have it
/// sets `LSTMRT_ISA` to another tier: then nothing is requested.
pub fn status() -> Result<(), &'static str> {
    static STATUS: OnceLock<Result<(), &'static str>> = OnceLock::new();
    *STATUS.get_or_init(|| {
        let asked = std::env::var("LSTMRT_ISA").unwrap_or_default();
        if !matches!(asked.trim(), "" | "amx") {
            return Err("LSTMRT_ISA names another tier, so no tile state was requested");
        }
        detect()
    })
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux", not(miri))))]
fn detect() -> Result<(), &'static str> {
    if cfg!(miri) {
        Err("miri runs no tile instructions")
    } else if cfg!(target_arch = "x86_64") {
        Err("tile state is only requested from Linux (arch_prctl)")
    } else {
        Err("AMX is an x86-64 extension")
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux", not(miri)))]
fn detect() -> Result<(), &'static str> {
    use std::arch::x86_64::{__cpuid, __cpuid_count};
    // SAFETY: CPUID exists on every x86-64 CPU; leaf 7 is read only when the
    // highest leaf (leaf 0's eax) reaches it. (A safe function since Rust 1.94.)
    #[allow(unused_unsafe)]
    let (leaf1, leaf7) = unsafe {
        if __cpuid(0).eax < 7 {
            return Err("the CPU reports no AMX (no CPUID leaf 7)");
        }
        (__cpuid(1), __cpuid_count(7, 0))
    };
    const AMX_TILE: u32 = 1 << 24;
    const AMX_INT8: u32 = 1 << 25;
    if leaf7.edx & AMX_TILE == 0 || leaf7.edx & AMX_INT8 == 0 {
        return Err("the CPU has no AMX-TILE and AMX-INT8 (CPUID.7.EDX bits 24, 25)");
    }
    if !is_x86_feature_detected!("avx512vnni") {
        return Err("the CPU has AMX but not AVX-512 VNNI, which the tier uses below the tiles' crossover");
    }
    const OSXSAVE: u32 = 1 << 27;
    if leaf1.ecx & OSXSAVE == 0 {
        return Err("the OS has not enabled XSAVE (CPUID.1.ECX.OSXSAVE)");
    }
    let xcr0: u64;
    // SAFETY: XGETBV with ecx = 0 reads XCR0; it exists once OSXSAVE is set (checked).
    unsafe {
        let (lo, hi): (u32, u32);
        std::arch::asm!("xgetbv", in("ecx") 0u32, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags));
        xcr0 = u64::from(lo) | (u64::from(hi) << 32);
    }
    const XTILE: u64 = (1 << 17) | (1 << 18);
    if xcr0 & XTILE != XTILE {
        return Err("the OS has not enabled tile state (XCR0 bits 17, 18)");
    }
    const SYS_ARCH_PRCTL: i64 = 158;
    const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
    const XFEATURE_XTILEDATA: i64 = 18;
    let ret: i64;
    // SAFETY: a raw Linux syscall with integer arguments; `syscall` clobbers
    // rcx and r11 (declared), and this request touches no memory of ours.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") SYS_ARCH_PRCTL => ret,
            in("rdi") ARCH_REQ_XCOMP_PERM,
            in("rsi") XFEATURE_XTILEDATA,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    match ret {
        0 => self_test(),
        -22 => Err("the kernel does not hand out tile state (arch_prctl: EINVAL; Linux 5.16 or later is needed)"),
        -95 => Err("the kernel does not support tile state here (arch_prctl: EOPNOTSUPP)"),
        -28 => Err("the kernel refused tile state: a signal stack is too small for it (arch_prctl: ENOSPC)"),
        -1 => Err("the kernel refused tile state (arch_prctl: EPERM)"),
        _ => Err("the kernel refused tile state (arch_prctl ARCH_REQ_XCOMP_PERM failed)"),
    }
}

/// One 16 x 16 x 64 tile product of known bytes against the definition,
/// once the kernel granted tile state: a CPU or OS that computes it wrong
/// keeps the process off the tiles (and `--info` says so) instead of
/// giving wrong numbers.
#[cfg(all(target_arch = "x86_64", target_os = "linux", not(miri)))]
fn self_test() -> Result<(), &'static str> {
    let a: Vec<u8> = (0..TILE_ROWS * TILE_BYTES).map(|i| (i * 37 % 251) as u8).collect();
    let b: Vec<u8> = (0..TILE_ROWS * TILE_BYTES).map(|i| (i * 91 % 253) as u8).collect();
    let mut c = vec![0i32; TILE_ROWS * TILE_ROWS];
    // SAFETY: tile state was just granted; the loads read the 1 KiB of `a`
    // and `b`, the store writes the 1 KiB of `c`.
    unsafe {
        let _tiles = Hardware::configure_unchecked();
        Hardware::zero::<0>();
        Hardware::load::<4>(a.as_ptr(), TILE_BYTES);
        Hardware::load::<6>(b.as_ptr(), TILE_BYTES);
        Hardware::dot::<0, 4, 6>();
        Hardware::store::<0>(c.as_mut_ptr());
    }
    for m in 0..TILE_ROWS {
        for n in 0..TILE_ROWS {
            let want: i32 = (0..TILE_BYTES)
                .map(|k| i32::from(a[m * TILE_BYTES + k]) * i32::from(b[(k / 4) * TILE_BYTES + 4 * n + k % 4] as i8))
                .sum();
            if c[m * TILE_ROWS + n] != want {
                return Err("the tiles' self-test (one tdpbusd against its definition) gave wrong sums");
            }
        }
    }
    Ok(())
}

/// Rows of a tile, and rows of activations one tile covers.
pub(crate) const TILE_ROWS: usize = 16;
/// Bytes per tile row: 64 activation bytes, or 16 lanes of 4 weight bytes.
pub(crate) const TILE_BYTES: usize = 64;
/// Groups of 4 inputs one tile product covers (64 bytes of a row).
pub(crate) const TILE_QUADS: usize = TILE_BYTES / 4;

/// The tile instructions the products use, on tiles of 16 rows of 64 bytes:
/// tmm0-3 accumulate i32 sums (2 row tiles x 2 gates), tmm4-5 hold
/// activations, tmm6-7 weights. [`Hardware`] runs them; [`Emulated`] is the
/// same arithmetic in plain Rust, so the blocking around the instructions is
/// tested on any CPU.
pub(crate) trait TileUnit {
    /// Configures this thread's tiles until the guard drops.
    ///
    /// # Safety
    /// For [`Hardware`], [`status`] must be `Ok`.
    unsafe fn configure() -> TileGuard;
    /// `tmmT = 0`.
    unsafe fn zero<const T: usize>();
    /// Loads tile `T` from 16 rows of 64 bytes, `stride` bytes apart, at `p`.
    unsafe fn load<const T: usize>(p: *const u8, stride: usize);
    /// `tmmC += tmmA (u8) · tmmB (s8, groups of 4)`, in wrapping i32.
    unsafe fn dot<const C: usize, const A: usize, const B: usize>();
    /// Stores tile `T`'s 16 rows of 16 i32 at `p`, 64 bytes apart.
    unsafe fn store<const T: usize>(p: *mut i32);
}

/// Whether and how an int8 GEMM or step sums many rows with tiles: a type
/// parameter of both ([`NoTiles`], [`Hardware`], [`Emulated`]), beside the
/// product (`int8::Dot8`) that sums the rest.
pub(crate) trait Tiles: Copy + 'static {
    /// Whether this sums rows with tiles at all.
    const ON: bool;
    /// Configures this thread's tiles until the guard drops.
    ///
    /// # Safety
    /// For [`Hardware`], [`status`] must be `Ok`.
    unsafe fn configure() -> TileGuard;
    /// Runs a panel's tile sums, tiles configured.
    ///
    /// # Safety
    /// As [`PanelSums::run`].
    unsafe fn panel_sums(s: &PanelSums);
}

/// No tiles: every row is summed by the product.
#[derive(Clone, Copy)]
pub(crate) struct NoTiles;

impl Tiles for NoTiles {
    const ON: bool = false;
    unsafe fn configure() -> TileGuard {
        unreachable!("tiles configured without tiles")
    }
    unsafe fn panel_sums(_: &PanelSums) {
        unreachable!("tile sums without tiles")
    }
}

macro_rules! tiles_of_unit {
    ($unit:ty) => {
        impl Tiles for $unit {
            const ON: bool = true;
            #[inline(always)]
            unsafe fn configure() -> TileGuard {
                // SAFETY: the caller's (for `Hardware`, `status` is Ok).
                unsafe { <$unit as TileUnit>::configure() }
            }
            #[inline(always)]
            unsafe fn panel_sums(s: &PanelSums) {
                // SAFETY: the caller's: tiles configured, `s` valid.
                unsafe { s.run::<$unit>() }
            }
        }
    };
}
#[cfg(target_arch = "x86_64")]
tiles_of_unit!(Hardware);
tiles_of_unit!(Emulated);

/// While alive, this thread's tiles are configured; dropping it releases
/// them (so the thread's context switches stop saving 8 KiB of tile data).
/// The configuration is per thread: every worker makes its own. Nothing
/// else on the thread may configure or release tiles while it lives (the
/// kernels call only their own code, and the pool's barrier, meanwhile);
/// between kernel calls an embedder's own AMX code is free to.
pub(crate) struct TileGuard {
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    hardware: bool,
}

impl Drop for TileGuard {
    #[inline(always)]
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        if self.hardware {
            // SAFETY: a hardware guard exists only after LDTILECFG ran (so the
            // tile unit is usable); TILERELEASE touches no memory.
            unsafe { std::arch::asm!("tilerelease", options(nostack, nomem)) };
        }
    }
}

/// The tile instructions themselves (`asm!`).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(crate) struct Hardware;

#[cfg(target_arch = "x86_64")]
impl Hardware {
    /// `configure` before `status` is known (for the self-test).
    ///
    /// # Safety
    /// The kernel granted this process tile state.
    #[inline(always)]
    unsafe fn configure_unchecked() -> TileGuard {
        // SAFETY: the caller's; LDTILECFG reads 64 bytes of a valid palette-1 configuration.
        unsafe { std::arch::asm!("ldtilecfg [{}]", in(reg) &CONFIG, options(nostack, readonly)) };
        TileGuard { hardware: true }
    }
}

/// The palette-1 configuration: all 8 tiles 16 rows of 64 bytes.
#[cfg(target_arch = "x86_64")]
#[repr(C, align(64))]
struct Config([u8; 64]);

#[cfg(target_arch = "x86_64")]
const CONFIG: Config = {
    let mut c = [0u8; 64];
    c[0] = 1; // palette 1; byte 1, start_row, stays 0
    let mut t = 0;
    while t < 8 {
        c[16 + 2 * t] = TILE_BYTES as u8; // colsb of tile t, a little-endian u16
        c[48 + t] = TILE_ROWS as u8; // rows of tile t
        t += 1;
    }
    Config(c)
};

// SAFETY (whole impl): every method runs only between `configure` and the
// guard's drop on this thread, and `configure` only where `status` is Ok
// (the dispatch's contract), so no tile instruction meets a SIGILL; operands
// are tiles 0-7 of the configured shape; loads and stores touch the 16 rows
// of 64 bytes the caller guarantees.
#[cfg(target_arch = "x86_64")]
impl TileUnit for Hardware {
    #[inline(always)]
    unsafe fn configure() -> TileGuard {
        debug_assert!(status().is_ok());
        // SAFETY: `Hardware` is used only where `status()` granted tile state (asserted above).
        unsafe { Hardware::configure_unchecked() }
    }
    #[inline(always)]
    unsafe fn zero<const T: usize>() {
        // SAFETY: tiles are configured (a `TileGuard` lives); touches only tile T.
        unsafe { std::arch::asm!("tilezero tmm{t}", t = const T, options(nostack, nomem)) };
    }
    #[inline(always)]
    unsafe fn load<const T: usize>(p: *const u8, stride: usize) {
        // SAFETY: tiles are configured (a `TileGuard` lives); the caller guarantees the tile rows at `p`, `stride` apart.
        unsafe {
            std::arch::asm!(
                "tileloadd tmm{t}, [{p} + {s} * 1]",
                t = const T, p = in(reg) p, s = in(reg) stride,
                options(nostack, readonly, preserves_flags),
            )
        };
    }
    #[inline(always)]
    unsafe fn dot<const C: usize, const A: usize, const B: usize>() {
        // SAFETY: tiles are configured (a `TileGuard` lives); the caller guarantees the tile rows at `p`, `stride` apart.
        unsafe {
            std::arch::asm!(
                "tdpbusd tmm{c}, tmm{a}, tmm{b}",
                c = const C, a = const A, b = const B,
                options(nostack, nomem),
            )
        };
    }
    #[inline(always)]
    unsafe fn store<const T: usize>(p: *mut i32) {
        // SAFETY: tiles are configured (a `TileGuard` lives); the caller guarantees the tile rows at `p`, `stride` apart.
        unsafe {
            std::arch::asm!(
                "tilestored [{p} + {s} * 1], tmm{t}",
                t = const T, p = in(reg) p, s = in(reg) TILE_BYTES,
                options(nostack, preserves_flags),
            )
        };
    }
}

/// The tile instructions' arithmetic in plain Rust, on this thread's 8
/// emulated tiles: slow, for testing what surrounds the instructions on
/// CPUs without AMX (`LSTMRT_INT8_DOT=amx-emulated`).
#[derive(Clone, Copy)]
pub(crate) struct Emulated;

std::thread_local! {
    static EMULATED: std::cell::RefCell<[[u8; TILE_ROWS * TILE_BYTES]; 8]> =
        const { std::cell::RefCell::new([[0; TILE_ROWS * TILE_BYTES]; 8]) };
}

impl TileUnit for Emulated {
    unsafe fn configure() -> TileGuard {
        EMULATED.with_borrow_mut(|t| *t = [[0; TILE_ROWS * TILE_BYTES]; 8]);
        TileGuard { hardware: false }
    }
    unsafe fn zero<const T: usize>() {
        EMULATED.with_borrow_mut(|t| t[T].fill(0));
    }
    unsafe fn load<const T: usize>(p: *const u8, stride: usize) {
        EMULATED.with_borrow_mut(|t| {
            for r in 0..TILE_ROWS {
                // SAFETY: the caller guarantees 16 rows of 64 readable bytes
                // (initialised: the int8 buffers are zeroed when allocated,
                // so rows past the caller's hold zeros or older rows).
                let row = unsafe { std::slice::from_raw_parts(p.add(r * stride), TILE_BYTES) };
                t[T][r * TILE_BYTES..][..TILE_BYTES].copy_from_slice(row);
            }
        });
    }
    unsafe fn dot<const C: usize, const A: usize, const B: usize>() {
        EMULATED.with_borrow_mut(|t| {
            let i32_at = |tile: &[u8], m: usize, n: usize| {
                i32::from_le_bytes(tile[m * TILE_BYTES + 4 * n..][..4].try_into().expect("4 bytes"))
            };
            let mut c = t[C];
            for m in 0..TILE_ROWS {
                for n in 0..TILE_ROWS {
                    let mut acc = i32_at(&c, m, n);
                    for q in 0..TILE_QUADS {
                        for j in 0..4 {
                            let a = i32::from(t[A][m * TILE_BYTES + 4 * q + j]);
                            let b = i32::from(t[B][q * TILE_BYTES + 4 * n + j] as i8);
                            acc = acc.wrapping_add(a * b);
                        }
                    }
                    c[m * TILE_BYTES + 4 * n..][..4].copy_from_slice(&acc.to_le_bytes());
                }
            }
            t[C] = c;
        });
    }
    unsafe fn store<const T: usize>(p: *mut i32) {
        EMULATED.with_borrow(|t| {
            // SAFETY: the caller guarantees 1 KiB of writable memory at `p`.
            unsafe { std::ptr::copy_nonoverlapping(t[T].as_ptr(), p.cast::<u8>(), TILE_ROWS * TILE_BYTES) };
        });
    }
}

/// The i32 sums `Σ_k a[r][k] w[k][gate][l]` of one panel: `tiles_m` tiles of
/// 16 activation rows times `gates` gates, over `quads` groups of 4 inputs.
pub(crate) struct PanelSums {
    /// First activation row: rows are `a_stride` bytes apart, a multiple of
    /// 64 with zeros from the row's `4 quads`-th byte on, and
    /// `16 tiles_m` rows are readable (rows past the caller's are ignored).
    pub a: *const u8,
    pub a_stride: usize,
    pub tiles_m: usize,
    /// First weight of the panel's first gate wanted, in `panel16x4`: the
    /// 64 bytes of gate `g` for group `q` at `w + q w_stride + 64 g`.
    pub w: *const i8,
    pub w_stride: usize,
    pub gates: usize,
    pub quads: usize,
    /// `gates * 16 * 64` bytes to copy the last, partial 16 groups of each
    /// gate into, so no tile load reads past the weights. Its rows past the
    /// copy may hold anything: they meet the activations' zero bytes.
    pub tail: *mut i8,
    /// `[gates][16 tiles_m][16]` i32, 64 bytes a row.
    pub out: *mut i32,
}

impl PanelSums {
    /// Computes the sums into `out` with tile unit `U`.
    ///
    /// # Safety
    /// `U`'s tiles are configured on this thread; every pointer covers what
    /// its field says.
    #[inline(always)]
    pub(crate) unsafe fn run<U: TileUnit>(&self) {
        let (full, rest) = (self.quads / TILE_QUADS, self.quads % TILE_QUADS);
        // SAFETY: the caller's contract; the tail copy reads `rest` groups of
        // each gate inside the panel and writes inside `tail`.
        unsafe {
            if rest > 0 {
                for g in 0..self.gates {
                    for j in 0..rest {
                        let src = self.w.add((full * TILE_QUADS + j) * self.w_stride + g * TILE_BYTES);
                        let dst = self.tail.add((g * TILE_ROWS + j) * TILE_BYTES);
                        std::ptr::copy_nonoverlapping(src, dst, TILE_BYTES);
                    }
                }
            }
            for g in (0..self.gates).step_by(2) {
                let two_gates = self.gates - g >= 2;
                for m in (0..self.tiles_m).step_by(2) {
                    match (self.tiles_m - m >= 2, two_gates) {
                        (true, true) => self.block::<U, 2, 2>(m, g, full, rest),
                        (true, false) => self.block::<U, 2, 1>(m, g, full, rest),
                        (false, true) => self.block::<U, 1, 2>(m, g, full, rest),
                        (false, false) => self.block::<U, 1, 1>(m, g, full, rest),
                    }
                }
            }
        }
    }

    /// `M` row tiles from `m` times `G` gates from `g`, accumulated in
    /// tmm0-3 over every 16 groups of 4 inputs (the last from `tail`), stored.
    #[inline(always)]
    unsafe fn block<U: TileUnit, const M: usize, const G: usize>(&self, m: usize, g: usize, full: usize, rest: usize) {
        // SAFETY: the caller's contract (see `run`).
        unsafe {
            U::zero::<0>();
            if G > 1 {
                U::zero::<1>();
            }
            if M > 1 {
                U::zero::<2>();
                if G > 1 {
                    U::zero::<3>();
                }
            }
            let a0 = self.a.add(m * TILE_ROWS * self.a_stride);
            let a1 = a0.wrapping_add(TILE_ROWS * self.a_stride);
            for s in 0..full + usize::from(rest > 0) {
                let (w, ws) = if s < full {
                    (self.w.add(s * TILE_QUADS * self.w_stride + g * TILE_BYTES), self.w_stride)
                } else {
                    (self.tail.cast_const().add(g * TILE_ROWS * TILE_BYTES), TILE_BYTES)
                };
                U::load::<4>(a0.add(s * TILE_BYTES), self.a_stride);
                U::load::<6>(w.cast(), ws);
                U::dot::<0, 4, 6>();
                if G > 1 {
                    U::load::<7>(w.add(if s < full { TILE_BYTES } else { TILE_ROWS * TILE_BYTES }).cast(), ws);
                    U::dot::<1, 4, 7>();
                }
                if M > 1 {
                    U::load::<5>(a1.add(s * TILE_BYTES), self.a_stride);
                    U::dot::<2, 5, 6>();
                    if G > 1 {
                        U::dot::<3, 5, 7>();
                    }
                }
            }
            let rows = TILE_ROWS * self.tiles_m;
            let out = |gate: usize, tile: usize| self.out.add(((g + gate) * rows + (m + tile) * TILE_ROWS) * 16);
            U::store::<0>(out(0, 0));
            if G > 1 {
                U::store::<1>(out(1, 0));
            }
            if M > 1 {
                U::store::<2>(out(0, 1));
                if G > 1 {
                    U::store::<3>(out(1, 1));
                }
            }
        }
    }
}

/// The tile peak probe: `iters` rounds of 4 independent `tdpbusd` products
/// (16 x 16 x 64 each) on whatever the tiles hold; returns the int8
/// multiply-adds performed, or why the tiles cannot run here. For the
/// roofline's AMX bound (`lstm-run --roofline`, `cargo bench --bench roofline`).
pub fn probe(iters: usize) -> Result<u64, &'static str> {
    status()?;
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: tile state was granted (`status` is Ok); the products
        // only read and write tiles 0-7 of the configured shape.
        unsafe {
            let _tiles = <Hardware as TileUnit>::configure();
            Hardware::zero::<4>();
            Hardware::zero::<5>();
            Hardware::zero::<6>();
            Hardware::zero::<7>();
            for _ in 0..iters {
                Hardware::dot::<0, 4, 6>();
                Hardware::dot::<1, 4, 7>();
                Hardware::dot::<2, 5, 6>();
                Hardware::dot::<3, 5, 7>();
            }
        }
        Ok((iters * 4 * TILE_ROWS * TILE_ROWS * TILE_BYTES) as u64)
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("status is Ok only on x86-64 ({iters})")
}
