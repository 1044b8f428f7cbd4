//! Architecture descriptions (`lstm-convert --arch`): the JSON (duplicate
//! keys, wrong types, every stage's keys), then, for one that parses, the
//! conversion of a small conv-LSTM-linear state dict with it; a model that
//! converts is written, parsed and run a chunk.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lstmrt_import::Options;
use lstmrt_import::convert::Family;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(arch) = lstmrt_import::arch::parse(text) else { return };
    let source = lstmrt_fuzz::arch_state_dict();
    let options = Options { arch: Some(arch), ..Options::default() };
    let path = lstmrt_fuzz::scratch().join("net.safetensors");
    let Ok(imported) = lstmrt_import::convert::import(&path, source, Some(Family::PyTorch), &options) else {
        return;
    };
    let Ok(bytes) = lstmrt::ModelWriter::new(&imported.meta, &imported.weights).to_bytes() else { return };
    lstmrt_fuzz::exercise_model(&bytes, data.len());
});
