//! A queue whose waiters spin or yield: four threads on two cores, each
//! computing a little (`prepare`) and then more under one
//! `parking_lot::Mutex` (`update`), whose waiters spin and yield before
//! they park. Written fresh for a truth check (2026-12-06), read first as
//! CPU contention ("more cores") and the lock's span a hot spot of 85% of
//! the process's CPU, where two threads ran no faster and half the hold
//! time ran 2.4 times as many updates. Without the lock, the same threads
//! are CPU contention and no queue.

#![cfg(target_os = "linux")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use perf_report::analyze::analyze;
use tracing::info_span;

mod cpu_support;

use cpu_support::{classes_for, spin_for};

/// Four threads for `seconds`, each computing 10 µs in `prepare` and then
/// 30 µs in `update`, under the lock when `locked` (ten times the fresh
/// program's, so that a debug build's instrumentation is no hot loop).
fn run(locked: bool, seconds: f64) -> (perf_report::Analysis, perf_layer::dump::Dump) {
    let lock = Arc::new(parking_lot::Mutex::new(0u64));
    let dump = cpu_support::run(20, || {
        let dispatch = tracing::dispatcher::get_default(|d| d.clone());
        let end = Instant::now() + Duration::from_secs_f64(seconds);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (lock, dispatch) = (Arc::clone(&lock), dispatch.clone());
                std::thread::spawn(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        while Instant::now() < end {
                            info_span!("prepare").in_scope(|| spin_for(Duration::from_micros(10)));
                            info_span!("update").in_scope(|| {
                                let guard = locked.then(|| lock.lock());
                                spin_for(Duration::from_micros(30));
                                drop(guard);
                            });
                        }
                    })
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    });
    (analyze(&dump.clone().into(), &Default::default()), dump)
}

/// Whether `a` reads the lock's queue as the locked run should: `update`
/// first, a serialization, and no CPU contention.
fn the_queue_is_first(a: &perf_report::Analysis) -> bool {
    a.findings
        .first()
        .and_then(|f| f.location.as_ref())
        .is_some_and(|l| l.name == "update")
        && classes_for(a, "update").contains(&perf_report::analyze::Class::Serialization)
        && a.findings
            .iter()
            .all(|f| f.class.as_str() != "cpu_contention")
}

#[test]
fn a_queue_of_spinning_waiters_is_serialization_first_and_without_the_lock_contention() {
    // Run again (three times at most on a quiet host) while the queue is
    // not read first. Beside two CPU hogs every span is preempted about as
    // much as the lock's (6.3 times its time on the CPU against 3.6 beside
    // it), the process gets a core and a third, and CPU contention is
    // first, rightly. On a CI runner whose other processes took a core,
    // the queue's parked waiters waited while the rest of the process
    // wanted both cores (1.96) and got 0.94: no core was idle for them,
    // the queue's gain was bounded to 3.8% of the run, and `prepare`'s CPU
    // came first, rightly too. On a host stealing a quarter of the CPU
    // (CI's, for minutes at a time) CPU contention is rightly found, from
    // the steal, and may come first: there the queue must still be read,
    // and the steal said.
    let tried = cpu_support::until_read(3, || run(true, 1.0), the_queue_is_first);
    let a = &tried.result;
    if tried.stolen_throughout() {
        assert!(cpu_support::says_stolen(a), "{:#?}", a.findings);
        assert!(
            classes_for(a, "update").contains(&perf_report::analyze::Class::Serialization),
            "{:#?}",
            a.findings
        );
    } else {
        assert!(the_queue_is_first(a), "{:#?}", a.findings);
    }

    let (a, _) = run(false, 1.0);
    assert!(
        !classes_for(&a, "update").contains(&perf_report::analyze::Class::Serialization),
        "{:#?}",
        a.findings
    );
    assert!(
        a.findings
            .iter()
            .any(|f| f.class.as_str() == "cpu_contention"),
        "{:#?}",
        a.findings
    );
}
