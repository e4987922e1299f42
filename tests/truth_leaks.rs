//! Leaks found by the callsite's own calls, on runs far too short for a
//! trend, and never a hand-off or a bounded cache: workloads written for
//! issue 22, not tuned to the detector.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use perf_layer::PerfLayer;
use perf_report::analyze::{Analysis, Class, Finding, analyze};
use tracing::info_span;
use tracing_subscriber::prelude::*;

#[global_allocator]
static ALLOC: perf_layer::CountingAllocator = perf_layer::CountingAllocator::system();

/// One test at a time: the allocator's tables are the process's.
static SERIAL: Mutex<()> = Mutex::new(());

fn run(work: impl FnOnce(&tracing::Dispatch)) -> Analysis {
    run_with(PerfLayer::builder(), work)
}

fn run_with(
    builder: perf_layer::PerfLayerBuilder,
    work: impl FnOnce(&tracing::Dispatch),
) -> Analysis {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (layer, handle) = builder
        .without_overhead_calibration()
        .sampler_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || work(&dispatch));
    analyze(&handle.snapshot().into(), &Default::default())
}

fn leaks(a: &Analysis) -> Vec<String> {
    a.findings
        .iter()
        .filter(|f| f.class == Class::LeakSuspect)
        .map(|f| {
            f.location
                .as_ref()
                .map_or("(process)".into(), |l| l.label.clone())
        })
        .collect()
}

/// The one leak finding, which must be `name`'s.
fn the_leak<'a>(a: &'a Analysis, name: &str) -> &'a Finding {
    assert_eq!(leaks(a), [name], "{:#?}", a.findings);
    a.findings
        .iter()
        .find(|f| f.class == Class::LeakSuspect)
        .unwrap()
}

#[test]
fn a_span_that_keeps_4_kib_per_call_is_a_leak_on_a_half_second_run() {
    let mut kept: Vec<Vec<u8>> = Vec::new();
    let a = run(|_| {
        for i in 0..2_000u32 {
            info_span!("remember").in_scope(|| kept.push(vec![i as u8; 4096]));
            std::thread::sleep(Duration::from_micros(200));
        }
    });
    let leak = the_leak(&a, "remember");
    assert!(
        leak.summary.contains("kept by its own calls"),
        "{}",
        leak.summary
    );
    drop(kept);
}

/// One `request` callsite grouped by route: `/upload` keeps its 16 KiB
/// bodies, `/report` waits longer and keeps nothing. The live
/// heap is the callsite's, one for all routes: it goes to the route that
/// allocated, not the one that was busiest.
#[test]
fn a_grouped_callsite_s_leak_is_the_route_that_allocated() {
    let mut kept: Vec<Vec<u8>> = Vec::new();
    let a = run_with(PerfLayer::builder().group_by(["route"]), |_| {
        for i in 0..1_000u32 {
            let route = if i % 2 == 0 { "/upload" } else { "/report" };
            info_span!("request", route).in_scope(|| {
                if route == "/upload" {
                    kept.push(vec![i as u8; 16 * 1024]);
                } else {
                    std::thread::sleep(Duration::from_micros(1_500));
                }
            });
        }
    });
    the_leak(&a, "request{route=/upload}");
    let note = a
        .notes
        .iter()
        .find(|n| n.contains("its live heap"))
        .unwrap();
    assert!(note.contains("shown on `request{route=/upload}`"), "{note}");
    drop(kept);
}

#[test]
fn a_leak_on_worker_threads_that_stops_with_its_phase_is_found() {
    let kept = Mutex::new(Vec::new());
    let a = run(|dispatch| {
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    tracing::dispatcher::with_default(dispatch, || {
                        for i in 0..1_500u32 {
                            info_span!("ingest").in_scope(|| {
                                kept.lock().unwrap().push(vec![i as u8; 1024]);
                            });
                        }
                    });
                });
            }
        });
        // The next phase does other work: the leak's growth has stopped,
        // what it kept has not gone.
        for _ in 0..200 {
            info_span!("report").in_scope(|| std::hint::black_box(vec![0u8; 512]));
        }
    });
    assert_eq!(leaks(&a), ["ingest"], "{:#?}", a.findings);
    drop(kept);
}

#[test]
fn a_hand_off_and_a_bounded_cache_are_no_leak() {
    let a = run(|_| {
        let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let consumer = std::thread::spawn(move || rx.into_iter().map(|v| v.len()).sum::<usize>());
        let mut cache: VecDeque<Vec<u8>> = VecDeque::new();
        for i in 0..2_000u32 {
            // Built here, freed by the consumer thread.
            info_span!("produce").in_scope(|| tx.send(vec![i as u8; 4096]).unwrap());
            // At most 100 entries: once full, each insert evicts one.
            info_span!("cache_put").in_scope(|| {
                cache.push_back(vec![i as u8; 4096]);
                if cache.len() > 100 {
                    cache.pop_front();
                }
            });
        }
        drop(tx);
        consumer.join().unwrap();
        drop(cache);
    });
    assert!(leaks(&a).is_empty(), "{:#?}", a.findings);
}

/// A producer puts a 4 KiB event on an unbounded channel every 300 µs for
/// a consumer that takes 900 µs an event: a third of what `produce` made
/// is freed by the end, the rest waits in the queue. A leak by the memory
/// it holds, and a backlog by what its consumer frees: said, and bounding
/// the queue is the first fix. (The hand-off above, drained at once, is
/// no leak at all.)
#[test]
fn a_backlog_on_an_unbounded_channel_is_said_to_be_one() {
    let mut queue_at_end = None;
    let a = run(|_| {
        let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let consumer = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut taken = 0usize;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match rx.recv_timeout(Duration::from_millis(5)) {
                        Ok(event) => {
                            std::thread::sleep(Duration::from_micros(900));
                            taken += event.len();
                        }
                        Err(_) => continue,
                    }
                }
                (taken, rx)
            })
        };
        for i in 0..3_000u32 {
            info_span!("produce").in_scope(|| tx.send(vec![i as u8; 4096]).unwrap());
            std::thread::sleep(Duration::from_micros(300));
        }
        // The dump is taken with the backlog still queued, as a service's
        // would be: stop the consumer and keep what it left.
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        queue_at_end = Some(consumer.join().unwrap());
    });
    let leak = the_leak(&a, "produce");
    assert!(
        leak.summary.contains("slower than they kept it: a backlog"),
        "{}",
        leak.summary
    );
    drop(queue_at_end);
}
