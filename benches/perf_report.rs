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

#[path = "support/large_dump.rs"]
mod large_dump;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::serialization::{Serializer as _, V2DeflateSerializer};
use perf_layer::dump::Dump;
use perf_report::load::{LoadOptions, load_slice};
use perf_report::render::{Format, RenderOptions, ReportKind, render};
use perf_report::{Config, LoadedDump, Report};
use serde_json::Value;

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
const TIMELINE_SAMPLES: u64 = large_dump::TIMELINE_SAMPLES;

fn large_dump() -> Value {
    large_dump::large_dump(CALLSITES)
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
