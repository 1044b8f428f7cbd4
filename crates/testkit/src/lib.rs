//! Helpers shared by the integration tests of the workspace's crates: the
//! fixtures in the repository's `tests/fixtures/`, PyTorch's golden cases,
//! comparisons that fail on NaN, temporary folders, seeded data.

use std::path::{Path, PathBuf};

use lstmrt::Weights;
use lstmrt::format::{CellKind, Metadata};
use lstmrt_import::pytorch;

pub mod alloc;
pub mod fuzz;
pub mod tiers;

pub use tiers::{Int8Kernels, bf16_tolerance, rel_diff};

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `tests/fixtures/` at the repository root.
pub fn fixtures() -> PathBuf {
    repo_root().join("tests/fixtures")
}

/// The bundled demo model, `models/pronoun.lstm`.
pub fn demo_model() -> PathBuf {
    repo_root().join("models/pronoun.lstm")
}

/// The samples of a 16-bit PCM mono WAV file (the fixtures' audio) as
/// floats in [-1, 1) (`/ 32768`, as the `silero-vad` package's loaders
/// do), with its sampling rate. Panics on anything else: test data only.
pub fn read_wav_pcm16(path: &Path) -> (u32, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WAVE", "{}: not a WAV", path.display());
    let (mut at, mut rate, mut samples) = (12, None, None);
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        let body = &bytes[at + 8..(at + 8 + len).min(bytes.len())];
        if id == b"fmt " {
            let u16_at = |i: usize| u16::from_le_bytes([body[i], body[i + 1]]);
            assert!(u16_at(0) == 1 && u16_at(2) == 1 && u16_at(14) == 16, "{}: not 16-bit PCM mono", path.display());
            rate = Some(u32::from_le_bytes(body[4..8].try_into().unwrap()));
        } else if id == b"data" {
            samples = Some(body.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0).collect());
        }
        at += 8 + len + (len & 1);
    }
    (rate.expect("a fmt chunk"), samples.expect("a data chunk"))
}

/// A PyTorch golden case: the model, its input and PyTorch's outputs.
pub struct Golden {
    pub name: String,
    pub meta: Metadata,
    pub weights: Weights,
    pub input: Vec<f32>,
    pub batch: usize,
    pub h0: Option<Vec<f32>>,
    pub c0: Option<Vec<f32>>,
    pub output: Vec<f32>,
    pub output_shape: Vec<usize>,
    pub h_n: Vec<f32>,
    pub c_n: Option<Vec<f32>>,
}

fn npy(dir: &Path, name: &str) -> Option<lstmrt_import::npy::Array> {
    let p = dir.join(name);
    p.exists().then(|| lstmrt_import::npy::read(&p).unwrap_or_else(|e| panic!("{e}")))
}

/// Every case in `tests/fixtures/pytorch/`, sorted by name.
pub fn golden_cases() -> Vec<Golden> {
    let root = fixtures().join("pytorch");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 14, "expected the PyTorch fixtures in {}", root.display());
    dirs.iter().map(|d| load_golden(d)).collect()
}

/// Every case in `tests/fixtures/pytorch_packed/` (PyTorch run on
/// `pack_padded_sequence` batches, `tools/make_packed_fixtures.py`), sorted by
/// name, each with its rows' lengths.
pub fn packed_cases() -> Vec<(Golden, Vec<usize>)> {
    let root = fixtures().join("pytorch_packed");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 9, "expected the packed PyTorch fixtures in {}", root.display());
    dirs.iter()
        .map(|d| {
            let lengths = npy(d, "lengths.npy").expect("lengths.npy");
            assert_eq!(lengths.dtype, "int64");
            (load_golden(d), lengths.data.iter().map(|&v| v as usize).collect())
        })
        .collect()
}

/// The golden case in folder `dir`.
pub fn load_golden(dir: &Path) -> Golden {
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let cell = CellKind::from_name(config["cell"].as_str().unwrap()).unwrap();
    let tensors = pytorch::read_safetensors(&dir.join("weights.safetensors")).unwrap();
    let options = pytorch::Options { cell: Some(cell), ..Default::default() };
    let (meta, weights) = pytorch::from_state_dict(&tensors, &options, "weights.safetensors").unwrap();
    let input = npy(dir, "input.npy").unwrap();
    let output = npy(dir, "output.npy").unwrap();
    Golden {
        name: dir.file_name().unwrap().to_string_lossy().into(),
        meta,
        weights,
        batch: input.shape[1],
        input: input.to_f32(),
        h0: npy(dir, "h0.npy").map(|a| a.to_f32()),
        c0: npy(dir, "c0.npy").map(|a| a.to_f32()),
        output_shape: output.shape.clone(),
        output: output.to_f32(),
        h_n: npy(dir, "h_n.npy").unwrap().to_f32(),
        c_n: npy(dir, "c_n.npy").map(|a| a.to_f32()),
    }
}

/// [`lstmrt::reference::max_abs_diff`] (NaN counts as infinitely
/// different), panicking on a length mismatch so a test says which it was.
#[track_caller]
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    lstmrt::reference::max_abs_diff(a, b)
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new empty folder whose name has `tag` in it.
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("lstmrt-test-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    /// `name` inside the folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Deterministic test data from the library's seeded generator.
pub struct Rng(lstmrt::rng::Rng);

impl Rng {
    /// The generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(lstmrt::rng::Rng::new(seed))
    }
    /// Uniform in [-scale, scale).
    pub fn uniform(&mut self, scale: f32) -> f32 {
        self.0.uniform_f32(-scale, scale)
    }
    /// `n` values uniform in [-scale, scale).
    pub fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(scale)).collect()
    }
}

/// Random weights for `meta`, uniform in ±gain/sqrt(H).
pub fn random_weights(meta: &Metadata, rng: &mut Rng, gain: f32) -> Weights {
    Weights::random(meta, &mut rng.0, gain)
}

/// Metadata of a small chunked model (format 1.3 stages) shaped like Silero
/// VAD: 32 frames after 4 of context, a reflect-padded strided conv, the
/// magnitude, a padded conv with ReLU, the `cell` stack (input 6, hidden 5),
/// a 1x1 conv with sigmoid, the mean.
pub fn small_vad(cell: CellKind) -> Metadata {
    use lstmrt::format::{Architecture, Padding, Stage, StageActivation, StageKind, Stages};
    let mut meta = Metadata::new(Architecture::new(cell, 6, 5, 1));
    meta.stages = Some(Stages {
        chunk: 32,
        channels: 1,
        context: 4,
        sample_rate: 8000,
        front: vec![
            Stage { stride: 8, pad_right: 4, padding: Padding::Reflect, ..Stage::conv1d(12, 16) },
            Stage::new(StageKind::Magnitude),
            Stage { pad_left: 1, pad_right: 1, activation: StageActivation::Relu, ..Stage::conv1d(6, 3) },
        ],
        back: vec![Stage { activation: StageActivation::Sigmoid, ..Stage::conv1d(1, 1) }, Stage::new(StageKind::Mean)],
    });
    meta
}

/// Metadata of a small word-level he/she classifier: embedding, LSTM, softmax
/// head; the vocabulary is `<unk>` (the unknown token) then `words`.
pub fn text_classifier(input: usize, hidden: usize, words: &[&str]) -> Metadata {
    use lstmrt::format::{Architecture, CellKind, Embedding, Head, HeadActivation, HeadTask, Tokenizer, Vocabulary};
    let mut tokens = vec!["<unk>".to_string()];
    tokens.extend(words.iter().map(|w| w.to_string()));
    let mut meta = Metadata::new(Architecture::new(CellKind::Lstm, input, hidden, 1));
    meta.embedding = Some(Embedding { num_embeddings: tokens.len() as u32 });
    meta.vocabulary = Some(Vocabulary { tokenizer: Tokenizer::Word, lowercase: true, tokens, unknown: Some(0) });
    meta.head = Some(Head {
        out_features: 2,
        activation: HeadActivation::Softmax,
        task: HeadTask::Classifier,
        labels: vec!["he".into(), "she".into()],
    });
    meta
}
