//! What every detector reads, built once per analysis: run-wide totals, one
//! row per callsite (with its live-heap growth), the process summary and
//! its RSS fit.

use std::collections::HashSet;

use perf_layer::dump::{CallEdge, CallsiteStats, Dump};

use crate::loaded::GroupedCallsite;
use serde::Serialize;

use super::advice::Advice;
use super::busy_cores::{BusyCores, MAX_PREEMPTED_SHARE};
use super::finding::{Draft, Finding, Resource};
use super::process::{CpuLevel, ProcessSummary};
use super::rows::{AllocRow, Beside, CallsiteRow, CpuRow, HeapRow};
use crate::LoadedDump;
use crate::callsite::Location;
use crate::config::Config;
use crate::stats;

/// Run-wide totals the shares are computed against.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    /// Run duration, ns (the sum of the parts' durations for merged dumps).
    pub duration_ns: u64,
    /// Sum of every callsite's self time, ns: all instrumented work.
    pub self_ns: u64,
    /// Sum of every callsite's self time on the CPU in its usual calls, ns:
    /// its measured on-CPU self time where timed, else its self time less
    /// its tail's excess.
    pub self_cpu_ns: f64,
    /// CPU time the process used over the run, ns (every thread), when the
    /// dump records it.
    pub cpu_ns: Option<u64>,
    /// The whole that `time` shares are of, ns: the process's CPU time, or
    /// the spans' self time on the CPU when that is larger (all self time
    /// when the CPU time is unknown). Up to 10% larger, it is the estimate's
    /// error and shares are still called of the process's CPU time.
    pub time_whole_ns: u64,
    /// CPU time over wall time: the cores the process kept busy on average
    /// (1 when the CPU time is unknown).
    pub cpu_utilization: f64,
    /// Spans closed.
    pub calls: u64,
    /// Sum of every callsite's self-allocated bytes, `None` when not tracked.
    pub self_alloc_bytes: Option<u64>,
    /// The layer's estimate of its own share of the run (0 to 1).
    pub overhead_share: f64,
    /// Threads that recorded spans, on average over the run (their time
    /// recording, `run.span_threads_active_ns`, over the run's wall time;
    /// in older dumps `run.span_threads`; in dumps of 0.1 estimated from
    /// the layer's overhead figures; 1 when unknown).
    pub recording_threads: f64,
    /// How busy the process kept the CPUs it could use (0 to 1): its CPU
    /// time over duration x the recording threads (at most the cores);
    /// where the dump does not record the CPU time, self time over duration
    /// x recording threads. Taken from the process's CPU, not from time
    /// inside spans: work outside spans keeps a core as busy.
    pub utilization: f64,
    /// The process's CPU time outside every span, ns, where it is worth
    /// saying (a quarter of the process's CPU and 100 ms at least): the
    /// header says its share, and a note what it may be.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outside_spans_cpu_ns: Option<u64>,
}

/// How the figures every detector and renderer reads are measured, where a
/// setting shapes them: the live-heap growth of each row and the process
/// summary's CPU saturation. The analysis takes them from the classes that
/// own those settings (`ClassSettings::measures`), so the context reads no
/// class's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Measures {
    /// The part of a live-bytes timeline the rows' growth is fitted over.
    pub(crate) growth: GrowthWindow,
    /// The CPU level a timeline sample counts as saturated at.
    pub(crate) saturation: CpuLevel,
}

/// The part of a callsite's live-bytes timeline a growth fit reads: the
/// points after the first `warmup_share` of them, and only when at least
/// `min_points` are left.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct GrowthWindow {
    /// The share of the run's points left out as warm-up (0 to 1).
    pub(crate) warmup_share: f64,
    /// The fewest points a fit is made of.
    pub(crate) min_points: usize,
}

impl GrowthWindow {
    /// The points of a callsite's live-bytes timeline after warm-up, as
    /// `(seconds, bytes)`. Empty when the dump has no timeline.
    pub(crate) fn points(
        &self,
        dump: &Dump,
        heap: &perf_layer::dump::HeapStats,
    ) -> Vec<(f64, f64)> {
        let Some(summary) = &dump.heap else {
            return Vec::new();
        };
        let t = &summary.timeline_t_ms;
        let n = t.len().min(heap.live_timeline_bytes.len());
        let skip = (n as f64 * self.warmup_share).ceil() as usize;
        (skip.min(n)..n)
            .map(|i| (t[i] as f64 / 1e3, heap.live_timeline_bytes[i] as f64))
            .collect()
    }

    /// The least-squares growth of live bytes after warm-up, when there are
    /// at least `min_points` points.
    pub(crate) fn fit(
        &self,
        dump: &Dump,
        heap: &perf_layer::dump::HeapStats,
    ) -> Option<stats::LinearFit> {
        let points = self.points(dump, heap);
        if points.len() < self.min_points {
            return None;
        }
        stats::least_squares(&points)
    }
}

/// The spans' CPU time, estimated from samples of their intervals, may come
/// out this much above the process's measured CPU time and still be of it:
/// a sampled interval's on-CPU time includes part of its own reading and
/// the switch that timing brings (four threads spinning on two cores: 6%
/// over). Beyond it, shares are of the spans' CPU time as estimated (their
/// self time on the CPU, untimed spans' at their self time), and say so.
const CPU_ESTIMATE_SLACK: f64 = 1.1;

impl Totals {
    /// The whole a resource's shares are of, in words: `the process's CPU
    /// time` (`all self time in spans` when the dump does not record it,
    /// `the spans' estimated CPU time` when that is over 10% larger), `the
    /// run's wall time`, `all bytes allocated`, `peak memory`. A fresh
    /// four-thread job on two cores named its whole "all self time in
    /// spans" (1.55 s) in one run of three where it was the spans' CPU
    /// time as estimated (849 ms, 9 to 14% over the process's 757 ms).
    pub fn share_of(&self, resource: Resource) -> &'static str {
        match (resource, self.cpu_ns) {
            (Resource::Time, None) => "all self time in spans",
            (Resource::Time, Some(cpu)) if cpu as f64 * CPU_ESTIMATE_SLACK >= self.self_cpu_ns => {
                "the process's CPU time"
            }
            (Resource::Time, Some(_)) => "the spans' estimated CPU time",
            (Resource::WallTime, _) => "the run's wall time",
            (Resource::Allocation, _) => "all bytes allocated",
            (Resource::Memory, _) => "peak memory",
        }
    }
}

/// See [`Context::usual_cpu_ns`].
fn usual_cpu_ns(row: &CallsiteRow, tail_excess_ns: f64) -> f64 {
    match row.cpu {
        Some(_) => row.self_cpu_ns,
        None => row.self_cpu_ns - tail_excess_ns.clamp(0.0, row.self_cpu_ns),
    }
}

/// Everything the detectors read, built once.
#[derive(Debug)]
pub(crate) struct Context<'a> {
    pub(crate) dump: &'a Dump,
    pub(crate) config: &'a Config,
    pub(crate) totals: Totals,
    /// One per callsite, in the dump's order (index-aligned with
    /// `dump.callsites`).
    pub(crate) rows: Vec<CallsiteRow>,
    /// The time each callsite's calls above p90 spent beyond it, ns.
    pub(crate) tail_excess_ns: Vec<f64>,
    /// The same of each callsite's per-span preempted time, scaled to every
    /// call, when its spans were timed on the CPU.
    pub(crate) preempted_tail_excess_ns: Vec<Option<f64>>,
    pub(crate) process: ProcessSummary,
    /// The dump's duration, or the longest span's wall time without one.
    pub(crate) run_wall_ns: f64,
    /// The layer's cost per span, ns (0 when unknown): its callbacks' time
    /// as the run measured it over the spans, or the calibrated cost of one.
    pub(crate) per_span_ns: f64,
    /// Whether every callsite carries allocation figures.
    pub(crate) alloc_tracked: bool,
    /// The callsites the dump split into groups, as they were whole.
    pub(crate) grouped: &'a [GroupedCallsite],
    /// Each callsite's most frequent caller, by index (index-aligned with
    /// `dump.callsites`; `None` for an outermost one).
    pub(crate) callers: Vec<Option<usize>>,
}

impl<'a> Context<'a> {
    /// The context of a dump, its figures measured with `measures`.
    pub(crate) fn new(input: &'a LoadedDump, config: &'a Config, measures: Measures) -> Self {
        let dump = input.dump();
        let total_self: u128 = dump
            .callsites
            .iter()
            .map(|c| u128::from(c.self_ns.sum))
            .sum();
        let total_self_f = total_self as f64;
        let total_calls: u128 = dump.callsites.iter().map(|c| u128::from(c.calls)).sum();
        let alloc_tracked =
            dump.allocations_tracked && dump.callsites.iter().all(|c| c.alloc.is_some());
        let total_self_alloc: u128 = dump
            .callsites
            .iter()
            .filter_map(|c| c.alloc.map(|a| u128::from(a.self_alloc_bytes)))
            .sum();
        let total_self_allocs: u128 = dump
            .callsites
            .iter()
            .filter_map(|c| c.alloc.map(|a| u128::from(a.self_allocs)))
            .sum();
        let run_wall_ns = run_wall_ns(dump);
        let o = &dump.overhead;
        let recording_threads = recording_threads(dump, run_wall_ns);
        let cores = dump
            .run
            .cores
            .filter(|&c| c > 0)
            .map_or(f64::INFINITY, f64::from);
        let utilization = match dump.run.cpu_ns.filter(|&ns| ns > 0) {
            Some(cpu) => stats::share(cpu as f64, run_wall_ns * recording_threads.min(cores)),
            None => stats::share(total_self_f, run_wall_ns * recording_threads),
        };

        let mut rows = Vec::with_capacity(dump.callsites.len());
        let mut tail_excess_ns = Vec::with_capacity(dump.callsites.len());
        let mut preempted_tail_excess_ns = Vec::with_capacity(dump.callsites.len());
        let wholes = Wholes {
            self_ns: total_self_f,
            self_alloc_bytes: total_self_alloc as f64,
            self_allocs: total_self_allocs as f64,
            alloc_tracked,
        };
        let beside = Beside {
            children_on_cpu: None,
            process_preempted: process_preempted(dump),
        };
        for (cs, busy) in dump.callsites.iter().zip(input.busy_summaries()) {
            tail_excess_ns.push(busy.tail_excess);
            preempted_tail_excess_ns.push(preempted_tail_excess(cs, busy.preempted_tail_excess));
            rows.push(row(
                cs,
                busy.quantiles,
                &wholes,
                &measures.growth,
                dump,
                beside,
            ));
        }

        refine_by_children(dump, &mut rows, beside);
        for (row, frees) in rows.iter_mut().zip(self_frees(dump)) {
            if let Some(a) = row.alloc.as_mut() {
                a.self_frees = frees;
            }
        }
        for (((row, cs), explained), &excess) in rows
            .iter()
            .zip(&dump.callsites)
            .zip(&mut preempted_tail_excess_ns)
            .zip(&tail_excess_ns)
        {
            *explained = preempted_tail_of_short_calls(row, cs, excess, *explained);
        }
        missed_tails_off_the_cpu(
            dump,
            cpu_ns_of(dump),
            &mut rows,
            &tail_excess_ns,
            &mut preempted_tail_excess_ns,
        );
        preempted_within_the_wait_for_cores(dump, &mut rows);
        crate::callsite::qualify(rows.iter_mut().map(|r| &mut r.location));

        let overhead_share = if o.fraction_of_run.is_finite() {
            o.fraction_of_run.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let cpu_ns = cpu_ns_of(dump);
        let self_ns = u64::try_from(total_self).unwrap_or(u64::MAX);
        let self_cpu_ns = spans_cpu_ns(dump, &rows, &tail_excess_ns);
        let cpu_utilization = match cpu_ns {
            Some(cpu) if run_wall_ns > 0.0 => cpu as f64 / run_wall_ns,
            _ => 1.0,
        };
        let per_span_ns = measured_per_span_ns(o).unwrap_or(if o.per_span_ns.is_finite() {
            o.per_span_ns.max(0.0)
        } else {
            0.0
        });
        let mut cx = Self {
            dump,
            config,
            totals: Totals {
                duration_ns: dump.run.duration_ns,
                self_ns,
                self_cpu_ns,
                cpu_ns,
                time_whole_ns: cpu_ns.map_or(self_ns, |cpu| cpu.max(self_cpu_ns as u64)),
                cpu_utilization,
                calls: u64::try_from(total_calls).unwrap_or(u64::MAX),
                self_alloc_bytes: alloc_tracked
                    .then(|| u64::try_from(total_self_alloc).unwrap_or(u64::MAX)),
                overhead_share,
                recording_threads,
                utilization,
                outside_spans_cpu_ns: None,
            },
            rows,
            tail_excess_ns,
            preempted_tail_excess_ns,
            process: ProcessSummary::of(dump, measures.saturation),
            run_wall_ns,
            per_span_ns,
            alloc_tracked,
            grouped: input.grouped(),
            callers: heaviest_callers(dump),
        };
        cx.totals.outside_spans_cpu_ns = cx.outside_cpu_ns().map(|(outside, _)| outside as u64);
        cx
    }

    /// The outermost caller of callsite `i`, reached through each span's
    /// most frequent caller (`i` itself when it has none); a cycle of
    /// recursive callsites ends the walk at the first callsite seen twice.
    pub(crate) fn outermost(&self, i: usize) -> usize {
        let mut at = i;
        let mut seen = vec![false; self.callers.len()];
        while let Some(&Some(caller)) = self.callers.get(at) {
            seen[at] = true;
            if seen[caller] {
                break;
            }
            at = caller;
        }
        at
    }

    /// Every callsite with its row, in the dump's order, but those whose
    /// guards did not nest ([`super::misnested`]): their figures are other
    /// tasks' and idle workers', for no detector to read.
    pub(crate) fn callsites(
        &self,
    ) -> impl Iterator<Item = (usize, &'a perf_layer::dump::CallsiteStats, &CallsiteRow)> {
        self.dump
            .callsites
            .iter()
            .zip(&self.rows)
            .enumerate()
            .filter(|(_, (cs, _))| !super::misnested::misnested(cs))
            .map(|(i, (cs, row))| (i, cs, row))
    }

    /// `ns` of CPU work as a share of the whole of every `time` share
    /// ([`Totals::time_whole_ns`]).
    pub(crate) fn time_share(&self, ns: f64) -> f64 {
        stats::share(ns, self.totals.time_whole_ns as f64)
    }

    /// The recording threads' wall time, ns: the run's wall time times the
    /// threads that recorded spans; the whole of `blocked`'s, a blocking
    /// tail's and CPU contention's shares.
    pub(crate) fn threads_wall_ns(&self) -> f64 {
        self.run_wall_ns * self.totals.recording_threads
    }

    /// The cores the process could use (`run.cores`), unbounded where the
    /// dump does not say.
    pub(crate) fn cores(&self) -> f64 {
        self.dump
            .run
            .cores
            .filter(|&n| n > 0)
            .map_or(f64::INFINITY, f64::from)
    }

    /// The whole of time spent off the CPU, ns, and its name: the
    /// recording threads' wall time ([`threads_wall_ns`](Self::threads_wall_ns)),
    /// or, for time `in_poll` (inside a task's poll, stalling a runtime
    /// worker), the runtime workers': the recording threads at most one per
    /// core (a runtime's default workers; the threads of its blocking pool
    /// also record spans, and run no task).
    pub(crate) fn off_cpu_whole(&self, in_poll: bool) -> (f64, &'static str) {
        if in_poll {
            let cores = self.cores();
            (
                self.run_wall_ns * self.totals.recording_threads.min(cores),
                "the runtime workers' wall time",
            )
        } else {
            (self.threads_wall_ns(), "the recording threads' wall time")
        }
    }

    /// The process's CPU time that ran outside every span, ns, when it is
    /// worth saying: the process's CPU less the spans' self time on the
    /// CPU (their self time where not timed) and the layer's background
    /// threads', at least `OUTSIDE_MIN_SHARE` of the process's CPU and
    /// `OUTSIDE_MIN_NS`; with that CPU. Threads that record no span (a
    /// rayon pool) or code between spans: no finding can name it, and a
    /// span that waits for it reads as blocked.
    pub(crate) fn outside_cpu_ns(&self) -> Option<(f64, f64)> {
        /// At least this share of the process's CPU...
        const OUTSIDE_MIN_SHARE: f64 = 0.25;
        /// ...and at least this much, ns (100 ms).
        const OUTSIDE_MIN_NS: f64 = 100e6;
        let (outside, cpu) = self.cpu_outside_spans_ns()?;
        (outside >= OUTSIDE_MIN_SHARE * cpu && outside >= OUTSIDE_MIN_NS).then_some((outside, cpu))
    }

    /// Whether the process idled through most of the run outside every
    /// span: its CPU under [`IDLE_CORES_SHARE`] of its cores, and its spans
    /// with no parent open for under [`IDLE_OPEN_SHARE`] of the time of the
    /// threads that recorded them (overlapping spans count twice, so that
    /// is at most the share any span was open; spans still open when the
    /// dump was written are not in it). Returns the cores busy, the
    /// cores, and that open share; `None` where the dump does not record
    /// the CPU, the cores or the recording time.
    pub(crate) fn idle_outside_spans(&self) -> Option<(f64, u32, f64)> {
        let cpu = self.totals.cpu_ns.filter(|&ns| ns > 0)? as f64;
        let cores = self.dump.run.cores.filter(|&n| n > 0)?;
        let recording = self.dump.run.span_threads_active_ns.filter(|&ns| ns > 0)? as f64;
        let busy = cpu / self.run_wall_ns.max(1.0);
        let open: f64 = self
            .dump
            .callsites
            .iter()
            .map(|cs| {
                let under_a_parent: u64 = self.edges_into(cs.id).map(|e| e.calls).sum();
                let roots = cs.calls.saturating_sub(under_a_parent);
                stats::share(roots as f64, cs.calls as f64) * cs.wall_ns.sum as f64
            })
            .sum();
        let open = open / recording;
        (busy < IDLE_CORES_SHARE * f64::from(cores) && open < IDLE_OPEN_SHARE)
            .then_some((busy, cores, open))
    }

    /// The process's CPU time outside every span (less the layer's
    /// background thread), ns, with the process's CPU time; `None` where
    /// the dump does not record the process's CPU.
    pub(crate) fn cpu_outside_spans_ns(&self) -> Option<(f64, f64)> {
        let cpu = self.totals.cpu_ns.filter(|&ns| ns > 0)? as f64;
        let in_spans: f64 = self
            .rows
            .iter()
            .map(|r| {
                r.cpu
                    .as_ref()
                    .map_or(r.self_total_ns as f64, |c| c.self_on_cpu_ns)
            })
            .sum();
        let outside = cpu - in_spans - self.dump.overhead.background_cpu_ns as f64;
        Some((outside.max(0.0), cpu))
    }

    /// What the process's busy cores leave of a gain of `cost ×
    /// recoverable` of the run's wall time from time `cs`'s spans spent off
    /// the CPU ([`BusyCores`]); `None` when they leave all of it.
    pub(crate) fn busy_cores(
        &self,
        cs: &CallsiteStats,
        cost: f64,
        recoverable: f64,
    ) -> Option<BusyCores> {
        // The watch cannot tell blocking from preemption: its waits are read
        // only for a span whose time off the CPU is mostly blocking.
        let blocking = self
            .index_of(cs.id)
            .and_then(|i| self.rows[i].cpu.as_ref())
            .is_some_and(|c| {
                let off = c.self_blocked_ns + c.self_preempted_ns;
                off > 0.0 && c.self_preempted_ns <= MAX_PREEMPTED_SHARE * off
            });
        BusyCores::of(self.dump, self.run_wall_ns, cs, blocking, cost, recoverable)
    }

    /// The call edges into callsite `id` from another callsite (its
    /// callers; a recursive span's edge to itself left out).
    pub(crate) fn edges_into(&self, id: u32) -> impl Iterator<Item = &'a CallEdge> {
        self.dump
            .edges
            .iter()
            .filter(move |e| e.child == id && e.parent != id)
    }

    /// The index of callsite `id` in the dump's callsites and in
    /// [`rows`](Self::rows); `None` when no callsite has it (an edge of a
    /// hostile or trimmed dump).
    pub(crate) fn index_of(&self, id: u32) -> Option<usize> {
        index_in(self.dump, id)
    }

    /// The whole a resource's shares are of, in words.
    pub(crate) fn share_of(&self, resource: Resource) -> &'static str {
        self.totals.share_of(resource)
    }

    /// Callsite `i`'s self time on the CPU in its usual calls, ns: measured
    /// where the layer timed its spans on the CPU; else its self time less
    /// its tail's excess (a span too short to be timed that is sometimes
    /// far slower mostly waits then: a miss that reads a disk, a lock; and
    /// the tail latency finding has that time).
    pub(crate) fn usual_cpu_ns(&self, i: usize) -> f64 {
        usual_cpu_ns(&self.rows[i], self.tail_excess_ns[i])
    }

    /// The share of callsite `i`'s tail excess (its calls' busy time beyond
    /// the busy p90) that preemption explains: the same excess of its
    /// per-span preempted time (beyond the preempted p90) over it, at most
    /// 1; 0 when the spans were not timed on the CPU. Preemption every call
    /// shares moves p90 with the rest and explains no tail; preemption that
    /// a few calls had is their tail.
    pub(crate) fn tail_preempted_share(&self, i: usize) -> f64 {
        let excess = self.tail_excess_ns[i];
        match self.preempted_tail_excess_ns[i] {
            Some(preempted) if excess > 0.0 => (preempted / excess).min(1.0),
            _ => 0.0,
        }
    }

    /// One span's instrumentation in a loop, ns: the layer's cost and
    /// tracing's (the floor's; 0 in older dumps), both calibrated on spans
    /// made back to back. Older dumps have only the layer's cost per span
    /// as the run's callbacks measured it (an average over every span, an
    /// async span's polls and events included) and as calibrated on cold
    /// caches: the lower of the two, for a lower bound. A loop's polls or
    /// timed intervals beyond one untimed enter are not counted: hot loops
    /// are cheap synchronous spans, timed one in 512. What a hot loop's
    /// calls cost beside their own time, what a parent's self time holds
    /// of its children's, and what a span's wall time holds beside its
    /// busy time.
    pub(crate) fn instrumentation_per_span(&self) -> f64 {
        let o = &self.dump.overhead;
        let known = |ns: f64| if ns.is_finite() { ns.max(0.0) } else { 0.0 };
        let layer = if known(o.loop_per_span_ns) > 0.0 {
            known(o.loop_per_span_ns)
        } else {
            match known(o.per_span_ns) {
                0.0 => self.per_span_ns,
                calibrated => calibrated.min(self.per_span_ns),
            }
        };
        layer + known(o.floor_per_span_ns)
    }

    /// [`Self::instrumentation_per_span`] for callsite `cs`'s spans, scaled
    /// up where the run's own timed callbacks of those spans cost more
    /// than the calibration's: its sampled time a callback (less the
    /// samples' clock reads) over the calibrated `loop_per_span_ns` a
    /// callback (a span's four: new, enter, exit, close), where that is
    /// over 1, its spans are entered once a call and at least
    /// [`MIN_TIMED_CALLBACKS`] callbacks stand behind it. A callback, not a
    /// span: the events a span holds are callbacks of its own, timed inside
    /// its busy time.
    ///
    /// The calibration runs once, as the layer is built; a loaded or
    /// throttled machine makes every callback of the run dearer, and the
    /// parent's self time holds its children's at the run's price. Two
    /// threads making 200 `tokenize_word` spans a file (a debug build, 2
    /// cores), in seven runs: the parent's self time 6.1 to 8.8 µs a child,
    /// the children's timed callbacks 3.0 to 4.3 µs a span (four callbacks
    /// each), the calibration 6.3 to 6.9 µs; the dearest run read a
    /// `process_file` hot spot of 19.4% of the CPU that was its children's
    /// instrumentation. Never scaled down: a cheaper run keeps the
    /// calibrated figure (a lower bound).
    pub(crate) fn instrumentation_per_span_of(&self, cs: &CallsiteStats) -> f64 {
        let calibrated = self.instrumentation_per_span();
        let o = &self.dump.overhead;
        let once = cs.intervals.is_some_and(|n| n <= cs.calls);
        let Some(timed) = cs
            .layer
            .filter(|l| once && l.callbacks >= MIN_TIMED_CALLBACKS)
        else {
            return calibrated;
        };
        if !(o.loop_per_span_ns.is_finite() && o.loop_per_span_ns > 0.0) {
            return calibrated;
        }
        let clock = if o.per_clock_read_ns.is_finite() {
            o.per_clock_read_ns.max(0.0)
        } else {
            0.0
        };
        let measured =
            (timed.ns as f64 - clock * timed.callbacks as f64).max(0.0) / timed.callbacks as f64;
        calibrated * (measured / (o.loop_per_span_ns / CALIBRATED_CALLBACKS)).max(1.0)
    }

    /// The call edges from callsite `id` to its direct children, itself
    /// excluded.
    pub(crate) fn child_edges(&self, id: u32) -> impl Iterator<Item = &'a CallEdge> {
        self.dump
            .edges
            .iter()
            .filter(move |e| e.parent == id && e.child != id)
    }

    /// Whether callsite `inner` runs inside callsite `outer`'s spans: a
    /// descendant of it by the call edges.
    pub(crate) fn descends_from(&self, inner: u32, outer: u32) -> bool {
        let mut seen = HashSet::from([outer]);
        let mut next = vec![outer];
        while let Some(id) = next.pop() {
            for e in self.child_edges(id) {
                if e.child == inner {
                    return true;
                }
                if seen.insert(e.child) {
                    next.push(e.child);
                }
            }
        }
        false
    }

    /// The instrumentation of callsite `id`'s direct children, ns: a child
    /// span's creation, close, and its enter and exit up to and from their
    /// timestamps run while the parent is innermost, so they are in its
    /// self time. For each span it opened as their direct parent (its own
    /// callsite's too, where it recurses),
    /// [`Self::instrumentation_per_span`] (perf-layer's and tracing's), and
    /// [`Self::other_layers_per_span`] of the child's callsite (the
    /// subscriber's other layers' work at its edges).
    pub(crate) fn children_instrumentation_ns(&self, id: u32) -> f64 {
        // A recursive span's own levels count too: a fresh `eval` over
        // expression trees, 9.5 million spans with 306 ns of
        // instrumentation each, read 399 ns of self time a call and a hot
        // loop of 100% of the CPU where its own work was a `match`.
        self.dump
            .edges
            .iter()
            .filter(|e| e.parent == id)
            .map(|e| {
                let child = self.index_of(e.child).map(|i| &self.dump.callsites[i]);
                let per_span = child.map_or_else(
                    || self.instrumentation_per_span(),
                    |c| self.instrumentation_per_span_of(c) + self.other_layers_per_span(c),
                );
                e.calls as f64 * per_span
            })
            .sum()
    }

    /// What the subscriber's other layers spent on each of callsite `cs`'s
    /// spans outside its busy time, ns: a span entered once a call idles
    /// only between its creation and its enter and between its exit and
    /// its close, where the layers inside perf-layer run their enter and
    /// close callbacks (an OpenTelemetry layer exporting each span as it
    /// closes): perf-layer, the outermost, timestamps its enter and its
    /// close after theirs. Its idle time a call, less the
    /// instrumentation perf-layer and tracing account for, where that idle
    /// time is at most [`MAX_EDGE_NS`] a call (a span created, handed to a
    /// queue and entered by another thread later idles there, and that wait
    /// is no layer's); 0 for a span entered more than once a call (an async
    /// span's idle time is its awaits). A fresh loop of 50 `lookup` spans a
    /// call beside `tracing-opentelemetry`: 750 ns of idle time a span, 81
    /// without it.
    pub(crate) fn other_layers_per_span(&self, cs: &CallsiteStats) -> f64 {
        let calls = cs.calls as f64;
        let once = cs.intervals.is_some_and(|n| n <= cs.calls);
        if calls <= 0.0 || !once {
            return 0.0;
        }
        let idle = cs.idle_ns.sum as f64 / calls;
        if idle > MAX_EDGE_NS {
            return 0.0;
        }
        (idle - self.instrumentation_per_span_of(cs)).max(0.0)
    }

    /// The wall time callsite `cs`'s spans were live in, ns: its `active`
    /// window (first opening to last closing), at most the run's; the
    /// run's without one. What a crowd of calls is counted over.
    pub(crate) fn live_window_ns(&self, cs: &CallsiteStats) -> f64 {
        cs.active
            .map(|a| a.len_ns() as f64)
            .filter(|&w| w > 0.0)
            .map_or(self.run_wall_ns, |w| w.min(self.run_wall_ns))
    }

    /// The process's CPU time that the spans timed on the CPU left to the
    /// others, ns (at least one): the most a span not timed on it can have
    /// spent there. `None` when the dump has no process CPU time.
    pub(crate) fn cpu_left_by_timed_spans(&self) -> Option<f64> {
        let cpu = self.totals.cpu_ns.filter(|&ns| ns > 0)? as f64;
        let timed: f64 = self
            .rows
            .iter()
            .filter_map(|r| r.cpu.as_ref())
            .map(|c| c.self_on_cpu_ns)
            .sum();
        // At least a nanosecond: the timed spans' estimate may come out
        // above the process's measured CPU.
        Some((cpu - timed).max(1.0))
    }

    /// The first and last timeline samples' distance, in seconds.
    pub(crate) fn timeline_span_s(&self) -> f64 {
        let s = &self.dump.timeline.samples;
        match (s.first(), s.last()) {
            (Some(a), Some(b)) => b.t_ms.saturating_sub(a.t_ms) as f64 / 1e3,
            _ => 0.0,
        }
    }

    /// Scores a detector's draft with the configured weights and bands,
    /// and gives the finding the advice `advise` writes for it.
    pub(crate) fn score(&self, draft: Draft, advise: impl FnOnce(&Finding) -> Advice) -> Finding {
        self.score_scaled(draft, 1.0, advise)
    }

    /// [`Context::score`] with the resource's weight times `scale` (0 to
    /// 1): a finding whose resource matters less here than it usually
    /// does (allocations whose allocator calls cost the process little).
    pub(crate) fn score_scaled(
        &self,
        draft: Draft,
        scale: f64,
        advise: impl FnOnce(&Finding) -> Advice,
    ) -> Finding {
        let resource = draft.resource;
        let weight = self
            .config
            .scoring
            .weight(resource, self.totals.cpu_utilization)
            * scale.clamp(0.0, 1.0);
        draft.score(weight, self.share_of(resource), &self.config.bands, advise)
    }
}

/// The run's wall time, ns: its duration, or in a dump without one the
/// longest span.
fn run_wall_ns(dump: &Dump) -> f64 {
    if dump.run.duration_ns > 0 {
        dump.run.duration_ns as f64
    } else {
        dump.callsites
            .iter()
            .map(|c| c.wall_ns.sum as f64)
            .fold(0.0, f64::max)
    }
}

/// Each callsite's most frequent caller (by the call edges' counts; ties
/// to the lower id), by index in the dump's callsites: one pass over the
/// edges, however many waits walk up from them.
fn heaviest_callers(dump: &Dump) -> Vec<Option<usize>> {
    let mut best: Vec<Option<(u64, std::cmp::Reverse<u32>, usize)>> =
        vec![None; dump.callsites.len()];
    for e in dump.edges.iter().filter(|e| e.parent != e.child) {
        let (Some(child), Some(parent)) = (index_in(dump, e.child), index_in(dump, e.parent))
        else {
            continue;
        };
        let key = (e.calls, std::cmp::Reverse(e.parent), parent);
        if best[child].is_none_or(|b| (key.0, key.1) > (b.0, b.1)) {
            best[child] = Some(key);
        }
    }
    best.into_iter()
        .map(|b| b.map(|(_, _, parent)| parent))
        .collect()
}

/// Each callsite's deallocations while it was innermost, estimated
/// ([`AllocRow::self_frees`]), in the dump's order: its inclusive frees
/// less its direct children's, each child's in the share of its calls
/// made under it.
fn self_frees(dump: &Dump) -> Vec<u64> {
    let frees = |i: usize| dump.callsites[i].alloc.map_or(0, |a| a.frees);
    let mut children = vec![0.0f64; dump.callsites.len()];
    for e in dump.edges.iter().filter(|e| e.parent != e.child) {
        let (Some(p), Some(c)) = (index_in(dump, e.parent), index_in(dump, e.child)) else {
            continue;
        };
        let calls = dump.callsites[c].calls;
        if calls > 0 {
            let under = (e.calls as f64 / calls as f64).min(1.0);
            children[p] += frees(c) as f64 * under;
        }
    }
    children
        .iter()
        .enumerate()
        .map(|(i, &c)| (frees(i) as f64 - c).max(0.0).round() as u64)
        .collect()
}

/// The index of callsite `id` in `dump`'s callsites ([`Context::index_of`]).
fn index_in(dump: &Dump, id: u32) -> Option<usize> {
    // perf-layer numbers its callsites in order: the id is the index, but
    // in a trimmed or merged dump.
    let at = id as usize;
    if dump.callsites.get(at).is_some_and(|c| c.id == id) {
        return Some(at);
    }
    dump.callsites.iter().position(|c| c.id == id)
}

/// Threads that recorded spans, on average over the run: their recording
/// time over the run's wall time (`run.span_threads_active_ns`), so that
/// workers that recorded in one phase count for that phase; at least 1,
/// at most the dump's thread count. In dumps without it, the thread count
/// (`run.span_threads`); in dumps of 0.1, from the layer's overhead
/// estimate (fraction = estimated / (duration x threads)); 1 when unknown,
/// which overstates utilisation and so understates what waiting can give
/// back.
pub(crate) fn recording_threads(dump: &Dump, run_wall_ns: f64) -> f64 {
    let o = &dump.overhead;
    if let Some(n) = dump.run.span_threads {
        let count = f64::from(n.max(1));
        match dump.run.span_threads_active_ns {
            Some(active) if run_wall_ns > 0.0 => (active as f64 / run_wall_ns).clamp(1.0, count),
            _ => count,
        }
    } else if o.fraction_of_run.is_finite()
        && o.fraction_of_run > 0.0
        && o.estimated_ns > 0
        && run_wall_ns > 0.0
    {
        (o.estimated_ns as f64 / o.fraction_of_run / run_wall_ns).clamp(1.0, 1e6)
    } else {
        1.0
    }
}

/// What a row's shares are shares of.
struct Wholes {
    /// Self time in every span, ns.
    self_ns: f64,
    /// Bytes allocated in every span as its innermost.
    self_alloc_bytes: f64,
    /// Allocations made in every span as its innermost.
    self_allocs: f64,
    /// Every callsite has allocation figures.
    alloc_tracked: bool,
}

/// A span's busy-time tail beyond its usual calls that preemption
/// explains: scaled from its timed calls to all where every interval was
/// timed; as the timed calls measured it where some were not (sampled
/// polls do not stand for a span, but a slow call's long intervals are
/// the ones timed). A fresh service's `handle`, whose own time was mostly
/// preempted beside a blocking pool's threads, had its tail reported as
/// its own when partly timed spans read no preemption at all.
fn preempted_tail_excess(cs: &CallsiteStats, excess: Option<f64>) -> Option<f64> {
    let excess = excess?;
    let cpu = cs.cpu.as_ref()?;
    let timed = cpu.timed_calls;
    if timed == 0 {
        return None;
    }
    if cpu.untimed_intervals == 0 {
        return Some(excess * cs.calls.max(timed) as f64 / timed as f64);
    }
    // Some intervals were too short to time (an async span's quick polls):
    // the slow calls' long intervals were timed, so the timed calls'
    // preempted tail is the tail's, not scaled up by calls that are not in
    // it. A lower bound: preemption in an untimed interval is not counted.
    Some(excess)
}

/// Below this share of its cores busy, and...
const IDLE_CORES_SHARE: f64 = 0.25;

/// ...its spans open for under this share of the recording threads' time,
/// the process idled outside every span ([`Context::idle_outside_spans`]).
const IDLE_OPEN_SHARE: f64 = 0.25;

/// Calls whose usual length (busy p50) is at most this cannot be
/// preempted without landing in their tail: a preemption holds a thread
/// off the CPU for a scheduler slice, milliseconds on a busy machine (4.9
/// ms a switch for eight threads computing on two cores). The median, not
/// the p90: where more than a tenth of the calls were preempted, the p90
/// is itself a preempted call. A fresh service's `/login` requests (16 µs
/// polls on two runtime workers beside sixteen blocking-pool threads
/// hashing passwords) had a p90 of 610 µs, the tail of their polls 82%
/// preempted in its sample, and read "a tail in its own time, 1.1%
/// explained by preemption": capping the blocking pool cut the other
/// routes' latency by 57%.
const SHORT_FOR_A_PREEMPTION_NS: u64 = 100_000;

/// Whether `row`'s calls are short enough for a preemption to land in
/// their tail ([`SHORT_FOR_A_PREEMPTION_NS`]) and its timed calls fewer
/// than the tail's (a tenth of the calls): its slow calls were not timed.
fn tail_missed_by_its_timing(row: &CallsiteRow, c: &CpuRow) -> bool {
    row.busy_p50_ns <= SHORT_FOR_A_PREEMPTION_NS && c.timed_calls < row.calls / 10
}

/// The preemption that explains a tail of short calls whose slow calls
/// were not timed: the row's preempted time, as its figures estimate it
/// for the calls not timed (from its sample and the process's switches),
/// or the sample's preempted share of its busy time over the row's busy
/// time, whichever is more, at most the tail's `excess`, where that is
/// more than the timed calls measured (`measured`). A lookup of 230 ns
/// among eight threads computing on two cores had a tail of 20 ms calls,
/// preempted, which its sample of 60 calls never held: "4.1% of the
/// process's CPU time" was the other threads' turns on the cores.
///
/// The row's estimate scales the sample's on-CPU time per interval to the
/// intervals not timed, at most their busy time: where the sampled
/// intervals ran longer than the rest (a few preempted ones among a
/// hundred), it fills the busy time and leaves nothing preempted. A fresh
/// service's `/items` requests, 56% of their sampled polls' time
/// preempted beside sixteen blocking-pool threads, read a tail 13%
/// explained by preemption.
fn preempted_tail_of_short_calls(
    row: &CallsiteRow,
    cs: &CallsiteStats,
    excess: f64,
    measured: Option<f64>,
) -> Option<f64> {
    let Some(c) = row.cpu.as_ref() else {
        return measured;
    };
    if !tail_missed_by_its_timing(row, c) {
        return measured;
    }
    let sampled = cs
        .cpu
        .as_ref()
        .and_then(|c| c.sampled.as_ref())
        .filter(|s| s.intervals >= super::rows::MIN_SAMPLE && s.busy_ns > 0)
        .map_or(0.0, |s| {
            stats::share(s.preempted_ns as f64, s.busy_ns as f64) * row.busy_total_ns as f64
        });
    let estimated = c.preempted_ns.max(sampled).min(excess);
    Some(measured.map_or(estimated, |m| m.max(estimated)))
}

/// The spans' self time on the CPU as estimated, ns: each row's usual
/// calls' ([`usual_cpu_ns`]). A span whose guards did not nest has the
/// worker's CPU between other spans as its own, and would make the spans'
/// CPU read as more than the process's: left out.
fn spans_cpu_ns(dump: &Dump, rows: &[CallsiteRow], tail_excess_ns: &[f64]) -> f64 {
    rows.iter()
        .zip(tail_excess_ns)
        .zip(&dump.callsites)
        .filter(|(_, cs)| !super::misnested::misnested(cs))
        .map(|((row, &tail), _)| usual_cpu_ns(row, tail))
        .sum()
}

/// The process's CPU time, ns, where the dump records it.
fn cpu_ns_of(dump: &Dump) -> Option<u64> {
    dump.run.cpu_ns.filter(|&ns| ns > 0)
}

/// Where the spans' CPU time as estimated exceeds the process's by more
/// than [`CPU_ESTIMATE_SLACK`], the excess was not on the CPU. The likely
/// place: tails of short calls whose slow calls no timed interval held
/// (as [`preempted_tail_of_short_calls`] reads them), whose time the timed
/// intervals' rate read as on the CPU. The overshoot moves from their self
/// time on the CPU to their preempted time, in proportion to each tail's
/// excess not yet explained, as far as those tails go: it explains their
/// tails and no longer counts as CPU. Four threads on two cores, each
/// computing 5 µs in `parse_event` and 5 µs inside a `dashmap` entry's
/// guard (`record`), had 312 of 160,000 intervals timed, none in
/// `record`'s rare long calls (a shard's holder preempted): `record`'s 1.6
/// s of waiting read 94% on the CPU, the spans' CPU 50% over the
/// process's, and `record`'s tail the first finding, critical, "saves
/// 31.7%", where two threads ran no faster.
fn missed_tails_off_the_cpu(
    dump: &Dump,
    cpu_ns: Option<u64>,
    rows: &mut [CallsiteRow],
    tail_excess_ns: &[f64],
    explained: &mut [Option<f64>],
) {
    let Some(cpu) = cpu_ns.map(|ns| ns as f64) else {
        return;
    };
    let estimated = spans_cpu_ns(dump, rows, tail_excess_ns);
    if estimated <= cpu * CPU_ESTIMATE_SLACK {
        return;
    }
    let open: Vec<(usize, f64)> = rows
        .iter()
        .enumerate()
        .filter_map(|(i, row)| {
            let c = row.cpu.as_ref()?;
            let missed = tail_missed_by_its_timing(row, c);
            let left = (tail_excess_ns[i] - explained[i].unwrap_or(0.0))
                .max(0.0)
                .min(c.self_on_cpu_ns);
            (missed && left > 0.0).then_some((i, left))
        })
        .collect();
    let total: f64 = open.iter().map(|o| o.1).sum();
    if total <= 0.0 {
        return;
    }
    let take = ((estimated - cpu) / total).min(1.0);
    for (i, left) in open {
        let moved = left * take;
        explained[i] = Some(explained[i].unwrap_or(0.0) + moved);
        let row = &mut rows[i];
        let (self_all, busy_all) = (row.self_total_ns as f64, row.busy_total_ns as f64);
        let Some(c) = row.cpu.as_mut() else { continue };
        c.self_on_cpu_ns -= moved;
        c.self_preempted_ns += moved;
        c.preempted_ns += moved;
        c.self_on_cpu_share = stats::share(c.self_on_cpu_ns, self_all);
        c.self_preempted_share = stats::share(c.self_preempted_ns, self_all);
        c.on_cpu_share = (c.on_cpu_share - stats::share(moved, busy_all)).max(0.0);
        row.self_cpu_ns = c.self_on_cpu_ns;
    }
}

/// The fewest callbacks of a callsite's spans its sampled callback time
/// must stand for (1,024: about 16 samples at the layer's one in 64) before
/// [`Context::instrumentation_per_span_of`] reads it.
const MIN_TIMED_CALLBACKS: u64 = 1_024;

/// The callbacks of a span calibrated in `loop_per_span_ns`: its creation,
/// one enter, one exit and its close.
const CALIBRATED_CALLBACKS: f64 = 4.0;

/// A span idle at most this long a call, entered once a call, idles at its
/// edges for the subscriber's other layers (20 µs: an OpenTelemetry layer's
/// export of a span through the simple processor is a few microseconds);
/// longer, it waited for something else.
const MAX_EDGE_NS: f64 = 20_000.0;

/// The spans' time preempted, summed, may be at most this many times the
/// time the process's threads waited for a core (1.25): the timeline's
/// measure counts a woken thread's wait for a core too, so it is the
/// larger of the two, and the slack keeps a timeline sample's own error
/// from moving time that was preempted.
const CORE_WAIT_SLACK: f64 = 1.25;

/// Preempted time is time a thread waited for a core, and the timeline
/// measured that for the whole process (`waiting_for_cpu_percent`, the
/// kernel's run delay of every thread). Where the spans' preempted self
/// time adds up to more than [`CORE_WAIT_SLACK`] times it, every row's
/// preempted time is scaled down to it and the rest is blocked: an interval
/// with both kinds of switch splits its time off the CPU by their counts
/// on the span path, and a long wait with one short preemption in it read
/// half preempted. Four threads logging to a pipe a slow reader drained
/// read 2.96 s preempted where their threads waited 0.52 s for a core, and
/// CPU contention came second, high, in a process using a tenth of its
/// two cores.
fn preempted_within_the_wait_for_cores(dump: &Dump, rows: &mut [CallsiteRow]) {
    let Some(waited) = waited_for_cores_ns(dump) else {
        return;
    };
    let preempted: f64 = rows
        .iter()
        .filter_map(|r| r.cpu.as_ref())
        .map(|c| c.self_preempted_ns)
        .sum();
    let bound = CORE_WAIT_SLACK * waited;
    if preempted.is_nan() || preempted <= bound {
        return;
    }
    let keep = bound / preempted;
    for row in rows {
        let self_all = row.self_total_ns as f64;
        let Some(c) = row.cpu.as_mut() else { continue };
        let moved = c.self_preempted_ns * (1.0 - keep);
        c.self_preempted_ns -= moved;
        c.self_blocked_ns += moved;
        c.preempted_ns *= keep;
        c.self_preempted_share = stats::share(c.self_preempted_ns, self_all);
        c.self_blocked_share = stats::share(c.self_blocked_ns, self_all);
    }
}

/// The time the process's threads waited for a core over the run, ns, from
/// the timeline, and the time the hypervisor stole from them (a guest's
/// run delay does not hold it, and the span path reads it as preempted: off
/// the CPU without a switch), estimated from the machine's steal over the
/// process's CPU; `None` unless every sample has the wait and they cover at
/// least four fifths of the run.
fn waited_for_cores_ns(dump: &Dump) -> Option<f64> {
    let (mut waited, mut covered_ms, mut before) = (0.0, 0u64, 0u64);
    for s in &dump.timeline.samples {
        let percent = s.waiting_for_cpu_percent.filter(|p| p.is_finite())?;
        let ms = s.t_ms.saturating_sub(before);
        before = s.t_ms;
        let ns = ms as f64 * 1e6;
        waited += percent.max(0.0) / 100.0 * ns;
        let steal = s
            .steal_percent
            .filter(|p| p.is_finite())
            .unwrap_or(0.0)
            .clamp(0.0, 90.0)
            / 100.0;
        let cpu = if s.cpu_percent.is_finite() {
            s.cpu_percent.max(0.0) / 100.0
        } else {
            0.0
        };
        waited += steal / (1.0 - steal) * cpu * ns;
        covered_ms = covered_ms.saturating_add(ms);
    }
    (covered_ms as f64 * 1e6 >= 0.8 * dump.run.duration_ns as f64 && covered_ms > 0)
        .then_some(waited)
}

/// Callsite `cs`'s row, its busy time's quantiles read by loading.
fn row(
    cs: &CallsiteStats,
    [p50, p90, p99, p999, max]: [u64; 5],
    wholes: &Wholes,
    growth: &GrowthWindow,
    dump: &Dump,
    beside: Beside,
) -> CallsiteRow {
    let calls_f = cs.calls as f64;
    let alloc = cs.alloc.filter(|_| wholes.alloc_tracked).map(|a| AllocRow {
        self_bytes_per_call: stats::ratio(a.self_alloc_bytes as f64, calls_f),
        self_allocs_per_call: stats::ratio(a.self_allocs as f64, calls_f),
        self_alloc_bytes: a.self_alloc_bytes,
        self_allocs: a.self_allocs,
        // Set once every row is made ([`self_frees`]).
        self_frees: a.frees,
        alloc_share: stats::share(a.self_alloc_bytes as f64, wholes.self_alloc_bytes),
        allocs_share: stats::share(a.self_allocs as f64, wholes.self_allocs),
        net_retained_bytes: a.net_bytes,
        calls_retaining: a.calls_retaining,
    });
    let cpu = CpuRow::of(cs, p90, beside);
    CallsiteRow {
        location: Location::of(cs),
        level: cs.level.clone(),
        calls: cs.calls,
        busy_total_ns: cs.busy_ns.sum,
        self_total_ns: cs.self_ns.sum,
        self_share: stats::share(cs.self_ns.sum as f64, wholes.self_ns),
        self_cpu_ns: cpu
            .as_ref()
            .map_or(cs.self_ns.sum as f64, |c| c.self_on_cpu_ns),
        wall_total_ns: cs.wall_ns.sum,
        idle_total_ns: cs.idle_ns.sum,
        idle_share: stats::share(cs.idle_ns.sum as f64, cs.wall_ns.sum as f64),
        busy_mean_ns: stats::ratio(cs.busy_ns.sum as f64, cs.busy_ns.count as f64),
        busy_p50_ns: p50,
        busy_p90_ns: p90,
        busy_p99_ns: p99,
        busy_p999_ns: p999,
        busy_max_ns: max,
        alloc,
        rss_delta_bytes: cs.rss_delta.map(|d| d.sum_bytes),
        rss_delta_per_call_bytes: cs
            .rss_delta
            .map(|d| stats::ratio(d.sum_bytes as f64, calls_f)),
        rss_delta_max_bytes: cs.rss_delta.map(|d| d.max_bytes),
        heap: cs.heap.as_ref().filter(|_| wholes.alloc_tracked).map(|h| {
            let fit = growth.fit(dump, h);
            HeapRow {
                live_bytes: h.live_bytes,
                peak_live_bytes: h.peak_live_bytes,
                allocated_bytes: h.allocated_bytes,
                growth_bytes_per_s: fit.map(|f| f.slope),
                growth_r2: fit.map(|f| f.r2),
            }
        }),
        cpu,
    }
}

/// The rows' on-CPU figures again where their time in children is better
/// read from the children's rows than from a sample of their own
/// intervals ([`CpuRow::of`]): the on-CPU share of each callsite's
/// children's busy time under it, weighted by the call edges' busy time,
/// `beside` the rest as the first reading had it.
fn refine_by_children(dump: &Dump, rows: &mut [CallsiteRow], beside: Beside) {
    let index: std::collections::HashMap<u32, usize> = dump
        .callsites
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id, i))
        .collect();
    let mut under = vec![(0.0f64, 0.0f64); rows.len()];
    for e in &dump.edges {
        let (Some(&p), Some(&c)) = (index.get(&e.parent), index.get(&e.child)) else {
            continue;
        };
        if let Some(child) = rows[c].cpu.as_ref().filter(|_| p != c) {
            let busy = e.child_busy_ns as f64;
            under[p].0 += busy * child.on_cpu_share;
            under[p].1 += busy;
        }
    }
    for (i, cs) in dump.callsites.iter().enumerate() {
        let (on_cpu, busy) = under[i];
        let sampled = cs.cpu.as_ref().is_some_and(|c| c.sampled.is_some());
        if busy > 0.0 && sampled && rows[i].cpu.is_some() {
            let beside = Beside {
                children_on_cpu: Some(on_cpu / busy),
                ..beside
            };
            rows[i].cpu = CpuRow::of(cs, rows[i].busy_p90_ns, beside);
        }
    }
}

/// The process's involuntary share of its context switches over the run,
/// from the timeline; `None` without switch counts.
fn process_preempted(dump: &Dump) -> Option<f64> {
    let (voluntary, involuntary) = dump
        .timeline
        .samples
        .iter()
        .fold((0u64, 0u64), |(v, i), s| {
            (
                v.saturating_add(s.voluntary_switches.unwrap_or(0)),
                i.saturating_add(s.involuntary_switches.unwrap_or(0)),
            )
        });
    let all = voluntary.saturating_add(involuntary);
    (all > 0).then(|| involuntary as f64 / all as f64)
}

/// The layer's cost per span as the run measured it: its callbacks' time
/// (a span's polls and events included) over the spans; `None` where the
/// dump has no measured figure or no span.
fn measured_per_span_ns(o: &perf_layer::dump::Overhead) -> Option<f64> {
    let ns = o.measured_callbacks_ns()?;
    (o.spans > 0).then(|| ns / o.spans as f64)
}

#[cfg(test)]
mod tests {
    use perf_layer::dump::{CpuStats, SampledCpu};

    use super::*;
    use crate::analyze::test_dump::{MS, Span, US, assert_near, dump, hist};

    /// 500 ms of self time in spans not timed on the CPU: of the process's
    /// CPU time while that is within 10% of it, of the spans' estimated CPU
    /// time beyond (the whole the shares are then of), of all self time
    /// without the process's CPU time.
    #[test]
    fn the_time_whole_is_named_for_what_it_is() {
        let whole = |cpu_ms: Option<u64>| {
            let mut d = dump(1_000 * MS, &[Span::new("work", &[(MS, 500)])]);
            d.run.cpu_ns = cpu_ms.map(|ms| ms * MS);
            let a = crate::analyze::analyze(&d.into(), &Default::default());
            (
                a.totals.share_of(Resource::Time),
                a.totals.time_whole_ns / MS,
            )
        };
        assert_eq!(whole(Some(480)), ("the process's CPU time", 500));
        assert_eq!(whole(Some(400)), ("the spans' estimated CPU time", 500));
        assert_eq!(whole(None), ("all self time in spans", 500));
    }

    /// Four threads logging to a pipe a slow reader drained: `handle`'s
    /// 3 s of self time read 1.4 s preempted (its waits had preemptions in
    /// them, and the span path splits by the switches' counts), where the
    /// timeline says the process's threads waited 200 ms for a core in all.
    /// Its preempted time is 1.25 times that, the rest blocked. Without the
    /// timeline's figure, or within it, the split stays as measured.
    #[test]
    fn the_spans_preempted_time_is_at_most_the_process_s_wait_for_cores() {
        let split = |waiting_percent: Option<f64>, steal_percent: f64| {
            let mut d = dump(
                4_000 * MS,
                &[Span::new("handle", &[(10 * MS, 300)]).on_cpu(200 * MS, 1_400 * MS, 300, 300)],
            );
            crate::analyze::test_dump::timeline(&mut d, &[(1 << 20, 20.0); 5]);
            for s in &mut d.timeline.samples {
                s.waiting_for_cpu_percent = waiting_percent;
                s.steal_percent = Some(steal_percent);
            }
            let input = LoadedDump::from(d);
            let config = Config::default();
            let cx = Context::new(&input, &config, config.classes.measures());
            let c = cx.rows[0].cpu.clone().unwrap();
            (c.self_preempted_ns, c.self_blocked_ns, c.self_blocked_share)
        };
        // 5% of a 4 s timeline: 200 ms waited.
        let (preempted, blocked, share) = split(Some(5.0), 0.0);
        assert_near(preempted, 250.0 * MS as f64, 1.0);
        assert_near(blocked, 2_550.0 * MS as f64, 1.0);
        assert_near(share, 0.85, 1e-9);
        for (waiting, expected) in [(None, 1_400.0), (Some(40.0), 1_400.0)] {
            let (preempted, blocked, _) = split(waiting, 0.0);
            assert_near(preempted, expected * MS as f64, 1.0);
            assert_near(blocked, 1_400.0 * MS as f64, 1.0);
        }
        // The hypervisor's steal is preempted time too, which the run delay
        // does not hold: 50% of the machine stolen beside 20% of a core is
        // another 800 ms, and the bound is 1.25 s.
        let (preempted, _, _) = split(Some(5.0), 50.0);
        assert_near(preempted, 1_250.0 * MS as f64, 1.0);
    }

    /// An async `request` polled three times a call: 2,990 polls of 1 µs
    /// on the CPU, and in 10 of its 1,000 calls one poll that runs
    /// `compress` for 5 ms (timed: on the CPU throughout). Its sample of 8
    /// polls holds none of those. Scaled from the sample, its 4,088 untimed
    /// polls spent 4.1 ms on the CPU of its 53 ms: 7.7%. Its own time is
    /// the sample's, and the 50 ms in `compress` is on the CPU as
    /// `compress`'s row says: all of it.
    #[test]
    fn a_sampled_parent_reads_its_childrens_time_from_their_rows() {
        let with_edge_busy = |child_busy_ns: u64| {
            let mut d = dump(
                1_000 * MS,
                &[
                    Span::new("request", &[(3 * US, 990), (5_002 * US, 10)]),
                    Span::new("compress", &[(5 * MS, 10)]).on_cpu(50 * MS, 0, 0, 0),
                ],
            );
            d.callsites[0].self_ns = hist(&[(3 * US, 1_000)]);
            d.callsites[0].cpu = Some(CpuStats {
                timed_calls: 8,
                intervals: 24,
                untimed_intervals: 16,
                busy_ns: 8 * US,
                self_ns: 8 * US,
                on_cpu_ns: hist(&[(US, 8)]),
                self_on_cpu_ns: 8 * US,
                off_cpu_ns: 0,
                preempted_ns: hist(&[(0, 8)]),
                self_preempted_ns: Some(0),
                voluntary_switches: 0,
                involuntary_switches: 0,
                sampled: Some(SampledCpu {
                    intervals: 8,
                    busy_ns: 8 * US,
                    self_ns: 8 * US,
                    on_cpu_ns: 8 * US,
                    self_on_cpu_ns: 8 * US,
                    preempted_ns: 0,
                    self_preempted_ns: Some(0),
                }),
            });
            d.edges[0].child_busy_ns = child_busy_ns;
            let input = LoadedDump::from(d);
            let config = Config::default();
            let cx = Context::new(&input, &config, config.classes.measures());
            cx.rows[0].cpu.as_ref().unwrap().on_cpu_share
        };
        assert_near(with_edge_busy(50 * MS), 1.0, 0.001);
        // Without the edge's busy time, scaled from the sample as before.
        assert_near(with_edge_busy(0), 4.096 / 52.99, 0.001);
    }

    /// A cache lookup of 10 µs whose every hundredth call rebuilds its
    /// index for 5 ms, all on the CPU: 35,000 short calls and 350 rebuilds
    /// timed, and 34,650 calls not (the thread's task clock not yet open),
    /// with a sample of 64 short ones. The sample stands for 34,650 calls
    /// of 10 µs; the 1.75 s of rebuilds among them it missed are on the CPU
    /// as the timed rebuilds were. Read as the sample's calls, they were
    /// off the CPU: 58% on the CPU.
    #[test]
    fn untimed_time_a_sample_missed_reads_as_the_timed_intervals() {
        let short = 10 * US;
        let long = 5 * MS;
        let mut d = dump(
            4_000 * MS,
            &[Span::new("lookup", &[(short, 69_300), (long, 700)])],
        );
        let timed_busy = 35_000 * short + 350 * long;
        d.callsites[0].cpu = Some(CpuStats {
            timed_calls: 35_350,
            intervals: 35_350,
            untimed_intervals: 0,
            busy_ns: timed_busy,
            self_ns: timed_busy,
            on_cpu_ns: hist(&[(short, 35_000), (long, 350)]),
            self_on_cpu_ns: timed_busy,
            off_cpu_ns: 0,
            preempted_ns: hist(&[(0, 35_350)]),
            self_preempted_ns: Some(0),
            voluntary_switches: 0,
            involuntary_switches: 0,
            sampled: Some(SampledCpu {
                intervals: 64,
                busy_ns: 64 * short,
                self_ns: 64 * short,
                on_cpu_ns: 64 * short,
                self_on_cpu_ns: 64 * short,
                preempted_ns: 0,
                self_preempted_ns: Some(0),
            }),
        });
        let input = LoadedDump::from(d);
        let config = Config::default();
        let cx = Context::new(&input, &config, config.classes.measures());
        let cpu = cx.rows[0].cpu.clone().unwrap();
        assert!(cpu.on_cpu_share > 0.97, "{cpu:?}");
        assert!(cpu.self_preempted_share < 0.03, "{cpu:?}");
    }

    /// One long-lived span that naps in 8,000 polls of 100 µs: 2,000 of
    /// them timed (asleep but 5 µs each), a third of its busy time, and 7
    /// in its sample, too few to stand for the rest. Its 2,000 timed polls
    /// do: it is off the CPU. Counted by calls (one), it had no CPU figures.
    #[test]
    fn hundreds_of_timed_polls_of_one_span_stand_for_the_rest() {
        let with_timed = |timed: u64| {
            let mut d = dump(1_000 * MS, &[Span::new("naps", &[(800 * MS, 1)])]);
            d.callsites[0].cpu = Some(CpuStats {
                timed_calls: 1,
                intervals: 8_000,
                untimed_intervals: 8_000 - timed,
                busy_ns: timed * 100 * US,
                self_ns: timed * 100 * US,
                on_cpu_ns: hist(&[(timed * 5 * US, 1)]),
                self_on_cpu_ns: timed * 5 * US,
                off_cpu_ns: timed * 95 * US,
                preempted_ns: hist(&[(0, 1)]),
                self_preempted_ns: Some(0),
                voluntary_switches: timed,
                involuntary_switches: 0,
                sampled: Some(SampledCpu {
                    intervals: 7,
                    busy_ns: 700 * US,
                    self_ns: 700 * US,
                    on_cpu_ns: 35 * US,
                    self_on_cpu_ns: 35 * US,
                    preempted_ns: 0,
                    self_preempted_ns: Some(0),
                }),
            });
            let input = LoadedDump::from(d);
            let config = Config::default();
            let cx = Context::new(&input, &config, config.classes.measures());
            cx.rows[0].cpu.clone()
        };
        let cpu = with_timed(2_000).expect("CPU figures from 2,000 timed polls");
        assert_near(cpu.on_cpu_share, 0.05, 0.001);
        assert!(cpu.self_blocked_share > 0.9, "{cpu:?}");
        assert!(with_timed(200).is_none());
    }

    /// 8,000 calls of 40 µs, half their time off the CPU, and a sample of
    /// 16 that was never switched out (its calls ran within a slice): what
    /// the other calls' time off the CPU was, the sample cannot say. The
    /// process's switches can: 95% involuntary (threads computing beside
    /// each other) splits it as preempted; without a timeline it is
    /// blocked, as before.
    #[test]
    fn a_sample_never_switched_out_splits_as_the_process_switched() {
        let with_switches = |switches: Option<(u64, u64)>| {
            let mut d = dump(
                1_000 * MS,
                &[Span::new("share_a_core", &[(80 * US, 8_000)])],
            );
            d.callsites[0].cpu = Some(CpuStats {
                timed_calls: 16,
                intervals: 16,
                untimed_intervals: 0,
                busy_ns: 640 * US,
                self_ns: 640 * US,
                on_cpu_ns: hist(&[(40 * US, 16)]),
                self_on_cpu_ns: 640 * US,
                off_cpu_ns: 0,
                preempted_ns: hist(&[(0, 16)]),
                self_preempted_ns: Some(0),
                voluntary_switches: 0,
                involuntary_switches: 0,
                sampled: Some(SampledCpu {
                    intervals: 16,
                    busy_ns: 640 * US,
                    self_ns: 640 * US,
                    on_cpu_ns: 640 * US,
                    self_on_cpu_ns: 640 * US,
                    preempted_ns: 0,
                    self_preempted_ns: Some(0),
                }),
            });
            if let Some((voluntary, involuntary)) = switches {
                crate::analyze::test_dump::timeline(&mut d, &[(1 << 20, 100.0); 2]);
                for s in &mut d.timeline.samples {
                    s.voluntary_switches = Some(voluntary);
                    s.involuntary_switches = Some(involuntary);
                }
            }
            let input = LoadedDump::from(d);
            let config = Config::default();
            let cx = Context::new(&input, &config, config.classes.measures());
            cx.rows[0].cpu.clone().unwrap()
        };
        let busy = with_switches(Some((5, 95)));
        assert_near(busy.self_on_cpu_share, 0.5, 0.01);
        assert_near(busy.self_preempted_share, 0.5 * 0.95, 0.01);
        let unknown = with_switches(None);
        assert_near(unknown.self_blocked_share, 0.5, 0.01);
    }

    /// 2,000 calls, 400 of them waiting 2 ms for a lock and the rest under
    /// a microsecond; 300 calls timed (120 waits among them: 240 ms, 40%
    /// of the busy time), on the CPU 1% of it, and no sample of the short
    /// ones. So many timed calls stand for the rest: blocked, not
    /// computing. 200 timed calls stand for the rest when they hold waits
    /// as the rest do (40 of them, a mean of 400 µs a call against the
    /// rest's 401 µs), and not when they are mostly waits (120 of them, a
    /// mean of 1.2 ms against 312 µs): then, under 256 timed calls and half
    /// the busy time, nothing is said, as before.
    #[test]
    fn many_timed_calls_or_calls_like_the_rest_stand_for_the_rest_without_a_sample() {
        let with_timed = |timed_calls: u64, waits: u64| {
            let mut d = dump(
                1_000 * MS,
                &[Span::new("lookup_session", &[(US, 1_600), (2 * MS, 400)])],
            );
            let busy_ns = waits * 2 * MS;
            d.callsites[0].cpu = Some(CpuStats {
                timed_calls,
                intervals: timed_calls,
                untimed_intervals: 0,
                busy_ns,
                self_ns: busy_ns,
                on_cpu_ns: hist(&[(busy_ns / 100 / timed_calls, timed_calls)]),
                self_on_cpu_ns: busy_ns / 100,
                off_cpu_ns: busy_ns - busy_ns / 100,
                preempted_ns: hist(&[(0, timed_calls)]),
                self_preempted_ns: Some(0),
                voluntary_switches: waits,
                involuntary_switches: 0,
                sampled: None,
            });
            let input = LoadedDump::from(d);
            let config = Config::default();
            let cx = Context::new(&input, &config, config.classes.measures());
            cx.rows[0].cpu.clone()
        };
        let row = with_timed(300, 120).expect("figures from 300 timed calls");
        assert_near(row.self_blocked_share, 0.99, 0.01);
        let row = with_timed(200, 40).expect("figures from 200 calls like the rest");
        assert_near(row.self_blocked_share, 0.99, 0.01);
        assert!(with_timed(200, 120).is_none());
        assert!(with_timed(50, 10).is_none(), "too few to stand for 1,950");
    }

    /// An async span of 1,000 calls, each timed in some of its polls (a
    /// thousand quick polls not timed): its 100 slow calls (5 ms beyond a
    /// usual 100 µs) were preempted 4 ms each. That explains their tail, as measured on the
    /// timed calls, not scaled up by the calls that are not in it; before,
    /// a span with any untimed interval read no preemption at all.
    #[test]
    fn a_partly_timed_span_s_tail_reads_the_preemption_its_timed_calls_saw() {
        let mut d = dump(
            1_000 * MS,
            &[Span::new("handle", &[(100 * US, 900), (5_100 * US, 100)])],
        );
        d.callsites[0].cpu = Some(CpuStats {
            timed_calls: 1_000,
            intervals: 3_000,
            untimed_intervals: 1_000,
            busy_ns: 600 * MS,
            self_ns: 600 * MS,
            on_cpu_ns: hist(&[(100 * US, 900), (1_100 * US, 100)]),
            self_on_cpu_ns: 200 * MS,
            off_cpu_ns: 400 * MS,
            preempted_ns: hist(&[(0, 900), (4 * MS, 100)]),
            self_preempted_ns: Some(400 * MS),
            voluntary_switches: 0,
            involuntary_switches: 100,
            sampled: None,
        });
        let input = LoadedDump::from(d);
        let config = Config::default();
        let cx = Context::new(&input, &config, config.classes.measures());
        // The busy tail: 100 calls 5 ms beyond p90 (100 µs), 500 ms; the
        // preempted one: 100 calls 4 ms beyond its p90 (0), 400 ms.
        assert_near(cx.tail_preempted_share(0), 0.8, 0.02);
    }
}
