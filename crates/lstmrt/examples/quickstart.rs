//! Writes a small LSTM model file, opens it (memory-mapped) and runs it over a
//! sequence and then step by step, printing what it computes.
//!
//!     cargo run --release --example quickstart

use lstmrt::format::{Architecture, CellKind, Metadata};
use lstmrt::{Model, ModelWriter, Weights};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let meta = Metadata::new(Architecture::new(CellKind::Lstm, 2, 4, 1));
    let mut weights = Weights::zeros(&meta);
    // A hand-made cell: unit 0 counts the input's first feature (input gate
    // and candidate open, forget gate open), the rest stay near zero.
    let lw = &mut weights.layers[0];
    let (h, i) = (4, 2);
    lw.w_ih[0] = 4.0; // i gate (rows 0..h), unit 0 <- x0
    lw.b_ih[h] = 4.0; // f gate, unit 0: remember
    lw.w_ih[2 * h * i] = 2.0; // g, unit 0 <- x0
    lw.b_ih[3 * h] = 4.0; // o gate, unit 0: open
    let path = std::env::temp_dir().join("lstmrt-quickstart.lstm");
    ModelWriter::new(&meta, &weights).write(&path)?;

    let model = Model::open(&path)?;
    println!("model: {} bytes, {} parameters", std::fs::metadata(&path)?.len(), model.parameter_count());
    let mut state = model.new_state();
    let xs = [1.0f32, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
    let out = model.run(&mut state, &xs)?;
    for (t, h) in out.chunks(4).enumerate() {
        println!("t={t} x0={} -> h[0]={:.4}  c[0] grows as ones are counted", xs[2 * t], h[0]);
    }
    println!("final c[0] = {:.4}", state.c()[0]);
    state.reset();
    let y = model.step(&mut state, &[1.0, 0.0])?;
    println!("after reset, one step: h[0] = {:.4}", y[0]);
    std::fs::remove_file(&path)?;
    Ok(())
}
