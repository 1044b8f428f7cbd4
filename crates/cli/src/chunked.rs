//! `lstm-run` for chunked models (format 1.3 stages): a signal file in,
//! one head output per chunk out (`-o probs.npy`), speech segments
//! (`--segments`), or a raw PCM stream on stdin with one line per chunk.

use std::io::{Read, Write};
use std::path::Path;

use lstmrt::Model;
use lstmrt_format::Stages;

use crate::audio::{self, Pcm, Signal};
use crate::data::{self, Dims, OutputFormat, Sequence};
use crate::exit::Failure;
use crate::session::Session;
use lstmrt::vad::{SpeechOptions, speech_timestamps};

/// Checks a signal against what the model reads: its channels and, when
/// both know it, its rate. Resampling is the caller's job.
pub fn check_signal(model_path: &Path, input: &Path, stages: &Stages, signal: &Signal) -> Result<(), Failure> {
    if signal.channels != stages.channels as usize {
        return Err(Failure::bad_input(format!(
            "{}: {} channels, but {} reads {}: mix or split the channels first",
            input.display(),
            signal.channels,
            model_path.display(),
            stages.channels
        )));
    }
    if let Some(rate) = signal.rate
        && stages.sample_rate != 0
        && rate != stages.sample_rate
    {
        // Silero VAD comes at both of its rates.
        let other = match rate {
            8000 => ", or run the 8 kHz model (models/silero_vad/silero_vad_8k.lstm for Silero VAD)",
            16000 => ", or run the 16 kHz model (models/silero_vad/silero_vad.lstm for Silero VAD)",
            _ => "",
        };
        return Err(Failure::bad_input(format!(
            "{}: {rate} Hz, but {} was made for {} Hz: resample it first (for example `sox {} -r {} out.wav`){other}",
            input.display(),
            model_path.display(),
            stages.sample_rate,
            input.display(),
            stages.sample_rate
        )));
    }
    Ok(())
}

/// Every chunk's output for a whole signal, `[chunks][out_values]`: the
/// last partial chunk padded with zeros, as Silero's own loop does.
pub fn run_signal(model: &Model, signal: &[f32], threads: usize) -> Result<Vec<f32>, lstmrt::Error> {
    let mut st = model.new_chunk_state(1)?;
    st.set_threads(threads);
    let out_values = model.stages_plan().expect("a chunked model").out_values();
    let mut out = vec![0.0; model.signal_chunks(signal.len()) * out_values];
    model.run_signal(&mut st, signal, &mut out)?;
    Ok(out)
}

/// The files of one `lstm-run MODEL SIGNAL [-o OUT]` run of a chunked model.
#[derive(Debug, Clone, Copy)]
pub struct SignalFiles<'a> {
    /// The model's path, for messages.
    pub model: &'a Path,
    pub input: &'a Path,
    pub output: Option<&'a Path>,
}

/// `lstm-run MODEL SIGNAL [-o OUT] [--segments]` for a chunked model.
pub fn run_file(
    session: &Session,
    model: &Model,
    files: SignalFiles,
    segments: Option<SpeechOptions>,
    threads: usize,
    stdout: &mut dyn Write,
) -> Result<(), Failure> {
    let SignalFiles { model: model_path, input, output } = files;
    let stages = model.metadata().stages.as_ref().expect("a chunked model");
    let format = output.map(OutputFormat::from_path).transpose()?;
    let signal = audio::read_signal(session, input)?;
    check_signal(model_path, input, stages, &signal)?;
    let plan = model.stages_plan().expect("a chunked model");
    let per = (stages.chunk * stages.channels) as usize;
    let chunks = signal.data.len().div_ceil(per);
    data::check_output_values(&input.display().to_string(), chunks, 1, plan.out_values(), 0)?;
    if segments.is_some() && (plan.out_values() != 1 || stages.sample_rate == 0) {
        return Err(Failure::bad_input(format!(
            "{}: --segments needs a model with one probability per chunk and a sample rate (this one gives {} values per chunk at {} Hz)",
            model_path.display(),
            plan.out_values(),
            stages.sample_rate
        )));
    }
    let data = run_signal(model, &signal.data, threads)
        .map_err(|e| Failure::bad_input(format!("{}: {e}", model_path.display())))?;
    let out = Sequence { steps: chunks, batch: 1, width: plan.out_values(), dims: Dims::Unbatched, data };
    if let (Some(path), Some(format)) = (output, format) {
        session.write_output(path, &data::encode_output(format, &out, None)?)?;
    }
    let write = |e: std::io::Error| Failure::internal(format!("writing to stdout: {e}"));
    if let Some(o) = segments {
        let rate = stages.sample_rate;
        for s in speech_timestamps(&out.data, stages.chunk as usize, rate, &o, Some(signal.frames())) {
            writeln!(stdout, "{:.3} {:.3}", s.start as f64 / rate as f64, s.end as f64 / rate as f64).map_err(write)?;
        }
    } else if output.is_none() {
        let seconds = if stages.sample_rate > 0 {
            format!(" ({:.2} s)", signal.frames() as f64 / stages.sample_rate as f64)
        } else {
            String::new()
        };
        writeln!(
            stdout,
            "{} chunks of {} frames{seconds}, {} values each; -o FILE writes them, --segments prints speech segments",
            chunks,
            stages.chunk,
            plan.out_values()
        )
        .map_err(write)?;
    }
    Ok(())
}

/// `lstm-run MODEL - --pcm FORMAT`: raw PCM on `input`, one line of the
/// chunk's outputs per chunk on `output`, flushed as each chunk arrives.
pub fn run_stream(
    model: &Model,
    model_path: &Path,
    pcm: Pcm,
    input: &mut dyn Read,
    output: &mut dyn Write,
) -> Result<(), Failure> {
    let stages = model.metadata().stages.as_ref().expect("a chunked model");
    let per = (stages.chunk * stages.channels) as usize;
    let mut st = model.new_chunk_state(1).map_err(|e| Failure::bad_input(format!("{}: {e}", model_path.display())))?;
    let mut raw = vec![0u8; per * pcm.bytes()];
    let mut x = vec![0.0f32; per];
    let mut offset = 0u64;
    while let Some(read) = audio::read_pcm_chunk(input, pcm, &mut raw, &mut x, offset)? {
        offset += read as u64;
        let y =
            model.run_chunk(&mut st, &x).map_err(|e| Failure::bad_input(format!("{}: {e}", model_path.display())))?;
        let line = data::format_values(y);
        if let Err(e) = writeln!(output, "{line}").and_then(|()| output.flush()) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(Failure::internal(format!("writing to stdout: {e}")));
        }
        if read < per {
            break;
        }
    }
    Ok(())
}
