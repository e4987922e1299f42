//! Hot loop: very many cheap calls, each paying a per-call cost that
//! batching (or hoisting the span) removes. A more specific diagnosis of
//! the same self time than a hot spot, which it supersedes.
//!
//! The per-call cost it can see is the span's own instrumentation: the
//! layer's cost and tracing's (the registry's) for a span made in a loop,
//! both calibrated in-process on spans made back to back. It
//! is a hot loop where that is at least `min_instrumentation_share` of
//! each call; the gain is that instrumentation on every call (a lower
//! bound: per-call setup batching also hoists is not seen), plus
//! `recoverable` of the calls' self time where a user says so. A call of
//! a few microseconds of real work is a hot spot, not a hot loop: batching
//! it gives back a few percent (program 16 of the truth runs: 4 µs
//! records, 1.4 to 6% from batching them, where halving the per-call cost
//! was said to give 31.5%).
//!
//! The usual call's self time is its self time less the tail's excess
//! (such short spans are not timed on the CPU), so that a rare slow call
//! (a cache miss that sleeps) makes a tail latency finding, not a hot loop.

use serde::{Deserialize, Serialize};

use super::{Class, Detector, Info};
use crate::analyze::advice::{Advice, Effort, lines};
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
    /// ...whose instrumentation (the layer's and tracing's cost per span)
    /// is at least this share of each call, self time and instrumentation
    /// together... (0.25)
    pub min_instrumentation_share: f64,
    /// ...adding up to at least this share of the process's CPU time
    /// (0.02).
    pub min_share: f64,
    /// The share of the calls' self time batching gives back beside their
    /// instrumentation: per-call setup (look-ups, allocations) hoisted out
    /// of the loop (0: the report cannot see it, and its gain is the
    /// instrumentation's alone, a lower bound).
    pub recoverable: f64,
    /// How sure the finding is (0.9: the counts and the layer's cost are
    /// measured; the doubt is whether the items can be batched).
    pub confidence: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            min_calls: 10_000,
            max_mean_self_ns: 5_000.0,
            min_instrumentation_share: 0.25,
            min_share: 0.02,
            recoverable: 0.0,
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
        if cx.instrumentation_per_span() <= 0.0 {
            return;
        }
        for (i, cs, row) in cx.callsites() {
            // At the run's price where its timed callbacks say it was dearer.
            let layer_per_call = cx.instrumentation_per_span_of(cs);
            // The subscriber's other layers' work on each span, beside
            // perf-layer's and tracing's: a `lookup` span beside
            // `tracing-opentelemetry` idled 750 ns a call at its edges.
            let others = cx.other_layers_per_span(cs);
            let per_call = layer_per_call + others;
            let calls_f = cs.calls as f64;
            // The cost of the usual call: a rare slow call is a tail, not
            // per-call overhead, and the tail latency finding has it. Its
            // children's instrumentation runs while it is innermost and is
            // theirs (as for a hot spot): a fresh `handle` opening three
            // `encode` spans a call read "828 ns of self time each" and
            // 21.0% of the CPU, where its own part was 5.8%.
            let usual = cx.usual_cpu_ns(i);
            let body = (usual - cx.children_instrumentation_ns(cs.id)).max(0.0);
            let tail = row.self_cpu_ns - usual;
            let mean_self = stats::ratio(body, calls_f);
            let instrumented = per_call * calls_f;
            let instrumentation_share = stats::share(per_call, mean_self + per_call);
            // The calls' whole cost: their self time and, mostly outside it,
            // their instrumentation.
            let share = cx.time_share(body + instrumented).min(1.0);
            if cs.calls < s.min_calls
                || mean_self > s.max_mean_self_ns
                || instrumentation_share < s.min_instrumentation_share
                || share < s.min_share
            {
                continue;
            }
            let body_recoverable = s.recoverable.clamp(0.0, 1.0);
            let recoverable = stats::share(
                instrumented + body_recoverable * body,
                body + instrumented,
            );
            let evidence = vec![
                Evidence::new("calls", calls_f, Unit::Count, Some(s.min_calls as f64)),
                Evidence::new(
                    "mean self time per call",
                    mean_self,
                    Unit::Ns,
                    Some(s.max_mean_self_ns),
                ),
                Evidence::new("instrumentation per call", per_call, Unit::Ns, None),
                Evidence::new(
                    "instrumentation share of each call",
                    instrumentation_share,
                    Unit::Share,
                    Some(s.min_instrumentation_share),
                ),
                Evidence::new(
                    &format!("share of {share_of}"),
                    share,
                    Unit::Share,
                    Some(s.min_share),
                ),
            ];
            let draft = Draft {
                class: Class::HotLoop,
                callsite: Some((cs.id, row.location.clone())),
                resource: Resource::Time,
                cost_share: share,
                recoverable,
                confidence: s.confidence,
                summary: format!(
                    "{} calls at {} of self time each{} and {} of instrumentation ({}) add up to {} of {share_of}",
                    units::count(calls_f),
                    units::ns(mean_self),
                    if tail > 0.1 * row.self_cpu_ns {
                        " (beside its tail)"
                    } else {
                        ""
                    },
                    units::ns(per_call),
                    if others > 0.0 {
                        format!(
                            "the layer's and tracing's, and {} of the subscriber's other layers between its creation and close, an OpenTelemetry exporter's, say",
                            units::ns(others)
                        )
                    } else {
                        "the layer's and tracing's".to_owned()
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
    let per_call = f
        .evidence
        .iter()
        .find(|e| e.metric == "instrumentation per call")
        .map_or(0.0, |e| e.value);
    Advice {
        statement: format!(
            "{name}'s calls take {cost} of {of}, {} of each in instrumentation: batching them (or hoisting the span out of the loop) saves at least {} of {of}, more if per-call setup moves out too",
            units::ns(per_call),
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

    /// 50,000 calls of 1 µs, each with 400 ns of instrumentation (29% of a
    /// call), are a hot loop that gives back that instrumentation; 9,999
    /// such calls, one short of 10,000, are not, nor are 50,000 calls of
    /// 5 µs (7% of each call instrumentation: a hot spot's business).
    #[test]
    fn finds_many_cheap_calls_and_not_one_call_fewer() {
        let mut d = dump(
            2_000 * MS,
            &[
                Span::new("work", &[(MS, 100)]),
                Span::new("loop", &[(US, 50_000)]),
                // 3% of the CPU with its instrumentation: out only by count.
                Span::new("almost", &[(US, 9_999)]),
                Span::new("dearer", &[(5 * US, 50_000)]),
            ],
        );
        d.overhead.loop_per_span_ns = 400.0;
        d.overhead.floor_per_span_ns = 0.0;
        let found = detect(Class::HotLoop, d);
        assert_eq!(found.len(), 1, "{found:?}");
        let f = about(&found, "loop").unwrap();
        assert_eq!(evidence(f, "calls"), 50_000.0);
        assert_eq!(evidence(f, "mean self time per call"), 1_000.0);
        assert_eq!(evidence(f, "instrumentation per call"), 400.0);
        // The instrumentation alone comes back: 400 of each 1,400 ns.
        assert_near(f.recoverable, 400.0 / 1_400.0, 1e-9);
        assert!(f.advice.check.contains("`loop`'s call count"), "{}", f.advice.check);
    }

    /// `handle`, 20,000 calls of 1.3 µs of self time, opens three child
    /// spans a call whose instrumentation (3 × 400 ns) runs while it is
    /// innermost: its own work is 100 ns a call, and its share is its own
    /// instrumentation and that, not its children's.
    #[test]
    fn a_parent_s_self_time_leaves_its_children_s_instrumentation_out() {
        let mut d = dump(
            2_000 * MS,
            &[
                Span::new("handle", &[(1_300, 20_000)]),
                Span::new("encode", &[(2 * US, 60_000)]),
            ],
        );
        d.overhead.loop_per_span_ns = 400.0;
        d.overhead.floor_per_span_ns = 0.0;
        let found = detect(Class::HotLoop, d);
        let f = about(&found, "handle").unwrap();
        assert_near(evidence(f, "mean self time per call"), 100.0, 1e-6);
        // (100 + 400) ns × 20,000 of the spans' self time (no process CPU
        // in this dump); 23% with its children's instrumentation counted.
        let want = 20_000.0 * 500.0 / (20_000.0 * 1_300.0 + 60_000.0 * 2_000.0);
        assert_near(f.cost_share, want, 1e-6);
    }

    /// `eval`, 30,000 calls of 1.2 µs of self time, recurses: 20,000 of
    /// them open under another `eval` (and `job` opens 10,000), whose
    /// instrumentation (400 ns each) runs while their parent level is
    /// innermost. Its own work is 1.2 µs less 20,000 × 400 ns over 30,000
    /// calls (933 ns); counted as its own, the 8 ms of its levels'
    /// instrumentation made its calls 35.3% of the spans' time where they
    /// are 29.4%.
    #[test]
    fn a_recursive_span_s_levels_are_its_children() {
        let mut d = dump(
            2_000 * MS,
            &[
                Span::new("job", &[(MS, 100)]),
                Span::new("eval", &[(1_200, 30_000)]),
            ],
        );
        d.edges[0].calls = 10_000;
        d.edges.push(perf_layer::dump::CallEdge {
            parent: 1,
            child: 1,
            calls: 20_000,
            child_busy_ns: 0,
            outlived: 0,
        });
        d.overhead.loop_per_span_ns = 400.0;
        d.overhead.floor_per_span_ns = 0.0;
        let found = detect(Class::HotLoop, d);
        let f = about(&found, "eval").unwrap();
        let own = 1_200.0 - 20_000.0 * 400.0 / 30_000.0;
        assert_near(evidence(f, "mean self time per call"), own, 1e-6);
        let total = 100.0 * MS as f64 + 30_000.0 * 1_200.0;
        assert_near(f.cost_share, 30_000.0 * (own + 400.0) / total, 1e-6);
    }

    /// `lookup`, 60,000 calls of 2 µs entered once each, idles 750 ns a
    /// call at its edges beside an OpenTelemetry layer: 350 ns beyond the
    /// layer's own 400 is the other layers' work on each span, which makes
    /// its instrumentation 27% of a call, a hot loop, said. Without the
    /// idle time it is 17%, none; polled three times a call (an async span,
    /// whose idle time is its awaits), none either.
    #[test]
    fn other_layers_work_on_each_span_is_instrumentation() {
        let with = |idle_ns: u64, intervals_per_call: u64| {
            let mut d = dump(
                2_000 * MS,
                &[
                    Span::new("handle", &[(1_300, 20_000)]),
                    Span::new("lookup", &[(2 * US, 60_000)]).idle(idle_ns),
                ],
            );
            d.callsites[1].intervals = Some(60_000 * intervals_per_call);
            d.overhead.loop_per_span_ns = 400.0;
            d.overhead.floor_per_span_ns = 0.0;
            detect(Class::HotLoop, d)
        };
        let found = with(750, 1);
        let f = about(&found, "lookup").unwrap();
        assert_eq!(evidence(f, "instrumentation per call"), 750.0);
        assert!(f.summary.contains("and 350 ns of the subscriber's other layers"), "{}", f.summary);
        assert!(about(&with(0, 1), "lookup").is_none());
        assert!(about(&with(750, 3), "lookup").is_none());
    }
}
