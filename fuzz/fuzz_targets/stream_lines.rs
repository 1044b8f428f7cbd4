//! `lstm-run --stream`'s standard input: a timestep per line (numbers, or
//! tokens for a text model), into a text classifier or an int8 model; or
//! raw PCM (16-bit or float) into a chunked model.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lstmrt_cli::run::{StreamJob, run_stream};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, mut input)) = data.split_first() else { return };
    let name = match pick % 3 {
        0 => "text.lstm",
        1 => "int8.lstm",
        _ => "chunked.lstm",
    };
    let pcm = if pick & 16 != 0 { lstmrt_cli::audio::Pcm::F32le } else { lstmrt_cli::audio::Pcm::S16le };
    let job = StreamJob {
        model: lstmrt_fuzz::scratch().join(name),
        initial_state: None,
        final_state: None,
        head: (pick & 4 != 0).then_some(pick & 8 != 0),
        allow_nonfinite: pick & 2 != 0,
        threads: 1,
        pcm: (name == "chunked.lstm").then_some(pcm),
    };
    let _ = run_stream(&lstmrt_cli::session::Session::default(), &job, &mut input, &mut std::io::sink());
});
