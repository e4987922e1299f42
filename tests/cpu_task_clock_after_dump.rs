//! The overhead calibration, run at a layer's first dump or scrape, times
//! copies of the layer with the task clock and with the system calls on
//! the thread that asks. It must leave the process's clock as it found it:
//! from 2026-12-04 to 2026-12-05 its system-call copy turned the clock off
//! for the whole process, so every dump said "the task clock is turned
//! off", a service scraped by Prometheus fell back to the system calls
//! after its first scrape, and the calibration's own task-clock figure was
//! the system calls' too (its unit tests in `record/task_clock.rs` check
//! the guard that now holds each copy's source on its own thread). Its own
//! binary: the clock's state is the process's.

#![cfg(target_os = "linux")]

use std::time::Duration;

use tracing::info_span;
use tracing_subscriber::prelude::*;

mod cpu_support;

use cpu_support::{cpu_of, spin_for as spin};

#[test]
fn a_dump_s_calibration_leaves_the_task_clock_on() {
    let (layer, handle) = perf_layer::PerfLayer::builder().build().unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        for _ in 0..100 {
            info_span!("before").in_scope(|| spin(Duration::from_micros(20)));
        }
    });
    let first = handle.snapshot();
    let source = first.config.cpu_time_source.clone().unwrap_or_default();
    assert!(!source.contains("turned off"), "{source}");
    if !source.contains("task-clock") {
        // The kernel refused the event here (the source says why).
        eprintln!("no task clock on this machine: {source}");
        return;
    }
    // After it, a fresh thread still opens its clock (once it has timed 64
    // intervals with few switches: the long spans), and then spans of
    // 20 µs, under the system calls' threshold (100 µs), are timed.
    let after = std::thread::spawn(move || {
        tracing::dispatcher::with_default(&dispatch, || {
            for _ in 0..100 {
                info_span!("long").in_scope(|| spin(Duration::from_micros(300)));
            }
            for _ in 0..2_000 {
                info_span!("after").in_scope(|| spin(Duration::from_micros(20)));
            }
        });
        handle.snapshot()
    })
    .join()
    .unwrap();
    let source = after.config.cpu_time_source.clone().unwrap_or_default();
    assert!(source.contains("task-clock"), "{source}");
    let timed = cpu_of(&after, "after").timed_calls;
    assert!(timed >= 1_000, "{timed} of 2,000 spans timed");
}
