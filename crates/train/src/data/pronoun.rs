//! The `pronoun` task: generated stories in which people are introduced by
//! name, talked about, and then — after filler of a controlled length — a
//! blank where a pronoun refers to the person introduced last. The model
//! reads the story up to the blank and answers "he" or "she".
//!
//! ```text
//! then olivia came in . she was tired . her bag was heavy . the rain stopped .
//! later peter sat down . the old clock rang again . the bus slowed near the
//! station . after that ,                                      -> he (peter)
//! ```
//!
//! What makes it a memory test:
//! - Earlier people are distractors: their gender is drawn independently, so
//!   "the first name", "the majority" or "the last pronoun seen" is right only
//!   about half the time; only the last-introduced person decides the answer.
//! - Everything after the last name is gender-neutral (no names, no
//!   pronouns), and its length — the *distance*, counted in tokens from the
//!   last name to the blank — is set exactly.
//! - Training stories have some neutral words replaced by the unknown token,
//!   so a story typed by a person, with words the generator never used,
//!   still reads as filler.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use lstmrt_format::{HeadTask, Tokenizer, Vocabulary};

use super::{DataInput, Dataset, Example, Sequence, Target, Task};
use crate::net::Loss;
use crate::rng::{self, Rng, Sample};

/// The unknown-word token.
pub const UNKNOWN: &str = "<unk>";

/// The two answers, in head output order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gender {
    He = 0,
    She = 1,
}

impl Gender {
    pub fn label(self) -> &'static str {
        match self {
            Gender::He => "he",
            Gender::She => "she",
        }
    }
    fn subject(self) -> &'static str {
        self.label()
    }
    fn object(self) -> &'static str {
        match self {
            Gender::He => "him",
            Gender::She => "her",
        }
    }
    fn possessive(self) -> &'static str {
        match self {
            Gender::He => "his",
            Gender::She => "her",
        }
    }
}

/// The class labels of the head, `["he", "she"]`.
pub const LABELS: [&str; 2] = ["he", "she"];

/// Names read as male.
pub const MALE_NAMES: &[&str] = &[
    "john",
    "james",
    "robert",
    "michael",
    "william",
    "david",
    "richard",
    "joseph",
    "thomas",
    "charles",
    "daniel",
    "matthew",
    "anthony",
    "donald",
    "steven",
    "paul",
    "andrew",
    "joshua",
    "kenneth",
    "kevin",
    "brian",
    "george",
    "edward",
    "ronald",
    "timothy",
    "jason",
    "jeffrey",
    "ryan",
    "jacob",
    "gary",
    "nicholas",
    "eric",
    "jonathan",
    "stephen",
    "larry",
    "justin",
    "scott",
    "brandon",
    "benjamin",
    "samuel",
    "gregory",
    "alexander",
    "raymond",
    "patrick",
    "jack",
    "dennis",
    "jerry",
    "tyler",
    "aaron",
    "henry",
    "adam",
    "douglas",
    "nathan",
    "peter",
    "zachary",
    "kyle",
    "walter",
    "harold",
    "jeremy",
    "ethan",
    "carl",
    "keith",
    "roger",
    "gerald",
    "christian",
    "arthur",
    "noah",
    "lawrence",
    "jesse",
    "joe",
    "bryan",
    "billy",
    "albert",
    "dylan",
    "bruce",
    "gabriel",
    "alan",
    "juan",
    "logan",
    "wayne",
    "ralph",
    "roy",
    "eugene",
    "randy",
    "vincent",
    "russell",
    "louis",
    "philip",
    "bobby",
    "johnny",
    "bradley",
    "oliver",
    "liam",
    "lucas",
    "mason",
    "owen",
    "luke",
    "leo",
    "oscar",
    "hugo",
    "felix",
    "tom",
    "ben",
    "tim",
    "victor",
    "simon",
    "martin",
    "ian",
    "colin",
    "neil",
    "bob",
    "bill",
    "fred",
    "harry",
    "jim",
    "mike",
    "dan",
    "steve",
    "nick",
    "tony",
    "mark",
    "frank",
    "max",
    "sean",
];

/// Names read as female.
pub const FEMALE_NAMES: &[&str] = &[
    "mary",
    "patricia",
    "jennifer",
    "linda",
    "elizabeth",
    "barbara",
    "susan",
    "jessica",
    "sarah",
    "karen",
    "nancy",
    "lisa",
    "betty",
    "margaret",
    "sandra",
    "ashley",
    "kimberly",
    "emily",
    "donna",
    "michelle",
    "dorothy",
    "carol",
    "amanda",
    "melissa",
    "deborah",
    "stephanie",
    "rebecca",
    "sharon",
    "laura",
    "cynthia",
    "kathleen",
    "amy",
    "shirley",
    "angela",
    "helen",
    "anna",
    "brenda",
    "pamela",
    "nicole",
    "emma",
    "samantha",
    "katherine",
    "christine",
    "debra",
    "rachel",
    "catherine",
    "carolyn",
    "janet",
    "ruth",
    "maria",
    "heather",
    "diane",
    "virginia",
    "julie",
    "joyce",
    "victoria",
    "olivia",
    "kelly",
    "christina",
    "lauren",
    "joan",
    "evelyn",
    "judith",
    "megan",
    "cheryl",
    "andrea",
    "hannah",
    "martha",
    "jacqueline",
    "frances",
    "gloria",
    "ann",
    "teresa",
    "kathryn",
    "sara",
    "janice",
    "alice",
    "madison",
    "doris",
    "abigail",
    "julia",
    "judy",
    "denise",
    "amber",
    "marilyn",
    "beverly",
    "danielle",
    "theresa",
    "sophia",
    "marie",
    "diana",
    "brittany",
    "natalie",
    "isabella",
    "charlotte",
    "alexis",
    "kayla",
    "jane",
    "lucy",
    "clara",
    "ella",
    "mia",
    "chloe",
    "zoe",
    "nora",
    "stella",
    "eva",
    "grace",
    "rose",
    "ruby",
    "ivy",
    "kate",
    "beth",
    "jenny",
    "sue",
    "meg",
    "liz",
    "ellie",
    "molly",
    "sophie",
    "lily",
    "sally",
    "anne",
];

/// Words that carry gender; never in filler, never replaced by the unknown token.
const GENDERED: &[&str] = &["he", "she", "him", "her", "his", "himself", "herself"];
const PUNCTUATION: &[&str] = &[".", ","];

// Introductions: PREFIX NAME SUFFIX, or OBJECT_PREFIX NAME "."
const INTRO_PREFIXES: &[&[&str]] = &[
    &[],
    &["then"],
    &["later"],
    &["one", "day"],
    &["soon"],
    &["after", "that", ","],
    &["next"],
    &["suddenly"],
    &["that", "morning"],
];
const INTRO_SUFFIXES: &[&[&str]] = &[
    &["arrived", "."],
    &["came", "in", "."],
    &["walked", "in", "."],
    &["sat", "down", "."],
    &["showed", "up", "."],
    &["joined", "the", "group", "."],
    &["was", "there", "."],
    &["came", "along", "."],
    &["entered", "the", "room", "."],
    &["stood", "by", "the", "door", "."],
    &["opened", "the", "door", "."],
    &["walked", "into", "the", "kitchen", "."],
    &["knocked", "on", "the", "door", "."],
    &["came", "home", "."],
    &["was", "waiting", "outside", "."],
];
const OBJECT_INTRO_PREFIXES: &[&[&str]] = &[
    &["everyone", "said", "hello", "to"],
    &["there", "was", "a", "visitor", "named"],
    &["a", "friend", "called"],
    &["then", "they", "met"],
    &["the", "door", "opened", "for"],
];

// Meeting someone: PREVIOUS (the last person's name or pronoun) VERB NAME
// SUFFIX. The new person comes right after a word about the previous one.
const MEETING_VERBS: &[&str] = &["met", "saw", "called", "greeted", "visited"];
const MEETING_SUFFIXES: &[&[&str]] = &[
    &["."],
    &["at", "the", "door", "."],
    &["outside", "."],
    &["in", "the", "park", "."],
    &["at", "the", "station", "."],
];

// Talking about a person: PRONOUN PREDICATE, POSSESSIVE THING, or ... OBJECT .
const SUBJECT_PREDICATES: &[&[&str]] = &[
    &["was", "tired", "."],
    &["smiled", "."],
    &["looked", "around", "."],
    &["liked", "the", "garden", "."],
    &["wanted", "some", "tea", "."],
    &["had", "a", "long", "day", "."],
    &["read", "the", "paper", "."],
    &["was", "happy", "."],
    &["said", "hello", "."],
    &["laughed", "."],
    &["sat", "by", "the", "window", "."],
    &["was", "hungry", "."],
    &["felt", "cold", "."],
    &["made", "some", "coffee", "."],
    &["told", "a", "story", "."],
];
const POSSESSIVE_PREDICATES: &[&[&str]] = &[
    &["bag", "was", "heavy", "."],
    &["phone", "rang", "."],
    &["coat", "was", "wet", "."],
    &["dog", "barked", "."],
    &["car", "was", "outside", "."],
];
const OBJECT_FRAMES: &[(&[&str], &[&str])] = &[
    (&["everyone", "liked"], &["."]),
    (&["the", "children", "waved", "at"], &["."]),
    (&["nobody", "noticed"], &["."]),
];

// Neutral filler, built from a small grammar (see `filler_sentence`).
const NOUNS: &[&str] = &[
    "rain", "wind", "bus", "clock", "music", "kettle", "train", "light", "crowd", "river", "bell", "radio", "cat",
    "tree", "snow", "shop", "street", "window", "fire", "road", "city", "sky", "water", "market", "station", "bridge",
    "house", "park", "storm", "school",
];
const ADJECTIVES: &[&str] =
    &["old", "small", "red", "cold", "quiet", "big", "new", "bright", "wet", "empty", "long", "dark", "green", "warm"];
const VERBS: &[&str] = &[
    "stopped",
    "started",
    "moved",
    "waited",
    "changed",
    "fell",
    "closed",
    "shook",
    "slowed",
    "continued",
    "returned",
    "appeared",
    "vanished",
    "stayed",
    "turned",
    "began",
    "ended",
    "grew",
    "faded",
    "rang",
];
const ADVERBS: &[&str] =
    &["again", "slowly", "quietly", "loudly", "nearby", "softly", "once", "today", "briefly", "twice"];
const PREPOSITIONS: &[&str] = &["near", "behind", "across", "under", "beside", "past", "over", "inside", "at"];
const CONJUNCTIONS: &[&str] = &["and", "but"];

// The words just before the blank.
const CUES: &[&[&str]] = &[
    &["then"],
    &["so"],
    &["and", "then"],
    &["after", "that", ","],
    &["later", ","],
    &["in", "the", "end", ","],
    &["that", "evening", ","],
    &["after", "a", "while", ","],
    &["the", "next", "day", ","],
];

/// Shortest distance a story can have: a one-token suffix and a one-token cue.
pub const MIN_DISTANCE: usize = 2;
/// Filler sentences are 4 to 12 tokens long.
const FILLER_MIN: usize = 4;
const FILLER_MAX: usize = 12;

/// The vocabulary: every word the generator can write, punctuation, and the
/// unknown token (id 0).
#[derive(Debug, Clone)]
pub struct Lexicon {
    pub vocabulary: Vocabulary,
    index: HashMap<String, u32>,
    unknown: u32,
    /// Per token id: may be replaced by the unknown token in training.
    replaceable: Vec<bool>,
    gender_of: HashMap<u32, Gender>,
}

impl Lexicon {
    pub fn new() -> Lexicon {
        let mut tokens: Vec<String> = vec![UNKNOWN.into()];
        let mut add = |w: &str| {
            if !tokens.iter().any(|t| t == w) {
                tokens.push(w.to_owned());
            }
        };
        PUNCTUATION.iter().chain(GENDERED).for_each(|w| add(w));
        let phrase_lists: [&[&[&str]]; 7] = [
            INTRO_PREFIXES,
            INTRO_SUFFIXES,
            OBJECT_INTRO_PREFIXES,
            MEETING_SUFFIXES,
            SUBJECT_PREDICATES,
            POSSESSIVE_PREDICATES,
            CUES,
        ];
        phrase_lists.iter().flat_map(|l| l.iter()).flat_map(|p| p.iter()).for_each(|w| add(w));
        OBJECT_FRAMES.iter().flat_map(|(a, b)| a.iter().chain(b.iter())).for_each(|w| add(w));
        [MEETING_VERBS, NOUNS, ADJECTIVES, VERBS, ADVERBS, PREPOSITIONS, CONJUNCTIONS, &["the"]]
            .iter()
            .flat_map(|l| l.iter())
            .for_each(|w| add(w));
        MALE_NAMES.iter().chain(FEMALE_NAMES).for_each(|w| add(w));
        let index: HashMap<String, u32> = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
        let mut gender_of = HashMap::new();
        for (names, g) in [(MALE_NAMES, Gender::He), (FEMALE_NAMES, Gender::She)] {
            for n in names {
                gender_of.insert(index[*n], g);
            }
        }
        let replaceable = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| {
                i != 0
                    && !PUNCTUATION.contains(&t.as_str())
                    && !GENDERED.contains(&t.as_str())
                    && !gender_of.contains_key(&(i as u32))
            })
            .collect();
        Lexicon {
            vocabulary: Vocabulary { tokenizer: Tokenizer::Word, lowercase: true, tokens, unknown: Some(0) },
            index,
            unknown: 0,
            replaceable,
            gender_of,
        }
    }

    /// The id of a word the generator uses.
    pub fn id(&self, word: &str) -> u32 {
        *self.index.get(word).unwrap_or_else(|| panic!("{word:?} is not in the pronoun lexicon"))
    }

    /// The id of `word`, or the unknown token's.
    pub fn lookup(&self, word: &str) -> u32 {
        self.index.get(word).copied().unwrap_or(self.unknown)
    }

    /// The gender of a name's id.
    pub fn gender(&self, id: u32) -> Option<Gender> {
        self.gender_of.get(&id).copied()
    }

    /// Whether `id` is a gendered pronoun (he, she, his, her, ...).
    pub fn is_gendered_word(&self, id: u32) -> bool {
        GENDERED.contains(&self.vocabulary.tokens[id as usize].as_str())
    }

    /// Space-separated text of `tokens`.
    pub fn text(&self, tokens: &[u32]) -> String {
        tokens.iter().map(|&t| self.vocabulary.tokens[t as usize].as_str()).collect::<Vec<_>>().join(" ")
    }
}

impl Default for Lexicon {
    fn default() -> Self {
        Lexicon::new()
    }
}

/// One generated story.
#[derive(Debug, Clone, PartialEq)]
pub struct Story {
    /// The words up to the blank.
    pub tokens: Vec<u32>,
    pub answer: Gender,
    /// Tokens after the last name (the steps the answer must be remembered for).
    pub distance: usize,
    /// `(position, gender)` of each person's name, in order of introduction.
    pub people: Vec<(usize, Gender)>,
}

/// A neutral filler sentence of exactly `len` tokens (`FILLER_MIN..=FILLER_MAX`).
fn filler_sentence(len: usize, rng: &mut Rng, out: &mut Vec<&'static str>) {
    let np = |rng: &mut Rng, adjective: bool, out: &mut Vec<&'static str>| {
        out.push("the");
        if adjective {
            out.push(*rng.pick(ADJECTIVES));
        }
        out.push(*rng.pick(NOUNS));
    };
    let start = out.len();
    match len {
        4 => {
            np(rng, false, out);
            out.push(*rng.pick(VERBS));
        }
        5 | 6 => {
            let adjective = len == 6 || rng.chance(0.5);
            np(rng, adjective, out);
            out.push(*rng.pick(VERBS));
            if len == 6 || !adjective {
                out.push(*rng.pick(ADVERBS));
            }
        }
        7..=9 => {
            // the [A] N V P the [A] N  — 7 with no adjectives, 9 with both.
            let (first, second) = match len {
                7 => (false, false),
                8 => {
                    let f = rng.chance(0.5);
                    (f, !f)
                }
                _ => (true, true),
            };
            np(rng, first, out);
            out.push(*rng.pick(VERBS));
            out.push(*rng.pick(PREPOSITIONS));
            np(rng, second, out);
        }
        10..=12 => {
            // the [A] N V ADV CONJ the [A] N V ADV
            let (first, second) = match len {
                10 => (false, false),
                11 => {
                    let f = rng.chance(0.5);
                    (f, !f)
                }
                _ => (true, true),
            };
            np(rng, first, out);
            out.push(*rng.pick(VERBS));
            out.push(*rng.pick(ADVERBS));
            out.push(*rng.pick(CONJUNCTIONS));
            np(rng, second, out);
            out.push(*rng.pick(VERBS));
            out.push(*rng.pick(ADVERBS));
        }
        _ => panic!("filler sentence of {len} tokens"),
    }
    out.push(".");
    debug_assert_eq!(out.len() - start, len);
}

/// Neutral filler of exactly `len` tokens (0 or at least `FILLER_MIN`).
fn filler(mut len: usize, rng: &mut Rng, out: &mut Vec<&'static str>) {
    assert!(len == 0 || len >= FILLER_MIN, "filler of {len} tokens");
    while len > 0 {
        // Any sentence length that leaves 0 or enough for another sentence.
        let options: Vec<usize> =
            (FILLER_MIN..=FILLER_MAX.min(len)).filter(|&l| l == len || len - l >= FILLER_MIN).collect();
        let l = *rng.pick(&options);
        filler_sentence(l, rng, out);
        len -= l;
    }
}

/// Sentences about a person, with gendered words.
fn talk_about(g: Gender, rng: &mut Rng, out: &mut Vec<&'static str>) {
    match rng.below(4) {
        0 | 1 => {
            out.push(g.subject());
            out.extend_from_slice(SUBJECT_PREDICATES[rng.below(SUBJECT_PREDICATES.len())]);
        }
        2 => {
            out.push(g.possessive());
            out.extend_from_slice(POSSESSIVE_PREDICATES[rng.below(POSSESSIVE_PREDICATES.len())]);
        }
        _ => {
            let (before, after) = rng.pick(OBJECT_FRAMES);
            out.extend_from_slice(before);
            out.push(g.object());
            out.extend_from_slice(after);
        }
    }
}

/// The shape of a story.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoryShape {
    /// Tokens from the last name to the blank (at least [`MIN_DISTANCE`]).
    pub distance: usize,
    /// People introduced (1 or more); all but the last are distractors.
    pub people: usize,
    /// Talk about the last person (with gendered words) right after their
    /// introduction, before the neutral filler. Training stories only: it
    /// teaches that a pronoun after a name is about that name's person, as in
    /// the stories people type; held-out stories never do it.
    pub mention_last: bool,
}

/// Generates one story of the given shape.
pub fn story(lex: &Lexicon, shape: StoryShape, rng: &mut Rng) -> Story {
    assert!(shape.distance >= MIN_DISTANCE && shape.people >= 1, "bad story shape {shape:?}");
    let mut words: Vec<&'static str> = Vec::new();
    let mut people = Vec::new();
    let mut used: Vec<&'static str> = Vec::new();
    let mut name_for = |g: Gender, rng: &mut Rng| loop {
        let n = *rng.pick(if g == Gender::He { MALE_NAMES } else { FEMALE_NAMES });
        if !used.contains(&n) {
            used.push(n);
            return n;
        }
    };
    let mut previous: Option<(&'static str, Gender)> = None;
    for k in 0..shape.people {
        let g = if rng.chance(0.5) { Gender::He } else { Gender::She };
        let last = k + 1 == shape.people;
        let name = name_for(g, rng);
        // Pick the introduction (and for the last person the cue and filler
        // length) so that the tokens after the name add up to the distance.
        let (prefix, suffix, cue, mut fill): (Vec<&'static str>, &[&str], &[&str], usize) = loop {
            let roll = rng.uniform();
            let (prefix, suffix): (Vec<&'static str>, &[&str]) = match previous {
                Some((prev_name, prev_g)) if roll < 0.25 => {
                    let subject = if rng.chance(0.5) { prev_name } else { prev_g.subject() };
                    (vec![subject, *rng.pick(MEETING_VERBS)], *rng.pick(MEETING_SUFFIXES))
                }
                _ if roll < 0.75 => (rng.pick(INTRO_PREFIXES).to_vec(), *rng.pick(INTRO_SUFFIXES)),
                _ => (rng.pick(OBJECT_INTRO_PREFIXES).to_vec(), &["."]),
            };
            if !last {
                break (prefix, suffix, &[], 0);
            }
            let cue = *rng.pick(CUES);
            let fixed = suffix.len() + cue.len();
            if fixed <= shape.distance {
                let fill = shape.distance - fixed;
                if fill == 0 || fill >= FILLER_MIN {
                    break (prefix, suffix, cue, fill);
                }
            }
            // Very short distances need the shortest pieces; make sure they come up.
            if shape.distance <= 3 && rng.chance(0.5) {
                let cue: &[&str] = if shape.distance == 2 { &["then"] } else { &["and", "then"] };
                break (rng.pick(OBJECT_INTRO_PREFIXES).to_vec(), &["."], cue, 0);
            }
        };
        previous = Some((name, g));
        words.extend_from_slice(&prefix);
        people.push((words.len(), g));
        words.push(name);
        words.extend_from_slice(suffix);
        if last {
            if shape.mention_last {
                let mut talk = Vec::new();
                talk_about(g, rng, &mut talk);
                if talk.len() == fill || talk.len() + FILLER_MIN <= fill {
                    words.extend_from_slice(&talk);
                    fill -= talk.len();
                }
            }
            filler(fill, rng, &mut words);
            words.extend_from_slice(cue);
        } else {
            // Zero to two sentences about them, so that introductions also follow each other directly.
            for _ in 0..rng.between(0, 2) {
                talk_about(g, rng, &mut words);
            }
            if rng.chance(0.5) {
                let len = rng.between(FILLER_MIN, 8);
                filler_sentence(len, rng, &mut words);
            }
        }
    }
    let tokens: Vec<u32> = words.iter().map(|w| lex.id(w)).collect();
    let (last_pos, answer) = *people.last().expect("at least one person");
    let distance = tokens.len() - 1 - last_pos;
    debug_assert_eq!(distance, shape.distance);
    Story { tokens, answer, distance, people }
}

/// How the `pronoun` data set is generated.
#[derive(Debug, Clone, PartialEq)]
pub struct PronounConfig {
    /// Inclusive range of distances of training stories.
    pub train_distance: (usize, usize),
    /// Inclusive range of distances of validation and test stories.
    pub test_distance: (usize, usize),
    /// Inclusive range of the number of people in a story.
    pub people: (usize, usize),
    /// Probability that a neutral word of a training story is replaced by `<unk>`.
    pub unknown_rate: f64,
    /// Share of training stories that talk about the last person right after
    /// the name ([`StoryShape::mention_last`]).
    pub mention_last: f64,
    pub train: usize,
    pub valid: usize,
    pub test: usize,
    pub seed: u64,
}

impl Default for PronounConfig {
    fn default() -> Self {
        PronounConfig {
            train_distance: (MIN_DISTANCE, 100),
            test_distance: (50, 100),
            people: (1, 3),
            unknown_rate: 0.1,
            mention_last: 0.5,
            train: 12_000,
            valid: 500,
            test: 1_000,
            seed: 1,
        }
    }
}

/// Sub-streams of the seed, one per split, so changing one split's size
/// leaves the others' stories unchanged.
const STREAM_TRAIN: u64 = 0x7261_696e;
const STREAM_VALID: u64 = 0x7661_6c69;
const STREAM_TEST: u64 = 0x7465_7374;

fn fingerprint(tokens: &[u32]) -> u64 {
    // SipHash with fixed keys: deterministic across runs.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    tokens.hash(&mut h);
    h.finish()
}

/// Generates `count` stories with distances in `distance`, a share
/// `mention_last` of them talking about the last person right after the
/// name (see [`StoryShape::mention_last`]), none of whose texts is in `seen`
/// (which they are added to).
pub fn stories(
    lex: &Lexicon,
    count: usize,
    distance: (usize, usize),
    people: (usize, usize),
    mention_last: f64,
    rng: &mut Rng,
    seen: &mut HashSet<u64>,
) -> Vec<Story> {
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let shape = StoryShape {
            distance: rng.between(distance.0, distance.1),
            people: rng.between(people.0, people.1),
            mention_last: mention_last > 0.0 && rng.chance(mention_last),
        };
        let s = story(lex, shape, rng);
        if seen.insert(fingerprint(&s.tokens)) {
            out.push(s);
        }
    }
    out
}

/// Replaces each neutral word of `tokens` by the unknown token with probability `rate`.
pub fn mask_unknown(lex: &Lexicon, tokens: &mut [u32], rate: f64, rng: &mut Rng) {
    for t in tokens.iter_mut() {
        if lex.replaceable[*t as usize] && rng.chance(rate) {
            *t = lex.unknown;
        }
    }
}

fn example(s: &Story) -> Example {
    Example { input: Sequence::Tokens(s.tokens.clone()), target: Target::Class(s.answer as u32) }
}

/// The three splits as stories (before unknown-word masking).
pub fn splits(lex: &Lexicon, config: &PronounConfig) -> [Vec<Story>; 3] {
    let mut seen = HashSet::new();
    let train = stories(
        lex,
        config.train,
        config.train_distance,
        config.people,
        config.mention_last,
        &mut rng::derive(config.seed, STREAM_TRAIN),
        &mut seen,
    );
    let valid = stories(
        lex,
        config.valid,
        config.test_distance,
        config.people,
        0.0,
        &mut rng::derive(config.seed, STREAM_VALID),
        &mut seen,
    );
    let test = stories(
        lex,
        config.test,
        config.test_distance,
        config.people,
        0.0,
        &mut rng::derive(config.seed, STREAM_TEST),
        &mut seen,
    );
    [train, valid, test]
}

/// Checks the options; the message names the option.
pub fn validate(config: &PronounConfig) -> Result<(), String> {
    for (name, (lo, hi)) in [("--distance", config.train_distance), ("--test-distance", config.test_distance)] {
        if lo < MIN_DISTANCE || lo > hi {
            return Err(format!("{name} {lo}..{hi}: need {MIN_DISTANCE} <= min <= max"));
        }
    }
    let (lo, hi) = config.people;
    if lo == 0 || lo > hi || hi > 10 {
        return Err(format!("--people {lo}..{hi}: need 1 <= min <= max <= 10"));
    }
    if !(0.0..1.0).contains(&config.unknown_rate) {
        return Err(format!("--unknown-rate {} is not in [0, 1)", config.unknown_rate));
    }
    if !(0.0..=1.0).contains(&config.mention_last) {
        return Err(format!("--mention-last {} is not in [0, 1]", config.mention_last));
    }
    if config.train == 0 {
        return Err("--train-size must be at least 1".into());
    }
    Ok(())
}

/// The `pronoun` data set.
pub fn dataset(config: &PronounConfig) -> Dataset {
    let lex = Lexicon::new();
    let [train, valid, test] = splits(&lex, config);
    let mut mask_rng = rng::derive(config.seed, STREAM_TRAIN ^ 0xff);
    let train = train
        .iter()
        .map(|s| {
            let mut e = example(s);
            if let Sequence::Tokens(ids) = &mut e.input {
                mask_unknown(&lex, ids, config.unknown_rate, &mut mask_rng);
            }
            e
        })
        .collect();
    let range = |(lo, hi): (usize, usize)| format!("{lo}..={hi}");
    Dataset {
        task: Task {
            name: "pronoun".into(),
            input: DataInput::Tokens { vocab: lex.vocabulary.tokens.len() },
            outputs: 2,
            loss: Loss::CrossEntropy,
            head_task: HeadTask::Classifier,
            vocabulary: Some(lex.vocabulary.clone()),
            labels: LABELS.iter().map(|s| s.to_string()).collect(),
            sources: Vec::new(),
            params: vec![
                ("pronoun.train_distance".into(), range(config.train_distance)),
                ("pronoun.test_distance".into(), range(config.test_distance)),
                ("pronoun.people".into(), range(config.people)),
                ("pronoun.unknown_rate".into(), config.unknown_rate.to_string()),
                ("pronoun.mention_last".into(), config.mention_last.to_string()),
                ("pronoun.sizes".into(), format!("{}/{}/{}", config.train, config.valid, config.test)),
                ("pronoun.seed".into(), config.seed.to_string()),
            ],
        },
        train,
        valid: valid.iter().map(example).collect(),
        test: test.iter().map(example).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexicon_has_unique_tokens_and_disjoint_name_lists() {
        let lex = Lexicon::new();
        let set: HashSet<&String> = lex.vocabulary.tokens.iter().collect();
        assert_eq!(set.len(), lex.vocabulary.tokens.len());
        assert!(MALE_NAMES.iter().all(|n| !FEMALE_NAMES.contains(n)));
        assert!(MALE_NAMES.len() >= 100 && FEMALE_NAMES.len() >= 100);
        // No name doubles as a filler word.
        for w in NOUNS.iter().chain(VERBS).chain(ADJECTIVES).chain(ADVERBS) {
            assert!(lex.gender(lex.id(w)).is_none(), "{w}");
        }
    }

    #[test]
    fn every_filler_length_is_exact_and_neutral() {
        let lex = Lexicon::new();
        let mut rng = Rng::new(4);
        for len in [0, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 17, 29, 100] {
            let mut out = Vec::new();
            filler(len, &mut rng, &mut out);
            assert_eq!(out.len(), len);
            assert!(out.iter().all(|w| lex.gender(lex.id(w)).is_none() && !GENDERED.contains(w)));
        }
    }
}
