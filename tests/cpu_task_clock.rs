//! The perf_event task clock on a thread that times many intervals and
//! rarely switches: shorter intervals timed, sleeps still read right. Its
//! own binary, so that other tests' spinning threads do not preempt it
//! into keeping the clock closed.

#![cfg(target_os = "linux")]

use std::time::Duration;

use tracing::info_span;

mod cpu_support;

use cpu_support::{cpu_of, on_cpu_share, run, spin_for as spin};

#[test]
fn a_thread_that_times_many_intervals_reads_its_task_clock_and_times_shorter_ones() {
    // On a fresh thread: the clock is per thread, and opens once the thread
    // has timed 64 intervals with few context switches among them.
    let dump = std::thread::spawn(|| {
        run(50, || {
            for _ in 0..100 {
                info_span!("long").in_scope(|| spin(Duration::from_micros(300)));
            }
            for _ in 0..2_000 {
                info_span!("medium").in_scope(|| spin(Duration::from_micros(20)));
            }
            for _ in 0..40 {
                info_span!("naps").in_scope(|| std::thread::sleep(Duration::from_millis(1)));
            }
        })
    })
    .join()
    .unwrap();
    let source = dump.config.cpu_time_source.clone().unwrap_or_default();
    if !source.contains("task-clock") {
        // The kernel refused the event here (the source says why): the
        // system calls time only the long spans, as tests/cpu_fallback.rs
        // checks.
        eprintln!("no task clock on this machine: {source}");
        return;
    }
    // Spans of 20 µs are under the system calls' threshold (100 µs) but
    // over the clock's (2 µs): every one timed, once the clock is open.
    let medium = cpu_of(&dump, "medium");
    let long = cpu_of(&dump, "long");
    let switched = long.voluntary_switches + long.involuntary_switches;
    if medium.timed_calls < 1_900 {
        // The clock stays closed on a thread that switches more than once
        // per two timed intervals (every switch costs more with it): on a
        // machine that busy the long spans show it.
        assert!(
            switched >= 16,
            "clock not opened, {switched} switches: {medium:?}"
        );
        eprintln!("the clock stayed closed: {switched} switches in the long spans");
        return;
    }
    // Computing: on the CPU, or preempted where the machine is busy; never
    // blocked.
    let not_blocked =
        (medium.on_cpu_ns.sum + medium.preempted_ns.sum) as f64 / medium.busy_ns.max(1) as f64;
    assert!(not_blocked > 0.9, "{medium:?}");
    assert!(
        medium.voluntary_switches <= medium.timed_calls / 4,
        "{medium:?}"
    );
    // A sleep still switches the thread out, and is read with the calls:
    // off the CPU, blocked.
    let naps = cpu_of(&dump, "naps");
    assert!(on_cpu_share(naps) < 0.2, "{naps:?}");
    assert!(naps.voluntary_switches >= naps.timed_calls, "{naps:?}");
}
