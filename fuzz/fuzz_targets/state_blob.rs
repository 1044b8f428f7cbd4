//! `State::from_bytes` on any blob, for each of four models; a blob that
//! loads runs a step and saves back to the same bytes.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use lstmrt::{Model, State};

fn models() -> &'static [Model] {
    static MODELS: OnceLock<Vec<Model>> = OnceLock::new();
    MODELS.get_or_init(|| {
        lstmrt_fuzz::model_files().iter().map(|f| Model::from_bytes(f).expect("a valid base file")).collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, blob)) = data.split_first() else { return };
    let model = &models()[pick as usize % models().len()];
    let Ok(mut state) = State::from_bytes(model, blob) else { return };
    assert_eq!(state.to_bytes(), blob, "a loaded blob saves back unchanged");
    let features = model.architecture().input_size as usize;
    let xs = vec![0.25f32; features * state.batch()];
    model.run(&mut state, &xs).expect("a loaded state runs a step");
});
