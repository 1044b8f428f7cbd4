//! Every parameter's analytic gradient (BPTT through every gate and step)
//! against central finite differences, in f64, for each cell kind.

use lstm_train::bptt::{self, BackwardOptions, Batch, BatchInputs, TargetValues, Workspace};
use lstm_train::net::{Cell, HeadSpec, Init, Input, Loss, Net, NetSpec, init_params};
use lstm_train::rng::{Rng, Sample};

/// Central differences with step 1e-6 in f64 have a rounding error of about
/// `ulp(loss) / 1e-6 ≈ 1e-10` and a truncation error of order 1e-12, so a
/// gradient passes when it agrees to 1e-3 relative, or to 1e-8 absolute for
/// entries that are essentially zero.
const REL_TOL: f64 = 1e-3;
const ABS_TOL: f64 = 1e-8;
const EPS: f64 = 1e-6;

fn params_for(net: &Net, seed: u64) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    let init = Init { recurrent_scale: 1.5, forget_bias: 0.5 };
    // Noise on top of the usual init so that zero-initialised biases get
    // non-trivial values too.
    init_params(&net.spec, &net.layout, &init, &mut rng).iter().map(|&v| v as f64 + 0.2 * rng.normal()).collect()
}

fn check(net: &Net, batch: &Batch, seed: u64) {
    let params = params_for(net, seed);
    let mut ws = Workspace::<f64>::new();
    let mut grad = vec![0.0; params.len()];
    bptt::loss_and_gradient(net, &params, batch, &mut ws, &mut grad, 1.0, &BackwardOptions::default());
    let loss_at = |p: &[f64], ws: &mut Workspace<f64>| {
        bptt::forward(net, p, batch, ws);
        bptt::loss(net, batch, ws, None).loss
    };
    let mut worst = (0.0f64, String::new());
    let mut p = params.clone();
    for tensor in &net.layout.tensors {
        let mut largest = 0.0f64;
        for i in tensor.range() {
            p[i] = params[i] + EPS;
            let up = loss_at(&p, &mut ws);
            p[i] = params[i] - EPS;
            let down = loss_at(&p, &mut ws);
            p[i] = params[i];
            let numeric = (up - down) / (2.0 * EPS);
            let analytic = grad[i];
            let err = (analytic - numeric).abs();
            let bound = REL_TOL * analytic.abs().max(numeric.abs()) + ABS_TOL;
            assert!(
                err <= bound,
                "{:?} {}[{}]: analytic {analytic:e} vs numeric {numeric:e}",
                net.spec.cell,
                tensor.name,
                i - tensor.offset
            );
            let rel = err / analytic.abs().max(numeric.abs()).max(1e-12);
            if analytic.abs() > 1e-6 && rel > worst.0 {
                worst = (rel, tensor.name.clone());
            }
            largest = largest.max(analytic.abs());
        }
        // A tensor whose gradient is all zeros would make the check vacuous.
        assert!(largest > 1e-4, "{:?}: gradient of {} is ~0 ({largest:e})", net.spec.cell, tensor.name);
    }
    eprintln!("{:?}: worst relative error {:.2e} in {}", net.spec.cell, worst.0, worst.1);
}

/// Sequences of lengths 5, 3 and 4 padded to 5 steps, with a class target
/// at each sequence's last step (the padding steps must not matter).
fn last_step_class_batch(vocab: usize, classes: usize, rng: &mut Rng) -> Batch {
    let (steps, batch) = (5, 3);
    let lengths = [5, 3, 4];
    let ids = (0..steps * batch).map(|_| rng.below(vocab) as u32).collect();
    let positions = lengths.iter().enumerate().map(|(b, &len)| (len - 1) * batch + b).collect::<Vec<_>>();
    let targets = TargetValues::Classes(positions.iter().map(|_| rng.below(classes) as u32).collect());
    Batch { steps, batch, inputs: BatchInputs::Tokens(ids), positions, targets }
}

#[test]
fn lstm_with_projection_two_layers_embedding_and_head_matches_finite_differences() {
    let net = Net::new(NetSpec {
        cell: Cell::Lstm,
        input: Input::Tokens { vocab: 6, embed: 3 },
        hidden: 4,
        proj: 3,
        layers: 2,
        head: Some(HeadSpec { out: 3 }),
        loss: Loss::CrossEntropy,
    });
    let batch = last_step_class_batch(6, 3, &mut Rng::new(1));
    check(&net, &batch, 11);
}

#[test]
fn lstm_without_projection_matches_finite_differences() {
    let net = Net::new(NetSpec {
        cell: Cell::Lstm,
        input: Input::Tokens { vocab: 5, embed: 0 },
        hidden: 4,
        proj: 0,
        layers: 2,
        head: Some(HeadSpec { out: 2 }),
        loss: Loss::CrossEntropy,
    });
    let batch = last_step_class_batch(5, 2, &mut Rng::new(2));
    check(&net, &batch, 12);
}

#[test]
fn gru_two_layers_with_targets_at_every_step_matches_finite_differences() {
    let (steps, batch, features) = (4, 2, 3);
    let mut rng = Rng::new(3);
    let xs = (0..steps * batch * features).map(|_| rng.normal() as f32).collect();
    let positions: Vec<usize> = (0..steps * batch).collect();
    let targets = TargetValues::Classes(positions.iter().map(|_| rng.below(3) as u32).collect());
    let batch = Batch { steps, batch, inputs: BatchInputs::Dense(xs), positions, targets };
    let net = Net::new(NetSpec {
        cell: Cell::Gru,
        input: Input::Dense { features },
        hidden: 4,
        proj: 0,
        layers: 2,
        head: Some(HeadSpec { out: 3 }),
        loss: Loss::CrossEntropy,
    });
    check(&net, &batch, 13);
}

#[test]
fn rnn_two_layers_with_squared_error_head_matches_finite_differences() {
    let (steps, batch, features) = (6, 2, 2);
    let mut rng = Rng::new(4);
    let xs = (0..steps * batch * features).map(|_| rng.normal() as f32).collect();
    let positions = vec![(steps - 1) * batch, (steps - 1) * batch + 1];
    let targets = TargetValues::Values((0..4).map(|_| rng.normal() as f32).collect());
    let batch = Batch { steps, batch, inputs: BatchInputs::Dense(xs), positions, targets };
    let net = Net::new(NetSpec {
        cell: Cell::Rnn,
        input: Input::Dense { features },
        hidden: 5,
        proj: 0,
        layers: 2,
        head: Some(HeadSpec { out: 2 }),
        loss: Loss::SquaredError { tolerance: 0.05 },
    });
    check(&net, &batch, 14);
}

#[test]
fn gru_embedding_without_head_matches_finite_differences() {
    let net = Net::new(NetSpec {
        cell: Cell::Gru,
        input: Input::Tokens { vocab: 5, embed: 3 },
        hidden: 3,
        proj: 0,
        layers: 1,
        head: None,
        loss: Loss::CrossEntropy,
    });
    let batch = last_step_class_batch(5, 3, &mut Rng::new(5));
    check(&net, &batch, 15);
}

#[test]
fn truncated_bptt_stops_the_gradient_at_multiples_of_k() {
    let net = Net::new(NetSpec {
        cell: Cell::Lstm,
        input: Input::Tokens { vocab: 6, embed: 3 },
        hidden: 4,
        proj: 0,
        layers: 1,
        head: Some(HeadSpec { out: 2 }),
        loss: Loss::CrossEntropy,
    });
    // One sequence of 6 distinct tokens, target at the last step.
    let batch = Batch {
        steps: 6,
        batch: 1,
        inputs: BatchInputs::Tokens(vec![0, 1, 2, 3, 4, 5]),
        positions: vec![5],
        targets: TargetValues::Classes(vec![1]),
    };
    let params = params_for(&net, 21);
    let embedding_grad = |truncate: usize| {
        let mut ws = Workspace::<f64>::new();
        let mut grad = vec![0.0; params.len()];
        let opts = BackwardOptions { truncate, record_dh_norms: false };
        bptt::loss_and_gradient(&net, &params, &batch, &mut ws, &mut grad, 1.0, &opts);
        let off = net.layout.embedding.unwrap();
        (0..6)
            .map(|token| grad[off + token * 3..off + token * 3 + 3].iter().map(|g| g.abs()).sum::<f64>())
            .collect::<Vec<_>>()
    };
    let full = embedding_grad(0);
    assert!(full.iter().all(|&g| g > 0.0), "full BPTT reaches every step: {full:?}");
    // k = 4: steps 4 and 5 are in the last window; nothing flows from step 4 to 3.
    let cut = embedding_grad(4);
    assert!(cut[..4].iter().all(|&g| g == 0.0) && cut[4] > 0.0 && cut[5] > 0.0, "{cut:?}");
    // A window longer than the sequence is full BPTT.
    assert_eq!(embedding_grad(6), full);
}
