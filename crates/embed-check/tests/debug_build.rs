//! Every dtype, batch 1 and 32, on a 2 MiB thread, in whatever profile this
//! test is built (CI: the dev profile, opt-level 0).

use lstmrt_embed_check::{cases, check, on_small_stack};

#[test]
fn every_dtype_and_batch_runs_on_a_2_mib_thread_and_matches_the_reference() {
    for case in cases() {
        let label = format!("{:?} {} {:?} batch {}", case.arch.cell, case.arch.hidden_size, case.dtype, case.batch);
        let c = case.clone();
        let worst = on_small_stack(move || check(&c)).unwrap_or_else(|e| panic!("{label}: {e}"));
        // int8 also quantizes the activations: the reference on the stored weights
        // differs by their rounding (docs/quantization.md), the others only by arithmetic.
        let tol = match case.dtype {
            lstmrt::format::DType::F32 => 2e-5,
            lstmrt::format::DType::I8 => 1e-2,
            _ => 1e-4,
        };
        assert!(worst <= tol, "{label}: max abs difference {worst} > {tol}");
    }
}
