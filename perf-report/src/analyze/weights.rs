//! The session-weight view: every span scored by a mix of its CPU, memory
//! and call figures (`Config::weights`), each normalised so that the
//! heaviest span in that dimension scores 1:
//!
//! ```text
//! weight = 100 x (0.4 x cpu / max cpu + 0.4 x bytes / max bytes + 0.2 x calls / max calls)
//! ```
//!
//! where `cpu` is the span's self time on the CPU (its self time where the
//! layer did not time it on the CPU). So the span with the most of it gets
//! the whole 40 CPU points, a span
//! with a tenth of that gets 4, and the mix follows the 40/40/20 intent
//! whatever the number of spans (shares of totals would squeeze a dimension
//! that many spans share into nothing).

use serde::Serialize;

use super::rows::CallsiteRow;
use crate::callsite::Location;
use crate::config::SessionWeights;
use crate::stats;

/// One span in the session-weight view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeightRow {
    /// The span.
    pub location: Location,
    /// Its share of all self time on the CPU.
    pub cpu_share: f64,
    /// Its share of all self-allocated bytes, `None` when not tracked.
    pub memory_share: Option<f64>,
    /// Its share of all calls.
    pub frequency_share: f64,
    /// The weighted mix of its self time on the CPU, allocated bytes and calls, each
    /// over the largest of any span, 0 to 100.
    pub weight: f64,
}

/// Each row weighted, heaviest first.
pub(crate) fn session_weights(
    rows: &[CallsiteRow],
    w: &SessionWeights,
    alloc_tracked: bool,
    total_calls: f64,
) -> Vec<WeightRow> {
    let max = |f: fn(&CallsiteRow) -> f64| rows.iter().map(f).fold(0.0, f64::max);
    let max_cpu = max(|r| r.self_cpu_ns);
    let total_cpu: f64 = rows.iter().map(|r| r.self_cpu_ns).sum();
    let max_bytes = max(|r| r.alloc.as_ref().map_or(0.0, |a| a.self_alloc_bytes as f64));
    let max_calls = max(|r| r.calls as f64);
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
    let out: Vec<WeightRow> = rows
        .iter()
        .map(|r| {
            let memory_share = r.alloc.as_ref().map(|a| a.alloc_share);
            let frequency_share = stats::share(r.calls as f64, total_calls);
            let bytes = r.alloc.as_ref().map_or(0.0, |a| a.self_alloc_bytes as f64);
            let raw = cpu_w * stats::share(r.self_cpu_ns, max_cpu)
                + mem_w * stats::share(bytes, max_bytes)
                + freq_w * stats::share(r.calls as f64, max_calls);
            WeightRow {
                location: r.location.clone(),
                cpu_share: stats::share(r.self_cpu_ns, total_cpu),
                memory_share,
                frequency_share,
                weight: ((100.0 * raw).clamp(0.0, 100.0) * 10.0).round() / 10.0,
            }
        })
        .collect();
    super::sorted_by(out, |a, b| {
        b.weight
            .total_cmp(&a.weight)
            .then_with(|| a.location.cmp(&b.location))
    })
}
