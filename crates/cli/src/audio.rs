//! Signals for chunked models (format 1.3 stages): WAV and `.npy` input,
//! raw PCM streams, and speech segments from per-chunk probabilities as
//! Silero VAD's `get_speech_timestamps` finds them.

use std::io::Read;
use std::path::Path;

use lstmrt_format::limits::DATA_FILE;
use lstmrt_format::read_regular;
use lstmrt_import::npy;

use crate::data::DataError;

/// A signal: `frames * channels` values, frame-major (interleaved).
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub data: Vec<f32>,
    pub channels: usize,
    /// Frames per second, when the file says (WAV); `None` for `.npy`.
    pub rate: Option<u32>,
}

impl Signal {
    pub fn frames(&self) -> usize {
        self.data.len() / self.channels.max(1)
    }
}

fn bad(source: &str, message: impl Into<String>) -> DataError {
    DataError { location: source.to_string(), message: message.into() }
}

/// Reads a `.wav` (8/16/24/32-bit integer or 32-bit float PCM; integers,
/// 8-bit's unsigned bytes among them, are
/// scaled to [-1, 1) as torchaudio does) or a `.npy` (`[frames]` or
/// `[frames, channels]`, float) signal.
pub fn read_signal(session: &crate::session::Session, path: &Path) -> Result<Signal, DataError> {
    let source = path.display().to_string();
    session.note_input(path);
    let bytes = read_regular(path, DATA_FILE).map_err(|e| bad(&source, e.to_string()))?;
    let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "wav" => wav_from_bytes(&bytes, &source),
        "npy" => {
            let array = npy::parse(&bytes).map_err(|e| bad(&source, e.0))?;
            if !array.dtype.starts_with("float") {
                return Err(bad(&source, format!("a signal is float32 or float64, not {}", array.dtype)));
            }
            let channels = match array.shape.as_slice() {
                [_] => 1,
                [_, c] if *c > 0 => *c,
                s => return Err(bad(&source, format!("a signal is [frames] or [frames, channels], not {s:?}"))),
            };
            let mut data =
                crate::data::with_room(array.data.len(), "the signal as float32").map_err(|e| bad(&source, e))?;
            data.extend(array.data.iter().map(|&v| v as f32));
            if let Some(i) = data.iter().position(|v| !v.is_finite()) {
                return Err(bad(&format!("{source}: element {i}"), format!("{} is not finite", data[i])));
            }
            Ok(Signal { data, channels, rate: None })
        }
        _ => Err(bad(&source, "a chunked model reads .wav or .npy signals")),
    }
}

/// Decodes a WAV file held in memory.
pub fn wav_from_bytes(bytes: &[u8], source: &str) -> Result<Signal, DataError> {
    let mut reader = hound::WavReader::new(std::io::Cursor::new(bytes))
        .map_err(|e| bad(source, format!("not a readable WAV file: {e}")))?;
    let spec = reader.spec();
    let width = (spec.bits_per_sample as usize).div_ceil(8).max(1);
    // The header's count is not trusted to size anything: the data must be there.
    let count = (reader.len() as usize).min(bytes.len() / width);
    let mut data = crate::data::with_room(count, "the signal as float32").map_err(|e| bad(source, e))?;
    let at = |i: usize, e: hound::Error| bad(&format!("{source}: sample {i}"), e.to_string());
    match spec.sample_format {
        hound::SampleFormat::Float => {
            for (i, s) in reader.samples::<f32>().enumerate() {
                let v = s.map_err(|e| at(i, e))?;
                if !v.is_finite() {
                    return Err(bad(&format!("{source}: sample {i}"), format!("{v} is not finite")));
                }
                data.push(v);
            }
        }
        hound::SampleFormat::Int => {
            if spec.bits_per_sample > 32 || spec.bits_per_sample < 8 {
                return Err(bad(source, format!("{}-bit samples are not supported", spec.bits_per_sample)));
            }
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            for (i, s) in reader.samples::<i32>().enumerate() {
                data.push(s.map_err(|e| at(i, e))? as f32 * scale);
            }
        }
    }
    Ok(Signal { data, channels: spec.channels as usize, rate: Some(spec.sample_rate) })
}

/// Raw PCM sample formats for streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pcm {
    /// Signed 16-bit little-endian, scaled by 1/32768.
    S16le,
    /// 32-bit float little-endian.
    F32le,
}

impl Pcm {
    pub fn from_name(name: &str) -> Option<Pcm> {
        match name {
            "s16le" => Some(Pcm::S16le),
            "f32le" => Some(Pcm::F32le),
            _ => None,
        }
    }

    pub fn bytes(self) -> usize {
        match self {
            Pcm::S16le => 2,
            Pcm::F32le => 4,
        }
    }
}

/// Reads one chunk of `out.len()` samples; `Ok(false)` at the end of the
/// stream (a partial chunk is padded with zeros, `Ok(true)` with `partial`
/// set to the samples read). Non-finite floats are an error.
pub fn read_pcm_chunk(
    input: &mut dyn Read,
    pcm: Pcm,
    raw: &mut [u8],
    out: &mut [f32],
    offset: u64,
) -> Result<Option<usize>, DataError> {
    let mut filled = 0;
    while filled < raw.len() {
        match input.read(&mut raw[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(bad("stdin", e.to_string())),
        }
    }
    if filled == 0 {
        return Ok(None);
    }
    let samples = filled / pcm.bytes();
    for (i, v) in out.iter_mut().enumerate() {
        *v = if i >= samples {
            0.0
        } else {
            let b = &raw[i * pcm.bytes()..][..pcm.bytes()];
            match pcm {
                Pcm::S16le => i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0,
                Pcm::F32le => {
                    let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    if !v.is_finite() {
                        return Err(bad(&format!("stdin: sample {}", offset + i as u64), format!("{v} is not finite")));
                    }
                    v
                }
            }
        };
    }
    Ok(Some(samples))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_of_16_bit_and_float_samples_and_bad_ones() {
        let mut bytes = std::io::Cursor::new(Vec::new());
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::new(&mut bytes, spec).unwrap();
        for v in [0i16, 16384, -32768, 32767] {
            w.write_sample(v).unwrap();
        }
        w.finalize().unwrap();
        let s = wav_from_bytes(bytes.get_ref(), "a.wav").unwrap();
        assert_eq!(s.data, vec![0.0, 0.5, -1.0, 32767.0 / 32768.0]);
        assert_eq!((s.channels, s.rate), (1, Some(16000)));
        let truncated = &bytes.get_ref()[..bytes.get_ref().len() - 3];
        let e = wav_from_bytes(truncated, "a.wav").unwrap_err();
        assert!(e.location.starts_with("a.wav"), "{e}");
        let e = wav_from_bytes(b"RIFF\x04\x00\x00\x00WAVE", "b.wav").unwrap_err();
        assert!(e.to_string().starts_with("b.wav: not a readable WAV file"), "{e}");
        let mut bytes = std::io::Cursor::new(Vec::new());
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let mut w = hound::WavWriter::new(&mut bytes, spec).unwrap();
        for v in [0.25f32, -0.5, f32::NAN, 0.0] {
            w.write_sample(v).unwrap();
        }
        w.finalize().unwrap();
        let e = wav_from_bytes(bytes.get_ref(), "c.wav").unwrap_err();
        assert_eq!(e.to_string(), "c.wav: sample 2: NaN is not finite");
    }

    #[test]
    fn wav_of_8_bit_samples_is_read_as_torchaudio_reads_it() {
        // 8-bit WAV stores unsigned bytes around 128; torchaudio gives (x - 128) / 128.
        let mut bytes = std::io::Cursor::new(Vec::new());
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 8,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::new(&mut bytes, spec).unwrap();
        for v in [0i8, 64, -128, 127] {
            w.write_sample(v).unwrap();
        }
        w.finalize().unwrap();
        // The stored bytes are unsigned: 128, 192, 0, 255.
        assert_eq!(&bytes.get_ref()[44..48], &[128, 192, 0, 255]);
        let s = wav_from_bytes(bytes.get_ref(), "d.wav").unwrap();
        assert_eq!(s.data, vec![0.0, 0.5, -1.0, 127.0 / 128.0]);
    }
}
