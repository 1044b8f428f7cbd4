//! Writes a model with random weights (uniform in ±1/sqrt(H), like PyTorch's
//! initialisation), for benchmarks and experiments.
//!
//!     cargo run --release --example random_model -- OUT.lstm CELL INPUT HIDDEN [LAYERS] [DTYPE] [bi] [proj=P]
//!     cargo run --release --example random_model -- /tmp/w2.lstm lstm 512 512 1 f16

use lstmrt::format::{Architecture, CellKind, DType, Metadata};
use lstmrt::{ModelWriter, Weights, rng::Rng};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        eprintln!("usage: random_model OUT.lstm CELL INPUT HIDDEN [LAYERS] [f32|f16|bf16] [bi] [proj=P]");
        std::process::exit(2);
    }
    let cell = CellKind::from_name(&args[1]).ok_or("CELL is lstm, gru, rnn_tanh or rnn_relu")?;
    let (input, hidden): (usize, usize) = (args[2].parse()?, args[3].parse()?);
    let layers: usize = args.get(4).map_or(Ok(1), |s| s.parse())?;
    let dtype = args.get(5).map_or(Some(DType::F32), |s| DType::from_name(s)).ok_or("DTYPE is f32, f16 or bf16")?;
    let mut arch = Architecture::new(cell, input, hidden, layers);
    for extra in &args[6.min(args.len())..] {
        match extra.split_once('=') {
            Some(("proj", p)) => arch.proj_size = p.parse()?,
            _ if extra == "bi" => arch.bidirectional = true,
            _ => return Err(format!("unknown option {extra}").into()),
        }
    }
    let meta = Metadata::new(arch);
    let weights = Weights::random(&meta, &mut Rng::new(42), 1.0);
    ModelWriter::new(&meta, &weights).dtype(dtype).write(&args[0])?;
    Ok(())
}
