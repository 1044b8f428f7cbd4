//! Sampling text from a language model, reproducibly from a seed.
//!
//! The prompt is run through the model; then, repeatedly, the head's
//! next-token distribution is sharpened or flattened by the temperature, a
//! token is drawn with [`Rng`], and that token is fed back as the next step.
//! The same model, prompt, temperature and seed give the same text.

use lstmrt::Error;
use lstmrt::Model;
use lstmrt::State;
use lstmrt::rng::Rng;
use lstmrt::text::WORD_PUNCTUATION;
use lstmrt_format::{Head, HeadActivation, HeadTask, Tokenizer};

/// Sampling weights (summing to 1) from a language-model head's output:
/// `softmax(log p / temperature)`, where `log p` is the head's log-probability
/// (its raw output when the head has no activation, i.e. logits).
/// Temperature 0 puts all weight on the most likely token (greedy decoding).
pub fn distribution(head: &Head, out: &[f32], temperature: f32) -> Vec<f64> {
    let log_p: Vec<f64> = match head.activation {
        HeadActivation::None => out.iter().map(|&v| v as f64).collect(),
        HeadActivation::Softmax | HeadActivation::Sigmoid => out.iter().map(|&p| (p as f64).ln()).collect(),
    };
    let mut weights = vec![0.0; log_p.len()];
    let best = log_p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if temperature == 0.0 || !best.is_finite() {
        if let Some(i) = log_p.iter().position(|&v| v == best) {
            weights[i] = 1.0;
        }
        return weights;
    }
    let t = temperature as f64;
    for (w, &l) in weights.iter_mut().zip(&log_p) {
        *w = ((l - best) / t).exp();
    }
    let sum: f64 = weights.iter().sum();
    weights.iter_mut().for_each(|w| *w /= sum);
    weights
}

/// Draws an index with probability proportional to `weights` (non-negative,
/// not all zero).
pub fn sample(weights: &[f64], rng: &mut Rng) -> usize {
    let total: f64 = weights.iter().sum();
    let mut r = rng.next_f64() * total;
    for (i, &w) in weights.iter().enumerate() {
        if r < w {
            return i;
        }
        r -= w;
    }
    // Rounding left `r` just past the end: take the last token with weight.
    weights.iter().rposition(|&w| w > 0.0).unwrap_or(0)
}

/// The head of `model` if it is a language model, else an error saying what
/// the model has instead.
pub fn language_model_head(model: &Model) -> Result<&Head, Error> {
    match &model.metadata().head {
        Some(h) if h.task == HeadTask::LanguageModel => Ok(h),
        other => {
            let what = match other {
                None => "has no output head".to_string(),
                Some(h) => format!("has a {} head", task_name(h.task)),
            };
            Err(Error::Unsupported { what: format!("generating text needs a language model; this model {what}") })
        }
    }
}

/// Generates tokens one at a time after a prompt.
pub struct Generator<'m> {
    model: &'m Model,
    head: &'m Head,
    state: State,
    rng: Rng,
    temperature: f32,
    /// The head's output after the last token fed in.
    head_out: Vec<f32>,
    /// Input vector buffer for the next step.
    x: Vec<f32>,
}

impl<'m> Generator<'m> {
    /// Runs `prompt` (token ids) through `model`, a language model, and gets
    /// ready to sample with `temperature` (>= 0) from a generator seeded by `seed`.
    pub fn new(model: &'m Model, prompt: &[u32], temperature: f32, seed: u64) -> Result<Generator<'m>, Error> {
        let head = language_model_head(model)?;
        if !(temperature.is_finite() && temperature >= 0.0) {
            return Err(Error::Unsupported { what: format!("temperature {temperature} is not a number >= 0") });
        }
        if prompt.is_empty() {
            return Err(Error::Unsupported {
                what: "the prompt has no tokens; generation starts from a prompt".into(),
            });
        }
        if let Some((kind, why)) = model.architecture().whole_sequence_only() {
            return Err(Error::Unsupported { what: format!("a {kind} model cannot generate text: {why}") });
        }
        let mut state = model.new_state();
        let xs = model.token_inputs(prompt)?;
        let out = model.run(&mut state, &xs)?;
        let width = model.architecture().sequence_output_size();
        let mut head_out = vec![0.0; head.out_features as usize];
        model.apply_head(&out[out.len() - width..], &mut head_out)?;
        let x = vec![0.0; model.architecture().input_size as usize];
        Ok(Generator { model, head, state, rng: Rng::new(seed), temperature, head_out, x })
    }

    /// Samples the next token, feeds it to the model, and returns its id.
    pub fn next_token(&mut self) -> Result<u32, Error> {
        let weights = distribution(self.head, &self.head_out, self.temperature);
        let id = sample(&weights, &mut self.rng) as u32;
        self.model.token_input(id, &mut self.x)?;
        let y = self.model.step(&mut self.state, &self.x)?;
        self.model.apply_head(y, &mut self.head_out)?;
        Ok(id)
    }
}

/// The name of a head task as `--info` prints it.
pub fn task_name(task: HeadTask) -> &'static str {
    match task {
        HeadTask::Other => "other",
        HeadTask::Classifier => "classifier",
        HeadTask::LanguageModel => "language_model",
    }
}

/// The text to append for `token` when joining generated tokens: characters
/// as they are; words after a space, except punctuation, which attaches to
/// the word before it.
pub fn joined(tokenizer: Tokenizer, token: &str) -> String {
    match tokenizer {
        Tokenizer::Char => token.to_string(),
        Tokenizer::Word => {
            let mut chars = token.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if WORD_PUNCTUATION.contains(&c) => token.to_string(),
                _ => format!(" {token}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lm_head(activation: HeadActivation) -> Head {
        Head { out_features: 3, activation, task: HeadTask::LanguageModel, labels: vec![] }
    }

    #[test]
    fn temperature_one_keeps_the_models_probabilities() {
        let w = distribution(&lm_head(HeadActivation::Softmax), &[0.2, 0.3, 0.5], 1.0);
        for (a, b) in w.iter().zip([0.2, 0.3, 0.5]) {
            assert!((a - b).abs() < 1e-6, "{w:?}");
        }
        let w = distribution(&lm_head(HeadActivation::None), &[0.0, 0.0, (2.0f32).ln()], 1.0);
        assert!((w[2] - 0.5).abs() < 1e-6, "{w:?}");
    }

    #[test]
    fn low_temperature_sharpens_and_zero_is_greedy() {
        let head = lm_head(HeadActivation::Softmax);
        let sharp = distribution(&head, &[0.2, 0.3, 0.5], 0.5);
        // p^2 normalised: 0.04, 0.09, 0.25 over 0.38.
        assert!((sharp[2] - 0.25 / 0.38).abs() < 1e-6, "{sharp:?}");
        assert_eq!(distribution(&head, &[0.2, 0.5, 0.3], 0.0), [0.0, 1.0, 0.0]);
        let flat = distribution(&head, &[0.2, 0.3, 0.5], 1e6);
        assert!(flat.iter().all(|&w| (w - 1.0 / 3.0).abs() < 1e-4), "{flat:?}");
    }

    #[test]
    fn sampling_follows_the_weights() {
        let mut rng = Rng::new(3);
        let mut counts = [0usize; 3];
        for _ in 0..10_000 {
            counts[sample(&[0.1, 0.0, 0.9], &mut rng)] += 1;
        }
        assert_eq!(counts[1], 0);
        assert!((800..1200).contains(&counts[0]), "{counts:?}");
    }

    #[test]
    fn words_are_joined_with_spaces_and_punctuation_attaches() {
        let text: String = ["the", "cat", ".", "it"].iter().map(|t| joined(Tokenizer::Word, t)).collect();
        assert_eq!(text, " the cat. it");
        assert_eq!(joined(Tokenizer::Char, " "), " ");
    }
}
