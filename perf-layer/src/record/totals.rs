//! What one callsite accumulates, in the recorder's own terms.
//!
//! Nothing here is a wire type: the span path adds plain integers into
//! plain arrays, and only [`crate::snapshot`] turns them into the dump's
//! schema. That keeps the dump free to change shape without touching the
//! span path, and the span path free to keep whatever is cheapest to add.

use tracing_core::{Level, Metadata};

use super::alloc::PauseCounting;
use super::cpu::IntervalCpu;
use super::flat_hist::{FlatHist, Layout};
use super::long_spans::{LongSpan, LongSpans};
use crate::dump::AllocStats;

/// Events per level, trace to error: a small array, cheap to add to.
pub(crate) type Events = [u64; 5];

/// The level's index into [`Events`] (trace..error).
#[inline]
pub(crate) fn level_index(level: &Level) -> usize {
    match *level {
        Level::TRACE => 0,
        Level::DEBUG => 1,
        Level::INFO => 2,
        Level::WARN => 3,
        _ => 4,
    }
}

/// Heap allocation one closed span made while entered.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SpanAlloc {
    pub(crate) alloc_bytes: u64,
    pub(crate) allocs: u64,
    pub(crate) freed_bytes: u64,
    pub(crate) frees: u64,
    pub(crate) self_alloc_bytes: u64,
    pub(crate) self_allocs: u64,
}

/// A span's allocation, added to its callsite's totals (the dump's own
/// [`AllocStats`], kept as it will be written): with whether it closed
/// holding more than it freed.
#[inline]
fn add_span(totals: &mut AllocStats, span: &SpanAlloc) {
    let net = i128::from(span.alloc_bytes) - i128::from(span.freed_bytes);
    let net = i64::try_from(net).unwrap_or(if net > 0 { i64::MAX } else { i64::MIN });
    totals.add(&AllocStats {
        alloc_bytes: span.alloc_bytes,
        allocs: span.allocs,
        freed_bytes: span.freed_bytes,
        frees: span.frees,
        self_alloc_bytes: span.self_alloc_bytes,
        self_allocs: span.self_allocs,
        net_bytes: net,
        calls_retaining: u64::from(net > 0),
    });
}

/// Process RSS at close minus at open, summed over a callsite's spans.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RssTotals {
    pub(crate) sum_bytes: i64,
    pub(crate) max_bytes: i64,
    pub(crate) min_bytes: i64,
}

impl RssTotals {
    fn of(delta: i64) -> Self {
        Self {
            sum_bytes: delta,
            max_bytes: delta,
            min_bytes: delta,
        }
    }

    fn add(&mut self, other: &RssTotals) {
        self.sum_bytes = self.sum_bytes.saturating_add(other.sum_bytes);
        self.max_bytes = self.max_bytes.max(other.max_bytes);
        self.min_bytes = self.min_bytes.min(other.min_bytes);
    }
}

/// What a closed span measured on the CPU, when at least one of its
/// intervals was timed: long ones always, short ones by a sample.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpanCpu {
    /// Its entered intervals, and how many of them were timed.
    pub(crate) intervals: u32,
    pub(crate) timed_intervals: u32,
    /// The timed intervals' sums.
    pub(crate) timed: IntervalCpu,
    /// Of those, the sampled ones ([`super::cpu::Timing::Sampled`]).
    pub(crate) sampled_intervals: u32,
    pub(crate) sampled: IntervalCpu,
}

/// The sums over a callsite's timed intervals.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CpuSums {
    pub(crate) busy_ns: u64,
    pub(crate) self_ns: u64,
    pub(crate) on_cpu_ns: u64,
    pub(crate) self_on_cpu_ns: u64,
    pub(crate) preempted_ns: u64,
    pub(crate) self_preempted_ns: u64,
    pub(crate) voluntary: u64,
    pub(crate) involuntary: u64,
}

impl CpuSums {
    fn of(t: &IntervalCpu) -> Self {
        Self {
            busy_ns: t.busy_ns,
            self_ns: t.self_ns,
            on_cpu_ns: t.on_cpu_ns,
            self_on_cpu_ns: t.self_on_cpu_ns,
            preempted_ns: t.preempted_ns,
            self_preempted_ns: t.self_preempted_ns,
            voluntary: u64::from(t.voluntary),
            involuntary: u64::from(t.involuntary),
        }
    }

    fn add(&mut self, other: &CpuSums) {
        self.busy_ns = self.busy_ns.saturating_add(other.busy_ns);
        self.self_ns = self.self_ns.saturating_add(other.self_ns);
        self.on_cpu_ns = self.on_cpu_ns.saturating_add(other.on_cpu_ns);
        self.self_on_cpu_ns = self.self_on_cpu_ns.saturating_add(other.self_on_cpu_ns);
        self.preempted_ns = self.preempted_ns.saturating_add(other.preempted_ns);
        self.self_preempted_ns = self
            .self_preempted_ns
            .saturating_add(other.self_preempted_ns);
        self.voluntary = self.voluntary.saturating_add(other.voluntary);
        self.involuntary = self.involuntary.saturating_add(other.involuntary);
    }
}

/// A callsite's timed spans, summed, with histograms of on-CPU and
/// preempted time per span.
#[derive(Debug, Clone)]
pub(crate) struct CpuAcc {
    pub(crate) calls: u64,
    pub(crate) intervals: u64,
    /// Intervals of the timed spans that were not timed themselves.
    pub(crate) untimed_intervals: u64,
    pub(crate) sums: CpuSums,
    /// The sampled intervals among the timed ones, and their sums.
    pub(crate) sampled_intervals: u64,
    pub(crate) sampled: CpuSums,
    pub(crate) on_cpu: FlatHist,
    pub(crate) preempted: FlatHist,
}

impl CpuAcc {
    fn record(&mut self, layout: &Layout, cpu: &SpanCpu) {
        self.calls += 1;
        self.intervals = self.intervals.saturating_add(u64::from(cpu.intervals));
        self.untimed_intervals = self
            .untimed_intervals
            .saturating_add(u64::from(cpu.intervals.saturating_sub(cpu.timed_intervals)));
        let t = &cpu.timed;
        self.sums.add(&CpuSums::of(t));
        if cpu.sampled_intervals > 0 {
            self.sampled_intervals = self
                .sampled_intervals
                .saturating_add(u64::from(cpu.sampled_intervals));
            self.sampled.add(&CpuSums::of(&cpu.sampled));
        }
        self.on_cpu.record(layout, t.on_cpu_ns);
        self.preempted.record(layout, t.preempted_ns);
    }

    fn merge(&mut self, other: &CpuAcc) {
        self.calls += other.calls;
        self.intervals = self.intervals.saturating_add(other.intervals);
        self.untimed_intervals = self
            .untimed_intervals
            .saturating_add(other.untimed_intervals);
        self.sums.add(&other.sums);
        self.sampled_intervals = self
            .sampled_intervals
            .saturating_add(other.sampled_intervals);
        self.sampled.add(&other.sampled);
        self.on_cpu.merge(&other.on_cpu);
        self.preempted.merge(&other.preempted);
    }
}

/// What a closed span contributes to its callsite.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClosedSpan {
    pub(crate) wall_ns: u64,
    pub(crate) busy_ns: u64,
    pub(crate) self_ns: u64,
    pub(crate) events: [u32; 5],
    /// The subscriber's time handling them, ns.
    pub(crate) events_ns: u64,
    /// Its entered intervals (an async span's polls), wherever they ended.
    pub(crate) intervals: u32,
    /// `None` without the counting allocator.
    pub(crate) alloc: Option<SpanAlloc>,
    /// `None` without a sampler, or before its first sample.
    pub(crate) rss_delta: Option<i64>,
    /// `None` when no interval was timed on the CPU.
    pub(crate) cpu: Option<SpanCpu>,
    /// Its group ([`super::groups`]); all 0 when it has none.
    pub(crate) group: super::groups::GroupKey,
    /// Its parent's group, folded ([`super::groups::fold`]); 0 when none.
    pub(crate) parent_group: u64,
    /// When it opened and closed, raw clock readings.
    pub(crate) opened: u64,
    pub(crate) closed: u64,
}

/// Everything recorded for one callsite on one thread (or merged).
#[derive(Debug, Clone)]
pub(crate) struct CallsiteAcc {
    pub(crate) meta: &'static Metadata<'static>,
    pub(crate) calls: u64,
    pub(crate) layout: Layout,
    pub(crate) wall: FlatHist,
    pub(crate) busy: FlatHist,
    pub(crate) idle: FlatHist,
    pub(crate) self_time: FlatHist,
    pub(crate) events: Events,
    /// The subscriber's time handling them, ns.
    pub(crate) events_ns: u64,
    pub(crate) alloc: AllocStats,
    pub(crate) rss: Option<RssTotals>,
    /// The spans timed on the CPU; made at the first (the histogram is
    /// the layer's allocation, so out of line).
    pub(crate) cpu: Option<Box<CpuAcc>>,
    /// The first span's opening and the last one's closing, raw clock
    /// readings (`u64::MAX` and 0 before the first).
    pub(crate) first_open: u64,
    pub(crate) last_close: u64,
    /// Spans that closed on an async runtime's worker thread.
    pub(crate) worker_calls: u64,
    /// Their entered intervals.
    pub(crate) intervals: u64,
    /// Its latest long spans and those idle the longest
    /// ([`super::long_spans`]); made at the first.
    pub(crate) long: Option<Box<LongSpans>>,
}

impl CallsiteAcc {
    pub(crate) fn empty(meta: &'static Metadata<'static>, layout: Layout) -> Self {
        Self {
            meta,
            calls: 0,
            layout,
            wall: FlatHist::new(&layout),
            busy: FlatHist::new(&layout),
            idle: FlatHist::new(&layout),
            self_time: FlatHist::new(&layout),
            events: [0; 5],
            events_ns: 0,
            alloc: AllocStats::default(),
            rss: None,
            cpu: None,
            first_open: u64::MAX,
            last_close: 0,
            worker_calls: 0,
            intervals: 0,
            long: None,
        }
    }

    /// Keeps a span of [`super::long_spans::LONG_SPAN_NS`] or more (the
    /// caller compares, for the callsite's totals only, not its groups).
    #[inline]
    pub(crate) fn keep_long(&mut self, span: &ClosedSpan) {
        let long = LongSpan {
            opened: span.opened,
            closed: span.closed,
            idle_ns: span.wall_ns - span.busy_ns,
        };
        match &mut self.long {
            Some(ring) => ring.keep(long),
            None => self.long = Some(LongSpans::first(long)),
        }
    }

    /// Adds a closed span; `on_worker`, closed on a runtime's worker.
    #[inline]
    pub(crate) fn record(&mut self, span: &ClosedSpan, on_worker: bool) {
        self.calls += 1;
        self.worker_calls += u64::from(on_worker);
        self.intervals += u64::from(span.intervals);
        // A copy: the counts are written through pointers the compiler cannot
        // tell apart from `self.layout`, so a reference would be re-read
        // after every increment.
        let layout = self.layout;
        self.wall.record(&layout, span.wall_ns);
        self.busy.record(&layout, span.busy_ns);
        self.idle.record(&layout, span.wall_ns - span.busy_ns);
        self.self_time.record(&layout, span.self_ns);
        self.first_open = self.first_open.min(span.opened);
        self.last_close = self.last_close.max(span.closed);
        // Most spans see no event (and no event's time without one).
        if span.events != [0; 5] {
            for (mine, &theirs) in self.events.iter_mut().zip(&span.events) {
                *mine = mine.saturating_add(u64::from(theirs));
            }
            self.events_ns = self.events_ns.saturating_add(span.events_ns);
        }
        if let Some(alloc) = &span.alloc {
            add_span(&mut self.alloc, alloc);
        }
        if let Some(delta) = span.rss_delta {
            let one = RssTotals::of(delta);
            match &mut self.rss {
                Some(rss) => rss.add(&one),
                None => self.rss = Some(one),
            }
        }
        if let Some(cpu) = &span.cpu {
            match &mut self.cpu {
                Some(acc) => acc.record(&layout, cpu),
                None => self.first_cpu(cpu),
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn first_cpu(&mut self, cpu: &SpanCpu) {
        let _pause = PauseCounting::new();
        let mut acc = Box::new(CpuAcc {
            calls: 0,
            intervals: 0,
            untimed_intervals: 0,
            sums: CpuSums::default(),
            sampled_intervals: 0,
            sampled: CpuSums::default(),
            on_cpu: FlatHist::new(&self.layout),
            preempted: FlatHist::new(&self.layout),
        });
        acc.record(&self.layout, cpu);
        self.cpu = Some(acc);
    }

    pub(crate) fn merge(&mut self, other: &CallsiteAcc) {
        self.calls += other.calls;
        self.worker_calls += other.worker_calls;
        self.intervals += other.intervals;
        self.wall.merge(&other.wall);
        self.busy.merge(&other.busy);
        self.idle.merge(&other.idle);
        self.self_time.merge(&other.self_time);
        self.first_open = self.first_open.min(other.first_open);
        self.last_close = self.last_close.max(other.last_close);
        for (mine, &theirs) in self.events.iter_mut().zip(&other.events) {
            *mine = mine.saturating_add(theirs);
        }
        self.events_ns = self.events_ns.saturating_add(other.events_ns);
        self.alloc.add(&other.alloc);
        match (&mut self.rss, &other.rss) {
            (Some(mine), Some(theirs)) => mine.add(theirs),
            (None, Some(theirs)) => self.rss = Some(*theirs),
            _ => {}
        }
        match (&mut self.cpu, &other.cpu) {
            (Some(mine), Some(theirs)) => mine.merge(theirs),
            (None, Some(theirs)) => self.cpu = Some(theirs.clone()),
            _ => {}
        }
        if let Some(theirs) = &other.long {
            self.long
                .get_or_insert_with(|| Box::new(LongSpans::default()))
                .merge(theirs);
        }
    }
}

/// Child spans closed under one parent callsite.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct EdgeAcc {
    pub(crate) parent: Option<&'static Metadata<'static>>,
    pub(crate) calls: u64,
    pub(crate) child_busy_ns: u64,
    /// Child spans that outlived their parent span and closed it.
    pub(crate) outlived: u64,
}

impl EdgeAcc {
    pub(crate) fn merge(&mut self, other: &EdgeAcc) {
        self.parent = other.parent;
        self.calls += other.calls;
        self.child_busy_ns = self.child_busy_ns.saturating_add(other.child_busy_ns);
        self.outlived = self.outlived.saturating_add(other.outlived);
    }
}
