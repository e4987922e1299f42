//! When a metric shifted across runs: change points in a series of tens to
//! hundreds of values.
//!
//! # Method
//!
//! Binary segmentation on the mean, each split tested by permutation, in
//! the spirit of E-Divisive (Matteson and James, 2014) as Hunter and Otava
//! use it on benchmark histories:
//!
//! 1. Over a segment, every split point `τ` with at least
//!    [`ChangeOptions::min_segment`] values on each side is scored by the
//!    standardized difference of the two sides' means,
//!    `|mean(left) − mean(right)| × sqrt(nL × nR / n)`.
//! 2. The best split is kept when a permutation test says it is not chance:
//!    the values are shuffled [`ChangeOptions::permutations`] times (a fixed
//!    seed: the same series always gives the same answer), and the share of
//!    shuffles whose best score is at least the observed one, `(k + 1) /
//!    (P + 1)`, must be below [`ChangeOptions::alpha`]; and the shift must be
//!    at least [`ChangeOptions::min_relative_change`] of the earlier mean
//!    (a significant 0.5% shift is not worth showing).
//! 3. Each side is searched again, until no split passes.
//!
//! Values are taken in logarithms when they are all positive (times and
//! sizes: run-to-run noise is multiplicative), so a shift from 100 to 120
//! counts like one from 1,000 to 1,200.
//!
//! Why this method: it needs no distribution (shuffling is exact for any
//! noise), it finds several shifts in one series, and with tens to hundreds
//! of runs its cost (`n²` score evaluations per permutation) is
//! milliseconds. A median/MAD window test needs a window size to be chosen
//! and misses a shift near the ends of the series; a CUSUM chart needs the
//! in-control mean to be known.

use serde::Serialize;

/// Settings of [`change_points`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct ChangeOptions {
    /// The fewest values on each side of a split (3).
    pub min_segment: usize,
    /// Shuffles per test (199).
    pub permutations: usize,
    /// The largest permutation p-value kept (0.02).
    pub alpha: f64,
    /// The smallest shift kept, relative to the earlier side's mean (0.05).
    pub min_relative_change: f64,
}

impl Default for ChangeOptions {
    fn default() -> Self {
        Self {
            min_segment: 3,
            permutations: 199,
            alpha: 0.02,
            min_relative_change: 0.05,
        }
    }
}

/// A shift in a series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangePoint {
    /// The index of the first value after the shift.
    pub index: usize,
    /// The mean of the values from the previous change point to this one.
    pub before: f64,
    /// The mean from this change point to the next.
    pub after: f64,
    /// `after / before − 1`.
    pub relative_change: f64,
    /// The permutation p-value: how often shuffled values split as well
    /// (lower is surer).
    pub p_value: f64,
}

/// The change points of `values` (in order of index).
///
/// ```
/// use perf_report::history::changepoint::{ChangeOptions, change_points};
/// let mut series = vec![100.0, 101.0, 99.0, 100.5, 99.5, 100.0];
/// series.extend([120.0, 121.0, 119.0, 120.5, 119.5, 120.0]);
/// let found = change_points(&series, &ChangeOptions::default());
/// assert_eq!(found.len(), 1);
/// assert_eq!(found[0].index, 6);
/// assert!((found[0].relative_change - 0.2).abs() < 0.01);
/// ```
pub fn change_points(values: &[f64], opts: &ChangeOptions) -> Vec<ChangePoint> {
    if values.iter().any(|v| !v.is_finite()) || values.len() < 2 * opts.min_segment.max(1) {
        return Vec::new();
    }
    let logs = values.iter().all(|&v| v > 0.0);
    let x: Vec<f64> = if logs {
        values.iter().map(|v| v.ln()).collect()
    } else {
        values.to_vec()
    };
    let mut splits = Vec::new();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    segment(&x, logs, 0, values.len(), opts, &mut rng, &mut splits);
    splits.sort_by_key(|&(index, _)| index);
    // Means between consecutive change points, in the original units.
    let bounds: Vec<usize> = std::iter::once(0)
        .chain(splits.iter().map(|&(i, _)| i))
        .chain(std::iter::once(values.len()))
        .collect();
    let mean = |a: usize, b: usize| values[a..b].iter().sum::<f64>() / (b - a) as f64;
    splits
        .iter()
        .enumerate()
        .map(|(k, &(index, p_value))| {
            let before = mean(bounds[k], index);
            let after = mean(index, bounds[k + 2]);
            ChangePoint {
                index,
                before,
                after,
                relative_change: if before != 0.0 {
                    after / before - 1.0
                } else {
                    0.0
                },
                p_value,
            }
        })
        .collect()
}

/// Searches `x[lo..hi]` for its best split; keeps it and recurses when it
/// passes the tests.
fn segment(
    x: &[f64],
    logs: bool,
    lo: usize,
    hi: usize,
    opts: &ChangeOptions,
    rng: &mut XorShift,
    out: &mut Vec<(usize, f64)>,
) {
    let part = &x[lo..hi];
    let Some((at, score)) = best_split(part, opts.min_segment) else {
        return;
    };
    let (left, right) = part.split_at(at);
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    let (ml, mr) = (mean(left), mean(right));
    // The shift in the original units: in logs, exp(mr − ml) − 1.
    let shift = if logs {
        ((mr - ml).min(700.0)).exp() - 1.0
    } else if ml != 0.0 {
        (mr - ml) / ml.abs()
    } else {
        f64::INFINITY
    };
    if shift.abs() < opts.min_relative_change {
        return;
    }
    let mut shuffled = part.to_vec();
    let mut as_good = 0usize;
    for _ in 0..opts.permutations {
        rng.shuffle(&mut shuffled);
        if best_split(&shuffled, opts.min_segment).is_some_and(|(_, s)| s >= score) {
            as_good += 1;
        }
    }
    let p = (as_good + 1) as f64 / (opts.permutations + 1) as f64;
    if p >= opts.alpha {
        return;
    }
    out.push((lo + at, p));
    segment(x, logs, lo, lo + at, opts, rng, out);
    segment(x, logs, lo + at, hi, opts, rng, out);
}

/// The split of `x` with the largest standardized difference of means, and
/// that score; `None` when `x` is too short or constant.
fn best_split(x: &[f64], min_segment: usize) -> Option<(usize, f64)> {
    let n = x.len();
    let m = min_segment.max(1);
    if n < 2 * m {
        return None;
    }
    let total: f64 = x.iter().sum();
    let mut left = x[..m].iter().sum::<f64>();
    let mut best: Option<(usize, f64)> = None;
    for at in m..=n - m {
        if at > m {
            left += x[at - 1];
        }
        let (nl, nr) = (at as f64, (n - at) as f64);
        let diff = (left / nl - (total - left) / nr).abs();
        let score = diff * (nl * nr / n as f64).sqrt();
        if best.is_none_or(|(_, s)| score > s) {
            best = Some((at, score));
        }
    }
    best.filter(|&(_, s)| s > 0.0)
}

/// A small seeded generator: reproducible shuffles without a dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Fisher–Yates.
    fn shuffle(&mut self, v: &mut [f64]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Noise of about ±`spread` around 1, reproducible.
    fn noisy(n: usize, level: f64, spread: f64, seed: u64) -> Vec<f64> {
        let mut rng = XorShift(seed);
        (0..n)
            .map(|_| {
                let u = (rng.next() % 10_000) as f64 / 10_000.0 - 0.5;
                level * (1.0 + 2.0 * spread * u)
            })
            .collect()
    }

    #[test]
    fn noise_alone_has_no_change_point() {
        for seed in 1..20 {
            let series = noisy(60, 100.0, 0.05, seed);
            let found = change_points(&series, &ChangeOptions::default());
            assert!(found.is_empty(), "seed {seed}: {found:?}");
        }
    }

    #[test]
    fn two_shifts_are_both_found_where_they_are() {
        let mut series = noisy(20, 100.0, 0.03, 7);
        series.extend(noisy(15, 130.0, 0.03, 8));
        series.extend(noisy(25, 90.0, 0.03, 9));
        let found = change_points(&series, &ChangeOptions::default());
        let at: Vec<usize> = found.iter().map(|c| c.index).collect();
        assert_eq!(at, [20, 35], "{found:?}");
        assert!((found[0].relative_change - 0.3).abs() < 0.05, "{found:?}");
        assert!(found[1].relative_change < -0.25, "{found:?}");
    }

    #[test]
    fn a_small_significant_shift_is_not_shown() {
        let mut series = noisy(30, 100.0, 0.002, 3);
        series.extend(noisy(30, 102.0, 0.002, 4));
        assert!(change_points(&series, &ChangeOptions::default()).is_empty());
    }

    #[test]
    fn short_constant_or_broken_series_give_nothing() {
        let opts = ChangeOptions::default();
        assert!(change_points(&[1.0, 2.0, 3.0], &opts).is_empty());
        assert!(change_points(&[5.0; 40], &opts).is_empty());
        assert!(change_points(&[1.0, f64::NAN, 1.0, 1.0, 1.0, 1.0], &opts).is_empty());
    }
}
