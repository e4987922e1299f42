//! Pure statistics over the dump's figures: least-squares trends, the
//! two-sample Kolmogorov-Smirnov statistic on HDR histograms, and the
//! confidence that a sample count buys.
//!
//! Every function is total: empty or degenerate input gives `None` or 0,
//! never a panic or a NaN.

use hdrhistogram::Histogram;
use serde::Serialize;

/// An ordinary least-squares line `y = intercept + slope x`, with its
/// coefficient of determination.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LinearFit {
    /// Change in `y` per unit of `x`.
    pub slope: f64,
    /// `y` at `x = 0`.
    pub intercept: f64,
    /// R², the share of the variance of `y` the line explains (0 to 1).
    pub r2: f64,
    /// Number of points fitted.
    pub n: usize,
}

/// Fits `y = a + b x` by ordinary least squares.
///
/// `b = Σ(x-x̄)(y-ȳ) / Σ(x-x̄)²`, `a = ȳ - b x̄`,
/// `R² = 1 - Σ(y - a - b x)² / Σ(y-ȳ)²` (any textbook, e.g. Montgomery & Runger,
/// *Applied Statistics*, ch. 11). Centring first keeps the sums accurate for
/// large byte counts. A flat `y` fits perfectly with slope 0 and R² 1.
///
/// Returns `None` for fewer than two points, for points that all share one
/// `x`, or when any value is not finite.
///
/// ```
/// let fit = perf_report::stats::least_squares(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]).unwrap();
/// assert!((fit.slope - 2.0).abs() < 1e-9 && (fit.r2 - 1.0).abs() < 1e-9);
/// ```
pub fn least_squares(points: &[(f64, f64)]) -> Option<LinearFit> {
    let n = points.len();
    if n < 2 || points.iter().any(|(x, y)| !x.is_finite() || !y.is_finite()) {
        return None;
    }
    let nf = n as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / nf;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / nf;
    let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
    for &(x, y) in points {
        let (dx, dy) = (x - mean_x, y - mean_y);
        sxx += dx * dx;
        sxy += dx * dy;
        syy += dy * dy;
    }
    if sxx <= 0.0 || !sxx.is_finite() || !sxy.is_finite() || !syy.is_finite() {
        return None;
    }
    let slope = sxy / sxx;
    let intercept = mean_y - slope * mean_x;
    let r2 = if syy <= 0.0 {
        1.0
    } else {
        // Equivalent to 1 - SS_res/SS_tot for a least-squares line.
        ((sxy * sxy) / (sxx * syy)).clamp(0.0, 1.0)
    };
    Some(LinearFit {
        slope,
        intercept,
        r2,
        n,
    })
}

/// How much `n` independent observations can be trusted, `n / (n + k)`:
/// 0 for none, one half at `n = k`, approaching 1.
///
/// ```
/// assert_eq!(perf_report::stats::sample_confidence(100, 100.0), 0.5);
/// ```
pub fn sample_confidence(n: u64, k: f64) -> f64 {
    let n = n as f64;
    if n + k <= 0.0 { 0.0 } else { n / (n + k) }
}

/// `(value, count)` pairs of every recorded bucket, ascending; the value is
/// the bucket's highest equivalent value.
fn recorded(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    h.iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}

/// The two-sample Kolmogorov-Smirnov statistic `D = sup_x |F_a(x) - F_b(x)|`
/// computed on the whole recorded distributions of two histograms.
///
/// Both empirical CDFs are stepped at the union of their bucket values, so
/// `D` is exact up to the histograms' precision. 0 when either is empty.
pub fn ks_statistic(a: &Histogram<u64>, b: &Histogram<u64>) -> f64 {
    let (up, down) = ks_one_sided(a, b);
    up.max(down)
}

/// The one-sided two-sample Kolmogorov-Smirnov statistics of two histograms:
/// `(D+, D-)` with `D+ = sup_x (F_a(x) - F_b(x))`, large when `b` is
/// stochastically larger (slower) than `a`, and `D- = sup_x (F_b(x) - F_a(x))`,
/// large when `b` is smaller. Both 0 when either histogram is empty.
pub fn ks_one_sided(a: &Histogram<u64>, b: &Histogram<u64>) -> (f64, f64) {
    let (na, nb) = (a.len(), b.len());
    if na == 0 || nb == 0 {
        return (0.0, 0.0);
    }
    let (ra, rb) = (recorded(a), recorded(b));
    let (mut i, mut j) = (0, 0);
    let (mut ca, mut cb) = (0u128, 0u128);
    let (mut up, mut down): (f64, f64) = (0.0, 0.0);
    while i < ra.len() || j < rb.len() {
        let va = ra.get(i).map_or(u64::MAX, |p| p.0);
        let vb = rb.get(j).map_or(u64::MAX, |p| p.0);
        let x = va.min(vb);
        while i < ra.len() && ra[i].0 == x {
            ca += u128::from(ra[i].1);
            i += 1;
        }
        while j < rb.len() && rb[j].0 == x {
            cb += u128::from(rb[j].1);
            j += 1;
        }
        let fa = ca as f64 / na as f64;
        let fb = cb as f64 / nb as f64;
        up = up.max(fa - fb);
        down = down.max(fb - fa);
    }
    (up.min(1.0), down.min(1.0))
}

/// The critical value of the two-sample KS statistic at significance
/// `alpha`: `c(α) sqrt((n + m) / (n m))` with `c(α) = sqrt(-ln(α/2) / 2)`
/// (the large-sample approximation; Smirnov 1948). A `D` above it means
/// the two samples differ at level `alpha`. Infinite when a side is empty.
///
/// ```
/// let crit = perf_report::stats::ks_critical(1000, 1000, 0.01);
/// assert!((crit - 0.0728).abs() < 1e-3);
/// ```
pub fn ks_critical(n: u64, m: u64, alpha: f64) -> f64 {
    ks_critical_with(n, m, (-(alpha / 2.0).ln() / 2.0).sqrt(), alpha)
}

/// The critical value of a one-sided KS statistic (`D+` or `D-`) at
/// significance `alpha`: `c(α) sqrt((n + m) / (n m))` with
/// `c(α) = sqrt(-ln(α) / 2)`. Infinite when a side is empty.
///
/// ```
/// let crit = perf_report::stats::ks_critical_one_sided(1000, 1000, 0.01);
/// assert!((crit - 0.0679).abs() < 1e-3);
/// ```
pub fn ks_critical_one_sided(n: u64, m: u64, alpha: f64) -> f64 {
    ks_critical_with(n, m, (-alpha.ln() / 2.0).sqrt(), alpha)
}

fn ks_critical_with(n: u64, m: u64, c: f64, alpha: f64) -> f64 {
    if n == 0 || m == 0 || !(alpha > 0.0 && alpha < 1.0) {
        return f64::INFINITY;
    }
    let (n, m) = (n as f64, m as f64);
    c * ((n + m) / (n * m)).sqrt()
}

/// The time the slowest calls spent beyond `cap`: `Σ max(0, v - cap) x count`
/// over every recorded value `v`, in the histogram's unit.
pub fn excess_above(h: &Histogram<u64>, cap: u64) -> f64 {
    h.iter_recorded()
        .map(|v| excess_term(v.value_iterated_to(), v.count_at_value(), cap))
        .sum()
}

/// A call is in its distribution's tail from this many times its p90: a
/// slow call, not the spread of the usual ones around p90 (a recursive
/// span's leaves, a tenth of its calls or more, spread 5 to 5.5 µs about a
/// p90 of 5.2 µs: 43 ms "beyond p90" over 307,000 of them, no slow call).
pub const TAIL_FROM_P90: u64 = 2;

/// The time a distribution's tail spent beyond its p90: [`excess_above`]
/// `p90`, over the calls at least [`TAIL_FROM_P90`] times it.
pub fn tail_excess(h: &Histogram<u64>, p90: u64) -> f64 {
    let from = p90.saturating_mul(TAIL_FROM_P90);
    h.iter_recorded()
        .filter(|v| v.value_iterated_to() >= from)
        .map(|v| excess_term(v.value_iterated_to(), v.count_at_value(), p90))
        .sum()
}

/// [`tail_excess`] over a histogram's recorded `(value, count)` pairs,
/// already collected, in the same order (so the same sum, to the bit).
pub(crate) fn tail_excess_recorded(recorded: &[(u64, u64)], p90: u64) -> f64 {
    let from = p90.saturating_mul(TAIL_FROM_P90);
    recorded
        .iter()
        .filter(|&&(value, _)| value >= from)
        .map(|&(value, count)| excess_term(value, count, p90))
        .sum()
}

fn excess_term(value: u64, count: u64, cap: u64) -> f64 {
    if value > cap {
        (value - cap) as f64 * count as f64
    } else {
        0.0
    }
}

/// `part / whole` as a fraction, 0 when `whole` is 0, clamped to 0..=1.
pub fn share(part: f64, whole: f64) -> f64 {
    if whole <= 0.0 || !whole.is_finite() || !part.is_finite() {
        0.0
    } else {
        (part / whole).clamp(0.0, 1.0)
    }
}

/// The median of `values` (the mean of the two middle ones for an even
/// count), 0 for none. Non-finite values sort last.
///
/// ```
/// assert_eq!(perf_report::stats::median(&[3.0, 1.0, 2.0]), 2.0);
/// assert_eq!(perf_report::stats::median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
/// ```
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Two callsites whose calls are within this factor of each other in
/// number go in step: the same items through both (a batch a tick, a
/// write a lock, a record a stage), or one loop alternating them (4).
pub(crate) const IN_STEP: f64 = 4.0;

/// Whether `a` calls and `b` calls go in step ([`IN_STEP`]).
pub(crate) fn in_step(a: u64, b: u64) -> bool {
    (1.0 / IN_STEP..=IN_STEP).contains(&(a.max(1) as f64 / b.max(1) as f64))
}

/// `part / whole` without clamping, 0 when `whole` is 0 or not finite.
pub fn ratio(part: f64, whole: f64) -> f64 {
    if whole <= 0.0 || !whole.is_finite() || !part.is_finite() {
        0.0
    } else {
        part / whole
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Calls spread just above p90 are no tail; calls twice p90 or more
    /// are, and count from p90.
    #[test]
    fn a_tail_is_the_calls_at_least_twice_p90() {
        let spread = hist(&[(5_000, 900), (5_200, 80), (5_500, 20)]);
        let p90 = spread.value_at_quantile(0.9);
        assert!(excess_above(&spread, p90) > 0.0);
        assert_eq!(tail_excess(&spread, p90), 0.0);
        let slow = hist(&[(5_000, 990), (50_000, 10)]);
        let p90 = slow.value_at_quantile(0.9);
        let expected = 10.0 * (slow.highest_equivalent(50_000) - p90) as f64;
        assert_eq!(tail_excess(&slow, p90), expected);
    }

    fn hist(values: &[(u64, u64)]) -> Histogram<u64> {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 2).unwrap();
        for &(v, n) in values {
            h.record_n(v, n).unwrap();
        }
        h
    }

    #[test]
    fn least_squares_recovers_a_noisy_line() {
        let points: Vec<_> = (0..20)
            .map(|i| {
                let noise = if i % 2 == 0 { 1.0 } else { -1.0 };
                (i as f64, 10.0 + 3.0 * i as f64 + noise)
            })
            .collect();
        let fit = least_squares(&points).unwrap();
        assert!((fit.slope - 3.0).abs() < 0.05, "{fit:?}");
        assert!(fit.r2 > 0.98 && fit.r2 < 1.0, "{fit:?}");
        assert_eq!(least_squares(&[(1.0, 1.0)]), None);
        assert_eq!(least_squares(&[(1.0, 1.0), (1.0, 2.0)]), None);
        let flat = least_squares(&[(0.0, 5.0), (1.0, 5.0), (2.0, 5.0)]).unwrap();
        assert_eq!((flat.slope, flat.r2), (0.0, 1.0));
    }

    #[test]
    fn a_sawtooth_fits_poorly() {
        let points: Vec<_> = (0..40)
            .map(|i| (i as f64, if i % 2 == 0 { 0.0 } else { 100.0 }))
            .collect();
        assert!(least_squares(&points).unwrap().r2 < 0.1);
    }

    #[test]
    fn ks_is_zero_for_equal_and_one_for_disjoint_distributions() {
        let a = hist(&[(100, 50), (200, 50)]);
        assert_eq!(ks_statistic(&a, &a), 0.0);
        let b = hist(&[(10_000, 10)]);
        assert_eq!(ks_statistic(&a, &b), 1.0);
        let c = hist(&[(100, 50), (10_000, 50)]);
        assert!((ks_statistic(&a, &c) - 0.5).abs() < 1e-9);
        assert_eq!(ks_statistic(&a, &hist(&[])), 0.0);
        // c is slower than a: only D+ is large.
        let (up, down) = ks_one_sided(&a, &c);
        assert!((up - 0.5).abs() < 1e-9 && down == 0.0, "{up} {down}");
        assert_eq!(ks_one_sided(&c, &a), (0.0, up));
    }

    #[test]
    fn excess_counts_only_the_part_above_the_cap() {
        let h = hist(&[(100, 90), (1_000, 10)]);
        let excess = excess_above(&h, 100);
        // 1_000 is stored within 1% precision.
        assert!((excess - 9_000.0).abs() < 100.0, "{excess}");
        assert_eq!(excess_above(&h, 2_000), 0.0);
    }

    #[test]
    fn shares_never_divide_by_zero() {
        assert_eq!(share(1.0, 0.0), 0.0);
        assert_eq!(share(3.0, 2.0), 1.0);
        assert_eq!(ratio(3.0, 2.0), 1.5);
        assert_eq!(sample_confidence(0, 0.0), 0.0);
    }
}
