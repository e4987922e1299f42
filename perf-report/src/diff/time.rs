//! The time axis: mean busy time per call, confirmed by the shape of the
//! busy-time distribution (see the module docs of [`super`]).

use hdrhistogram::Histogram;
use perf_layer::dump::CallsiteStats;

use super::{Axis, AxisVerdict, Change, DiffOptions, Verdict};
use crate::stats;
use crate::units;

/// What the time comparison measured, beside its verdict.
#[derive(Debug, Clone)]
pub(super) struct TimeFigures {
    pub(super) busy_mean_ns: Change,
    pub(super) busy_p50_ns: Change,
    pub(super) busy_p99_ns: Change,
    pub(super) busy_max_ns: Change,
    pub(super) ks_statistic: f64,
    pub(super) ks_critical: f64,
    pub(super) quantiles_moved: usize,
}

pub(super) fn decode(cs: &CallsiteStats) -> Option<Histogram<u64>> {
    cs.busy_ns.decode().ok()
}

pub(super) fn q(h: Option<&Histogram<u64>>, quantile: f64) -> f64 {
    match h {
        Some(h) if !h.is_empty() => h.value_at_quantile(quantile) as f64,
        _ => 0.0,
    }
}

pub(super) fn max(h: Option<&Histogram<u64>>) -> f64 {
    h.map_or(0.0, |h| h.max() as f64)
}

/// Mean busy time per call, the figure this axis compares
/// (`crate::figures`).
pub(super) fn mean(cs: &CallsiteStats) -> f64 {
    Axis::Time.of(cs).unwrap_or(0.0)
}

/// Timed intervals a side needs before its preempted share is read: fewer
/// (a short span timed one in 512) make the share itself noise.
const MIN_TIMED_INTERVALS: u64 = 100;

/// Mean busy time per call less the share of it the timed intervals spent
/// preempted (another thread, another process or the hypervisor had the
/// core): the time the span's own code took, waits included. `None`
/// without enough timed intervals.
fn own_mean(cs: &CallsiteStats) -> Option<f64> {
    let c = cs.cpu.as_ref()?;
    if c.busy_ns == 0 || c.intervals < MIN_TIMED_INTERVALS {
        return None;
    }
    let preempted = (c.preempted_ns.sum as f64 / c.busy_ns as f64).clamp(0.0, 1.0);
    Some(mean(cs) * (1.0 - preempted))
}

/// The time verdict of `b` against `n`. The mean compared leaves out the
/// time preempted when both sides were timed enough: a microsecond span
/// beside busier threads is preempted a few hundred microseconds once in
/// a while, and one such call in 1,800 moves its mean by 10%. A fresh
/// three-thread program run twice unchanged read `compress` (2.7 µs)
/// regressed or improved in four pairs of seven, its mean +12 to +16% with
/// its CPU time +3 to +5%; a slower sibling made it "regressed" +41%, all
/// but 8% of it preemption.
pub(super) fn compare(
    b: &CallsiteStats,
    n: &CallsiteStats,
    opts: &DiffOptions,
) -> (AxisVerdict, TimeFigures) {
    let (hb, hn) = (decode(b), decode(n));
    let busy = Change::of(mean(b), mean(n));
    let (compared, what) = match (own_mean(b), own_mean(n)) {
        (Some(x), Some(y)) => (Change::of(x, y), "mean less the time preempted"),
        _ => (busy, "mean"),
    };
    let (mut axis, shift) = judge(
        (hb.as_ref(), hn.as_ref()),
        (compared, what),
        b.busy_ns.count.min(n.busy_ns.count),
        opts,
    );
    let busy_delta = busy.relative.unwrap_or(0.0);
    if !axis.verdict.is_change() && compared != busy && busy_delta.abs() > opts.threshold {
        axis.reason = format!(
            "{} (mean busy {}: the rest is preemption, other threads or processes on its core)",
            axis.reason,
            units::change(busy_delta)
        );
    }
    let figures = TimeFigures {
        busy_mean_ns: busy,
        busy_p50_ns: Change::of(q(hb.as_ref(), 0.5), q(hn.as_ref(), 0.5)),
        busy_p99_ns: Change::of(q(hb.as_ref(), 0.99), q(hn.as_ref(), 0.99)),
        busy_max_ns: Change::of(max(hb.as_ref()), max(hn.as_ref())),
        ks_statistic: shift.ks_statistic,
        ks_critical: shift.ks_critical,
        quantiles_moved: shift.quantiles_moved,
    };
    (axis, figures)
}

/// How a distribution moved between two dumps, beside its verdict.
#[derive(Debug, Clone, Copy)]
pub(super) struct Shift {
    pub(super) ks_statistic: f64,
    pub(super) ks_critical: f64,
    pub(super) quantiles_moved: usize,
}

/// The verdict on a per-call distribution (busy time, or idle time for the
/// wait axis), the base's and the new's histograms `h`, by the rule of the
/// module docs: the mean's change `mean` beyond the threshold, confirmed
/// by the one-sided KS statistic or two quantiles moving its way, with at
/// least `opts.min_calls` calls on the side with fewer (`fewest_calls`).
/// `what` names the mean in the reason.
pub(super) fn judge(
    (hb, hn): (Option<&Histogram<u64>>, Option<&Histogram<u64>>),
    (mean, what): (Change, &str),
    fewest_calls: u64,
    opts: &DiffOptions,
) -> (AxisVerdict, Shift) {
    let t = opts.threshold.max(0.0);
    let delta = mean.relative.unwrap_or(0.0);
    // The one-sided statistic in the direction of the mean's change: a mean
    // pushed up by a few outliers while the bulk got faster is no regression.
    let (ks, crit) = match (hb, hn) {
        (Some(x), Some(y)) => {
            let (slower, faster) = stats::ks_one_sided(x, y);
            (
                if delta >= 0.0 { slower } else { faster },
                stats::ks_critical_one_sided(x.len(), y.len(), opts.alpha),
            )
        }
        _ => (0.0, f64::INFINITY),
    };
    let moved = [0.5, 0.9, 0.99, 0.999]
        .iter()
        .filter(|&&quantile| {
            let c = Change::of(q(hb, quantile), q(hn, quantile));
            match c.relative {
                Some(r) if delta > 0.0 => r > t,
                Some(r) if delta < 0.0 => r < -t,
                _ => false,
            }
        })
        .count();
    let enough = fewest_calls >= opts.min_calls;
    let shifted = ks > crit || moved >= 2;
    let (verdict, reason) = if !enough {
        (
            Verdict::Unchanged,
            format!("fewer than {} calls on a side", opts.min_calls),
        )
    } else if delta.abs() <= t {
        (
            Verdict::Unchanged,
            format!(
                "{what} {} is within the ±{:.0}% noise threshold",
                units::change(delta),
                t * 100.0
            ),
        )
    } else if !shifted {
        (
            Verdict::Unchanged,
            format!(
                "{what} {} but the distribution did not move (KS D {:.3} ≤ {:.3}, {} of 4 quantiles moved)",
                units::change(delta),
                ks,
                crit,
                moved
            ),
        )
    } else {
        (
            if delta > 0.0 {
                Verdict::Regressed
            } else {
                Verdict::Improved
            },
            if ks > crit {
                format!(
                    "{what} {} with the distribution moved (KS D {:.3} vs {:.3}, {} of 4 quantiles moved)",
                    units::change(delta),
                    ks,
                    crit,
                    moved
                )
            } else {
                // The quantiles decided: a shift of the tail, which KS, read
                // over the whole distribution, does not see.
                format!(
                    "{what} {} with its tail moved ({} of 4 quantiles moved; KS D {:.3} ≤ {:.3} over the whole distribution)",
                    units::change(delta),
                    moved,
                    ks,
                    if crit.is_finite() { crit } else { 1.0 }
                )
            },
        )
    };
    let axis = AxisVerdict {
        verdict,
        change: if verdict == Verdict::Unchanged {
            0.0
        } else {
            delta
        },
        reason,
    };
    let shift = Shift {
        ks_statistic: ks,
        ks_critical: crit,
        quantiles_moved: moved,
    };
    (axis, shift)
}

#[cfg(test)]
mod tests {
    use crate::analyze::test_dump::{Span, US, dump};
    use crate::diff::{DiffOptions, Verdict, diff};

    /// `compress`: 1,800 calls of 2 µs, then `new_calls` of `new_ns`, five
    /// of them preempted for `preempted_ns` each on top.
    fn run(busy_ns: u64, preempted_ns: u64) -> perf_layer::dump::Dump {
        let calls = [(busy_ns, 1_795), (busy_ns + preempted_ns, 5)];
        let busy: u64 = calls.iter().map(|&(v, n)| v * n).sum();
        let preempted = 5 * preempted_ns;
        dump(
            2_000_000_000,
            &[Span::new("compress", &calls).on_cpu(busy - preempted, preempted, 0, 5)],
        )
    }

    #[test]
    fn preemption_of_a_few_calls_is_not_a_span_s_regression() {
        // Found on a fresh three-thread program run twice unchanged: a
        // 2.7 µs span read regressed, its mean +12% with its CPU time +4%.
        let base = run(2 * US, 0);
        let preempted = run(2 * US + 40, 400 * US);
        let d = diff(&base, &preempted, &DiffOptions::default());
        let c = &d.callsites[0];
        assert!(c.busy_mean_ns.relative.unwrap() > 0.5, "{c:#?}");
        assert_eq!(c.time_verdict, Verdict::Unchanged, "{}", c.time.reason);
        assert!(c.time.reason.contains("preemption"), "{}", c.time.reason);
        // Its own code 30% slower is a regression, preempted or not.
        let slower = run(2 * US + 600, 400 * US);
        let d = diff(&base, &slower, &DiffOptions::default());
        let c = &d.callsites[0];
        assert_eq!(c.time_verdict, Verdict::Regressed, "{}", c.time.reason);
        assert!(
            c.time.reason.contains("less the time preempted"),
            "{}",
            c.time.reason
        );
    }
}
