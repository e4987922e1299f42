//! Merging dumps of one service (several processes, hosts or runs) into one,
//! losslessly: histograms are added bucket by bucket, counts summed.
//!
//! | part | how it merges |
//! |---|---|
//! | callsites | by identity `(target, name, file, line)`; ids renumbered in order of first appearance |
//! | histograms | decoded, [`Histogram::add`]ed, re-encoded; sums and clamped counts added |
//! | calls, events, dropped counts | summed (saturating) |
//! | allocation, RSS delta | summed; unknown (`None`) if any part is unknown, so `None` keeps meaning "not measured" |
//! | edges | by the identities of both ends; calls and busy time summed |
//! | timeline, alerts | put on one clock (each part's `t_ms` shifted by its start time minus the earliest start) and sorted by time |
//! | run | earliest start, latest end; duration is the **sum** of the parts' durations (the wall-time budget of all processes) |
//! | overhead | spans and estimated time summed; per-span cost weighted by spans |
//!
//! Dumps with different histogram settings merge as long as
//! [`Histogram::add`] accepts them; when it does not (a value beyond the
//! first dump's range), the merge is refused naming the callsite.

use std::collections::HashMap;

use hdrhistogram::Histogram;
use perf_layer::dump::{AllocStats, CallEdge, CallsiteStats, Dump, HistogramDump, RssDelta};

use crate::analyze::Location;

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
        /// `wall`, `busy`, `idle` or `self`.
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
    let mut index: HashMap<Location, usize> = HashMap::new();
    let mut groups: Vec<Group<'_>> = Vec::new();
    // Per dump: its callsite id -> the merged id.
    let mut id_maps: Vec<HashMap<u32, u32>> = Vec::with_capacity(dumps.len());
    for d in &dumps {
        let mut ids = HashMap::new();
        for cs in &d.callsites {
            let key = Location::of(cs);
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
                });
                edges.len() - 1
            });
            edges[i].calls = edges[i].calls.saturating_add(e.calls);
            edges[i].child_busy_ns = edges[i].child_busy_ns.saturating_add(e.child_busy_ns);
        }
    }

    let first = &dumps[0];
    let earliest = dumps
        .iter()
        .map(|d| d.run.started_at_unix_ms)
        .min()
        .unwrap_or(0);
    let mut out = first.clone();
    out.format_version = dumps.iter().map(|d| d.format_version).max().unwrap_or(1);
    let same = |f: &dyn Fn(&Dump) -> String| dumps.iter().all(|d| f(d) == f(first));
    if !same(&|d| d.run.program.clone()) {
        let mut names: Vec<&str> = dumps.iter().map(|d| d.run.program.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        out.run.program = names.join("+");
    }
    if !same(&|d| d.run.host.clone()) {
        out.run.host = "several".to_owned();
    }
    if !same(&|d| d.run.pid.to_string()) {
        out.run.pid = 0;
    }
    out.run.started_at_unix_ms = earliest;
    out.run.ended_at_unix_ms = dumps
        .iter()
        .map(|d| d.run.ended_at_unix_ms)
        .max()
        .unwrap_or(0);
    out.run.duration_ns = dumps
        .iter()
        .fold(0u64, |a, d| a.saturating_add(d.run.duration_ns));
    out.config.histogram_max_ns = dumps
        .iter()
        .map(|d| d.config.histogram_max_ns)
        .max()
        .unwrap_or(0);
    out.allocations_tracked = dumps.iter().all(|d| d.allocations_tracked);
    out.callsites = callsites;
    out.callsites_dropped_spans = sum(dumps.iter().map(|d| d.callsites_dropped_spans));
    out.edges = edges;
    out.edges_dropped = sum(dumps.iter().map(|d| d.edges_dropped));

    let shift = |d: &Dump| d.run.started_at_unix_ms.saturating_sub(earliest);
    out.timeline.interval_ms = dumps
        .iter()
        .map(|d| d.timeline.interval_ms)
        .max()
        .unwrap_or(0);
    out.timeline.samples = dumps
        .iter()
        .flat_map(|d| {
            let s = shift(d);
            d.timeline.samples.iter().map(move |x| {
                let mut x = *x;
                x.t_ms = x.t_ms.saturating_add(s);
                x
            })
        })
        .collect();
    out.timeline.samples.sort_by_key(|s| s.t_ms);
    out.alerts = dumps
        .iter()
        .flat_map(|d| {
            let s = shift(d);
            d.alerts.iter().map(move |a| {
                let mut a = a.clone();
                a.t_ms = a.t_ms.saturating_add(s);
                a
            })
        })
        .collect();
    out.alerts.sort_by_key(|a| a.t_ms);
    out.alerts_dropped = sum(dumps.iter().map(|d| d.alerts_dropped));

    let spans = sum(dumps.iter().map(|d| d.overhead.spans));
    out.overhead.spans = spans;
    out.overhead.estimated_ns = sum(dumps.iter().map(|d| d.overhead.estimated_ns));
    out.overhead.per_span_ns = if spans == 0 {
        0.0
    } else {
        dumps
            .iter()
            .map(|d| finite(d.overhead.per_span_ns) * d.overhead.spans as f64)
            .sum::<f64>()
            / spans as f64
    };
    // fraction = estimated / capacity, so capacity = estimated / fraction.
    let capacity: f64 = dumps
        .iter()
        .filter(|d| finite(d.overhead.fraction_of_run) > 0.0)
        .map(|d| d.overhead.estimated_ns as f64 / d.overhead.fraction_of_run)
        .sum();
    out.overhead.fraction_of_run = if capacity > 0.0 {
        (out.overhead.estimated_ns as f64 / capacity).clamp(0.0, 1.0)
    } else {
        0.0
    };
    Ok(out)
}

fn finite(v: f64) -> f64 {
    if v.is_finite() { v } else { 0.0 }
}

fn sum(it: impl Iterator<Item = u64>) -> u64 {
    it.fold(0u64, u64::saturating_add)
}

fn merge_group(id: u32, g: &Group<'_>) -> Result<CallsiteStats, MergeError> {
    let first = g.parts[0];
    let mut out = first.clone();
    out.id = id;
    out.module_path = g.parts.iter().find_map(|c| c.module_path.clone());
    out.calls = sum(g.parts.iter().map(|c| c.calls));
    out.wall_ns = merge_histograms(first, "wall", g.parts.iter().map(|c| &c.wall_ns))?;
    out.busy_ns = merge_histograms(first, "busy", g.parts.iter().map(|c| &c.busy_ns))?;
    out.idle_ns = merge_histograms(first, "idle", g.parts.iter().map(|c| &c.idle_ns))?;
    out.self_ns = merge_histograms(first, "self", g.parts.iter().map(|c| &c.self_ns))?;
    for c in &g.parts[1..] {
        out.events.add(&c.events);
    }
    out.alloc = g
        .parts
        .iter()
        .map(|c| c.alloc)
        .try_fold(AllocStats::default(), |mut acc, a| {
            acc.add(&a?);
            Some(acc)
        });
    out.rss_delta = g
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
        .flatten();
    Ok(out)
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
