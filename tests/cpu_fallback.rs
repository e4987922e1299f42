//! CPU time without the perf_event task clock: the system calls alone, as
//! where the kernel refuses the event (a container's seccomp profile), and
//! the same spans measured both ways: spans that compute, sleep, wait for a
//! lock another thread holds, and compute on a core shared with two hogs.
//! Its own binary: turning the clock off is for the whole process.

#![cfg(target_os = "linux")]

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use perf_layer::PerfLayer;
use perf_layer::dump::{CpuStats, Dump};
use tracing::info_span;
use tracing_subscriber::prelude::*;

mod cpu_support;

use cpu_support::{
    Hogs, calibrate, cpu_of, fixed_work, on_cpu_share, pin_to_first_core, spin_for as spin,
};

/// How long the other thread holds the lock a `waits_for_lock` span waits
/// for.
const HELD: Duration = Duration::from_micros(400);

/// `times` spans, each waiting for a lock another thread took just before
/// and holds for [`HELD`]: off the CPU, blocked in a futex.
fn wait_for_lock(times: usize) {
    let lock = Arc::new(Mutex::new(()));
    let (go, holder_goes) = mpsc::channel::<()>();
    let (taken, is_taken) = mpsc::channel::<()>();
    let holder = {
        let lock = Arc::clone(&lock);
        std::thread::spawn(move || {
            for () in holder_goes {
                let _held = lock.lock().unwrap();
                taken.send(()).unwrap();
                std::thread::sleep(HELD);
            }
        })
    };
    for _ in 0..times {
        go.send(()).unwrap();
        is_taken.recv().unwrap();
        info_span!("waits_for_lock").in_scope(|| drop(lock.lock().unwrap()));
    }
    drop(go);
    holder.join().unwrap();
}

/// On a fresh thread (the clock is per thread): enough long spans to open
/// the clock where it may, then spans that compute, sleep and wait for a
/// lock; last, pinned to the first core beside two hogs pinned there,
/// spans that compute about 2 ms each.
fn workload(builder: perf_layer::PerfLayerBuilder) -> Dump {
    std::thread::spawn(move || {
        let work = calibrate(Duration::from_millis(2));
        let (layer, handle) = builder
            .without_overhead_calibration()
            .without_sampler()
            .build()
            .unwrap();
        let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
        tracing::dispatcher::with_default(&dispatch, || {
            for _ in 0..100 {
                info_span!("warm").in_scope(|| spin(Duration::from_micros(300)));
            }
            for _ in 0..60 {
                info_span!("computes").in_scope(|| spin(Duration::from_micros(400)));
                info_span!("sleeps").in_scope(|| std::thread::sleep(Duration::from_micros(400)));
            }
            wait_for_lock(60);
            let hogs = Hogs::start(2, pin_to_first_core());
            for _ in 0..30 {
                info_span!("preempted").in_scope(|| fixed_work(work));
            }
            drop(hogs);
        });
        handle.snapshot()
    })
    .join()
    .unwrap()
}

/// Blocked time over off-CPU time.
fn blocked_share(c: &CpuStats) -> f64 {
    1.0 - c.preempted_ns.sum as f64 / c.off_cpu_ns.max(1) as f64
}

#[test]
fn the_task_clock_and_the_system_calls_split_the_same_spans_alike() {
    // With the clock where the kernel gives it (first: turning it off is
    // for the rest of the process), then with the system calls only.
    let clock = workload(PerfLayer::builder());
    let calls = workload(PerfLayer::builder().without_task_clock());
    let source = calls.config.cpu_time_source.as_deref().unwrap_or_default();
    assert!(
        source.starts_with("system calls") && source.contains("turned off"),
        "{source}"
    );
    for dump in [&clock, &calls] {
        let computes = cpu_of(dump, "computes");
        let sleeps = cpu_of(dump, "sleeps");
        let says = dump.config.cpu_time_source.as_deref().unwrap_or_default();
        // Computing is on the CPU or preempted by a busy machine, never
        // blocked; sleeping is off it, and blocked.
        let blocked_ns = computes
            .off_cpu_ns
            .saturating_sub(computes.preempted_ns.sum);
        assert!(blocked_ns < computes.busy_ns / 10, "{says}: {computes:?}");
        assert!(
            computes.voluntary_switches <= computes.timed_calls / 4,
            "{says}: {computes:?}"
        );
        assert!(on_cpu_share(sleeps) < 0.3, "{says}: {sleeps:?}");
        assert!(blocked_share(sleeps) > 0.8, "{says}: {sleeps:?}");
        assert_eq!(computes.timed_calls, 60, "{says}");
        assert_eq!(sleeps.timed_calls, 60, "{says}");
        // Waiting for a lock is blocking, as a sleep is.
        let waits = cpu_of(dump, "waits_for_lock");
        assert!(on_cpu_share(waits) < 0.3, "{says}: {waits:?}");
        assert!(blocked_share(waits) > 0.8, "{says}: {waits:?}");
        // Each is timed while the callsite's waits average over the
        // threshold; on a loaded machine the holder may let go before this
        // thread runs again, a few waits are then short and one may go
        // untimed (2 runs in 30 beside two shell loops).
        assert!(waits.timed_calls >= 50, "{says}: {waits:?}");
        // Computing beside two hogs on one core is preempted, not blocked.
        let preempted = cpu_of(dump, "preempted");
        let blocked_ns = preempted
            .off_cpu_ns
            .saturating_sub(preempted.preempted_ns.sum);
        assert!(blocked_ns < preempted.busy_ns / 10, "{says}: {preempted:?}");
        assert!(
            preempted.preempted_ns.sum as f64 >= 0.1 * preempted.busy_ns as f64,
            "{says}: {preempted:?}"
        );
        assert_eq!(preempted.timed_calls, 30, "{says}");
        eprintln!(
            "{says}: waits_for_lock on CPU {:.3}, blocked share {:.3}; \
             preempted: on CPU {:.3}, preempted {:.3}, blocked {:.3} of busy",
            on_cpu_share(waits),
            blocked_share(waits),
            on_cpu_share(preempted),
            preempted.preempted_ns.sum as f64 / preempted.busy_ns as f64,
            blocked_ns as f64 / preempted.busy_ns as f64,
        );
    }
    // The same spans, measured both ways, agree on what is not blocking:
    // on the CPU plus preempted (how much of it the machine preempted
    // depends on the moment, not on the clock).
    let not_blocked =
        |c: &CpuStats| (c.on_cpu_ns.sum + c.preempted_ns.sum) as f64 / c.busy_ns.max(1) as f64;
    let gap =
        |name: &str| (not_blocked(cpu_of(&clock, name)) - not_blocked(cpu_of(&calls, name))).abs();
    assert!(gap("computes") < 0.1, "computes: {}", gap("computes"));
    assert!(gap("sleeps") < 0.2, "sleeps: {}", gap("sleeps"));
    assert!(
        gap("waits_for_lock") < 0.2,
        "waits_for_lock: {}",
        gap("waits_for_lock")
    );
    assert!(gap("preempted") < 0.1, "preempted: {}", gap("preempted"));
}
