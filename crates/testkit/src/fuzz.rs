//! What the model-file property test (`crates/lstmrt/tests/fuzz_files.rs`)
//! and the coverage-guided fuzz targets (`fuzz/`) share: small valid model
//! files of every dtype to start from, a way to keep a mutated file's
//! checksums right so a mutation reaches the deeper checks, and what is done
//! with a file that parses.

use lstmrt::format::{Architecture, CellKind, DType, Metadata};
use lstmrt::{Isa, Model, ModelWriter, Weights};
use lstmrt_format::seal_header;

/// Four small, valid model files: a two-layer text classifier with provenance
/// (f32), a bidirectional LSTM with projection, peepholes and clipping (f16),
/// a bidirectional GRU (bf16) and a two-layer projected LSTM (int8).
pub fn model_files() -> Vec<Vec<u8>> {
    let mut files = Vec::new();
    let mut text = crate::text_classifier(4, 5, &["he", "she"]);
    text.architecture.num_layers = 2;
    text.provenance.producer = "fuzz".into();
    text.provenance.push("key", "value");
    let mut proj = Architecture::new(CellKind::Lstm, 3, 6, 1);
    proj.proj_size = 2;
    proj.bidirectional = true;
    proj.peepholes = true;
    proj.clip = Some(3.0);
    let mut gru = Architecture::new(CellKind::Gru, 2, 3, 1);
    gru.bidirectional = true;
    let mut int8 = Architecture::new(CellKind::Lstm, 5, 7, 2);
    int8.proj_size = 3;
    for (meta, dtype) in [
        (text, DType::F32),
        (Metadata::new(proj), DType::F16),
        (Metadata::new(gru), DType::BF16),
        (Metadata::new(int8), DType::I8),
    ] {
        let mut w = Weights::zeros(&meta);
        for lw in &mut w.layers {
            lw.w_ih.iter_mut().enumerate().for_each(|(i, v)| *v = (i as f32 * 0.37).sin());
        }
        files.push(ModelWriter::new(&meta, &w).dtype(dtype).to_bytes().expect("a valid model writes"));
    }
    // A chunked model (format 1.3 stages): the stages section and the
    // stage tensors get mutated too.
    let chunked = crate::small_vad(CellKind::Gru);
    let w = crate::random_weights(&chunked, &mut crate::Rng::new(3), 1.0);
    for dtype in [DType::F32, DType::I8] {
        files.push(ModelWriter::new(&chunked, &w).dtype(dtype).to_bytes().expect("a valid model writes"));
    }
    files
}

/// Recomputes every section CRC the table points at (where in bounds) and the
/// header CRC, so a mutation inside a section is not stopped by a checksum.
pub fn reseal(bytes: &mut [u8]) {
    if bytes.len() < 64 {
        return;
    }
    let count = u32::from_le_bytes(bytes[48..52].try_into().unwrap()).min(64) as usize;
    for i in 0..count {
        let e = 64 + 32 * i;
        if e + 32 > bytes.len() {
            break;
        }
        let off = u64::from_le_bytes(bytes[e + 8..e + 16].try_into().unwrap());
        let len = u64::from_le_bytes(bytes[e + 16..e + 24].try_into().unwrap());
        if let Some(end) = off.checked_add(len).filter(|&end| end <= bytes.len() as u64) {
            let crc = crc32c::crc32c(&bytes[off as usize..end as usize]);
            bytes[e + 24..e + 28].copy_from_slice(&crc.to_le_bytes());
        }
    }
    let table_end = 64 + 32 * count;
    if table_end <= bytes.len() && u64::from_le_bytes(bytes[40..48].try_into().unwrap()) == 64 {
        seal_header(bytes);
    }
}

/// Sets the header's declared file length to the real one and reseals, the
/// fix-ups a mutated file needs to get past the header and table checks.
pub fn fix_up(bytes: &mut [u8]) {
    if bytes.len() >= 64 {
        let len = bytes.len() as u64;
        bytes[32..40].copy_from_slice(&len.to_le_bytes());
    }
    reseal(bytes);
}

/// Parses `bytes` as a model file; when that succeeds, verifies it, runs it
/// (a batch of one for three steps, on the dispatched tier and on the tier
/// `pick` selects), saves and restores the state, and tokenizes a text.
/// Panics only when a model that opened fails to run: that is a bug.
pub fn exercise_model(bytes: &[u8], pick: usize) {
    let Ok(model) = Model::from_bytes(bytes) else { return };
    let _ = model.verify();
    let arch = model.architecture().clone();
    let xs = vec![0.5f32; 3 * arch.input_size as usize];
    let mut state = model.new_state();
    let out = model.run(&mut state, &xs).expect("a model that opened runs");
    assert_eq!(out.len(), 3 * arch.sequence_output_size());
    let blob = state.to_bytes();
    lstmrt::State::from_bytes(&model, &blob).expect("a state's own blob loads");
    let _ = model.tokenize("he said she said");
    if let (Some(stages), Some(plan)) = (model.metadata().stages.clone(), model.stages_plan().cloned()) {
        // Sizes are bounded at open; this fuzz corpus's windows are small.
        if stages.window() * (stages.channels as usize) <= 1 << 16 {
            let mut st = model.new_chunk_state(2).expect("a chunked model makes chunk states");
            let x = vec![0.25f32; 2 * (stages.chunk * stages.channels) as usize];
            let out = model.run_chunk(&mut st, &x).expect("a chunked model that opened runs a chunk");
            assert_eq!(out.len(), 2 * plan.out_values());
        }
    }
    let tiers = Isa::available_tiers();
    let isa = tiers[pick % tiers.len()];
    if isa != model.isa() {
        let other = model.with_isa(isa).expect("an available tier");
        let mut state = other.new_state();
        other.run(&mut state, &xs).expect("a model that opened runs on every tier");
    }
}
