//! The per-callsite rows of the analysis: what the callsite table shows and
//! the detectors read, one row per callsite of the dump.

use serde::Serialize;

use perf_layer::dump::{CPU_SAMPLE_EVERY, CallsiteStats, CpuStats, SampledCpu};

use crate::callsite::Location;
use crate::stats;

/// Allocation figures of one callsite (only when the dump tracked them).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AllocRow {
    /// Bytes allocated while the span was innermost, per call.
    pub self_bytes_per_call: f64,
    /// Allocations made while the span was innermost, per call.
    pub self_allocs_per_call: f64,
    /// Bytes allocated while innermost, in total.
    pub self_alloc_bytes: u64,
    /// Allocations made while innermost, in total.
    pub self_allocs: u64,
    /// Deallocations made while innermost, in total, estimated: the
    /// span's own (which count its children's) less its direct children's,
    /// each child's in proportion to its calls under this callsite. A
    /// parser whose caller drops what it built frees nothing itself.
    pub self_frees: u64,
    /// This callsite's share of all self-allocated bytes (0 to 1).
    pub alloc_share: f64,
    /// Its share of all allocations made in spans, by count (0 to 1): small
    /// allocations cost by their number, not their bytes.
    pub allocs_share: f64,
    /// Inclusive bytes allocated minus freed: what the spans kept.
    pub net_retained_bytes: i64,
    /// Spans that closed holding more than they freed.
    pub calls_retaining: u64,
}

/// What the callsite's spans made that is still allocated, from the counting
/// allocator's tags (only when the dump has them).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeapRow {
    /// Bytes still allocated at the end of the run.
    pub live_bytes: u64,
    /// The most bytes live at once (sampled).
    pub peak_live_bytes: u64,
    /// Bytes the callsite's spans allocated in all.
    pub allocated_bytes: u64,
    /// The least-squares growth of its live bytes after warm-up, bytes per
    /// second, when the timeline has enough points
    /// (`classes.leak_suspect.warmup_share`, `min_points`).
    pub growth_bytes_per_s: Option<f64>,
    /// How well a line fits that growth (R², 0 to 1).
    pub growth_r2: Option<f64>,
}

/// On-CPU and off-CPU figures of one callsite (only when the layer timed
/// its intervals on the CPU, on Linux).
///
/// The layer times every entered interval of a callsite whose intervals
/// are long on average, and one in 512 of the short ones (a uniform
/// sample; a long-lived async span's polls are short). The figures here are
/// over every call: the timed intervals count for themselves, and the
/// sample stands for the intervals that were not timed by what one sampled
/// interval spent on the CPU, times how many were not timed. Not by its
/// on-CPU *share*: under contention the sampled intervals are where the
/// scheduler preempts (reading the thread's CPU clock updates its run time,
/// and a thread past its slice is switched out right there), so their busy
/// time is mostly waiting for a core and their share was a fraction of the
/// truth (four threads spinning on two cores: 8% of their CPU time by
/// their threads' clocks; per interval, 99%). Without a sample of at least
/// 8 intervals, a callsite whose busy time was mostly not timed has no row:
/// too few to stand for its calls.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CpuRow {
    /// Spans timed on the CPU (at least one of their intervals).
    pub timed_calls: u64,
    /// Share of the callsite's busy time that was timed (0 to 1): below 1
    /// the rest is estimated from the sample.
    pub measured_share: f64,
    /// On-CPU time over busy time (0 to 1).
    pub on_cpu_share: f64,
    /// On-CPU time while innermost over self time (0 to 1).
    pub self_on_cpu_share: f64,
    /// Self time off the CPU by the span's own doing (voluntary switches:
    /// sleep, blocking I/O, a contended lock), over self time.
    pub self_blocked_share: f64,
    /// Self time off the CPU because the thread was preempted, over self
    /// time.
    pub self_preempted_share: f64,
    /// Estimated on-CPU self time over every call, ns.
    pub self_on_cpu_ns: f64,
    /// Estimated blocked self time over every call, ns.
    pub self_blocked_ns: f64,
    /// Estimated self time lost to preemption over every call, ns.
    pub self_preempted_ns: f64,
    /// Estimated busy time lost to preemption over every call (inclusive of
    /// children, like the busy histogram), ns.
    pub preempted_ns: f64,
    /// Voluntary context switches per span.
    pub voluntary_per_call: f64,
    /// Involuntary context switches per span.
    pub involuntary_per_call: f64,
    /// Entered intervals per timed span: above 1 for an async span polled
    /// several times.
    pub intervals_per_call: f64,
}

/// Fewest sampled intervals whose shares stand for the untimed time.
pub(crate) const MIN_SAMPLE: u64 = 8;

/// Of a callsite's busy time, at least this share timed stands for the
/// rest without a sample (a callsite timed from its first call whose few
/// last calls were short, say).
const MEASURED_ENOUGH: f64 = 0.5;

/// So many timed intervals stand for the rest without a sample, whatever
/// share of the busy time they hold. The layer times a callsite's next
/// interval by the moving mean of those before it, not by its own length,
/// so hundreds of timed intervals spread over the run are a sample of its
/// intervals. A fresh service's session lock (a call in five waiting
/// milliseconds, the others under a microsecond) had 700 of its 1,776
/// calls timed, 40% of its busy time, and no sample of the short ones
/// worth the name: with no CPU figures at all, its waits were read as
/// computing, "15% of the process's CPU time". Intervals, not calls: one
/// long-lived span sleeping in 8,000 short polls had 1,400 to 6,400 of
/// them timed and, some runs, seven in its sample and a third of its
/// busy time timed, and had no CPU figures (its single call counted one).
const TIMED_ENOUGH: u64 = 256;

/// Fewer timed intervals stand for the rest when there are at least this
/// many...
const LIKE_THE_REST_MIN: u64 = 64;
/// ...and their mean length is within this factor of the untimed
/// intervals' mean: the layer chose them by the intervals before them, not
/// by their own length, and they came out no longer or shorter than the
/// rest. The service's session lock of [`TIMED_ENOUGH`] beside two CPU
/// hogs had 1,296 calls, 220 timed (a mean of 164 µs against the untimed
/// calls' 178 µs), 16% of its busy time, and a sample of one: no CPU
/// figures, and its waits, a tenth of the runtime workers' wall time, went
/// unreported. Timed calls that were mostly its waits (a mean four times
/// the rest's) still say nothing.
const LIKE_THE_REST_FACTOR: f64 = 1.5;

/// Whether `timed` intervals of `c`, beside `untimed_busy` ns of busy time
/// that was not timed, look like the callsite's other intervals in mean
/// length ([`LIKE_THE_REST_FACTOR`]). `false` where the callsite's
/// intervals are not known (spans entered more than once, in a dump
/// written before the layer counted intervals).
fn like_the_rest(cs: &CallsiteStats, c: &CpuStats, timed: u64, untimed_busy: f64) -> bool {
    let all = cs
        .intervals
        .or((c.intervals == c.timed_calls).then_some(cs.calls));
    let Some(untimed) = all.map(|all| all.saturating_sub(timed)) else {
        return false;
    };
    if timed < LIKE_THE_REST_MIN || untimed == 0 || untimed_busy <= 0.0 {
        return false;
    }
    let ratio = (c.busy_ns as f64 / timed as f64) / (untimed_busy / untimed as f64);
    (1.0 / LIKE_THE_REST_FACTOR..=LIKE_THE_REST_FACTOR).contains(&ratio)
}

/// What the intervals that were not timed are estimated to have spent, ns.
struct Untimed {
    on_cpu: f64,
    self_on_cpu: f64,
    preempted: f64,
    /// `None` where the dump did not measure the preempted self time.
    self_preempted: Option<f64>,
}

impl Untimed {
    /// By the sample: what a sampled interval spent on the CPU, times the
    /// intervals not timed, at most all of their time. A sampled interval's
    /// on-CPU time also holds part of its own reading (a system call, more
    /// in a debug build: three times a 1 µs poll), so per interval it counts
    /// for at most the usual interval's length where that is known
    /// ([`Count`]). Their time off the CPU splits into preempted and blocked
    /// as the sample's did ([`preempted_split`]).
    ///
    /// With `beside.children_on_cpu` (the on-CPU share of its children's busy time
    /// under it, from their own rows), the time in its children is not
    /// scaled from the sample: a parent whose few long intervals hold a
    /// child (an async `request` whose export polls run a 5 ms
    /// `compress_json`, 207 of 47,000 polls) read 12% or 100% on the CPU as
    /// one of them fell in its sample of 90 or not. Its own time is, and
    /// its children's is theirs.
    ///
    /// With `rest_by_rate` (enough of its intervals timed to stand for
    /// others, [`TIMED_ENOUGH`]), the sample stands only for as much of the
    /// untimed time as its intervals' mean length times their count; the
    /// rest is intervals the sample missed, rare and long, which the timed
    /// intervals tell ([`Untimed::by_rate`]). A fresh program's cache
    /// lookup (10 µs, every hundredth rebuilding its index for 5 ms, all
    /// on the CPU) had half its rebuilds untimed while its thread's task
    /// clock was not yet open, and a sample of 64 short calls: the 1.3 s of
    /// rebuilds the sample could not hold read as preempted, 60% of the
    /// span on the CPU where it was 94%, and CPU contention in a process
    /// using half its cores.
    fn by_sample(
        s: &SampledCpu,
        c: &CpuStats,
        untimed: Count,
        (busy, self_): (f64, f64),
        beside: Beside,
        rest_by_rate: bool,
    ) -> Self {
        let n = s.intervals as f64;
        let (all_busy, all_self) = (busy, self_);
        let (busy, self_) = if rest_by_rate {
            let held = |sum: u64, time: f64| {
                (untimed.intervals * sum as f64 / n).clamp(0.0, time.max(0.0))
            };
            (held(s.busy_ns, busy), held(s.self_ns, self_))
        } else {
            (busy, self_)
        };
        let scaled = |on: u64, time: f64| {
            (untimed.intervals * (on as f64 / n).min(untimed.cap_ns)).clamp(0.0, time.max(0.0))
        };
        let self_on_cpu = scaled(s.self_on_cpu_ns, self_);
        let on_cpu = match beside.children_on_cpu {
            Some(share) => (self_on_cpu + (busy - self_).max(0.0) * share).min(busy.max(0.0)),
            None => scaled(s.on_cpu_ns, busy),
        };
        let busy_split = preempted_split(
            c,
            (s.preempted_ns, s.busy_ns.saturating_sub(s.on_cpu_ns)),
            (c.preempted_ns.sum, c.off_cpu_ns),
            beside.process_preempted.unwrap_or(0.0),
        );
        let self_split = s
            .self_preempted_ns
            .zip(c.self_preempted_ns)
            .map(|(p, all)| {
                preempted_split(
                    c,
                    (p, s.self_ns.saturating_sub(s.self_on_cpu_ns)),
                    (all, c.self_ns.saturating_sub(c.self_on_cpu_ns)),
                    beside.process_preempted.unwrap_or(0.0),
                )
            });
        let held = Self {
            on_cpu,
            self_on_cpu,
            preempted: (busy - on_cpu) * busy_split,
            self_preempted: self_split.map(|split| (self_ - self_on_cpu) * split),
        };
        if !rest_by_rate {
            return held;
        }
        let rest = Self::by_rate(c, (all_busy - busy).max(0.0), (all_self - self_).max(0.0));
        Self {
            on_cpu: held.on_cpu + rest.on_cpu,
            self_on_cpu: held.self_on_cpu + rest.self_on_cpu,
            preempted: held.preempted + rest.preempted,
            self_preempted: held
                .self_preempted
                .zip(rest.self_preempted)
                .map(|(a, b)| a + b),
        }
    }

    /// By every timed interval's shares, when most of the time was timed.
    fn by_rate(c: &CpuStats, busy: f64, self_: f64) -> Self {
        let rate = |part: u64, of: u64| stats::share(part as f64, of as f64);
        Self {
            on_cpu: rate(c.on_cpu_ns.sum, c.busy_ns) * busy,
            self_on_cpu: rate(c.self_on_cpu_ns, c.self_ns) * self_,
            preempted: rate(c.preempted_ns.sum, c.busy_ns) * busy,
            self_preempted: c.self_preempted_ns.map(|p| rate(p, c.self_ns) * self_),
        }
    }
}

/// The preempted share of the time off the CPU, from `(preempted, off)`
/// of the sample, or of every timed interval where the sample was never
/// off the CPU. Where no timed interval was switched out at all, their time
/// off the CPU without a switch is their clocks read apart, no evidence of
/// what the untimed ones did (a rare sleep the sample missed, or a short
/// span's rare preemption beside busy threads: 210 timed calls of 40 µs
/// on a core shared with two hogs saw no switch in one run of five):
/// `otherwise`, the process's own share of involuntary switches over the
/// run where its timeline has them, else 0 (blocked).
fn preempted_split(c: &CpuStats, sample: (u64, u64), all: (u64, u64), otherwise: f64) -> f64 {
    if c.voluntary_switches == 0 && c.involuntary_switches == 0 {
        return otherwise;
    }
    let (preempted, off) = if sample.1 > 0 { sample } else { all };
    stats::share(preempted as f64, off as f64)
}

/// The entered intervals of a callsite that were not timed.
#[derive(Debug, Clone, Copy)]
struct Count {
    intervals: f64,
    /// The most on-CPU time one of them is taken to have, ns.
    cap_ns: f64,
}

impl Count {
    /// Spans entered once each (every timed span was) leave their calls
    /// not timed, each at most as long as the usual call (`busy_p90_ns`);
    /// spans entered many times (async spans' polls) leave at least the
    /// intervals their timed spans did not time, and each sampled interval
    /// stands for `CPU_SAMPLE_EVERY - 1` others, counting the spans never
    /// timed at all.
    fn of(calls: u64, c: &CpuStats, s: &SampledCpu, busy_p90_ns: u64) -> Self {
        if c.intervals == c.timed_calls {
            Self {
                intervals: calls.saturating_sub(c.timed_calls) as f64,
                cap_ns: busy_p90_ns as f64,
            }
        } else {
            let per_sample = u64::from(CPU_SAMPLE_EVERY - 1);
            Self {
                intervals: c
                    .untimed_intervals
                    .max(s.intervals.saturating_mul(per_sample)) as f64,
                cap_ns: f64::INFINITY,
            }
        }
    }
}

/// What a callsite's CPU estimate reads beside its own figures.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Beside {
    /// The on-CPU share of its children's busy time under it, from their
    /// rows ([`Untimed::by_sample`]).
    pub(crate) children_on_cpu: Option<f64>,
    /// The process's involuntary share of its context switches over the
    /// run, from the timeline ([`preempted_split`]).
    pub(crate) process_preempted: Option<f64>,
}

impl CpuRow {
    /// The figures of `cs`, whose calls' busy-time p90 is `busy_p90_ns`,
    /// with what it reads `beside` its own.
    pub(crate) fn of(cs: &CallsiteStats, busy_p90_ns: u64, beside: Beside) -> Option<Self> {
        let c = cs
            .cpu
            .as_ref()
            .filter(|c| c.busy_ns > 0 && c.timed_calls > 0)?;
        let busy_all = (cs.busy_ns.sum as f64).max(c.busy_ns as f64);
        let self_all = (cs.self_ns.sum as f64).max(c.self_ns as f64);
        let measured_share = stats::share(c.busy_ns as f64, busy_all);
        // What was not timed, and what stands for it: the sample when there
        // is one, else every timed interval.
        let untimed_busy = busy_all - c.busy_ns as f64;
        let untimed_self = self_all - c.self_ns as f64;
        let timed_intervals = c.intervals.saturating_sub(c.untimed_intervals);
        let timed_enough = measured_share >= MEASURED_ENOUGH
            || timed_intervals >= TIMED_ENOUGH
            || like_the_rest(cs, c, timed_intervals, untimed_busy);
        let untimed = match &c.sampled {
            Some(s) if s.intervals >= MIN_SAMPLE && s.busy_ns > 0 => Untimed::by_sample(
                s,
                c,
                Count::of(cs.calls, c, s, busy_p90_ns),
                (untimed_busy, untimed_self),
                beside,
                timed_enough,
            ),
            _ if timed_enough => Untimed::by_rate(c, untimed_busy, untimed_self),
            _ => return None,
        };
        let on_cpu = c.on_cpu_ns.sum as f64 + untimed.on_cpu;
        let self_on_cpu = (c.self_on_cpu_ns as f64 + untimed.self_on_cpu).min(self_all);
        let preempted = c.preempted_ns.sum as f64 + untimed.preempted;
        let self_on_cpu_share = stats::share(self_on_cpu, self_all);
        let self_off = 1.0 - self_on_cpu_share;
        // The span's self time off the CPU splits into preempted and
        // blocked by the switches while it was innermost, as the layer
        // measured it; in older dumps, in the same proportion as over its
        // whole interval (children's switches included).
        let self_preempted_share = match (c.self_preempted_ns, untimed.self_preempted) {
            (Some(ns), Some(more)) => stats::share(ns as f64 + more, self_all).min(self_off),
            _ => self_off * stats::share(preempted, busy_all - on_cpu.min(busy_all)),
        };
        let self_blocked_share = self_off - self_preempted_share;
        let timed = c.timed_calls as f64;
        // Switches per timed interval, times the intervals of a span.
        let intervals_per_call = c.intervals as f64 / timed;
        let per_call = |n: u64| n as f64 / timed_intervals.max(1) as f64 * intervals_per_call;
        Some(Self {
            timed_calls: c.timed_calls,
            measured_share,
            on_cpu_share: stats::share(on_cpu, busy_all),
            self_on_cpu_share,
            self_blocked_share,
            self_preempted_share,
            self_on_cpu_ns: self_on_cpu,
            self_blocked_ns: self_blocked_share * self_all,
            self_preempted_ns: self_preempted_share * self_all,
            preempted_ns: preempted,
            voluntary_per_call: per_call(c.voluntary_switches),
            involuntary_per_call: per_call(c.involuntary_switches),
            intervals_per_call,
        })
    }
}

/// Whether callsite `cs`'s CPU figures (`cpu`, its row's) stand for its
/// calls as a whole: most of its busy time timed, or a uniform sample of
/// the intervals that were not. Otherwise its timed intervals may be each
/// thread's first of the callsite ([`TIMED_ENOUGH`] takes them where
/// threads live long; the layer times them where no thread met the
/// callsite before, and in dumps from before that rule, on every thread):
/// on threads that live for a few calls, those come early in the thread's
/// time slice, and are preempted less than the rest.
/// A fresh batch job's four threads a batch, on two cores, timed the first
/// of each thread's ten 40 µs `checksum` calls: preempted a fortieth as
/// long as its 400 µs `compress` per unit on the CPU, where the scheduler
/// preempted both alike.
pub(crate) fn measured_as_a_whole(cs: &CallsiteStats, cpu: &CpuRow) -> bool {
    cpu.measured_share >= MEASURED_ENOUGH
        || cs
            .cpu
            .as_ref()
            .and_then(|c| c.sampled.as_ref())
            .is_some_and(|s| s.intervals >= MIN_SAMPLE)
}

/// One row of the per-callsite table.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CallsiteRow {
    /// Where the span is.
    pub location: Location,
    /// Its level.
    pub level: String,
    /// Spans closed.
    pub calls: u64,
    /// Sum of busy time (inclusive of children), ns.
    pub busy_total_ns: u64,
    /// Sum of self time (exclusive of children), ns.
    pub self_total_ns: u64,
    /// Share of all self time in the run (0 to 1).
    pub self_share: f64,
    /// Self time on the CPU, ns: estimated from the on-CPU figures where
    /// the layer timed the spans, else the self time (short spans compute).
    pub self_cpu_ns: f64,
    /// Sum of wall time, ns.
    pub wall_total_ns: u64,
    /// Sum of idle time, ns.
    pub idle_total_ns: u64,
    /// Idle time over wall time (0 to 1).
    pub idle_share: f64,
    /// Mean busy time per call, ns.
    pub busy_mean_ns: f64,
    /// Busy-time median, ns.
    pub busy_p50_ns: u64,
    /// Busy-time 90th percentile, ns.
    pub busy_p90_ns: u64,
    /// Busy-time 99th percentile, ns.
    pub busy_p99_ns: u64,
    /// Busy-time 99.9th percentile, ns.
    pub busy_p999_ns: u64,
    /// Busy-time maximum, ns.
    pub busy_max_ns: u64,
    /// Allocation figures, `None` when the dump did not track allocation.
    pub alloc: Option<AllocRow>,
    /// Sum over the spans of process RSS at close minus at open, `None`
    /// without a sampler. Concurrent spans each count the same growth, so
    /// the sum can exceed what the process ever held: read the per-call
    /// figures.
    pub rss_delta_bytes: Option<i64>,
    /// Process RSS at close minus at open, mean per call. Coarse: as the
    /// sampler saw it (its interval), for the whole process.
    pub rss_delta_per_call_bytes: Option<f64>,
    /// The largest growth of process RSS over one call.
    pub rss_delta_max_bytes: Option<i64>,
    /// Live heap figures, `None` when the dump has none.
    pub heap: Option<HeapRow>,
    /// On-CPU figures, `None` when the layer did not time the spans on the
    /// CPU.
    pub cpu: Option<CpuRow>,
}
