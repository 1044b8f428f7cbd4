//! What the fuzz targets in `fuzz_targets/` share: the small valid model
//! files the model-file property test starts from, a folder of this
//! process's own for what must be on disk, and what is done with a source
//! model that imports.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use lstmrt::ModelWriter;
use lstmrt_import::Options;
use lstmrt_import::convert::Family;
pub use lstmrt_testkit::fuzz::{exercise_model, fix_up, model_files, reseal};

/// A folder made once per process: `weights.bin` (4 KiB, for ONNX external
/// data to find), `text.lstm` (a two-layer text classifier, f32) and
/// `int8.lstm` (a projected two-layer LSTM, int8) for the streaming target.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("lstmrt-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch folder");
        let weights: Vec<u8> = (0..4096u32).map(|i| (i * 37 % 251) as u8).collect();
        std::fs::write(dir.join("weights.bin"), weights).expect("weights.bin");
        let files = model_files();
        std::fs::write(dir.join("text.lstm"), &files[0]).expect("text.lstm");
        std::fs::write(dir.join("int8.lstm"), &files[3]).expect("int8.lstm");
        // A chunked model (format 1.3 stages): raw PCM streams.
        std::fs::write(dir.join("chunked.lstm"), &files[4]).expect("chunked.lstm");
        dir
    })
}

/// The safetensors state dict the `arch` target converts with each
/// description: a conv1d `enc` (6 out, 2 in, 3 taps, bias), an LSTM `rnn`
/// (3 in, 5 hidden) and a linear `fc` (2 out), the test suite's
/// conv-cell-linear network.
pub fn arch_state_dict() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let tensors: [(&str, Vec<usize>); 7] = [
            ("enc.weight", vec![6, 2, 3]),
            ("enc.bias", vec![6]),
            ("rnn.weight_ih_l0", vec![20, 3]),
            ("rnn.weight_hh_l0", vec![20, 5]),
            ("rnn.bias_ih_l0", vec![20]),
            ("fc.weight", vec![2, 5]),
            ("fc.bias", vec![2]),
        ];
        let mut header = String::from("{");
        let mut data = Vec::new();
        for (i, (name, shape)) in tensors.iter().enumerate() {
            let n: usize = shape.iter().product();
            let start = data.len();
            for k in 0..n {
                data.extend_from_slice(&((k as f32 * 0.37 + i as f32).sin() * 0.3).to_le_bytes());
            }
            let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            if i > 0 {
                header.push(',');
            }
            header += &format!(
                "\"{name}\":{{\"dtype\":\"F32\",\"shape\":[{}],\"data_offsets\":[{start},{}]}}",
                dims.join(","),
                data.len()
            );
        }
        header.push('}');
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&data);
        bytes
    })
}

/// Imports `data` as a source file called `name` (in [`scratch`]) of
/// `family`, as `lstm-convert` would; when that succeeds, writes the model
/// file and exercises it (parse, verify, run, state blob).
pub fn import(data: &[u8], name: &str, family: Family) {
    let path = scratch().join(name);
    let Ok(imported) = lstmrt_import::convert::import(&path, data, Some(family), &Options::default()) else { return };
    let Ok(bytes) = ModelWriter::new(&imported.meta, &imported.weights).to_bytes() else { return };
    exercise_model(&bytes, data.len());
}
