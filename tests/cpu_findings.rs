//! The findings on/off-CPU time makes true, on programs that compute,
//! sleep or wait for a lock: each planted problem is found under its own
//! class and nothing else is. (Competing for the CPU is `cpu_contention.rs`,
//! alone in its binary so its hogs slow no other test.)

#![cfg(target_os = "linux")]

use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

mod cpu_support;

use cpu_support::{calibrate, classes_for, findings_for, fixed_work, run, spin_for};
use perf_report::analyze::{Class, analyze};
use tracing::info_span;

#[test]
fn a_span_that_sleeps_is_blocked_and_one_that_computes_is_the_hot_spot() {
    let dump = run(20, || {
        for _ in 0..80 {
            info_span!("sleeps").in_scope(|| std::thread::sleep(Duration::from_millis(1)));
            info_span!("computes").in_scope(|| spin_for(Duration::from_micros(800)));
        }
    });
    let a = analyze(&dump.into(), &Default::default());
    assert_eq!(
        classes_for(&a, "sleeps"),
        [Class::Blocked],
        "{:#?}",
        a.findings
    );
    assert!(
        classes_for(&a, "computes").contains(&Class::HotSpot),
        "{:#?}",
        a.findings
    );
    let computes = a
        .callsites
        .iter()
        .find(|c| c.location.name == "computes")
        .unwrap();
    let cpu = computes.cpu.as_ref().unwrap();
    // On the CPU about all of its busy time, less what a shared machine
    // preempts.
    assert!(cpu.on_cpu_share + cpu.self_preempted_share > 0.9, "{cpu:?}");
    // The shares the hot spot is scored by are of CPU time, which sleeping
    // does not inflate: `computes` holds most of it.
    // (Other tests of this binary share the process's CPU time.)
    let hot = findings_for(&a, "computes")[0];
    assert_eq!(hot.share_of, "the process's CPU time");
}

#[test]
fn a_span_waiting_for_a_lock_another_thread_holds_is_blocked() {
    let lock = Arc::new(Mutex::new(0u64));
    let dump = run(20, || {
        for _ in 0..40 {
            let barrier = Arc::new(Barrier::new(2));
            let holder = {
                let (lock, barrier) = (Arc::clone(&lock), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    let mut held = lock.lock().unwrap();
                    barrier.wait();
                    std::thread::sleep(Duration::from_millis(3));
                    *held += 1;
                })
            };
            barrier.wait();
            info_span!("update_shared").in_scope(|| *lock.lock().unwrap() += 1);
            holder.join().unwrap();
        }
    });
    let a = analyze(&dump.into(), &Default::default());
    assert_eq!(
        classes_for(&a, "update_shared"),
        [Class::Blocked],
        "{:#?}",
        a.findings
    );
}

#[test]
fn a_span_blocking_inside_a_poll_is_said_to_stall_a_runtime_worker() {
    #[tracing::instrument]
    async fn handler() {
        tokio::task::yield_now().await;
        // A synchronous call on the runtime's thread.
        std::thread::sleep(Duration::from_millis(1));
    }
    let dump = run(20, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            for _ in 0..60 {
                handler().await;
            }
        });
    });
    let a = analyze(&dump.into(), &Default::default());
    let found = findings_for(&a, "handler");
    assert_eq!(found.len(), 1, "{:#?}", a.findings);
    assert_eq!(found[0].class, Class::Blocked);
    assert!(
        found[0].summary.contains("stalls a runtime worker"),
        "{}",
        found[0].summary
    );
    let plan = perf_report::plan::plan(&a);
    let step = plan
        .steps
        .iter()
        .find(|s| s.class == Class::Blocked)
        .unwrap();
    assert!(step.fixes[0].contains("spawn_blocking"), "{:?}", step.fixes);
}

#[test]
fn a_rare_call_that_blocks_is_still_the_span_s_tail() {
    let iterations = calibrate(Duration::from_micros(150));
    let dump = run(20, || {
        for i in 0..400 {
            info_span!("mostly_fast").in_scope(|| {
                fixed_work(iterations);
                if i % 50 == 49 {
                    std::thread::sleep(Duration::from_millis(4));
                }
            });
        }
    });
    let a = analyze(&dump.into(), &Default::default());
    let classes = classes_for(&a, "mostly_fast");
    assert!(classes.contains(&Class::TailLatency), "{:#?}", a.findings);
    assert!(!classes.contains(&Class::Blocked), "{:#?}", a.findings);
}
