//! The int8 path against its definitions: every product's sums against the
//! scalar oracle, quantization, the tiles' sums, the GEMM and the step.
#![allow(clippy::needless_range_loop)]

use super::dot::*;
use super::quantize::*;
use super::step::*;
use lstmrt_format::panel::{K_GROUP, pack_i8, panels};

use crate::blocking::block_height;
use crate::simd::LANES;

/// A small deterministic generator (xorshift).
struct Gen(u64);
impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Stores a block's sums at rows r0.., panel p, gates gate0.. of `out`.
#[inline(always)]
unsafe fn put<D: Dot8, const R: usize, const G: usize>(
    out: &mut [i32],
    m: &Mat8<'_>,
    acc: [[[Acc<D>; G]; 1]; R],
    r0: usize,
    p: usize,
    gate0: usize,
) {
    for (r, a) in acc.iter().enumerate() {
        for (g, v) in a[0].iter().enumerate() {
            let at = (((r0 + r) * m.panels + p) * m.gates + gate0 + g) * LANES;
            // SAFETY: `out` has room for 16 values at `at`.
            unsafe { <D::S as Lanes8>::store_i32(*v, out[at..at + LANES].as_mut_ptr()) }
        }
    }
}

/// The i32 sums of rows x panels x gates through form `D`, in the
/// register blocks the kernels use (6, 2 and 1 rows of 4 gates; 1 row of
/// one gate otherwise).
#[inline(always)]
pub(crate) unsafe fn products<D: Dot8>(m: &Mat8<'_>, x: &QRows, rows: usize) -> Vec<i32> {
    let mut out = vec![0i32; rows * m.panels * m.gates * LANES];
    // SAFETY: every block lies inside rows x panels.
    unsafe {
        for p in 0..m.panels {
            let mut r = 0;
            while r < rows {
                let h = if m.gates == 4 { block_height(rows - r) } else { 1 };
                match (h, m.gates) {
                    (6, 4) => put::<D, 6, 4>(
                        &mut out,
                        m,
                        dots::<D, 6, 1, 4>(m, 0, p, x, std::array::from_fn(|i| r + i)),
                        r,
                        p,
                        0,
                    ),
                    (2, 4) => put::<D, 2, 4>(&mut out, m, dots::<D, 2, 1, 4>(m, 0, p, x, [r, r + 1]), r, p, 0),
                    (_, 4) => put::<D, 1, 4>(&mut out, m, dots::<D, 1, 1, 4>(m, 0, p, x, [r]), r, p, 0),
                    _ => {
                        for g in 0..m.gates {
                            put::<D, 1, 1>(&mut out, m, dots::<D, 1, 1, 1>(m, g, p, x, [r]), r, p, g);
                        }
                    }
                }
                r += h;
            }
        }
    }
    out
}

/// [`products`] of split rows: `rows / 2` rows of two byte rows each, through
/// [`dots_split`]; physical row `2r` holds the `hi` sums, `2r + 1` the `lo`.
#[inline(always)]
pub(crate) unsafe fn products_split<D: Dot8>(m: &Mat8<'_>, x: &QRows, rows: usize) -> Vec<i32> {
    let mut out = vec![0i32; rows * m.panels * m.gates * LANES];
    // SAFETY: every block lies inside rows x panels.
    unsafe {
        for p in 0..m.panels {
            for r in 0..rows / 2 {
                if m.gates == 4 {
                    let (hi, lo) = dots_split::<D, 1, 1, 4>(m, 0, p, x, r);
                    put::<D, 1, 4>(&mut out, m, hi, 2 * r, p, 0);
                    put::<D, 1, 4>(&mut out, m, lo, 2 * r + 1, p, 0);
                } else {
                    for g in 0..m.gates {
                        let (hi, lo) = dots_split::<D, 1, 1, 1>(m, g, p, x, r);
                        put::<D, 1, 1>(&mut out, m, hi, 2 * r, p, g);
                        put::<D, 1, 1>(&mut out, m, lo, 2 * r + 1, p, g);
                    }
                }
            }
        }
    }
    out
}

/// [`products`] for each x86 form, compiled with its instructions.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::*;
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn avx2(m: &Mat8<'_>, x: &QRows, rows: usize, split: bool) -> Vec<i32> {
        // SAFETY: the test calls this only where the CPU has the features enabled here; `x` holds `rows` quantized rows of the matrix's inputs.
        unsafe {
            if split {
                products_split::<crate::avx2::Avx2Maddubs>(m, x, rows)
            } else {
                products::<crate::avx2::Avx2Maddubs>(m, x, rows)
            }
        }
    }
    #[target_feature(enable = "avx2,fma,f16c,avxvnni")]
    pub(super) unsafe fn avxvnni(m: &Mat8<'_>, x: &QRows, rows: usize, split: bool) -> Vec<i32> {
        // SAFETY: the test calls this only where the CPU has the features enabled here; `x` holds `rows` quantized rows of the matrix's inputs.
        unsafe {
            if split {
                products_split::<crate::avx2::AvxVnni>(m, x, rows)
            } else {
                products::<crate::avx2::AvxVnni>(m, x, rows)
            }
        }
    }
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")]
    pub(super) unsafe fn avx512(m: &Mat8<'_>, x: &QRows, rows: usize, split: bool) -> Vec<i32> {
        // SAFETY: the test calls this only where the CPU has the features enabled here; `x` holds `rows` quantized rows of the matrix's inputs.
        unsafe {
            if split {
                products_split::<crate::avx512::Avx512Maddubs>(m, x, rows)
            } else {
                products::<crate::avx512::Avx512Maddubs>(m, x, rows)
            }
        }
    }
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c,avx512vnni")]
    pub(super) unsafe fn avx512vnni(m: &Mat8<'_>, x: &QRows, rows: usize, split: bool) -> Vec<i32> {
        // SAFETY: the test calls this only where the CPU has the features enabled here; `x` holds `rows` quantized rows of the matrix's inputs.
        unsafe {
            if split {
                products_split::<crate::avx512::Avx512Vnni>(m, x, rows)
            } else {
                products::<crate::avx512::Avx512Vnni>(m, x, rows)
            }
        }
    }
}

/// The sums of form `dot`, or `None` when this CPU lacks it.
fn products_of(dot: crate::Int8Dot, m: &Mat8<'_>, x: &QRows, rows: usize, split: bool) -> Option<Vec<i32>> {
    use crate::Int8Dot as F;
    if !dot.available() {
        return None;
    }
    // SAFETY: the form is available; the case sizes `m` and `x`.
    unsafe {
        Some(match dot {
            F::Scalar if split => products_split::<ScalarDot>(m, x, rows),
            F::Scalar => products::<ScalarDot>(m, x, rows),
            F::Portable if split => products_split::<PortableDot>(m, x, rows),
            F::Portable => products::<PortableDot>(m, x, rows),
            #[cfg(target_arch = "x86_64")]
            F::Avx2Maddubs => x86::avx2(m, x, rows, split),
            #[cfg(target_arch = "x86_64")]
            F::AvxVnni => x86::avxvnni(m, x, rows, split),
            #[cfg(target_arch = "x86_64")]
            F::Avx512Maddubs => x86::avx512(m, x, rows, split),
            // The form's products below the tiles' rows; its tiles have a test of their own.
            #[cfg(target_arch = "x86_64")]
            F::Avx512Vnni | F::Amx | F::AmxEmulated => x86::avx512vnni(m, x, rows, split),
            #[cfg(not(target_arch = "x86_64"))]
            _ => return None,
        })
    }
}

#[test]
fn every_form_sums_exactly_as_the_scalar_oracle() {
    let mut ran = Vec::new();
    for mut case in cases() {
        let x = case.rows();
        let buf = case.q.as_mut_ptr();
        let m = case.mat();
        let want = case.expected();
        // SAFETY: the scalar form runs anywhere.
        let oracle = unsafe { products::<ScalarDot>(&m, &x, case.rows) };
        assert_eq!(oracle, want, "the oracle against i64 sums, k={}", case.k);
        for dot in crate::Int8Dot::ALL {
            if let Some(got) = products_of(dot, &m, &x, case.rows, false) {
                assert_eq!(got, oracle, "{dot}: gates={} n={} k={} rows={}", case.gates, case.n, case.k, case.rows);
                ran.push(dot);
            }
            // The same bytes read as split rows (pairs of byte rows).
            if case.rows % 2 == 0 {
                let split = QRows::carve(buf, case.rows / 2, case.k, true, false);
                if let Some(got) = products_of(dot, &m, &split, case.rows, true) {
                    assert_eq!(got, oracle, "{dot} split: gates={} k={} rows={}", case.gates, case.k, case.rows);
                }
            }
        }
    }
    eprintln!("int8 forms checked: {:?}", ran.iter().collect::<std::collections::BTreeSet<_>>());
}

/// Random int8 weights and u8 activations, including the extremes
/// (255 x -128 is where `vpmaddubsw` would saturate).
pub(crate) struct Case {
    pub packed: Vec<i8>,
    pub q: Vec<u8>,
    pub gates: usize,
    pub n: usize,
    pub k: usize,
    pub rows: usize,
}

pub(crate) fn cases() -> Vec<Case> {
    let mut rng = Gen(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::new();
    for (gates, n, k, rows, extreme) in [
        (4, 16, 4, 1, false),
        (4, 33, 17, 7, false),
        (1, 20, 130, 3, false),
        (3, 17, 9, 2, false),
        (4, 32, 1, 6, false),
        (4, 16, 4096, 2, true),
        (1, 48, 515, 13, true),
    ] {
        let canonical: Vec<i8> = (0..gates * n * k)
            .map(|_| if extreme { [-128i8, 127, -127][(rng.next() % 3) as usize] } else { rng.next() as i8 })
            .collect();
        let stride = row_bytes(k);
        let mut q = vec![0u8; qrows_bytes(rows, k, false)];
        let params = params_bytes(rows);
        for r in 0..rows {
            for j in 0..k {
                q[params + r * stride + j] = if extreme { 255 } else { rng.next() as u8 };
            }
        }
        out.push(Case { packed: pack_i8(&canonical, gates, n, k), q, gates, n, k, rows });
    }
    out
}

impl Case {
    pub(crate) fn mat(&self) -> Mat8<'_> {
        Mat8 {
            data: &self.packed,
            panels: panels(self.n),
            quads: self.k.div_ceil(K_GROUP),
            gates: self.gates,
            scale: &[],
            colsum: &[],
            split: false,
        }
    }

    pub(crate) fn rows(&mut self) -> QRows {
        QRows::carve(self.q.as_mut_ptr(), self.rows, self.k, false, false)
    }

    /// The sums computed straight from the definition, in i64.
    pub(crate) fn expected(&self) -> Vec<i32> {
        let canonical = lstmrt_format::panel::unpack_i8(&self.packed, self.gates, self.n, self.k);
        let params = params_bytes(self.rows);
        let p = panels(self.n);
        let mut out = vec![0i32; self.rows * p * self.gates * LANES];
        for r in 0..self.rows {
            for g in 0..self.gates {
                for u in 0..self.n {
                    let sum: i64 = (0..self.k)
                        .map(|j| {
                            i64::from(self.q[params + r * row_bytes(self.k) + j])
                                * i64::from(canonical[(g * self.n + u) * self.k + j])
                        })
                        .sum();
                    out[((r * p + u / LANES) * self.gates + g) * LANES + u % LANES] = sum as i32;
                }
            }
        }
        out
    }
}

/// `bytes` copied to the end of an anonymous mapping followed by an
/// inaccessible page, so a read past them is a fault, not a silent
/// read of the next allocation. Never unmapped (tests only).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn guarded(bytes: &[u8]) -> &'static [u8] {
    const PAGE: usize = 4096;
    let len = bytes.len().next_multiple_of(PAGE);
    let mut addr: isize;
    // SAFETY: mmap(NULL, len + PAGE, READ|WRITE, PRIVATE|ANONYMOUS, -1, 0)
    // and mprotect(last page, NONE) through raw syscalls (rcx and r11
    // clobbered); they touch only the new mapping.
    unsafe {
        std::arch::asm!("syscall", inlateout("rax") 9isize => addr, in("rdi") 0usize, in("rsi") len + PAGE,
            in("rdx") 3usize, in("r10") 0x22usize, in("r8") -1isize, in("r9") 0usize,
            lateout("rcx") _, lateout("r11") _, options(nostack));
        assert!(addr > 0, "mmap failed: {addr}");
        let mut ret: isize;
        std::arch::asm!("syscall", inlateout("rax") 10isize => ret, in("rdi") addr as usize + len,
            in("rsi") PAGE, in("rdx") 0usize, lateout("rcx") _, lateout("r11") _, options(nostack));
        assert_eq!(ret, 0, "mprotect failed");
        let start = (addr as usize + len - bytes.len()) as *mut u8;
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), start, bytes.len());
        std::slice::from_raw_parts(start, bytes.len())
    }
}

/// The tile sums of every case (weights ending at an inaccessible page),
/// of all gates, of the last gate alone, and of rows starting mid-batch
/// (as a second thread's do), equal the definition's: with the tile
/// instructions emulated everywhere, and with the instructions where
/// the CPU has AMX.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[test]
fn tile_sums_equal_the_oracle_and_read_inside_the_weights() {
    use crate::amx::{Emulated, Hardware};
    // SAFETY: the emulation runs anywhere.
    unsafe { check_tile_sums::<Emulated>() };
    match crate::amx::status() {
        // SAFETY: AMX is available (checked).
        Ok(()) => unsafe { check_tile_sums::<Hardware>() },
        Err(why) => eprintln!("no AMX here ({why}): tile instructions not run, their emulation checked"),
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
unsafe fn check_tile_sums<T: crate::amx::Tiles>() {
    // SAFETY: the caller guarantees D's tiles run here; buffers are sized for tiles.
    unsafe {
        let _tiles = T::configure();
        for mut case in cases().into_iter().chain(more_cases()) {
            let want = case.expected();
            let x = case.rows();
            let mut buf = crate::AlignedVec::<u8>::zeroed(qrows_bytes(case.rows, case.k, true));
            // Stale bytes in the rows' room and the scratch must not matter.
            buf.as_mut_slice().fill(0xA5);
            let t = QRows::carve(buf.as_mut_ptr(), case.rows, case.k, false, true);
            for r in 0..case.rows {
                let row = t.data.add(r * t.stride);
                std::ptr::write_bytes(row, 0, t.stride);
                std::ptr::copy_nonoverlapping(x.bytes(r), row, row_bytes(case.k));
            }
            let packed: &[i8] = bytemuck::cast_slice(guarded(bytemuck::cast_slice(&case.packed)));
            let m = Mat8 { data: packed, ..case.mat() };
            let at = |r: usize, p: usize, g: usize| ((r * m.panels + p) * m.gates + g) * LANES;
            let last = m.gates - 1;
            for (rows, gate0, gates) in
                [(0..case.rows, 0, m.gates), (0..case.rows, last, 1), (case.rows / 2..case.rows, 0, m.gates)]
            {
                for p in 0..m.panels {
                    let s = tile_sums::<T>(&m, p, gate0, gates, &t, rows.clone()).sums.unwrap();
                    for r in rows.clone() {
                        for g in gate0..gate0 + gates {
                            let got = std::slice::from_raw_parts(s.at(r, p, g), LANES);
                            let (k, n) = (case.k, case.n);
                            assert_eq!(got, &want[at(r, p, g)..][..LANES], "k={k} n={n} row {r} panel {p} gate {g}");
                        }
                    }
                }
            }
        }
    }
}

/// Shapes the tiles meet: whole and partial 16-row tiles and 16-group
/// K tiles, one to three row tiles, one to four gates.
fn more_cases() -> Vec<Case> {
    let mut rng = Gen(0x2545_F491_4F6C_DD1D);
    [(4, 32, 64, 16), (4, 48, 512, 32), (3, 16, 100, 17), (1, 16, 256, 33), (4, 16, 40, 47), (2, 32, 68, 8)]
        .into_iter()
        .map(|(gates, n, k, rows)| {
            let canonical: Vec<i8> = (0..gates * n * k).map(|_| rng.next() as i8).collect();
            let mut q = vec![0u8; qrows_bytes(rows, k, false)];
            let params = params_bytes(rows);
            for r in 0..rows {
                for j in 0..k {
                    q[params + r * row_bytes(k) + j] = rng.next() as u8;
                }
            }
            Case { packed: pack_i8(&canonical, gates, n, k), q, gates, n, k, rows }
        })
        .collect()
}

#[test]
fn quantized_rows_round_trip_within_half_a_step() {
    let xs: Vec<f32> = (0..37).map(|i| ((i * 7919) % 100) as f32 / 50.0 - 0.7).collect();
    let mut out = vec![0u8; 40];
    // SAFETY: 37 values in, 40 bytes out.
    let (scale, zp) = unsafe { quantize_row(xs.as_ptr(), xs.len(), out.as_mut_ptr(), out.len()) };
    let lo = xs.iter().copied().fold(0.0f32, f32::min);
    let hi = xs.iter().copied().fold(0.0f32, f32::max);
    assert!((scale - (hi - lo) / 255.0).abs() < 1e-7);
    for (x, q) in xs.iter().zip(&out) {
        let back = (i32::from(*q) - zp) as f32 * scale;
        assert!((back - x).abs() <= 0.5 * scale * 1.0001, "{x} came back as {back}");
    }
    assert_eq!(&out[37..], &[0, 0, 0], "padding is zero");
    // Split rows: hi + lo reconstruct each value within half of a 254th step.
    let mut low = vec![0u8; 40];
    // SAFETY: 37 values and bytes in, 40 bytes out.
    let (sl, zl) = unsafe { quantize_residual(xs.as_ptr(), xs.len(), out.as_ptr(), (scale, zp), low.as_mut_ptr(), 40) };
    assert_eq!((sl, zl), (scale / 254.0, 127));
    for ((x, q), l) in xs.iter().zip(&out).zip(&low) {
        let back = (i32::from(*q) - zp) as f32 * scale + (i32::from(*l) - zl) as f32 * sl;
        assert!((back - x).abs() <= 0.5 * sl * 1.01 + 1e-7, "{x} came back as {back} from two bytes");
    }
    // Zero maps to the zero point exactly.
    let zeros = [0.0f32, 1.0, -1.0];
    // SAFETY: 3 values in, 40 bytes out.
    let (s, zp) = unsafe { quantize_row(zeros.as_ptr(), 3, out.as_mut_ptr(), 4) };
    assert_eq!(i32::from(out[0]), zp);
    assert!((s - 2.0 / 255.0).abs() < 1e-7);
    // NaN and infinity poison the row's scale instead of quantizing garbage.
    for bad in [f32::NAN, f32::INFINITY] {
        let v = [0.5, bad, 0.25];
        // SAFETY: as above.
        let (s, _) = unsafe { quantize_row(v.as_ptr(), 3, out.as_mut_ptr(), 4) };
        assert!(s.is_nan());
    }
}
