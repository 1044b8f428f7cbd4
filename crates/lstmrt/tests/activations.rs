//! The kernels' sigmoid and tanh, on every tier, against f64 over a dense
//! sweep of all finite f32 inputs: max absolute error <= 5e-7, saturation at
//! the infinities, NaN propagated.

use lstmrt_kernels::{Activation, activation};

const BOUND: f64 = 5e-7;

fn reference(which: Activation, x: f64) -> f64 {
    match which {
        Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Activation::Tanh => x.tanh(),
    }
}

/// Every 127th bit pattern over all 2^32 (all signs and exponents, about 34
/// million values), plus every f32 step of 2^-12 across [-20, 20] where the
/// functions bend, minus NaNs.
fn sweep() -> Vec<f32> {
    let mut xs: Vec<f32> = (0..=u32::MAX).step_by(127).map(f32::from_bits).filter(|x| x.is_finite()).collect();
    xs.extend((-20 * 4096..=20 * 4096).map(|i| i as f32 / 4096.0));
    xs.extend([
        0.0,
        -0.0,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        1e-40,
        -1e-40,
        f32::MAX,
        f32::MIN,
        88.0,
        -88.0,
        9.0,
        -9.0,
    ]);
    let pad = xs.len().next_multiple_of(16) - xs.len();
    xs.extend(std::iter::repeat_n(0.0, pad));
    xs
}

lstmrt_testkit::per_tier! {
fn sigmoid_and_tanh_are_within_5e_7_of_f64(isa: Isa) {
    let xs = sweep();
    let mut out = vec![0.0f32; xs.len()];
    for which in [Activation::Sigmoid, Activation::Tanh] {
        let want: Vec<f64> = xs.iter().map(|&x| reference(which, x as f64)).collect();
        {
            activation(isa, which, &xs, &mut out).unwrap();
            let (mut worst, mut at) = (0.0f64, 0.0f32);
            for ((&x, &y), &w) in xs.iter().zip(&out).zip(&want) {
                let err = (y as f64 - w).abs();
                if err > worst || err.is_nan() {
                    (worst, at) = (err, x);
                }
            }
            assert!(worst <= BOUND, "{isa} {which:?}: error {worst:e} at x = {at:e}");
            eprintln!("{isa} {which:?}: max abs error {worst:.2e} at x = {at:e}");
        }
    }
}

fn activations_saturate_at_infinities_and_propagate_nan(isa: Isa) {
    let mut xs = vec![f32::INFINITY, f32::NEG_INFINITY, f32::NAN, -f32::NAN, 1e30, -1e30];
    xs.resize(16, 0.5);
    let mut out = vec![0.0f32; 16];
    {
        activation(isa, Activation::Sigmoid, &xs, &mut out).unwrap();
        assert_eq!(&out[..2], &[1.0, 0.0], "{isa} sigmoid(±inf)");
        assert!(out[2].is_nan() && out[3].is_nan(), "{isa} sigmoid(NaN)");
        assert_eq!(&out[4..6], &[1.0, 0.0], "{isa} sigmoid(±1e30)");
        activation(isa, Activation::Tanh, &xs, &mut out).unwrap();
        assert_eq!(&out[..2], &[1.0, -1.0], "{isa} tanh(±inf)");
        assert!(out[2].is_nan() && out[3].is_nan(), "{isa} tanh(NaN)");
        assert_eq!(&out[4..6], &[1.0, -1.0], "{isa} tanh(±1e30)");
    }
}
}
