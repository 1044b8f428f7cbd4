//! `lstmrt_step`, `lstmrt_run` (after `lstmrt_state_reserve`) and
//! `lstmrt_streams_step` never allocate once the state exists: a counting
//! global allocator (every thread's allocations, workers included) proves
//! it. Runs without the test harness, so nothing else allocates meanwhile.

use std::ptr;

use lstmrt::ModelWriter;
use lstmrt::format::{Architecture, CellKind, DType, Metadata};
use lstmrt_capi::lstmrt_status::LSTMRT_OK;
use lstmrt_capi::*;
use lstmrt_testkit::alloc::{CountingAllocator, allocations_during};
use lstmrt_testkit::{Rng, random_weights};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn main() {
    for (dtype, bidirectional, threads) in
        [(DType::F32, false, 1), (DType::F16, false, 2), (DType::I8, false, 1), (DType::F32, true, 2)]
    {
        let mut arch = Architecture::new(CellKind::Lstm, 24, 64, 2);
        arch.bidirectional = bidirectional;
        let n_out = arch.sequence_output_size();
        let meta = Metadata::new(arch);
        let w = random_weights(&meta, &mut Rng::new(5), 1.0);
        let bytes = ModelWriter::new(&meta, &w).dtype(dtype).to_bytes().unwrap();
        let what = format!("{} bidirectional={bidirectional} threads={threads}", dtype.name());
        let (batch, steps) = (4, 100);
        let xs = vec![0.25f32; steps * batch * 24];
        let mut ys = vec![0.0f32; steps * batch * n_out];
        // SAFETY: every pointer is live and sized as the header documents.
        unsafe {
            let (mut m, mut s, mut streams) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
            assert_eq!(lstmrt_model_from_buffer(bytes.as_ptr(), bytes.len(), &mut m), LSTMRT_OK);
            assert_eq!(lstmrt_state_new(m, batch, &mut s), LSTMRT_OK);
            assert_eq!(lstmrt_state_set_threads(s, threads), LSTMRT_OK);
            assert_eq!(lstmrt_state_reserve(m, s, steps), LSTMRT_OK);
            assert_eq!(lstmrt_streams_new(m, 8, &mut streams), LSTMRT_OK);
            let mut ids = [lstmrt_stream_id { index: 0, generation: 0 }; 8];
            for id in &mut ids {
                assert_eq!(lstmrt_streams_join(streams, id), LSTMRT_OK);
            }
            let n = allocations_during(|| {
                assert_eq!(lstmrt_run(m, s, xs.as_ptr(), steps, ys.as_mut_ptr()), LSTMRT_OK);
                if !bidirectional {
                    for _ in 0..20 {
                        assert_eq!(lstmrt_step(m, s, xs.as_ptr(), ys.as_mut_ptr()), LSTMRT_OK);
                    }
                    for k in [8, 1, 5] {
                        let status =
                            lstmrt_streams_step(m, streams, ids[8 - k..].as_ptr(), k, xs.as_ptr(), ys.as_mut_ptr());
                        assert_eq!(status, LSTMRT_OK);
                    }
                }
            });
            assert_eq!(n, 0, "{what}: {n} allocations");
            lstmrt_streams_free(streams);
            lstmrt_state_free(s);
            lstmrt_model_free(m);
        }
        println!("{what}: no allocation");
    }
}
