//! The committed demo model `models/pronoun.lstm`, read by lstmrt only.
//!
//! It was written by (see docs/train.md):
//!
//! ```text
//! lstm-train train --task pronoun --hidden 64 --embed 32 --steps 2500 --eval-every 250 \
//!     --unknown-rate 0.25 --train-size 12000 --seed 1 --out models/pronoun.lstm \
//!     --checkpoint target/pronoun.ckpt --log docs/pronoun-training.csv
//! ```

use lstm_train::data::pronoun::{self, Lexicon, PronounConfig, Story};
use lstm_train::rng::Rng;
use lstmrt::format::{DType, HeadTask};
use lstmrt::{Model, reference};

fn model() -> Model {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/pronoun.lstm");
    let model = Model::open(path).unwrap();
    model.verify().unwrap();
    model
}

/// `(P(he), P(she))` for a text, through lstmrt: tokenize, run, head at the last step.
fn answer(model: &Model, text: &str) -> (f32, f32) {
    let ids = model.tokenize(text).unwrap();
    answer_ids(model, &ids)
}

fn answer_ids(model: &Model, ids: &[u32]) -> (f32, f32) {
    let xs = model.token_inputs(ids).unwrap();
    let mut state = model.new_state();
    let out = model.run(&mut state, &xs).unwrap();
    let width = model.architecture().sequence_output_size();
    let mut p = [0.0f32; 2];
    model.apply_head(&out[out.len() - width..], &mut p).unwrap();
    (p[0], p[1])
}

/// The generator settings of the demo command (checked against the file's provenance).
fn demo_config() -> PronounConfig {
    PronounConfig {
        train_distance: (2, 100),
        test_distance: (50, 100),
        people: (1, 3),
        unknown_rate: 0.25,
        train: 12_000,
        valid: 500,
        test: 1_000,
        seed: 1,
    }
}

#[test]
fn demo_model_is_a_small_pronoun_classifier_with_provenance() {
    let model = model();
    let meta = model.metadata();
    let len = std::fs::metadata(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/pronoun.lstm")).unwrap().len();
    assert!(len < 400_000, "{len} bytes");
    assert_eq!(model.dtype(), DType::F32);
    let head = meta.head.as_ref().unwrap();
    assert_eq!(head.task, HeadTask::Classifier);
    assert_eq!(head.labels, vec!["he", "she"]);
    let p = &meta.provenance;
    assert!(p.producer.starts_with("lstm-train "));
    assert_eq!(p.get("task"), Some("pronoun"));
    assert_eq!(p.get("pronoun.test_distance"), Some("50..=100"));
    assert_eq!(p.get("pronoun.train_distance"), Some("2..=100"));
    assert_eq!(p.get("pronoun.sizes"), Some("12000/500/1000"));
    assert_eq!(p.get("pronoun.unknown_rate"), Some("0.25"));
    assert_eq!(p.get("pronoun.seed"), Some("1"));
    let recorded: f64 = p.get("result.test_accuracy").unwrap().parse().unwrap();
    assert!(recorded >= 0.95, "{recorded}");
}

#[test]
fn demo_model_answers_held_out_stories_with_50_or_more_words_before_the_blank() {
    let model = model();
    let lex = Lexicon::new();
    // The very test split of the training run: stories it never trained on.
    let [_, _, test] = pronoun::splits(&lex, &demo_config());
    let stories: Vec<&Story> = test.iter().take(300).collect();
    assert!(stories.iter().all(|s| s.distance >= 50));
    let mut right = 0;
    for s in &stories {
        let (he, she) = answer_ids(&model, &s.tokens);
        right += usize::from((she > he) == (s.answer == pronoun::Gender::She));
    }
    let accuracy = right as f64 / stories.len() as f64;
    assert!(accuracy >= 0.95, "accuracy {accuracy}");
}

#[test]
fn hand_written_stories_with_unseen_words_get_sensible_answers() {
    let model = model();
    let stories = [
        (
            "Mary went to the bakery early in the morning. The streets were empty and quiet, and a cold wind \
             blew through the old town. Then",
            "she",
        ),
        (
            "Peter opened the window. He looked at the garden. Later Anna knocked on the door. The kettle was \
             boiling and the radio played an old song in the kitchen. After a while,",
            "she",
        ),
        (
            "Emma met Lucas at the station. The train was late, the platform was crowded, and the announcements \
             kept changing every few minutes. In the end,",
            "he",
        ),
        (
            "Olivia sat by the fire. She was reading a book. Then James walked in. Outside the snow kept falling \
             over the quiet village, covering the roads and the roofs. So",
            "he",
        ),
        ("John arrived. Then", "he"),
        ("Sarah arrived. Then", "she"),
        (
            "Lucy and her dog walked along the beach for hours. The waves were loud and the sky turned grey as \
             the evening came. Later,",
            "she",
        ),
        (
            "David fixed the old bicycle in the garage. The tools were scattered on the floor and the radio was \
             playing jazz. After that,",
            "he",
        ),
        (
            "George called Hannah from the office. The printer was broken again, the coffee machine made strange \
             noises, and the meeting ran late. Then",
            "she",
        ),
    ];
    let unknown = model.metadata().vocabulary.as_ref().unwrap().unknown.unwrap();
    for (text, want) in stories {
        let (he, she) = answer(&model, text);
        let p = if want == "he" { he } else { she };
        assert!(p > 0.8, "P({want}) = {p} for {text:?}");
        // These stories really do use words the generator never wrote.
        if text.len() > 40 {
            assert!(model.tokenize(text).unwrap().contains(&unknown), "{text}");
        }
    }
}

/// The units the head reads the answer from: largest `|W_she - W_he|`.
fn memory_units(model: &Model, count: usize) -> Vec<usize> {
    let h = model.architecture().hidden();
    let head = model.weights().head.unwrap();
    let mut units: Vec<(f32, usize)> = (0..h).map(|j| ((head.weight[h + j] - head.weight[j]).abs(), j)).collect();
    units.sort_by(|a, b| b.0.total_cmp(&a.0));
    units.into_iter().take(count).map(|u| u.1).collect()
}

#[test]
fn forget_gate_of_the_memory_units_drops_when_a_new_person_is_introduced() {
    let model = model();
    let (arch, weights) = (model.architecture().clone(), model.weights());
    let h = arch.hidden();
    let units = memory_units(&model, 8);
    let lex = Lexicon::new();
    let stories = pronoun::stories(&lex, 150, (10, 40), (2, 3), &mut Rng::new(77), &mut Default::default());
    let (mut at_names, mut in_filler) = (Vec::new(), Vec::new());
    // Per gender of the new person: mean f, and whether some memory unit's f fell below 0.1.
    let mut by_gender: [Vec<(f64, bool)>; 2] = [Vec::new(), Vec::new()];
    for s in &stories {
        let xs = model.token_inputs(&s.tokens).unwrap();
        let mut forget: Vec<f64> = Vec::new(); // mean f of the memory units per step
        let mut lowest: Vec<f64> = Vec::new(); // lowest f among them
        reference::run_traced(&arch, &weights, &xs, 1, None, None, &mut |step| {
            forget.push(units.iter().map(|&j| step.gates[h + j]).sum::<f64>() / units.len() as f64);
            lowest.push(units.iter().map(|&j| step.gates[h + j]).fold(1.0, f64::min));
        });
        // Every person after the first replaces the one held in memory.
        for &(pos, gender) in &s.people[1..] {
            at_names.push(forget[pos]);
            by_gender[gender as usize].push((forget[pos], lowest[pos] < 0.1));
        }
        // After the last name (and the token right after it) only neutral filler follows.
        let last = s.people.last().unwrap().0;
        in_filler.extend_from_slice(&forget[last + 2..]);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (names, filler) = (mean(&at_names), mean(&in_filler));
    eprintln!("memory units {units:?}: mean forget gate {names:.3} at a new name, {filler:.3} in filler");
    for (gender, events) in ["he", "she"].iter().zip(&by_gender) {
        let n = events.len() as f64;
        eprintln!(
            "  new {gender}: mean f {:.3}, some unit below 0.1 in {:.0}% of {} cases",
            events.iter().map(|e| e.0).sum::<f64>() / n,
            100.0 * events.iter().filter(|e| e.1).count() as f64 / n,
            events.len()
        );
    }
    assert!(filler > 0.8, "memory is kept through filler: {filler}");
    assert!(names < filler - 0.25, "forget gate at new names {names} vs filler {filler}");
}
