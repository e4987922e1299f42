//! Turning the live shards into a [`Dump`], without stopping recording: the
//! one place where recorder state becomes wire types.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use rustc_hash::{FxHashMap, FxHashSet};
use tracing_core::Metadata;

use crate::background::overhead;
use crate::background::procfs::process_cpu_ns;
use crate::config::Config;
use crate::dump::{
    ActiveWindow, CallEdge, CallsiteGroup, CallsiteStats, CpuStats, Dump, DumpConfig, EventCounts,
    FORMAT_VERSION, FORMAT_VERSION_UNGROUPED, GroupEdge, GroupField, HeapStats, HeapSummary,
    HistogramDump, LayerTime, LongSpan, LongSpans, OpenAtDump, Overhead, Producer, RssDelta,
    RunInfo, SampledCpu, WaitedBeside, WatchedIo, WatchedWaits,
};
use crate::profiler::{Profiler, unix_ms};
use crate::record::callsite::CallsiteKey;
use crate::record::flat_hist::{FlatHist, Layout};
use crate::record::groups::{GroupKey, Groups, OTHER, fold};
use crate::record::shards::{Merged, Shards};
use crate::record::totals::{CallsiteAcc, Events, RssTotals};
use crate::record::{self, alloc, heap};

/// Below this much process CPU time (the OS counts it in 10 ms ticks), the
/// overhead fraction is taken over wall time instead.
const MIN_CPU_NS: u64 = 200_000_000;

impl Profiler {
    /// A consistent-enough copy of everything recorded so far: each thread's
    /// shard is copied under its own lock, one after the other.
    pub(crate) fn snapshot(&self) -> Dump {
        let merged = self.shards.merged();
        // The run ends here, before anything slow (the first snapshot's
        // overhead calibration): duration, end time and CPU time are read
        // together, so they agree.
        let ended = SystemTime::now();
        let duration_ns = u64::try_from(self.started.at.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let threads_active_ns = self.shards.threads_active_ns(
            &self.config.clock,
            self.started.raw,
            self.config.clock.raw(),
        );
        let cpu_ns = self
            .started
            .cpu_ns
            .zip(process_cpu_ns())
            .map(|(start, now)| now.saturating_sub(start));

        let (accs, ids) = listed_callsites(&merged, self.config.max_callsites);
        let with_long = accs
            .iter()
            .filter(|a| a.1.is_some_and(|acc| acc.long.is_some()))
            .count();
        let facts = Facts {
            long_kept: long_spans_kept(with_long),
            layout: self.shards.layout(),
            started_raw: self.started.raw,
            clock: &self.config.clock,
            allocations_tracked: crate::record::alloc::is_installed(),
            sampled: self.config.sampler_interval.is_some(),
            waits: self
                .config
                .watches_waits()
                .then(|| self.waits.lock().clone()),
            layer_by_tag: self.shards.callbacks_by_tag(),
            misnested_by_tag: self.shards.misnested_by_tag(),
        };
        let metas: Vec<&'static Metadata<'static>> = accs.iter().map(|a| a.2).collect();
        let (heaps, heap) = if facts.allocations_tracked {
            let (heaps, summary) = self.heap(&metas, duration_ns);
            (heaps, Some(summary))
        } else {
            (vec![None; metas.len()], None)
        };
        let (mut callsites, group_index) =
            callsites(&accs, heaps, &merged, self.shards.groups.as_ref(), &facts);
        for (stats, (key, _, _)) in callsites.iter_mut().zip(&accs) {
            stats.thread_starts = merged.thread_starts.get(key).copied().unwrap_or(0);
            stats.open = merged.open.get(key).map(|o| OpenAtDump {
                spans: o.spans,
                first_opened_ns: facts.since_start(o.first_created),
                mean_opened_ns: facts.since_start(o.mean_created()),
                parent: o
                    .parent()
                    .and_then(|meta| ids.get(&CallsiteKey::of(meta)).copied()),
            });
        }
        let group_edges = group_edges(&merged, &ids, &group_index);
        let grouped = callsites.iter().any(|c| !c.groups.is_empty());
        let edges = edges(&merged, &ids);

        let spans: u64 = merged.callsites.values().map(|acc| acc.calls).sum();
        // Counted as they end, open spans' too: a connection still open at
        // the snapshot has paid for its polls.
        let counts = overhead::Counts::of(self, spans);
        let overhead = self.overhead(&counts, duration_ns, cpu_ns);
        let (alerts, alerts_dropped) = {
            let ring = self.alerts.lock();
            (ring.alerts.iter().cloned().collect(), ring.dropped)
        };
        Dump {
            format_version: if grouped {
                FORMAT_VERSION
            } else {
                FORMAT_VERSION_UNGROUPED
            },
            producer: Producer {
                name: env!("CARGO_PKG_NAME").to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
            },
            run: RunInfo {
                program: program_name(),
                pid: std::process::id(),
                host: sysinfo::System::host_name().unwrap_or_else(|| "unknown".to_owned()),
                started_at_unix_ms: self.started.unix_ms,
                ended_at_unix_ms: unix_ms(ended),
                duration_ns,
                cpu_ns,
                cores: std::thread::available_parallelism()
                    .ok()
                    .and_then(|n| u32::try_from(n.get()).ok()),
                span_threads: u32::try_from(self.shards.threads()).ok(),
                span_threads_active_ns: Some(
                    threads_active_ns.min(
                        duration_ns.saturating_mul(
                            u64::try_from(self.shards.threads()).unwrap_or(u64::MAX),
                        ),
                    ),
                ),
                cpu_model: cpu_model(),
            },
            config: dump_config(&self.config, &self.shards),
            allocations_tracked: facts.allocations_tracked,
            callsites,
            callsites_dropped_spans: self.shards.dropped_spans.load(Ordering::Relaxed),
            edges,
            edges_dropped: self.shards.dropped_edges.load(Ordering::Relaxed),
            group_edges,
            timeline: self.timeline.lock().to_timeline(),
            alerts,
            alerts_dropped,
            overhead,
            heap,
            memory_pressure: self.pressure.as_ref().map(|p| p.lock().to_dump()),
        }
    }

    /// The live heap of each of `metas` and of the rest of the process, as
    /// the allocator's tables say now, with the sampler's timelines and
    /// peaks; the dump is the timelines' last point.
    fn heap(
        &self,
        metas: &[&'static Metadata<'static>],
        duration_ns: u64,
    ) -> (Vec<Option<HeapStats>>, HeapSummary) {
        let counts = heap::totals();
        let timeline = self.heap_timeline.lock();
        let now_ms = duration_ns / 1_000_000;
        let stats_of = |tag: u32| {
            let c = counts.get(tag as usize).copied().unwrap_or_default();
            let live = c.live_bytes();
            let mut series = timeline.series.get(&tag).cloned().unwrap_or_else(|| {
                // A callsite that held nothing at any kept point.
                vec![0; timeline.t_ms.len()]
            });
            series.push(live);
            HeapStats {
                allocated_bytes: c.allocated_bytes,
                allocations: c.allocations,
                freed_bytes: c.freed_bytes,
                frees: c.frees,
                live_bytes: live,
                peak_live_bytes: timeline.peak.get(&tag).copied().unwrap_or(0).max(live),
                live_timeline_bytes: series,
            }
        };
        let tags: Vec<u32> = metas.iter().map(|m| heap::tag_of(m)).collect();
        let listed: FxHashSet<u32> = tags.iter().copied().collect();
        let per_callsite = tags.iter().map(|&t| Some(stats_of(t))).collect();
        let mut t_ms = timeline.t_ms.clone();
        t_ms.push(now_ms);
        let mut total = timeline.total.clone();
        let live_bytes: u64 = counts.iter().map(heap::HeapCounts::live_bytes).sum();
        total.push(live_bytes);
        let reserved = |tag: u32| {
            let mut s = stats_of(tag);
            s.live_timeline_bytes.clear();
            s
        };
        // Callsites past the cap, and those this dump does not list.
        let mut other = reserved(heap::TAG_OVERFLOW);
        for tag in heap::FIRST_CALLSITE_TAG..counts.len() as u32 {
            if !listed.contains(&tag) {
                other.add(&stats_of(tag));
            }
        }
        let summary = HeapSummary {
            tag_bytes: alloc::TAG_BYTES as u32,
            live_bytes,
            outside_spans: reserved(heap::TAG_NONE),
            layer: reserved(heap::TAG_LAYER),
            other,
            timeline_t_ms: t_ms,
            timeline_live_bytes: total,
        };
        (per_callsite, summary)
    }

    /// The overhead record of `counts`, read before the calibration (whose
    /// own work is not the run's).
    fn overhead(
        &self,
        counts: &overhead::Counts,
        duration_ns: u64,
        cpu_ns: Option<u64>,
    ) -> Overhead {
        let counted = Overhead {
            spans: counts.spans,
            intervals: counts.exits.intervals,
            timed_intervals: counts.exits.timed,
            called_intervals: counts.exits.called,
            allocations: counts.allocations,
            callbacks: counts.callbacks.callbacks,
            callbacks_sampled: counts.callbacks.sampled,
            callbacks_dropped: counts.callbacks.dropped,
            callbacks_ns: counts.callbacks.ns,
            background_cpu_ns: counts.background_ns,
            ..Overhead::default()
        };
        if !self.config.calibrate_overhead {
            return counted;
        }
        // The CPU time was read before calibrating: the calibration's own CPU
        // is not the run's. Too short a CPU time (the OS counts it in ticks)
        // cannot be read precisely.
        let cpu_ns = cpu_ns.filter(|&ns| ns >= MIN_CPU_NS);
        let calibration = *self
            .calibration
            .get_or_init(|| overhead::calibrate(&self.config));
        let estimated_ns = calibration.estimate_ns(counts) as u64;
        // The share of the CPU the process used that the layer took: what a
        // CPU-bound program loses in throughput. Where the CPU time is not
        // known (or too short to be read precisely), fall back to the wall
        // time of each thread that recorded spans, at most one per core.
        let capacity_ns = cpu_ns.map_or_else(
            || {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                let threads = self.shards.threads().clamp(1, cores) as f64;
                duration_ns as f64 * threads
            },
            |ns| ns as f64,
        );
        let fraction_of_run = if capacity_ns > 0.0 {
            (estimated_ns as f64 / capacity_ns).min(1.0)
        } else {
            0.0
        };
        Overhead {
            per_span_ns: calibration.per_span_ns,
            per_interval_ns: calibration.per_interval_ns,
            per_timed_interval_ns: calibration.per_timed_interval_ns,
            per_called_interval_ns: calibration.per_called_interval_ns,
            per_allocation_ns: calibration.per_allocation_ns,
            per_clock_read_ns: calibration.per_clock_read_ns,
            floor_per_span_ns: calibration.floor_per_span_ns,
            loop_per_span_ns: calibration.loop_per_span_ns,
            estimated_ns,
            fraction_of_run,
            ..counted
        }
    }
}

/// A callsite the dump lists: its key, what it recorded (`None`: a parent
/// still open, whose callsite has no closed span yet), its metadata.
type Listed<'a> = (
    CallsiteKey,
    Option<&'a CallsiteAcc>,
    &'static Metadata<'static>,
);

/// What every callsite's figures are read with.
struct Facts<'a> {
    layout: Layout,
    /// The clock's raw reading when the layer was built, and the clock.
    started_raw: u64,
    clock: &'a quanta::Clock,
    allocations_tracked: bool,
    /// The sampler runs: spans have RSS deltas.
    sampled: bool,
    /// The background thread's watched waits by tag, where it watches.
    waits: Option<crate::background::waits::WaitTable>,
    /// The layer's sampled callback time and callbacks by tag.
    layer_by_tag: FxHashMap<u32, (u64, u64)>,
    /// Exits that did not nest, by tag.
    misnested_by_tag: FxHashMap<u32, u64>,
    /// Long spans a callsite keeps in the dump ([`long_spans_kept`]).
    long_kept: usize,
}

/// Long spans in a dump, over every callsite: about 1 MB of JSON.
const LONG_SPANS_IN_DUMP: usize = 16_384;

/// Long spans each of `callsites` keeps in the dump: the merge's 256 while
/// the dump's budget holds them, fewer (down to 16) where thousands of
/// callsites have long spans.
fn long_spans_kept(callsites: usize) -> usize {
    (LONG_SPANS_IN_DUMP / callsites.max(1)).clamp(16, 256)
}

impl Facts<'_> {
    /// A long span in ns since the run started.
    fn long_span(&self, s: &record::long_spans::LongSpan) -> LongSpan {
        LongSpan {
            opened_ns: self.since_start(s.opened),
            closed_ns: self.since_start(s.closed),
            idle_ns: s.idle_ns,
        }
    }

    /// A raw clock reading as ns since the run started (0 before it).
    fn since_start(&self, raw: u64) -> u64 {
        if raw <= self.started_raw {
            0
        } else {
            self.clock.delta_as_nanos(self.started_raw, raw)
        }
    }
}

/// The callsites the dump lists, in a stable order (two dumps of one
/// program list callsites alike), and each one's id, its index. Parents
/// that have not closed yet (a `main` span, say) still need an entry for
/// their edges to point at; they get one with zero calls. So do callsites
/// whose spans are all still open (a task that never ends), and the
/// callsites those opened under, up to `max_callsites` listed.
fn listed_callsites(
    merged: &Merged,
    max_callsites: usize,
) -> (Vec<Listed<'_>>, FxHashMap<CallsiteKey, u32>) {
    let mut accs: Vec<Listed<'_>> = merged
        .callsites
        .iter()
        .map(|(k, acc)| (*k, Some(acc), acc.meta))
        .collect();
    let mut listed: FxHashSet<CallsiteKey> = merged.callsites.keys().copied().collect();
    for ((parent_key, _), edge) in &merged.edges {
        if let Some(meta) = edge.parent {
            if listed.insert(*parent_key) {
                accs.push((*parent_key, None, meta));
            }
        }
    }
    // In a stable order, so that the cap leaves out the same ones.
    let mut open: Vec<_> = merged.open.iter().collect();
    open.sort_by_key(|(_, o)| (o.meta.target(), o.meta.name(), o.meta.file(), o.meta.line()));
    for (key, o) in open {
        let parent = o.parent().map(|meta| (CallsiteKey::of(meta), meta));
        for (key, meta) in std::iter::once((*key, o.meta)).chain(parent) {
            if listed.len() < max_callsites && listed.insert(key) {
                accs.push((key, None, meta));
            }
        }
    }
    accs.sort_by(|a, b| {
        let key = |m: &'static Metadata<'static>| (m.target(), m.name(), m.file(), m.line());
        key(a.2).cmp(&key(b.2)).then(a.0.cmp(&b.0))
    });
    let ids = accs
        .iter()
        .enumerate()
        .map(|(i, a)| (a.0, i as u32))
        .collect();
    (accs, ids)
}

/// Each listed callsite's figures, its live heap and its groups (in a
/// stable order: by their fields' text); beside them, where each group
/// landed in its callsite's list, by folded key, for the group edges.
fn callsites(
    accs: &[Listed<'_>],
    heaps: Vec<Option<HeapStats>>,
    merged: &Merged,
    described: Option<&Groups>,
    facts: &Facts<'_>,
) -> (Vec<CallsiteStats>, FxHashMap<(CallsiteKey, u64), u32>) {
    let mut groups: FxHashMap<CallsiteKey, Vec<(GroupKey, &CallsiteAcc)>> = FxHashMap::default();
    for ((callsite, key), acc) in &merged.groups {
        groups.entry(*callsite).or_default().push((*key, acc));
    }
    let mut group_index: FxHashMap<(CallsiteKey, u64), u32> = FxHashMap::default();
    // A watched wait names the callsites waited beside by tag.
    let id_of_tag: FxHashMap<u32, u32> = accs
        .iter()
        .enumerate()
        .map(|(i, (_, _, meta))| (crate::record::heap::tag_of(meta), i as u32))
        .collect();
    let callsites = accs
        .iter()
        .zip(heaps)
        .enumerate()
        .map(|(i, ((key, acc, meta), heap))| {
            let mut stats = callsite_stats(i as u32, meta, *acc, facts);
            stats.heap = heap;
            let tag = crate::record::heap::tag_of(meta);
            let (ns, callbacks) = facts.layer_by_tag.get(&tag).copied().unwrap_or_default();
            stats.layer = Some(LayerTime { ns, callbacks });
            stats.misnested_exits = facts
                .misnested_by_tag
                .get(&tag)
                .copied()
                .unwrap_or_default();
            stats.watched_waits = facts.waits.as_ref().map(|waits| {
                let sums = waits.get(&tag).copied().unwrap_or_default();
                let mut beside: Vec<WaitedBeside> = sums
                    .beside
                    .iter()
                    .filter(|&&(_, ns)| ns > 0)
                    .filter_map(|&(tag, ns)| {
                        id_of_tag
                            .get(&tag)
                            .map(|&callsite| WaitedBeside { callsite, ns })
                    })
                    .collect();
                beside.sort_by_key(|b| (std::cmp::Reverse(b.ns), b.callsite));
                WatchedWaits {
                    intervals: sums.intervals,
                    wait_ns: sums.wait_ns,
                    others_cpu_ns: sums.others_cpu_ns,
                    others_wanted_ns: Some(sums.others_wanted_ns),
                    for_a_thread_ns: Some(sums.for_a_thread_ns),
                    asleep_ns: Some(sums.asleep_ns),
                    beside,
                    glances: Some(sums.glances),
                    glances_in_futex: Some(sums.glances_in_futex),
                }
            });
            stats.watched_io = facts.waits.as_ref().and_then(|waits| {
                let io = waits.get(&tag)?.io;
                (io.probes > 0).then_some(WatchedIo {
                    probes: io.probes,
                    cpu_ns: io.cpu_ns,
                    reads: io.counts.reads,
                    writes: io.counts.writes,
                    read_bytes: io.counts.read_bytes,
                    written_bytes: io.counts.written_bytes,
                })
            });
            if let (Some(of), Some(described)) = (groups.get(key), described) {
                let mut listed: Vec<(CallsiteGroup, GroupKey)> = of
                    .iter()
                    .map(|(group, acc)| {
                        let fields = described.describe(group);
                        let listed = CallsiteGroup {
                            other: fields.is_none(),
                            fields: fields
                                .unwrap_or_default()
                                .into_iter()
                                .map(|(field, value)| GroupField { field, value })
                                .collect(),
                            stats: callsite_stats(i as u32, meta, Some(acc), facts),
                        };
                        (listed, *group)
                    })
                    .collect();
                listed.sort_by_key(|(g, _)| (g.other, g.label()));
                for (index, (_, group)) in listed.iter().enumerate() {
                    group_index.insert((*key, fold(group)), index as u32);
                }
                stats.groups = listed.into_iter().map(|(g, _)| g).collect();
            }
            stats
        })
        .collect();
    (callsites, group_index)
}

/// The call edges with a grouped end, between listed callsites, by the
/// groups `group_index` placed.
fn group_edges(
    merged: &Merged,
    ids: &FxHashMap<CallsiteKey, u32>,
    group_index: &FxHashMap<(CallsiteKey, u64), u32>,
) -> Vec<GroupEdge> {
    let other_fold = fold(&OTHER);
    // A parent's group not listed went to `other` past the cap, if the
    // callsite has one; else it was not admitted yet (the parent is
    // still open) and is left unattributed.
    let group_of = |callsite: &CallsiteKey, folded: u64| -> Option<u32> {
        if folded == 0 {
            return None;
        }
        group_index
            .get(&(*callsite, folded))
            .or_else(|| group_index.get(&(*callsite, other_fold)))
            .copied()
    };
    // Keys that resolve alike (groups past the cap) add up.
    // (parent, child, parent's group, child's) -> (calls, busy ns).
    type Ends = (u32, u32, Option<u32>, Option<u32>);
    let mut by_groups: FxHashMap<Ends, (u64, u64)> = FxHashMap::default();
    for ((parent, parent_group, child, child_group), edge) in &merged.group_edges {
        let (Some(&p), Some(&c)) = (ids.get(parent), ids.get(child)) else {
            continue;
        };
        let parent_group = group_of(parent, *parent_group);
        let child_group = group_of(child, *child_group);
        if parent_group.is_none() && child_group.is_none() {
            continue;
        }
        let sum = by_groups
            .entry((p, c, parent_group, child_group))
            .or_default();
        sum.0 = sum.0.saturating_add(edge.calls);
        sum.1 = sum.1.saturating_add(edge.child_busy_ns);
    }
    let mut group_edges: Vec<GroupEdge> = by_groups
        .into_iter()
        .map(
            |((parent, child, parent_group, child_group), (calls, child_busy_ns))| GroupEdge {
                parent,
                parent_group,
                child,
                child_group,
                calls,
                child_busy_ns,
            },
        )
        .collect();
    group_edges.sort_by_key(|e| (e.parent, e.child, e.parent_group, e.child_group));
    group_edges
}

/// The call edges between listed callsites, in a stable order.
fn edges(merged: &Merged, ids: &FxHashMap<CallsiteKey, u32>) -> Vec<CallEdge> {
    let mut edges: Vec<CallEdge> = merged
        .edges
        .iter()
        .filter_map(|((parent, child), edge)| {
            Some(CallEdge {
                parent: *ids.get(parent)?,
                child: *ids.get(child)?,
                calls: edge.calls,
                child_busy_ns: edge.child_busy_ns,
                outlived: edge.outlived,
            })
        })
        .collect();
    edges.sort_by_key(|e| (e.parent, e.child));
    edges
}

/// The configuration as the dump records it: what was asked, and what this
/// platform could do of it (CPU time).
fn dump_config(config: &Config, shards: &Shards) -> DumpConfig {
    let cpu_time_threshold_ns = config
        .cpu_time_threshold_ns
        .filter(|_| crate::record::cpu::available());
    DumpConfig {
        histogram_sigfig: config.histogram_sigfig,
        histogram_max_ns: config.histogram_max_ns,
        sampler_interval_ms: config
            .sampler_interval
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        rss_alert_bytes: config.rss_alert_bytes,
        cpu_alert_percent: config.cpu_alert_percent,
        max_callsites: config.max_callsites,
        max_edges: config.max_edges,
        timeline_capacity: config.timeline_capacity,
        heap_timeline_points: config.heap_timeline_points,
        cpu_time_threshold_ns,
        cpu_time_source: cpu_time_threshold_ns.map(|_| crate::record::task_clock::source()),
        group_by: shards
            .groups
            .as_ref()
            .map(|g| g.fields().to_vec())
            .unwrap_or_default(),
        max_groups: shards.groups.as_ref().map_or(0, |_| config.max_groups),
    }
}

fn callsite_stats(
    id: u32,
    meta: &'static Metadata<'static>,
    acc: Option<&CallsiteAcc>,
    facts: &Facts<'_>,
) -> CallsiteStats {
    let empty;
    let acc = match acc {
        Some(acc) => acc,
        None => {
            empty = CallsiteAcc::empty(meta, facts.layout);
            &empty
        }
    };
    let hist = |h: &FlatHist| {
        HistogramDump::from_histogram(&h.to_histogram(&acc.layout), h.sum, h.clamped)
    };
    CallsiteStats {
        id,
        name: meta.name().to_owned(),
        target: meta.target().to_owned(),
        module_path: meta.module_path().map(str::to_owned),
        file: meta.file().map(str::to_owned),
        line: meta.line(),
        level: meta.level().as_str().to_owned(),
        calls: acc.calls,
        wall_ns: hist(&acc.wall),
        busy_ns: hist(&acc.busy),
        idle_ns: hist(&acc.idle),
        self_ns: hist(&acc.self_time),
        events: event_counts(&acc.events, acc.events_ns),
        alloc: facts.allocations_tracked.then_some(acc.alloc),
        rss_delta: facts
            .sampled
            .then(|| acc.rss.as_ref().map(rss_delta).unwrap_or_default()),
        heap: None,
        cpu: acc.cpu.as_ref().map(|c| CpuStats {
            timed_calls: c.calls,
            intervals: c.intervals,
            untimed_intervals: c.untimed_intervals,
            busy_ns: c.sums.busy_ns,
            self_ns: c.sums.self_ns,
            on_cpu_ns: hist(&c.on_cpu),
            self_on_cpu_ns: c.sums.self_on_cpu_ns,
            off_cpu_ns: c.sums.busy_ns.saturating_sub(c.sums.on_cpu_ns),
            preempted_ns: hist(&c.preempted),
            self_preempted_ns: Some(c.sums.self_preempted_ns),
            voluntary_switches: c.sums.voluntary,
            involuntary_switches: c.sums.involuntary,
            sampled: (c.sampled_intervals > 0).then_some(SampledCpu {
                intervals: c.sampled_intervals,
                busy_ns: c.sampled.busy_ns,
                self_ns: c.sampled.self_ns,
                on_cpu_ns: c.sampled.on_cpu_ns,
                self_on_cpu_ns: c.sampled.self_on_cpu_ns,
                preempted_ns: c.sampled.preempted_ns,
                self_preempted_ns: Some(c.sampled.self_preempted_ns),
            }),
        }),
        groups: Vec::new(),
        active: (acc.calls > 0).then(|| ActiveWindow {
            first_open_ns: facts.since_start(acc.first_open),
            last_close_ns: facts.since_start(acc.last_close),
        }),
        runtime_worker_calls: Some(acc.worker_calls),
        intervals: Some(acc.intervals),
        layer: None,
        watched_waits: None,
        watched_io: None,
        misnested_exits: 0,
        thread_starts: 0,
        long_spans: acc.long.as_deref().map(|long| long_spans(long, facts)),
        open: None,
    }
}

/// A callsite's long spans, in ns since the run started, by closing time.
fn long_spans(long: &record::long_spans::LongSpans, facts: &Facts<'_>) -> LongSpans {
    // The latest, within the dump's budget.
    let (raw, complete_after) = long.latest(facts.long_kept);
    LongSpans {
        threshold_ns: record::long_spans::LONG_SPAN_NS,
        complete_after_ns: match complete_after {
            0 => 0,
            raw => facts.since_start(raw),
        },
        spans: raw.iter().map(|s| facts.long_span(s)).collect(),
        longest_waits: {
            let mut longest = long.longest().to_vec();
            longest.sort_unstable_by_key(|s| std::cmp::Reverse(s.idle_ns));
            longest.truncate(facts.long_kept / 4);
            longest.iter().map(|s| facts.long_span(s)).collect()
        },
    }
}

fn event_counts(events: &Events, ns: u64) -> EventCounts {
    let [trace, debug, info, warn, error] = *events;
    EventCounts {
        trace,
        debug,
        info,
        warn,
        error,
        ns,
    }
}

fn rss_delta(rss: &RssTotals) -> RssDelta {
    RssDelta {
        sum_bytes: rss.sum_bytes,
        max_bytes: rss.max_bytes,
        min_bytes: rss.min_bytes,
    }
}

fn program_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .or_else(|| std::env::args().next())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The CPU's model name, read once per process (a machine constant).
fn cpu_model() -> Option<String> {
    static MODEL: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    MODEL
        .get_or_init(|| {
            let system = sysinfo::System::new_with_specifics(
                sysinfo::RefreshKind::nothing().with_cpu(sysinfo::CpuRefreshKind::nothing()),
            );
            system
                .cpus()
                .first()
                .map(|cpu| cpu.brand().trim().to_owned())
                .filter(|brand| !brand.is_empty())
        })
        .clone()
}
