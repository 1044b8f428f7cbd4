//! `.safetensors` state dicts: the header JSON, the tensor table and the state-dict checks, as `lstm-convert` reads them; a source that imports is written as
//! a model file and exercised.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lstmrt_fuzz::import(data, "model.safetensors", lstmrt_import::convert::Family::PyTorch));
