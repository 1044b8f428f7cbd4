//! Sampling on lstmrt's seeded generator ([`lstmrt::rng::Rng`], xoshiro256**):
//! unbiased integers, normals, shuffles, and independent sub-streams of one seed.
//!
//! A run's randomness is a function of its seed and a position in the run
//! (a split, an epoch), each drawn from its own sub-stream ([`derive()`]), so a
//! checkpoint needs no generator state and changing one use never shifts another.

pub use lstmrt::rng::Rng;
use lstmrt::rng::splitmix64;

/// A generator for the sub-stream `stream` of `seed`.
pub fn derive(seed: u64, stream: u64) -> Rng {
    let mut x = seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
    let mixed = splitmix64(&mut x);
    Rng::new(mixed ^ stream.rotate_left(17))
}

/// What the trainer draws, on top of the 64-bit generator.
pub trait Sample {
    /// Uniform in `[0, 1)` with 53 random bits.
    fn uniform(&mut self) -> f64;
    /// Uniform integer in `0..n` (`n > 0`), without modulo bias.
    fn below(&mut self, n: usize) -> usize;

    /// Uniform in `[lo, hi)`.
    fn range_f64(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform integer in `lo..=hi`.
    fn between(&mut self, lo: usize, hi: usize) -> usize {
        assert!(lo <= hi, "between({lo}, {hi})");
        lo + self.below(hi - lo + 1)
    }

    /// `true` with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// A standard normal sample (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// A uniformly chosen element.
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Fisher-Yates shuffle.
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

impl Sample for Rng {
    fn uniform(&mut self) -> f64 {
        self.next_f64()
    }

    fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "below(0)");
        let n = n as u64;
        // Lemire's multiply-and-reject.
        loop {
            let m = (self.next_u64() as u128) * (n as u128);
            if (m as u64) >= n.wrapping_neg() % n {
                return (m >> 64) as usize;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_streams_differ_and_repeat() {
        assert_eq!(derive(7, 1).next_u64(), derive(7, 1).next_u64());
        assert_ne!(derive(7, 1).next_u64(), derive(7, 2).next_u64());
        assert_ne!(derive(7, 1).next_u64(), derive(8, 1).next_u64());
    }

    #[test]
    fn below_is_roughly_uniform_and_in_range() {
        let mut r = Rng::new(1);
        let mut counts = [0usize; 5];
        for _ in 0..50_000 {
            counts[r.below(5)] += 1;
        }
        assert!(counts.iter().all(|&c| (9_000..11_000).contains(&c)), "{counts:?}");
    }

    #[test]
    fn normal_has_unit_variance() {
        let mut r = Rng::new(3);
        let xs: Vec<f64> = (0..40_000).map(|_| r.normal()).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.02 && (var - 1.0).abs() < 0.03, "mean {mean} var {var}");
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut v: Vec<usize> = (0..100).collect();
        Rng::new(5).shuffle(&mut v);
        assert_ne!(v, (0..100).collect::<Vec<_>>());
        v.sort_unstable();
        assert_eq!(v, (0..100).collect::<Vec<_>>());
    }
}
