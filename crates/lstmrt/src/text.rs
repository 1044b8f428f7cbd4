//! Text in and out: tokenizing with the model's vocabulary, turning token ids
//! into input vectors, and the output head.

use crate::Error;
use crate::model::Model;
use lstmrt_format::{DType, HeadActivation, Tokenizer, Vocabulary, names};

#[doc(hidden)]
/// Punctuation the word tokenizer splits off into tokens of their own.
pub const WORD_PUNCTUATION: &[char] = &['.', ',', '!', '?', ';', ':'];

#[doc(hidden)]
/// Cuts `text` into token strings the way `tokenizer` does (before lookup).
pub fn split(tokenizer: Tokenizer, lowercase: bool, text: &str) -> Vec<String> {
    let text = if lowercase { text.to_lowercase() } else { text.to_owned() };
    match tokenizer {
        Tokenizer::Char => text.chars().map(String::from).collect(),
        Tokenizer::Word => {
            let mut tokens = Vec::new();
            for word in text.split_whitespace() {
                let mut current = String::new();
                for ch in word.chars() {
                    if WORD_PUNCTUATION.contains(&ch) {
                        if !current.is_empty() {
                            tokens.push(std::mem::take(&mut current));
                        }
                        tokens.push(ch.to_string());
                    } else {
                        current.push(ch);
                    }
                }
                if !current.is_empty() {
                    tokens.push(current);
                }
            }
            tokens
        }
    }
}

#[doc(hidden)]
/// Looks tokens up in `vocab`; unknown tokens map to its unknown id or fail,
/// naming the token and its position (0-based, in tokens).
pub fn lookup(vocab: &Vocabulary, tokens: &[String]) -> Result<Vec<u32>, Error> {
    let index: std::collections::HashMap<&str, u32> =
        vocab.tokens.iter().enumerate().map(|(i, t)| (t.as_str(), i as u32)).collect();
    tokens
        .iter()
        .enumerate()
        .map(|(position, t)| match index.get(t.as_str()) {
            Some(&id) => Ok(id),
            None => vocab.unknown.ok_or_else(|| Error::UnknownToken { token: t.clone(), position }),
        })
        .collect()
}

impl Model {
    /// The model's vocabulary (tokens, tokenizer kind, unknown token), or an
    /// error saying the model has none.
    pub fn vocabulary(&self) -> Result<&Vocabulary, Error> {
        self.metadata()
            .vocabulary
            .as_ref()
            .ok_or_else(|| Error::Unsupported { what: "this model has no vocabulary, so it cannot read text".into() })
    }

    /// Tokenizes `text` with the model's tokenizer and vocabulary.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, Error> {
        let vocab = self.vocabulary()?;
        lookup(vocab, &split(vocab.tokenizer, vocab.lowercase, text))
    }

    /// The token string of `id`.
    pub fn token(&self, id: u32) -> Result<&str, Error> {
        let vocab = self.vocabulary()?;
        vocab
            .tokens
            .get(id as usize)
            .map(String::as_str)
            .ok_or(Error::BadTokenId { id, vocab_size: vocab.tokens.len() })
    }

    /// Writes the input vector of token `id` into `out` (`[input_size]`): its
    /// embedding row, or a one-hot vector when the model has no embedding.
    pub fn token_input(&self, id: u32, out: &mut [f32]) -> Result<(), Error> {
        let input = self.architecture().input_size as usize;
        if out.len() != input {
            return Err(Error::Shape { what: "token input buffer", expected: input.to_string(), got: out.len() });
        }
        match (&self.metadata().embedding, self.tensor(names::EMBEDDING)) {
            (Some(e), Some(table)) => {
                if id >= e.num_embeddings {
                    return Err(Error::BadTokenId { id, vocab_size: e.num_embeddings as usize });
                }
                widen_row(&table, id as usize, out);
            }
            _ => {
                if id as usize >= input {
                    return Err(Error::BadTokenId { id, vocab_size: input });
                }
                out.fill(0.0);
                out[id as usize] = 1.0;
            }
        }
        Ok(())
    }

    /// Input vectors `[tokens, input_size]` for a token sequence.
    pub fn token_inputs(&self, ids: &[u32]) -> Result<Vec<f32>, Error> {
        let input = self.architecture().input_size as usize;
        let mut xs = vec![0.0; ids.len() * input];
        for (&id, row) in ids.iter().zip(xs.chunks_exact_mut(input)) {
            self.token_input(id, row)?;
        }
        Ok(xs)
    }

    /// Applies the output head to one timestep's output `x`
    /// (`[directions * P]`), writing `[out_features]` into `out`.
    pub fn apply_head(&self, x: &[f32], out: &mut [f32]) -> Result<(), Error> {
        let (Some(head), Some(weight)) = (&self.metadata().head, self.tensor(names::HEAD_WEIGHT)) else {
            return Err(Error::Unsupported { what: "this model has no output head".into() });
        };
        let width = self.architecture().sequence_output_size();
        let n = head.out_features as usize;
        if x.len() != width {
            return Err(Error::Shape { what: "head input", expected: width.to_string(), got: x.len() });
        }
        if out.len() != n {
            return Err(Error::Shape { what: "head output buffer", expected: n.to_string(), got: out.len() });
        }
        let bias = self.tensor(names::HEAD_BIAS).map(|b| b.to_f32_vec());
        let mut row = vec![0.0; width];
        for (o, y) in out.iter_mut().enumerate() {
            widen_row(&weight, o, &mut row);
            *y = bias.as_ref().map_or(0.0, |b| b[o]) + row.iter().zip(x).map(|(a, b)| a * b).sum::<f32>();
        }
        match head.activation {
            HeadActivation::None => {}
            HeadActivation::Sigmoid => out.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-*v).exp())),
            HeadActivation::Softmax => softmax(out),
        }
        Ok(())
    }
}

/// Row `row` of a canonical matrix tensor, widened to f32, into `out`.
fn widen_row(t: &crate::TensorView<'_>, row: usize, out: &mut [f32]) {
    let n = out.len();
    match t.dtype() {
        DType::F32 => out.copy_from_slice(&t.as_f32().expect("f32")[row * n..][..n]),
        DType::F16 => out.iter_mut().zip(&t.as_f16().expect("f16")[row * n..][..n]).for_each(|(o, v)| *o = v.to_f32()),
        DType::BF16 => {
            out.iter_mut().zip(&t.as_bf16().expect("bf16")[row * n..][..n]).for_each(|(o, v)| *o = v.to_f32())
        }
        DType::I8 => unreachable!("validated: int8 is only for recurrent weight matrices"),
    }
}

#[doc(hidden)]
/// In-place softmax, stable for large inputs.
pub fn softmax(v: &mut [f32]) {
    let max = v.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for x in v.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    v.iter_mut().for_each(|x| *x /= sum);
}
