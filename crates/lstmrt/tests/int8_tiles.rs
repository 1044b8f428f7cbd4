//! The AMX int8 form against AVX-512 VNNI, bit for bit, through whole models:
//! every cell kind, a projection, two layers, bidirectional, batches 1 to
//! 100 (below, at and above one 16-row tile), one and two threads, one- and
//! two-byte activations, whole sequences and one step at a time. Both forms
//! sum the same integers and finish them with the same avx512 code, so any
//! difference is a bug in the tiles' blocking, buffers or sums.
//!
//! The tiles run twice: with their instructions emulated in plain Rust (the
//! `amx-emulated` product, chosen per model), on any CPU with AVX-512 VNNI;
//! and with the instructions themselves (`Isa::Amx`) where the CPU and the
//! OS allow AMX.

use lstmrt_testkit as common;

use common::{Rng, random_weights};
use lstmrt::format::{Architecture, CellKind, DType, Metadata};
use lstmrt::{Int8Activations, Int8Dot, Isa, Model, ModelWriter};

/// The models, each with the batches and threads it runs with.
fn cases() -> Vec<(&'static str, Architecture, Vec<usize>)> {
    let mut proj = Architecture::new(CellKind::Lstm, 40, 64, 1);
    proj.proj_size = 24;
    let mut onnx_gru = Architecture::new(CellKind::Gru, 40, 64, 1);
    onnx_gru.linear_before_reset = false;
    let mut bi = Architecture::new(CellKind::Lstm, 40, 48, 2);
    bi.bidirectional = true;
    vec![
        ("LSTM", Architecture::new(CellKind::Lstm, 40, 64, 1), vec![1, 15, 16, 17, 32, 100]),
        ("LSTM k=512", Architecture::new(CellKind::Lstm, 512, 64, 1), vec![32]),
        ("LSTM proj", proj, vec![16, 33]),
        ("GRU", Architecture::new(CellKind::Gru, 40, 64, 1), vec![17, 32]),
        ("GRU onnx", onnx_gru, vec![17, 32]),
        ("RNN tanh", Architecture::new(CellKind::RnnTanh, 40, 64, 1), vec![16, 20]),
        ("LSTM bi x2", bi, vec![9, 32]),
    ]
}

/// Every output of every case on tier `isa` with the int8 product `dot`, as bits.
fn outputs(isa: Isa, dot: Int8Dot) -> Vec<(String, Vec<u32>)> {
    let mut out = Vec::new();
    for (name, arch, batches) in cases() {
        let meta = Metadata::new(arch.clone());
        let weights = random_weights(&meta, &mut Rng::new(7), 1.0);
        let bytes = ModelWriter::new(&meta, &weights).dtype(DType::I8).to_bytes().expect("int8 model");
        let steps = 5;
        for batch in batches {
            let xs = Rng::new(batch as u64).vec(steps * batch * arch.input_size as usize, 1.0);
            for mode in Int8Activations::ALL {
                let model = Model::from_bytes(&bytes)
                    .unwrap()
                    .with_isa(isa)
                    .unwrap()
                    .with_int8_dot(dot)
                    .unwrap()
                    .with_int8_activations(mode);
                for threads in [1, 2] {
                    let mut state = model.new_batch_state(batch).unwrap();
                    state.set_threads(threads);
                    let whole = model.run(&mut state, &xs).unwrap().to_vec();
                    let label = format!("{name} batch {batch} {} x{threads}", mode.name());
                    out.push((label.clone(), whole.iter().map(|v| v.to_bits()).collect()));
                    if arch.bidirectional {
                        continue;
                    }
                    let mut state = model.new_batch_state(batch).unwrap();
                    state.set_threads(threads);
                    let stepped: Vec<u32> = xs
                        .chunks(batch * arch.input_size as usize)
                        .flat_map(|x| model.step(&mut state, x).unwrap().to_vec())
                        .map(f32::to_bits)
                        .collect();
                    out.push((format!("{label} stepped"), stepped));
                }
            }
        }
    }
    out
}

fn compare(what: &str, want: &[(String, Vec<u32>)], got: &[(String, Vec<u32>)]) {
    assert_eq!(want.len(), got.len(), "{what}: as many outputs");
    for ((label, w), (label2, g)) in want.iter().zip(got) {
        assert_eq!(label, label2);
        let differ = w.iter().zip(g).filter(|(a, b)| a != b).count();
        assert!(w.len() == g.len() && differ == 0, "{what}, {label}: {differ} of {} outputs differ", w.len());
    }
    eprintln!("{what}: {} runs, bit for bit the avx512-vnni form", want.len());
}

/// The avx512-vnni product's outputs, or why this CPU has none.
fn vnni() -> Option<Vec<(String, Vec<u32>)>> {
    if !Int8Dot::Avx512Vnni.available() {
        eprintln!("int8_tiles: this CPU has no AVX-512 VNNI; nothing checked");
        return None;
    }
    Some(outputs(Isa::Avx512, Int8Dot::Avx512Vnni))
}

#[test]
fn emulated_tiles_give_the_vnni_products_sums_bit_for_bit() {
    let Some(want) = vnni() else { return };
    compare("emulated tiles", &want, &outputs(Isa::Avx512, Int8Dot::AmxEmulated));
}

#[test]
fn the_tile_instructions_give_the_vnni_products_sums_bit_for_bit() {
    let Some(want) = vnni() else { return };
    match lstmrt_kernels::amx::status() {
        Ok(()) => compare("AMX tiles", &want, &outputs(Isa::Amx, Int8Dot::Amx)),
        Err(why) => eprintln!("no AMX here ({why}): the tile instructions themselves not run"),
    }
}
