//! `lstm-run --stream`'s standard input: a timestep per line (numbers, or
//! tokens for a text model), into a text classifier or an int8 model.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lstmrt_cli::run::{StreamJob, run_stream};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, mut input)) = data.split_first() else { return };
    let name = if pick % 2 == 0 { "text.lstm" } else { "int8.lstm" };
    let job = StreamJob {
        model: lstmrt_fuzz::scratch().join(name),
        initial_state: None,
        final_state: None,
        head: (pick & 4 != 0).then_some(pick & 8 != 0),
        allow_nonfinite: pick & 2 != 0,
        threads: 1,
    };
    let _ = run_stream(&job, &mut input, &mut std::io::sink());
});
