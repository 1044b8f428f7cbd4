//! W1 streaming (LSTM, input = hidden = 128, batch 1, f32), one step per
//! call: the Rust `Model::step` beside `lstmrt_step` through the C ABI
//! (pointer checks, `catch_unwind`, the copy into the caller's buffer).
//!
//!     cargo bench -p lstmrt-capi --bench step

use std::hint::black_box;
use std::ptr;

use criterion::{Criterion, criterion_group, criterion_main};
use lstmrt::format::{Architecture, CellKind, DType, Metadata};
use lstmrt::{Model, ModelWriter};
use lstmrt_capi::lstmrt_status::LSTMRT_OK;
use lstmrt_capi::*;
use lstmrt_testkit::{Rng, random_weights};

fn step(c: &mut Criterion) {
    for dtype in [DType::F32, DType::I8] {
        let meta = Metadata::new(Architecture::new(CellKind::Lstm, 128, 128, 1));
        let w = random_weights(&meta, &mut Rng::new(1), 1.0);
        let bytes = ModelWriter::new(&meta, &w).dtype(dtype).to_bytes().unwrap();
        let x = Rng::new(2).vec(128, 0.5);
        let mut group = c.benchmark_group(format!("W1 step {}", dtype.name()));

        let model = Model::from_bytes(&bytes).unwrap();
        let mut state = model.new_state();
        group.bench_function("rust Model::step", |b| {
            b.iter(|| black_box(model.step(&mut state, black_box(&x)).unwrap()[0]))
        });

        let (mut m, mut s) = (ptr::null_mut(), ptr::null_mut());
        let mut y = vec![0.0f32; 128];
        // SAFETY: valid buffers and out-pointers; freed below, after the bench.
        unsafe {
            assert_eq!(lstmrt_model_from_buffer(bytes.as_ptr(), bytes.len(), &mut m), LSTMRT_OK);
            assert_eq!(lstmrt_state_new(m, 1, &mut s), LSTMRT_OK);
        }
        group.bench_function("C lstmrt_step", |b| {
            b.iter(|| {
                // SAFETY: live handles, buffers of the documented sizes.
                let status = unsafe { lstmrt_step(m, s, black_box(x.as_ptr()), y.as_mut_ptr()) };
                black_box((status, y[0]))
            })
        });
        // SAFETY: made above, freed once.
        unsafe {
            lstmrt_state_free(s);
            lstmrt_model_free(m);
        }
        group.finish();
    }
}

criterion_group!(benches, step);
criterion_main!(benches);
