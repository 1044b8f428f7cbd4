//! Property test: mutate valid model files at random (bit flips, truncation,
//! splices), with and without fixing up the checksums so the mutation reaches
//! the deeper checks, and assert that `Model::from_bytes` returns `Ok` or
//! `Err` and never panics; when it returns `Ok`, running the model works.

use lstmrt::Model;
use lstmrt_testkit::fuzz::{exercise_model, fix_up, model_files as base_files, reseal};
use proptest::prelude::*;

fn exercise(bytes: &[u8]) {
    exercise_model(bytes, bytes.len());
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
            fix_up(&mut bytes);
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

/// The seeds `fuzz/seeds/` holds for the model-file, tensor-payload and
/// state-blob fuzz targets: each base file, its tensor data section behind
/// the byte that picks it, and a state blob of batch 1 and 2 holding
/// set values. `LSTMRT_WRITE_FUZZ_SEEDS=1` rewrites them.
fn generated_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for (i, file) in base_files().into_iter().enumerate() {
        let model = Model::from_bytes(&file).unwrap();
        let (start, end) = lstmrt_format::parse(&file).unwrap().data_section;
        let mut payload = vec![i as u8];
        payload.extend_from_slice(&file[start as usize..end as usize]);
        seeds.push((format!("tensor_payload/base{i}"), payload));
        for batch in [1, 2] {
            // Values set from a formula, not by running the model: a run's
            // last bits depend on the machine's instruction-set tier.
            let mut state = model.new_batch_state(batch).unwrap();
            let h: Vec<f32> = (0..state.h().len()).map(|k| k as f32 / 8.0 - 1.0).collect();
            let c: Vec<f32> = (0..state.c().len()).map(|k| 0.25 - k as f32 / 16.0).collect();
            state.set_h(&h).unwrap();
            state.set_c(&c).unwrap();
            let mut blob = vec![i as u8];
            blob.extend_from_slice(&state.to_bytes());
            seeds.push((format!("state_blob/base{i}_batch{batch}"), blob));
        }
        seeds.push((format!("model_file/base{i}.lstm"), file));
    }
    seeds
}

#[test]
fn committed_fuzz_seeds_are_the_files_made_here() {
    let root = lstmrt_testkit::repo_root().join("fuzz/seeds");
    let write = std::env::var_os("LSTMRT_WRITE_FUZZ_SEEDS").is_some();
    for (name, bytes) in generated_seeds() {
        let path = root.join(&name);
        if write {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        let committed = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(committed == bytes, "{} is stale: run with LSTMRT_WRITE_FUZZ_SEEDS=1", path.display());
    }
}
