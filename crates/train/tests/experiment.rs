//! The vanishing-gradient experiment end to end, at toy size.

use lstm_train::experiment::{self, PLOTS, Settings};
use lstm_train::net::Cell;

fn tiny() -> Settings {
    Settings {
        distances: vec![3, 12],
        steps: 40,
        train_size: 200,
        valid_size: 40,
        test_size: 40,
        hidden: 6,
        embed: 4,
        norm_stories: 10,
        exploding_steps: 40,
        seeds: vec![1, 2],
        progress: false,
        ..Settings::default()
    }
}

#[test]
fn experiment_writes_a_report_with_every_plot_and_table() {
    let results = experiment::run(&tiny()).unwrap();
    // Two cells x two distances x two seeds, and three SGD runs.
    assert_eq!(results.runs.len(), 8);
    assert_eq!(results.clip_runs.len(), 3);
    assert!(results.rnn_hidden > results.lstm_hidden);
    let budget = (results.lstm_params as f64 - results.rnn_params as f64).abs() / results.lstm_params as f64;
    assert!(budget < 0.1, "parameter budgets differ by {budget}");
    // h for both cells plus c for the LSTM, at init and trained; k = 0..=12.
    assert_eq!(results.norms.len(), 6);
    assert!(results.norms.iter().all(|c| c.ratio.len() == 13));

    let dir = std::env::temp_dir().join(format!("lstm-train-experiment-{}", std::process::id()));
    experiment::write_report(&results, &dir, "lstm-train experiment vanishing --tiny").unwrap();
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("    lstm-train experiment vanishing --tiny"));
    assert!(report.contains("| 3 |") && report.contains("| 12 |"));
    for plot in PLOTS {
        assert!(report.contains(&format!("]({plot})")), "{plot} is linked");
        let svg = std::fs::read_to_string(dir.join(plot)).unwrap();
        assert!(svg.starts_with("<svg"), "{plot}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn large_recurrent_init_makes_the_gradient_grow_with_k_and_default_init_makes_it_shrink() {
    // The default sizes (RNN hidden 55): chaos needs enough units.
    let settings = Settings { distances: vec![30], seeds: vec![1], hidden: 24, embed: 16, ..tiny() };
    let results = experiment::run(&settings).unwrap();
    // Init x1, x2.5 and x4, then the ends of the unclipped and the clipped SGD runs.
    assert_eq!(results.exploding_norms.len(), 5);
    let curve = |label: &str| results.exploding_norms.iter().find(|c| c.label == label).unwrap();
    let (default, large) = (curve("RNN, init x1"), curve("RNN, init x4"));
    let k = default.ratio.len() - 1;
    assert_eq!(k, 30);
    assert!(default.ratio[k] < 1e-3, "default init: {}", default.ratio[k]);
    assert!(large.ratio[k] > 1.0, "large init: {}", large.ratio[k]);
    // The untrained RNN's gradient vanishes faster than the LSTM's cell-state gradient.
    let norm = |label: &str| results.norms.iter().find(|c| c.label == label).unwrap();
    assert!(norm("RNN h, init").per_step(k) < norm("LSTM c, init").per_step(k));
    assert!(results.runs.iter().any(|r| r.cell == Cell::Lstm));
}
