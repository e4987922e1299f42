//! Issue 22, serialization: threads queued behind one lock are a
//! serialization finding, ranked first; threads that block side by side,
//! each on its own, are not, and neither are workers that all wait
//! together for a producer too slow for them.

#![cfg(target_os = "linux")]

use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use perf_layer::PerfLayer;
use perf_layer::dump::Dump;
use perf_report::analyze::analyze;
use tracing::info_span;
use tracing_subscriber::prelude::*;

mod kept_support;

/// The tests take turns, from their first thread to their analysis: run
/// side by side, one's threads (or its analysis, hundreds of milliseconds
/// of CPU in a debug build) delay the other's wake-ups on two cores, which
/// is contention, not what either measures. A full test run failed two of
/// them when only the threads took turns.
static TURNS: Mutex<()> = Mutex::new(());

/// This test's turn, held to its end.
fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURNS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `work` on `threads` threads at once under one default layer and
/// returns the dump.
fn on_threads(threads: usize, work: impl Fn() + Send + Sync + 'static) -> Dump {
    let (layer, handle) = PerfLayer::builder().build().unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let work = Arc::new(work);
    let start = Arc::new(Barrier::new(threads));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (dispatch, work, start) = (dispatch.clone(), Arc::clone(&work), Arc::clone(&start));
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    start.wait();
                    work();
                })
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    handle.snapshot()
}

/// No finding of `dump`'s analysis is a serialization; where one is, the
/// dump is kept as `named` ([`kept_support::keep`]).
fn assert_not_serialized(dump: Dump, named: &str) {
    let a = analyze(&dump.clone().into(), &Default::default());
    if a.findings
        .iter()
        .all(|f| f.class.as_str() != "serialization")
    {
        return;
    }
    panic!(
        "a serialization was found ({}): {:#?}",
        kept_support::keep(&dump, named),
        a.findings
    );
}

#[test]
fn four_threads_holding_one_lock_across_a_sleep_are_serialized_first() {
    let _turn = turn();
    let account = Arc::new(Mutex::new(0u64));
    let dump = on_threads(4, move || {
        for _ in 0..200 {
            info_span!("update_account").in_scope(|| {
                let mut balance = account.lock().unwrap();
                // The I/O done while holding the lock.
                std::thread::sleep(Duration::from_micros(100));
                *balance += 1;
            });
        }
    });
    let a = analyze(&dump.into(), &Default::default());
    // Why first: four threads are inside `update_account` nearly all the
    // run, yet only the lock's holder makes progress. Letting them proceed
    // side by side would give back most of the run's wall time (about three
    // quarters with four threads), more than halving the blocked time of
    // any one call: the queue, not the sleep, is what the run waits for.
    let first = &a.findings[0];
    assert_eq!(first.class.as_str(), "serialization", "{:#?}", a.findings);
    assert_eq!(first.location.as_ref().unwrap().name, "update_account");
    assert_eq!(first.share_of, "the run's wall time");
    // The report says 60 to 68% on an idle machine and said 49.8% in a
    // clean-clone CI run (the sleeps run long under load, and the lock is
    // not fair: threads finish unevenly and fewer are inside at the end);
    // the truth is about three quarters. At least 40%, or it is not first
    // for the right reason.
    assert!(first.expected_gain() > 0.4, "{first:#?}");
    let plan = perf_report::plan::plan(&a);
    assert_eq!(plan.steps[0].class.as_str(), "serialization");
}

/// A program written fresh (2026-12-05): four threads each computing
/// 200 µs under one lock on two cores, sending each result to a consumer
/// thread. One thread on the CPU inside at a time, and the waiter the lock
/// passes to ready a moment before a core frees (1.01 and 0.33 threads
/// there): a convoy whose holder computes, which read as `blocked` ("it
/// blocks, it does not compute") when a queue allowed 1.25 runnable.
///
/// Under load from outside the test (a full test run, CI), the holder is
/// preempted more and more than 1.5 threads are runnable inside (1.68 with
/// a shell loop beside it), which read as threads waiting for cores, a hot
/// spot, until the 1.53 blocked among them told a queue
/// (`min_blocked_threads`). The gain moves with the load too, so the
/// workload runs up to three times, and the test passes on the first run
/// that reads right; it fails when none does.
#[test]
fn four_threads_computing_under_one_lock_are_serialized_not_blocked() {
    let _turn = turn();
    let mut last = String::new();
    for _ in 0..3 {
        match computing_convoy() {
            Ok(()) => return,
            Err(why) => last = why,
        }
    }
    panic!("{last}");
}

/// One run of the computing convoy: `Err` with why it did not read as one.
fn computing_convoy() -> Result<(), String> {
    let index = Arc::new(Mutex::new(0u64));
    let (tx, rx) = std::sync::mpsc::channel::<u64>();
    let consumer = std::thread::spawn(move || rx.iter().map(|v| v & 1).sum::<u64>());
    let tx = Mutex::new(tx);
    let dump = on_threads(4, move || {
        let tx = tx.lock().unwrap().clone();
        for i in 0..500u64 {
            info_span!("update_index").in_scope(|| {
                let mut value = index.lock().unwrap();
                *value = spin(Duration::from_micros(200), *value ^ i);
            });
            let _ = tx.send(i);
        }
    });
    consumer.join().unwrap();
    let a = analyze(&dump.into(), &Default::default());
    let queue = a
        .findings
        .iter()
        .find(|f| f.class.as_str() == "serialization")
        .ok_or_else(|| format!("no serialization: {:#?}", a.findings))?;
    assert_eq!(queue.location.as_ref().unwrap().name, "update_index");
    // Side by side they run two at a time on two cores: about half the
    // run comes back, not three quarters. Less where the wait watch saw
    // the cores busy beside the waits (0.25 to 0.45 alone; once 0.17 of a
    // core idle in a full test run, and a gain under 0.2).
    if !(0.1..0.6).contains(&queue.expected_gain()) {
        return Err(format!("gain out of 0.1 to 0.6: {queue:#?}"));
    }
    assert!(
        a.findings.iter().all(|f| f.class.as_str() != "blocked"),
        "{:#?}",
        a.findings
    );
    Ok(())
}

/// About `d` on the CPU.
fn spin(d: Duration, seed: u64) -> u64 {
    let mut x = seed | 1;
    let start = std::time::Instant::now();
    while start.elapsed() < d {
        for _ in 0..200 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
    }
    x
}

#[test]
fn four_threads_each_sleeping_on_their_own_are_not_serialized() {
    let _turn = turn();
    let dump = on_threads(4, || {
        for _ in 0..200 {
            info_span!("fetch_page").in_scope(|| std::thread::sleep(Duration::from_micros(100)));
        }
    });
    // Four threads inside at once and none on the CPU, as in a convoy; but
    // each call took no longer than its own sleep, so nothing queued.
    assert_not_serialized(dump, "four_threads_each_sleeping");
}

#[test]
fn workers_waiting_together_for_a_slow_producer_are_not_serialized() {
    let _turn = turn();
    let (layer, handle) = PerfLayer::builder().build().unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let (tx, rx) = std::sync::mpsc::channel::<u64>();
    let rx = Arc::new(Mutex::new(rx));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (dispatch, rx) = (dispatch.clone(), Arc::clone(&rx));
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    loop {
                        // Four workers share one receiver: one waits in
                        // `recv` holding the lock, three wait for the lock.
                        let job = info_span!("wait_job").in_scope(|| rx.lock().unwrap().recv());
                        let Ok(job) = job else { break };
                        info_span!("process_job").in_scope(|| std::hint::black_box(job * 2));
                    }
                })
            })
        })
        .collect();
    tracing::dispatcher::with_default(&dispatch, || {
        for job in 0..300 {
            info_span!("produce").in_scope(|| {
                // The slow source: a job a millisecond.
                std::thread::sleep(Duration::from_millis(1));
                tx.send(job).unwrap();
            });
        }
    });
    drop(tx);
    for w in workers {
        w.join().unwrap();
    }
    // Three or four threads inside `wait_job` at once, none on the CPU, as
    // in a convoy; but nobody inside moves: the lock's holder waits for
    // the producer too. Letting them in side by side gives nothing back.
    assert_not_serialized(handle.snapshot(), "slow_producer");
}

/// Work of about `us` microseconds on the CPU, counted in iterations (a
/// preempted thread's loop does not end early, as one timed by the wall
/// clock would).
fn compute(iterations: u64) -> u64 {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..iterations {
        x = std::hint::black_box(x.rotate_left(5) ^ i);
    }
    x
}

/// Iterations of [`compute`] in about `us` microseconds on this machine.
fn iterations_in_us(us: u64) -> u64 {
    let start = std::time::Instant::now();
    std::hint::black_box(compute(3_000_000));
    (3_000_000 * us / start.elapsed().as_micros().max(1) as u64).max(1)
}

#[test]
fn threads_computing_on_fewer_cores_than_threads_are_not_serialized() {
    let _turn = turn();
    let per_30_us = iterations_in_us(30);
    let dump = on_threads(4, move || {
        let deadline = std::time::Instant::now() + Duration::from_millis(600);
        while std::time::Instant::now() < deadline {
            info_span!("score").in_scope(|| compute(per_30_us));
            // As much again outside the span.
            std::hint::black_box(compute(per_30_us * 5 / 6));
        }
    });
    // On two cores: about two threads inside `score` at once and one on
    // the CPU, its calls end to end filling the run, as a lock's queue
    // would; but the threads not on the CPU are preempted, ready to run,
    // waiting for a core, not blocked behind each other. (On four cores
    // or more they are all on the CPU.)
    assert_not_serialized(dump, "computing_on_fewer_cores");
}

/// A program written fresh (2026-12-06, ninth session): four threads each
/// computing 100 µs in `prepare`, then 200 µs in `update` under one
/// `Mutex`. Computed outside the lock, the same run made 63% more items.
/// The report read the queue "low, gives back 0.5% of the run's wall
/// time", second to `prepare`'s hot spot: at each probe of the waits one
/// thread was runnable (the background thread's wake-up takes a core), and
/// the rest of the process read as wanting both cores, "other processes
/// had the rest", on an idle machine. What it wanted beyond its CPU is at
/// most the timeline's wait for a core; the queue comes first, about a
/// third of the run to gain. (In a debug build the waiters' wait for a
/// core inside `update` reads as a queue of runnable waiters, whose bound
/// is the process's busy cores, and this passed before the fix too: the
/// unit test in `busy_cores` holds the bound itself.)
///
/// Like the computing convoy above, the workload runs up to three times
/// and the test passes on the first run that reads right.
#[test]
fn a_convoy_beside_work_outside_the_lock_comes_first() {
    let _turn = turn();
    let per_100_us = iterations_in_us(100);
    let mut last = String::new();
    for _ in 0..3 {
        let total = Arc::new(Mutex::new(0u64));
        let dump = on_threads(4, move || {
            let deadline = std::time::Instant::now() + Duration::from_millis(800);
            while std::time::Instant::now() < deadline {
                let v = info_span!("prepare").in_scope(|| compute(per_100_us));
                info_span!("update").in_scope(|| {
                    let mut t = total.lock().unwrap();
                    *t ^= compute(2 * per_100_us) ^ v;
                });
            }
        });
        let a = analyze(&dump.into(), &Default::default());
        let first = &a.findings[0];
        if first.class.as_str() == "serialization"
            && first.location.as_ref().unwrap().name == "update"
            && first.expected_gain() >= 0.15
        {
            return;
        }
        last = format!("{:#?}", a.findings);
    }
    panic!("the queue is not first with 15% or more: {last}");
}

/// A program written fresh (2026-12-06): four threads sharing one SQLite
/// connection behind a `Mutex`, 70% of their requests an indexed query
/// (17 µs under the lock), 30% an insert whose commit syncs the journal
/// (about 600 µs under it, its thread on and off the CPU through the
/// writes). Neither span alone held two threads with a moving head: the
/// report read `query_orders` blocked first ("gives back 21.9%") and
/// `insert_order` second, where the syncs were the run (without them it
/// took 85% less). Here `lookup` and `store` take one lock; `store` holds
/// it through five short computations and sleeps, as the commit did. The
/// shared queue is one serialization finding, on `store`, first, and
/// `lookup` is no blocked finding.
///
/// Like the computing convoy above, the workload runs up to three times
/// and the test passes on the first run that reads right.
#[test]
fn two_callsites_taking_one_lock_are_one_queue_headed_by_the_longer_hold() {
    let _turn = turn();
    let mut last = String::new();
    for _ in 0..3 {
        match shared_connection() {
            Ok(()) => return,
            Err(why) => last = why,
        }
    }
    panic!("{last}");
}

/// One run of the shared connection: `Err` with why it did not read as one
/// queue.
fn shared_connection() -> Result<(), String> {
    let connection = Arc::new(Mutex::new(0u64));
    let dump = on_threads(4, move || {
        for i in 0..400u64 {
            if i % 10 < 7 {
                info_span!("lookup").in_scope(|| {
                    let mut c = connection.lock().unwrap();
                    *c = spin(Duration::from_micros(15), *c ^ i);
                });
            } else {
                info_span!("store").in_scope(|| {
                    let mut c = connection.lock().unwrap();
                    for _ in 0..5 {
                        *c = spin(Duration::from_micros(30), *c ^ i);
                        std::thread::sleep(Duration::from_micros(80));
                    }
                });
            }
        }
    });
    let a = analyze(&dump.into(), &Default::default());
    let first = &a.findings[0];
    if first.class.as_str() != "serialization" || first.location.as_ref().unwrap().name != "store" {
        return Err(format!("not the store's queue first: {:#?}", a.findings));
    }
    if !first.summary.contains("`store` and `lookup` take turns") {
        return Err(format!("the queue does not name `lookup`: {first:#?}"));
    }
    let lookup_blocked = a.findings.iter().any(|f| {
        f.class.as_str() == "blocked" && f.location.as_ref().is_some_and(|l| l.name == "lookup")
    });
    if lookup_blocked {
        return Err(format!(
            "`lookup` blocked beside the queue: {:#?}",
            a.findings
        ));
    }
    Ok(())
}
