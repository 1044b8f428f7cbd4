//! Runs a chunked model's `run_chunk` in a loop on a tone with noise, and
//! nothing else: a driver for profilers (`valgrind --tool=callgrind`,
//! `perf record`), where `lstm-run --bench` adds its timing and statistics.
//!
//!     cargo run --release --example chunk_loop -- MODEL [CHUNKS] [STREAMS]
//!     valgrind --tool=callgrind target/release/examples/chunk_loop models/silero_vad/silero_vad.lstm 2000

use lstmrt::Model;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: chunk_loop MODEL [CHUNKS] [STREAMS]");
        std::process::exit(2);
    };
    let chunks: usize = args.get(1).map_or(Ok(10_000), |s| s.parse())?;
    let streams: usize = args.get(2).map_or(Ok(1), |s| s.parse())?;
    let model = Model::open(path)?;
    let stages = model.metadata().stages.as_ref().ok_or("not a chunked model")?;
    let frame = stages.chunk as usize * stages.channels as usize;
    let mut state = model.new_chunk_state(streams)?;
    let mut x = vec![0.0f32; streams * frame];
    let mut sum = 0.0f64;
    let mut seed = 1u32;
    for c in 0..chunks {
        for (i, v) in x.iter_mut().enumerate() {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
            let t = (c * frame + i % frame) as f32;
            *v = 0.3 * (t * 0.07).sin() + 0.05 * noise;
        }
        sum += model.run_chunk(&mut state, &x)?.iter().map(|&p| p as f64).sum::<f64>();
    }
    println!("{chunks} chunks of {streams} stream(s): mean output {:.6}", sum / (chunks * streams) as f64);
    Ok(())
}
