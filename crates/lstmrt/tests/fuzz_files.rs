//! Property test: mutate valid model files at random (bit flips, truncation,
//! splices), with and without fixing up the checksums so the mutation reaches
//! the deeper checks, and assert that `Model::from_bytes` returns `Ok` or
//! `Err` and never panics; when it returns `Ok`, running the model works.

use lstmrt_testkit as common;

use lstmrt::{Model, ModelWriter, Weights};
use lstmrt_format::{Architecture, CellKind, Metadata, seal_header};
use proptest::prelude::*;

fn base_files() -> Vec<Vec<u8>> {
    let mut files = Vec::new();
    let mut text = common::text_classifier(4, 5, &["he", "she"]);
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
        (text, lstmrt::format::DType::F32),
        (Metadata::new(proj), lstmrt::format::DType::F16),
        (Metadata::new(gru), lstmrt::format::DType::BF16),
        (Metadata::new(int8), lstmrt::format::DType::I8),
    ] {
        let mut w = Weights::zeros(&meta);
        for lw in &mut w.layers {
            lw.w_ih.iter_mut().enumerate().for_each(|(i, v)| *v = (i as f32 * 0.37).sin());
        }
        files.push(ModelWriter::new(&meta, &w).dtype(dtype).to_bytes().unwrap());
    }
    files
}

/// Recomputes every section CRC the table points at (where in bounds) and the
/// header CRC, so a mutation inside a section is not stopped by a checksum.
fn reseal(bytes: &mut [u8]) {
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

fn exercise(bytes: &[u8]) {
    if let Ok(model) = Model::from_bytes(bytes) {
        let _ = model.verify();
        let arch = model.architecture().clone();
        let mut state = model.new_state();
        let xs = vec![0.5f32; 3 * arch.input_size as usize];
        let out = model.run(&mut state, &xs).expect("a model that opened runs");
        assert_eq!(out.len(), 3 * arch.sequence_output_size());
        let _ = model.tokenize("he said she said");
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Truncate { keep: usize },
    Splice { at: usize, bytes: Vec<u8> },
    Insert { at: usize, bytes: Vec<u8> },
    Overwrite64 { at: usize, value: u64 },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        1 => any::<usize>().prop_map(|keep| Mutation::Truncate { keep }),
        2 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(at, bytes)| Mutation::Splice { at, bytes }),
        1 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        2 => (any::<usize>(), prop_oneof![Just(0u64), Just(u64::MAX), Just(1 << 62), any::<u64>(), 0u64..1024])
            .prop_map(|(at, value)| Mutation::Overwrite64 { at, value }),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let n = bytes.len();
    if n == 0 {
        return; // truncated to nothing by an earlier mutation
    }
    match m {
        Mutation::Flip { at, bit } => bytes[at % n] ^= 1 << bit,
        Mutation::Truncate { keep } => bytes.truncate(keep % n),
        Mutation::Splice { at, bytes: b } => {
            let at = at % n;
            let end = (at + b.len()).min(n);
            bytes[at..end].copy_from_slice(&b[..end - at]);
        }
        Mutation::Insert { at, bytes: b } => {
            let at = at % n;
            bytes.splice(at..at, b.iter().copied());
        }
        Mutation::Overwrite64 { at, value } => {
            let at = (at % n.saturating_sub(8).max(1)) & !7;
            if at + 8 <= n {
                bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_files_never_panic(file in 0usize..4, mutations in prop::collection::vec(mutation(), 1..4), fix in any::<bool>()) {
        let mut bytes = base_files()[file].clone();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        if fix {
            // Also fix the declared length so the mutation is not caught there.
            if bytes.len() >= 64 {
                let len = bytes.len() as u64;
                bytes[32..40].copy_from_slice(&len.to_le_bytes());
            }
            reseal(&mut bytes);
        }
        exercise(&bytes);
    }

    #[test]
    fn spliced_files_never_panic(a in 0usize..4, b in 0usize..4, cut_a in any::<usize>(), cut_b in any::<usize>()) {
        let files = base_files();
        let (fa, fb) = (&files[a], &files[b]);
        let mut bytes = fa[..cut_a % fa.len()].to_vec();
        bytes.extend_from_slice(&fb[cut_b % fb.len()..]);
        exercise(&bytes);
        reseal(&mut bytes);
        exercise(&bytes);
    }
}

#[test]
fn base_files_are_valid() {
    for f in base_files() {
        Model::from_bytes(&f).unwrap().verify().unwrap();
        exercise(&f);
    }
}
