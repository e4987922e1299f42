//! The large synthetic dump the perf-report and history benches share:
//! callsites with full histograms, call edges and a timeline, built from
//! `perf_layer::dump` types, the same every run.
#![allow(dead_code)]

use hdrhistogram::Histogram;
use perf_layer::dump::{
    AllocStats, CallEdge, DumpConfig, EventCounts, FORMAT_VERSION, HistogramDump, Overhead,
    ProcessSample, Producer, RssDelta, RunInfo, Timeline,
};
use serde_json::{Value, json};

/// Timeline samples of the large dump.
pub const TIMELINE_SAMPLES: u64 = 1_000;
const SIGFIG: u8 = 2;
const MAX_NS: u64 = 3_600_000_000_000;

/// A small deterministic generator, so every run benches the same dump.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn histogram(rng: &mut Rng, values: u32, scale_ns: u64) -> HistogramDump {
    let mut hist = Histogram::<u64>::new_with_bounds(1, MAX_NS, SIGFIG).expect("valid bounds");
    let mut sum = 0u64;
    for _ in 0..values {
        // Log-uniform over three decades above `scale_ns`: wide, like real spans.
        let v = scale_ns << (rng.next() % 10);
        let v = v + rng.next() % v.max(1);
        hist.saturating_record(v);
        sum += v;
    }
    HistogramDump::from_histogram(&hist, sum, 0)
}

/// The large dump of `callsites_n` callsites: a tree of callsites (each the child of callsite
/// `(i - 1) / 8`), every one with full histograms and allocation figures.
/// Built as JSON because `Dump` and `CallsiteStats` are `#[non_exhaustive]`;
/// the parts that are not are built from their types.
pub fn large_dump(callsites_n: u32) -> Value {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let callsites: Vec<Value> = (0..callsites_n)
        .map(|id| {
            let calls = 50 + rng.next() % 200;
            let scale = 1_000 + rng.next() % 100_000;
            let wall = histogram(&mut rng, calls as u32, scale * 2);
            let busy = histogram(&mut rng, calls as u32, scale);
            let idle = histogram(&mut rng, calls as u32, scale);
            let self_time = histogram(&mut rng, calls as u32, scale / 2 + 1);
            let alloc_bytes = rng.next() % (1 << 24);
            let freed_bytes = alloc_bytes - alloc_bytes / (1 + rng.next() % 8);
            json!({
                "id": id,
                "name": format!("callsite_{id}"),
                "target": format!("app::module_{}", id % 97),
                "module_path": format!("app::module_{}", id % 97),
                "file": format!("src/module_{}.rs", id % 97),
                "line": 10 + id % 900,
                "level": "INFO",
                "calls": calls,
                "wall_ns": wall,
                "busy_ns": busy,
                "idle_ns": idle,
                "self_ns": self_time,
                "events": EventCounts {
                    info: rng.next() % 10,
                    warn: rng.next() % 2,
                    ..EventCounts::default()
                },
                "alloc": AllocStats {
                    alloc_bytes,
                    allocs: calls * (1 + rng.next() % 20),
                    freed_bytes,
                    frees: calls,
                    self_alloc_bytes: alloc_bytes / 2,
                    self_allocs: calls,
                    net_bytes: (alloc_bytes - freed_bytes) as i64,
                    calls_retaining: rng.next() % calls,
                },
                "rss_delta": RssDelta {
                    sum_bytes: (rng.next() % (1 << 20)) as i64,
                    max_bytes: 1 << 16,
                    min_bytes: -(1 << 12),
                },
            })
        })
        .collect();
    let edges: Vec<CallEdge> = (1..callsites_n)
        .map(|child| CallEdge {
            parent: (child - 1) / 8,
            child,
            calls: callsites[child as usize]["calls"].as_u64().unwrap_or(0),
            child_busy_ns: callsites[child as usize]["busy_ns"]["sum"]
                .as_u64()
                .unwrap_or(0),
            outlived: 0,
        })
        .collect();
    let samples = (0..TIMELINE_SAMPLES)
        .map(|i| ProcessSample {
            t_ms: i * 100,
            rss_bytes: (200 << 20) + (rng.next() % (64 << 20)),
            virtual_bytes: 2 << 30,
            cpu_percent: (rng.next() % 20_000) as f64 / 100.0,
            threads: 8 + (rng.next() % 4) as u32,
            ..ProcessSample::default()
        })
        .collect();
    let duration_ns = TIMELINE_SAMPLES * 100 * 1_000_000;
    json!({
        "format_version": FORMAT_VERSION,
        "producer": Producer {
            name: "perf-layer".to_owned(),
            version: "0.1.0".to_owned(),
        },
        "run": RunInfo {
            program: "large-synthetic".to_owned(),
            pid: 1,
            host: "bench".to_owned(),
            started_at_unix_ms: 1_700_000_000_000,
            ended_at_unix_ms: 1_700_000_000_000 + duration_ns / 1_000_000,
            duration_ns,
            cpu_ns: Some(duration_ns),
            cores: Some(8),
            span_threads: Some(8),
            span_threads_active_ns: None,
            cpu_model: Some("bench CPU".to_owned()),
        },
        "config": DumpConfig {
            histogram_sigfig: SIGFIG,
            histogram_max_ns: MAX_NS,
            sampler_interval_ms: Some(100),
            rss_alert_bytes: None,
            cpu_alert_percent: None,
            max_callsites: callsites_n as usize,
            max_edges: callsites_n as usize * 2,
            timeline_capacity: TIMELINE_SAMPLES as usize,
            heap_timeline_points: 64,
            cpu_time_threshold_ns: Some(100_000),
            cpu_time_source: None,
            group_by: Vec::new(),
            max_groups: 0,
        },
        "allocations_tracked": true,
        "callsites": callsites,
        "callsites_dropped_spans": 0,
        "edges": edges,
        "edges_dropped": 0,
        "timeline": Timeline {
            interval_ms: 100,
            samples,
        },
        "alerts": [],
        "alerts_dropped": 0,
        "overhead": Overhead::default(),
    })
}
