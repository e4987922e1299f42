//! Merging dumps of one service (several processes, hosts or runs) into one,
//! losslessly: histograms are added bucket by bucket, counts summed.
//!
//! | part | how it merges |
//! |---|---|
//! | callsites | by identity ([`crate::callsite::Identity`]: module path and name, file and line order only to tell apart spans of one name in one module); ids renumbered in order of first appearance; name, file and line from the first dump that has the callsite |
//! | histograms | decoded, [`Histogram::add`]ed, re-encoded; sums and clamped counts added (every one that `CallsiteStats::HISTOGRAMS` and `CpuStats::HISTOGRAMS` list) |
//! | calls, events, dropped counts | summed (saturating) |
//! | allocation, RSS delta, heap | summed; unknown (`None`) if any part is unknown, so `None` keeps meaning "not measured"; live-bytes timelines dropped (each is on its own process's clock) |
//! | active window, long spans | the part's when one part has the callsite, else unknown (each is on its own process's clock) |
//! | edges | by the identities of both ends; calls and busy time summed |
//! | group edges | by the identities of both ends and their groups' labels; summed |
//! | timeline, alerts | put on one clock (each part's `t_ms` shifted by its start time minus the earliest start) and sorted by time |
//! | run | earliest start, latest end; duration and CPU time are the **sums** of the parts' (the budget of all processes; CPU unknown if any part's is); programs joined with `+`; host `several` and pid 0 when they differ |
//! | producer | names and versions joined with `+` when they differ |
//! | config | the first part's histogram precision (the merged histograms have it); the largest histogram maximum and caps; the coarsest sampler interval; the strictest alert thresholds |
//! | overhead | spans and estimated time summed; per-span cost weighted by spans |
//!
//! The merge names every field of the schema, so a field added to the dump
//! does not compile here until the merge says how it combines.
//!
//! Dumps with different histogram settings merge as long as
//! [`Histogram::add`] accepts them; when it does not (a value beyond the
//! first dump's range), the merge is refused naming the callsite.
//!
//! One file although over 400 lines: it names every field of the schema in
//! one exhaustive destructuring per section, and that is its point (a new
//! field does not compile until it is decided here); split, the decisions
//! would be scattered.

use std::collections::{BTreeMap, HashMap};

use hdrhistogram::Histogram;
use perf_layer::dump::{
    Alert, AllocStats, CallEdge, CallsiteGroup, CallsiteStats, CpuStats, Dump, DumpConfig,
    EventCounts, GroupField, HeapStats, HeapSummary, HistogramDump, HistogramField, Overhead,
    ProcessSample, Producer, RssDelta, RunInfo, SampledCpu, Timeline, WatchedWaits,
};

use crate::callsite::{Identity, identities};

/// Why dumps could not be merged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MergeError {
    /// The list was empty.
    #[error("nothing to merge; pass at least one dump")]
    NoDumps,
    /// A histogram could not be decoded or added.
    #[error(
        "cannot merge the {which} histograms of callsite `{callsite}` ({detail}); record every dump with the same histogram settings (histogram_max_ns, sigfig)"
    )]
    Histogram {
        /// The callsite's name.
        callsite: String,
        /// Which histogram: its [`HistogramField::label`] (`wall`, `busy`,
        /// `idle`, `self`, `on-CPU`, `preempted`).
        which: &'static str,
        /// What went wrong.
        detail: String,
    },
}

/// The callsite parts that share one identity, in input order.
struct Group<'a> {
    parts: Vec<&'a CallsiteStats>,
}

/// Merges dumps into one. One dump is returned unchanged.
///
/// # Errors
/// [`MergeError::NoDumps`] for an empty list; [`MergeError::Histogram`] when
/// a histogram cannot be decoded or added.
///
/// ```
/// use perf_layer::dump::Dump;
/// let mut a = Dump::empty("svc");
/// a.run.duration_ns = 1_000;
/// let mut b = Dump::empty("svc");
/// b.run.duration_ns = 2_000;
/// let merged = perf_report::merge::merge(vec![a, b]).unwrap();
/// assert_eq!(merged.run.duration_ns, 3_000);
/// ```
pub fn merge(dumps: Vec<Dump>) -> Result<Dump, MergeError> {
    if dumps.len() <= 1 {
        return dumps.into_iter().next().ok_or(MergeError::NoDumps);
    }

    // Group callsites by identity, keeping the order of first appearance.
    let mut index: HashMap<Identity, usize> = HashMap::new();
    let mut groups: Vec<Group<'_>> = Vec::new();
    // Per dump: its callsite id -> the merged id.
    let mut id_maps: Vec<HashMap<u32, u32>> = Vec::with_capacity(dumps.len());
    for d in &dumps {
        let mut ids = HashMap::new();
        for (cs, key) in d.callsites.iter().zip(identities(&d.callsites)) {
            let g = *index.entry(key).or_insert_with(|| {
                groups.push(Group { parts: Vec::new() });
                groups.len() - 1
            });
            groups[g].parts.push(cs);
            ids.entry(cs.id).or_insert(g as u32);
        }
        id_maps.push(ids);
    }

    let mut callsites = Vec::with_capacity(groups.len());
    for (new_id, g) in groups.iter().enumerate() {
        callsites.push(merge_group(new_id as u32, g)?);
    }

    // Edges by the merged ids of both ends.
    let mut edge_index: HashMap<(u32, u32), usize> = HashMap::new();
    let mut edges: Vec<CallEdge> = Vec::new();
    for (d, ids) in dumps.iter().zip(&id_maps) {
        for e in &d.edges {
            let (Some(&p), Some(&c)) = (ids.get(&e.parent), ids.get(&e.child)) else {
                continue; // an edge to a callsite the dump does not list
            };
            let i = *edge_index.entry((p, c)).or_insert_with(|| {
                edges.push(CallEdge {
                    parent: p,
                    child: c,
                    calls: 0,
                    child_busy_ns: 0,
                    outlived: 0,
                });
                edges.len() - 1
            });
            edges[i].calls = edges[i].calls.saturating_add(e.calls);
            edges[i].child_busy_ns = edges[i].child_busy_ns.saturating_add(e.child_busy_ns);
            edges[i].outlived = edges[i].outlived.saturating_add(e.outlived);
        }
    }

    let earliest = dumps
        .iter()
        .map(|d| d.run.started_at_unix_ms)
        .min()
        .unwrap_or(0);
    let shift = |d: &Dump| d.run.started_at_unix_ms.saturating_sub(earliest);
    let mut samples: Vec<ProcessSample> = dumps
        .iter()
        .flat_map(|d| {
            let s = shift(d);
            d.timeline.samples.iter().map(move |x| ProcessSample {
                t_ms: x.t_ms.saturating_add(s),
                ..*x
            })
        })
        .collect();
    samples.sort_by_key(|s| s.t_ms);
    let mut alerts: Vec<Alert> = dumps
        .iter()
        .flat_map(|d| {
            let s = shift(d);
            d.alerts.iter().map(move |a| Alert {
                t_ms: a.t_ms.saturating_add(s),
                ..a.clone()
            })
        })
        .collect();
    alerts.sort_by_key(|a| a.t_ms);

    // Every field named: a field added to the schema does not compile here
    // until this merge says how it combines.
    let first = &dumps[0];
    // Group edges by the merged ids and groups (matched by label).
    let mut group_edges = crate::groups::GroupEdges::default();
    for (d, ids) in dumps.iter().zip(&id_maps) {
        if d.group_edges.is_empty() {
            continue;
        }
        let by_id: HashMap<u32, &CallsiteStats> = d.callsites.iter().map(|c| (c.id, c)).collect();
        for e in &d.group_edges {
            if let Some(e) = crate::groups::translate(
                e,
                |id| by_id.get(&id).copied(),
                |id| ids.get(&id).copied(),
                |id| callsites.get(id as usize),
            ) {
                group_edges.add(e);
            }
        }
    }

    Ok(Dump {
        format_version: dumps.iter().map(|d| d.format_version).max().unwrap_or(1),
        producer: Producer {
            name: joined(&dumps, |d| &d.producer.name),
            version: joined(&dumps, |d| &d.producer.version),
        },
        run: RunInfo {
            program: joined(&dumps, |d| &d.run.program),
            host: if dumps.iter().all(|d| d.run.host == first.run.host) {
                first.run.host.clone()
            } else {
                "several".to_owned()
            },
            pid: if dumps.iter().all(|d| d.run.pid == first.run.pid) {
                first.run.pid
            } else {
                0
            },
            started_at_unix_ms: earliest,
            ended_at_unix_ms: dumps
                .iter()
                .map(|d| d.run.ended_at_unix_ms)
                .max()
                .unwrap_or(0),
            duration_ns: sum(dumps.iter().map(|d| d.run.duration_ns)),
            cpu_ns: dumps
                .iter()
                .map(|d| d.run.cpu_ns)
                .try_fold(0u64, |total, ns| Some(total.saturating_add(ns?))),
            // The parts' machines: the largest, the one a contention figure
            // is least likely to overstate.
            cores: dumps.iter().filter_map(|d| d.run.cores).max(),
            // Runs side by side or one after another: the most of any part
            // (a sum would count a thread for a run it was not in).
            span_threads: dumps.iter().filter_map(|d| d.run.span_threads).max(),
            // Thread time, like the duration: the parts' sum.
            span_threads_active_ns: dumps
                .iter()
                .map(|d| d.run.span_threads_active_ns)
                .try_fold(0u64, |total, ns| Some(total.saturating_add(ns?))),
            cpu_model: first.run.cpu_model.clone().filter(|model| {
                dumps
                    .iter()
                    .all(|d| d.run.cpu_model.as_ref() == Some(model))
            }),
        },
        config: merge_config(&dumps),
        allocations_tracked: dumps.iter().all(|d| d.allocations_tracked),
        callsites,
        callsites_dropped_spans: sum(dumps.iter().map(|d| d.callsites_dropped_spans)),
        edges,
        edges_dropped: sum(dumps.iter().map(|d| d.edges_dropped)),
        group_edges: group_edges.into_vec(),
        timeline: Timeline {
            interval_ms: dumps
                .iter()
                .map(|d| d.timeline.interval_ms)
                .max()
                .unwrap_or(0),
            samples,
        },
        alerts,
        alerts_dropped: sum(dumps.iter().map(|d| d.alerts_dropped)),
        overhead: merge_overhead(&dumps),
        heap: merge_heap(&dumps),
        // The part that came closest to its limit: a fleet is as pressed as
        // its most pressed member (each part's transitions are on its own
        // clock, so they are not combined).
        memory_pressure: dumps
            .iter()
            .filter_map(|d| d.memory_pressure.as_ref())
            .max_by(|a, b| {
                a.peak_level.cmp(&b.peak_level).then(
                    (a.peak_rss_bytes as f64 / a.limit_bytes.max(1) as f64)
                        .total_cmp(&(b.peak_rss_bytes as f64 / b.limit_bytes.max(1) as f64)),
                )
            })
            .cloned(),
    })
}

/// The parts' live heaps added up; unknown if any part's is. The
/// live-bytes timelines are dropped: each part's is on its own process's
/// clock, and their sum is not any process's heap.
fn merge_heap(dumps: &[Dump]) -> Option<HeapSummary> {
    let mut parts = dumps.iter().map(|d| d.heap.as_ref());
    let first = parts.next()??;
    let mut out = HeapSummary {
        tag_bytes: first.tag_bytes,
        live_bytes: first.live_bytes,
        outside_spans: first.outside_spans.clone(),
        layer: first.layer.clone(),
        other: first.other.clone(),
        timeline_t_ms: Vec::new(),
        timeline_live_bytes: Vec::new(),
    };
    for h in parts {
        let h = h?;
        out.live_bytes = out.live_bytes.saturating_add(h.live_bytes);
        out.outside_spans.add(&h.outside_spans);
        out.layer.add(&h.layer);
        out.other.add(&h.other);
    }
    Some(out)
}

/// The parts' values, each once, sorted, joined with `+` (one value when
/// all agree).
fn joined(dumps: &[Dump], field: impl Fn(&Dump) -> &String) -> String {
    let mut values: Vec<&str> = dumps.iter().map(|d| field(d).as_str()).collect();
    values.sort_unstable();
    values.dedup();
    values.join("+")
}

/// The recording settings: the first part's histogram precision (the merged
/// histograms have it), the largest maximum and caps, the coarsest sampler
/// interval, the strictest alert thresholds.
fn merge_config(dumps: &[Dump]) -> DumpConfig {
    let first = &dumps[0].config;
    let max = |f: fn(&DumpConfig) -> usize| dumps.iter().map(|d| f(&d.config)).max().unwrap_or(0);
    DumpConfig {
        histogram_sigfig: first.histogram_sigfig,
        histogram_max_ns: dumps
            .iter()
            .map(|d| d.config.histogram_max_ns)
            .max()
            .unwrap_or(0),
        sampler_interval_ms: dumps
            .iter()
            .filter_map(|d| d.config.sampler_interval_ms)
            .max(),
        rss_alert_bytes: dumps.iter().filter_map(|d| d.config.rss_alert_bytes).min(),
        cpu_alert_percent: dumps
            .iter()
            .filter_map(|d| d.config.cpu_alert_percent)
            .filter(|p| p.is_finite())
            .reduce(f64::min),
        max_callsites: max(|c| c.max_callsites),
        max_edges: max(|c| c.max_edges),
        timeline_capacity: max(|c| c.timeline_capacity),
        heap_timeline_points: max(|c| c.heap_timeline_points),
        // Every part timed at least the spans above the largest threshold.
        cpu_time_threshold_ns: dumps
            .iter()
            .filter_map(|d| d.config.cpu_time_threshold_ns)
            .max(),
        // The parts' fields, each once, in their first order.
        group_by: dumps.iter().fold(Vec::new(), |mut all, d| {
            for field in &d.config.group_by {
                if !all.contains(field) {
                    all.push(field.clone());
                }
            }
            all
        }),
        max_groups: max(|c| c.max_groups),
        // The parts' sources, each once.
        cpu_time_source: {
            let mut sources: Vec<&str> = dumps
                .iter()
                .filter_map(|d| d.config.cpu_time_source.as_deref())
                .collect();
            sources.sort_unstable();
            sources.dedup();
            (!sources.is_empty()).then(|| sources.join("; "))
        },
    }
}

/// Spans, intervals, timed intervals, allocations and estimated time
/// summed; each cost weighted by what it is paid for (per-span cost by
/// spans, per-interval cost by intervals, and so on); the fraction over the
/// parts' summed capacity.
fn merge_overhead(dumps: &[Dump]) -> Overhead {
    let spans = sum(dumps.iter().map(|d| d.overhead.spans));
    let timed_intervals = sum(dumps.iter().map(|d| d.overhead.timed_intervals));
    let intervals = sum(dumps.iter().map(|d| d.overhead.intervals));
    let called_intervals = sum(dumps.iter().map(|d| d.overhead.called_intervals));
    let allocations = sum(dumps.iter().map(|d| d.overhead.allocations));
    let estimated_ns = sum(dumps.iter().map(|d| d.overhead.estimated_ns));
    // A cost per event, averaged over the parts weighted by their events.
    let weighted = |events: u64, per: fn(&Overhead) -> (f64, u64)| {
        if events == 0 {
            return 0.0;
        }
        dumps
            .iter()
            .map(|d| {
                let (cost, n) = per(&d.overhead);
                finite(cost) * n as f64
            })
            .sum::<f64>()
            / events as f64
    };
    let per_span_ns = weighted(spans, |o| (o.per_span_ns, o.spans));
    let per_interval_ns = weighted(intervals, |o| (o.per_interval_ns, o.intervals));
    let per_timed_interval_ns = weighted(timed_intervals, |o| {
        (o.per_timed_interval_ns, o.timed_intervals)
    });
    let per_called_interval_ns = weighted(called_intervals, |o| {
        (o.per_called_interval_ns, o.called_intervals)
    });
    let per_allocation_ns = weighted(allocations, |o| (o.per_allocation_ns, o.allocations));
    let callbacks = sum(dumps.iter().map(|d| d.overhead.callbacks));
    let per_clock_read_ns = weighted(callbacks, |o| (o.per_clock_read_ns, o.callbacks));
    let floor_per_span_ns = weighted(spans, |o| (o.floor_per_span_ns, o.spans));
    let loop_per_span_ns = weighted(spans, |o| (o.loop_per_span_ns, o.spans));
    // fraction = estimated / capacity, so capacity = estimated / fraction.
    let capacity: f64 = dumps
        .iter()
        .filter(|d| finite(d.overhead.fraction_of_run) > 0.0)
        .map(|d| d.overhead.estimated_ns as f64 / d.overhead.fraction_of_run)
        .sum();
    Overhead {
        per_span_ns,
        spans,
        per_interval_ns,
        intervals,
        per_timed_interval_ns,
        timed_intervals,
        per_called_interval_ns,
        called_intervals,
        per_allocation_ns,
        allocations,
        callbacks_ns: sum(dumps.iter().map(|d| d.overhead.callbacks_ns)),
        callbacks,
        per_clock_read_ns,
        floor_per_span_ns,
        loop_per_span_ns,
        callbacks_sampled: sum(dumps.iter().map(|d| d.overhead.callbacks_sampled)),
        callbacks_dropped: sum(dumps.iter().map(|d| d.overhead.callbacks_dropped)),
        background_cpu_ns: sum(dumps.iter().map(|d| d.overhead.background_cpu_ns)),
        estimated_ns,
        fraction_of_run: if capacity > 0.0 {
            (estimated_ns as f64 / capacity).clamp(0.0, 1.0)
        } else {
            0.0
        },
    }
}

fn finite(v: f64) -> f64 {
    if v.is_finite() { v } else { 0.0 }
}

fn sum(it: impl Iterator<Item = u64>) -> u64 {
    it.fold(0u64, u64::saturating_add)
}

fn merge_group(id: u32, g: &Group<'_>) -> Result<CallsiteStats, MergeError> {
    let first = g.parts[0];
    let mut events = EventCounts::default();
    for c in &g.parts {
        events.add(&c.events);
    }
    // First, as their errors come first.
    let histograms = merge_fields(first, &CallsiteStats::HISTOGRAMS, &g.parts)?;
    // Every field named, as in `merge`.
    let mut merged = CallsiteStats {
        id,
        name: first.name.clone(),
        target: first.target.clone(),
        module_path: g.parts.iter().find_map(|c| c.module_path.clone()),
        file: first.file.clone(),
        line: first.line,
        level: first.level.clone(),
        calls: sum(g.parts.iter().map(|c| c.calls)),
        // The histograms, each merged above: a new one is added to
        // `CallsiteStats::HISTOGRAMS` (perf-layer's test checks the list
        // against the schema), not here.
        wall_ns: unset(),
        busy_ns: unset(),
        idle_ns: unset(),
        self_ns: unset(),
        events,
        alloc: g
            .parts
            .iter()
            .map(|c| c.alloc)
            .try_fold(AllocStats::default(), |mut acc, a| {
                acc.add(&a?);
                Some(acc)
            }),
        rss_delta: g
            .parts
            .iter()
            .map(|c| c.rss_delta)
            .try_fold(None::<RssDelta>, |acc, d| {
                let d = d?;
                Some(Some(match acc {
                    None => d,
                    Some(mut a) => {
                        a.add(&d);
                        a
                    }
                }))
            })
            .flatten(),
        heap: merge_callsite_heap(g),
        cpu: merge_callsite_cpu(first, g)?,
        groups: merge_callsite_groups(id, g)?,
        // Each part's window is on its own process's clock.
        active: match g.parts.as_slice() {
            [one] => one.active,
            _ => None,
        },
        // Known only when every part says it.
        runtime_worker_calls: g
            .parts
            .iter()
            .map(|c| c.runtime_worker_calls)
            .try_fold(0u64, |acc, n| Some(acc.saturating_add(n?))),
        // Known only when every part says it.
        intervals: g
            .parts
            .iter()
            .map(|c| c.intervals)
            .try_fold(0u64, |acc, n| Some(acc.saturating_add(n?))),
        // Known only when every part says it.
        layer: g.parts.iter().map(|c| c.layer).try_fold(
            perf_layer::dump::LayerTime::default(),
            |acc, l| {
                let l = l?;
                Some(perf_layer::dump::LayerTime {
                    ns: acc.ns.saturating_add(l.ns),
                    callbacks: acc.callbacks.saturating_add(l.callbacks),
                })
            },
        ),
        // Known only when every part says it. What each waited beside
        // names callsites by their part's ids: left out.
        watched_waits: g.parts.iter().map(|c| c.watched_waits.as_ref()).try_fold(
            WatchedWaits {
                others_wanted_ns: Some(0),
                for_a_thread_ns: Some(0),
                asleep_ns: Some(0),
                glances: Some(0),
                glances_in_futex: Some(0),
                ..WatchedWaits::default()
            },
            |acc, w| {
                let w = w?;
                Some(WatchedWaits {
                    intervals: acc.intervals.saturating_add(w.intervals),
                    wait_ns: acc.wait_ns.saturating_add(w.wait_ns),
                    others_cpu_ns: acc.others_cpu_ns.saturating_add(w.others_cpu_ns),
                    // Known only when every part says it.
                    others_wanted_ns: acc
                        .others_wanted_ns
                        .zip(w.others_wanted_ns)
                        .map(|(a, b)| a.saturating_add(b)),
                    for_a_thread_ns: acc
                        .for_a_thread_ns
                        .zip(w.for_a_thread_ns)
                        .map(|(a, b)| a.saturating_add(b)),
                    asleep_ns: acc
                        .asleep_ns
                        .zip(w.asleep_ns)
                        .map(|(a, b)| a.saturating_add(b)),
                    beside: Vec::new(),
                    glances: acc.glances.zip(w.glances).map(|(a, b)| a.saturating_add(b)),
                    glances_in_futex: acc
                        .glances_in_futex
                        .zip(w.glances_in_futex)
                        .map(|(a, b)| a.saturating_add(b)),
                })
            },
        ),
        // A sample of each part's time on the CPU: the parts' probes
        // add up; absent where no part has one.
        watched_io: g
            .parts
            .iter()
            .filter_map(|c| c.watched_io)
            .reduce(|a, b| a.plus(&b)),
        misnested_exits: g
            .parts
            .iter()
            .fold(0u64, |acc, c| acc.saturating_add(c.misnested_exits)),
        thread_starts: g
            .parts
            .iter()
            .fold(0u64, |acc, c| acc.saturating_add(c.thread_starts)),
        // On its own process's clock, as the active window.
        long_spans: match g.parts.as_slice() {
            [one] => one.long_spans.clone(),
            _ => None,
        },
        // Times on its part's clock, the parent by its part's id.
        open: match g.parts.as_slice() {
            [one] => one
                .open
                .map(|o| perf_layer::dump::OpenAtDump { parent: None, ..o }),
            _ => None,
        },
    };
    set_fields(&mut merged, &CallsiteStats::HISTOGRAMS, histograms);
    Ok(merged)
}

/// The parts' groups of one callsite, those with the same fields (or the
/// `other` ones) merged as callsites are, in the order of their labels.
fn merge_callsite_groups(id: u32, g: &Group<'_>) -> Result<Vec<CallsiteGroup>, MergeError> {
    let mut by_label: BTreeMap<(bool, String), (Vec<GroupField>, Group<'_>)> = BTreeMap::new();
    for part in &g.parts {
        for group in &part.groups {
            by_label
                .entry((group.other, group.label()))
                .or_insert_with(|| (group.fields.clone(), Group { parts: Vec::new() }))
                .1
                .parts
                .push(&group.stats);
        }
    }
    by_label
        .into_iter()
        .map(|((other, _), (fields, parts))| {
            Ok(CallsiteGroup {
                fields,
                other,
                stats: merge_group(id, &parts)?,
            })
        })
        .collect()
}

/// The timed spans of every part that timed any, added up: the figures are
/// over the timed spans only, so parts that timed none add nothing.
fn merge_callsite_cpu(
    first: &CallsiteStats,
    g: &Group<'_>,
) -> Result<Option<CpuStats>, MergeError> {
    let timed: Vec<&CpuStats> = g.parts.iter().filter_map(|c| c.cpu.as_ref()).collect();
    let Some(&one) = timed.first() else {
        return Ok(None);
    };
    if timed.len() == 1 {
        return Ok(Some(one.clone()));
    }
    let sum = |f: fn(&CpuStats) -> u64| timed.iter().fold(0u64, |a, c| a.saturating_add(f(c)));
    let histograms = merge_fields(first, &CpuStats::HISTOGRAMS, &timed)?;
    let mut merged = CpuStats {
        timed_calls: sum(|c| c.timed_calls),
        intervals: sum(|c| c.intervals),
        untimed_intervals: sum(|c| c.untimed_intervals),
        busy_ns: sum(|c| c.busy_ns),
        self_ns: sum(|c| c.self_ns),
        // Merged above, as the callsite's are.
        on_cpu_ns: unset(),
        self_on_cpu_ns: sum(|c| c.self_on_cpu_ns),
        off_cpu_ns: sum(|c| c.off_cpu_ns),
        preempted_ns: unset(),
        self_preempted_ns: timed.iter().try_fold(0u64, |a, c| {
            c.self_preempted_ns.map(|n| a.saturating_add(n))
        }),
        voluntary_switches: sum(|c| c.voluntary_switches),
        involuntary_switches: sum(|c| c.involuntary_switches),
        sampled: timed.iter().filter_map(|c| c.sampled.as_ref()).fold(
            None,
            |acc: Option<SampledCpu>, s| {
                let mut acc = acc.unwrap_or_default();
                acc.add(s);
                Some(acc)
            },
        ),
    };
    set_fields(&mut merged, &CpuStats::HISTOGRAMS, histograms);
    Ok(Some(merged))
}

/// A callsite's heap figures added up (timelines dropped, as in
/// `merge_heap`); unknown if any part's is. One part is kept whole.
fn merge_callsite_heap(g: &Group<'_>) -> Option<HeapStats> {
    if let [only] = g.parts.as_slice() {
        return only.heap.clone();
    }
    let mut parts = g.parts.iter().map(|c| c.heap.as_ref());
    let mut out = parts.next()??.clone();
    out.live_timeline_bytes.clear();
    for h in parts {
        out.add(h?);
    }
    Some(out)
}

/// Each histogram field of `fields` merged over the parts, in the fields'
/// order (the first error is the first field's that fails).
fn merge_fields<T>(
    cs: &CallsiteStats,
    fields: &[HistogramField<T>],
    parts: &[&T],
) -> Result<Vec<HistogramDump>, MergeError> {
    fields
        .iter()
        .map(|f| merge_histograms(cs, f.label, parts.iter().map(|p| (f.get)(p))))
        .collect()
}

/// A histogram field before [`set_fields`] sets it.
fn unset() -> HistogramDump {
    HistogramDump::from_encoded(String::new())
}

/// Sets what [`merge_fields`] merged of the same `fields`.
fn set_fields<T>(out: &mut T, fields: &[HistogramField<T>], merged: Vec<HistogramDump>) {
    for (f, h) in fields.iter().zip(merged) {
        *(f.get_mut)(out) = h;
    }
}

fn merge_histograms<'a>(
    cs: &CallsiteStats,
    which: &'static str,
    parts: impl Iterator<Item = &'a HistogramDump>,
) -> Result<HistogramDump, MergeError> {
    let err = |detail: String| MergeError::Histogram {
        callsite: cs.name.clone(),
        which,
        detail,
    };
    let mut acc: Option<Histogram<u64>> = None;
    let (mut total, mut clamped) = (0u64, 0u64);
    for part in parts {
        let h = part.decode().map_err(|e| err(e.to_string()))?;
        total = total.saturating_add(part.sum);
        clamped = clamped.saturating_add(part.clamped);
        match &mut acc {
            None => acc = Some(h),
            Some(a) => a.add(&h).map_err(|e| err(format!("{e:?}")))?,
        }
    }
    let acc = acc.ok_or_else(|| err("no histograms".to_owned()))?;
    Ok(HistogramDump::from_histogram(&acc, total, clamped))
}
