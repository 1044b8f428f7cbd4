//! The command line: argument definitions (clap) and what each command does.
//! The binary only calls [`main`].
//!
//! Exit codes: 0 success, 1 failure while working (I/O, divergence when
//! asked to fail on it), 2 bad input (options, data files, checkpoints).

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};
pub use lstmrt_cli::args::DTypeArg;
use lstmrt_format::Tokenizer;

use crate::data::pronoun::{self, PronounConfig};
use crate::data::synthetic::{self, SplitSizes};
use crate::data::{Dataset, files};
use crate::error::Error;
use crate::experiment;
use crate::export::{self, Metrics};
use crate::net::{Cell, Init};
use crate::optim::{OptimConfig, Optimizer, Schedule};
use crate::rng::Rng;
use crate::train::{self, Finish, RunOptions, TrainConfig};

#[derive(Parser, Debug)]
#[command(
    name = "lstm-train",
    version,
    about = "Train LSTM, GRU and RNN models and write lstmrt model files",
    after_help = lstmrt_cli::exit::TABLE
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a model on a built-in task or your data and write a .lstm file.
    Train(Box<TrainArgs>),
    /// Print generated examples of a built-in task.
    Generate(GenerateArgs),
    /// Run an experiment and write its report.
    Experiment(ExperimentArgs),
}

/// Built-in tasks and kinds of user data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TaskName {
    /// Who is the pronoun about? Generated stories, answer he/she.
    Pronoun,
    /// Sum of two marked values in a long sequence (regression).
    Adding,
    /// Repeat symbols seen long ago.
    Copy,
    /// Character-level language model of a UTF-8 text file (--data).
    Lm,
    /// Sequence classification from --data (.csv / .jsonl, or .npy with --labels).
    Classify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TokenizerArg {
    Word,
    Char,
}

/// An inclusive range of integers: `N`, `A..B` or `A..=B` (both inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range(pub usize, pub usize);

impl std::str::FromStr for Range {
    type Err = String;
    fn from_str(s: &str) -> Result<Range, String> {
        let num = |x: &str| x.trim().parse::<usize>().map_err(|_| format!("{s:?} is not N, A..B or A..=B"));
        let r = match s.split_once("..") {
            Some((a, b)) => Range(num(a)?, num(b.strip_prefix('=').unwrap_or(b))?),
            None => {
                let n = num(s)?;
                Range(n, n)
            }
        };
        if r.0 > r.1 {
            return Err(format!("{s:?}: the start is after the end"));
        }
        Ok(r)
    }
}

#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// What to learn.
    #[arg(long, value_enum, default_value = "pronoun")]
    pub task: TaskName,
    /// Data file: text (lm), .csv / .jsonl (classify), or .npy sequences [N, T, F] (classify).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Integer class ids, one per sequence, for .npy sequences.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Column (CSV) or field (JSONL) holding the text.
    #[arg(long, default_value = "text")]
    pub text_column: String,
    /// Column (CSV) or field (JSONL) holding the label.
    #[arg(long, default_value = "label")]
    pub label_column: String,
    /// How classification text is cut into tokens.
    #[arg(long, value_enum, default_value = "word")]
    pub tokenizer: TokenizerArg,
    /// Keep case (text is lower-cased by default for word tokens; never for lm).
    #[arg(long)]
    pub keep_case: bool,
    /// Tokens seen fewer times in training become the unknown token.
    #[arg(long, default_value_t = 1)]
    pub min_count: usize,
    /// lm: characters per training sequence.
    #[arg(long, default_value_t = 64)]
    pub seq_len: usize,
    /// Fraction of user data held out for validation.
    #[arg(long, default_value_t = 0.1)]
    pub valid_fraction: f64,
    /// Fraction of user data held out for the test.
    #[arg(long, default_value_t = 0.1)]
    pub test_fraction: f64,
    /// pronoun: tokens between the last name and the blank in training stories.
    #[arg(long, default_value = "2..100")]
    pub distance: Range,
    /// pronoun: the same for validation and test stories.
    #[arg(long, default_value = "50..100")]
    pub test_distance: Range,
    /// pronoun: people introduced per story (all but the last are distractors).
    #[arg(long, default_value = "1..3")]
    pub people: Range,
    /// pronoun: chance that a neutral training word is replaced by the unknown token.
    #[arg(long, default_value_t = 0.1)]
    pub unknown_rate: f64,
    /// pronoun: share of training stories that talk about the last person (with pronouns) right after the
    /// name; held-out stories never do.
    #[arg(long, default_value_t = 0.5)]
    pub mention_last: f64,
    /// adding / copy: sequence length (copy: blank steps between the symbols and the delimiter).
    #[arg(long, default_value_t = 50)]
    pub length: usize,
    /// copy: symbols to remember.
    #[arg(long, default_value_t = 5)]
    pub symbols: usize,
    /// Generated tasks: training examples.
    #[arg(long, default_value_t = 10_000)]
    pub train_size: usize,
    /// Generated tasks: validation examples.
    #[arg(long, default_value_t = 500)]
    pub valid_size: usize,
    /// Generated tasks: test examples.
    #[arg(long, default_value_t = 1_000)]
    pub test_size: usize,
}

#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// The recurrent cell.
    #[arg(long, value_enum, default_value = "lstm")]
    pub cell: Cell,
    /// Hidden units per layer.
    #[arg(long, default_value_t = 64)]
    pub hidden: usize,
    /// LSTM projection size (0 = none).
    #[arg(long, default_value_t = 0)]
    pub proj: usize,
    /// Stacked recurrent layers.
    #[arg(long, default_value_t = 1)]
    pub layers: usize,
    /// Embedding width for token inputs (0 = one-hot inputs).
    #[arg(long, default_value_t = 32)]
    pub embed: usize,
    /// No linear head: the loss reads the top layer's h (its size must equal the outputs).
    #[arg(long)]
    pub no_head: bool,
    /// Scale of the recurrent weights' initial range (1 = PyTorch's default).
    #[arg(long, default_value_t = 1.0)]
    pub recurrent_scale: f64,
    /// Initial LSTM forget-gate bias.
    #[arg(long, default_value_t = 1.0)]
    pub forget_bias: f64,
}

#[derive(Args, Debug, Clone)]
pub struct OptimArgs {
    /// The update rule.
    #[arg(long, value_enum, default_value = "adam")]
    pub optimizer: Optimizer,
    /// Learning rate (the peak, with a schedule).
    #[arg(long, default_value_t = 3e-3)]
    pub lr: f64,
    /// How the learning rate changes after the warm-up.
    #[arg(long, value_enum, default_value = "constant")]
    pub schedule: Schedule,
    /// Updates of linear learning-rate warm-up.
    #[arg(long, default_value_t = 0)]
    pub warmup: u64,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.0)]
    pub momentum: f64,
    /// Decoupled weight decay on weight matrices.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Clip the gradient's global norm to this (0 = no clipping).
    #[arg(long, default_value_t = 1.0)]
    pub clip: f64,
    /// Sequences per minibatch.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Updates to run.
    #[arg(long, default_value_t = 2000)]
    pub steps: u64,
    /// Evaluate, log and checkpoint every this many updates.
    #[arg(long, default_value_t = 100)]
    pub eval_every: u64,
    /// Stop after this many evaluations without a better validation loss (0 = never).
    #[arg(long, default_value_t = 0)]
    pub patience: u64,
    /// Truncated BPTT length (0 = full BPTT).
    #[arg(long, default_value_t = 0)]
    pub truncate: usize,
    /// Threads a minibatch is split over (results are deterministic for a given count).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Seed of everything random: data, initialisation, shuffles.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub optim: OptimArgs,
    /// The model file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Element type of the written weight matrices.
    #[arg(long, value_enum, default_value = "f32")]
    pub dtype: DTypeArg,
    /// Checkpoint file (default: OUT with .ckpt added).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Continue from the checkpoint if it exists (same options and data required).
    #[arg(long)]
    pub resume: bool,
    /// CSV log of every evaluation (default: OUT with .csv added).
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// The task (only pronoun prints stories).
    #[arg(value_enum, default_value = "pronoun")]
    pub task: TaskName,
    /// Stories to print.
    #[arg(long, default_value_t = 5)]
    pub count: usize,
    /// pronoun: tokens between the last name and the blank.
    #[arg(long, default_value = "5..20")]
    pub distance: Range,
    /// People introduced per story.
    #[arg(long, default_value = "1..3")]
    pub people: Range,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Args, Debug)]
pub struct ExperimentArgs {
    /// Which experiment.
    #[arg(value_enum)]
    pub name: ExperimentName,
    /// Folder for report.md and the SVG plots.
    #[arg(long, default_value = "docs/vanishing")]
    pub out: PathBuf,
    /// Distances (tokens between the last name and the blank) to train at.
    #[arg(long, value_delimiter = ',', default_value = "5,10,20,50,100")]
    pub distances: Vec<usize>,
    /// Updates per training run.
    #[arg(long, default_value_t = 2000)]
    pub steps: u64,
    /// Training stories per run.
    #[arg(long, default_value_t = 8000)]
    pub train_size: usize,
    /// LSTM hidden size; the RNN gets the hidden size with the same parameter count.
    #[arg(long, default_value_t = 24)]
    pub hidden: usize,
    /// Distance of the exploding-gradient runs.
    #[arg(long, default_value_t = 5)]
    pub exploding_distance: usize,
    /// Recurrent initialisation scale of the exploding-gradient runs.
    #[arg(long, default_value_t = 2.5)]
    pub exploding_scale: f64,
    /// A larger recurrent scale whose gradient norms at initialisation are shown too.
    #[arg(long, default_value_t = 4.0)]
    pub exploding_norm_scale: f64,
    /// SGD learning rate of the exploding-gradient runs.
    #[arg(long, default_value_t = 0.3)]
    pub exploding_lr: f64,
    /// Updates of each exploding-gradient run.
    #[arg(long, default_value_t = 5000)]
    pub exploding_steps: u64,
    /// Gradient clipping (global norm) of the clipped exploding-gradient run.
    #[arg(long, default_value_t = 0.25)]
    pub exploding_clip: f64,
    /// Threads each training run splits its minibatches over.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Seeds each distance run is repeated with.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    pub seeds: Vec<u64>,
    /// No progress output.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExperimentName {
    /// Vanishing and exploding gradients: RNN vs LSTM on the pronoun task.
    Vanishing,
}

/// Checks the sizes of the data the arguments describe (each, and the
/// values a generated data set holds) before anything is generated.
pub fn check_data_sizes(args: &DataArgs) -> Result<(), Error> {
    use crate::limits::{MAX_DATA_VALUES, MAX_EXAMPLES, MAX_LENGTH, at_most, product_at_most};
    for (option, value) in [
        ("--length", args.length),
        ("--symbols", args.symbols),
        ("--seq-len", args.seq_len),
        ("--distance", args.distance.1),
        ("--test-distance", args.test_distance.1),
    ] {
        at_most(option, value, MAX_LENGTH)?;
    }
    let examples = [args.train_size, args.valid_size, args.test_size].iter().map(|&n| n as u128).sum::<u128>();
    if examples > MAX_EXAMPLES as u128 {
        return Err(Error::input(format!(
            "--train-size, --valid-size and --test-size make {examples} examples, above the limit of {MAX_EXAMPLES}"
        )));
    }
    let per_example = match args.task {
        TaskName::Pronoun => {
            crate::limits::pronoun_story_tokens(args.distance.1.max(args.test_distance.1), args.people.1)
        }
        TaskName::Adding => 2 * args.length as u128 + 1,
        TaskName::Copy => 2 * (2 * args.symbols as u128 + args.length as u128 + 1),
        // User data: bounded by the file's size as it is read.
        TaskName::Lm | TaskName::Classify => 0,
    };
    product_at_most(
        "values of generated data",
        "the split sizes and the sequence length",
        examples * per_example,
        MAX_DATA_VALUES,
    )
}

/// Builds the data set the arguments describe.
pub fn dataset(args: &DataArgs, seed: u64) -> Result<Dataset, Error> {
    check_data_sizes(args)?;
    let sizes = SplitSizes { train: args.train_size, valid: args.valid_size, test: args.test_size, seed };
    let text = files::TextOptions {
        tokenizer: match args.tokenizer {
            TokenizerArg::Word => Tokenizer::Word,
            TokenizerArg::Char => Tokenizer::Char,
        },
        lowercase: !args.keep_case,
        min_count: args.min_count,
        text_column: args.text_column.clone(),
        label_column: args.label_column.clone(),
        valid: args.valid_fraction,
        test: args.test_fraction,
        seed,
        seq_len: args.seq_len,
    };
    for (name, f) in [("--valid-fraction", args.valid_fraction), ("--test-fraction", args.test_fraction)] {
        if !(0.0..0.5).contains(&f) {
            return Err(Error::input(format!("{name} {f} is not in [0, 0.5)")));
        }
    }
    let need_data =
        |task: &str| args.data.as_deref().ok_or_else(|| Error::input(format!("--task {task} needs --data FILE")));
    match args.task {
        TaskName::Pronoun => {
            let config = PronounConfig {
                train_distance: (args.distance.0, args.distance.1),
                test_distance: (args.test_distance.0, args.test_distance.1),
                people: (args.people.0, args.people.1),
                unknown_rate: args.unknown_rate,
                mention_last: args.mention_last,
                train: args.train_size,
                valid: args.valid_size,
                test: args.test_size,
                seed,
            };
            pronoun::validate(&config).map_err(Error::input)?;
            Ok(pronoun::dataset(&config))
        }
        TaskName::Adding => {
            if args.length < 2 {
                return Err(Error::input("--length must be at least 2 for adding"));
            }
            Ok(synthetic::adding(args.length, &sizes))
        }
        TaskName::Copy => {
            if args.symbols == 0 {
                return Err(Error::input("--symbols must be at least 1"));
            }
            Ok(synthetic::copy(args.length, args.symbols, &sizes))
        }
        TaskName::Lm => {
            let text = files::TextOptions { lowercase: false, ..text };
            files::char_lm(need_data("lm")?, &text)
        }
        TaskName::Classify => {
            let data = need_data("classify")?;
            let is_npy = data.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"));
            match (&args.labels, is_npy) {
                (Some(labels), true) => files::npy_classification(data, labels, &text),
                (None, true) => Err(Error::input(format!("{}: .npy sequences need --labels FILE", data.display()))),
                (Some(_), false) => Err(Error::input("--labels is only for .npy sequences")),
                (None, false) => files::text_classification(data, &text),
            }
        }
    }
}

/// The training configuration the arguments describe.
pub fn train_config(model: &ModelArgs, o: &OptimArgs) -> Result<TrainConfig, Error> {
    if !(o.clip >= 0.0 && o.clip.is_finite()) {
        return Err(Error::input(format!("--clip {} is not a non-negative number", o.clip)));
    }
    Ok(TrainConfig {
        cell: model.cell,
        hidden: model.hidden,
        proj: model.proj,
        layers: model.layers,
        embed: model.embed,
        head: !model.no_head,
        init: Init { recurrent_scale: model.recurrent_scale, forget_bias: model.forget_bias },
        optim: OptimConfig {
            optimizer: o.optimizer,
            lr: o.lr,
            schedule: o.schedule,
            warmup: o.warmup,
            momentum: o.momentum,
            weight_decay: o.weight_decay,
            clip: (o.clip > 0.0).then_some(o.clip),
            ..OptimConfig::default()
        },
        batch_size: o.batch_size,
        steps: o.steps,
        eval_every: o.eval_every,
        patience: o.patience,
        truncate: o.truncate,
        threads: o.threads,
        seed: o.seed,
    })
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Checks every output path before any work: each can be written (its
/// folder exists, it is not a folder), none is a file read (`--data`,
/// `--labels`), and no two are the same file.
fn check_outputs(args: &TrainArgs, outputs: &[(&str, &Path)]) -> Result<(), Error> {
    let mut read = lstmrt_format::ReadFiles::new();
    for path in [&args.data.data, &args.data.labels].into_iter().flatten() {
        read.note(path);
    }
    for (i, (option, path)) in outputs.iter().enumerate() {
        let bad = |e: String| Error::input(format!("{option}: {e}"));
        lstmrt_format::check_output_place(path).map_err(bad)?;
        read.check_output(path).map_err(bad)?;
        let same = |a: &Path, b: &Path| std::path::absolute(a).ok() == std::path::absolute(b).ok();
        if let Some((other, _)) = outputs[..i].iter().find(|(_, p)| same(p, path)) {
            return Err(Error::input(format!(
                "{option} {} is also {other}: give each output its own file",
                path.display()
            )));
        }
    }
    Ok(())
}

/// Checks the model options that size memory, on their own, before any
/// data is generated (their products are checked with the data's sizes).
fn check_model_sizes(model: &ModelArgs, optim: &OptimArgs) -> Result<(), Error> {
    use crate::limits::{MAX_BATCH, MAX_LAYERS, MAX_WIDTH, at_most};
    at_most("--hidden", model.hidden, MAX_WIDTH)?;
    at_most("--proj", model.proj, MAX_WIDTH)?;
    at_most("--embed", model.embed, MAX_WIDTH)?;
    at_most("--layers", model.layers, MAX_LAYERS)?;
    at_most("--batch-size", optim.batch_size, MAX_BATCH)
}

/// `--threads` at most [`crate::limits::max_threads`], with a note when lowered.
fn capped_threads(threads: usize) -> usize {
    let max = crate::limits::max_threads();
    if threads > max {
        eprintln!(
            "lstm-train: note: --threads {threads} is more than {} per core; using {max}",
            lstmrt::THREADS_PER_CORE
        );
    }
    threads.min(max)
}

fn train_command(args: &TrainArgs) -> Result<(), Error> {
    let checkpoint = args.checkpoint.clone().unwrap_or_else(|| with_suffix(&args.out, ".ckpt"));
    let log = args.log.clone().unwrap_or_else(|| with_suffix(&args.out, ".csv"));
    check_outputs(args, &[("--out", &args.out), ("--checkpoint", &checkpoint), ("--log", &log)])?;
    check_model_sizes(&args.model, &args.optim)?;
    let mut config = train_config(&args.model, &args.optim)?;
    config.threads = capped_threads(config.threads);
    let data = dataset(&args.data, args.optim.seed)?;
    let opts = RunOptions {
        checkpoint: Some(checkpoint),
        resume: args.resume,
        csv_log: Some(log),
        progress: !args.quiet,
        interrupt_at: None,
    };
    let outcome = train::run(&config, &data, &opts)?;
    let metrics = Metrics {
        steps: outcome.state.step,
        finish: Some(outcome.finish),
        valid: outcome.valid,
        test: outcome.test,
        seconds: outcome.state.seconds,
    };
    let meta = export::metadata(&outcome.net, &data.task, &config, &metrics);
    export::write_model(&args.out, &meta, &outcome.net, &outcome.params, args.dtype.dtype())?;
    let test = outcome.test.filter(|t| t.count > 0).map_or(String::new(), |t| {
        format!(", test loss {:.4} accuracy {:.4} ({} targets)", t.mean_loss(), t.accuracy(), t.count)
    });
    eprintln!(
        "wrote {}: {} updates in {:.1} s ({:?}){test}",
        args.out.display(),
        outcome.state.step,
        outcome.state.seconds,
        outcome.finish
    );
    if outcome.finish == Finish::Diverged {
        return Err(Error::failed(
            "training diverged (the loss or gradient became infinite); try --clip or a lower --lr",
        ));
    }
    Ok(())
}

fn generate_command(args: &GenerateArgs) -> Result<(), Error> {
    if args.task != TaskName::Pronoun {
        return Err(Error::input("generate supports the pronoun task"));
    }
    crate::limits::at_most("--count", args.count, crate::limits::MAX_EXAMPLES)?;
    crate::limits::at_most("--distance", args.distance.1, crate::limits::MAX_LENGTH)?;
    crate::limits::product_at_most(
        "tokens of stories",
        "--count and --distance",
        args.count as u128 * crate::limits::pronoun_story_tokens(args.distance.1, args.people.1),
        crate::limits::MAX_DATA_VALUES,
    )?;
    let config = PronounConfig {
        train_distance: (args.distance.0, args.distance.1),
        test_distance: (args.distance.0, args.distance.1),
        people: (args.people.0, args.people.1),
        ..PronounConfig::default()
    };
    pronoun::validate(&config).map_err(Error::input)?;
    let lex = pronoun::Lexicon::new();
    let mut rng = Rng::new(args.seed);
    for s in
        pronoun::stories(&lex, args.count, config.train_distance, config.people, 0.0, &mut rng, &mut Default::default())
    {
        println!("{} ___  -> {} (distance {})", lex.text(&s.tokens), s.answer.label(), s.distance);
    }
    Ok(())
}

fn experiment_command(args: &ExperimentArgs) -> Result<(), Error> {
    match args.name {
        ExperimentName::Vanishing => {
            use crate::limits::{MAX_DATA_VALUES, MAX_EXAMPLES, MAX_LENGTH, MAX_WIDTH, at_most, product_at_most};
            at_most("--hidden", args.hidden, MAX_WIDTH)?;
            at_most("--train-size", args.train_size, MAX_EXAMPLES)?;
            let longest = args.distances.iter().copied().chain([args.exploding_distance]).max().unwrap_or(0);
            at_most("--distances", longest, MAX_LENGTH)?;
            product_at_most(
                "values of generated data",
                "--train-size and --distances",
                args.train_size as u128 * crate::limits::pronoun_story_tokens(longest, 3),
                MAX_DATA_VALUES,
            )?;
            let settings = experiment::Settings {
                distances: args.distances.clone(),
                steps: args.steps,
                train_size: args.train_size,
                hidden: args.hidden,
                exploding_distance: args.exploding_distance,
                exploding_scale: args.exploding_scale,
                exploding_norm_scale: args.exploding_norm_scale,
                exploding_lr: args.exploding_lr,
                exploding_steps: args.exploding_steps,
                exploding_clip: args.exploding_clip,
                threads: capped_threads(args.threads),
                seeds: args.seeds.clone(),
                progress: !args.quiet,
                ..experiment::Settings::default()
            };
            // The command as run from the repository root, whatever the binary's path.
            let argv: Vec<String> = std::env::args().skip(1).collect();
            let command = format!("cargo run --release -p lstm-train -- {}", argv.join(" "));
            experiment::vanishing(&settings, &args.out, &command)
        }
    }
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Train(args) => train_command(args),
        Command::Generate(args) => generate_command(args),
        Command::Experiment(args) => experiment_command(args),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("lstm-train: {e}");
            e.exit_code()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_inclusively() {
        assert_eq!("5".parse::<Range>(), Ok(Range(5, 5)));
        assert_eq!("2..100".parse::<Range>(), Ok(Range(2, 100)));
        assert_eq!("2..=100".parse::<Range>(), Ok(Range(2, 100)));
        assert!("9..3".parse::<Range>().is_err());
        assert!("x".parse::<Range>().is_err());
    }
}
