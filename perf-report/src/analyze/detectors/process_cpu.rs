//! Process CPU saturation: much of the run spent at or above a CPU level,
//! from the sampler's timeline, or CPU alerts.

use serde::{Deserialize, Serialize};

use super::{Class, Detector, Info};
use crate::analyze::advice::{Advice, Effort, lines};
use crate::analyze::context::Context;
use crate::analyze::finding::{Draft, Evidence, Finding, Resource};
use crate::analyze::process::CpuLevel;
use crate::stats;
use crate::units::{self, Unit};

/// When the process's CPU is saturated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Settings {
    /// A sample at or above this share of every core the process could use
    /// counts as saturated (default 0.9: 180% on two cores). The timeline's
    /// CPU is over every thread, in percent of one core.
    pub saturated_share_of_cores: f64,
    /// A fixed level instead, in percent of one core (unset by default),
    /// e.g. 90 to flag a single-threaded program that keeps one core busy.
    pub saturated_percent: Option<f64>,
    /// At least this share of samples saturated (0.25).
    pub min_saturated_share: f64,
    /// The share of the saturated time a fix relieves (0.25).
    pub recoverable: f64,
    /// Confidence is `samples / (samples + this)` (4)...
    pub half_confidence_samples: f64,
    /// ...and at least this with CPU alerts (0.9).
    pub confidence_with_alerts: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            saturated_share_of_cores: 0.9,
            saturated_percent: None,
            min_saturated_share: 0.25,
            recoverable: 0.25,
            half_confidence_samples: 4.0,
            confidence_with_alerts: 0.9,
        }
    }
}

impl Settings {
    /// The level a timeline sample counts as saturated at.
    pub(crate) fn saturation(&self) -> CpuLevel {
        match self.saturated_percent {
            Some(percent) => CpuLevel::Percent(percent),
            None => CpuLevel::ShareOfCores(self.saturated_share_of_cores),
        }
    }
}

pub(crate) struct ProcessCpu;

/// Whether the process's mean CPU, less what the waiters of its queues
/// that spin or yield burnt ([`queue_of_runnable_waiters`]), is under the
/// saturation level: the cores are busy with waiting, which more cores
/// would not shorten; the serialization finding is the cause. A fresh
/// `parking_lot` convoy in a debug build read "CPU at or above 180% in 98%
/// of the samples" first.
///
/// [`queue_of_runnable_waiters`]: super::serialization::queue_of_runnable_waiters
fn saturated_by_spinning(cx: &Context<'_>) -> bool {
    let spun: f64 = cx
        .callsites()
        .filter_map(|(_, cs, row)| {
            let q = super::serialization::queue_of_runnable_waiters(cx, cs, row)?;
            Some(q.spinning_cores * (cx.live_window_ns(cs) / cx.run_wall_ns).min(1.0))
        })
        .sum();
    spun > 0.0 && cx.process.cpu_mean_percent - 100.0 * spun < cx.process.cpu_saturated_at_percent
}

static INFO: Info = Info {
    title: "process CPU saturation",
    innermost: false,
    supersedes: &[],
};

impl Detector for ProcessCpu {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn detect(&self, cx: &Context<'_>, found: &mut Vec<Finding>) {
        let s = &cx.config.classes.process_cpu;
        let p = &cx.process;
        let duration_ms = cx.dump.run.duration_ns as f64 / 1e6;
        let interval_ms = cx.dump.timeline.interval_ms as f64;
        // The share of samples at saturation; alerts alone count one
        // sampler interval each.
        let (share, confidence) = if p.samples >= 2 {
            let conf = stats::sample_confidence(p.samples as u64, s.half_confidence_samples);
            (
                p.cpu_saturated_share,
                if p.cpu_alerts > 0 {
                    conf.max(s.confidence_with_alerts)
                } else {
                    conf
                },
            )
        } else if p.cpu_alerts > 0 {
            (
                stats::share(p.cpu_alerts as f64 * interval_ms, duration_ms),
                s.confidence_with_alerts,
            )
        } else {
            (0.0, 0.0)
        };
        let fires = (p.samples >= 2 && share >= s.min_saturated_share)
            || (p.cpu_alerts > 0 && share > 0.0);
        if !fires || saturated_by_spinning(cx) {
            return;
        }
        let draft = Draft {
            class: Class::ProcessCpu,
            callsite: None,
            resource: Resource::WallTime,
            cost_share: share,
            recoverable: s.recoverable,
            confidence,
            summary: format!(
                "CPU at or above {:.0}% ({}) in {} of the samples (peak {:.0}%, {} CPU alerts)",
                p.cpu_saturated_at_percent,
                match (s.saturated_percent, p.cores) {
                    (Some(_), _) => "the configured level".to_owned(),
                    (None, Some(n)) => format!(
                        "{} of {n} cores",
                        units::pct(s.saturated_share_of_cores)
                    ),
                    (None, None) => "of one core, the core count unknown".to_owned(),
                },
                units::pct(share),
                p.cpu_max_percent,
                p.cpu_alerts
            ),
            evidence: vec![
                Evidence::new(
                    "saturated share of samples",
                    share,
                    Unit::Share,
                    Some(s.min_saturated_share),
                ),
                Evidence::new(
                    "saturated at",
                    p.cpu_saturated_at_percent,
                    Unit::CpuPercent,
                    None,
                ),
                Evidence::new("peak CPU", p.cpu_max_percent, Unit::CpuPercent, None),
                Evidence::new("mean CPU", p.cpu_mean_percent, Unit::CpuPercent, None),
                Evidence::new("CPU alerts", p.cpu_alerts as f64, Unit::Count, None),
            ],
        };
        found.push(cx.score(draft, advice));
    }

}

/// The plan step's advice for one of its findings.
fn advice(f: &Finding) -> Advice {
    Advice {
        statement: format!(
            "relieving {} of the saturated time ({} of the run's wall time) gives back {} of the run's wall time",
            units::pct(f.recoverable),
            units::pct(f.cost_share),
            units::pct(f.expected_gain())
        ),
        fixes: lines(&[
            "Start with the hot spots and hot loops of this plan: process CPU is their sum",
            "When the work is needed, give the process more cores or more instances: every core it can use was busy",
            "Rate-limit or apply backpressure to background work so it cannot starve latency-sensitive tasks",
        ]),
        prerequisites: lines(&[
            "Note the machine's core count and the sampler interval so runs are comparable",
        ]),
        check: "the share of saturated samples must fall".to_owned(),
        complexity: Effort::High,
        risk: Effort::Medium,
    }
}

#[cfg(test)]
mod tests {
    use crate::analyze::Class;
    use crate::analyze::test_dump::{MIB, assert_near, detect, dump, evidence, timeline};

    /// Eight samples on two cores (saturated at 180%), half of them at
    /// `busy` percent and half at 50%.
    fn run(busy: f64) -> perf_layer::dump::Dump {
        let mut d = dump(8_000_000_000, &[]);
        d.run.cores = Some(2);
        let samples: Vec<(u64, f64)> = (0..8)
            .map(|i| (100 * MIB, if i % 2 == 0 { busy } else { 50.0 }))
            .collect();
        timeline(&mut d, &samples);
        d
    }

    /// Half the samples at 190% of one core are saturated; at 179.9%, just
    /// under 90% of two cores, none is.
    #[test]
    fn finds_saturated_samples_and_not_ones_just_under_the_level() {
        let found = detect(Class::ProcessCpu, run(190.0));
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        assert_eq!(evidence(f, "saturated at"), 180.0);
        assert_near(f.cost_share, 0.5, 1e-9);
        // No alerts: 8 / (8 + 4).
        assert_near(f.confidence, 8.0 / 12.0, 1e-9);
        assert_eq!(f.recoverable, 0.25);

        assert!(detect(Class::ProcessCpu, run(179.9)).is_empty());
    }
}
