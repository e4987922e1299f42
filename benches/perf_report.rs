//! perf-report on a large dump: 10,000 callsites (four histograms each),
//! 10,000 call edges and a 1,000-sample timeline, built here from
//! `perf_layer::dump` types. Times loading (parse, validate, decode),
//! analysis and plan (`Report::build`), text rendering, and the three
//! together, and the three on the same dump with its histograms compressed
//! as perf-layer 0.1.0 wrote them (V2 + DEFLATE); then measures the peak
//! heap of one load + analyze + render above what the input itself holds,
//! written to `<criterion home>/perf_report.memory/memory.json` for
//! `scripts/bench-report`.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer as _, V2DeflateSerializer};
use perf_layer::dump::{
    AllocStats, CallEdge, Dump, DumpConfig, EventCounts, FORMAT_VERSION, HistogramDump, Overhead,
    ProcessSample, Producer, RssDelta, RunInfo, Timeline,
};
use perf_report::load::{LoadOptions, load_slice};
use perf_report::render::{Format, RenderOptions, ReportKind, render};
use perf_report::{Config, LoadedDump, Report};
use serde_json::{Value, json};

/// The system allocator, keeping the current and the peak heap in use.
struct PeakAllocator;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = IN_USE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: forwards every call unchanged to `System`; the bookkeeping is two
// atomics, which neither allocate nor unwind.
unsafe impl GlobalAlloc for PeakAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc_zeroed`'s contract.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) };
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller upholds `realloc`'s contract.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        new
    }
}

#[global_allocator]
static ALLOC: PeakAllocator = PeakAllocator;

const CALLSITES: u32 = 10_000;
const TIMELINE_SAMPLES: u64 = 1_000;
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

/// The large dump: a tree of callsites (each the child of callsite
/// `(i - 1) / 8`), every one with full histograms and allocation figures.
/// Built as JSON because `Dump` and `CallsiteStats` are `#[non_exhaustive]`;
/// the parts that are not are built from their types.
fn large_dump() -> Value {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let callsites: Vec<Value> = (0..CALLSITES)
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
    let edges: Vec<CallEdge> = (1..CALLSITES)
        .map(|child| CallEdge {
            parent: (child - 1) / 8,
            child,
            calls: callsites[child as usize]["calls"].as_u64().unwrap_or(0),
            child_busy_ns: callsites[child as usize]["busy_ns"]["sum"]
                .as_u64()
                .unwrap_or(0),
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
        },
        "config": DumpConfig {
            histogram_sigfig: SIGFIG,
            histogram_max_ns: MAX_NS,
            sampler_interval_ms: Some(100),
            rss_alert_bytes: None,
            cpu_alert_percent: None,
            max_callsites: CALLSITES as usize,
            max_edges: CALLSITES as usize * 2,
            timeline_capacity: TIMELINE_SAMPLES as usize,
            heap_timeline_points: 64,
            cpu_time_threshold_ns: Some(100_000),
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

/// `dump` with every histogram re-encoded as perf-layer 0.1.0 wrote it:
/// V2 + DEFLATE rather than plain V2.
fn deflated(dump: &Dump) -> Value {
    let mut dump = dump.clone();
    for cs in &mut dump.callsites {
        for h in [
            &mut cs.wall_ns,
            &mut cs.busy_ns,
            &mut cs.idle_ns,
            &mut cs.self_ns,
        ] {
            let hist = h.decode().expect("the synthetic histograms decode");
            let mut bytes = Vec::new();
            V2DeflateSerializer::new()
                .serialize(&hist, &mut bytes)
                .expect("a histogram compresses");
            h.encoded = BASE64.encode(&bytes);
        }
    }
    serde_json::to_value(&dump).expect("a dump serializes")
}

fn load(bytes: &[u8]) -> LoadedDump {
    load_slice(bytes, "large.json", &LoadOptions::default()).expect("the synthetic dump loads")
}

fn full_text(report: &Report) -> String {
    render(
        report,
        Format::Text,
        ReportKind::Full,
        &RenderOptions::default(),
    )
}

fn pipeline(bytes: &[u8]) -> usize {
    let dump = load(bytes);
    let report = Report::build(&dump, &Config::default());
    full_text(&report).len()
}

/// Peak heap of one load + analyze + render, above the input bytes already
/// in memory.
fn memory_check(bytes: &[u8], write: bool) {
    let before = IN_USE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    black_box(pipeline(bytes));
    let peak_above_input = PEAK.load(Ordering::Relaxed).saturating_sub(before);
    let report = serde_json::json!({
        "input_bytes": bytes.len(),
        "peak_heap_bytes": peak_above_input,
    });
    println!(
        "perf_report.memory: input {:.1} MB, peak heap of load + analyze + render {:.1} MB",
        bytes.len() as f64 / 1e6,
        peak_above_input as f64 / 1e6
    );
    if write {
        support::write_result("perf_report.memory", "memory.json", &report);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let listing = args.iter().any(|a| a == "--list");
    let quick = args.iter().any(|a| a == "--test");
    let bytes = serde_json::to_vec(&large_dump()).expect("a dump serializes");
    // `--write-dump PATH`: the large dump as a file, for timing whole
    // commands on it (then nothing is measured).
    if let Some(at) = args.iter().position(|a| a == "--write-dump") {
        let path = args.get(at + 1).expect("--write-dump takes a path");
        std::fs::write(path, &bytes).expect("the dump is written");
        return;
    }
    let dump = load(&bytes);
    assert_eq!(dump.callsites.len(), CALLSITES as usize);
    assert_eq!(dump.timeline.samples.len(), TIMELINE_SAMPLES as usize);
    let report = Report::build(&dump, &Config::default());
    let old_bytes = serde_json::to_vec(&deflated(&dump)).expect("a dump serializes");
    println!(
        "perf_report.large_dump: {:.1} MB; {:.1} MB with 0.1.0's V2 + DEFLATE histograms",
        bytes.len() as f64 / 1e6,
        old_bytes.len() as f64 / 1e6
    );

    let mut criterion = support::criterion().sample_size(10);
    {
        let mut group = criterion.benchmark_group("perf_report.large_dump");
        group.bench_function("load", |b| b.iter(|| load(black_box(&bytes))));
        group.bench_function("analyze", |b| {
            b.iter(|| Report::build(black_box(&dump), &Config::default()))
        });
        group.bench_function("render_text_full", |b| {
            b.iter(|| full_text(black_box(&report)))
        });
        group.bench_function("load_analyze_render", |b| {
            b.iter(|| pipeline(black_box(&bytes)))
        });
        group.bench_function("load_analyze_render_deflated", |b| {
            b.iter(|| pipeline(black_box(&old_bytes)))
        });
        group.finish();
    }
    criterion.final_summary();
    drop((dump, report, old_bytes));
    if !listing {
        memory_check(&bytes, !quick);
    }
}
