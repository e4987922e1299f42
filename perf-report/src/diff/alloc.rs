//! The allocation axis: exact self-allocated bytes per call. Allocation
//! counts are nearly deterministic, so a small change is a real one.

use perf_layer::dump::CallsiteStats;

use super::{Axis, AxisVerdict, Change, DiffOptions, Verdict};
use crate::units;

/// Self-allocated bytes per call, the figure this axis compares
/// (`crate::figures`); `None` when not tracked.
pub(super) fn per_call(cs: &CallsiteStats) -> Option<f64> {
    Axis::Allocation.of(cs)
}

/// The allocation verdict of `b` against `n`, with bytes per call on both
/// sides; `None` when either dump did not track allocation.
pub(super) fn compare(
    b: &CallsiteStats,
    n: &CallsiteStats,
    opts: &DiffOptions,
) -> Option<(AxisVerdict, Change)> {
    let c = Change::of(per_call(b)?, per_call(n)?);
    let t = opts.threshold.max(0.0);
    let r = c.relative.unwrap_or(f64::INFINITY);
    let verdict = if (c.new - c.base).abs() < opts.min_alloc_bytes_per_call {
        Verdict::Unchanged
    } else if r > t {
        Verdict::Regressed
    } else if r < -t {
        Verdict::Improved
    } else {
        Verdict::Unchanged
    };
    let axis = AxisVerdict::of_relative(
        verdict,
        r,
        format!(
            "{} per call ({} → {})",
            units::change(r),
            units::bytes(c.base),
            units::bytes(c.new)
        ),
    );
    Some((axis, c))
}
