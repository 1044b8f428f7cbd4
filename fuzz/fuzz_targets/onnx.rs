//! ONNX `ModelProto`s: the protobuf reader and the graph import (initial states, ops after the last layer, external data), as `lstm-convert` reads them; a source that imports is written as
//! a model file and exercised.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lstmrt_fuzz::import(data, "model.onnx", lstmrt_import::convert::Family::Onnx));
