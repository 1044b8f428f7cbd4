//! Parameter updates: Adam and SGD (with momentum), decoupled weight decay,
//! clipping by global norm, and the learning-rate schedule.

use serde::{Deserialize, Serialize};

use crate::net::Layout;

/// The update rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum Optimizer {
    /// Adam (Kingma and Ba) with bias correction.
    Adam,
    /// Stochastic gradient descent with optional momentum.
    Sgd,
}

/// How the learning rate changes over the run (after any warm-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum Schedule {
    Constant,
    /// Linear decay to 0 at the last step.
    Linear,
    /// Half a cosine from the base rate to 0 at the last step.
    Cosine,
}

/// Everything that decides an update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimConfig {
    pub optimizer: Optimizer,
    pub lr: f64,
    pub schedule: Schedule,
    /// Steps of linear warm-up from 0 to `lr`.
    pub warmup: u64,
    /// SGD momentum (0 = plain SGD).
    pub momentum: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Decoupled weight decay (AdamW-style; for SGD the same as an L2 penalty)
    /// on weight matrices and the embedding, not on biases.
    pub weight_decay: f64,
    /// Rescale the gradient so its global L2 norm is at most this.
    pub clip: Option<f64>,
}

impl Default for OptimConfig {
    fn default() -> Self {
        OptimConfig {
            optimizer: Optimizer::Adam,
            lr: 3e-3,
            schedule: Schedule::Constant,
            warmup: 0,
            momentum: 0.0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            clip: Some(1.0),
        }
    }
}

impl OptimConfig {
    /// The learning rate for update number `step` (0-based) of `total`.
    pub fn lr_at(&self, step: u64, total: u64) -> f64 {
        if step < self.warmup {
            return self.lr * (step + 1) as f64 / self.warmup as f64;
        }
        let span = total.saturating_sub(self.warmup).max(1) as f64;
        let progress = ((step - self.warmup) as f64 / span).min(1.0);
        match self.schedule {
            Schedule::Constant => self.lr,
            Schedule::Linear => self.lr * (1.0 - progress),
            Schedule::Cosine => self.lr * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
        }
    }
}

/// The optimizer's memory: updates done, first and second moments (SGD
/// keeps its momentum buffer in `m` and leaves `v` empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimState {
    pub updates: u64,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
}

impl OptimState {
    pub fn new(config: &OptimConfig, params: usize) -> Self {
        let v = if config.optimizer == Optimizer::Adam { vec![0.0; params] } else { Vec::new() };
        OptimState { updates: 0, m: vec![0.0; params], v }
    }
}

/// The L2 norm of `grad`, summed in f64.
pub fn global_norm(grad: &[f32]) -> f64 {
    grad.iter().map(|&g| g as f64 * g as f64).sum::<f64>().sqrt()
}

/// Scales `grad` down so its global norm is at most `max`; returns the norm
/// before clipping.
pub fn clip_global_norm(grad: &mut [f32], max: f64) -> f64 {
    let norm = global_norm(grad);
    if norm > max && norm.is_finite() {
        let s = (max / norm) as f32;
        grad.iter_mut().for_each(|g| *g *= s);
    }
    norm
}

/// One update of `params` from `grad` (already clipped) at learning rate `lr`.
pub fn update(
    config: &OptimConfig,
    state: &mut OptimState,
    layout: &Layout,
    params: &mut [f32],
    grad: &[f32],
    lr: f64,
) {
    state.updates += 1;
    if config.weight_decay > 0.0 {
        let keep = (1.0 - lr * config.weight_decay) as f32;
        for t in layout.tensors.iter().filter(|t| t.decay) {
            params[t.range()].iter_mut().for_each(|p| *p *= keep);
        }
    }
    match config.optimizer {
        Optimizer::Sgd => {
            let (mu, lr) = (config.momentum as f32, lr as f32);
            for ((p, &g), m) in params.iter_mut().zip(grad).zip(state.m.iter_mut()) {
                *m = mu * *m + g;
                *p -= lr * *m;
            }
        }
        Optimizer::Adam => {
            let (b1, b2) = (config.beta1, config.beta2);
            let t = state.updates as i32;
            // Bias corrections folded into the step size.
            let step = (lr * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t))) as f32;
            let eps = (config.eps * (1.0 - b2.powi(t)).sqrt()) as f32;
            let (b1, b2) = (b1 as f32, b2 as f32);
            for (((p, &g), m), v) in params.iter_mut().zip(grad).zip(state.m.iter_mut()).zip(state.v.iter_mut()) {
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                *p -= step * *m / (v.sqrt() + eps);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{Cell, HeadSpec, Input, Loss, NetSpec};

    fn layout() -> Layout {
        Layout::of(&NetSpec {
            cell: Cell::Rnn,
            input: Input::Dense { features: 1 },
            hidden: 1,
            proj: 0,
            layers: 1,
            head: Some(HeadSpec { out: 1 }),
            loss: Loss::SquaredError { tolerance: 0.1 },
        })
    }

    #[test]
    fn clipping_scales_to_the_limit_and_reports_the_old_norm() {
        let mut g = vec![3.0f32, 4.0];
        assert_eq!(clip_global_norm(&mut g, 1.0), 5.0);
        assert!((global_norm(&g) - 1.0).abs() < 1e-6);
        let mut small = vec![0.3f32, 0.4];
        clip_global_norm(&mut small, 1.0);
        assert_eq!(small, vec![0.3, 0.4]);
    }

    #[test]
    fn adam_first_step_moves_each_parameter_by_lr_against_its_gradient_sign() {
        let layout = layout();
        let config = OptimConfig { weight_decay: 0.0, ..OptimConfig::default() };
        let mut state = OptimState::new(&config, layout.len);
        let mut p = vec![0.0f32; layout.len];
        let g: Vec<f32> = (0..layout.len).map(|i| if i % 2 == 0 { 2.0 } else { -0.001 }).collect();
        update(&config, &mut state, &layout, &mut p, &g, 0.01);
        for (pi, gi) in p.iter().zip(&g) {
            assert!((pi + 0.01 * gi.signum()).abs() < 1e-5, "{pi} for gradient {gi}");
        }
    }

    #[test]
    fn sgd_minimises_a_quadratic_and_weight_decay_skips_biases() {
        let layout = layout();
        let config = OptimConfig { optimizer: Optimizer::Sgd, momentum: 0.5, weight_decay: 0.5, ..Default::default() };
        let mut state = OptimState::new(&config, layout.len);
        let mut p = vec![1.0f32; layout.len];
        let zero = vec![0.0f32; layout.len];
        update(&config, &mut state, &layout, &mut p, &zero, 0.1);
        for t in &layout.tensors {
            let want = if t.decay { 0.95 } else { 1.0 };
            assert!(p[t.range()].iter().all(|&v| (v - want).abs() < 1e-6), "{}", t.name);
        }
        let config = OptimConfig { weight_decay: 0.0, ..config };
        for _ in 0..200 {
            let g: Vec<f32> = p.iter().map(|&v| 2.0 * (v - 3.0)).collect();
            update(&config, &mut state, &layout, &mut p, &g, 0.1);
        }
        assert!(p.iter().all(|&v| (v - 3.0).abs() < 1e-3), "{p:?}");
    }

    #[test]
    fn schedules_warm_up_then_decay_to_zero() {
        let c = OptimConfig { lr: 1.0, warmup: 10, schedule: Schedule::Cosine, ..Default::default() };
        assert!((c.lr_at(0, 110) - 0.1).abs() < 1e-12);
        assert!((c.lr_at(9, 110) - 1.0).abs() < 1e-12);
        assert!((c.lr_at(60, 110) - 0.5).abs() < 1e-12);
        assert!(c.lr_at(110, 110).abs() < 1e-12);
        let l = OptimConfig { lr: 2.0, schedule: Schedule::Linear, ..Default::default() };
        assert!((l.lr_at(50, 100) - 1.0).abs() < 1e-12);
        let k = OptimConfig { lr: 2.0, ..Default::default() };
        assert_eq!(k.lr_at(99, 100), 2.0);
    }
}
