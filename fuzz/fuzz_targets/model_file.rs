//! A model file as `Model::from_bytes` gets it, and again with its length
//! field and checksums fixed so mutations reach the deeper checks; a file
//! that parses is verified, run on two tiers and its state saved and loaded.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lstmrt_fuzz::exercise_model(data, data.len());
    let mut fixed = data.to_vec();
    lstmrt_fuzz::fix_up(&mut fixed);
    if fixed != data {
        lstmrt_fuzz::exercise_model(&fixed, data.len() + 1);
    }
});
