//! Reading a text with a text model: its tokens, the head's output at the last
//! token as probabilities, and the most likely labels or next tokens.
//!
//! A classifier's label is read at the last step (the whole text has been
//! seen); a language model's next-token distribution at the last step is its
//! prediction of what follows the text.

use lstmrt::Error;
use lstmrt::Model;
use lstmrt::text;
use lstmrt_format::{Head, HeadActivation, HeadTask};

/// A text cut into the model's tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct Tokens {
    /// The token strings as the tokenizer cut them (after lower-casing).
    pub pieces: Vec<String>,
    /// Their ids in the vocabulary.
    pub ids: Vec<u32>,
    /// Positions of pieces not in the vocabulary, read as the unknown token.
    pub unknown: Vec<usize>,
}

/// Tokenizes `text` with the model's tokenizer. Unknown pieces map to the
/// model's unknown token, or are an error naming the piece and its position.
pub fn tokenize(model: &Model, text: &str) -> Result<Tokens, Error> {
    let ids = model.tokenize(text)?;
    let vocab = model.metadata().vocabulary.as_ref().expect("tokenize succeeded, so there is a vocabulary");
    let pieces = text::split(vocab.tokenizer, vocab.lowercase, text);
    let unknown = (0..ids.len()).filter(|&i| vocab.tokens[ids[i] as usize] != pieces[i]).collect();
    Ok(Tokens { pieces, ids, unknown })
}

/// Runs the model over `ids` from a zero state and returns the output at the
/// last token: the head's output when the model has a head, else the top
/// layer's output (`[directions * P]`).
pub fn last_output(model: &Model, ids: &[u32]) -> Result<Vec<f32>, Error> {
    if ids.is_empty() {
        return Err(Error::Unsupported { what: "the text has no tokens to read".into() });
    }
    let xs = model.token_inputs(ids)?;
    let mut state = model.new_state();
    let out = model.run(&mut state, &xs)?;
    let width = model.architecture().sequence_output_size();
    let last = &out[out.len() - width..];
    match &model.metadata().head {
        Some(head) => {
            let mut y = vec![0.0; head.out_features as usize];
            model.apply_head(last, &mut y)?;
            Ok(y)
        }
        None => Ok(last.to_vec()),
    }
}

/// Whether the head's outputs are meant as a probability distribution
/// (classifier or language model) rather than free values.
pub fn is_distribution(head: &Head) -> bool {
    matches!(head.task, HeadTask::Classifier | HeadTask::LanguageModel)
}

/// The head's outputs as probabilities: unchanged after a softmax or sigmoid;
/// for a classifier or language model without an activation the outputs are
/// logits and get a softmax; otherwise unchanged.
pub fn probabilities(head: &Head, out: &[f32]) -> Vec<f32> {
    let mut p = out.to_vec();
    if head.activation == HeadActivation::None && is_distribution(head) {
        text::softmax(&mut p);
    }
    p
}

/// Indices of the `k` largest values, largest first; ties keep the lower
/// index first; NaN sorts last.
pub fn top_k(values: &[f32], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    let key = |v: f32| if v.is_nan() { f32::NEG_INFINITY } else { v };
    order.sort_by(|&a, &b| key(values[b]).total_cmp(&key(values[a])).then(a.cmp(&b)));
    order.truncate(k);
    order
}

/// The name of output `index` of the head: its label, the vocabulary token
/// for a language model, or `#index`.
pub fn output_name(model: &Model, index: usize) -> String {
    let meta = model.metadata();
    let head = meta.head.as_ref();
    if let Some(label) = head.and_then(|h| h.labels.get(index)) {
        return label.clone();
    }
    if head.is_some_and(|h| h.task == HeadTask::LanguageModel)
        && let Ok(token) = model.token(index as u32)
    {
        return token.to_string();
    }
    format!("#{index}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_orders_largest_first_with_stable_ties_and_nan_last() {
        assert_eq!(top_k(&[0.1, 0.5, f32::NAN, 0.5, 0.2], 5), [1, 3, 4, 0, 2]);
        assert_eq!(top_k(&[0.1, 0.5, 0.3], 2), [1, 2]);
        assert_eq!(top_k(&[0.1], 3), [0]);
    }

    #[test]
    fn logits_of_a_classifier_become_probabilities_but_other_outputs_stay() {
        let mut head =
            Head { out_features: 2, activation: HeadActivation::None, task: HeadTask::Classifier, labels: vec![] };
        let p = probabilities(&head, &[0.0, (3.0f32).ln()]);
        assert!((p[0] - 0.25).abs() < 1e-6 && (p[1] - 0.75).abs() < 1e-6, "{p:?}");
        head.task = HeadTask::Other;
        assert_eq!(probabilities(&head, &[0.0, 2.0]), [0.0, 2.0]);
        head.task = HeadTask::Classifier;
        head.activation = HeadActivation::Softmax;
        assert_eq!(probabilities(&head, &[0.3, 0.7]), [0.3, 0.7]);
    }
}
