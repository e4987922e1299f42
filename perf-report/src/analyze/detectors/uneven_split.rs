//! Uneven split: a span that splits its work into parts run side by side
//! (threads it spawns, tasks it joins, each part a child span) and lasts as
//! long as the slowest part, while the others finish early and their cores
//! idle.
//!
//! Read from the call edges: a parent that opens at least
//! `min_parts_per_call` spans of one child callsite a call, whose wall time
//! under it adds up to more than the parent's (`min_overlap`: they ran side
//! by side), and that compute (busy at least `min_busy_share` of their wall
//! time: parts that wait, a fan-out of requests, are `waiting`'s, whose
//! slowest call the waiting finding names), the slowest of them about as
//! long as the parent's longest call (it sets the parent's time: a
//! server's span open through the run, its requests computing side by
//! side, is as long as the run). Split evenly, the parent would
//! last about the parts' mean wall time, or what the cores can carry of
//! their CPU (their busy time over the process's cores), whichever is
//! longer: the gain is the parent's wall time beyond that, a share of the
//! run's wall time by the part of the run the parent's calls fill.
//!
//! A fresh batch sorting 4,000 items by size, splitting them in halves by
//! index for two threads: one `worker_batch` held all the dear items (1.26
//! s against 0.12 s), and the report read a hot spot alone. Dealing the
//! items out in turn took 0.70 s, 45% less; this reads "an even split takes
//! 690 ms a call" of 1.26 s (45.2%).
//!
//! Many small parts (a `par_iter` with a span per item) are bound by the
//! cores, not by the slowest part, and give nothing here; so do parts on a
//! saturated machine, where the cores' bound is the parent's time already.

use serde::{Deserialize, Serialize};

use super::{Class, Detector, Info};
use crate::analyze::advice::{Advice, Effort, lines};
use crate::analyze::context::Context;
use crate::analyze::finding::{Draft, Evidence, Finding, Resource};
use crate::stats;
use crate::units::{self, Unit};

/// When a split is uneven.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Settings {
    /// At least this many parts (spans of one child callsite) a call of
    /// the parent (default 2).
    pub min_parts_per_call: f64,
    /// The parts' wall time under the parent is at least this many times
    /// the parent's (1.05): they ran side by side.
    pub min_overlap: f64,
    /// The parts are busy at least this share of their wall time (0.5):
    /// they compute, not wait.
    pub min_busy_share: f64,
    /// The parent's wall time beyond an even split is at least this share
    /// of the run's wall time (0.05).
    pub min_share: f64,
    /// The share of that time an even split gives back (0.8: parts are
    /// never quite even).
    pub recoverable: f64,
    /// Confidence is `calls / (calls + this)` over the parts (4).
    pub half_confidence_parts: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            min_parts_per_call: 2.0,
            min_overlap: 1.05,
            min_busy_share: 0.5,
            min_share: 0.05,
            recoverable: 0.8,
            half_confidence_parts: 4.0,
        }
    }
}

/// The slowest part's wall time is at least this share of the parent's
/// longest call.
const SLOWEST_SETS: f64 = 0.75;

/// Parts timed on the CPU whose slowest took under this many times their
/// mean time on the CPU (1.25) did even work: a slowest part longer than
/// the rest in wall time was preempted longer, not given more. A dealt,
/// even split read as uneven in a full test run, its threads preempted by
/// the other tests'.
const UNEVEN_WORK: f64 = 1.25;

/// Whether `child`'s parts did about even work by their time on the CPU
/// ([`UNEVEN_WORK`]), where each was timed, in one interval a span; `false`
/// where that is not known.
fn even_work(child: &perf_layer::dump::CallsiteStats) -> bool {
    let Some(c) = &child.cpu else { return false };
    let whole = c.timed_calls >= 2 && c.untimed_intervals == 0 && c.intervals <= c.timed_calls;
    whole && (c.on_cpu_ns.max as f64) < UNEVEN_WORK * c.on_cpu_ns.mean
}

pub(crate) struct UnevenSplit;

static INFO: Info = Info {
    title: "uneven split",
    innermost: false,
    supersedes: &[],
};

impl Detector for UnevenSplit {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn detect(&self, cx: &Context<'_>, found: &mut Vec<Finding>) {
        let s = &cx.config.classes.uneven_split;
        if cx.run_wall_ns <= 0.0 {
            return;
        }
        let cores = cx.cores();
        for (_, parent, row) in cx.callsites() {
            if parent.calls == 0 || parent.wall_ns.sum == 0 {
                continue;
            }
            let parent_wall = parent.wall_ns.sum as f64;
            // The child callsite whose parts leave the most wall time.
            let best = cx
                .child_edges(parent.id)
                .filter_map(|e| {
                    let at = cx.index_of(e.child)?;
                    let child = &cx.dump.callsites[at];
                    let share = stats::share(e.calls.min(child.calls) as f64, child.calls as f64);
                    let parts = e.calls as f64 / parent.calls as f64;
                    let wall = child.wall_ns.sum as f64 * share;
                    let busy = child.busy_ns.sum as f64 * share;
                    let overlap = stats::ratio(wall, parent_wall);
                    // The slowest part sets the parent's time: a server's
                    // span open through the run, its requests computing
                    // side by side, lasts as long as the run, not as its
                    // slowest request.
                    let sets = child.wall_ns.max as f64 >= SLOWEST_SETS * parent.wall_ns.max as f64;
                    if parts < s.min_parts_per_call
                        || overlap < s.min_overlap
                        || stats::share(busy, wall) < s.min_busy_share
                        || !sets
                        || even_work(child)
                    {
                        return None;
                    }
                    // An even split lasts the parts' mean wall time, or
                    // what the cores carry of their busy time.
                    let even = (wall / parts).max(busy / cores.min(parts));
                    let beyond = parent_wall - even;
                    Some((e, at, parts, overlap, even, beyond))
                })
                .max_by(|a, b| a.5.total_cmp(&b.5));
            let Some((edge, at, parts, overlap, even, beyond)) = best else {
                continue;
            };
            let share = stats::share(beyond, cx.run_wall_ns).min(1.0);
            if share < s.min_share {
                continue;
            }
            let calls = parent.calls as f64;
            let child_label = cx.rows[at].location.label.clone();
            let draft = Draft {
                class: Class::UnevenSplit,
                callsite: Some((parent.id, row.location.clone())),
                resource: Resource::WallTime,
                cost_share: share,
                recoverable: s.recoverable,
                confidence: stats::sample_confidence(edge.calls, s.half_confidence_parts),
                summary: format!(
                    "it runs {parts:.1} `{child_label}` spans a call side by side ({overlap:.2} at a time on average) that compute, and lasts as long as the slowest: {} a call where an even split takes {} (their mean wall time, or their CPU over {} cores), {} of its wall time beyond it",
                    units::ns(parent_wall / calls),
                    units::ns(even / calls),
                    if cores.is_finite() {
                        format!("{cores:.0}")
                    } else {
                        "the".to_owned()
                    },
                    units::pct(stats::share(beyond, parent_wall)),
                ),
                evidence: vec![
                    Evidence::new(
                        "parts per call",
                        parts,
                        Unit::Number,
                        Some(s.min_parts_per_call),
                    ),
                    Evidence::new(
                        "parts' wall time over the parent's",
                        overlap,
                        Unit::Ratio,
                        Some(s.min_overlap),
                    ),
                    Evidence::new("wall time a call", parent_wall / calls, Unit::Ns, None),
                    Evidence::new("an even split a call", even / calls, Unit::Ns, None),
                    Evidence::new(
                        "share of the run's wall time beyond it",
                        share,
                        Unit::Share,
                        Some(s.min_share),
                    ),
                ],
            };
            found.push(cx.score(draft, |f| advice(f, &child_label)));
        }
    }
}

/// The plan step's advice for one of its findings.
fn advice(f: &Finding, part: &str) -> Advice {
    let name = f.subject().in_prose();
    Advice {
        statement: format!(
            "splitting {name}'s work evenly across its `{part}` parts gives back {} of its time beyond an even split ({} of {}) and shortens the run by {}",
            units::pct(f.recoverable),
            units::pct(f.cost_share),
            f.share_of,
            units::pct(f.expected_gain())
        ),
        fixes: lines(&[
            "Split by work, not by count: a shared queue the workers take from, or work stealing (rayon's `par_iter`, `par_chunks` with small chunks)",
            "Make many more parts than threads, so no one part dominates; or deal the items out in turn (item i to worker i mod n), dearest first when their cost is known",
            "Where one item is itself the slow part, split that item",
        ]),
        prerequisites: vec![format!(
            "Know which parts are slow: record each part's size or key as a field of its `{part}` span (`PerfLayer::builder().group_by([...])` gives each its row)"
        )],
        check: format!("{name}'s wall time a call must fall towards the even split"),
        complexity: Effort::Low,
        risk: Effort::Low,
    }
}

#[cfg(test)]
mod tests {
    use crate::analyze::Class;
    use crate::analyze::test_dump::{MS, Span, about, assert_near, detect, dump, evidence, hist};

    /// `run_all`, one call of 1.26 s, splits its work in two
    /// `worker_batch` parts side by side, 1.26 s and 120 ms, both
    /// computing, on two cores: an even split takes 690 ms. Even halves
    /// (690 ms each) are none, nor are two parts that wait (a fan-out of
    /// requests), nor parts one after another.
    #[test]
    fn finds_a_parent_as_slow_as_its_slowest_part_and_not_an_even_one() {
        let with = |parts: &[(u64, u64)], parent_ms: u64, idle: u64| {
            let mut d = dump(
                1_300 * MS,
                &[
                    Span::new("run_all", &[(parent_ms * MS, 1)]),
                    Span::new("worker_batch", parts).idle(idle),
                ],
            );
            d.run.cores = Some(2);
            detect(Class::UnevenSplit, d)
        };
        let found = with(&[(1_260 * MS, 1), (120 * MS, 1)], 1_260, 0);
        let f = about(&found, "run_all").unwrap();
        assert_near(evidence(f, "an even split a call"), 690e6, 1.0);
        assert_near(f.cost_share, 570.0 / 1_300.0, 1e-9);
        assert!(f.summary.contains("it runs 2.0 `worker_batch` spans a call side by side"), "{}", f.summary);

        assert!(with(&[(690 * MS, 2)], 690, 0).is_empty());
        // Parts that wait: 100 ms busy of 1.26 s and of 120 ms.
        assert!(with(&[(100 * MS, 1), (10 * MS, 1)], 1_260, 1_100 * MS).is_empty());
        // One after another: their wall time adds up to the parent's.
        assert!(with(&[(1_140 * MS, 1), (120 * MS, 1)], 1_260, 0).is_empty());
    }

    /// Two parts of 700 and 560 ms side by side in a 700 ms call (an even
    /// split, 630 ms, is 5.4% of the run shorter), timed on the CPU: 690
    /// and 300 ms there, uneven work. With 550 and 540 ms there, the work
    /// was even and the slow part preempted longer (other load on the
    /// machine): none.
    #[test]
    fn parts_of_even_work_on_the_cpu_are_no_uneven_split() {
        let with = |cpu_ms: [u64; 2]| {
            let mut d = dump(
                1_300 * MS,
                &[
                    Span::new("run_all", &[(700 * MS, 1)]),
                    Span::new("worker_batch", &[(700 * MS, 1), (560 * MS, 1)])
                        .on_cpu((cpu_ms[0] + cpu_ms[1]) * MS, 0, 0, 0),
                ],
            );
            d.run.cores = Some(2);
            d.callsites[1].cpu.as_mut().unwrap().on_cpu_ns =
                hist(&[(cpu_ms[0] * MS, 1), (cpu_ms[1] * MS, 1)]);
            detect(Class::UnevenSplit, d)
        };
        assert!(about(&with([690, 300]), "run_all").is_some());
        assert!(with([550, 540]).is_empty());
    }

    /// A server's span open through a 3 s run, its 30,000 requests of 150
    /// µs computing 1.5 at a time: its time is the run's, not its slowest
    /// request's, and no split is uneven.
    #[test]
    fn a_long_lived_parent_of_many_requests_is_no_split() {
        let mut d = dump(
            3_000 * MS,
            &[
                Span::new("serve", &[(3_000 * MS, 1)]),
                Span::new("handle", &[(150_000, 30_000)]),
            ],
        );
        d.run.cores = Some(2);
        assert!(detect(Class::UnevenSplit, d).is_empty());
    }

    /// Forty parts of 25 ms a call on two cores are bound by the cores (500
    /// ms), not by their 25 ms mean: a parent of 520 ms is no finding.
    #[test]
    fn many_small_parts_are_bound_by_the_cores() {
        let mut d = dump(
            600 * MS,
            &[
                Span::new("run_all", &[(520 * MS, 1)]),
                Span::new("item", &[(25 * MS, 40)]),
            ],
        );
        d.run.cores = Some(2);
        assert!(detect(Class::UnevenSplit, d).is_empty());
    }
}
