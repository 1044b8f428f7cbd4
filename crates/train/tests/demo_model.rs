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
use lstmrt::{Model, reference};
use lstmrt_format::{DType, HeadTask};

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
        mention_last: 0.5,
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
    assert_eq!(p.get("pronoun.mention_last"), Some("0.5"));
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
            "Mary went to the bakery early in the morning. The streets were empty and quiet, and a cold wind blew \
          through the old town. Then",
            "she",
        ),
        (
            "Peter opened the window. He looked at the garden. Later Anna knocked on the door. The kettle was boiling \
          and the radio played an old song in the kitchen. After a while,",
            "she",
        ),
        (
            "Peter opened the window. Later Anna knocked on the door. The kettle was boiling and the radio played an \
          old song in the kitchen. After a while,",
            "she",
        ),
        (
            "Emma met Lucas at the station. The train was late, the platform was crowded, and the announcements kept \
          changing every few minutes. In the end,",
            "he",
        ),
        (
            "Olivia sat by the fire. She was reading a book. Then James walked in. Outside the snow kept falling over \
          the quiet village, covering the roads and the roofs. So",
            "he",
        ),
        ("John arrived. Then", "he"),
        ("Sarah arrived. Then", "she"),
        ("Peter arrived. Anna arrived. Then", "she"),
        ("Anna arrived. Peter arrived. Then", "he"),
        ("Kevin arrived. He was tired. Emily arrived. Then", "she"),
        ("Emily arrived. She was tired. Kevin arrived. Then", "he"),
        (
            "Lucy and her dog walked along the beach for hours. The waves were loud and the sky turned grey as the \
          evening came. Later,",
            "she",
        ),
        (
            "John walked along the beach for hours. The waves were loud and the sky turned grey as the evening came. \
          Later,",
            "he",
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
        (
            "Tom was cooking dinner. He burned the rice. Then Maria came home. She laughed at the smoke. The windows \
          were open and the neighbours complained about the smell. Finally,",
            "she",
        ),
        (
            "Maria was cooking dinner. She burned the rice. Then Tom came home. He laughed at the smoke. The windows \
          were open and the neighbours complained about the smell. Finally,",
            "he",
        ),
        (
            "Alice met Bob at the market. They bought apples, bread and cheese, and then walked home along the river. \
          Later,",
            "he",
        ),
        (
            "Bob met Alice at the market. They bought apples, bread and cheese, and then walked home along the river. \
          Later,",
            "she",
        ),
        (
            "Henry read the letter twice. Outside, the garden was covered in frost and the birds were silent. After a \
          while,",
            "he",
        ),
        (
            "Grace read the letter twice. Outside, the garden was covered in frost and the birds were silent. After a \
          while,",
            "she",
        ),
        ("Julia left the office late. Her phone was dead and the last bus had already gone. So", "she"),
        ("Mark left the office late. His phone was dead and the last bus had already gone. So", "he"),
    ];
    let unknown = model.metadata().vocabulary.as_ref().unwrap().unknown.unwrap();
    let mut with_unknown = 0;
    for (text, want) in stories {
        let (he, she) = answer(&model, text);
        let p = if want == "he" { he } else { she };
        assert!(p > 0.8, "P({want}) = {p} for {text:?}");
        eprintln!("P({want}) = {p:.3}: {text}");
        with_unknown += usize::from(model.tokenize(text).unwrap().contains(&unknown));
    }
    // Most of them really do use words the generator never wrote.
    assert!(with_unknown * 2 > stories.len(), "{with_unknown} of {} stories have unknown words", stories.len());
}

#[test]
fn forget_gate_of_the_memory_units_drops_when_a_new_person_is_introduced() {
    let model = model();
    let (arch, weights) = (model.architecture().clone(), model.weights());
    let h = arch.hidden();
    let lex = Lexicon::new();
    let stories = pronoun::stories(&lex, 200, (10, 40), (2, 3), 0.0, &mut Rng::new(77), &mut Default::default());
    // Per unit: sum of forget gates in filler / at new he / at new she names, and
    // how often the sign of its final cell state matches the answer.
    let (mut filler, mut new_name) = (vec![0.0; h], [vec![0.0; h], vec![0.0; h]]);
    let (mut n_filler, mut n_new) = (0.0, [0.0, 0.0]);
    let mut agree = vec![0usize; h];
    for s in &stories {
        let xs = model.token_inputs(&s.tokens).unwrap();
        let (mut forget, mut c_last) = (Vec::new(), Vec::new());
        reference::run_traced(&arch, &weights, &xs, 1, None, None, &mut |step| {
            forget.push(step.gates[h..2 * h].to_vec());
            c_last = step.c.to_vec();
        });
        // Every person after the first replaces the one held in memory.
        for &(pos, gender) in &s.people[1..] {
            new_name[gender as usize].iter_mut().zip(&forget[pos]).for_each(|(a, f)| *a += f);
            n_new[gender as usize] += 1.0;
        }
        // After the last name (and the token right after it) only neutral filler follows.
        let last = s.people.last().unwrap().0;
        for f in &forget[last + 2..] {
            filler.iter_mut().zip(f).for_each(|(a, f)| *a += f);
            n_filler += 1.0;
        }
        for (j, c) in c_last.iter().enumerate() {
            agree[j] += usize::from((*c > 0.0) == (s.answer == pronoun::Gender::She));
        }
    }
    // Memory units: their final cell state tells he from she (either sign) in 95% of stories.
    let memory: Vec<usize> = (0..h)
        .filter(|&j| {
            let a = agree[j] as f64 / stories.len() as f64;
            a.max(1.0 - a) >= 0.95
        })
        .collect();
    assert!(memory.len() >= 4, "units holding the answer: {memory:?}");
    // Those whose forget gate, at the new names of one gender, falls below half its level in filler.
    let mut resetting = Vec::new();
    for &j in &memory {
        let in_filler = filler[j] / n_filler;
        let at_new = (new_name[0][j] / n_new[0]).min(new_name[1][j] / n_new[1]);
        if at_new < 0.5 * in_filler {
            resetting.push(j);
        }
    }
    eprintln!(
        "{} of {} memory units close their forget gate at new names: {resetting:?}",
        resetting.len(),
        memory.len()
    );
    assert!(resetting.len() * 3 >= memory.len(), "{resetting:?} of {memory:?}");
}

#[test]
fn the_demo_model_in_int8_answers_like_f32_on_1000_generated_stories() {
    // docs/quantization.md reports these numbers (run with --nocapture).
    let f32_model = model();
    let bytes =
        lstmrt::ModelWriter::new(f32_model.metadata(), &f32_model.weights()).dtype(DType::I8).to_bytes().unwrap();
    let int8 = Model::from_bytes(&bytes).unwrap();
    assert_eq!(int8.dtype(), DType::I8);
    let lex = Lexicon::new();
    let stories = pronoun::stories(&lex, 1000, (2, 100), (1, 3), 0.5, &mut Rng::new(2026), &mut Default::default());
    let (mut same, mut right_f32, mut right_int8) = (0usize, 0usize, 0usize);
    let (mut max_shift, mut sum_shift) = (0.0f32, 0.0f64);
    for s in &stories {
        let (he, she) = answer_ids(&f32_model, &s.tokens);
        let (he8, she8) = answer_ids(&int8, &s.tokens);
        same += usize::from((she > he) == (she8 > he8));
        let truth = s.answer == pronoun::Gender::She;
        right_f32 += usize::from((she > he) == truth);
        right_int8 += usize::from((she8 > he8) == truth);
        let shift = (she - she8).abs();
        max_shift = max_shift.max(shift);
        sum_shift += f64::from(shift);
    }
    let n = stories.len() as f64;
    let agreement = same as f64 / n;
    eprintln!(
        "int8 vs f32 on {} stories: same answer {:.1}%, accuracy f32 {:.1}% int8 {:.1}%, P(she) shift max {max_shift:.2e} mean {:.2e}",
        stories.len(),
        100.0 * agreement,
        100.0 * right_f32 as f64 / n,
        100.0 * right_int8 as f64 / n,
        sum_shift / n
    );
    assert!(agreement >= 0.995, "int8 and f32 agree on {:.1}% of the stories", 100.0 * agreement);
}
