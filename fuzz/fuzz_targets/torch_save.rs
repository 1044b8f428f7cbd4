//! `torch.save` zips (and the legacy format): the zip reader, deflate, the pickle machine and the state-dict walk, as `lstm-convert` reads them; a source that imports is written as
//! a model file and exercised.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lstmrt_fuzz::import(data, "model.pt", lstmrt_import::convert::Family::PyTorch));
