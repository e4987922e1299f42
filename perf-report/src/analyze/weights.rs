//! The session-weight view: every span scored by a mix of its CPU, memory
//! and call shares (`Config::weights`).

use serde::Serialize;

use super::context::CallsiteRow;
use crate::callsite::Location;
use crate::config::SessionWeights;
use crate::stats;

/// One span in the session-weight view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeightRow {
    /// The span.
    pub location: Location,
    /// Its share of all self time.
    pub cpu_share: f64,
    /// Its share of all self-allocated bytes, `None` when not tracked.
    pub memory_share: Option<f64>,
    /// Its share of all calls.
    pub frequency_share: f64,
    /// The weighted mix, 0 to 100.
    pub weight: f64,
}

/// Each row weighted, heaviest first.
pub(crate) fn session_weights(
    rows: &[CallsiteRow],
    w: &SessionWeights,
    alloc_tracked: bool,
    total_calls: f64,
) -> Vec<WeightRow> {
    // Without allocation data the memory weight is shared out between CPU
    // and frequency in proportion, so weights still span 0 to 100.
    let (cpu_w, mem_w, freq_w) = if alloc_tracked {
        (w.cpu, w.memory, w.frequency)
    } else {
        let rest = w.cpu + w.frequency;
        if rest > 0.0 {
            (
                w.cpu / rest * (rest + w.memory),
                0.0,
                w.frequency / rest * (rest + w.memory),
            )
        } else {
            (0.0, 0.0, 0.0)
        }
    };
    let mut out: Vec<WeightRow> = rows
        .iter()
        .map(|r| {
            let memory_share = r.alloc.as_ref().map(|a| a.alloc_share);
            let frequency_share = stats::share(r.calls as f64, total_calls);
            let raw = cpu_w * r.self_share
                + mem_w * memory_share.unwrap_or(0.0)
                + freq_w * frequency_share;
            WeightRow {
                location: r.location.clone(),
                cpu_share: r.self_share,
                memory_share,
                frequency_share,
                weight: ((100.0 * raw).clamp(0.0, 100.0) * 10.0).round() / 10.0,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.weight
            .total_cmp(&a.weight)
            .then_with(|| a.location.cmp(&b.location))
    });
    out
}
