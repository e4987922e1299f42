//! Hot loop: very many cheap calls whose per-call cost (setup,
//! instrumentation) adds up; batching is the fix. A more specific diagnosis
//! of the same self time than a hot spot, which it supersedes.
//!
//! The per-call cost is the usual call's (self time less the tail's excess:
//! such short spans are not timed on the CPU), so that a rare slow call (a
//! cache miss that sleeps) makes a tail latency finding, not a hot loop.

use serde::{Deserialize, Serialize};

use super::{Class, Detector, Info};
use crate::analyze::advice::{Advice, Effort, lines, speedup_phrase};
use crate::analyze::context::Context;
use crate::analyze::finding::{Draft, Evidence, Finding, Resource};
use crate::stats;
use crate::units::{self, Unit};

/// When a callsite is a hot loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Settings {
    /// At least this many calls... (default 10,000)
    pub min_calls: u64,
    /// ...each costing at most this much self time on average, beside the
    /// tail, ns... (5,000)
    pub max_mean_self_ns: f64,
    /// ...adding up to at least this share of the process's CPU time (0.02).
    pub min_share: f64,
    /// The share of the self time batching gives back (0.5: it halves the
    /// per-call cost).
    pub recoverable: f64,
    /// How sure the finding is (0.9: the counts are exact; the doubt is
    /// whether the items can be batched).
    pub confidence: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            min_calls: 10_000,
            max_mean_self_ns: 5_000.0,
            min_share: 0.02,
            recoverable: 0.5,
            confidence: 0.9,
        }
    }
}

pub(crate) struct HotLoop;

static INFO: Info = Info {
    title: "hot loop",
    innermost: false,
    supersedes: &[Class::HotSpot],
};

impl Detector for HotLoop {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn detect(&self, cx: &Context<'_>, found: &mut Vec<Finding>) {
        let s = &cx.config.classes.hot_loop;
        let share_of = cx.share_of(Resource::Time);
        for (i, cs, row) in cx.callsites() {
            let calls_f = cs.calls as f64;
            // The cost of the usual call: a rare slow call is a tail, not
            // per-call overhead, and the tail latency finding has it.
            let body = cx.usual_cpu_ns(i);
            let tail = row.self_cpu_ns - body;
            let mean_self = stats::ratio(body, calls_f);
            let share = cx.time_share(body);
            if cs.calls < s.min_calls || mean_self > s.max_mean_self_ns || share < s.min_share {
                continue;
            }
            let mut evidence = vec![
                Evidence::new("calls", calls_f, Unit::Count, Some(s.min_calls as f64)),
                Evidence::new(
                    "mean self time per call",
                    mean_self,
                    Unit::Ns,
                    Some(s.max_mean_self_ns),
                ),
                Evidence::new(
                    &format!("share of {share_of}"),
                    share,
                    Unit::Share,
                    Some(s.min_share),
                ),
            ];
            if cx.per_span_ns > 0.0 {
                evidence.push(Evidence::new(
                    "instrumentation share of each call",
                    stats::share(cx.per_span_ns, mean_self + cx.per_span_ns),
                    Unit::Share,
                    None,
                ));
            }
            let draft = Draft {
                class: Class::HotLoop,
                callsite: Some((cs.id, row.location.clone())),
                resource: Resource::Time,
                cost_share: share,
                recoverable: s.recoverable,
                confidence: s.confidence,
                summary: format!(
                    "{} calls at {} each{} add up to {} of {share_of}",
                    units::count(calls_f),
                    units::ns(mean_self),
                    if tail > 0.1 * row.self_cpu_ns {
                        " (beside its tail)"
                    } else {
                        ""
                    },
                    units::pct(share)
                ),
                evidence,
            };
            found.push(cx.score(draft, advice));
        }
    }

}

/// The plan step's advice for one of its findings.
fn advice(f: &Finding) -> Advice {
    let name = f.subject().in_prose();
    let of = &f.share_of;
    let cost = units::pct(f.cost_share);
    Advice {
        statement: format!(
            "{} the per-call cost of {name} ({cost} of {of}) by batching saves {} of {of}",
            speedup_phrase(f.recoverable),
            units::pct(f.expected_gain())
        ),
        fixes: lines(&[
            "Batch: process items in chunks (`chunks(256)`, a `Vec` of work) with one call and one span per batch instead of one per item",
            "Hoist the span out of the loop, or lower it to `trace` and filter it out where it is not needed: per-call instrumentation is part of the cost",
            "Strip per-call setup from the loop body: look-ups, lock acquisitions and allocations that could be done once outside",
        ]),
        prerequisites: vec![format!(
            "Check that {name}'s items can be handled together (no per-item ordering or error-handling requirement)"
        )],
        check: format!("{name}'s call count or its self time ({cost} of {of}) must fall"),
        complexity: Effort::Low,
        risk: Effort::Low,
    }
}

#[cfg(test)]
mod tests {
    use crate::analyze::Class;
    use crate::analyze::test_dump::{MS, US, Span, about, assert_near, detect, dump, evidence};

    /// 50,000 calls of 1 µs (5% of the time) are a hot loop; 9,999 calls
    /// of 5 µs, as much time but one call short of 10,000, are not.
    #[test]
    fn finds_many_cheap_calls_and_not_one_call_fewer() {
        let found = detect(
            Class::HotLoop,
            dump(
                2_000 * MS,
                &[
                    Span::new("work", &[(MS, 900)]),
                    Span::new("loop", &[(US, 50_000)]),
                    Span::new("almost", &[(5 * US, 9_999)]),
                ],
            ),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        let f = about(&found, "loop").unwrap();
        assert_near(f.cost_share, 50.0 / 999.995, 1e-9);
        assert_eq!(evidence(f, "calls"), 50_000.0);
        assert_eq!(evidence(f, "mean self time per call"), 1_000.0);
        assert_eq!((f.recoverable, f.confidence), (0.5, 0.9));
        assert!(f.advice.check.contains("`loop`'s call count"), "{}", f.advice.check);
    }
}
