//! Tensor decoding in every dtype: the first byte picks a valid model file
//! (f32, f16, bf16 or int8), the rest is written over its tensor data
//! section, the checksums are fixed, and the file is exercised. Weights, int8
//! scales and stored states get any bit pattern (NaN, infinities, subnormals).
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn bases() -> &'static [(Vec<u8>, (usize, usize))] {
    static BASES: OnceLock<Vec<(Vec<u8>, (usize, usize))>> = OnceLock::new();
    BASES.get_or_init(|| {
        lstmrt_fuzz::model_files()
            .into_iter()
            .map(|f| {
                let (start, end) = lstmrt_format::parse(&f).expect("a valid base file").data_section;
                (f, (start as usize, end as usize))
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, payload)) = data.split_first() else { return };
    let (base, (start, end)) = &bases()[pick as usize % bases().len()];
    let mut file = base.clone();
    let n = payload.len().min(end - start);
    file[*start..start + n].copy_from_slice(&payload[..n]);
    lstmrt_fuzz::reseal(&mut file);
    lstmrt_fuzz::exercise_model(&file, pick as usize / 4);
});
