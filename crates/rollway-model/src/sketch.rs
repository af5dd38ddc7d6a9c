//! A mergeable latency sketch with a relative error of at most 1 % on every
//! quantile (the DDSketch idea: logarithmic buckets of ratio γ = (1+α)/(1−α),
//! α = 0.01). Rollups keep one per bucket of time, so the P95 of any window
//! is a merge of rollups, never a rescan of raw samples.
//!
//! Written here rather than taken from a crate because rollups need a sparse
//! encoding (a minute of probes fills a handful of buckets) that merges by
//! adding counts and stores as a short list of pairs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The relative accuracy every quantile keeps.
pub const RELATIVE_ERROR: f64 = 0.01;

/// Values below this (milliseconds) are counted as zero.
const MIN_VALUE: f64 = 1e-3;

fn gamma() -> f64 {
    (1.0 + RELATIVE_ERROR) / (1.0 - RELATIVE_ERROR)
}

/// Counts per logarithmic bucket, plus the values too small to bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencySketch {
    /// Bucket index → count; bucket `i` holds values in (γ^(i−1), γ^i].
    buckets: BTreeMap<i32, u64>,
    zeros: u64,
}

impl LatencySketch {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many values it holds.
    pub fn count(&self) -> u64 {
        self.zeros + self.buckets.values().sum::<u64>()
    }

    /// Adds one value (milliseconds; negative and NaN count as zero).
    pub fn add(&mut self, value_ms: f64) {
        if value_ms.is_nan() || value_ms < MIN_VALUE {
            self.zeros += 1;
            return;
        }
        // The index of a finite positive value fits an i32 by far
        // (f64::MAX is γ^35_000 or so).
        let i = (value_ms.ln() / gamma().ln()).ceil() as i32;
        *self.buckets.entry(i).or_default() += 1;
    }

    /// Adds every value of `other`: the sketch of the union of both sets.
    pub fn merge(&mut self, other: &LatencySketch) {
        self.zeros += other.zeros;
        for (&i, &n) in &other.buckets {
            *self.buckets.entry(i).or_default() += n;
        }
    }

    /// The `q`-quantile (0 ≤ q ≤ 1) as the value of rank ⌊q·(n−1)⌋ in sorted
    /// order, within [`RELATIVE_ERROR`] of it; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let q = q.clamp(0.0, 1.0);
        let rank = (q * (n - 1) as f64).floor() as u64;
        if rank < self.zeros {
            return Some(0.0);
        }
        let mut seen = self.zeros;
        for (&i, &c) in &self.buckets {
            seen += c;
            if seen > rank {
                // The point of the bucket whose relative distance to both
                // ends is α.
                let g = gamma();
                return Some(2.0 * g.powi(i) / (g + 1.0));
            }
        }
        None
    }

    /// The sketch as `(bucket, count)` pairs plus the zero count, for storage.
    pub fn to_parts(&self) -> (Vec<(i32, u64)>, u64) {
        (self.buckets.iter().map(|(&i, &c)| (i, c)).collect(), self.zeros)
    }

    /// The inverse of [`LatencySketch::to_parts`].
    pub fn from_parts(buckets: impl IntoIterator<Item = (i32, u64)>, zeros: u64) -> Self {
        let mut s = Self {
            buckets: BTreeMap::new(),
            zeros,
        };
        for (i, c) in buckets.into_iter().filter(|&(_, c)| c > 0) {
            *s.buckets.entry(i).or_default() += c;
        }
        s
    }
}

/// The exact `q`-quantile of `values` by the rule [`LatencySketch::quantile`]
/// approximates: the value of rank ⌊q·(n−1)⌋ in sorted order.
pub fn exact_quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = (q.clamp(0.0, 1.0) * (v.len() - 1) as f64).floor() as usize;
    v.get(rank).copied()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn within(approx: f64, exact: f64) -> bool {
        if exact < MIN_VALUE {
            return approx == 0.0;
        }
        (approx - exact).abs() <= RELATIVE_ERROR * exact * (1.0 + 1e-9)
    }

    #[test]
    fn quantiles_of_small_sets() {
        let check = |values: &[f64], q: f64, exact: f64| {
            let mut s = LatencySketch::new();
            values.iter().for_each(|&v| s.add(v));
            let got = s.quantile(q).unwrap();
            assert!(within(got, exact), "q{q} of {values:?}: {got} vs {exact}");
            assert_eq!(exact_quantile(values, q), Some(exact));
        };
        check(&[10.0], 0.95, 10.0);
        check(&[1.0, 2.0, 3.0, 4.0, 100.0], 0.5, 3.0);
        check(&[1.0, 2.0, 3.0, 4.0, 100.0], 1.0, 100.0);
        check(&[0.0, 0.0, 5.0], 0.5, 0.0);
        check(&[250.0; 20], 0.95, 250.0);
        assert_eq!(LatencySketch::new().quantile(0.95), None);
    }

    proptest::proptest! {
        /// P95 (and other quantiles) of merged sketches stay within 1 % of the
        /// exact quantile of all values, however the values are split.
        #[test]
        fn merged_quantiles_stay_within_one_percent(
            values in proptest::collection::vec(0.0f64..120_000.0, 1..400),
            split in 0usize..400,
            q in proptest::sample::select(vec![0.5, 0.9, 0.95, 0.99]),
        ) {
            let cut = split.min(values.len());
            let (a, b) = values.split_at(cut);
            let mut sa = LatencySketch::new();
            a.iter().for_each(|&v| sa.add(v));
            let mut sb = LatencySketch::new();
            b.iter().for_each(|&v| sb.add(v));
            sa.merge(&sb);
            let (parts, zeros) = sa.to_parts();
            let stored = LatencySketch::from_parts(parts, zeros);
            proptest::prop_assert_eq!(&stored, &sa);
            let exact = exact_quantile(&values, q).unwrap();
            let got = stored.quantile(q).unwrap();
            proptest::prop_assert!(within(got, exact), "q{} {} vs {}", q, got, exact);
        }
    }
}
