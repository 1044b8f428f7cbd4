//! The user's own data:
//!
//! - a character-level language model from any UTF-8 text file ([`char_lm`]);
//! - sequence classification from a CSV (with a header row) or JSONL file of
//!   text and label ([`text_classification`]);
//! - sequence classification from `.npy` arrays: sequences `[N, T, F]` (or
//!   `[N, T]`) and integer labels `[N]` ([`npy_classification`]).
//!
//! Every error names the file and, where there is one, the line or column.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use lstmrt_format::{HeadTask, Tokenizer, Vocabulary};
use sha2::{Digest, Sha256};

use super::{DataInput, Dataset, Example, Sequence, SourceFile, Target, Task, split};
use crate::error::Error;
use crate::net::Loss;
use crate::rng;

/// The unknown token of word vocabularies.
pub const WORD_UNKNOWN: &str = "<unk>";
/// The unknown token of character vocabularies (U+FFFD, the replacement character).
pub const CHAR_UNKNOWN: &str = "\u{FFFD}";

/// How text files are split into examples and tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct TextOptions {
    pub tokenizer: Tokenizer,
    pub lowercase: bool,
    /// Tokens seen fewer times in the training split become unknown.
    pub min_count: usize,
    pub text_column: String,
    pub label_column: String,
    /// Fractions of examples held out for validation and test.
    pub valid: f64,
    pub test: f64,
    pub seed: u64,
    /// Character LM: steps per training sequence.
    pub seq_len: usize,
}

impl Default for TextOptions {
    fn default() -> Self {
        TextOptions {
            tokenizer: Tokenizer::Word,
            lowercase: true,
            min_count: 1,
            text_column: "text".into(),
            label_column: "label".into(),
            valid: 0.1,
            test: 0.1,
            seed: 1,
            seq_len: 64,
        }
    }
}

/// Reads a file (at most `limit` bytes) and hashes it.
fn read(path: &Path, limit: lstmrt_format::FileLimit) -> Result<(Vec<u8>, SourceFile), Error> {
    let bytes = lstmrt_format::read_regular(path, limit)
        .map_err(|e| Error::input(format!("{}: cannot read: {e}", path.display())))?;
    if bytes.is_empty() {
        return Err(Error::input(format!("{}: the file is empty", path.display())));
    }
    let sha256 = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    Ok((bytes, SourceFile { path: path.display().to_string(), sha256 }))
}

fn utf8(path: &Path, bytes: Vec<u8>) -> Result<String, Error> {
    String::from_utf8(bytes).map_err(|e| {
        Error::input(format!(
            "{}: not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })
}

/// A vocabulary of the tokens in `texts` seen at least `min_count` times,
/// most frequent first, with the unknown token at id 0.
pub fn build_vocabulary(texts: &[Vec<String>], tokenizer: Tokenizer, lowercase: bool, min_count: usize) -> Vocabulary {
    let unknown = if tokenizer == Tokenizer::Char { CHAR_UNKNOWN } else { WORD_UNKNOWN };
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for t in texts.iter().flatten() {
        *counts.entry(t.as_str()).or_default() += 1;
    }
    let mut kept: Vec<(&str, usize)> =
        counts.into_iter().filter(|&(t, c)| c >= min_count.max(1) && t != unknown).collect();
    kept.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut tokens = vec![unknown.to_owned()];
    tokens.extend(kept.into_iter().map(|(t, _)| t.to_owned()));
    Vocabulary { tokenizer, lowercase, tokens, unknown: Some(0) }
}

fn ids(vocab: &Vocabulary, tokens: &[String]) -> Vec<u32> {
    lstmrt::text::lookup(vocab, tokens).expect("the vocabulary has an unknown token")
}

/// A character-level language model over the text in `path`: sequences of
/// `seq_len` characters, each step predicting the next character. The text
/// is cut into consecutive sequences; the last ones (by `valid` and `test`
/// fractions) are the held-out splits.
pub fn char_lm(path: &Path, opts: &TextOptions) -> Result<Dataset, Error> {
    let (bytes, source) = read(path, crate::limits::TEXT_DATA)?;
    let text = utf8(path, bytes)?;
    let chars = lstmrt::text::split(Tokenizer::Char, opts.lowercase, &text);
    let seq_len = opts.seq_len.max(1);
    if chars.len() < seq_len + 1 {
        return Err(Error::input(format!(
            "{}: {} characters is too short for one sequence of --seq-len {seq_len} plus its next character",
            path.display(),
            chars.len()
        )));
    }
    let count = (chars.len() - 1) / seq_len;
    let held = |f: f64| if count >= 3 && f > 0.0 { ((count as f64 * f).round() as usize).max(1) } else { 0 };
    let (n_test, n_valid) = (held(opts.test), held(opts.valid));
    let n_train = count - n_test - n_valid;
    if n_train == 0 {
        return Err(Error::input(format!("{}: too short to leave any training sequences", path.display())));
    }
    let train_chars = &chars[..n_train * seq_len + 1];
    let vocab = build_vocabulary(&[train_chars.to_vec()], Tokenizer::Char, opts.lowercase, opts.min_count);
    let all = ids(&vocab, &chars);
    let example = |k: usize| {
        let s = &all[k * seq_len..(k + 1) * seq_len + 1];
        Example { input: Sequence::Tokens(s[..seq_len].to_vec()), target: Target::Classes(s[1..].to_vec()) }
    };
    let train = (0..n_train).map(example).collect();
    let valid = (n_train..n_train + n_valid).map(example).collect();
    let test = (n_train + n_valid..count).map(example).collect();
    let v = vocab.tokens.len();
    Ok(Dataset {
        task: Task {
            name: "text-lm".into(),
            input: DataInput::Tokens { vocab: v },
            outputs: v,
            loss: Loss::CrossEntropy,
            head_task: HeadTask::LanguageModel,
            vocabulary: Some(vocab),
            labels: Vec::new(),
            sources: vec![source],
            params: vec![("lm.seq_len".into(), seq_len.to_string())],
        },
        train,
        valid,
        test,
    })
}

/// One `(line, text, label)` row of a classification file.
type Row = (usize, String, String);

/// Parses RFC 4180 CSV: comma-separated, `"` quotes with `""` escapes,
/// newlines allowed inside quotes. Returns each record with its first line number.
fn parse_csv(text: &str, path: &Path) -> Result<Vec<(usize, Vec<String>)>, Error> {
    let mut records = Vec::new();
    let mut field = String::new();
    let mut fields = Vec::new();
    let (mut line, mut start_line) = (1, 1);
    let mut in_quotes = false;
    let mut chars = text.chars().peekable();
    let mut record_has_content = false;
    while let Some(ch) = chars.next() {
        if in_quotes {
            match ch {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                _ => field.push(ch),
            }
            continue;
        }
        match ch {
            '"' if field.is_empty() => {
                in_quotes = true;
                record_has_content = true;
            }
            ',' => {
                fields.push(std::mem::take(&mut field));
                record_has_content = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                if record_has_content || !field.is_empty() {
                    fields.push(std::mem::take(&mut field));
                    records.push((start_line, std::mem::take(&mut fields)));
                }
                record_has_content = false;
                line += 1;
                start_line = line;
            }
            _ => {
                field.push(ch);
                record_has_content = true;
            }
        }
    }
    if in_quotes {
        return Err(Error::input(format!("{}:{start_line}: a quoted field is never closed", path.display())));
    }
    if record_has_content || !field.is_empty() {
        fields.push(field);
        records.push((start_line, fields));
    }
    Ok(records)
}

fn csv_rows(text: &str, path: &Path, opts: &TextOptions) -> Result<Vec<Row>, Error> {
    let records = parse_csv(text, path)?;
    let Some(((_, header), rows)) = records.split_first() else {
        return Err(Error::input(format!("{}: the file has no header row", path.display())));
    };
    let column = |name: &str| {
        header.iter().position(|h| h.trim() == name).ok_or_else(|| {
            Error::input(format!(
                "{}: unknown column {name:?}; the header has {}",
                path.display(),
                header.iter().map(|h| format!("{:?}", h.trim())).collect::<Vec<_>>().join(", ")
            ))
        })
    };
    let (ti, li) = (column(&opts.text_column)?, column(&opts.label_column)?);
    rows.iter()
        .map(|(line, fields)| {
            if fields.len() != header.len() {
                return Err(Error::input(format!(
                    "{}:{line}: {} fields, but the header has {}",
                    path.display(),
                    fields.len(),
                    header.len()
                )));
            }
            Ok((*line, fields[ti].clone(), fields[li].trim().to_owned()))
        })
        .collect()
}

fn jsonl_rows(text: &str, path: &Path, opts: &TextOptions) -> Result<Vec<Row>, Error> {
    let mut rows = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| Error::input(format!("{}:{line}: not a JSON value: {e}", path.display())))?;
        let serde_json::Value::Object(obj) = value else {
            return Err(Error::input(format!("{}:{line}: expected a JSON object per line", path.display())));
        };
        let field = |name: &str| {
            obj.get(name).ok_or_else(|| {
                Error::input(format!(
                    "{}:{line}: unknown column {name:?}; the object has {}",
                    path.display(),
                    obj.keys().map(|k| format!("{k:?}")).collect::<Vec<_>>().join(", ")
                ))
            })
        };
        let text = match field(&opts.text_column)? {
            serde_json::Value::String(s) => s.clone(),
            other => {
                return Err(Error::input(format!(
                    "{}:{line}: field {:?} is {other}, expected a string",
                    path.display(),
                    opts.text_column
                )));
            }
        };
        let label = match field(&opts.label_column)? {
            serde_json::Value::String(s) => s.trim().to_owned(),
            v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_)) => v.to_string(),
            other => {
                return Err(Error::input(format!(
                    "{}:{line}: field {:?} is {other}, expected a string or number",
                    path.display(),
                    opts.label_column
                )));
            }
        };
        rows.push((line, text, label));
    }
    Ok(rows)
}

/// Checks there are at least two classes and returns them sorted.
fn classes<'a>(labels: impl Iterator<Item = &'a str>, what: &str) -> Result<Vec<String>, Error> {
    let set: BTreeSet<&str> = labels.collect();
    match set.len() {
        0 => Err(Error::input(format!("{what}: no examples"))),
        1 => Err(Error::input(format!(
            "{what}: every label is {:?}; classification needs at least two classes",
            set.first().expect("one")
        ))),
        _ => Ok(set.into_iter().map(str::to_owned).collect()),
    }
}

/// Sequence classification from a CSV (`.csv`) or JSON-lines (`.jsonl`,
/// `.json`) file with a text and a label column; the label is read at the
/// last token. The vocabulary comes from the training split.
pub fn text_classification(path: &Path, opts: &TextOptions) -> Result<Dataset, Error> {
    let (bytes, source) = read(path, crate::limits::TEXT_DATA)?;
    let text = utf8(path, bytes)?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let rows = match ext.as_str() {
        "csv" => csv_rows(&text, path, opts)?,
        "jsonl" | "json" | "ndjson" => jsonl_rows(&text, path, opts)?,
        _ => {
            return Err(Error::input(format!(
                "{}: unknown data file type {ext:?}; expected .csv, .jsonl, .txt (with --task lm) or .npy",
                path.display()
            )));
        }
    };
    let what = path.display().to_string();
    let labels = classes(rows.iter().map(|r| r.2.as_str()), &what)?;
    if let Some((line, _, _)) = rows.iter().find(|r| r.2.is_empty()) {
        return Err(Error::input(format!("{what}:{line}: the label is empty")));
    }
    let mut tokenized = Vec::with_capacity(rows.len());
    for (line, text, label) in &rows {
        let tokens = lstmrt::text::split(opts.tokenizer, opts.lowercase, text);
        if tokens.is_empty() {
            return Err(Error::input(format!("{what}:{line}: the text has no tokens")));
        }
        let class = labels.binary_search(label).expect("label collected above") as u32;
        tokenized.push((tokens, class));
    }
    let (train, valid, test) = split(tokenized, opts.valid, opts.test, &mut rng::derive(opts.seed, 0x5b11));
    let vocab = build_vocabulary(
        &train.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>(),
        opts.tokenizer,
        opts.lowercase,
        opts.min_count,
    );
    let to_examples = |part: Vec<(Vec<String>, u32)>| {
        part.into_iter()
            .map(|(t, c)| Example { input: Sequence::Tokens(ids(&vocab, &t)), target: Target::Class(c) })
            .collect::<Vec<_>>()
    };
    let (train, valid, test) = (to_examples(train), to_examples(valid), to_examples(test));
    Ok(Dataset {
        task: Task {
            name: "classify".into(),
            input: DataInput::Tokens { vocab: vocab.tokens.len() },
            outputs: labels.len(),
            loss: Loss::CrossEntropy,
            head_task: HeadTask::Classifier,
            vocabulary: Some(vocab),
            labels,
            sources: vec![source],
            params: vec![
                ("classify.text_column".into(), opts.text_column.clone()),
                ("classify.label_column".into(), opts.label_column.clone()),
            ],
        },
        train,
        valid,
        test,
    })
}

/// Sequence classification from `.npy` arrays: `x` `[N, T, F]` or `[N, T]`
/// floats, `y` `[N]` integer class ids.
pub fn npy_classification(x_path: &Path, y_path: &Path, opts: &TextOptions) -> Result<Dataset, Error> {
    let (_, x_source) = read(x_path, crate::limits::ARRAY_DATA)?;
    let (_, y_source) = read(y_path, crate::limits::ARRAY_DATA)?;
    let bad = |p: &Path, m: String| Error::input(format!("{}: {m}", p.display()));
    let x = lstmrt_import::npy::read(x_path).map_err(|e| Error::input(e.to_string()))?;
    let y = lstmrt_import::npy::read(y_path).map_err(|e| Error::input(e.to_string()))?;
    let (n, steps, features) = match x.shape[..] {
        [n, t] => (n, t, 1),
        [n, t, f] => (n, t, f),
        _ => return Err(bad(x_path, format!("shape {:?}; expected [N, T, F] or [N, T]", x.shape))),
    };
    if n == 0 || steps == 0 || features == 0 {
        return Err(bad(x_path, format!("shape {:?} has no data", x.shape)));
    }
    if y.shape.iter().product::<usize>() != n || y.shape.len() > 2 {
        return Err(bad(
            y_path,
            format!("shape {:?}; expected [{n}] (one label per sequence in {})", y.shape, x_path.display()),
        ));
    }
    if let Some(i) = x.data.iter().position(|v| !v.is_finite()) {
        return Err(bad(x_path, format!("element {i} is {} (values must be finite)", x.data[i])));
    }
    let mut class_ids = Vec::with_capacity(n);
    for (i, &v) in y.data.iter().enumerate() {
        if v < 0.0 || v.fract() != 0.0 || v > 1e6 {
            return Err(bad(y_path, format!("label {i} is {v}; labels must be class ids 0, 1, 2, ...")));
        }
        class_ids.push(v as u32);
    }
    let names: Vec<String> = class_ids.iter().map(|c| c.to_string()).collect();
    classes(names.iter().map(String::as_str), &y_path.display().to_string())?;
    let outputs = *class_ids.iter().max().expect("n > 0") as usize + 1;
    let xs = x.to_f32();
    let examples: Vec<Example> = (0..n)
        .map(|i| Example {
            input: Sequence::Dense { values: xs[i * steps * features..(i + 1) * steps * features].to_vec(), features },
            target: Target::Class(class_ids[i]),
        })
        .collect();
    let (train, valid, test) = split(examples, opts.valid, opts.test, &mut rng::derive(opts.seed, 0x5b12));
    Ok(Dataset {
        task: Task {
            name: "classify".into(),
            input: DataInput::Dense { features },
            outputs,
            loss: Loss::CrossEntropy,
            head_task: HeadTask::Classifier,
            vocabulary: None,
            labels: (0..outputs).map(|c| c.to_string()).collect(),
            sources: vec![x_source, y_source],
            params: vec![("classify.steps".into(), steps.to_string())],
        },
        train,
        valid,
        test,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_parser_handles_quotes_escapes_and_newlines() {
        let text = "text,label\n\"hello, \"\"world\"\"\",a\r\n\"two\nlines\",b\n\nplain,c";
        let r = parse_csv(text, Path::new("t.csv")).unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(r[1], (2, vec!["hello, \"world\"".to_string(), "a".into()]));
        assert_eq!(r[2], (3, vec!["two\nlines".to_string(), "b".into()]));
        assert_eq!(r[3], (6, vec!["plain".to_string(), "c".into()]));
    }

    #[test]
    fn vocabulary_is_by_frequency_with_unknown_first() {
        let texts = vec![vec!["b".to_string(), "a".into(), "b".into(), "c".into()]];
        let v = build_vocabulary(&texts, Tokenizer::Word, true, 1);
        assert_eq!(v.tokens, vec!["<unk>", "b", "a", "c"]);
        let v2 = build_vocabulary(&texts, Tokenizer::Word, true, 2);
        assert_eq!(v2.tokens, vec!["<unk>", "b"]);
    }
}
