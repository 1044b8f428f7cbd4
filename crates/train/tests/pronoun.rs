//! Properties of the pronoun story generator.

use std::collections::HashSet;

use lstm_train::data::pronoun::{self, Gender, Lexicon, PronounConfig, StoryShape};
use lstm_train::data::{Sequence, Target};
use lstm_train::rng::{Rng, Sample};

#[test]
fn distance_is_exactly_the_tokens_after_the_last_name() {
    let lex = Lexicon::new();
    let mut rng = Rng::new(1);
    for distance in pronoun::MIN_DISTANCE..=130 {
        for people in 1..=4 {
            let s = pronoun::story(&lex, StoryShape { distance, people, mention_last: false }, &mut rng);
            let last = s.people.last().unwrap().0;
            assert_eq!(s.distance, distance);
            assert_eq!(s.tokens.len() - 1 - last, distance, "{}", lex.text(&s.tokens));
            assert_eq!(s.people.len(), people);
        }
    }
}

#[test]
fn answer_is_the_gender_of_the_last_introduced_person_and_the_rest_is_neutral() {
    let lex = Lexicon::new();
    let mut rng = Rng::new(2);
    for _ in 0..2000 {
        let shape = StoryShape { distance: rng.between(2, 60), people: rng.between(1, 3), mention_last: false };
        let s = pronoun::story(&lex, shape, &mut rng);
        for &(pos, g) in &s.people {
            assert_eq!(lex.gender(s.tokens[pos]), Some(g), "{}", lex.text(&s.tokens));
        }
        let &(last, g) = s.people.last().unwrap();
        assert_eq!(s.answer, g);
        // After the last name: no names, no gendered words.
        for &t in &s.tokens[last + 1..] {
            assert!(lex.gender(t).is_none() && !lex.is_gendered_word(t), "{}", lex.text(&s.tokens));
        }
        // Every name in the story is an introduction (no one is named twice... except in a
        // meeting, where the previous person's name comes right before the new one).
        let names: Vec<usize> = (0..s.tokens.len()).filter(|&i| lex.gender(s.tokens[i]).is_some()).collect();
        let introduced: HashSet<usize> = s.people.iter().map(|p| p.0).collect();
        for i in names {
            assert!(introduced.contains(&i) || introduced.contains(&(i + 2)), "{}", lex.text(&s.tokens));
        }
    }
}

#[test]
fn earlier_people_are_distractors_that_simple_rules_cannot_use() {
    let lex = Lexicon::new();
    let mut rng = Rng::new(3);
    let (mut first_name_right, mut other_gender_present, mut multi) = (0, 0, 0);
    let mut she = 0;
    let n = 4000;
    for _ in 0..n {
        let s =
            pronoun::story(&lex, StoryShape { distance: 20, people: rng.between(1, 3), mention_last: false }, &mut rng);
        she += usize::from(s.answer == Gender::She);
        if s.people.len() > 1 {
            multi += 1;
            first_name_right += usize::from(s.people[0].1 == s.answer);
            other_gender_present += usize::from(s.people.iter().any(|p| p.1 != s.answer));
        }
    }
    let rate = |k: usize, of: usize| k as f64 / of as f64;
    // Answers are balanced, and with two or more people the first name is
    // right only about half the time.
    assert!((rate(she, n) - 0.5).abs() < 0.04, "she {}", rate(she, n));
    assert!((rate(first_name_right, multi) - 0.5).abs() < 0.06, "first name {}", rate(first_name_right, multi));
    assert!(rate(other_gender_present, multi) > 0.5, "distractors {}", rate(other_gender_present, multi));
}

#[test]
fn splits_are_disjoint_seeded_and_within_their_distances() {
    let config = PronounConfig {
        train_distance: (2, 30),
        test_distance: (20, 30),
        train: 3000,
        valid: 300,
        test: 300,
        ..PronounConfig::default()
    };
    let lex = Lexicon::new();
    let [train, valid, test] = pronoun::splits(&lex, &config);
    assert_eq!((train.len(), valid.len(), test.len()), (3000, 300, 300));
    let texts = |v: &[pronoun::Story]| v.iter().map(|s| s.tokens.clone()).collect::<HashSet<_>>();
    let (a, b, c) = (texts(&train), texts(&valid), texts(&test));
    assert_eq!(a.len(), 3000, "no duplicates within a split");
    assert!(a.is_disjoint(&b) && a.is_disjoint(&c) && b.is_disjoint(&c));
    assert!(train.iter().all(|s| (2..=30).contains(&s.distance)));
    assert!(valid.iter().chain(&test).all(|s| (20..=30).contains(&s.distance)));
    assert!(train.iter().any(|s| s.distance < 5), "short training distances are drawn too");
    let again = pronoun::splits(&lex, &config);
    assert_eq!(again[2], test);
    let other = pronoun::splits(&lex, &PronounConfig { seed: 9, ..config });
    assert_ne!(other[2], test);
}

#[test]
fn training_stories_have_some_neutral_words_unknown_but_never_names_or_pronouns() {
    let config = PronounConfig { train: 2000, valid: 10, test: 10, unknown_rate: 0.2, ..PronounConfig::default() };
    let data = pronoun::dataset(&config);
    let lex = Lexicon::new();
    let unk = lex.id(pronoun::UNKNOWN);
    let [stories, _, _] = pronoun::splits(&lex, &config);
    let (mut replaced, mut replaceable) = (0usize, 0usize);
    for (story, example) in stories.iter().zip(&data.train) {
        let (Sequence::Tokens(ids), Target::Class(c)) = (&example.input, &example.target) else { panic!() };
        assert_eq!(*c, story.answer as u32);
        for (&orig, &seen) in story.tokens.iter().zip(ids) {
            let keep = lex.gender(orig).is_some()
                || lex.is_gendered_word(orig)
                || [".", ","].contains(&lex.text(&[orig]).as_str());
            if keep {
                assert_eq!(orig, seen);
            } else {
                replaceable += 1;
                replaced += usize::from(seen == unk);
            }
        }
    }
    let rate = replaced as f64 / replaceable as f64;
    assert!((rate - 0.2).abs() < 0.01, "{rate}");
    // Held-out stories are left as generated.
    assert!(data.test.iter().all(|e| matches!(&e.input, Sequence::Tokens(ids) if !ids.contains(&unk))));
}

#[test]
fn training_stories_may_talk_about_the_last_person_but_only_with_their_gender() {
    let lex = Lexicon::new();
    let mut rng = Rng::new(6);
    let mut mentioned = 0;
    for _ in 0..1000 {
        let shape = StoryShape { distance: rng.between(2, 40), people: rng.between(1, 3), mention_last: true };
        let s = pronoun::story(&lex, shape, &mut rng);
        let &(last, g) = s.people.last().unwrap();
        assert_eq!(s.tokens.len() - 1 - last, shape.distance);
        let after = &s.tokens[last + 1..];
        assert!(after.iter().all(|&t| lex.gender(t).is_none()), "no names after the last: {}", lex.text(&s.tokens));
        let gendered: Vec<u32> = after.iter().copied().filter(|&t| lex.is_gendered_word(t)).collect();
        let own: Vec<&str> = match g {
            Gender::He => vec!["he", "him", "his"],
            Gender::She => vec!["she", "her"],
        };
        assert!(gendered.iter().all(|&t| own.contains(&lex.text(&[t]).as_str())), "{}", lex.text(&s.tokens));
        mentioned += usize::from(!gendered.is_empty());
    }
    // Long enough stories get the mention; the shortest have no room for it.
    assert!(mentioned > 700, "{mentioned}");
}
