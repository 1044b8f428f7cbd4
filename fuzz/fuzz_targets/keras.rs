//! The `.npz` of `tools/export_keras.py`: the zip reader, deflate and the `.npy` arrays inside, as `lstm-convert` reads them; a source that imports is written as
//! a model file and exercised.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lstmrt_fuzz::import(data, "model.npz", lstmrt_import::convert::Family::Keras));
