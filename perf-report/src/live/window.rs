//! What happened between two snapshots of one process: a dump of the
//! window, made by subtracting the older snapshot from the newer one.
//! Histograms subtract bucket by bucket (they are exact counts), counters
//! subtract, and what is a level rather than a total (live heap, RSS, the
//! pressure level) is the newer snapshot's. The window's dump goes through
//! the same analysis as a whole run's, so its findings are the window's.
//!
//! Spans are recorded when they close: a span open across the whole window
//! (a connection, a worker loop) shows in the window it closes in.

use perf_layer::dump::{
    ActiveWindow, AllocStats, CallEdge, CallsiteGroup, CallsiteStats, CpuStats, Dump, EventCounts,
    GroupEdge, HistogramDump, LongSpan, LongSpans, SampledCpu,
};
use std::collections::HashMap;

/// Why two snapshots have no window between them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowError {
    /// Of two processes (the pid, the host or the start differs): the
    /// service restarted.
    Restarted,
    /// The newer snapshot is not newer.
    NotLater,
}

/// The dump of what happened between `old` and `new`, two snapshots of the
/// same process, `old` first.
///
/// # Errors
/// [`WindowError::Restarted`] when they are not of one process (the view
/// starts again from `new`), [`WindowError::NotLater`] when `new` is not
/// later.
///
/// ```
/// use perf_layer::dump::Dump;
/// use perf_report::live::window;
///
/// let mut old = Dump::empty("svc");
/// old.run.duration_ns = 1_000_000_000;
/// let mut new = old.clone();
/// new.run.duration_ns = 3_000_000_000;
/// let w = window(&old, &new).unwrap();
/// assert_eq!(w.run.duration_ns, 2_000_000_000);
/// ```
pub fn window(old: &Dump, new: &Dump) -> Result<Dump, WindowError> {
    if old.run.pid != new.run.pid
        || old.run.host != new.run.host
        || old.run.started_at_unix_ms != new.run.started_at_unix_ms
    {
        return Err(WindowError::Restarted);
    }
    if new.run.duration_ns <= old.run.duration_ns {
        return Err(WindowError::NotLater);
    }
    let mut w = new.clone();
    let offset_ms = old.run.duration_ns / 1_000_000;
    w.run.started_at_unix_ms = old.run.ended_at_unix_ms;
    w.run.duration_ns = new.run.duration_ns - old.run.duration_ns;
    w.run.cpu_ns = match (new.run.cpu_ns, old.run.cpu_ns) {
        (Some(n), Some(o)) => Some(n.saturating_sub(o)),
        _ => None,
    };
    let before = counterparts(old, new);
    // An old callsite id -> the new one: ids move when a callsite that
    // sorts before others first closes between the snapshots.
    let new_id: HashMap<u32, u32> = new
        .callsites
        .iter()
        .zip(&before)
        .filter_map(|(n, o)| o.map(|o| (o.id, n.id)))
        .collect();
    w.callsites = new
        .callsites
        .iter()
        .zip(&before)
        .map(|(cs, o)| match o {
            Some(o) => callsite(o, cs),
            None => cs.clone(),
        })
        .filter(|cs| cs.calls > 0 || cs.busy_ns.count > 0)
        .collect();
    for cs in &mut w.callsites {
        onto_window(cs, old.run.duration_ns);
    }
    w.callsites_dropped_spans = new
        .callsites_dropped_spans
        .saturating_sub(old.callsites_dropped_spans);
    let old_edges: HashMap<(u32, u32), &CallEdge> = old
        .edges
        .iter()
        .filter_map(|o| Some(((*new_id.get(&o.parent)?, *new_id.get(&o.child)?), o)))
        .collect();
    w.edges = new
        .edges
        .iter()
        .map(|e| {
            let before = old_edges.get(&(e.parent, e.child));
            CallEdge {
                calls: e.calls.saturating_sub(before.map_or(0, |b| b.calls)),
                child_busy_ns: e
                    .child_busy_ns
                    .saturating_sub(before.map_or(0, |b| b.child_busy_ns)),
                outlived: e.outlived.saturating_sub(before.map_or(0, |b| b.outlived)),
                ..*e
            }
        })
        .filter(|e| e.calls > 0)
        .collect();
    // The process's samples and alerts inside the window, on its clock.
    w.timeline.samples = new
        .timeline
        .samples
        .iter()
        .filter(|s| s.t_ms > offset_ms)
        .map(|s| {
            let mut s = *s;
            s.t_ms -= offset_ms;
            s
        })
        .collect();
    w.alerts = new
        .alerts
        .iter()
        .filter(|a| a.t_ms > offset_ms)
        .map(|a| {
            let mut a = a.clone();
            a.t_ms -= offset_ms;
            a
        })
        .collect();
    // The layer's counters over the window: each the new total less the old.
    macro_rules! since {
        ($($field:ident),*) => {
            $(w.overhead.$field = new.overhead.$field.saturating_sub(old.overhead.$field);)*
        };
    }
    since!(
        spans,
        intervals,
        timed_intervals,
        called_intervals,
        allocations,
        callbacks_ns,
        callbacks,
        callbacks_sampled,
        callbacks_dropped,
        background_cpu_ns,
        estimated_ns
    );
    w.overhead.fraction_of_run = if w.run.duration_ns > 0 {
        w.overhead.estimated_ns as f64 / w.run.duration_ns as f64
    } else {
        0.0
    };
    if let Some(heap) = &mut w.heap {
        let keep: Vec<usize> = heap
            .timeline_t_ms
            .iter()
            .enumerate()
            .filter(|(_, t)| **t > offset_ms)
            .map(|(i, _)| i)
            .collect();
        heap.timeline_t_ms = keep
            .iter()
            .map(|&i| heap.timeline_t_ms[i] - offset_ms)
            .collect();
        heap.timeline_live_bytes = keep
            .iter()
            .filter_map(|&i| heap.timeline_live_bytes.get(i).copied())
            .collect();
    }
    w.group_edges = group_edges(old, new, &w, &new_id);
    Ok(w)
}

/// A callsite's active window on the window's clock, which starts `offset_ns`
/// into the run: at most from its first span or the window's start to its
/// last close (a span that closed in the window may have opened before).
fn onto_window(cs: &mut CallsiteStats, offset_ns: u64) {
    cs.active = cs.active.map(|a| ActiveWindow {
        first_open_ns: a.first_open_ns.saturating_sub(offset_ns),
        last_close_ns: a.last_close_ns.saturating_sub(offset_ns),
    });
    // Spans open at the window's end, those opened before it at its start.
    cs.open = cs.open.map(|o| perf_layer::dump::OpenAtDump {
        first_opened_ns: o.first_opened_ns.saturating_sub(offset_ns),
        mean_opened_ns: o.mean_opened_ns.saturating_sub(offset_ns),
        ..o
    });
    // The window's long spans: those that opened in it.
    cs.long_spans = cs.long_spans.take().and_then(|long| {
        let in_window = |spans: &[LongSpan]| -> Vec<LongSpan> {
            spans
                .iter()
                .filter(|s| s.opened_ns >= offset_ns)
                .map(|s| LongSpan {
                    opened_ns: s.opened_ns - offset_ns,
                    closed_ns: s.closed_ns.saturating_sub(offset_ns),
                    idle_ns: s.idle_ns,
                })
                .collect()
        };
        let spans = in_window(&long.spans);
        (!spans.is_empty()).then(|| LongSpans {
            threshold_ns: long.threshold_ns,
            complete_after_ns: long.complete_after_ns.saturating_sub(offset_ns),
            spans,
            longest_waits: in_window(&long.longest_waits),
        })
    });
    for g in &mut cs.groups {
        onto_window(&mut g.stats, offset_ns);
    }
}

/// One callsite in both snapshots: the same id, name and place.
/// `new − old` of one callsite.
fn callsite(old: &CallsiteStats, new: &CallsiteStats) -> CallsiteStats {
    let mut w = new.clone();
    w.calls = new.calls.saturating_sub(old.calls);
    w.runtime_worker_calls = match (old.runtime_worker_calls, new.runtime_worker_calls) {
        (Some(o), Some(n)) => Some(n.saturating_sub(o)),
        (_, n) => n,
    };
    w.misnested_exits = new.misnested_exits.saturating_sub(old.misnested_exits);
    w.thread_starts = new.thread_starts.saturating_sub(old.thread_starts);
    w.watched_io = match (old.watched_io, new.watched_io) {
        (Some(o), Some(n)) => Some(n.since(&o)).filter(|io| io.probes > 0),
        (_, n) => n,
    };
    w.intervals = match (old.intervals, new.intervals) {
        (Some(o), Some(n)) => Some(n.saturating_sub(o)),
        (_, n) => n,
    };
    w.layer = match (old.layer, new.layer) {
        (Some(o), Some(n)) => Some(perf_layer::dump::LayerTime {
            ns: n.ns.saturating_sub(o.ns),
            callbacks: n.callbacks.saturating_sub(o.callbacks),
        }),
        (_, n) => n,
    };
    w.wall_ns = histogram(&old.wall_ns, &new.wall_ns);
    w.busy_ns = histogram(&old.busy_ns, &new.busy_ns);
    w.idle_ns = histogram(&old.idle_ns, &new.idle_ns);
    w.self_ns = histogram(&old.self_ns, &new.self_ns);
    w.events = EventCounts {
        trace: new.events.trace.saturating_sub(old.events.trace),
        debug: new.events.debug.saturating_sub(old.events.debug),
        info: new.events.info.saturating_sub(old.events.info),
        warn: new.events.warn.saturating_sub(old.events.warn),
        error: new.events.error.saturating_sub(old.events.error),
        ns: new.events.ns.saturating_sub(old.events.ns),
    };
    w.alloc = match (&old.alloc, &new.alloc) {
        (Some(o), Some(n)) => Some(alloc(o, n)),
        (_, n) => *n,
    };
    if let (Some(o), Some(n)) = (&old.rss_delta, &mut w.rss_delta) {
        n.sum_bytes = n.sum_bytes.saturating_sub(o.sum_bytes);
    }
    // The live heap is a level: the newer snapshot's, as it is.
    w.cpu = match (&old.cpu, &new.cpu) {
        (Some(o), Some(n)) => Some(cpu(o, n)),
        (_, n) => n.clone(),
    };
    w.groups = new
        .groups
        .iter()
        .map(|g| {
            match old
                .groups
                .iter()
                .find(|o| o.other == g.other && o.fields == g.fields)
            {
                Some(o) => CallsiteGroup {
                    stats: callsite(&o.stats, &g.stats),
                    ..g.clone()
                },
                None => g.clone(),
            }
        })
        .filter(|g| g.stats.calls > 0)
        .collect();
    w
}

/// Each callsite of `new` with the same callsite in `old`: matched by what
/// names it (target, module, name, file, line), those alike in order, as
/// ids move between snapshots.
fn counterparts<'a>(old: &'a Dump, new: &'a Dump) -> Vec<Option<&'a CallsiteStats>> {
    type Key<'k> = (
        &'k str,
        &'k str,
        Option<&'k str>,
        Option<&'k str>,
        Option<u32>,
    );
    let key = |c: &'a CallsiteStats| -> Key<'a> {
        (
            &c.name,
            &c.target,
            c.module_path.as_deref(),
            c.file.as_deref(),
            c.line,
        )
    };
    let mut olds: HashMap<Key<'a>, std::collections::VecDeque<&'a CallsiteStats>> = HashMap::new();
    for o in &old.callsites {
        olds.entry(key(o)).or_default().push_back(o);
    }
    new.callsites
        .iter()
        .map(|n| {
            let k = (
                n.name.as_str(),
                n.target.as_str(),
                n.module_path.as_deref(),
                n.file.as_deref(),
                n.line,
            );
            olds.get_mut(&k)
                .and_then(std::collections::VecDeque::pop_front)
        })
        .collect()
}

/// `new − old` of the group edges, in the window's ids and groups (`w`,
/// whose callsites are `new`'s less those idle in the window).
fn group_edges(old: &Dump, new: &Dump, w: &Dump, new_id: &HashMap<u32, u32>) -> Vec<GroupEdge> {
    use crate::groups::{GroupEdges, translate};
    fn by_id(d: &Dump) -> HashMap<u32, &CallsiteStats> {
        d.callsites.iter().map(|c| (c.id, c)).collect()
    }
    let (old_cs, new_cs, w_cs) = (by_id(old), by_id(new), by_id(w));
    let mut before = GroupEdges::default();
    for e in &old.group_edges {
        if let Some(e) = translate(
            e,
            |id| old_cs.get(&id).copied(),
            |id| new_id.get(&id).copied(),
            |id| new_cs.get(&id).copied(),
        ) {
            before.add(e);
        }
    }
    let mut window = GroupEdges::default();
    for e in &new.group_edges {
        let b = before.get(e);
        let e = GroupEdge {
            calls: e.calls.saturating_sub(b.map_or(0, |b| b.calls)),
            child_busy_ns: e
                .child_busy_ns
                .saturating_sub(b.map_or(0, |b| b.child_busy_ns)),
            ..*e
        };
        if e.calls == 0 {
            continue;
        }
        if let Some(e) = translate(
            &e,
            |id| new_cs.get(&id).copied(),
            |id| w_cs.contains_key(&id).then_some(id),
            |id| w_cs.get(&id).copied(),
        ) {
            window.add(e);
        }
    }
    window.into_vec()
}

/// `new − old` of one histogram: exact, bucket by bucket. Where either does
/// not decode, or `old` holds a count `new` does not (not one process's
/// histogram twice), the newer one whole.
fn histogram(old: &HistogramDump, new: &HistogramDump) -> HistogramDump {
    if old.count == 0 {
        return new.clone();
    }
    let (Ok(o), Ok(mut n)) = (old.decode(), new.decode()) else {
        return new.clone();
    };
    if n.subtract(&o).is_err() {
        return new.clone();
    }
    HistogramDump::from_histogram(
        &n,
        new.sum.saturating_sub(old.sum),
        new.clamped.saturating_sub(old.clamped),
    )
}

fn alloc(o: &AllocStats, n: &AllocStats) -> AllocStats {
    AllocStats {
        alloc_bytes: n.alloc_bytes.saturating_sub(o.alloc_bytes),
        allocs: n.allocs.saturating_sub(o.allocs),
        freed_bytes: n.freed_bytes.saturating_sub(o.freed_bytes),
        frees: n.frees.saturating_sub(o.frees),
        self_alloc_bytes: n.self_alloc_bytes.saturating_sub(o.self_alloc_bytes),
        self_allocs: n.self_allocs.saturating_sub(o.self_allocs),
        net_bytes: n.net_bytes.saturating_sub(o.net_bytes),
        calls_retaining: n.calls_retaining.saturating_sub(o.calls_retaining),
    }
}

/// `new − old` of a figure older dumps lack: unknown if either is.
fn since(old: Option<u64>, new: Option<u64>) -> Option<u64> {
    Some(new?.saturating_sub(old?))
}

fn cpu(o: &CpuStats, n: &CpuStats) -> CpuStats {
    CpuStats {
        timed_calls: n.timed_calls.saturating_sub(o.timed_calls),
        intervals: n.intervals.saturating_sub(o.intervals),
        untimed_intervals: n.untimed_intervals.saturating_sub(o.untimed_intervals),
        busy_ns: n.busy_ns.saturating_sub(o.busy_ns),
        self_ns: n.self_ns.saturating_sub(o.self_ns),
        on_cpu_ns: histogram(&o.on_cpu_ns, &n.on_cpu_ns),
        self_on_cpu_ns: n.self_on_cpu_ns.saturating_sub(o.self_on_cpu_ns),
        off_cpu_ns: n.off_cpu_ns.saturating_sub(o.off_cpu_ns),
        preempted_ns: histogram(&o.preempted_ns, &n.preempted_ns),
        self_preempted_ns: since(o.self_preempted_ns, n.self_preempted_ns),
        voluntary_switches: n.voluntary_switches.saturating_sub(o.voluntary_switches),
        involuntary_switches: n
            .involuntary_switches
            .saturating_sub(o.involuntary_switches),
        sampled: match (&o.sampled, &n.sampled) {
            (Some(o), Some(n)) => Some(SampledCpu {
                intervals: n.intervals.saturating_sub(o.intervals),
                busy_ns: n.busy_ns.saturating_sub(o.busy_ns),
                self_ns: n.self_ns.saturating_sub(o.self_ns),
                on_cpu_ns: n.on_cpu_ns.saturating_sub(o.on_cpu_ns),
                self_on_cpu_ns: n.self_on_cpu_ns.saturating_sub(o.self_on_cpu_ns),
                preempted_ns: n.preempted_ns.saturating_sub(o.preempted_ns),
                self_preempted_ns: since(o.self_preempted_ns, n.self_preempted_ns),
            }),
            (_, n) => *n,
        },
    }
}
