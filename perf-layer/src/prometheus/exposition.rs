//! The scrape's text: what the layer recorded so far, in the Prometheus text
//! exposition format (version 0.0.4).
//!
//! Series are labelled by `span` (the span's name) and `target` only: both
//! come from the code, so their number is bounded by the program, never by
//! field values. Grouped callsites (`group_by`) also have series with a
//! `group` label, in families of their own (`perf_layer_group_*`), bounded
//! by the cap on groups per callsite. Callsites sharing a name and target (one function's spans
//! at two lines) are added together, as Prometheus requires one series per
//! label set.
//!
//! Time histograms use fixed bounds, the same in every process and every
//! version: powers of two nanoseconds from 2^10 ns (1.024 µs) to 2^36 ns
//! (68.7 s), 27 bounds and `+Inf`. A power of two is where an HdrHistogram
//! bucket starts, so each bucket's count is exact against the layer's
//! histograms: it counts the values *below* its bound (a value of exactly
//! 2^k ns is counted in the next bucket, a difference smaller than the
//! histograms' own resolution). The same bounds everywhere let a fleet's
//! histograms be added in PromQL (`sum by (le, span)`).

use std::fmt::Write as _;

use rustc_hash::FxHashMap;

use crate::profiler::Profiler;
use crate::record::heap;

/// The bucket bounds, in nanoseconds: 2^10 to 2^36.
pub(crate) const BOUNDS_NS: [u64; 27] = {
    let mut b = [0; 27];
    let mut i = 0;
    while i < 27 {
        b[i] = 1 << (10 + i);
        i += 1;
    }
    b
};

/// The metrics of one span name and target.
#[derive(Debug, Clone, Default)]
struct Series {
    calls: u64,
    busy: Buckets,
    self_time: Buckets,
    self_alloc_bytes: u64,
    /// Live bytes allocated by these callsites; `None` without the
    /// counting allocator.
    live_bytes: Option<u64>,
}

/// Cumulative counts at each bound, then the total, and the exact sum.
#[derive(Debug, Clone)]
struct Buckets {
    cumulative: [u64; BOUNDS_NS.len() + 1],
    sum_ns: u64,
}

impl Default for Buckets {
    fn default() -> Self {
        Self {
            cumulative: [0; BOUNDS_NS.len() + 1],
            sum_ns: 0,
        }
    }
}

/// The whole scrape, read from `profiler` now. A scrape takes the data out
/// of the process: a program watched through Prometheus alone is not warned
/// at its end that no dump was written.
pub(crate) fn render(profiler: &Profiler) -> String {
    profiler.mark_taken_out();
    let mut series: FxHashMap<(&'static str, &'static str), Series> = FxHashMap::default();
    let tracked = crate::record::alloc::is_installed();
    let heap = if tracked { heap::totals() } else { Vec::new() };
    let mut spans = 0u64;
    // Live bytes are per callsite, not per thread: counted at a callsite's
    // first accumulator.
    let mut live_counted = rustc_hash::FxHashSet::default();
    profiler.shards.for_each_callsite(|acc| {
        let key = (acc.meta.name(), acc.meta.target());
        let s = series.entry(key).or_default();
        s.calls += acc.calls;
        spans += acc.calls;
        acc.busy
            .add_cumulative(&acc.layout, &BOUNDS_NS, &mut s.busy.cumulative);
        s.busy.sum_ns = s.busy.sum_ns.saturating_add(acc.busy.sum);
        acc.self_time
            .add_cumulative(&acc.layout, &BOUNDS_NS, &mut s.self_time.cumulative);
        s.self_time.sum_ns = s.self_time.sum_ns.saturating_add(acc.self_time.sum);
        s.self_alloc_bytes = s
            .self_alloc_bytes
            .saturating_add(acc.alloc.self_alloc_bytes);
        if tracked {
            let tag = heap::tag_of(acc.meta);
            if live_counted.insert(tag) {
                let live = heap
                    .get(tag as usize)
                    .map_or(0, heap::HeapCounts::live_bytes);
                *s.live_bytes.get_or_insert(0) += live;
            }
        }
    });
    let mut rows: Vec<(String, Series)> = series
        .into_iter()
        .map(|((span, target), s)| {
            (
                format!("span=\"{}\",target=\"{}\"", label(span), label(target)),
                s,
            )
        })
        .collect();
    rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let groups = group_rows(profiler);

    let mut out = String::with_capacity(512 + rows.len() * 6_000);
    histogram_family(
        &mut out,
        "perf_layer_span_busy_seconds",
        "Time spans were entered (busy), per span name and target.",
        &rows,
        |s| &s.busy,
    );
    histogram_family(
        &mut out,
        "perf_layer_span_self_seconds",
        "Busy time of spans minus the busy time of their child spans.",
        &rows,
        |s| &s.self_time,
    );
    family(
        &mut out,
        "perf_layer_span_calls_total",
        "counter",
        "Spans closed.",
        &rows,
        |s| Some(s.calls as f64),
    );
    if tracked {
        family(
            &mut out,
            "perf_layer_span_self_allocated_bytes_total",
            "counter",
            "Bytes allocated while a span of this name was the innermost entered.",
            &rows,
            |s| Some(s.self_alloc_bytes as f64),
        );
        family(
            &mut out,
            "perf_layer_span_live_bytes",
            "gauge",
            "Heap bytes allocated by spans of this name and not yet freed (by anyone).",
            &rows,
            |s| s.live_bytes.map(|b| b as f64),
        );
    }
    if !groups.is_empty() {
        histogram_family(
            &mut out,
            "perf_layer_group_busy_seconds",
            "Time spans were entered (busy), per group of the fields the layer groups by (`group_by`), span name and target.",
            &groups,
            |s| &s.busy,
        );
        family(
            &mut out,
            "perf_layer_group_calls_total",
            "counter",
            "Spans closed, per group, span name and target.",
            &groups,
            |s| Some(s.calls as f64),
        );
    }
    process(&mut out, profiler, spans);
    out
}

/// The series of each group of grouped callsites (`group_by`), labelled
/// `group="route=/export,method=GET"` (or `other`) beside `span` and
/// `target`: bounded by the callsites' cap on groups. In families of their
/// own, so that summing a span's series never counts a span twice.
fn group_rows(profiler: &Profiler) -> Vec<(String, Series)> {
    let Some(groups) = &profiler.shards.groups else {
        return Vec::new();
    };
    let mut series: FxHashMap<String, Series> = FxHashMap::default();
    profiler.shards.for_each_group(|key, acc| {
        let group = groups.describe(key).map_or_else(
            || "other".to_owned(),
            |fields| {
                fields
                    .iter()
                    .map(|(f, v)| format!("{f}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            },
        );
        let labels = format!(
            "span=\"{}\",target=\"{}\",group=\"{}\"",
            label(acc.meta.name()),
            label(acc.meta.target()),
            label(&group)
        );
        let s = series.entry(labels).or_default();
        s.calls += acc.calls;
        acc.busy
            .add_cumulative(&acc.layout, &BOUNDS_NS, &mut s.busy.cumulative);
        s.busy.sum_ns = s.busy.sum_ns.saturating_add(acc.busy.sum);
    });
    let mut rows: Vec<_> = series.into_iter().collect();
    rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    rows
}

/// A label value as the format wants it: `\`, `"` and newlines escaped.
fn label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Seconds from nanoseconds, printed as the shortest decimal that reads
/// back the same (`0.000001024`).
fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

fn histogram_family(
    out: &mut String,
    name: &str,
    help: &str,
    rows: &[(String, Series)],
    pick: impl Fn(&Series) -> &Buckets,
) {
    header(out, name, "histogram", help);
    let les = bound_labels();
    for (labels, s) in rows {
        let b = pick(s);
        for (le, count) in les.iter().zip(&b.cumulative) {
            out.push_str(name);
            out.push_str("_bucket{");
            out.push_str(labels);
            out.push_str(le);
            let _ = writeln!(out, "{count}");
        }
        let total = b.cumulative[BOUNDS_NS.len()];
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {total}");
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", seconds(b.sum_ns));
        let _ = writeln!(out, "{name}_count{{{labels}}} {total}");
    }
}

/// `,le="0.000001024"} ` for each bound: written once, copied per line.
fn bound_labels() -> &'static [String; BOUNDS_NS.len()] {
    static LABELS: std::sync::OnceLock<[String; BOUNDS_NS.len()]> = std::sync::OnceLock::new();
    LABELS.get_or_init(|| BOUNDS_NS.map(|ns| format!(",le=\"{}\"}} ", seconds(ns))))
}

fn family(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    rows: &[(String, Series)],
    value: impl Fn(&Series) -> Option<f64>,
) {
    header(out, name, kind, help);
    for (labels, s) in rows {
        if let Some(v) = value(s) {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
}

/// One unlabelled sample with its header.
fn single(out: &mut String, name: &str, kind: &str, help: &str, value: f64) {
    header(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// The process and the layer: RSS, CPU, threads, memory pressure, and the
/// layer's estimate of its own cost.
fn process(out: &mut String, p: &Profiler, spans: u64) {
    if let Some(rss) = p.rss_now() {
        single(
            out,
            "perf_layer_process_resident_memory_bytes",
            "gauge",
            "Resident memory of the process at the sampler's latest reading.",
            rss as f64,
        );
    }
    if let Some(cpu) = crate::background::procfs::process_cpu_ns() {
        single(
            out,
            "perf_layer_process_cpu_seconds_total",
            "counter",
            "CPU time the process used on every core, user and system.",
            seconds(cpu),
        );
    }
    let threads = p.timeline.lock().latest().map(|s| s.threads);
    if let Some(threads) = threads {
        single(
            out,
            "perf_layer_process_threads",
            "gauge",
            "Threads of the process at the timeline's latest sample.",
            f64::from(threads),
        );
    }
    if let Some(pressure) = &p.pressure {
        let m = pressure.lock().to_dump();
        single(
            out,
            "perf_layer_memory_limit_bytes",
            "gauge",
            "The memory limit pressure levels are fractions of (the cgroup's, else physical memory).",
            m.limit_bytes as f64,
        );
        single(
            out,
            "perf_layer_memory_pressure_level",
            "gauge",
            "Memory pressure level: 0 normal, 1 warning, 2 emergency, 3 critical.",
            f64::from(m.level as u8),
        );
    }
    single(
        out,
        "perf_layer_spans_total",
        "counter",
        "Spans the layer recorded.",
        spans as f64,
    );
    if let Some(calibration) = p.calibration.get() {
        // Counted as the dump counts them, open spans' polls too.
        let counts = crate::background::overhead::Counts::of(p, spans);
        single(
            out,
            "perf_layer_overhead_seconds_total",
            "counter",
            "The layer's estimate of the time it added: its callbacks' time as a sample of them was timed (or its calibrated cost per span, poll and timed interval), plus its cost per allocation counted and its background thread's CPU time.",
            calibration.estimate_ns(&counts) / 1e9,
        );
    }
}
