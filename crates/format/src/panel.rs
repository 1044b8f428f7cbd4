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

/// Input indices in one 32-bit lane of the int8 layout: `vpdpbusd` multiplies
/// four `u8 x s8` pairs per lane and adds them into one i32.
pub const K_GROUP: usize = 4;

/// The physical shape `[panels, ceil(k/4), gates, 16, 4]` of an int8 matrix.
pub fn packed_shape_i8(gates: usize, n: usize, k: usize) -> [u64; 5] {
    [panels(n) as u64, k.div_ceil(K_GROUP) as u64, gates as u64, LANES as u64, K_GROUP as u64]
}

/// Index of canonical element (row `g*n + unit`, column `col`) in the int8 order.
#[inline]
fn packed_index_i8(gates: usize, k: usize, g: usize, unit: usize, col: usize) -> usize {
    let (p, lane) = (unit / LANES, unit % LANES);
    let (quad, j) = (col / K_GROUP, col % K_GROUP);
    (((p * k.div_ceil(K_GROUP) + quad) * gates + g) * LANES + lane) * K_GROUP + j
}

/// Packs a canonical row-major `[gates*n, k]` int8 matrix into `panel16x4`:
/// for each panel of 16 units, each group of 4 input indices, each gate, the
/// 16 units' 4 weights (64 bytes). Units past `n` and indices past `k` are 0.
pub fn pack_i8(canonical: &[i8], gates: usize, n: usize, k: usize) -> Vec<i8> {
    assert_eq!(canonical.len(), gates * n * k, "canonical matrix is not [gates*n, k]");
    let mut out = vec![0; panels(n) * k.div_ceil(K_GROUP) * gates * LANES * K_GROUP];
    for g in 0..gates {
        for unit in 0..n {
            let row = &canonical[(g * n + unit) * k..][..k];
            for (col, &v) in row.iter().enumerate() {
                out[packed_index_i8(gates, k, g, unit, col)] = v;
            }
        }
    }
    out
}

/// Inverse of [`pack_i8`].
pub fn unpack_i8(packed: &[i8], gates: usize, n: usize, k: usize) -> Vec<i8> {
    assert_eq!(packed.len(), panels(n) * k.div_ceil(K_GROUP) * gates * LANES * K_GROUP, "packed int8 size");
    let mut out = vec![0; gates * n * k];
    for g in 0..gates {
        for unit in 0..n {
            for col in 0..k {
                out[(g * n + unit) * k + col] = packed[packed_index_i8(gates, k, g, unit, col)];
            }
        }
    }
    out
}

/// Each row's sum of its int8 weights, in the `[panels, gates, 16]` order of
/// [`pack_vector`], read from a `panel16x4` matrix (pads sum to 0).
pub fn row_sums_i8(packed: &[i8], gates: usize, n: usize, k: usize) -> Vec<i32> {
    let quads = k.div_ceil(K_GROUP);
    assert_eq!(packed.len(), panels(n) * quads * gates * LANES * K_GROUP, "packed int8 size");
    let mut sums = vec![0i32; panels(n) * gates * LANES];
    for (i, group) in packed.chunks_exact(LANES * K_GROUP).enumerate() {
        // Group i is (panel, quad, gate) in that order.
        let (p, g) = (i / (quads * gates), i % gates);
        for (lane, w) in group.chunks_exact(K_GROUP).enumerate() {
            sums[(p * gates + g) * LANES + lane] += w.iter().map(|&v| i32::from(v)).sum::<i32>();
        }
    }
    sums
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
    fn pack_i8_puts_four_inputs_in_a_lane_and_gates_side_by_side() {
        // 2 gates, 17 units, 5 inputs: value encodes (g, unit, col) modulo 128.
        let (g, n, k) = (2, 17, 5);
        let canonical: Vec<i8> = (0..g * n * k).map(|i| (i % 127) as i8).collect();
        let p = pack_i8(&canonical, g, n, k);
        assert_eq!(p.len(), 2 * 2 * 2 * 16 * 4);
        // panel 0, quad 0, gate 0, unit 0: columns 0..4 of row 0.
        assert_eq!(&p[0..4], &canonical[0..4]);
        // unit 1 of the same gate is the next lane.
        assert_eq!(&p[4..8], &canonical[k..k + 4]);
        // gate 1 starts 64 bytes on: row n (gate 1, unit 0).
        assert_eq!(&p[64..68], &canonical[n * k..n * k + 4]);
        // quad 1 holds column 4 and three zero pads.
        let q1 = 2 * 64;
        assert_eq!(&p[q1..q1 + 4], &[canonical[4], 0, 0, 0]);
        assert_eq!(unpack_i8(&p, g, n, k), canonical);
        let sums = row_sums_i8(&p, g, n, k);
        let row = |r: usize| canonical[r * k..][..k].iter().map(|&v| i32::from(v)).sum::<i32>();
        assert_eq!(sums[3], row(3)); // panel 0, gate 0, unit 3
        assert_eq!(sums[16 + 2], row(n + 2)); // panel 0, gate 1, unit 2
        assert_eq!(sums[2 * 16], row(16)); // panel 1, gate 0, unit 16
        assert_eq!(sums[2 * 16 + 1], 0); // a pad unit
        assert_eq!(packed_shape_i8(g, n, k), [2, 2, 2, 16, 4]);
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
