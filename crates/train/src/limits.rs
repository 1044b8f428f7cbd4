//! The largest sizes the trainer accepts, and the one check of a whole set
//! of options against them, before anything is generated or allocated.
//!
//! Each size is bounded on its own (so nothing is truncated to 32 bits before
//! it is checked), and the products that become memory are bounded too, in
//! `u128` so no product of legal options overflows: the values of a
//! generated data set, the parameters (kept four times: weights, gradients
//! and Adam's two moments), and the activations a minibatch keeps for
//! backpropagation through time. `docs/reliability.md` lists them.

use crate::error::Error;
use crate::net::{Cell, NetSpec};

/// Hidden size, projection and embedding width: 2^16.
pub const MAX_WIDTH: usize = 1 << 16;
/// Stacked layers: 64.
pub const MAX_LAYERS: usize = 64;
/// Sequence lengths, distances, symbols, characters per sequence: 2^16.
pub const MAX_LENGTH: usize = 1 << 16;
/// Examples of a generated data set (train, validation and test together)
/// and stories `generate` prints: 2^24.
pub const MAX_EXAMPLES: usize = 1 << 24;
/// Sequences per minibatch: 2^16.
pub const MAX_BATCH: usize = 1 << 16;
/// Values a generated data set holds: 2^28 (1 GiB of f32 or u32).
pub const MAX_DATA_VALUES: u128 = 1 << 28;
/// Parameters of a network: 2^26 (256 MiB each of weights, gradients and
/// the optimiser's two moments).
pub const MAX_PARAMETERS: u128 = 1 << 26;
/// Values a minibatch's forward pass keeps for the backward pass: 2^28
/// (1 GiB).
pub const MAX_MINIBATCH_VALUES: u128 = 1 << 28;
/// Text data (`--task lm`, `--task classify` with CSV/JSONL): 16 MiB. Every
/// character or word becomes a token string and an id in memory (tens of
/// bytes each), so a text file costs far more than its size.
pub const TEXT_DATA: lstmrt_format::FileLimit =
    lstmrt_format::FileLimit { bytes: 1 << 24, what: "training text (each character is a token in memory)" };
/// `.npy` sequences and labels (`--task classify`): 256 MiB (read as
/// float64, then kept as float32 examples).
pub const ARRAY_DATA: lstmrt_format::FileLimit =
    lstmrt_format::FileLimit { bytes: 1 << 28, what: "training arrays (read as float64)" };

/// Threads a minibatch is split over: as many as `lstmrt` gives a state
/// ([`lstmrt::max_threads`]); more only wait on each other.
pub fn max_threads() -> usize {
    lstmrt::max_threads()
}

/// One size against its limit: `option` names the flag in the message.
pub fn at_most(option: &str, value: usize, limit: usize) -> Result<(), Error> {
    if value > limit {
        return Err(Error::input(format!("{option} {value} is above the limit of {limit}")));
    }
    Ok(())
}

/// A product of sizes against its limit, naming what it counts and the
/// options it comes from.
pub fn product_at_most(what: &str, options: &str, value: u128, limit: u128) -> Result<(), Error> {
    if value > limit {
        return Err(Error::input(format!("{options} make {value} {what}, above the limit of {limit}")));
    }
    Ok(())
}

/// The most tokens a pronoun story of these shapes holds: the distance,
/// then per person an introduction and a sentence about them (each at most
/// a few dozen tokens).
pub fn pronoun_story_tokens(max_distance: usize, max_people: usize) -> u128 {
    max_distance as u128 + 64 * max_people.max(1) as u128 + 64
}

/// Parameters of `spec`, in `u128` (checked before any layout is made).
pub fn parameters(spec: &NetSpec) -> u128 {
    let gates = spec.cell.gates() as u128;
    let (h, p) = (spec.hidden as u128, spec.output_size() as u128);
    let mut n = 0u128;
    if let crate::net::Input::Tokens { vocab, embed } = spec.input
        && embed > 0
    {
        n += vocab as u128 * embed as u128;
    }
    for l in 0..spec.layers {
        let input = spec.layer_input(l) as u128;
        n += gates * h * (input + p + 2);
        if spec.proj > 0 {
            n += p * h;
        }
    }
    if let Some(head) = spec.head {
        n += head.out as u128 * (p + 1);
    }
    n
}

/// Checks a network's sizes (before its parameters are laid out) and, with
/// `batch` sequences of up to `steps` steps, what one minibatch keeps.
pub fn check_net(spec: &NetSpec, batch: usize, steps: usize) -> Result<(), Error> {
    at_most("--hidden", spec.hidden, MAX_WIDTH)?;
    at_most("--proj", spec.proj, MAX_WIDTH)?;
    at_most("--layers", spec.layers, MAX_LAYERS)?;
    if let crate::net::Input::Tokens { embed, .. } = spec.input {
        at_most("--embed", embed, MAX_WIDTH)?;
    }
    product_at_most(
        "parameters",
        "--hidden, --proj, --layers, --embed and the data's inputs",
        parameters(spec),
        MAX_PARAMETERS,
    )?;
    // Per step and layer: the gates, the cell and hidden states and their
    // inputs, for every sequence of the minibatch.
    let per_step = spec.layers as u128
        * (spec.cell.gates() as u128 * spec.hidden as u128
            + 3 * spec.hidden as u128
            + spec.layer_input(0).max(spec.output_size()) as u128);
    let extra = if spec.cell == Cell::Lstm { 1 } else { 0 };
    product_at_most(
        "values kept for backpropagation per minibatch",
        "--batch-size, the sequence length and the network's sizes",
        batch as u128 * steps as u128 * (per_step + extra),
        MAX_MINIBATCH_VALUES,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{HeadSpec, Input, Loss};

    fn spec(hidden: usize, layers: usize) -> NetSpec {
        NetSpec {
            cell: Cell::Lstm,
            input: Input::Tokens { vocab: 100, embed: 32 },
            hidden,
            proj: 0,
            layers,
            head: Some(HeadSpec { out: 2 }),
            loss: Loss::CrossEntropy,
        }
    }

    #[test]
    fn parameters_are_counted_as_the_layout_lays_them_out() {
        for s in [spec(8, 1), spec(24, 3), NetSpec { proj: 4, ..spec(16, 2) }] {
            assert_eq!(parameters(&s), crate::net::Net::new(s.clone()).layout.len as u128, "{s:?}");
        }
    }

    #[test]
    fn sizes_at_their_limit_pass_alone_and_products_past_theirs_are_refused() {
        assert!(at_most("--hidden", MAX_WIDTH, MAX_WIDTH).is_ok());
        let e = at_most("--hidden", MAX_WIDTH + 1, MAX_WIDTH).unwrap_err().to_string();
        assert_eq!(e, "--hidden 65537 is above the limit of 65536");
        // Above 2^32: the number itself is reported, not a truncation of it.
        let e = check_net(&spec((1 << 32) + 5, 1), 1, 1).unwrap_err().to_string();
        assert!(e.contains("--hidden 4294967301 is above"), "{e}");
        // 2^26 parameters exactly: a one-layer RNN with one input, no head.
        let rnn = |hidden| NetSpec {
            cell: Cell::Rnn,
            input: Input::Dense { features: 1 },
            hidden,
            proj: 0,
            layers: 1,
            head: None,
            loss: Loss::CrossEntropy,
        };
        let h = (1..MAX_WIDTH).rev().find(|&h| parameters(&rnn(h)) <= MAX_PARAMETERS).unwrap();
        assert!(check_net(&rnn(h), 1, 1).is_ok());
        let e = check_net(&rnn(h + 1), 1, 1).unwrap_err().to_string();
        assert!(e.contains("parameters, above the limit of 67108864"), "{e}");
        let e = check_net(&spec(64, 1), MAX_BATCH, MAX_LENGTH).unwrap_err().to_string();
        assert!(e.contains("values kept for backpropagation"), "{e}");
    }
}
