//! A span that computes while CPU hogs compete for its core: its slowed
//! calls are the machine's (`cpu_contention`), not a tail of the span. Alone
//! in its binary, so that its hogs slow no other test.

#![cfg(target_os = "linux")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use perf_layer::PerfLayer;
use perf_report::analyze::{Analysis, Class, analyze};

mod cpu_support;

use cpu_support::{calibrate, classes_for, fixed_work};
use tracing::info_span;
use tracing_subscriber::prelude::*;

/// Pins the calling thread to the first core the process may use, so
/// that the span's thread and the hogs share it whatever else the machine
/// runs; `false` when the platform will not.
fn pin_to_first_core() -> bool {
    core_affinity::get_core_ids()
        .and_then(|ids| ids.first().copied())
        .is_some_and(core_affinity::set_for_current)
}

/// Runs 1,000 calls of a span doing the same work each time on a thread
/// pinned to one core, with two busy threads pinned to the same core or
/// without them.
fn compete(hog: bool, iterations: u64) -> Analysis {
    std::thread::spawn(move || {
        let pinned = pin_to_first_core();
        let stop = Arc::new(AtomicBool::new(false));
        let hogs: Vec<_> = (0..if hog { 2 } else { 0 })
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    if pinned {
                        pin_to_first_core();
                    }
                    while !stop.load(Ordering::Relaxed) {
                        fixed_work(1_000);
                    }
                })
            })
            .collect();
        let (layer, handle) = PerfLayer::builder()
            .without_overhead_calibration()
            .sampler_interval(Duration::from_millis(20))
            .build()
            .unwrap();
        let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
        tracing::dispatcher::with_default(&dispatch, || {
            for _ in 0..1_000 {
                info_span!("fixed_work").in_scope(|| fixed_work(iterations));
            }
        });
        stop.store(true, Ordering::Relaxed);
        hogs.into_iter().for_each(|h| h.join().unwrap());
        analyze(&handle.snapshot().into(), &Default::default())
    })
    .join()
    .unwrap()
}

fn preempted_share(a: &Analysis) -> f64 {
    let row = a
        .callsites
        .iter()
        .find(|c| c.location.name == "fixed_work")
        .unwrap();
    row.cpu.as_ref().map_or(0.0, |c| c.self_preempted_share)
}

#[test]
fn calls_slowed_by_a_cpu_hog_are_contention_not_the_span_s_tail() {
    let iterations = calibrate(Duration::from_micros(200));
    let quiet = compete(false, iterations);
    let busy = compete(true, iterations);
    // Two hogs on its core: the span's thread was preempted for much of its
    // busy time, more than without them (a loaded machine preempts it in
    // both runs).
    let (q, b) = (preempted_share(&quiet), preempted_share(&busy));
    assert!(
        b > 0.3 && b > q,
        "preempted {b:.2} of busy time with the hogs, {q:.2} without"
    );
    for a in [&quiet, &busy] {
        // Its slow calls are the machine's, never a tail of the span; it
        // computes the whole time it is on the CPU: still the hot spot, and
        // never blocked.
        let classes = classes_for(a, "fixed_work");
        assert!(!classes.contains(&Class::TailLatency), "{:#?}", a.findings);
        assert!(!classes.contains(&Class::Blocked), "{:#?}", a.findings);
        assert!(classes.contains(&Class::HotSpot), "{:#?}", a.findings);
    }
    let contention = busy
        .findings
        .iter()
        .find(|f| f.class == Class::CpuContention)
        .unwrap_or_else(|| panic!("{:#?}", busy.findings));
    assert!(contention.location.is_none());
    assert!(
        contention.summary.contains("explains the tails of 1 span"),
        "{}",
        contention.summary
    );
}
