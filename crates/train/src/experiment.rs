//! `lstm-train experiment vanishing`: why the LSTM remembers and the plain
//! RNN does not, measured on the pronoun task.
//!
//! 1. For each distance D, train an RNN and an LSTM with the same number of
//!    recurrent parameters on stories whose distance is drawn from `2..=D`,
//!    and test them on stories at exactly D.
//! 2. On the longest distance, measure `||dL/dh_{T-k}||`, the gradient of the
//!    loss at the blank with respect to the hidden state k steps earlier,
//!    against k, at initialisation and after training (the vanishing gradient).
//! 3. Initialise an RNN with a large recurrent matrix: the same norms grow with
//!    k (the exploding gradient); train it with plain SGD without and with
//!    gradient clipping.
//!
//! The results go to a markdown report with SVG plots.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use crate::data::Dataset;
use crate::data::pronoun::{self, PronounConfig};
use crate::error::Error;
use crate::net::{Cell, Init, Net};
use crate::optim::{OptimConfig, Optimizer};
use crate::plot::{self, Chart, Corner, Series};
use crate::train::{self, EvalRow, Finish, RunOptions, StateGradients, TrainConfig, Trainer};

/// What the experiment runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Test distances; each model trains on distances `2..=D`.
    pub distances: Vec<usize>,
    /// Updates per training run.
    pub steps: u64,
    pub train_size: usize,
    pub valid_size: usize,
    pub test_size: usize,
    /// LSTM hidden size; the RNN's is chosen for the same parameter count.
    pub hidden: usize,
    pub embed: usize,
    pub batch_size: usize,
    /// Adam learning rate of the distance runs.
    pub lr: f64,
    /// Test stories the gradient norms are averaged over.
    pub norm_stories: usize,
    /// Distance of the exploding-gradient runs.
    pub exploding_distance: usize,
    /// Recurrent initialisation scale of the exploding-gradient runs.
    pub exploding_scale: f64,
    /// A larger scale whose gradient norms at initialisation are shown too.
    pub exploding_norm_scale: f64,
    /// SGD learning rate of the exploding-gradient runs.
    pub exploding_lr: f64,
    pub exploding_steps: u64,
    /// Gradient clipping (global norm) of the clipped exploding-gradient run.
    pub exploding_clip: f64,
    /// Gradient clipping (global norm) of the distance runs.
    pub clip: f64,
    pub threads: usize,
    /// Each distance run is repeated with each seed (data, initialisation
    /// and order); gradient norms and the exploding runs use the first.
    pub seeds: Vec<u64>,
    /// One line per finished run on stderr.
    pub progress: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            distances: vec![5, 10, 20, 50, 100],
            steps: 2000,
            train_size: 8000,
            valid_size: 300,
            test_size: 500,
            hidden: 24,
            embed: 16,
            batch_size: 32,
            lr: 3e-3,
            norm_stories: 100,
            exploding_distance: 5,
            exploding_scale: 2.5,
            exploding_norm_scale: 4.0,
            exploding_lr: 0.3,
            exploding_steps: 5000,
            exploding_clip: 0.25,
            clip: 1.0,
            threads: 2,
            seeds: vec![1, 2, 3],
            progress: true,
        }
    }
}

/// One trained model.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub cell: Cell,
    pub hidden: usize,
    pub distance: usize,
    pub seed: u64,
    pub test_accuracy: f64,
    pub test_loss: f64,
    pub finish: Finish,
    pub seconds: f64,
    pub log: Vec<EvalRow>,
}

/// Gradient norms against k, summarised over stories.
#[derive(Debug, Clone)]
pub struct NormCurve {
    pub label: String,
    /// Geometric mean over stories of `||dL/dh_{T-k}|| / ||dL/dh_T||`, k = 0, 1, ...
    pub ratio: Vec<f64>,
    /// Geometric mean over stories of `||dL/dh_{T-k}||`.
    pub raw: Vec<f64>,
}

impl NormCurve {
    /// From per-story norms at k = 0, 1, ... and each story's `||dL/dh_T||`.
    fn new(label: impl Into<String>, values: &[&[f64]], reference: &[f64]) -> NormCurve {
        let k_max = values.iter().map(|v| v.len()).min().unwrap_or(0);
        let geo = |f: &dyn Fn(usize) -> f64| {
            let logs: Vec<f64> = (0..values.len()).map(f).filter(|v| *v > 0.0 && v.is_finite()).map(f64::ln).collect();
            if logs.is_empty() { f64::NAN } else { (logs.iter().sum::<f64>() / logs.len() as f64).exp() }
        };
        let ratio = (0..k_max).map(|k| geo(&|i| values[i][k] / reference[i])).collect();
        let raw = (0..k_max).map(|k| geo(&|i| values[i][k])).collect();
        NormCurve { label: label.into(), ratio, raw }
    }

    /// `||dL/dh_{T-k}|| / ||dL/dh_T||`.
    fn of_h(label: impl Into<String>, g: &[StateGradients]) -> NormCurve {
        let values: Vec<&[f64]> = g.iter().map(|s| s.h.as_slice()).collect();
        let reference: Vec<f64> = g.iter().map(|s| s.h[0]).collect();
        NormCurve::new(label, &values, &reference)
    }

    /// `||dL/dc_{T-k}|| / ||dL/dh_T||` (LSTM).
    fn of_c(label: impl Into<String>, g: &[StateGradients]) -> NormCurve {
        let values: Vec<&[f64]> = g.iter().map(|s| s.c.as_slice()).collect();
        let reference: Vec<f64> = g.iter().map(|s| s.h[0]).collect();
        NormCurve::new(label, &values, &reference)
    }

    /// The average factor per step over `k` steps: `(ratio[k] / ratio[0])^(1/k)`.
    pub fn per_step(&self, k: usize) -> f64 {
        match (self.ratio.first(), self.ratio.get(k)) {
            (Some(&r0), Some(&rk)) if k > 0 => (rk / r0).powf(1.0 / k as f64),
            _ => f64::NAN,
        }
    }
}

/// One exploding-gradient training run.
#[derive(Debug, Clone)]
pub struct ClipRun {
    /// Recurrent initialisation scale.
    pub scale: f64,
    pub clip: Option<f64>,
    pub finish: Finish,
    pub steps: u64,
    pub log: Vec<EvalRow>,
    pub test_accuracy: f64,
}

fn clip_label(clip: Option<f64>) -> String {
    clip.map_or("no clipping".to_string(), |c| format!("clipped at {c}"))
}

impl ClipRun {
    pub fn label(&self) -> String {
        format!("init x{}, {}", self.scale, clip_label(self.clip))
    }
}

/// Everything the report shows.
#[derive(Debug, Clone)]
pub struct Results {
    pub settings: Settings,
    pub lstm_hidden: usize,
    pub rnn_hidden: usize,
    /// Parameters of the recurrent layer plus head (the embedding is shared in size).
    pub lstm_params: usize,
    pub rnn_params: usize,
    pub runs: Vec<RunResult>,
    pub norm_distance: usize,
    pub norms: Vec<NormCurve>,
    pub exploding_norms: Vec<NormCurve>,
    pub clip_runs: Vec<ClipRun>,
    pub seconds: f64,
}

/// Recurrent-layer parameters of a one-layer cell: `G*H*(E + H + 2)`.
fn recurrent_params(cell: Cell, hidden: usize, embed: usize) -> usize {
    cell.gates() * hidden * (embed + hidden + 2)
}

/// The RNN hidden size whose parameter count is closest to the LSTM's.
pub fn matched_rnn_hidden(lstm_hidden: usize, embed: usize) -> usize {
    let target = recurrent_params(Cell::Lstm, lstm_hidden, embed) as i64;
    (1..=8 * lstm_hidden + 8)
        .min_by_key(|&h| (recurrent_params(Cell::Rnn, h, embed) as i64 - target).abs())
        .expect("non-empty range")
}

fn data_at(settings: &Settings, distance: usize, seed: u64) -> Dataset {
    pronoun::dataset(&PronounConfig {
        train_distance: (pronoun::MIN_DISTANCE, distance.max(pronoun::MIN_DISTANCE)),
        test_distance: (distance, distance),
        people: (1, 3),
        unknown_rate: 0.1,
        // Pure memory: nothing gendered after the last name, in training too.
        mention_last: 0.0,
        train: settings.train_size,
        valid: settings.valid_size,
        test: settings.test_size,
        seed,
    })
}

fn config(settings: &Settings, cell: Cell, hidden: usize, seed: u64) -> TrainConfig {
    TrainConfig {
        cell,
        hidden,
        proj: 0,
        layers: 1,
        embed: settings.embed,
        head: true,
        init: Init::default(),
        optim: OptimConfig { lr: settings.lr, clip: Some(settings.clip), ..OptimConfig::default() },
        batch_size: settings.batch_size,
        steps: settings.steps,
        eval_every: (settings.steps / 12).max(1),
        patience: 0,
        truncate: 0,
        threads: settings.threads,
        seed,
    }
}

/// Parameters at initialisation for `config` (what [`train::run`] starts from).
fn initial(config: &TrainConfig, data: &Dataset) -> Result<(Net, Vec<f32>), Error> {
    let t = Trainer::new(config.clone(), data)?;
    Ok((t.net, t.state.params))
}

/// Runs the whole experiment.
pub fn run(settings: &Settings) -> Result<Results, Error> {
    let started = Instant::now();
    if settings.distances.is_empty() || settings.distances.iter().any(|&d| d < pronoun::MIN_DISTANCE) {
        return Err(Error::input(format!("--distances must be at least {} each", pronoun::MIN_DISTANCE)));
    }
    let Some(&first_seed) = settings.seeds.first() else {
        return Err(Error::input("--seeds needs at least one seed"));
    };
    let lstm_hidden = settings.hidden;
    let rnn_hidden = matched_rnn_hidden(lstm_hidden, settings.embed);
    let mut distances = settings.distances.clone();
    distances.sort_unstable();
    distances.dedup();
    let longest = *distances.last().expect("non-empty");
    let total = distances.len() * settings.seeds.len() * 2 + 3;
    let mut done = 0;
    let mut say = |what: String| {
        done += 1;
        if settings.progress {
            eprintln!("[{done}/{total}] {what} ({:.0} s so far)", started.elapsed().as_secs_f64());
        }
    };

    let mut runs = Vec::new();
    let mut norms = Vec::new();
    for &distance in &distances {
        for &seed in &settings.seeds {
            let data = data_at(settings, distance, seed);
            for (cell, hidden) in [(Cell::Rnn, rnn_hidden), (Cell::Lstm, lstm_hidden)] {
                let config = config(settings, cell, hidden, seed);
                let t0 = Instant::now();
                let out = train::run(&config, &data, &RunOptions::default())?;
                let test = out.test.unwrap_or_default();
                if distance == longest && seed == first_seed {
                    let stories = &data.test[..settings.norm_stories.min(data.test.len())];
                    let (net, init) = initial(&config, &data)?;
                    let name = cell.name().to_uppercase();
                    let at_init = train::gradient_norms(&net, &init, stories, distance);
                    let trained = train::gradient_norms(&out.net, &out.params, stories, distance);
                    norms.push(NormCurve::of_h(format!("{name} h, init"), &at_init));
                    norms.push(NormCurve::of_h(format!("{name} h, trained"), &trained));
                    if cell == Cell::Lstm {
                        norms.push(NormCurve::of_c(format!("{name} c, init"), &at_init));
                        norms.push(NormCurve::of_c(format!("{name} c, trained"), &trained));
                    }
                }
                say(format!(
                    "{} (hidden {hidden}) at distance {distance}, seed {seed}: test accuracy {:.3}",
                    cell.name(),
                    test.accuracy()
                ));
                runs.push(RunResult {
                    cell,
                    hidden,
                    distance,
                    seed,
                    test_accuracy: test.accuracy(),
                    test_loss: test.mean_loss(),
                    finish: out.finish,
                    seconds: t0.elapsed().as_secs_f64(),
                    log: out.state.log,
                });
            }
        }
    }

    // Exploding gradients: a large recurrent initialisation. The norms are
    // measured on the longest stories, the SGD runs train on short ones.
    let long_data = data_at(settings, longest, first_seed);
    let stories = &long_data.test[..settings.norm_stories.min(long_data.test.len())];
    let mut exploding_norms = Vec::new();
    let large = settings.exploding_scale;
    for scale in [1.0, large, settings.exploding_norm_scale] {
        let mut c = config(settings, Cell::Rnn, rnn_hidden, first_seed);
        c.init.recurrent_scale = scale;
        let (net, init) = initial(&c, &long_data)?;
        let label = format!("RNN, init x{scale}");
        exploding_norms.push(NormCurve::of_h(label, &train::gradient_norms(&net, &init, stories, longest)));
    }
    let data = data_at(settings, settings.exploding_distance, first_seed);
    let mut clip_runs = Vec::new();
    // The large init without and with clipping, and for contrast the default
    // init without clipping at the same step size.
    for (scale, clip) in [(large, None), (large, Some(settings.exploding_clip)), (1.0, None)] {
        let mut c = config(settings, Cell::Rnn, rnn_hidden, first_seed);
        c.init.recurrent_scale = scale;
        c.optim = OptimConfig { optimizer: Optimizer::Sgd, lr: settings.exploding_lr, clip, ..OptimConfig::default() };
        c.steps = settings.exploding_steps;
        c.eval_every = (settings.exploding_steps / 100).max(1);
        let out = train::run(&c, &data, &RunOptions::default())?;
        let acc = out.test.unwrap_or_default().accuracy();
        say(format!(
            "RNN init x{scale}, SGD, {}: {:?} after {} updates, test accuracy {acc:.3}",
            clip.map_or("no clipping".to_string(), |c| format!("clipping at {c}")),
            out.finish,
            out.state.step
        ));
        // Where the run left the recurrence (its last weights, not the best ones).
        let end = train::gradient_norms(&out.net, &out.state.params, stories, longest);
        if scale == large {
            exploding_norms.push(NormCurve::of_h(format!("after SGD from x{scale}, {}", clip_label(clip)), &end));
        }
        clip_runs.push(ClipRun {
            scale,
            clip,
            finish: out.finish,
            steps: out.state.step,
            log: out.state.log,
            test_accuracy: acc,
        });
    }

    Ok(Results {
        settings: settings.clone(),
        lstm_hidden,
        rnn_hidden,
        lstm_params: recurrent_params(Cell::Lstm, lstm_hidden, settings.embed) + 2 * (lstm_hidden + 1),
        rnn_params: recurrent_params(Cell::Rnn, rnn_hidden, settings.embed) + 2 * (rnn_hidden + 1),
        runs,
        norm_distance: longest,
        norms,
        exploding_norms,
        clip_runs,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// File names of the plots, relative to the report.
pub const PLOTS: [&str; 5] =
    ["accuracy.svg", "gradient_norms.svg", "exploding_gradients.svg", "clipping.svg", "training_curves.svg"];

/// Mean, lowest and highest test accuracy over the seeds.
fn accuracy_of(results: &Results, cell: Cell, distance: usize) -> Option<(f64, f64, f64)> {
    let accs: Vec<f64> =
        results.runs.iter().filter(|r| r.cell == cell && r.distance == distance).map(|r| r.test_accuracy).collect();
    if accs.is_empty() {
        return None;
    }
    let mean = accs.iter().sum::<f64>() / accs.len() as f64;
    Some((mean, accs.iter().copied().fold(1.0, f64::min), accs.iter().copied().fold(0.0, f64::max)))
}

fn fmt_sci(v: f64) -> String {
    if v.is_finite() { format!("{v:.2e}") } else { "—".into() }
}

fn ks_for(len: usize) -> Vec<usize> {
    [0, 1, 2, 5, 10, 20, 50, 100, 200].into_iter().filter(|&k| k < len).collect()
}

/// Writes `report.md` and the plots into `dir`.
pub fn write_report(results: &Results, dir: &Path, command: &str) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::failed(format!("{}: cannot create: {e}", dir.display())))?;
    let s = &results.settings;
    let distances: Vec<usize> =
        results.runs.iter().map(|r| r.distance).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let first_seed = s.seeds.first().copied().unwrap_or_default();

    // Plots.
    let line = |cell: Cell, color| Series {
        label: format!(
            "{} (hidden {})",
            cell.name().to_uppercase(),
            if cell == Cell::Lstm { results.lstm_hidden } else { results.rnn_hidden }
        ),
        points: distances
            .iter()
            .filter_map(|&d| accuracy_of(results, cell, d).map(|(mean, _, _)| (d as f64, mean)))
            .collect(),
        color,
    };
    plot::line_chart(
        &dir.join(PLOTS[0]),
        &Chart {
            title: "Test accuracy against distance (chance = 0.5)".into(),
            x_label: "tokens between the last name and the blank".into(),
            y_label: "test accuracy".into(),
            log_y: false,
            y_range: Some((0.4, 1.02)),
            legend: Corner::LowerLeft,
        },
        &[line(Cell::Rnn, 0), line(Cell::Lstm, 1)],
    )?;
    let curve_series = |curves: &[NormCurve]| -> Vec<Series> {
        curves
            .iter()
            .enumerate()
            .map(|(i, c)| Series {
                label: c.label.clone(),
                points: c.ratio.iter().enumerate().map(|(k, &v)| (k as f64, v)).collect(),
                color: i,
            })
            .collect()
    };
    plot::line_chart(
        &dir.join(PLOTS[1]),
        &Chart {
            title: format!("Gradient w.r.t. the state k steps before the blank, distance {}", results.norm_distance),
            x_label: "k (steps before the blank)".into(),
            y_label: "relative gradient norm".into(),
            log_y: true,
            y_range: None,
            legend: Corner::LowerLeft,
        },
        // The RNN's state and the LSTM's memory; the LSTM's h is in the table.
        &curve_series(&results.norms.iter().filter(|c| !c.label.starts_with("LSTM h")).cloned().collect::<Vec<_>>()),
    )?;
    plot::line_chart(
        &dir.join(PLOTS[2]),
        &Chart {
            title: format!("RNN gradient against k: large inits and after SGD, distance {}", results.norm_distance),
            x_label: "k (steps before the blank)".into(),
            y_label: "relative gradient norm".into(),
            log_y: true,
            y_range: Some((1e-30, 1e7)),
            legend: Corner::LowerLeft,
        },
        &curve_series(&results.exploding_norms),
    )?;
    let clip_series: Vec<Series> = results
        .clip_runs
        .iter()
        .enumerate()
        .map(|(i, r)| Series {
            label: r.label(),
            points: r.log.iter().map(|row| (row.step as f64, row.train_loss)).collect(),
            color: if i < 2 { i } else { 5 },
        })
        .collect();
    plot::line_chart(
        &dir.join(PLOTS[3]),
        &Chart {
            title: format!("RNN trained with SGD (lr {}) at distance {}", s.exploding_lr, s.exploding_distance),
            x_label: "update".into(),
            y_label: "training loss (cross-entropy)".into(),
            log_y: true,
            y_range: None,
            legend: Corner::LowerLeft,
        },
        &clip_series,
    )?;
    let curves: Vec<Series> = results
        .runs
        .iter()
        .filter(|r| r.seed == first_seed && (r.distance == results.norm_distance || r.distance == distances[0]))
        .enumerate()
        .map(|(i, r)| Series {
            label: format!("{} d={}", r.cell.name().to_uppercase(), r.distance),
            points: r.log.iter().map(|row| (row.step as f64, row.val_acc)).collect(),
            color: i,
        })
        .collect();
    plot::line_chart(
        &dir.join(PLOTS[4]),
        &Chart {
            title: "Validation accuracy during training".into(),
            x_label: "update".into(),
            y_label: "validation accuracy".into(),
            log_y: false,
            y_range: Some((0.4, 1.02)),
            legend: Corner::MiddleRight,
        },
        &curves,
    )?;

    // The report.
    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(w, "# Vanishing and exploding gradients: RNN against LSTM on the pronoun task\n");
    let _ = writeln!(
        w,
        "Reproduce with (from the repository root; took {:.1} minutes on a 2-core machine shared with other work):\n\n    {command}\n",
        results.seconds / 60.0
    );
    let _ = writeln!(w, "## Setup\n");
    let _ = writeln!(
        w,
        "- Task: `pronoun` stories (see [docs/train.md](../train.md)). The model reads a story up to a blank and \
         answers *he* or *she*: the gender of the person introduced last. Earlier people are distractors; \
         everything after the last name is gender-neutral filler. The *distance* is the number of tokens \
         between the last name and the blank."
    );
    let _ = writeln!(
        w,
        "- For each distance D, each cell is trained on {} stories with distances drawn from {}..=D and tested \
         on {} fresh stories at exactly D (validation: {} stories at D; the parameters with the best \
         validation loss are kept).",
        s.train_size,
        pronoun::MIN_DISTANCE,
        s.test_size,
        s.valid_size
    );
    let _ = writeln!(
        w,
        "- Same parameter budget: LSTM hidden {} and RNN (tanh) hidden {}, embedding {} for both: {} vs {} \
         parameters in the recurrent layer and head.",
        results.lstm_hidden, results.rnn_hidden, s.embed, results.lstm_params, results.rnn_params
    );
    let _ = writeln!(
        w,
        "- Adam, learning rate {}, batch {}, {} updates, gradient clipping at global norm {}, PyTorch's \
         default initialisation (LSTM forget-gate bias 1). Every run is repeated with seeds {:?} (data, \
         initialisation and order); the accuracy table shows the mean and (lowest–highest). The gradient norms \
         and the exploding-gradient runs use seed {first_seed}.\n",
        s.lr, s.batch_size, s.steps, s.clip, s.seeds
    );

    let _ = writeln!(w, "## Accuracy against distance\n");
    let _ = writeln!(w, "| distance | RNN test accuracy | LSTM test accuracy |");
    let _ = writeln!(w, "|---:|---:|---:|");
    for &d in &distances {
        let a = |cell| {
            accuracy_of(results, cell, d).map_or("—".into(), |(mean, lo, hi)| {
                if s.seeds.len() > 1 { format!("{mean:.3} ({lo:.3}–{hi:.3})") } else { format!("{mean:.3}") }
            })
        };
        let _ = writeln!(w, "| {d} | {} | {} |", a(Cell::Rnn), a(Cell::Lstm));
    }
    let longest = results.norm_distance;
    if let (Some(r), Some(l)) = (accuracy_of(results, Cell::Rnn, longest), accuracy_of(results, Cell::Lstm, longest)) {
        let _ = writeln!(
            w,
            "\nAt distance {longest} the RNN answers {:.1}% of the test stories right and the LSTM {:.1}% \
             (mean over {} seeds; always answering one gender scores about 50%).",
            100.0 * r.0,
            100.0 * l.0,
            s.seeds.len()
        );
    }
    let _ = writeln!(w, "\n![accuracy against distance]({})\n", PLOTS[0]);
    let _ = writeln!(w, "![validation accuracy during training]({})\n", PLOTS[4]);

    let _ = writeln!(w, "## The vanishing gradient\n");
    let _ = writeln!(
        w,
        "`||dL/dh(T-k)||`: the norm of the gradient of the loss at the blank (step T) with respect to the \
         hidden state k steps earlier, on {} test stories at distance {longest}, divided by `||dL/dh(T)||` and \
         averaged geometrically over the stories (for two classes the ratio does not depend on how confident \
         the model is, so trained and untrained models compare fairly). A name k steps before the blank can \
         only be learned from if this is not vanishingly small.\n\n\
         For the RNN, h is the whole state. The LSTM's state is (h, c): its h reaches the memory only through \
         the gates, so the gradient with respect to h decays too, but the cell state is updated additively \
         (`c(t) = f ⊙ c(t-1) + i ⊙ g`), so wherever the forget gate stays near 1, `dL/dc(t-1) = f ⊙ dL/dc(t)` \
         passes back almost unchanged. The `c` columns are `||dL/dc(T-k)||`, divided by the same \
         `||dL/dh(T)||`.\n",
        s.norm_stories.min(s.test_size)
    );
    let norm_table = |w: &mut String, curves: &[NormCurve]| {
        let len = curves.iter().map(|c| c.ratio.len()).min().unwrap_or(0);
        let ks = ks_for(len);
        let _ = write!(w, "| k |");
        curves.iter().for_each(|c| {
            let _ = write!(w, " {} |", c.label);
        });
        let _ = write!(w, "\n|---:|");
        curves.iter().for_each(|_| {
            let _ = write!(w, "---:|");
        });
        let _ = writeln!(w);
        for k in ks {
            let _ = write!(w, "| {k} |");
            curves.iter().for_each(|c| {
                let _ = write!(w, " {} |", fmt_sci(c.ratio[k]));
            });
            let _ = writeln!(w);
        }
        let _ = write!(w, "| factor per step over k = {} |", len.saturating_sub(1));
        curves.iter().for_each(|c| {
            let _ = write!(w, " {:.3} |", c.per_step(len.saturating_sub(1)));
        });
        let _ = writeln!(w);
        let _ = write!(w, "| absolute norm at k = 0 |");
        curves.iter().for_each(|c| {
            let _ = write!(w, " {} |", fmt_sci(c.raw.first().copied().unwrap_or(f64::NAN)));
        });
        let _ = writeln!(w, "\n");
    };
    norm_table(w, &results.norms);
    let find = |label: &str| results.norms.iter().find(|c| c.label == label);
    if let (Some(rnn), Some(lstm_c)) = (find("RNN h, init"), find("LSTM c, init")) {
        let k_max = rnn.ratio.len().min(lstm_c.ratio.len()).saturating_sub(1);
        let k_mid = 20.min(k_max);
        let _ = writeln!(
            w,
            "At initialisation, {k_mid} steps before the blank the RNN's gradient is {} of its value at the blank \
             and the LSTM's cell-state gradient {}; {k_max} steps before, {} against {}.",
            fmt_sci(rnn.ratio[k_mid]),
            fmt_sci(lstm_c.ratio[k_mid]),
            fmt_sci(rnn.ratio[k_max]),
            fmt_sci(lstm_c.ratio[k_max])
        );
        let learned = |cell| {
            distances.iter().copied().filter(|&d| accuracy_of(results, cell, d).is_some_and(|a| a.0 >= 0.9)).max()
        };
        let describe = |cell| match learned(cell) {
            Some(d) => format!("up to distance {d}"),
            None => "at none of the distances".to_string(),
        };
        let _ = writeln!(
            w,
            "This is what decides whether training can tie the answer to a name far back: the RNN learns the task \
             (mean test accuracy at least 90%) {}, the LSTM {}. The trained models' curves are shown too, but \
             they say less: a trained model that has stored the name in saturated units no longer needs a large \
             gradient, and one that failed may have grown its recurrent weights without finding a way to hold \
             the name through the filler.\n",
            describe(Cell::Rnn),
            describe(Cell::Lstm)
        );
    }
    let _ = writeln!(w, "![gradient norm against k]({})\n", PLOTS[1]);

    let _ = writeln!(w, "## The exploding gradient, and clipping\n");
    let _ = writeln!(
        w,
        "An RNN (hidden {}) whose recurrent matrix starts larger than PyTorch's default range: uniform in \
         ±x/sqrt(H) instead of ±1/sqrt(H). The gradient ratio on the same {} stories at distance {}, at \
         initialisation for x = 1, {} and {}, and at the last weights of the two SGD runs from x = {} below:\n",
        results.rnn_hidden,
        s.norm_stories.min(s.test_size),
        results.norm_distance,
        s.exploding_scale,
        s.exploding_norm_scale,
        s.exploding_scale
    );
    norm_table(w, &results.exploding_norms);
    let trend = |c: &NormCurve| {
        let k = c.ratio.len().saturating_sub(1);
        let f = c.per_step(k);
        let way = if f > 1.0 { "grows" } else { "shrinks" };
        format!("{way} by a factor {f:.3} per step ({} at k = {k})", fmt_sci(c.ratio[k] / c.ratio[0]))
    };
    for c in &results.exploding_norms {
        let _ = writeln!(w, "- {}: the gradient {}.", c.label, trend(c));
    }
    let _ = writeln!(w, "\n![exploding gradient]({})\n", PLOTS[2]);
    let _ = writeln!(
        w,
        "From that initialisation, plain SGD (learning rate {}, {} updates, batch {}) on stories at distances \
         {}..={} (tested at {}), once without clipping and once with the gradient's global norm clipped at {}; for \
         contrast, the default initialisation without clipping at the same learning rate:\n",
        s.exploding_lr,
        s.exploding_steps,
        s.batch_size,
        pronoun::MIN_DISTANCE,
        s.exploding_distance,
        s.exploding_distance,
        s.exploding_clip
    );
    let _ = writeln!(
        w,
        "| run | end | updates | mean gradient norm, first window | largest window mean | first loss | best loss | \
         last loss | test accuracy |"
    );
    let _ = writeln!(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in &results.clip_runs {
        let first = r.log.first();
        let finite = || r.log.iter().map(|x| x.train_loss).filter(|v| v.is_finite());
        let best = finite().fold(f64::INFINITY, f64::min);
        let last = finite().next_back().unwrap_or(f64::NAN);
        let largest = r.log.iter().map(|x| x.grad_norm).filter(|v| v.is_finite()).fold(0.0, f64::max);
        let _ = writeln!(
            w,
            "| {} | {:?} | {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} |",
            r.label(),
            r.finish,
            r.steps,
            first.map_or("—".into(), |x| fmt_sci(x.grad_norm)),
            fmt_sci(largest),
            first.map_or(f64::NAN, |x| x.train_loss),
            best,
            last,
            r.test_accuracy
        );
    }
    let _ = writeln!(
        w,
        "\nLosses are the mean training loss over each logging window of {} updates (chance is ln 2 = 0.693); \
         gradient norms are measured before clipping. \"Diverged\" would mean the loss or gradient became \
         infinite or NaN and the run stopped.\n",
        (s.exploding_steps / 100).max(1)
    );
    let _ = writeln!(w, "![training loss with and without clipping]({})\n", PLOTS[3]);
    let _ = writeln!(w, "## Runs\n");
    let _ = writeln!(w, "| cell | hidden | distance | seed | test accuracy | test loss | end | seconds |");
    let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|---|---:|");
    for r in &results.runs {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {:.3} | {:.4} | {:?} | {:.0} |",
            r.cell.name(),
            r.hidden,
            r.distance,
            r.seed,
            r.test_accuracy,
            r.test_loss,
            r.finish,
            r.seconds
        );
    }
    crate::error::write_file(&dir.join("report.md"), md.as_bytes())?;
    Ok(())
}

/// Runs the experiment and writes the report into `dir`.
pub fn vanishing(settings: &Settings, dir: &Path, command: &str) -> Result<(), Error> {
    let results = run(settings)?;
    write_report(&results, dir, command)?;
    if settings.progress {
        eprintln!("wrote {} ({:.1} min)", dir.join("report.md").display(), results.seconds / 60.0);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matched_rnn_has_about_the_lstm_parameter_count() {
        let h = matched_rnn_hidden(24, 16);
        let (l, r) = (recurrent_params(Cell::Lstm, 24, 16), recurrent_params(Cell::Rnn, h, 16));
        assert!((l as f64 - r as f64).abs() / (l as f64) < 0.02, "{l} vs {r} (hidden {h})");
        assert!(h > 24);
    }

    #[test]
    fn norm_curve_is_the_geometric_mean_of_ratios() {
        let c = NormCurve::new("x", &[&[2.0, 1.0, 0.5], &[1.0, 1.0, 4.0, 9.0]], &[2.0, 1.0]);
        assert_eq!(c.ratio.len(), 3);
        assert!((c.ratio[1] - (0.5f64 * 1.0).sqrt()).abs() < 1e-12);
        assert!((c.ratio[2] - (0.25f64 * 4.0).sqrt()).abs() < 1e-12);
        assert!((c.per_step(2) - 1.0).abs() < 1e-12);
    }
}
