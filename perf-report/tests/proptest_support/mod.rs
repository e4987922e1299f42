//! Strategies shared by the property tests: structurally arbitrary dumps
//! (built as JSON, so they go through the same schema a file does), hostile
//! names, byte-level and JSON-level mutations of real dumps, and the whole
//! report pipeline in one call.
#![allow(dead_code, unreachable_pub)] // each test binary uses a part

use hdrhistogram::Histogram;
use perf_layer::dump::HistogramDump;
use perf_report::LoadedDump;
use perf_report::diff::{DiffOptions, diff};
use perf_report::load::{LoadOptions, load_slice};
use perf_report::merge::merge;
use perf_report::render::{Format, RenderOptions, ReportKind, render, render_diff};
use perf_report::{Config, Report};
use proptest::prelude::*;
use serde_json::{Value, json};

/// `default` cases per property, or `PROPTEST_CASES` when set (for long
/// runs: `PROPTEST_CASES=5000 cargo test --release -p perf-report --test
/// proptest_pipeline`).
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Real dumps written by perf-layer (the fuzzing seeds).
pub const SEEDS: [&str; 4] = [
    include_str!("../../../fuzz/seeds/load_analyze/empty.json"),
    include_str!("../../../fuzz/seeds/load_analyze/requests.json"),
    include_str!("../../../fuzz/seeds/load_analyze/caps.json"),
    include_str!("../../../fuzz/seeds/load_analyze/threads_alloc.json"),
];

pub const FORMATS: [Format; 4] = [Format::Text, Format::Markdown, Format::Json, Format::Html];
pub const KINDS: [ReportKind; 3] = [ReportKind::Full, ReportKind::Summary, ReportKind::Weight];

/// Everything a user can do with a loaded dump: analyze, plan, render every
/// format and kind (all rows, and with colour), diff against itself, merge
/// with itself. Returns the rendered reports.
pub fn pipeline(dump: &LoadedDump) -> Vec<String> {
    let report = Report::build(dump, &Config::default());
    let mut out = Vec::new();
    let all = RenderOptions::default().with_top(0);
    let coloured = RenderOptions::default().with_color(true);
    for format in FORMATS {
        for kind in KINDS {
            out.push(render(&report, format, kind, &all));
        }
        out.push(render(&report, format, ReportKind::Full, &coloured));
    }
    let d = diff(dump, dump, &DiffOptions::default());
    for format in FORMATS {
        out.push(render_diff(&d, format, &all));
    }
    if let Ok(merged) = merge(vec![dump.dump().clone(), dump.dump().clone()]) {
        let _ = Report::build(&merged.into(), &Config::default());
    }
    out
}

/// Loads `bytes` and, if they load, runs the whole pipeline.
pub fn load_and_run(bytes: &[u8]) -> Option<Vec<String>> {
    let dump = load_slice(bytes, "prop.json", &LoadOptions::default()).ok()?;
    Some(pipeline(&dump))
}

/// Text from a dump that tries to break a renderer: table separators,
/// Markdown and HTML markup, escapes, line breaks, any Unicode.
pub fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_:]{1,12}",
        any::<String>(),
        "[|`*_<>#\\\\\\[\\]()!&~\n\r\t\u{1b} a-z]{0,16}",
        Just("<script>alert(1)</script>".to_owned()),
        Just("a | b | c".to_owned()),
        Just("\u{1b}[31mred\u{1b}[0m".to_owned()),
        Just(String::new()),
        "[a-z]{200,400}",
    ]
}

/// Mostly small numbers, sometimes the extremes.
pub fn count() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0..2_000u64,
        1 => any::<u64>(),
        1 => Just(u64::MAX),
        1 => Just(0u64),
    ]
}

pub fn signed() -> impl Strategy<Value = i64> {
    prop_oneof![
        -5_000..5_000i64,
        any::<i64>(),
        Just(i64::MIN),
        Just(i64::MAX)
    ]
}

/// A finite float (JSON has no NaN or infinity).
pub fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        0.0..200.0f64,
        prop::num::f64::NORMAL | prop::num::f64::ZERO | prop::num::f64::SUBNORMAL,
        Just(f64::MAX),
        Just(-1.0),
    ]
}

/// A stored histogram of `values` (a real encoding), with its summary
/// either faithful or, with `lie`, replaced by arbitrary figures.
pub fn histogram_json(values: &[u64], sigfig: u8, max: u64, lie: Option<[u64; 5]>) -> Value {
    let mut h = Histogram::<u64>::new_with_bounds(1, max, sigfig).expect("valid bounds");
    let (mut sum, mut clamped) = (0u64, 0u64);
    for &v in values {
        sum = sum.saturating_add(v);
        clamped += u64::from(v > h.high());
        h.saturating_record(v);
    }
    let mut value = serde_json::to_value(HistogramDump::from_histogram(&h, sum, clamped)).unwrap();
    if let Some([count, sum, max, p99, clamped]) = lie {
        value["count"] = count.into();
        value["sum"] = sum.into();
        value["max"] = max.into();
        value["p99"] = p99.into();
        value["clamped"] = clamped.into();
    }
    value
}

fn values() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(prop_oneof![1..100_000u64, any::<u64>()], 0..12)
}

fn histogram(sigfig: u8, max: u64) -> impl Strategy<Value = Value> {
    (
        values(),
        prop::option::weighted(0.2, prop::array::uniform5(count())),
    )
        .prop_map(move |(v, lie)| histogram_json(&v, sigfig, max, lie))
}

fn alloc() -> impl Strategy<Value = Value> {
    (prop::array::uniform7(count()), signed()).prop_map(|(c, net)| {
        json!({
            "alloc_bytes": c[0], "allocs": c[1], "freed_bytes": c[2], "frees": c[3],
            "self_alloc_bytes": c[4], "self_allocs": c[5], "net_bytes": net,
            "calls_retaining": c[6],
        })
    })
}

/// A callsite, split into up to three groups (`group_by`) of arbitrary
/// fields, values and figures, some of them `other`.
fn callsite(ids: u32, sigfig: u8, max: u64) -> impl Strategy<Value = Value> {
    (
        plain_callsite(ids, sigfig, max),
        prop::collection::vec(
            (
                hostile_string(),
                hostile_string(),
                any::<bool>(),
                plain_callsite(ids, sigfig, max),
            ),
            0..3,
        ),
    )
        .prop_map(|(mut cs, groups)| {
            cs["groups"] = groups
                .into_iter()
                .map(|(field, value, other, stats)| {
                    json!({"fields": [{"field": field, "value": value}], "other": other, "stats": stats})
                })
                .collect();
            cs
        })
}

fn plain_callsite(ids: u32, sigfig: u8, max: u64) -> impl Strategy<Value = Value> {
    (
        (
            0..ids.max(1),
            hostile_string(),
            hostile_string(),
            prop::option::of(hostile_string()),
            prop::option::of(hostile_string()),
            prop::option::of(any::<u32>()),
            prop_oneof![
                Just("TRACE"),
                Just("DEBUG"),
                Just("INFO"),
                Just("WARN"),
                Just("ERROR"),
                Just("LOUD")
            ],
            count(),
        ),
        prop::collection::vec(histogram(sigfig, max), 4),
        prop::array::uniform5(count()),
        prop::option::of(alloc()),
        prop::option::of((signed(), signed(), signed())),
        prop::option::of(cpu(sigfig, max)),
        prop::option::of((count(), count())),
    )
        .prop_map(
            |((id, name, target, module, file, line, level, calls), h, ev, alloc, rss, cpu, active)| {
                json!({
                    "cpu": cpu,
                    "active": active.map(|(a, b)| json!({"first_open_ns": a, "last_close_ns": b})),
                    "id": id, "name": name, "target": target, "module_path": module,
                    "file": file, "line": line, "level": level, "calls": calls,
                    "wall_ns": h[0], "busy_ns": h[1], "idle_ns": h[2], "self_ns": h[3],
                    "events": {"trace": ev[0], "debug": ev[1], "info": ev[2], "warn": ev[3], "error": ev[4]},
                    "alloc": alloc,
                    "rss_delta": rss.map(|(s, mx, mn)| json!({"sum_bytes": s, "max_bytes": mx, "min_bytes": mn})),
                })
            },
        )
}

/// On/off-CPU figures of timed spans, any of them absurd or at odds.
fn cpu(sigfig: u8, max: u64) -> impl Strategy<Value = Value> {
    (
        prop::array::uniform8(count()),
        prop::collection::vec(histogram(sigfig, max), 2),
        prop::option::of(count()),
        prop::option::of((prop::array::uniform6(count()), prop::option::of(count()))),
    )
        .prop_map(|(c, h, self_preempted, sampled)| {
            json!({
                "timed_calls": c[0], "intervals": c[1], "untimed_intervals": c[2],
                "busy_ns": c[3], "self_ns": c[4], "on_cpu_ns": h[0], "self_on_cpu_ns": c[5],
                "off_cpu_ns": c[6], "preempted_ns": h[1], "self_preempted_ns": self_preempted,
                "voluntary_switches": c[7], "involuntary_switches": c[0] / 2,
                "sampled": sampled.map(|(s, sp)| json!({
                    "intervals": s[0], "busy_ns": s[1], "self_ns": s[2], "on_cpu_ns": s[3],
                    "self_on_cpu_ns": s[4], "preempted_ns": s[5], "self_preempted_ns": sp,
                })),
            })
        })
}

fn sample() -> impl Strategy<Value = Value> {
    (count(), count(), count(), float(), any::<u32>()).prop_map(|(t, rss, virt, cpu, threads)| {
        json!({"t_ms": t, "rss_bytes": rss, "virtual_bytes": virt, "cpu_percent": cpu, "threads": threads})
    })
}

fn alert() -> impl Strategy<Value = Value> {
    (
        count(),
        prop_oneof![Just("rss"), Just("cpu")],
        float(),
        float(),
        hostile_string(),
    )
        .prop_map(|(t, kind, value, threshold, message)| {
            json!({"t_ms": t, "kind": kind, "value": value, "threshold": threshold, "message": message})
        })
}

/// A structurally valid dump with arbitrary content: ids that collide or
/// dangle, counts that overflow when summed, summaries that disagree with
/// their histograms, hostile names, groups and group edges that point
/// anywhere.
pub fn arbitrary_dump_json() -> impl Strategy<Value = Value> {
    (
        1u8..=3,
        prop_oneof![Just(3_600_000_000_000u64), 1_000..10_000_000u64],
    )
        .prop_flat_map(|(sigfig, max)| {
            (
                prop::collection::vec(callsite(6, sigfig, max), 0..6),
                (
                    prop::collection::vec((0..8u32, 0..8u32, count(), count()), 0..8),
                    prop::collection::vec(
                        (
                            0..8u32,
                            prop::option::of(0..4u32),
                            0..8u32,
                            prop::option::of(0..4u32),
                            count(),
                            count(),
                        ),
                        0..8,
                    ),
                ),
                prop::collection::vec(sample(), 0..6),
                prop::collection::vec(alert(), 0..3),
                (count(), count(), count(), any::<bool>()),
                (hostile_string(), count(), count(), count()),
                (float(), count(), count(), float()),
                Just((sigfig, max)),
            )
        })
        .prop_map(
            |(
                callsites,
                (edges, group_edges),
                samples,
                alerts,
                dropped,
                run,
                overhead,
                (sigfig, max),
            )| {
                let edges: Vec<Value> = edges
                    .into_iter()
                    .map(|(p, c, calls, busy)| {
                        json!({"parent": p, "child": c, "calls": calls, "child_busy_ns": busy})
                    })
                    .collect();
                let group_edges: Vec<Value> = group_edges
                    .into_iter()
                    .map(|(p, pg, c, cg, calls, busy)| {
                        json!({"parent": p, "parent_group": pg, "child": c, "child_group": cg,
                               "calls": calls, "child_busy_ns": busy})
                    })
                    .collect();
                json!({
                    "format_version": 2,
                    "producer": {"name": "perf-layer", "version": "0.1.0"},
                    "run": {
                        "program": run.0, "pid": 1, "host": "h",
                        "started_at_unix_ms": run.1, "ended_at_unix_ms": run.2,
                        "duration_ns": run.3,
                    },
                    "config": {
                        "histogram_sigfig": sigfig, "histogram_max_ns": max,
                        "sampler_interval_ms": 100, "rss_alert_bytes": null,
                        "cpu_alert_percent": null, "max_callsites": 4096,
                        "max_edges": 16384, "timeline_capacity": 2048,
                    },
                    "allocations_tracked": dropped.3,
                    "callsites": callsites,
                    "callsites_dropped_spans": dropped.0,
                    "edges": edges,
                    "edges_dropped": dropped.1,
                    "group_edges": group_edges,
                    "timeline": {"interval_ms": 100, "samples": samples},
                    "alerts": alerts,
                    "alerts_dropped": dropped.2,
                    "overhead": {
                        "per_span_ns": overhead.0, "spans": overhead.1,
                        "estimated_ns": overhead.2, "fraction_of_run": overhead.3,
                    },
                })
            },
        )
}

/// One byte-level edit of a serialized dump.
#[derive(Debug, Clone)]
pub enum ByteEdit {
    Flip { at: usize, bit: u8 },
    Set { at: usize, byte: u8 },
    Delete { at: usize, len: usize },
    Insert { at: usize, bytes: Vec<u8> },
    Duplicate { at: usize, len: usize, to: usize },
    Truncate { at: usize },
}

pub fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    let interesting = prop_oneof![
        any::<u8>(),
        Just(b'"'),
        Just(b'{'),
        Just(b'}'),
        Just(b'['),
        Just(b','),
        Just(b'9'),
        Just(b'-'),
        Just(b'\\'),
    ];
    prop_oneof![
        (any::<usize>(), 0..8u8).prop_map(|(at, bit)| ByteEdit::Flip { at, bit }),
        (any::<usize>(), interesting).prop_map(|(at, byte)| ByteEdit::Set { at, byte }),
        (any::<usize>(), 1..64usize).prop_map(|(at, len)| ByteEdit::Delete { at, len }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| ByteEdit::Insert { at, bytes }),
        (any::<usize>(), 1..256usize, any::<usize>())
            .prop_map(|(at, len, to)| ByteEdit::Duplicate { at, len, to }),
        any::<usize>().prop_map(|at| ByteEdit::Truncate { at }),
    ]
}

pub fn apply_bytes(bytes: &mut Vec<u8>, edit: &ByteEdit) {
    if bytes.is_empty() {
        return;
    }
    let n = bytes.len();
    match edit {
        ByteEdit::Flip { at, bit } => bytes[at % n] ^= 1 << bit,
        ByteEdit::Set { at, byte } => bytes[at % n] = *byte,
        ByteEdit::Delete { at, len } => {
            let start = at % n;
            bytes.drain(start..(start + len).min(n));
        }
        ByteEdit::Insert { at, bytes: new } => {
            let at = at % n;
            bytes.splice(at..at, new.iter().copied());
        }
        ByteEdit::Duplicate { at, len, to } => {
            let start = at % n;
            let chunk = bytes[start..(start + len).min(n)].to_vec();
            let to = to % n;
            bytes.splice(to..to, chunk);
        }
        ByteEdit::Truncate { at } => bytes.truncate(at % n),
    }
}

/// One JSON-level edit: the result still parses, so it reaches the schema
/// check and, often, the analysis.
#[derive(Debug, Clone)]
pub enum JsonEdit {
    /// Replace the `n`th leaf (numbers, strings, booleans, nulls).
    Leaf { n: usize, with: Value },
    /// Remove the `n`th object key.
    RemoveKey { n: usize },
    /// Repeat an element of the `n`th array (duplicate callsites or ids).
    DuplicateElement { n: usize, index: usize },
}

pub fn json_edit() -> impl Strategy<Value = JsonEdit> {
    let replacement = prop_oneof![
        Just(json!(0)),
        Just(json!(1)),
        Just(json!(-1)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(u32::MAX)),
        Just(json!(1e300)),
        Just(json!(-1e300)),
        Just(json!(0.5)),
        Just(json!(null)),
        Just(json!(true)),
        Just(json!([])),
        Just(json!({})),
        Just(json!("")),
        Just(json!("HIST")),
        Just(json!("HISTFAAAAA==")),
        hostile_string().prop_map(Value::String),
        any::<u64>().prop_map(|v| json!(v)),
    ];
    prop_oneof![
        4 => (any::<usize>(), replacement).prop_map(|(n, with)| JsonEdit::Leaf { n, with }),
        1 => any::<usize>().prop_map(|n| JsonEdit::RemoveKey { n }),
        1 => (any::<usize>(), any::<usize>())
            .prop_map(|(n, index)| JsonEdit::DuplicateElement { n, index }),
    ]
}

/// Visits every node depth first, `f` returning whether to stop.
fn for_each_mut(value: &mut Value, f: &mut dyn FnMut(&mut Value) -> bool) -> bool {
    if f(value) {
        return true;
    }
    match value {
        Value::Array(items) => items.iter_mut().any(|v| for_each_mut(v, f)),
        Value::Object(map) => map.values_mut().any(|v| for_each_mut(v, f)),
        _ => false,
    }
}

fn count_nodes(value: &mut Value, pick: fn(&Value) -> bool) -> usize {
    let mut n = 0;
    for_each_mut(value, &mut |v| {
        n += usize::from(pick(v));
        false
    });
    n
}

fn is_leaf(v: &Value) -> bool {
    !(v.is_array() || v.is_object())
}

fn is_nonempty_object(v: &Value) -> bool {
    v.as_object().is_some_and(|m| !m.is_empty())
}

fn is_nonempty_array(v: &Value) -> bool {
    v.as_array().is_some_and(|a| !a.is_empty())
}

pub fn apply_json(value: &mut Value, edit: &JsonEdit) {
    let (pick, n): (fn(&Value) -> bool, usize) = match edit {
        JsonEdit::Leaf { n, .. } => (is_leaf, *n),
        JsonEdit::RemoveKey { n } => (is_nonempty_object, *n),
        JsonEdit::DuplicateElement { n, .. } => (is_nonempty_array, *n),
    };
    let total = count_nodes(value, pick);
    if total == 0 {
        return;
    }
    let mut target = n % total;
    for_each_mut(value, &mut |v| {
        if !pick(v) {
            return false;
        }
        if target > 0 {
            target -= 1;
            return false;
        }
        match (edit, v) {
            (JsonEdit::Leaf { with, .. }, v) => *v = with.clone(),
            (JsonEdit::RemoveKey { n }, Value::Object(map)) => {
                let key = map.keys().nth(n % map.len()).cloned();
                if let Some(key) = key {
                    map.remove(&key);
                }
            }
            (JsonEdit::DuplicateElement { index, .. }, Value::Array(items)) => {
                let item = items[index % items.len()].clone();
                items.push(item);
            }
            _ => {}
        }
        true
    });
}
