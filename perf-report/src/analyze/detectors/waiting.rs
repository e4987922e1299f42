//! Waiting, not working: a span that exists far longer than it is entered,
//! with enough idle time to matter to the run.

use serde::{Deserialize, Serialize};

use super::{Class, Detector, Info};
use crate::analyze::advice::{Advice, Effort, lines};
use crate::analyze::context::Context;
use crate::analyze::finding::{Draft, Evidence, Finding, Resource};
use crate::stats;
use crate::units::{self, Unit};

/// When a callsite is waiting, not working.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Settings {
    /// Idle time is at least this share of its wall time... (default 0.5)
    pub min_idle_ratio: f64,
    /// ...and at least this share of the run's wall time (0.05).
    pub min_share: f64,
    /// The share of the idle time overlapping or unblocking gives back (0.5).
    pub recoverable: f64,
    /// Confidence is the idle ratio x `calls / (calls + this)` (2).
    pub half_confidence_calls: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            min_idle_ratio: 0.5,
            min_share: 0.05,
            recoverable: 0.5,
            half_confidence_calls: 2.0,
        }
    }
}

pub(crate) struct Waiting;

static INFO: Info = Info {
    title: "waiting, not working",
    innermost: true,
    supersedes: &[],
};

impl Detector for Waiting {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn detect(&self, cx: &Context<'_>, found: &mut Vec<Finding>) {
        let s = &cx.config.classes.waiting;
        let utilization = cx.totals.utilization;
        for (_, cs, row) in cx.callsites() {
            let idle_ratio = row.idle_share;
            let wait_share = stats::share(cs.idle_ns.sum as f64, cx.run_wall_ns);
            if idle_ratio < s.min_idle_ratio || wait_share < s.min_share {
                continue;
            }
            // Concurrent tasks wait at the same time, and a wait overlapped
            // by other work is not on the critical path: waiting can give
            // back at most the wall time in which the process left its
            // threads' cores idle (utilisation from the process's CPU), and
            // never more than the part of the run its spans were live in
            // (a phase of the run, however many tasks waited in it).
            let live_share = cs
                .active
                .map(|a| stats::share(a.len_ns() as f64, cx.run_wall_ns).min(1.0));
            let wait_cost = wait_share
                .min(1.0 - utilization)
                .min(live_share.unwrap_or(1.0));
            let phase = match live_share {
                Some(live) if live < 1.0 - utilization && live < wait_share => format!(
                    "; its spans were live in only {} of the run's wall time, so waiting can give back at most that",
                    units::pct(live)
                ),
                _ => format!(
                    "; the process kept {} of its threads' cores busy over the run's wall time, so waiting can give back at most {} of it",
                    units::pct(utilization),
                    units::pct(wait_cost)
                ),
            };
            let draft = Draft {
                class: Class::Waiting,
                callsite: Some((cs.id, row.location.clone())),
                resource: Resource::WallTime,
                cost_share: wait_cost,
                recoverable: s.recoverable,
                confidence: idle_ratio
                    * stats::sample_confidence(cs.calls, s.half_confidence_calls),
                summary: format!(
                    "idle {} of its wall time ({} idle in total){phase}",
                    units::pct(idle_ratio),
                    units::ns(cs.idle_ns.sum as f64),
                ),
                evidence: vec![
                    Evidence::new(
                        "idle / wall",
                        idle_ratio,
                        Unit::Share,
                        Some(s.min_idle_ratio),
                    ),
                    Evidence::new(
                        "idle share of the run",
                        wait_share,
                        Unit::Share,
                        Some(s.min_share),
                    ),
                    Evidence::new(
                        "utilisation of the threads' cores",
                        utilization,
                        Unit::Share,
                        None,
                    ),
                    Evidence::new("busy time", cs.busy_ns.sum as f64, Unit::Ns, None),
                ]
                .into_iter()
                .chain(live_share.map(|live| {
                    Evidence::new("live share of the run's wall time", live, Unit::Share, None)
                }))
                .chain([
                    Evidence::new("idle time", cs.idle_ns.sum as f64, Unit::Ns, None),
                ])
                .collect(),
            };
            found.push(cx.score(draft, advice));
        }
    }

}

/// The plan step's advice for one of its findings.
fn advice(f: &Finding) -> Advice {
    let name = f.subject().in_prose();
    Advice {
        statement: format!(
            "overlapping or unblocking {} of {name}'s waiting ({} of the run's wall time) shortens the run by {}",
            units::pct(f.recoverable),
            units::pct(f.cost_share),
            units::pct(f.expected_gain())
        ),
        fixes: lines(&[
            "Move blocking calls off async worker threads with `tokio::task::spawn_blocking`, or use the async version of the API",
            "Overlap independent waits: `tokio::join!` or `futures::future::join_all` instead of awaiting one after another",
            "Bound the queue it waits on (a bounded `tokio::sync::mpsc::channel`) and size pools and semaphores so producers and consumers keep pace",
            "Shorten lock hold times: never hold a `Mutex` guard across `.await` or I/O; use `RwLock` or sharding for read-mostly state",
        ]),
        prerequisites: vec![format!(
            "Know what {name} waits on: add child spans around each `.await`, lock and I/O call"
        )],
        check: format!("{name}'s idle share of wall time must fall"),
        complexity: Effort::Medium,
        risk: Effort::Medium,
    }
}

#[cfg(test)]
mod tests {
    use crate::analyze::Class;
    use crate::analyze::test_dump::{MS, US, Span, about, assert_near, detect, dump, evidence};

    /// `wait` is idle 90% of its wall time, 9% of the run; `near` is idle
    /// 49% of its wall time (960 µs of 1.96 ms), 9.6% of the run.
    #[test]
    fn finds_a_span_idle_most_of_its_life_and_not_one_idle_just_under_half() {
        let found = detect(
            Class::Waiting,
            dump(
                1_000 * MS,
                &[
                    Span::new("wait", &[(MS, 10)]).idle(9 * MS),
                    Span::new("near", &[(MS, 100)]).idle(960 * US),
                ],
            ),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        let f = about(&found, "wait").unwrap();
        assert_near(evidence(f, "idle / wall"), 0.9, 1e-9);
        // 90 ms idle of the run's 1 s; 110 ms busy of it leaves 89% idle.
        assert_near(f.cost_share, 0.09, 1e-9);
        assert_near(f.confidence, 0.9 * 10.0 / 12.0, 1e-9);
    }
}
