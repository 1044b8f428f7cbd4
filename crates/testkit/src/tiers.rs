//! One test frame for every kernel tier and every int8 product, as tract
//! stamps its kernel tests onto each kernel: a test written once as a
//! function of the tier ([`per_tier!`](crate::per_tier)) or of the int8 product
//! ([`per_int8_form!`](crate::per_int8_form)) becomes one `#[test]` per tier or product, named
//! after it (`avx512::every_tier_matches_the_reference_in_f32`,
//! `int8_avx2_maddubs::...`), each skipped with a printed reason where this
//! CPU cannot run it. No test depends on `LSTMRT_ISA` or `LSTMRT_INT8_DOT`:
//! every tier and product runs in one `cargo test`.

use lstmrt::{Int8Dot, Isa, Model};

/// Runs `test` on tier `isa`, or says why this CPU cannot (and passes).
pub fn on_tier(isa: Isa, test: impl FnOnce(Isa)) {
    match isa.unavailable_reason() {
        None => test(isa),
        Some(why) => eprintln!("skipped on the {isa} tier: {why}"),
    }
}

/// How far bf16 results may be from the f32 reference that runs on the
/// stored (rounded) weights: `exact` where bf16 weights meet f32
/// activations, and 3e-2 on a tier with bf16 dot products
/// ([`lstmrt::bf16_dot`]), where every activation is rounded to bf16
/// (unit roundoff 2^-9) as it meets them, at every step: the suite's
/// saturating cases (weights of gain 2, up to 300 steps) measured up to
/// 1.7e-2 on AVX512-BF16. The dot products themselves are checked against
/// their definition to 1e-6 (`lstmrt-kernels`,
/// `the_gemm_with_bf16_dot_products_sums_the_inputs_rounded_to_bf16`); a
/// pairing or blocking mistake here costs O(1).
pub fn bf16_tolerance(isa: Isa, exact: f32) -> f32 {
    if lstmrt::bf16_dot(isa) { exact.max(3e-2) } else { exact }
}

/// The kernels an int8 test runs on: a product and the tier it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int8Kernels {
    pub isa: Isa,
    pub dot: Int8Dot,
}

impl Int8Kernels {
    /// `model` on these kernels.
    pub fn apply(self, model: Model) -> Model {
        model.with_isa(self.isa).unwrap().with_int8_dot(self.dot).unwrap()
    }
}

impl std::fmt::Display for Int8Kernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} tier)", self.dot, self.isa)
    }
}

/// Runs `test` with int8 product `dot`, or says why this CPU cannot.
pub fn on_int8_form(dot: Int8Dot, test: impl FnOnce(Int8Kernels)) {
    match int8_unavailable(dot) {
        None => test(Int8Kernels { isa: dot.isa(), dot }),
        Some(why) => eprintln!("skipped with the {dot} int8 product: {why}"),
    }
}

/// Why this CPU cannot run int8 product `dot`, if it cannot.
fn int8_unavailable(dot: Int8Dot) -> Option<&'static str> {
    (!dot.available()).then_some("this CPU cannot run it")
}

/// Stamps each `fn name(isa: Isa) { ... }` onto every tier: a module per
/// tier (`scalar`, `wide`, `avx2`, `avx512`, `amx`) holding a `#[test] fn
/// name()` that runs it there or says why it cannot.
#[macro_export]
macro_rules! per_tier {
    ($($(#[$attr:meta])* fn $name:ident($isa:ident: Isa) $body:block)+) => {
        $($(#[$attr])* fn $name($isa: lstmrt::Isa) $body)+
        $crate::per_tier!(@stamp [[scalar Scalar] [wide Wide] [avx2 Avx2] [avx512 Avx512] [amx Amx]] [$($name)+]);
    };
    (@stamp [[$m:ident $v:ident] $($rest:tt)*] [$($name:ident)+]) => {
        mod $m {
            $(#[test]
            fn $name() {
                $crate::tiers::on_tier(lstmrt::Isa::$v, super::$name)
            })+
        }
        $crate::per_tier!(@stamp [$($rest)*] [$($name)+]);
    };
    (@stamp [] [$($name:ident)+]) => {};
}

/// Stamps each `fn name(k: Int8Kernels) { ... }` onto every int8 product:
/// a module per product (`int8_scalar`, `int8_portable`, `int8_avx2_maddubs`,
/// `int8_avx_vnni`, `int8_avx512_maddubs`, `int8_avx512_vnni`, `int8_amx`,
/// `int8_amx_emulated`), each test run with it or saying why it cannot.
#[macro_export]
macro_rules! per_int8_form {
    ($($(#[$attr:meta])* fn $name:ident($k:ident: Int8Kernels) $body:block)+) => {
        $($(#[$attr])* fn $name($k: $crate::tiers::Int8Kernels) $body)+
        $crate::per_int8_form!(@stamp [[int8_scalar Scalar] [int8_portable Portable] [int8_avx2_maddubs Avx2Maddubs]
            [int8_avx_vnni AvxVnni] [int8_avx512_maddubs Avx512Maddubs] [int8_avx512_vnni Avx512Vnni]
            [int8_amx Amx] [int8_amx_emulated AmxEmulated]] [$($name)+]);
    };
    (@stamp [[$m:ident $v:ident] $($rest:tt)*] [$($name:ident)+]) => {
        mod $m {
            $(#[test]
            fn $name() {
                $crate::tiers::on_int8_form(lstmrt::Int8Dot::$v, super::$name)
            })+
        }
        $crate::per_int8_form!(@stamp [$($rest)*] [$($name)+]);
    };
    (@stamp [] [$($name:ident)+]) => {};
}

/// A case of a [`Serial`] run: its name and its function of the tier or product.
pub type Case<K> = (&'static str, fn(K));

/// [`per_tier!`](crate::per_tier) and [`per_int8_form!`](crate::per_int8_form)
/// for a test file without the harness (`harness = false`, as a counter of
/// every thread's allocations needs: nothing else may run meanwhile): the
/// `main` of such a file lists its cases with [`serial_cases!`](crate::serial_cases) and runs
/// each on each tier or int8 product in turn, one at a time, named as the
/// stamped suites name them (`avx2::case`, `int8_avx2_maddubs::case`) and
/// printed with `ok` or why it is skipped. Words on the command line
/// (`cargo test --test no_alloc -- avx2`) keep the names holding one of them,
/// as libtest's filter does.
pub struct Serial {
    filters: Vec<String>,
    ran: usize,
}

impl Serial {
    /// Reads the filter words from the command line (libtest's flags, which
    /// cargo may pass, are ignored).
    pub fn from_args() -> Serial {
        Serial { filters: std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect(), ran: 0 }
    }

    fn wanted(&self, name: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| name.contains(f.as_str()))
    }

    /// Runs `case` as `name` unless filtered out or skipped for `why`,
    /// printing the outcome as libtest does.
    fn run(&mut self, name: &str, skip: Option<&str>, case: impl FnOnce()) {
        if !self.wanted(name) {
            return;
        }
        match skip {
            None => {
                case();
                println!("test {name} ... ok");
                self.ran += 1;
            }
            Some(why) => println!("test {name} ... skipped: {why}"),
        }
    }

    /// `case` once, on the tier the runtime picks.
    pub fn once(&mut self, name: &str, case: fn()) -> &mut Self {
        self.run(name, None, case);
        self
    }

    /// Each case on every tier ([`Isa::ALL`]), as [`per_tier!`](crate::per_tier) stamps them.
    pub fn per_tier(&mut self, cases: &[Case<Isa>]) -> &mut Self {
        for isa in Isa::ALL {
            let skip = isa.unavailable_reason();
            for (case, run) in cases {
                self.run(&format!("{}::{case}", isa.name()), skip.as_deref(), || run(isa));
            }
        }
        self
    }

    /// Each case with every int8 product ([`Int8Dot::ALL`]), as
    /// [`per_int8_form!`](crate::per_int8_form) stamps them.
    pub fn per_int8_form(&mut self, cases: &[Case<Int8Kernels>]) -> &mut Self {
        for dot in Int8Dot::ALL {
            for (case, run) in cases {
                let name = format!("{}::{case}", int8_module(dot));
                self.run(&name, int8_unavailable(dot), || run(Int8Kernels { isa: dot.isa(), dot }));
            }
        }
        self
    }

    /// How many cases ran (not skipped, not filtered out).
    pub fn ran(&self) -> usize {
        self.ran
    }
}

/// The module [`per_int8_form!`](crate::per_int8_form) stamps for `dot`.
fn int8_module(dot: Int8Dot) -> &'static str {
    match dot {
        Int8Dot::Scalar => "int8_scalar",
        Int8Dot::Portable => "int8_portable",
        Int8Dot::Avx2Maddubs => "int8_avx2_maddubs",
        Int8Dot::AvxVnni => "int8_avx_vnni",
        Int8Dot::Avx512Maddubs => "int8_avx512_maddubs",
        Int8Dot::Avx512Vnni => "int8_avx512_vnni",
        Int8Dot::Amx => "int8_amx",
        Int8Dot::AmxEmulated => "int8_amx_emulated",
    }
}

/// `[(name, function)]` for [`Serial`]: `serial_cases![a, b]` is
/// `[("a", a as fn(_)), ("b", b as fn(_))]`.
#[macro_export]
macro_rules! serial_cases {
    ($($case:ident),+ $(,)?) => {
        [$((stringify!($case), $case as fn(_))),+]
    };
}

/// The relative difference `max |a - b| / max(1, max |b|)`; infinite when
/// the lengths differ or either holds NaN, so a comparison `d <= tol` fails
/// on NaN (the one comparison the tests share).
pub fn rel_diff(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return f32::INFINITY;
    }
    let scale = b.iter().fold(1.0f32, |m, v| if v.abs() > m { v.abs() } else { m });
    let mut worst = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        let d = (x - y).abs();
        if d.is_nan() {
            return f32::INFINITY;
        }
        worst = worst.max(d);
    }
    worst / scale
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static CALLS: AtomicUsize = AtomicUsize::new(0);

    fn count(_: Isa) {
        CALLS.fetch_add(1, Ordering::Relaxed);
    }

    #[test]
    fn a_serial_filter_keeps_the_names_holding_one_of_its_words() {
        let run = |words: &[&str]| {
            CALLS.store(0, Ordering::Relaxed);
            let mut serial = Serial { filters: words.iter().map(|w| w.to_string()).collect(), ran: 0 };
            serial.per_tier(&crate::serial_cases![count]);
            (serial.ran(), CALLS.load(Ordering::Relaxed))
        };
        assert_eq!(run(&["scalar::count"]), (1, 1));
        assert_eq!(run(&["no-such-case"]), (0, 0));
        let everywhere = Isa::ALL.iter().filter(|isa| isa.unavailable_reason().is_none()).count();
        assert_eq!(run(&[]), (everywhere, everywhere));
        assert_eq!(run(&["scalar", "wide"]), (2, 2));
    }

    #[test]
    fn serial_runs_name_int8_products_as_the_stamped_modules_do() {
        assert_eq!(int8_module(Int8Dot::Avx2Maddubs), "int8_avx2_maddubs");
        for dot in Int8Dot::ALL {
            let module = int8_module(dot);
            assert!(module.starts_with("int8_") && !module.contains('-'), "{module}");
        }
    }
}
