//! `.npy` arrays: the header parser, every dtype's values, and the checks and
//! reordering `lstm-run` applies to an input (both layouts).
#![no_main]
use libfuzzer_sys::fuzz_target;
use lstmrt_cli::data::{ReadOptions, sequence_from_npy};

fuzz_target!(|data: &[u8]| {
    let Ok(array) = lstmrt_import::npy::parse(data) else { return };
    let values = array.to_f32();
    let features = array.shape.last().copied().unwrap_or(1).max(1);
    for batch_first in [false, true] {
        let options = ReadOptions { batch_first, allow_nonfinite: values.len() % 2 == 0 };
        let _ = sequence_from_npy(&array, "fuzz.npy", features, options);
    }
});
