//! Memory bounded by construction: every structure the layer grows has a
//! documented maximum, and each one is tested here through the public API.
//!
//! | structure | bound | overflow shows as |
//! |---|---|---|
//! | each histogram | `histogram_max` (and `histogram_sigfig`) | `clamped` |
//! | callsites | `max_callsites` | `callsites_dropped_spans` |
//! | call edges | `max_edges` | `edges_dropped` |
//! | timeline | `timeline_capacity` samples | thinning: `interval_ms` doubles |
//! | alerts | `max_alerts` (the newest kept) | `alerts_dropped` |
//! | per-thread span stack | 256 entered spans | deeper spans still count, busy time unmeasured |

mod reliability_support;

use std::thread;
use std::time::{Duration, Instant};

use perf_layer::dump::Dump;
use perf_layer::{PerfHandle, PerfLayer, PerfLayerBuilder};
use reliability_support::{calls, callsite, within};
use tracing::{Dispatch, info_span};
use tracing_subscriber::prelude::*;

fn quiet() -> PerfLayerBuilder {
    PerfLayer::builder()
        .without_sampler()
        .without_overhead_calibration()
}

fn dispatch_of(builder: PerfLayerBuilder) -> (Dispatch, PerfHandle) {
    let (layer, handle) = builder.build().expect("valid configuration");
    (
        Dispatch::new(tracing_subscriber::registry().with(layer)),
        handle,
    )
}

/// Polls `handle` until `done` holds for a snapshot, at most `limit`.
fn wait_for(handle: &PerfHandle, limit: Duration, done: impl Fn(&Dump) -> bool) -> Dump {
    let start = Instant::now();
    loop {
        let dump = handle.snapshot();
        if done(&dump) || start.elapsed() > limit {
            return dump;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn durations_above_the_histogram_maximum_are_clamped_and_counted() {
    let (clock, mock) = quanta::Clock::mock();
    let max_ns = 10_000;
    let (dispatch, handle) = dispatch_of(
        quiet()
            .clock(clock)
            .histogram_max(Duration::from_nanos(max_ns)),
    );
    let walls = [5_000, 50_000, 1_000_000_000];
    tracing::dispatcher::with_default(&dispatch, || {
        for wall in walls {
            info_span!("slow").in_scope(|| mock.increment(wall));
        }
    });
    let dump = handle.snapshot();
    let wall = &callsite(&dump, "slow").wall_ns;
    assert_eq!(wall.count, 3);
    assert_eq!(wall.clamped, 2, "two values above {max_ns} ns");
    assert_eq!(wall.sum, walls.iter().sum::<u64>(), "the sum stays exact");
    let hist = wall.decode().unwrap();
    assert_eq!(hist.len(), 3);
    // The clamped values sit at the maximum, within the histogram's precision.
    assert!(
        hist.max() <= hist.highest_equivalent(max_ns),
        "{} > {max_ns}",
        hist.max()
    );
    assert_eq!(hist.count_between(max_ns, u64::MAX), 2);
    // The bound holds for the decoded size too: the histogram covers
    // [1, max], not the billion nanoseconds it was given.
    assert!(
        hist.high() <= hist.highest_equivalent(max_ns),
        "{}",
        hist.high()
    );
}

/// Spans from `$n` distinct callsites (one per name: a macro in a loop is
/// one callsite, so the names are spelled out).
macro_rules! distinct_spans {
    ($($name:literal)*) => {
        $( info_span!($name).in_scope(|| {}); )*
    };
}

#[test]
fn callsites_beyond_the_cap_are_counted_not_stored() {
    let (dispatch, handle) = dispatch_of(quiet().max_callsites(3));
    tracing::dispatcher::with_default(&dispatch, || {
        for _ in 0..4 {
            distinct_spans!("c0" "c1" "c2" "c3" "c4" "c5" "c6" "c7");
        }
    });
    let dump = handle.snapshot();
    assert_eq!(dump.callsites.len(), 3, "{:?}", dump.callsites);
    let recorded: u64 = dump.callsites.iter().map(|c| c.calls).sum();
    assert_eq!(recorded, 3 * 4);
    assert_eq!(
        dump.callsites_dropped_spans,
        5 * 4,
        "every span accounted for"
    );
}

#[test]
fn the_callsite_cap_holds_under_concurrent_first_use() {
    // Eight threads meet sixteen new callsites at once: the cap is checked
    // and taken as one step, so no race admits more than the cap.
    for _ in 0..20 {
        let (dispatch, handle) = dispatch_of(quiet().max_callsites(4));
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (dispatch, barrier) = (dispatch.clone(), barrier.clone());
                thread::spawn(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        barrier.wait();
                        distinct_spans!("d0" "d1" "d2" "d3" "d4" "d5" "d6" "d7"
                                        "d8" "d9" "da" "db" "dc" "dd" "de" "df");
                    })
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let dump = handle.snapshot();
        let recorded: u64 = dump.callsites.iter().map(|c| c.calls).sum();
        assert!(
            dump.callsites.len() <= 4,
            "{} callsites",
            dump.callsites.len()
        );
        assert_eq!(recorded + dump.callsites_dropped_spans, 8 * 16);
    }
}

#[test]
fn edges_beyond_the_cap_are_counted_not_stored() {
    let (dispatch, handle) = dispatch_of(quiet().max_edges(2));
    tracing::dispatcher::with_default(&dispatch, || {
        info_span!("parent").in_scope(|| {
            for _ in 0..3 {
                distinct_spans!("e0" "e1" "e2" "e3" "e4");
            }
        });
    });
    let dump = handle.snapshot();
    assert_eq!(dump.edges.len(), 2, "{:?}", dump.edges);
    let kept: u64 = dump.edges.iter().map(|e| e.calls).sum();
    assert_eq!(kept, 2 * 3);
    assert_eq!(
        dump.edges_dropped,
        3 * 3,
        "every edge observation accounted for"
    );
    // Callsites are still all there: only the edge table is capped.
    assert_eq!(calls(&dump, "parent"), 1);
    assert_eq!(dump.callsites.len(), 6);
}

#[test]
fn the_timeline_is_thinned_to_its_capacity() {
    let capacity = 4;
    let (_dispatch, handle) = dispatch_of(
        PerfLayer::builder()
            .sampler_interval(Duration::from_millis(2))
            .timeline_capacity(capacity)
            .without_overhead_calibration(),
    );
    // Thinned twice: at least 4 * (1 + 2) ticks have passed.
    let dump = wait_for(&handle, Duration::from_secs(10), |d| {
        d.timeline.interval_ms >= 8
    });
    let timeline = &dump.timeline;
    assert!(timeline.interval_ms >= 8, "not thinned: {timeline:?}");
    assert!(timeline.samples.len() <= capacity, "{timeline:?}");
    assert!(timeline.samples.windows(2).all(|w| w[0].t_ms < w[1].t_ms));
    assert_eq!(dump.config.timeline_capacity, capacity);
}

#[test]
fn the_alert_ring_keeps_the_newest_and_counts_the_rest() {
    // One RSS alert at once (any process is above 1 byte), then one CPU
    // alert as soon as a sample sees this thread spinning: two alerts into a
    // ring of one.
    let (_dispatch, handle) = dispatch_of(
        PerfLayer::builder()
            .sampler_interval(Duration::from_millis(10))
            .rss_alert(1)
            .cpu_alert(0.01)
            .max_alerts(1)
            .without_overhead_calibration(),
    );
    let start = Instant::now();
    let mut spin = 0u64;
    let dump = loop {
        for i in 0..100_000 {
            spin = std::hint::black_box(spin.wrapping_add(i));
        }
        let dump = handle.snapshot();
        if dump.alerts_dropped >= 1 || start.elapsed() > Duration::from_secs(10) {
            break dump;
        }
    };
    assert_eq!(dump.alerts.len(), 1, "{:?}", dump.alerts);
    assert!(dump.alerts_dropped >= 1, "{:?}", dump.alerts);
}

#[test]
fn spans_nested_deeper_than_the_stack_bound_all_count() {
    let (dispatch, handle) = dispatch_of(quiet());
    let depth = 1_000;
    tracing::dispatcher::with_default(&dispatch, || {
        let mut entered = Vec::with_capacity(depth);
        for _ in 0..depth {
            entered.push(info_span!("deep").entered());
        }
        while let Some(span) = entered.pop() {
            drop(span);
        }
        // The stack unwound fully: a span after it has no parent.
        info_span!("after").in_scope(|| {});
    });
    let dump = handle.snapshot();
    assert_eq!(calls(&dump, "deep"), depth as u64);
    assert_eq!(calls(&dump, "after"), 1);
    let after = callsite(&dump, "after").id;
    assert!(dump.edges.iter().all(|e| e.child != after));
}

#[test]
fn a_thread_that_never_exits_its_spans_stays_bounded() {
    // Entering without ever exiting (a guard leaked, or held across an
    // `.await` and dropped elsewhere): the per-thread stack stops growing at
    // its bound and the thread keeps working and measuring.
    let (clock, mock) = quanta::Clock::mock();
    let (dispatch, handle) = dispatch_of(quiet().clock(clock));
    let leaked = 2_000;
    within("never-exited spans", Duration::from_secs(30), move || {
        tracing::dispatcher::with_default(&dispatch, || {
            for _ in 0..leaked {
                let span = info_span!("forever");
                std::mem::forget(span.enter());
            }
            info_span!("still_works").in_scope(|| mock.increment(100));
        });
    });
    let dump = handle.snapshot();
    assert_eq!(calls(&dump, "forever"), leaked);
    let still = callsite(&dump, "still_works");
    assert_eq!(still.calls, 1);
    assert_eq!((still.wall_ns.sum, still.busy_ns.sum), (100, 100));
}

/// The first sample is one interval in, so its CPU figure is a rate over
/// a whole interval: taken at once, a fresh one-second job's first sample
/// read 567% of a two-core machine. No sample reads more than the machine's
/// CPUs.
#[cfg(target_os = "linux")]
#[test]
fn every_sample_covers_an_interval_and_no_more_cpu_than_the_machine_has() {
    let (_dispatch, handle) = dispatch_of(
        PerfLayer::builder()
            .sampler_interval(Duration::from_millis(20))
            .without_overhead_calibration(),
    );
    // A thread computing beside the sampler.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spinner = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::hint::black_box(0u64.wrapping_add(1));
            }
        })
    };
    let dump = wait_for(&handle, Duration::from_secs(10), |d| {
        d.timeline.samples.len() >= 3
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    spinner.join().unwrap();
    let samples = &dump.timeline.samples;
    assert!(samples[0].t_ms >= 20, "{samples:?}");
    let cpus = std::fs::read_to_string("/proc/stat")
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("cpu") && l[3..].starts_with(|c: char| c.is_ascii_digit()))
        .count() as f64;
    assert!(
        samples.iter().all(|s| s.cpu_percent <= 100.0 * cpus),
        "{samples:?}"
    );
    assert!(samples.iter().any(|s| s.cpu_percent > 50.0), "{samples:?}");
}
