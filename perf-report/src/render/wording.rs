//! The report's shared wording: the sentences every format says the same
//! way (the run's summary, the findings by severity, the plan's gains, the
//! process line, the diff's counts, what a table means), so that the
//! formats cannot drift apart. The outline places them; a format only
//! styles and escapes them.

use crate::analyze::{Analysis, Resource, Severity};
use crate::config::SessionWeights;
use crate::diff::{Diff, Verdict};
use crate::plan::Plan;
use crate::units;

/// Words in two forms: terse for a terminal heading's line (`estimated
/// total gain: …`), and as a sentence for a paragraph (`Estimated total
/// gain: ….`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Words {
    pub(crate) terse: String,
    pub(crate) sentence: String,
}

impl Words {
    /// Prose: the sentence starts with a capital and ends with a full stop.
    pub(crate) fn sentence(terse: String) -> Self {
        let mut chars = terse.chars();
        let sentence = match chars.next() {
            Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
            None => String::new(),
        };
        Self { terse, sentence }
    }

    /// A list of figures: the same in both forms.
    pub(crate) fn figures(terse: String) -> Self {
        Self {
            sentence: terse.clone(),
            terse,
        }
    }

    /// A formula (`weight = …`): no capital, but a full stop.
    pub(crate) fn formula(terse: String) -> Self {
        Self {
            sentence: format!("{terse}."),
            terse,
        }
    }
}

/// The findings section without findings.
pub(in crate::render) const NO_FINDINGS: &str = "No findings: nothing crossed a threshold.";

/// The plan without steps.
pub(in crate::render) const NOTHING_TO_DO: &str = "Nothing to do.";

/// How to read the callsite table.
pub(in crate::render) const CALLSITES_READING: &str = "times are busy time per call unless named self; alloc is self-allocated; rss Δ/call is process RSS at close minus at open, as coarse as the sampler";

/// Under the session weights when allocation was not tracked.
pub(in crate::render) const ALLOCATION_UNTRACKED: &str =
    "allocation was not tracked: the memory weight is shared out between CPU and frequency";

/// How to read the diff's table.
pub(in crate::render) const DIFF_READING: &str =
    "cells show the new value and its change from the base";

/// Under the diff's distributions' heading.
pub(in crate::render) const DIFF_CURVES_CAPTION: &str =
    "Busy time by percentile, base dashed, new solid; both axes are logarithmic.";

/// Under the flamegraph's heading.
pub(in crate::render) const FLAMEGRAPH_CAPTION: &str = "Self time by call path.";

/// `5 more findings`, `1 more finding`: what a table or list left out,
/// `what` a plural that ends in `s` (findings, steps, callsites).
pub(in crate::render) fn more(hidden: usize, what: &str) -> String {
    let noun = if hidden == 1 {
        what.strip_suffix('s').unwrap_or(what)
    } else {
        what
    };
    format!("{hidden} more {noun}")
}

/// How a span's session weight is made.
pub(in crate::render) fn weights_formula(w: &SessionWeights) -> String {
    format!(
        "weight = {:.0}% CPU (self time) + {:.0}% memory (allocated bytes) + {:.0}% frequency (calls), each over the largest of any span",
        w.cpu * 100.0,
        w.memory * 100.0,
        w.frequency * 100.0
    )
}

/// What the header says after the program's name: the run's length, its
/// spans and their self time, and the CPU.
pub(in crate::render) fn run_summary(a: &Analysis) -> String {
    let t = &a.totals;
    let cpu = match t.cpu_ns {
        Some(cpu) => format!(
            ", {} of CPU ({:.2} cores on average{})",
            units::ns(cpu as f64),
            t.cpu_utilization,
            t.outside_spans_cpu_ns
                .map_or(String::new(), |outside| format!(
                    "; {} of it outside every span",
                    units::pct(outside as f64 / cpu.max(1) as f64)
                )),
        ),
        None => String::new(),
    };
    format!(
        "{} run, {} spans, {} of self time in spans{cpu}",
        units::ns(t.duration_ns as f64),
        units::count(t.calls as f64),
        units::ns(t.self_ns as f64),
    )
}

/// The findings by severity.
pub(in crate::render) fn counts(a: &Analysis) -> String {
    let n = |s: Severity| a.findings.iter().filter(|f| f.severity == s).count();
    format!(
        "{} critical, {} high, {} medium, {} low",
        n(Severity::Critical),
        n(Severity::High),
        n(Severity::Medium),
        n(Severity::Low)
    )
}

/// The plan's compounded gains.
pub(in crate::render) fn plan_totals(plan: &Plan, a: &Analysis) -> String {
    let parts: Vec<String> = [
        (plan.total_time_gain, Resource::Time),
        (plan.total_wall_gain, Resource::WallTime),
        (plan.total_allocation_gain, Resource::Allocation),
        (plan.total_memory_gain, Resource::Memory),
    ]
    .into_iter()
    .filter(|&(gain, resource)| gain > 0.0 || resource == Resource::Time)
    .map(|(gain, resource)| format!("{} of {}", units::pct(gain), a.totals.share_of(resource)))
    .collect();
    let paced = plan.steps.iter().find_map(|s| s.paced_by.as_deref());
    match paced {
        Some(pacer) => format!(
            "{} (waits beside `{pacer}`, which paces the run, not counted in its wall time)",
            parts.join(", ")
        ),
        None => parts.join(", "),
    }
}

/// The process as the sampler saw it, in one line; `None` without a
/// timeline.
pub(in crate::render) fn process_line(a: &Analysis) -> Option<String> {
    let pr = &a.process;
    if pr.samples == 0 {
        return None;
    }
    let trend = pr.rss_trend.map_or_else(String::new, |f| {
        format!(", trend {}/s (R² {:.2})", units::bytes(f.slope), f.r2)
    });
    let cores = pr
        .cores
        .map_or_else(String::new, |n| format!(", of {n} cores"));
    let mut machine = Vec::new();
    if let Some(psi) = pr.cpu_pressure_mean_percent {
        machine.push(format!("CPU pressure {psi:.0}%"));
    }
    if let Some(steal) = pr.steal_mean_percent {
        machine.push(format!("steal {steal:.0}%"));
    }
    if let Some(switches) = pr.involuntary_switches_per_s {
        machine.push(format!("{} preemptions/s", units::count(switches)));
    }
    let mut resources = format!("{} threads", pr.threads_max);
    if let Some(fds) = pr.open_fds_max {
        resources.push_str(&format!(", {fds} open files"));
    }
    Some(format!(
        "{} samples; RSS {} -> {} (median {}, peak {}{}); CPU mean {:.0}%, max {:.0}% (100% is one core{cores}){}; at most {resources}; alerts: {} CPU, {} RSS",
        pr.samples,
        units::bytes(pr.rss_first_bytes as f64),
        units::bytes(pr.rss_last_bytes as f64),
        units::bytes(pr.rss_median_bytes as f64),
        units::bytes(pr.rss_peak_bytes as f64),
        trend,
        pr.cpu_mean_percent,
        pr.cpu_max_percent,
        if machine.is_empty() {
            String::new()
        } else {
            format!("; {}", machine.join(", "))
        },
        pr.cpu_alerts,
        pr.rss_alerts
    ))
}

/// The callsites by verdict and the rule's parameters.
pub(in crate::render) fn diff_counts(d: &Diff) -> String {
    format!(
        "{} regressed, {} mixed, {} improved, {} unchanged, {} added, {} removed (noise threshold ±{:.0}%, KS α {})",
        d.count(Verdict::Regressed),
        d.count(Verdict::Mixed),
        d.count(Verdict::Improved),
        d.count(Verdict::Unchanged),
        d.count(Verdict::Added),
        d.count(Verdict::Removed),
        d.options.threshold * 100.0,
        d.options.alpha
    )
}

#[cfg(test)]
mod tests {
    use crate::analyze::test_dump::{MS, Span, US, dump};

    /// A batch whose CPU went 70% to untraced parsing: the header says
    /// so; with the spans holding nearly all of it, nothing is said.
    #[test]
    fn the_header_names_the_cpu_outside_every_span() {
        let header = |cpu_ms: u64| {
            let mut d = dump(
                2_000 * MS,
                &[Span::new("process_item", &[(100 * US, 4_000)])],
            );
            d.run.cpu_ns = Some(cpu_ms * MS);
            let a = crate::analyze::analyze(&d.into(), &crate::config::Config::default());
            super::run_summary(&a)
        };
        let h = header(1_400);
        assert!(
            h.ends_with("1.40 s of CPU (0.70 cores on average; 71.4% of it outside every span)"),
            "{h}"
        );
        let h = header(420);
        assert!(h.ends_with("(0.21 cores on average)"), "{h}");
    }

    #[test]
    fn one_left_out_is_said_in_the_singular() {
        assert_eq!(super::more(1, "findings"), "1 more finding");
        assert_eq!(super::more(5, "steps"), "5 more steps");
        assert_eq!(super::more(0, "callsites"), "0 more callsites");
    }
}
