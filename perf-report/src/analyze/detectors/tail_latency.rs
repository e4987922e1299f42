//! Tail latency: a busy-time distribution whose p99 or maximum is far above
//! its median, with enough time in the tail to matter.
//!
//! The part of a tail that preemption explains (the slowest spans were
//! preempted beyond the usual: other threads, other processes, the
//! hypervisor took their CPU) is the machine's, not the span's:
//! `cpu_contention` reports it. A tail that preemption explains almost all
//! of (`max_preempted_share`) is no finding; otherwise the cost is the
//! excess preemption does not explain, so a real tail (a rare call that
//! blocks or computes more) is still found on a busy machine. Measured on a
//! 2-core VM with two CPU hogs beside the tests: a tail of preemption alone
//! was 95% explained, a rare 4 ms sleep under the same load 52 to 74%.
//!
//! The cost is also only the tail of the span's own time: a parent whose
//! slow calls are its children's (tower-http's `request` around a slow
//! handler) inherits their tail in its busy time but has none in its self
//! time, and the children's findings carry it. Such a tail is said once in
//! the notes, naming the child that holds most of it (`children_s_tail`).

use serde::{Deserialize, Serialize};

use super::{Class, Detector, InPoll, Info, Stall, in_poll};
use crate::analyze::advice::{Advice, Effort, lines};
use crate::analyze::busy_cores::BusyCores;
use crate::analyze::context::Context;
use crate::analyze::rows::CallsiteRow;
use crate::analyze::finding::{Draft, Evidence, Finding, Resource};
use crate::stats;
use perf_layer::dump::CallsiteStats;
use crate::units::{self, Unit};

/// When a callsite has a bad tail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Settings {
    /// At least this many calls, so that p99 means something (default 20).
    pub min_calls: u64,
    /// Busy p99 at least this many times busy p50... (5)
    pub p99_over_p50: f64,
    /// ...or busy max at least this many times busy p50 (20).
    pub max_over_p50: f64,
    /// The tail's excess time, `Σ max(0, v − p90)` over the busy histogram,
    /// is at least this share of the process's CPU time (0.01).
    pub min_share: f64,
    /// Not a tail of the span when preemption explains at least this share
    /// of the excess (0.85), for spans timed on the CPU.
    pub max_preempted_share: f64,
    /// The share of the tail's excess a fix removes (0.8).
    pub recoverable: f64,
    /// Confidence is `calls / (calls + this)` (50: half sure at 50 calls).
    pub half_confidence_calls: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            min_calls: 20,
            p99_over_p50: 5.0,
            max_over_p50: 20.0,
            min_share: 0.01,
            max_preempted_share: 0.85,
            recoverable: 0.8,
            half_confidence_calls: 50.0,
        }
    }
}

pub(crate) struct TailLatency;

/// A tail whose excess is at least this share blocked time (off the CPU,
/// not preempted: the span's blocked self time, over its tail's excess) is
/// a blocking tail, costed over the recording threads' wall time.
const BLOCKED_TAIL: f64 = 0.5;

/// Why a tail is known to be spent off the CPU.
enum BlockedTail {
    /// The span's blocked self time over its tail's excess, at least
    /// [`BLOCKED_TAIL`].
    Measured(f64),
    /// Not timed on the CPU, but its tail's excess over the process's CPU
    /// time the spans timed on it left is at least `1 / (1 - BLOCKED_TAIL)`:
    /// the CPU could hold no more than the rest of it.
    BeyondTheCpu(f64),
}

impl BlockedTail {
    fn evidence(&self) -> Evidence {
        match *self {
            BlockedTail::Measured(r) => Evidence::new(
                "blocked self time over the tail's excess",
                r,
                Unit::Ratio,
                Some(BLOCKED_TAIL),
            ),
            BlockedTail::BeyondTheCpu(r) => Evidence::new(
                "the tail's excess over the CPU time the timed spans left",
                r,
                Unit::Ratio,
                Some(1.0 / (1.0 - BLOCKED_TAIL)),
            ),
        }
    }
}

/// Whether callsite `row`'s tail (its unexplained excess, `excess` ns) is
/// spent off the CPU: by its measured blocked time, or, where it was not
/// timed, by an excess the process's CPU time could not have held, less
/// what the spans timed on the CPU were measured to spend there. A fresh
/// service's `audit_log` (a 3 ms sleep in one call in ten, too rare for
/// its sample) had a tail of 1.01 s in a process of 0.93 s of CPU, 0.68 s
/// of it a timed span's: "80% of the process's CPU time" was a sleep.
fn blocked_tail(cx: &Context<'_>, row: &CallsiteRow, excess: f64) -> Option<BlockedTail> {
    if excess <= 0.0 {
        return None;
    }
    match &row.cpu {
        Some(c) => {
            let r = c.self_blocked_ns / excess;
            (r >= BLOCKED_TAIL).then_some(BlockedTail::Measured(r))
        }
        None => {
            let r = excess / cx.cpu_left_by_timed_spans()?;
            (r >= 1.0 / (1.0 - BLOCKED_TAIL)).then_some(BlockedTail::BeyondTheCpu(r))
        }
    }
}

/// The share of a callsite's busy-time tail excess (`busy_excess_ns`) that
/// is in its own time: the same excess over its self-time histogram, over
/// the busy one. 1 when the self time does not decode or there is no busy
/// excess. None of it when its own time has no tail by the settings'
/// ratios (self p99 over p50, or self p99.9 over p50 for a tail of a few
/// calls in a thousand, where busy time reads max): what is beyond its
/// own p90 is then the usual calls' noise (interrupts, a cache miss), and
/// the busy tail is its children's. A recursive walk's busy times are its
/// levels (p99 35 times p50) and its leaves' own times 5.1 µs at p50 and
/// 25 µs at p99.9: 24 ms of them beyond twice p90 over 614,000 calls read
/// as a tail of 1.2% of the process's CPU.
pub(crate) fn own_tail_share(cs: &CallsiteStats, busy_excess_ns: f64, s: &Settings) -> f64 {
    if busy_excess_ns <= 0.0 {
        return 1.0;
    }
    let Ok(own) = cs.self_ns.decode() else {
        return 1.0;
    };
    let p90 = own.value_at_quantile(0.9);
    let share = stats::share(stats::tail_excess(&own, p90), busy_excess_ns);
    if share >= 1.0 {
        return share;
    }
    let p50 = own.value_at_quantile(0.5) as f64;
    let shaped = own.value_at_quantile(0.99) as f64 >= s.p99_over_p50 * p50
        || own.value_at_quantile(0.999) as f64 >= s.max_over_p50 * p50;
    if shaped { share } else { 0.0 }
}

/// A tail in a callsite's busy time that is its children's, not its own:
/// the callsite's index, and the descendants that hold it
/// ([`tail_holders`]). For the notes: the tail would be a finding by its
/// size, but the part of it in the callsite's own time is too small to be
/// one.
pub(crate) fn children_s_tail(cx: &Context<'_>) -> Vec<(usize, Vec<usize>)> {
    let s = &cx.config.classes.tail_latency;
    let mut out = Vec::new();
    for (i, cs, row) in cx.callsites() {
        if tail_shaped(row, s).is_none() {
            continue;
        }
        let preempted = cx.tail_preempted_share(i);
        let excess = cx.tail_excess_ns[i] * (1.0 - preempted);
        if preempted >= s.max_preempted_share || cx.time_share(excess) < s.min_share {
            continue;
        }
        if cx.time_share(excess * own_tail_share(cs, cx.tail_excess_ns[i], s)) >= s.min_share {
            continue; // a finding of its own
        }
        let holders = tail_holders(cx, cs, s);
        if !holders.is_empty() {
            out.push((i, holders));
        }
    }
    out
}

/// How deep [`tail_holders`] follows a tail (4 levels below the span)...
const MAX_TAIL_DEPTH: usize = 4;
/// ...stopping at a child with at least this share of its tail in its own
/// time ([`own_tail_share`]; a half).
const OWN_TAIL: f64 = 0.5;

/// The descendants of `cs` that hold its tail, outermost first (row
/// indices): its child with the most tail excess (its busy time beyond its
/// busy p90; the one with the most busy time where none has any), then, as
/// long as that child's tail is mostly not its own (under [`OWN_TAIL`]),
/// the same of its children, [`MAX_TAIL_DEPTH`] levels at
/// most. A fresh service's `handle` (p99 8.1 ms against p50 101 µs) named
/// `lookup`, its child with the most busy time, where the slow calls were
/// the 4 ms `refresh_rates` that `lookup` ran one call in forty.
fn tail_holders(cx: &Context<'_>, cs: &CallsiteStats, s: &Settings) -> Vec<usize> {
    let mut path: Vec<usize> = Vec::new();
    let mut at = cs.id;
    while path.len() < MAX_TAIL_DEPTH {
        let children: Vec<(usize, u64)> = cx
            .child_edges(at)
            .filter_map(|e| Some((cx.index_of(e.child)?, e.child_busy_ns)))
            .filter(|(c, _)| !path.contains(c))
            .collect();
        let excess = |&(c, _): &(usize, u64)| cx.tail_excess_ns[c];
        let Some(&(child, _)) = (if children.iter().any(|c| excess(c) > 0.0) {
            children.iter().max_by(|a, b| excess(a).total_cmp(&excess(b)))
        } else {
            children.iter().max_by_key(|(_, busy)| *busy)
        }) else {
            break;
        };
        path.push(child);
        let child_cs = &cx.dump.callsites[child];
        if own_tail_share(child_cs, cx.tail_excess_ns[child], s) >= OWN_TAIL {
            break;
        }
        at = child_cs.id;
    }
    path
}

/// The p99 / p50 and max / p50 ratios of a row whose busy-time distribution
/// has a tail by the settings' ratios, with enough calls to tell.
pub(crate) fn tail_shaped(row: &CallsiteRow, s: &Settings) -> Option<(f64, f64)> {
    if row.calls < s.min_calls || row.busy_p50_ns == 0 {
        return None;
    }
    let p50 = row.busy_p50_ns as f64;
    let p99_ratio = row.busy_p99_ns as f64 / p50;
    let max_ratio = row.busy_max_ns as f64 / p50;
    (p99_ratio >= s.p99_over_p50 || max_ratio >= s.max_over_p50).then_some((p99_ratio, max_ratio))
}

static INFO: Info = Info {
    title: "tail latency",
    // Its cost is the tail of the span's own time, which a parent does not
    // inherit: a parent with a tail of its own is found beside its child.
    innermost: false,
    supersedes: &[],
};

impl Detector for TailLatency {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn detect(&self, cx: &Context<'_>, found: &mut Vec<Finding>) {
        let s = &cx.config.classes.tail_latency;
        for (i, cs, row) in cx.callsites() {
            let Some((p99_ratio, max_ratio)) = tail_shaped(row, s) else {
                continue;
            };
            let p50 = row.busy_p50_ns as f64;
            let preempted = cx.tail_preempted_share(i);
            if preempted >= s.max_preempted_share {
                continue;
            }
            let own = own_tail_share(cs, cx.tail_excess_ns[i], s);
            let excess = cx.tail_excess_ns[i] * (1.0 - preempted) * own;
            // A tail spent off the CPU (a retry's sleep, a slow disk) costs
            // the threads' wall time, not the process's CPU: shared as
            // `blocked` shares its time; inside a task's poll, the runtime
            // workers' it stalls (not a blocking pool's threads that also
            // record spans).
            let blocked = blocked_tail(cx, row, excess);
            // A blocking tail spent waiting for what another span holds
            // across a wait of its own.
            let holder = blocked
                .as_ref()
                .and_then(|_| super::blocked::held_across(cx, cs))
                .map(|(o, share, lift)| (cx.rows[o].location.label.clone(), share, lift));
            let stall = tail_stall(cx, cs.id, row);
            let (whole, whole_name) = cx.off_cpu_whole(stall.is_some());
            let cost_of = blocked.as_ref().map(|_| whole_name);
            let (resource, cost) = match blocked {
                Some(_) => (Resource::WallTime, stats::share(excess, whole)),
                None => (Resource::Time, cx.time_share(excess)),
            };
            if cost < s.min_share {
                continue;
            }
            // Waits give back wall time only where the cores would idle.
            let busy = blocked
                .as_ref()
                .and_then(|_| cx.busy_cores(cs, cost, s.recoverable));
            let mut evidence = vec![
                Evidence::new("p99 / p50", p99_ratio, Unit::Ratio, Some(s.p99_over_p50)),
                Evidence::new("max / p50", max_ratio, Unit::Ratio, Some(s.max_over_p50)),
                Evidence::new("p50", p50, Unit::Ns, None),
                Evidence::new("p99", row.busy_p99_ns as f64, Unit::Ns, None),
                Evidence::new("tail excess share", cost, Unit::Share, Some(s.min_share)),
            ];
            if own < 1.0 {
                evidence.push(Evidence::new(
                    "tail in its own time, not its children's",
                    own,
                    Unit::Share,
                    None,
                ));
            }
            if row.cpu.is_some() {
                evidence.push(Evidence::new(
                    "excess explained by preemption",
                    preempted,
                    Unit::Share,
                    Some(s.max_preempted_share),
                ));
            }
            if let Some(b) = &blocked {
                evidence.push(b.evidence());
            }
            let mut draft = Draft {
                class: Class::TailLatency,
                callsite: Some((cx.dump.callsites[i].id, row.location.clone())),
                resource,
                cost_share: cost,
                recoverable: busy.map_or(s.recoverable, |b| b.recoverable(cost)),
                confidence: stats::sample_confidence(row.calls, s.half_confidence_calls),
                summary: format!(
                    "p99 {} and max {} against p50 {}; calls above p90 spend {} beyond it{}",
                    units::ns(row.busy_p99_ns as f64),
                    units::ns(row.busy_max_ns as f64),
                    units::ns(p50),
                    units::ns(excess),
                    match (blocked, preempted > 0.0) {
                        (Some(_), _) => format!(
                            ", off the CPU (blocked: a sleep, I/O, a lock), {} of {whole_name}",
                            units::pct(cost)
                        ),
                        (None, true) => " that preemption does not explain".to_owned(),
                        (None, false) => String::new(),
                    }
                ),
                evidence,
            };
            if let Some(st) = &stall {
                draft.summary.push_str(&format!(
                    "; they run inside {}, so each slow call stalls a runtime worker and every task queued on it for {} {}",
                    st.whose,
                    if st.at_least { "at least" } else { "up to" },
                    units::ns(st.ns)
                ));
                draft.evidence.push(Evidence::new(
                    "p99 inside a poll",
                    row.busy_p99_ns as f64,
                    Unit::Ns,
                    Some(cx.config.classes.hot_spot.poll_stall_ns),
                ));
            }
            if let Some((holder, share, lift)) = &holder {
                draft.summary.push_str(&format!(
                    "; through {} of its waits for another thread a thread in `{holder}` waited too (asleep or in I/O), {lift:.1} times as often as `{holder}`'s own waits make likely: its slow calls wait for what `{holder}` holds across its wait",
                    units::pct(*share)
                ));
                draft.evidence.push(Evidence::new(
                    &format!("its futex waits beside `{holder}`'s waits"),
                    *share,
                    Unit::Share,
                    None,
                ));
            }
            if let Some(b) = &busy {
                draft.summary.push_str(&b.summary());
                draft.evidence.push(b.evidence());
            }
            found.push(cx.score(draft, |f| {
                let mut advice = advice(f, stall.is_some(), cost_of, busy);
                if let Some((holder, ..)) = &holder {
                    advice.fixes.insert(
                        0,
                        format!(
                            "Let go before `{holder}` waits: it holds what these calls wait for (a lock, a connection) across a sleep or I/O; copy what it needs out, drop the guard, wait, then take it again only to write (or swap the new value in: `arc_swap`, a lock held for the swap alone)"
                        ),
                    );
                }
                advice
            }));
        }
    }

}

/// How a callsite's slow calls stall a runtime worker, when they hold it
/// for hot spot's `poll_stall_ns` or more (`in_poll`); `None` otherwise.
fn tail_stall(cx: &Context<'_>, id: u32, row: &CallsiteRow) -> Option<Stall> {
    let polls = cx.config.classes.blocked.async_polls_per_call;
    let bar = cx.config.classes.hot_spot.poll_stall_ns;
    let poll = in_poll(cx, id, row, polls)?;
    // An async span's slowest call may be slow between its polls (a
    // wait): its p99 is the figure spread over them, a plain function's
    // slowest call is all one hold.
    let per_span = match poll {
        InPoll::Own => row.busy_p99_ns,
        InPoll::Caller(_) | InPoll::Worker => row.busy_max_ns,
    };
    let stall = poll.stall(row, per_span as f64);
    (stall.ns >= bar && row.busy_p99_ns as f64 >= bar).then_some(stall)
}

/// The plan step's advice for one of its findings; `stalls`, when its slow
/// calls stall a runtime worker; `cost_of`, the whole its cost is a share
/// of when that is not its gain's (a blocking tail's, of the threads' wall
/// time); `busy`, when the process's busy cores bound its gain.
fn advice(
    f: &Finding,
    stalls: bool,
    cost_of: Option<&str>,
    busy: Option<BusyCores>,
) -> Advice {
    let name = f.subject().in_prose();
    let of = &f.share_of;
    let cost_of = cost_of.unwrap_or(of);
    let mut fixes = lines(&[
        "Find what the slow calls share: record a distinguishing field on the span (input size, cache hit or miss, retry count) and compare slow and fast calls",
        "Move rare blocking work off the hot path: file or network I/O, a `std::sync::Mutex` held across heavy work; in async code use `tokio::task::spawn_blocking`",
        "Amortise occasional expensive work: pre-size collections (`with_capacity`) so they do not regrow or rehash mid-call, warm caches at start-up",
        "Bound the work one call can do (chunking, pagination) and add timeouts so one slow input cannot stall the rest",
    ]);
    if stalls {
        fixes.insert(
            1,
            format!(
                "Keep the runtime's workers free during its slow calls: run {name} in `tokio::task::spawn_blocking` or a rayon pool (awaiting the result) when its input is large, or `tokio::task::yield_now().await` between chunks"
            ),
        );
    }
    Advice {
        statement: format!(
            "removing {} of the time its calls above p90 spend beyond p90 ({} of {cost_of}) saves {} of {of}{}, and most of its p99",
            units::pct(busy.map_or(f.recoverable, |b| b.fix)),
            units::pct(f.cost_share),
            units::pct(f.expected_gain()),
            busy.map_or_else(String::new, |b| b.gain_clause())
        ),
        fixes,
        prerequisites: vec![
            format!("Record a field on {name} that tells slow calls from fast ones"),
            format!("Run long enough for at least 1,000 calls of {name} so its p99 is stable"),
        ],
        check: format!(
            "{name}'s busy p99 must move towards its p50 (the p99/p50 ratio must fall)"
        ),
        complexity: Effort::Medium,
        risk: Effort::Medium,
    }
}

#[cfg(test)]
mod tests {
    use crate::analyze::Class;
    use crate::analyze::test_dump::{MS, US, Span, about, assert_near, detect, dump, evidence};

    /// `slow`: 2% of its calls take 5 ms against a p50 of 100 µs (p99 / p50
    /// 50); `even`: its slowest take 490 µs, 4.9 times p50, under both
    /// ratios.
    #[test]
    fn finds_a_tail_fifty_times_p50_and_not_one_under_five() {
        let found = detect(
            Class::TailLatency,
            dump(
                2_000 * MS,
                &[
                    Span::new("slow", &[(100 * US, 980), (5 * MS, 20)]),
                    Span::new("even", &[(100 * US, 980), (490 * US, 20)]),
                ],
            ),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        let f = about(&found, "slow").unwrap();
        // HDR buckets of two significant figures: within 1%.
        assert_near(evidence(f, "p99 / p50"), 50.0, 0.01);
        // 20 calls 4.9 ms beyond p90, of 98 + 100 + 98 + 9.8 ms of self time.
        assert_near(f.cost_share, 98.0 / 305.8, 0.01);
        assert_eq!(f.recoverable, 0.8);
        assert_near(f.confidence, 1_000.0 / 1_050.0, 1e-9);
    }

    /// `compress`, a plain function, takes 30 µs a call and 4 ms one call
    /// in forty, on a runtime's worker threads (below an `async fn`): each
    /// slow call holds the worker for up to 4 ms, said in the summary, and
    /// moving it off the runtime is its second fix. Off the workers, or in
    /// a dump that does not count them, neither.
    #[test]
    fn slow_calls_on_a_runtime_worker_stall_it() {
        let with = |on_workers: Option<u64>| {
            let mut d = dump(
                2_000 * MS,
                &[
                    Span::new("work", &[(MS, 300)]),
                    Span::new("compress", &[(30 * US, 3_900), (4 * MS, 100)]),
                ],
            );
            d.callsites[1].runtime_worker_calls = on_workers;
            detect(Class::TailLatency, d)
        };
        let found = with(Some(4_000));
        let f = about(&found, "compress").unwrap();
        assert!(
            f.summary.contains(
                "they run inside a task's poll on a runtime worker thread, so each slow call stalls a runtime worker and every task queued on it for up to 4.0"
            ),
            "{}",
            f.summary
        );
        assert!(f.advice.fixes[1].contains("spawn_blocking"), "{:?}", f.advice.fixes);
        for elsewhere in [Some(0), None] {
            let found = with(elsewhere);
            let f = about(&found, "compress").unwrap();
            assert!(!f.summary.contains("stalls"), "{}", f.summary);
            assert!(!f.advice.fixes[1].contains("Keep the runtime"), "{:?}", f.advice.fixes);
        }
    }

    /// The blocking tail of the test below, in a process that kept its 2
    /// cores 97.5% busy over the run: while these calls waited, its other
    /// threads computed, and only the cores' 2.5% idle time can come back,
    /// not 80% of the tail's 10%. With the cores half idle the gain stands.
    /// A recursive walk: its busy times are its levels (a tenth of its
    /// calls 40 times the rest), its own times 5 µs but for one call in a
    /// hundred at 12 µs (an interrupt, a cache miss): beyond twice p90,
    /// 1.4% of the self time, but no tail of its own by the ratios. With
    /// those calls at 200 µs (forty times p50 at p99.9), it has one.
    #[test]
    fn a_busy_tail_over_own_times_without_one_is_no_finding() {
        let with_slow_own = |slow_ns: u64| {
            let mut d = dump(1_000 * MS, &[Span::new("walk", &[(10 * US, 9_000), (400 * US, 1_000)])]);
            d.callsites[0].self_ns = crate::analyze::test_dump::hist(&[(5 * US, 9_900), (slow_ns, 100)]);
            detect(Class::TailLatency, d)
        };
        let noise = with_slow_own(12 * US);
        assert!(noise.is_empty(), "{noise:#?}");
        let slow = with_slow_own(200 * US);
        let f = about(&slow, "walk").unwrap();
        assert!(evidence(f, "tail in its own time, not its children's") < 1.0, "{f:#?}");
    }

    /// A 230 ns lookup among threads computing on two cores: 40 of its
    /// 9,040 calls took 20 ms, and its 60 timed calls (a sample) hold none
    /// of them. Its figures estimate its untimed time off the CPU as the
    /// process switched: 95% involuntary, preempted, which lands in the
    /// tail of a call this short; no finding. With the process's switches
    /// 95% voluntary (sleeps), the same tail is a blocking one.
    #[test]
    fn a_tail_of_short_calls_preempted_as_the_process_was_is_explained() {
        let with_switches = |voluntary: u64, involuntary: u64| {
            let mut d = dump(1_000 * MS, &[Span::new("lookup", &[(230, 9_000), (20 * MS, 40)])]);
            d.callsites[0].cpu = Some(perf_layer::dump::CpuStats {
                timed_calls: 60,
                intervals: 60,
                untimed_intervals: 0,
                busy_ns: 60 * 230,
                self_ns: 60 * 230,
                on_cpu_ns: crate::analyze::test_dump::hist(&[(230, 60)]),
                self_on_cpu_ns: 60 * 230,
                off_cpu_ns: 0,
                preempted_ns: crate::analyze::test_dump::hist(&[(0, 60)]),
                self_preempted_ns: Some(0),
                voluntary_switches: 0,
                involuntary_switches: 0,
                sampled: Some(perf_layer::dump::SampledCpu {
                    intervals: 45,
                    busy_ns: 45 * 230,
                    self_ns: 45 * 230,
                    on_cpu_ns: 45 * 230,
                    self_on_cpu_ns: 45 * 230,
                    preempted_ns: 0,
                    self_preempted_ns: Some(0),
                }),
            });
            (d.run.span_threads, d.run.cores, d.run.cpu_ns) = (Some(8), Some(2), Some(2_000 * MS));
            crate::analyze::test_dump::timeline(&mut d, &[(1 << 20, 200.0); 2]);
            for s in &mut d.timeline.samples {
                (s.voluntary_switches, s.involuntary_switches) = (Some(voluntary), Some(involuntary));
            }
            detect(Class::TailLatency, d)
        };
        let preempted = with_switches(5, 95);
        assert!(preempted.is_empty(), "{preempted:#?}");
        let blocking = with_switches(95, 5);
        let f = about(&blocking, "lookup").unwrap();
        assert!(f.summary.contains("off the CPU (blocked"), "{}", f.summary);
    }

    /// The tail findings of `request`, whose `calls` (`(busy, count)`)
    /// were timed on the CPU as a sample: `timed` calls over `intervals`
    /// intervals, `untimed` of them not timed; the `n` timed intervals
    /// `on_cpu_each` on the CPU each, `slow` of them off it for the rest of
    /// `busy`, preempted where the switches are involuntary, blocked where
    /// voluntary; the process's CPU `cpu_ns`.
    fn sampled_tail(
        calls: &[(u64, u64)],
        (timed, intervals, untimed): (u64, u64, u64),
        (n, slow, on_cpu_each, busy): (u64, u64, u64, u64),
        (voluntary, involuntary): (u64, u64),
        cpu_ns: u64,
    ) -> Vec<crate::analyze::Finding> {
        let mut d = dump(1_000 * MS, &[Span::new("request", calls)]);
        let on_cpu = n * on_cpu_each;
        let preempted = if involuntary > 0 { busy - on_cpu } else { 0 };
        d.callsites[0].cpu = Some(perf_layer::dump::CpuStats {
            timed_calls: timed,
            intervals,
            untimed_intervals: untimed,
            busy_ns: busy,
            self_ns: busy,
            on_cpu_ns: crate::analyze::test_dump::hist(&[(on_cpu_each, n)]),
            self_on_cpu_ns: on_cpu,
            off_cpu_ns: busy - on_cpu,
            preempted_ns: crate::analyze::test_dump::hist(&[(0, n - slow), (preempted / slow, slow)]),
            self_preempted_ns: Some(preempted),
            voluntary_switches: voluntary,
            involuntary_switches: involuntary,
            sampled: Some(perf_layer::dump::SampledCpu {
                intervals: n,
                busy_ns: busy,
                self_ns: busy,
                on_cpu_ns: on_cpu,
                self_on_cpu_ns: on_cpu,
                preempted_ns: preempted,
                self_preempted_ns: Some(preempted),
            }),
        });
        (d.run.span_threads, d.run.cores, d.run.cpu_ns) = (Some(20), Some(2), Some(cpu_ns));
        detect(Class::TailLatency, d)
    }

    /// A service's `/login` polls: 16 µs usually, one call in seven
    /// preempted beside a blocking pool's threads, so the p90 (600 µs) is
    /// itself a preempted call; one timed call in 166, the sample.
    #[test]
    fn a_tail_of_short_calls_preempted_more_than_one_in_ten_is_explained() {
        let with_switches = |switches: (u64, u64)| {
            sampled_tail(
                &[(16 * US, 8_500), (600 * US, 1_000), (1_800 * US, 500)],
                (60, 60, 0),
                (60, 8, 16 * US, 52 * 16 * US + 8 * 700 * US),
                switches,
                2_000 * MS,
            )
        };
        let preempted = with_switches((0, 8));
        assert!(preempted.is_empty(), "{preempted:#?}");
        let blocking = with_switches((8, 0));
        assert!(about(&blocking, "request").is_some(), "{blocking:#?}");
    }

    /// A service's `/items` requests, three polls each, 5 µs a poll on the
    /// CPU; three of the sixty sampled polls preempted for 400 µs, so the
    /// sample's polls (25 µs on average) ran longer than the rest (4.9 µs):
    /// scaled to the polls not timed, its on-CPU time fills their busy
    /// time and leaves none preempted.
    #[test]
    fn a_tail_of_short_polls_reads_its_sample_s_preemption_where_the_estimate_fills_the_busy_time() {
        let with_switches = |switches: (u64, u64)| {
            sampled_tail(
                &[(8 * US, 9_000), (20 * US, 800), (300 * US, 200)],
                (20, 30_000, 29_940),
                (60, 3, 5 * US, 57 * 5 * US + 3 * 400 * US),
                switches,
                1_000 * MS,
            )
        };
        let preempted = with_switches((0, 3));
        assert!(preempted.is_empty(), "{preempted:#?}");
        let blocking = with_switches((3, 0));
        assert!(about(&blocking, "request").is_some(), "{blocking:#?}");
    }

    #[test]
    fn a_blocking_tail_gives_back_no_more_than_the_idle_cores() {
        let with = |cpu_percent: f64| {
            let mut d = dump(
                2_000 * MS,
                &[
                    Span::new("work", &[(MS, 100)]).on_cpu(100 * MS, 0, 0, 0),
                    Span::new("fetch", &[(20 * US, 950), (12 * MS, 50)]).on_cpu(20 * MS, 0, 50, 0),
                ],
            );
            d.run.span_threads = Some(3);
            d.run.cores = Some(2);
            d.timeline.samples = (0..=20)
                .map(|i| perf_layer::dump::ProcessSample {
                    t_ms: i * 100,
                    cpu_percent,
                    ..Default::default()
                })
                .collect();
            let found = detect(Class::TailLatency, d);
            about(&found, "fetch").unwrap().clone()
        };
        let busy = with(195.0);
        assert_near(busy.expected_gain(), 0.025, 1e-6);
        assert!(busy.summary.contains("kept 97.5% of its 2 cores busy"), "{}", busy.summary);
        assert!(
            busy.advice.statement.starts_with("removing 80.0% of the time")
                && busy.advice.statement.contains("saves 2.5% of the run's wall time (the cores' idle time while its spans were live, not 8.0%"),
            "{}",
            busy.advice.statement
        );
        let idle = with(100.0);
        assert_near(idle.expected_gain(), 0.8 * 50.0 * 11.98 / 6_000.0, 0.02);
        assert!(!idle.summary.contains("cores busy"), "{}", idle.summary);
    }

    /// `fetch` takes 20 µs a call on the CPU, and one call in twenty sleeps
    /// 12 ms (a retry's backoff), on 3 threads over a 2 s run: its tail is
    /// off the CPU, so its cost is the 570 ms of the threads' 6 s wall time
    /// beyond p90, not a share of the CPU it never used. On the CPU (the
    /// same tail computing), it is a share of the CPU.
    #[test]
    fn a_tail_spent_off_the_cpu_costs_wall_time_not_cpu() {
        let with = |on_cpu_ns: u64| {
            let mut d = dump(
                2_000 * MS,
                &[
                    Span::new("work", &[(MS, 100)]).on_cpu(100 * MS, 0, 0, 0),
                    Span::new("fetch", &[(20 * US, 950), (12 * MS, 50)])
                        .on_cpu(on_cpu_ns, 0, 50, 0),
                ],
            );
            d.run.span_threads = Some(3);
            d.run.cpu_ns = Some(150 * MS);
            detect(Class::TailLatency, d)
        };
        let found = with(20 * MS);
        let f = about(&found, "fetch").unwrap();
        assert_eq!(f.resource, crate::analyze::Resource::WallTime);
        // 50 calls x (12 ms - p90's 20 µs), of 3 threads x 2 s.
        assert_near(f.cost_share, 50.0 * 11.98 / 6_000.0, 0.02);
        assert!(f.summary.contains("off the CPU (blocked: a sleep, I/O, a lock)"), "{}", f.summary);
        let computing = with(619 * MS);
        let f = about(&computing, "fetch").unwrap();
        assert_eq!(f.resource, crate::analyze::Resource::Time);
        assert!(!f.summary.contains("off the CPU"), "{}", f.summary);
    }

    /// The same `fetch` never timed on the CPU: its 600 ms of excess is 4x
    /// the process's 150 ms of CPU time, which could hold no more than a
    /// quarter of it: a blocking tail. Beside 1 s of CPU it could be
    /// computing, and is a share of the CPU.
    #[test]
    fn an_untimed_tail_larger_than_the_cpu_could_hold_is_off_the_cpu() {
        let with = |cpu_ms: u64| {
            let mut d = dump(
                2_000 * MS,
                &[
                    Span::new("work", &[(MS, 100)]),
                    Span::new("fetch", &[(20 * US, 950), (12 * MS, 50)]),
                ],
            );
            d.run.span_threads = Some(3);
            d.run.cpu_ns = Some(cpu_ms * MS);
            detect(Class::TailLatency, d)
        };
        let found = with(150);
        let f = about(&found, "fetch").unwrap();
        assert_eq!(f.resource, crate::analyze::Resource::WallTime);
        assert_near(evidence(f, "the tail's excess over the CPU time the timed spans left"), 599.0 / 150.0, 0.02);
        let found = with(1_000);
        let f = about(&found, "fetch").unwrap();
        assert_eq!(f.resource, crate::analyze::Resource::Time);
    }

    /// A fresh service's `audit_log`: a 3 ms sleep in one call in ten,
    /// inside the polls of its async handler, too rare for its sample. Its
    /// 600 ms of excess fits in the process's 1 s of CPU, but 800 ms of
    /// that CPU is `resize`'s, timed: no more than 200 ms is left for it,
    /// and the tail is off the CPU. It stalls the runtime's workers (two,
    /// one per core), not the ten threads that record spans (a blocking
    /// pool's among them): its cost is of the workers' wall time. The
    /// service's own runs: 13% more requests with it off the workers.
    #[test]
    fn an_untimed_tail_beyond_the_cpu_the_timed_spans_left_is_off_the_cpu() {
        let mut d = dump(
            2_000 * MS,
            &[
                Span::new("resize", &[(8 * MS, 100)]).on_cpu(800 * MS, 0, 0, 0),
                Span::new("audit_log", &[(US, 950), (12 * MS, 50)]),
            ],
        );
        d.run.span_threads = Some(10);
        d.run.cores = Some(2);
        d.run.cpu_ns = Some(1_000 * MS);
        d.callsites[1].runtime_worker_calls = Some(1_000);
        let found = detect(Class::TailLatency, d);
        let f = about(&found, "audit_log").unwrap();
        assert_eq!(f.resource, crate::analyze::Resource::WallTime);
        assert_near(evidence(f, "the tail's excess over the CPU time the timed spans left"), 600.0 / 200.0, 0.02);
        // 50 x 12 ms of the two workers' 4 s, not of ten threads' 20 s.
        assert_near(f.cost_share, 600.0 / 4_000.0, 0.01);
        assert!(f.summary.contains("of the runtime workers' wall time"), "{}", f.summary);
    }

    /// `record`: 95,000 calls of 5 µs and 5,000 of 300 µs (a shard's
    /// holder preempted), 300 intervals timed, all short and on the CPU.
    /// Read at their rate, its 1.98 s read as CPU, a tail of 1.48 s
    /// "CPU". In a process whose CPU was 0.5 s the tail cannot have been:
    /// it was off the CPU, explained, and no finding. Where the process's
    /// CPU holds it (2 s), the tail stands.
    #[test]
    fn a_missed_tail_the_process_cpu_cannot_hold_was_off_the_cpu() {
        let with_cpu = |cpu_ms: u64| {
            let mut d = dump(
                1_000 * MS,
                &[Span::new("record", &[(5 * US, 95_000), (300 * US, 5_000)]).on_cpu(0, 0, 0, 0)],
            );
            let c = d.callsites[0].cpu.as_mut().unwrap();
            c.timed_calls = 300;
            c.intervals = 300;
            c.busy_ns = 300 * 5 * US;
            c.self_ns = 300 * 5 * US;
            c.on_cpu_ns = crate::analyze::test_dump::hist(&[(5 * US, 300)]);
            c.self_on_cpu_ns = 300 * 5 * US;
            c.off_cpu_ns = 0;
            c.preempted_ns = crate::analyze::test_dump::hist(&[(0, 300)]);
            c.self_preempted_ns = Some(0);
            d.run.cpu_ns = Some(cpu_ms * MS);
            d.run.cores = Some(2);
            d.run.span_threads = Some(4);
            d
        };
        let found = detect(Class::TailLatency, with_cpu(2_000));
        assert!(about(&found, "record").is_some(), "{found:#?}");
        let found = detect(Class::TailLatency, with_cpu(500));
        assert!(about(&found, "record").is_none(), "{found:#?}");
        let hot = detect(Class::HotSpot, with_cpu(500));
        let f = about(&hot, "record").unwrap();
        // Its usual calls' CPU is left: 0.5 s of the process's 0.5 s.
        assert!(evidence(f, "self time on the CPU") < 0.3, "{f:#?}");
    }

    /// Three threads reading a config, one call in ten waiting 1 ms in a
    /// futex, beside which a thread in `refresh` (sleeping 1 ms a call,
    /// 900 calls) waited through 80% of those waits, where its own waits
    /// fill 30% of the run: the tail waits for what `refresh` holds across
    /// its sleep, and letting go first is the first fix. A `heartbeat`
    /// asleep through the run, beside the same share, holds nothing.
    #[test]
    fn a_tail_waiting_beside_another_span_s_wait_is_told_what_holds_it() {
        let with_beside = |beside: Span| {
            let mut d = dump(
                3_000 * MS,
                &[
                    Span::new("main", &[(3_000 * MS, 1)]),
                    Span::new("read_config", &[(US, 90_000), (MS, 10_000)]).on_cpu(100 * MS, 0, 10_000, 0),
                    beside.on_cpu(90 * MS, 0, 900, 0),
                ],
            );
            d.run.span_threads = Some(4);
            let other = d.callsites[2].id;
            d.callsites[1].watched_waits = Some(perf_layer::dump::WatchedWaits {
                intervals: 170,
                wait_ns: 60 * MS,
                others_cpu_ns: 20 * MS,
                for_a_thread_ns: Some(51 * MS),
                beside: vec![perf_layer::dump::WaitedBeside { callsite: other, ns: 41 * MS }],
                ..Default::default()
            });
            d.callsites[2].watched_waits = Some(perf_layer::dump::WatchedWaits {
                intervals: 60,
                wait_ns: 20 * MS,
                asleep_ns: Some(18 * MS),
                for_a_thread_ns: Some(0),
                ..Default::default()
            });
            detect(Class::TailLatency, d)
        };
        let found = with_beside(Span::new("refresh", &[(1_100 * US, 900)]));
        let f = about(&found, "read_config").unwrap();
        assert!(f.summary.contains("a thread in `refresh` waited too (asleep or in I/O), 2.7 times as often"), "{}", f.summary);
        assert!(f.advice.fixes[0].starts_with("Let go before `refresh` waits"), "{:?}", f.advice.fixes);
        let found = with_beside(Span::new("heartbeat", &[(1_000 * MS, 3)]));
        let f = about(&found, "read_config").unwrap();
        assert!(!f.summary.contains("heartbeat"), "{}", f.summary);
        assert!(f.advice.fixes[0].starts_with("Find what the slow calls share"), "{:?}", f.advice.fixes);
    }

    /// A convoy: four threads, a million lookups under one lock, most
    /// taking their 4 µs and one in ten 250 µs, waiting off the CPU for
    /// the lock. The tail is the queue: detected alone it is a blocking
    /// tail, but in the analysis the queue stands for it (one plan step,
    /// not two for the same waits). The same tail on the CPU stays.
    #[test]
    fn a_queue_s_blocking_tail_is_the_queue_s_finding() {
        let calls = [(4 * US, 900_000), (250 * US, 100_000)];
        let with_cpu = |on_cpu_ns: u64, preempted_ns: u64| {
            let span = Span::new("lookup", &calls).on_cpu(on_cpu_ns, preempted_ns, 100_000, 0);
            let mut d = dump(10_000 * MS, &[span]);
            d.run.span_threads = Some(4);
            d.run.cores = Some(2);
            d.run.cpu_ns = Some(13_500 * MS);
            d
        };
        let d = with_cpu(6_000 * MS, 9_000 * MS);

        let tail = detect(Class::TailLatency, d.clone());
        assert_eq!(about(&tail, "lookup").unwrap().resource, crate::analyze::Resource::WallTime);
        let analysis = crate::analyze::analyze(&d.into(), &crate::Config::default());
        let classes: Vec<_> = analysis.findings.iter().map(|f| f.class).collect();
        assert!(classes.contains(&Class::Serialization), "{classes:?}");
        assert!(!classes.contains(&Class::TailLatency), "{classes:?}");
        // On the CPU the slow calls are the span's own work, no queue's.
        let d = with_cpu(28_000 * MS, 0);
        let analysis = crate::analyze::analyze(&d.into(), &crate::Config::default());
        let classes: Vec<_> = analysis.findings.iter().map(|f| f.class).collect();
        assert!(classes.contains(&Class::TailLatency), "{classes:?}");
    }

    /// `handle` (p99 about 40 times p50) spends most of its busy time in
    /// `validate`, even at 200 µs; one call in forty its `lookup` runs
    /// `refresh_rates` for 4 ms. The note names `lookup`, whose tail it is,
    /// and `refresh_rates` within it, not `validate`, the child with the
    /// most busy time.
    #[test]
    fn a_parent_s_tail_note_follows_the_tail_down_to_the_child_that_holds_it() {
        use perf_layer::dump::CallEdge;

        use crate::analyze::test_dump::hist;
        let mut d = dump(
            20_000 * MS,
            &[
                Span::new("handle", &[(222 * US, 39_000), (4_222 * US, 1_000)]),
                Span::new("validate", &[(200 * US, 40_000)]),
                Span::new("lookup", &[(20 * US, 39_000), (4_020 * US, 1_000)]),
                Span::new("refresh_rates", &[(4 * MS, 1_000)]),
            ],
        );
        d.callsites[0].self_ns = hist(&[(2 * US, 40_000)]);
        d.callsites[2].self_ns = hist(&[(20 * US, 40_000)]);
        let edge = |parent, child, calls, child_busy_ns| CallEdge { parent, child, calls, child_busy_ns, outlived: 0 };
        d.edges = vec![
            edge(0, 1, 40_000, 8_000 * MS),
            edge(0, 2, 40_000, 4_800 * MS),
            edge(2, 3, 1_000, 4_000 * MS),
        ];
        let analysis = crate::analyze::analyze(&d.into(), &crate::Config::default());
        assert!(
            analysis.notes.iter().any(|n| n.starts_with("`handle`'s slow calls")
                && n.ends_with("the child whose calls hold them is `lookup`; within it, `refresh_rates`")),
            "{:#?}",
            analysis.notes
        );
    }
}
