//! Chunked models (format 1.3 stages): the runtime's chunks against the
//! scalar reference, for every stage kind and padding, every dtype, one
//! stream and several, and the errors a caller can meet.

use lstmrt::format::{self, Architecture, CellKind, DType, Layout, Metadata};
use lstmrt::rng::Rng;
use lstmrt::{Error, Model, ModelWriter, Weights, reference};
use lstmrt_format::{Padding, Stage, StageActivation, StageKind, Stages, parse, section};

/// Silero VAD's shape, smaller: reflect-padded strided conv, magnitude,
/// strided convs with ReLU, a recurrent cell, ReLU, a 1x1 conv, sigmoid, mean.
fn vad_like(cell: CellKind) -> Metadata {
    let conv = |out, k, stride, pad: (u32, u32), padding, act| Stage {
        stride,
        pad_left: pad.0,
        pad_right: pad.1,
        padding,
        activation: act,
        ..Stage::conv1d(out, k)
    };
    let stages = Stages {
        chunk: 64,
        channels: 1,
        context: 8,
        sample_rate: 8000,
        front: vec![
            conv(34, 32, 16, (0, 8), Padding::Reflect, StageActivation::None),
            Stage::new(StageKind::Magnitude),
            conv(24, 3, 1, (1, 1), Padding::Zeros, StageActivation::Relu),
            conv(16, 3, 2, (1, 1), Padding::Zeros, StageActivation::Relu),
        ],
        back: vec![
            Stage::activation(StageActivation::Relu),
            conv(1, 1, 1, (0, 0), Padding::Zeros, StageActivation::Sigmoid),
            Stage::new(StageKind::Mean),
        ],
    };
    let mut meta = Metadata::new(Architecture::new(cell, 16, 20, 1));
    meta.stages = Some(stages);
    meta
}

/// Dilation, both paddings on both sides, tanh and softmax, two streams of
/// two channels, two layers, no context: the cases Silero does not have.
fn odd_shapes() -> Metadata {
    let stages = Stages {
        chunk: 21,
        channels: 2,
        context: 0,
        sample_rate: 0,
        front: vec![
            Stage {
                dilation: 2,
                pad_left: 3,
                pad_right: 2,
                padding: Padding::Reflect,
                activation: StageActivation::Tanh,
                ..Stage::conv1d(18, 3)
            },
            Stage { stride: 3, pad_left: 2, pad_right: 1, ..Stage::conv1d(12, 4) },
            Stage::conv1d(7, 1),
        ],
        back: vec![Stage { activation: StageActivation::Softmax, ..Stage::conv1d(5, 2) }],
    };
    let mut meta = Metadata::new(Architecture::new(CellKind::Gru, 7, 9, 2));
    meta.stages = Some(stages);
    meta
}

/// A convolution big enough to share its panels between threads (over
/// 2^18 multiply-adds for 3 streams).
fn wide_conv() -> Metadata {
    let stages = Stages {
        chunk: 128,
        channels: 1,
        context: 16,
        sample_rate: 16000,
        front: vec![
            Stage { stride: 16, pad_right: 48, padding: Padding::Reflect, ..Stage::conv1d(256, 64) },
            Stage::new(StageKind::Magnitude),
            Stage { activation: StageActivation::Relu, ..Stage::conv1d(16, 1) },
        ],
        back: vec![Stage { activation: StageActivation::Sigmoid, ..Stage::conv1d(2, 1) }],
    };
    let mut meta = Metadata::new(Architecture::new(CellKind::Lstm, 16, 8, 1));
    meta.stages = Some(stages);
    meta
}

fn signal(rng: &mut Rng, n: usize) -> Vec<f32> {
    // A tone plus noise: stages see structure, not only noise.
    (0..n).map(|i| 0.5 * (i as f32 * 0.21).sin() + rng.uniform_f32(-0.3, 0.3)).collect()
}

/// Runs `streams` signals through the model chunk by chunk in one batch and
/// returns each stream's results, `[stream][chunks * out_values]`.
fn run_streams(model: &Model, signals: &[Vec<f32>], threads: usize) -> Vec<Vec<f32>> {
    let stages = model.metadata().stages.clone().unwrap();
    let per = (stages.chunk * stages.channels) as usize;
    let mut st = model.new_chunk_state(signals.len()).unwrap();
    st.set_threads(threads);
    let chunks = signals[0].len() / per;
    let mut out = vec![Vec::new(); signals.len()];
    let mut x = vec![0.0; per * signals.len()];
    for c in 0..chunks {
        for (b, s) in signals.iter().enumerate() {
            x[b * per..][..per].copy_from_slice(&s[c * per..][..per]);
        }
        let y = model.run_chunk(&mut st, &x).unwrap();
        let each = y.len() / signals.len();
        for (b, o) in out.iter_mut().enumerate() {
            o.extend_from_slice(&y[b * each..][..each]);
        }
    }
    out
}

fn write(meta: &Metadata, weights: &Weights, dtype: DType, layout: Layout) -> Model {
    let bytes = ModelWriter::new(meta, weights).dtype(dtype).layout(layout).to_bytes().unwrap();
    Model::from_bytes(&bytes).unwrap()
}

/// Every chunked model of the suite in `dtypes`, on the kernels `on` picks,
/// against the reference, for 1 and 3 streams and 2 threads.
fn chunks_equal_the_reference(dtypes: &[DType], on: &dyn Fn(Model) -> Model, what: &str) {
    let mut rng = Rng::new(7);
    for meta in
        [vad_like(CellKind::Lstm), vad_like(CellKind::Gru), vad_like(CellKind::RnnTanh), odd_shapes(), wide_conv()]
    {
        let weights = Weights::random(&meta, &mut rng, 1.0);
        let stages = meta.stages.clone().unwrap();
        let per = (stages.chunk * stages.channels) as usize;
        let signals: Vec<Vec<f32>> = (0..3).map(|_| signal(&mut rng, per * 5)).collect();
        for (dtype, layout, tol) in [
            (DType::F32, Layout::Panel16, 2e-5),
            (DType::F32, Layout::Canonical, 2e-5),
            (DType::F16, Layout::Panel16, 2e-4),
            (DType::BF16, Layout::Panel16, 2e-4),
            (DType::I8, Layout::Panel16, 0.1),
        ] {
            if !dtypes.contains(&dtype) {
                continue;
            }
            {
                let isa = what;
                let model = on(write(&meta, &weights, dtype, layout));
                // The oracle runs on the weights the file holds (rounded to its
                // dtype), so only the kernels' arithmetic differs; int8 also
                // quantizes the activations it multiplies.
                let stored = model.weights();
                let tol = if dtype == DType::BF16 { lstmrt_testkit::bf16_tolerance(model.isa(), tol) } else { tol };
                let want: Vec<Vec<f32>> = signals.iter().map(|s| reference::run_chunks(&meta, &stored, s)).collect();
                for (batch, threads) in [(1, 1), (3, 1), (3, 2)] {
                    let got = run_streams(&model, &signals[..batch], threads);
                    for (b, (g, w)) in got.iter().zip(&want).enumerate() {
                        assert_eq!(g.len(), w.len());
                        let diff = reference::max_abs_diff(g, w);
                        let scale = w.iter().fold(1.0f32, |m, v| m.max(v.abs()));
                        assert!(
                            diff <= tol * scale,
                            "{} {} {layout:?} {isa} batch {batch} threads {threads} stream {b}: max diff {diff} (scale {scale})",
                            meta.architecture.cell.name(),
                            dtype.name()
                        );
                    }
                }
            }
        }
    }
}

lstmrt_testkit::per_tier! {
    fn chunks_equal_the_reference_for_every_float_dtype_and_batch(isa: Isa) {
        chunks_equal_the_reference(&[DType::F32, DType::F16, DType::BF16], &|m| m.with_isa(isa).unwrap(), isa.name());
    }

    fn some_streams_and_whole_signals_equal_the_reference_f32(isa: Isa) {
        let f = |m: &Metadata, w: &Weights| write(m, w, DType::F32, Layout::Panel16).with_isa(isa).unwrap();
        some_streams_and_whole_signals_equal_the_reference(&f, isa.name());
    }

    fn stft_fronts_run_as_an_fft_and_equal_the_reference_f32(isa: Isa) {
        stft_fronts_run_as_an_fft_and_equal_the_reference(&|m| m.with_isa(isa).unwrap());
    }
}

lstmrt_testkit::per_int8_form! {
    fn int8_chunks_equal_the_reference_for_every_batch(k: Int8Kernels) {
        chunks_equal_the_reference(&[DType::I8], &|m| k.apply(m), k.dot.name());
    }
}

/// `vad_like` with its first stage an STFT: a Hann-windowed DFT basis of 32
/// taps (34 channels, no bias), which the runtime recognises and runs as an
/// FFT; the reference runs the matrix product of the same f32 weights.
fn stft_front(cell: CellKind, rng: &mut Rng) -> (Metadata, Weights) {
    let meta = vad_like(cell);
    let mut weights = Weights::random(&meta, rng, 1.0);
    let n = 32;
    let mut basis = vec![0.0f32; (n + 2) * n];
    for k in 0..=n / 2 {
        for t in 0..n {
            let window = 0.5 - 0.5 * (std::f64::consts::TAU * t as f64 / n as f64).cos();
            let a = std::f64::consts::TAU * (k * t) as f64 / n as f64;
            basis[k * n + t] = (window * a.cos()) as f32;
            basis[(n / 2 + 1 + k) * n + t] = (-window * a.sin()) as f32;
        }
    }
    assert!(weights.set(&meta.architecture, "front.0.weight", basis));
    weights.stages.remove("front.0.bias");
    (meta, weights)
}

fn stft_fronts_run_as_an_fft_and_equal_the_reference(on: &dyn Fn(Model) -> Model) {
    let mut rng = Rng::new(11);
    for cell in [CellKind::Lstm, CellKind::Gru] {
        let (meta, weights) = stft_front(cell, &mut rng);
        let per = meta.stages.as_ref().unwrap().chunk as usize;
        let signals: Vec<Vec<f32>> = (0..5).map(|_| signal(&mut rng, per * 4)).collect();
        let f32_model = on(write(&meta, &weights, DType::F32, Layout::Panel16));
        assert!(f32_model.stage_runs_as_fft(0), "the f32 STFT is recognised");
        assert!((1..7).all(|i| !f32_model.stage_runs_as_fft(i)), "and nothing else");
        // f16 weights are the basis rounded to f16: the model computes with those.
        assert!(!on(write(&meta, &weights, DType::F16, Layout::Panel16)).stage_runs_as_fft(0));
        let stored = f32_model.weights();
        // 1, 4 (one group of lanes) and 5 streams; two threads.
        for (streams, threads) in [(1, 1), (4, 1), (5, 2)] {
            let got = run_streams(&f32_model, &signals[..streams], threads);
            for (b, g) in got.iter().enumerate() {
                let want = reference::run_chunks(&meta, &stored, &signals[b]);
                let diff = reference::max_abs_diff(g, &want);
                assert!(diff <= 2e-5, "{} batch {streams} stream {b}: max diff {diff}", cell.name());
            }
        }
    }
}

/// Streams that step at different times (a server's calls: some have a
/// chunk ready, some not) and a whole signal in one call, against the
/// reference run of each stream's own chunks.
fn some_streams_and_whole_signals_equal_the_reference(model: &dyn Fn(&Metadata, &Weights) -> Model, what: &str) {
    let mut rng = Rng::new(19);
    for meta in [vad_like(CellKind::Lstm), odd_shapes()] {
        let weights = Weights::random(&meta, &mut rng, 1.0);
        let model = model(&meta, &weights);
        let stored = model.weights();
        let stages = meta.stages.clone().unwrap();
        let per = (stages.chunk * stages.channels) as usize;
        let each = reference::run_chunks(&meta, &stored, &vec![0.0; per]).len();
        let streams = 5;
        let signals: Vec<Vec<f32>> = (0..streams).map(|_| signal(&mut rng, per * 6)).collect();
        let mut st = model.new_chunk_state(streams).unwrap();
        let mut done = vec![0usize; streams];
        let mut got = vec![Vec::new(); streams];
        // Eight ticks; a different subset, in a different order, each time.
        for tick in 0..8 {
            let mut ids: Vec<usize> = (0..streams).filter(|&s| (s + tick) % 3 != 0 && done[s] < 6).collect();
            if tick % 2 == 1 {
                ids.reverse();
            }
            if ids.is_empty() {
                continue;
            }
            let x: Vec<f32> = ids.iter().flat_map(|&s| signals[s][done[s] * per..][..per].to_vec()).collect();
            let y = model.run_chunk_streams(&mut st, &ids, &x).unwrap().to_vec();
            let width = y.len() / ids.len();
            assert_eq!(width, each);
            for (k, &s) in ids.iter().enumerate() {
                got[s].extend_from_slice(&y[k * width..][..width]);
                done[s] += 1;
            }
        }
        for s in 0..streams {
            let want = reference::run_chunks(&meta, &stored, &signals[s][..done[s] * per]);
            let diff = reference::max_abs_diff(&got[s], &want);
            assert!(
                got[s].len() == want.len() && diff <= 2e-5,
                "{what} stream {s} ({} chunks): max diff {diff}",
                done[s]
            );
        }
        // Whole signals whose last chunk is short (padded with zeros): one
        // chunk, a block of them, several blocks; and a signal that goes on
        // from where the last one ended (state and context carried).
        let mut one = model.new_chunk_state(1).unwrap();
        let mut whole = Vec::new();
        for chunks in [1, 7, 150] {
            let long = signal(&mut rng, per * (chunks - 1) + per / 3);
            whole.extend_from_slice(&long);
            whole.resize(whole.len().div_ceil(per) * per, 0.0);
            let want = reference::run_chunks(&meta, &stored, &whole);
            let mut out = vec![0.0; model.signal_chunks(long.len()) * each];
            model.run_signal(&mut one, &long, &mut out).unwrap();
            let want = &want[want.len() - out.len()..];
            let diff = reference::max_abs_diff(&out, want);
            assert!(diff <= 2e-5, "{what} whole signal of {chunks} chunks: max diff {diff}");
        }
    }
}

#[test]
fn bad_stream_lists_and_signals_are_errors() {
    let mut rng = Rng::new(5);
    let meta = vad_like(CellKind::Lstm);
    let model = write(&meta, &Weights::random(&meta, &mut rng, 1.0), DType::F32, Layout::Panel16);
    let mut st = model.new_chunk_state(3).unwrap();
    let x = vec![0.25; 64 * 2];
    let err = model.run_chunk_streams(&mut st, &[1, 1], &x).unwrap_err();
    assert_eq!(err.to_string(), "stream batch: stream 1 is given twice in one chunk");
    let err = model.run_chunk_streams(&mut st, &[0, 3], &x).unwrap_err();
    assert_eq!(err.to_string(), "stream batch: stream 3 of a batch of 3");
    assert!(matches!(model.run_chunk_streams(&mut st, &[], &[]), Err(Error::Stream { .. })));
    let err = model.run_chunk_streams(&mut st, &[2], &x).unwrap_err();
    assert_eq!(err.to_string(), "chunk has 128 values, expected 64 (batch 1 x 64 frames x 1 channels)");
    // Refused calls change nothing: stream 0 still starts from the beginning.
    let first = model.run_chunk_streams(&mut st, &[0], &x[..64]).unwrap()[0];
    let mut fresh = model.new_chunk_state(1).unwrap();
    assert_eq!(model.run_chunk(&mut fresh, &x[..64]).unwrap()[0], first);
    // A signal needs a one-stream state and room for every chunk.
    let mut out = vec![0.0; 2];
    assert!(matches!(model.run_signal(&mut st, &x, &mut out), Err(Error::Stream { .. })));
    let err = model.run_signal(&mut fresh, &x[..100], &mut out[..1]).unwrap_err();
    assert_eq!(err.to_string(), "signal output has 1 values, expected 2 (2 chunks x 1)");
    let mut bad = x.clone();
    bad[70] = f32::INFINITY;
    let err = model.run_signal(&mut fresh, &bad, &mut out).unwrap_err();
    assert_eq!(err.to_string(), "signal value 70 is inf: inputs must be finite");
}

#[test]
fn a_chunk_state_carries_context_and_state_and_resets() {
    let mut rng = Rng::new(11);
    let meta = vad_like(CellKind::Lstm);
    let weights = Weights::random(&meta, &mut rng, 1.0);
    let model = write(&meta, &weights, DType::F32, Layout::Panel16);
    let s = signal(&mut rng, 64 * 4);
    let whole = reference::run_chunks(&meta, &weights, &s);
    let mut st = model.new_chunk_state(2).unwrap();
    // Stream 1 runs the signal; stream 0 is reset before its third chunk,
    // so from there it is stream 1 from the start again.
    let mut got = [Vec::new(), Vec::new()];
    for c in 0..4 {
        if c == 2 {
            st.reset_stream(0).unwrap();
        }
        let first = if c < 2 { c } else { c - 2 };
        let mut x = s[first * 64..][..64].to_vec();
        x.extend_from_slice(&s[c * 64..][..64]);
        let y = model.run_chunk(&mut st, &x).unwrap().to_vec();
        got[0].push(y[0]);
        got[1].push(y[1]);
    }
    assert!(reference::max_abs_diff(&got[1], &whole) < 1e-5, "{:?} vs {whole:?}", got[1]);
    let again = [whole[0], whole[1], whole[0], whole[1]];
    assert!(reference::max_abs_diff(&got[0], &again) < 1e-5, "{:?} vs {again:?}", got[0]);
    // Context matters: a model that ignored it would give these equal.
    assert!((whole[0] - whole[2]).abs() > 0.0);
    st.reset();
    let y = model.run_chunk(&mut st, &[s[..64].to_vec(), s[..64].to_vec()].concat()).unwrap();
    assert!((y[0] - whole[0]).abs() < 1e-5 && (y[1] - whole[0]).abs() < 1e-5);
    assert!(matches!(st.reset_stream(2), Err(Error::Stream { .. })));
}

#[test]
fn bad_chunks_and_models_without_stages_are_errors() {
    let mut rng = Rng::new(3);
    let meta = vad_like(CellKind::Lstm);
    let model = write(&meta, &Weights::random(&meta, &mut rng, 1.0), DType::F32, Layout::Panel16);
    let mut st = model.new_chunk_state(1).unwrap();
    let err = model.run_chunk(&mut st, &[0.0; 63]).unwrap_err();
    assert_eq!(err.to_string(), "chunk has 63 values, expected 64 (batch 1 x 64 frames x 1 channels)");
    let mut x = vec![0.0; 64];
    x[17] = f32::NAN;
    let err = model.run_chunk(&mut st, &x).unwrap_err();
    assert_eq!(err.to_string(), "chunk value 17 is NaN: inputs must be finite");
    let plain = Metadata::new(Architecture::new(CellKind::Lstm, 4, 8, 1));
    let plain = write(&plain, &Weights::random(&plain, &mut rng, 1.0), DType::F32, Layout::Panel16);
    assert!(matches!(plain.new_chunk_state(1), Err(Error::Unsupported { .. })));
    // A state of another chunked model is refused.
    let meta2 = odd_shapes();
    let model2 = write(&meta2, &Weights::random(&meta2, &mut rng, 1.0), DType::F32, Layout::Panel16);
    let mut st2 = model2.new_chunk_state(1).unwrap();
    assert!(matches!(model.run_chunk(&mut st2, &[0.0; 64]), Err(Error::StateMismatch { .. })));
}

#[test]
fn the_stages_section_is_required_and_checked() {
    let mut rng = Rng::new(5);
    let meta = vad_like(CellKind::Lstm);
    let bytes = ModelWriter::new(&meta, &Weights::random(&meta, &mut rng, 1.0)).to_bytes().unwrap();
    let info = parse(&bytes).unwrap();
    assert_eq!((info.version_major, info.version_minor), (1, 3));
    assert_eq!(info.metadata.stages, meta.stages);
    // The stages entry is the second of the table, flagged REQUIRED, so a
    // reader that does not know it refuses the file.
    let entry = 64 + 32;
    assert_eq!(u32::from_le_bytes(bytes[entry..entry + 4].try_into().unwrap()), section::STAGES);
    assert_eq!(u32::from_le_bytes(bytes[entry + 4..entry + 8].try_into().unwrap()), section::FLAG_REQUIRED);
    assert!(info.tensor("front.0.weight").is_some() && info.tensor("back.1.bias").is_some());
    // Sizes that do not chain are named by stage.
    let mut bad = meta.clone();
    bad.stages.as_mut().unwrap().front[0].pad_right = 80;
    let err = bad.validate().unwrap_err().to_string();
    assert!(err.contains("stages.front[0].pad_right") && err.contains("reflect padding of 80"), "{err}");
    let mut bad = meta.clone();
    bad.stages.as_mut().unwrap().front.pop();
    let err = bad.validate().unwrap_err().to_string();
    assert!(err.contains("the front-end gives 24 features per step, the stack takes 16"), "{err}");
    let mut bad = meta.clone();
    bad.stages.as_mut().unwrap().front[1] = Stage { kernel: 3, ..Stage::new(StageKind::Magnitude) };
    assert!(bad.validate().unwrap_err().to_string().contains("magnitude takes no parameters"));
    let mut bad = meta.clone();
    bad.head = Some(format::Head {
        out_features: 1,
        activation: format::HeadActivation::None,
        task: format::HeadTask::Other,
        labels: vec![],
    });
    assert!(bad.validate().unwrap_err().to_string().contains("has its own head"));
    let mut bad = meta;
    bad.architecture.bidirectional = true;
    assert!(bad.validate().unwrap_err().to_string().contains("cannot carry its state from chunk to chunk"));
}
