//! The memory axis: what the callsite made that is still live at the end,
//! and how fast it grew after warm-up, from the counting allocator's tags.
//! Fixing a leak reads as improved; bringing one back as regressed.

use perf_layer::dump::{CallsiteStats, Dump};

use super::{Axis, AxisVerdict, Change, DiffOptions, Verdict};
use crate::units;

/// Live bytes at the end and growth after warm-up, on both sides.
#[derive(Debug, Clone)]
pub(super) struct MemoryFigures {
    pub(super) live_bytes: Change,
    pub(super) growth_bytes_per_s: Option<Change>,
}

/// The live-bytes growth after warm-up of a dump's callsite, as the leak
/// detector fits it.
fn growth(dump: &Dump, cs: &CallsiteStats) -> Option<f64> {
    let heap = cs.heap.as_ref()?;
    let window = crate::analyze::detectors::leak_suspect::Settings::default().growth_window();
    window.fit(dump, heap).map(|f| f.slope)
}

/// The memory verdict of `b` (of dump `base`) against `n` (of `new`);
/// `None` when either has no live heap.
pub(super) fn compare(
    (base, b): (&Dump, &CallsiteStats),
    (new, n): (&Dump, &CallsiteStats),
    opts: &DiffOptions,
) -> Option<(AxisVerdict, MemoryFigures)> {
    let live = Change::of(Axis::Memory.of(b)?, Axis::Memory.of(n)?);
    let t = opts.threshold.max(0.0);
    let r = live.relative.unwrap_or(f64::INFINITY);
    let verdict = if (live.new - live.base).abs() < opts.min_live_bytes as f64 {
        Verdict::Unchanged
    } else if r > t {
        Verdict::Regressed
    } else if r < -t {
        Verdict::Improved
    } else {
        Verdict::Unchanged
    };
    let growth = match (growth(base, b), growth(new, n)) {
        (Some(x), Some(y)) => Some(Change::of(x, y)),
        _ => None,
    };
    let axis = AxisVerdict::of_relative(
        verdict,
        r,
        format!(
            "live at the end {} ({} → {}){}",
            units::change(r),
            units::bytes(live.base),
            units::bytes(live.new),
            growth.map_or_else(String::new, |g| format!(
                ", growth after warm-up {}/s → {}/s",
                units::bytes(g.base),
                units::bytes(g.new)
            ))
        ),
    );
    Some((
        axis,
        MemoryFigures {
            live_bytes: live,
            growth_bytes_per_s: growth,
        },
    ))
}
