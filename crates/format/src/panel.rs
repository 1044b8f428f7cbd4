//! The packed "panel16" layout the kernels read in place.
//!
//! A canonical matrix of `G` gate blocks, each `[N, K]` (rows `g*N + n`), is
//! stored as `[ceil(N/16), K, G, 16]`: for each panel of 16 output units, for
//! each input index `k`, the 16 weights of gate 0, then of gate 1, ... Units
//! past `N` in the last panel are zero. One step broadcasts `x[k]` and does one
//! FMA per gate with 16 contiguous weights, ending with a whole panel's
//! pre-activations in registers. `format-spec.md` section 5.1 is the normative
//! description.

/// Output units per panel: the f32 lanes of one 512-bit vector. Every tier's
/// kernels read panels of this width (narrower tiers read a panel as several
/// vectors).
pub const LANES: usize = 16;

/// Number of 16-unit panels covering `n` units.
pub fn panels(n: usize) -> usize {
    n.div_ceil(LANES)
}

/// The physical shape `[panels, k, gates, 16]` of a packed matrix.
pub fn packed_shape(gates: usize, n: usize, k: usize) -> [u64; 4] {
    [panels(n) as u64, k as u64, gates as u64, LANES as u64]
}

/// Index of canonical element (row `g*n + unit`, column `col`) in the packed order.
#[inline]
fn packed_index(gates: usize, k: usize, g: usize, unit: usize, col: usize) -> usize {
    let (p, lane) = (unit / LANES, unit % LANES);
    ((p * k + col) * gates + g) * LANES + lane
}

/// Packs a canonical row-major `[gates*n, k]` matrix. Works for any element
/// type, so f16/bf16 weights are repacked without changing a bit.
pub fn pack<T: Copy + Default>(canonical: &[T], gates: usize, n: usize, k: usize) -> Vec<T> {
    assert_eq!(canonical.len(), gates * n * k, "canonical matrix is not [gates*n, k]");
    let mut out = vec![T::default(); panels(n) * k * gates * LANES];
    for g in 0..gates {
        for unit in 0..n {
            let row = &canonical[(g * n + unit) * k..][..k];
            for (col, &v) in row.iter().enumerate() {
                out[packed_index(gates, k, g, unit, col)] = v;
            }
        }
    }
    out
}

/// Inverse of [`pack`].
pub fn unpack<T: Copy + Default>(packed: &[T], gates: usize, n: usize, k: usize) -> Vec<T> {
    assert_eq!(packed.len(), panels(n) * k * gates * LANES, "packed matrix has the wrong size");
    let mut out = vec![T::default(); gates * n * k];
    for g in 0..gates {
        for unit in 0..n {
            for col in 0..k {
                out[(g * n + unit) * k + col] = packed[packed_index(gates, k, g, unit, col)];
            }
        }
    }
    out
}

/// Packs a vector of `gates` blocks of `n` values into `[panels, gates, 16]`.
pub fn pack_vector(v: &[f32], gates: usize, n: usize) -> Vec<f32> {
    assert_eq!(v.len(), gates * n);
    let mut out = vec![0.0; panels(n) * gates * LANES];
    for g in 0..gates {
        for unit in 0..n {
            out[((unit / LANES) * gates + g) * LANES + unit % LANES] = v[g * n + unit];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_puts_the_gates_of_one_input_index_side_by_side() {
        // 2 gates, 3 units, 2 inputs: rows (g, unit), value 100g + 10unit + col.
        let canonical: Vec<f32> =
            (0..2).flat_map(|g| (0..3).flat_map(move |u| (0..2).map(move |c| (100 * g + 10 * u + c) as f32))).collect();
        let p = pack(&canonical, 2, 3, 2);
        assert_eq!(p.len(), 2 * 2 * 16);
        assert_eq!(&p[0..3], &[0.0, 10.0, 20.0]); // k=0, gate 0, units 0..3
        assert_eq!(&p[3..16], &[0.0; 13]); // padding units
        assert_eq!(&p[16..19], &[100.0, 110.0, 120.0]); // k=0, gate 1
        assert_eq!(&p[32..35], &[1.0, 11.0, 21.0]); // k=1, gate 0
        assert_eq!(unpack(&p, 2, 3, 2), canonical);
    }

    #[test]
    fn pack_round_trips_for_odd_sizes() {
        for (g, n, k) in [(4, 17, 5), (3, 1, 1), (1, 33, 7), (4, 16, 3)] {
            let c: Vec<u16> = (0..g * n * k).map(|i| i as u16).collect();
            assert_eq!(unpack(&pack(&c, g, n, k), g, n, k), c);
        }
    }

    #[test]
    fn pack_vector_matches_matrix_panels() {
        let v: Vec<f32> = (0..3 * 20).map(|i| i as f32).collect();
        let p = pack_vector(&v, 3, 20);
        assert_eq!(p.len(), 2 * 3 * 16);
        assert_eq!(p[16], 20.0); // panel 0, gate 1, lane 0
        assert_eq!(p[3 * 16 + 2 * 16 + 3], v[2 * 20 + 19]); // panel 1, gate 2, lane 3 = unit 19
    }
}
