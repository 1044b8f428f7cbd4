//! Every dtype, batch 1 and 32, on a 2 MiB thread, in whatever profile this
//! test is built. What an embedder's debug build is (opt-level 0 everywhere)
//! is the workspace's `embedder` profile: `cargo test -p lstmrt-embed-check
//! --profile embedder` (tools/test.sh, so CI). A plain `cargo test` builds
//! it in the dev profile, whose kernels the workspace optimises: the test
//! runs there too and says so.

use std::io::Write;

use lstmrt::format::DType;
use lstmrt_embed_check::{cases, check, on_small_stack};

/// The profile this test binary was built in: the folder above `deps/`.
fn profile() -> String {
    let exe = std::env::current_exe().expect("the test's own path");
    let deps = exe.parent().expect("in deps/");
    let dir = deps.parent().and_then(|d| d.file_name()).map(|n| n.to_string_lossy().into_owned());
    dir.unwrap_or_default()
}

/// The cases of one dtype on a 2 MiB thread against the reference. One
/// test per dtype, so libtest runs them on every core (opt-level 0 is slow).
fn every_batch_runs_on_a_2_mib_thread_and_matches_the_reference(dtype: DType) {
    let profile = profile();
    if profile != "embedder" {
        let note = format!(
            "built in the `{profile}` profile, where the workspace optimises the kernels; the opt-level-0 check is `cargo test -p lstmrt-embed-check --profile embedder`"
        );
        if std::env::var_os("LSTMRT_REQUIRE_EMBEDDER_PROFILE").is_some() {
            panic!("{note}");
        }
        // Straight to stderr: libtest would hide an `eprintln!` of a passing test.
        let _ = writeln!(std::io::stderr(), "debug_build: {note}");
    }
    for case in cases().into_iter().filter(|c| c.dtype == dtype) {
        let label = format!("{:?} {} {:?} batch {}", case.arch.cell, case.arch.hidden_size, case.dtype, case.batch);
        let c = case.clone();
        let worst = on_small_stack(move || check(&c)).unwrap_or_else(|e| panic!("{label}: {e}"));
        // int8 also quantizes the activations: the reference on the stored weights
        // differs by their rounding (docs/quantization.md), and so does bf16 on a
        // tier with bf16 dot products (docs/performance.md); the others only by
        // arithmetic.
        let tol = match case.dtype {
            DType::F32 => 2e-5,
            DType::I8 => 1e-2,
            DType::BF16 if lstmrt::bf16_dot(lstmrt::Isa::best()) => 3e-2,
            _ => 1e-4,
        };
        assert!(worst <= tol, "{label}: max abs difference {worst} > {tol}");
    }
}

#[test]
fn f32_runs_on_a_2_mib_thread_and_matches_the_reference() {
    every_batch_runs_on_a_2_mib_thread_and_matches_the_reference(DType::F32);
}

#[test]
fn f16_runs_on_a_2_mib_thread_and_matches_the_reference() {
    every_batch_runs_on_a_2_mib_thread_and_matches_the_reference(DType::F16);
}

#[test]
fn bf16_runs_on_a_2_mib_thread_and_matches_the_reference() {
    every_batch_runs_on_a_2_mib_thread_and_matches_the_reference(DType::BF16);
}

#[test]
fn int8_runs_on_a_2_mib_thread_and_matches_the_reference() {
    every_batch_runs_on_a_2_mib_thread_and_matches_the_reference(DType::I8);
}

#[test]
fn the_cases_cover_every_dtype() {
    for dtype in [DType::F32, DType::F16, DType::BF16, DType::I8] {
        assert!(cases().iter().filter(|c| c.dtype == dtype).count() >= 10, "{dtype:?}");
    }
    assert!(cases().iter().all(|c| matches!(c.dtype, DType::F32 | DType::F16 | DType::BF16 | DType::I8)));
}
