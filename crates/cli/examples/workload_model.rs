//! Writes the model of a standard workload (W1-W5 of `lstmrt_cli::bench::WORKLOADS`:
//! an LSTM with input size = hidden size and seeded random weights) to a file,
//! so `lstm-run --bench` can time it:
//!
//!     cargo run --release -p lstmrt-cli --example workload_model -- W2 f32 /tmp/w2.lstm
//!     target/release/lstm-run /tmp/w2.lstm --bench --streams 32
//!
//! The dtype is f32, f16, bf16 or int8.

use std::process::ExitCode;

use lstmrt_cli::bench::WORKLOADS;
use lstmrt_format::DType;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [name, dtype, path] = &args[..] else {
        eprintln!("usage: workload_model W1..W5 f32|f16|bf16|int8 OUT.lstm");
        return ExitCode::from(2);
    };
    let (Some(w), Some(dtype)) = (WORKLOADS.iter().find(|w| w.name == name), DType::from_name(dtype)) else {
        eprintln!("workload_model: unknown workload {name:?} or dtype {dtype:?}");
        return ExitCode::from(2);
    };
    let meta = w.metadata();
    let weights = lstmrt::Weights::random(&meta, &mut lstmrt::rng::Rng::new(7), 1.0);
    match lstmrt::ModelWriter::new(&meta, &weights).dtype(dtype).write(path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("workload_model: {e}");
            ExitCode::from(1)
        }
    }
}
