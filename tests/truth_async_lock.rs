//! An async service written fresh for a truth check (2026-12-05): sixteen
//! tasks on two workers, each request taking one `tokio::sync::Mutex` and
//! holding it across a 1 ms sleep (a "disk write") in `load_profile`. The
//! tasks take turns at the lock: the wait says so, and the lock's fix comes
//! first, where it used to be third, after "make what it waits on answer
//! sooner".

#![cfg(target_os = "linux")]

use std::sync::Arc;
use std::time::Duration;

use perf_report::analyze::analyze;
use tracing::Instrument;
use tracing::instrument::WithSubscriber;

mod runtime_support;

use runtime_support::{traced, two_workers};

#[test]
fn tasks_holding_one_async_lock_across_a_sleep_take_turns() {
    let rt = two_workers();
    let (_, dump) = traced(|dispatch| {
        rt.block_on(async {
            let lock = Arc::new(tokio::sync::Mutex::new(0u64));
            let tasks: Vec<_> = (0..16)
                .map(|_| {
                    let lock = Arc::clone(&lock);
                    let dispatch = dispatch.clone();
                    tokio::spawn(
                        async move {
                            for _ in 0..25 {
                                async {
                                    let mut held = lock.lock().await;
                                    tokio::time::sleep(Duration::from_millis(1)).await;
                                    *held += 1;
                                }
                                .instrument(tracing::info_span!("load_profile"))
                                .await;
                                tokio::task::yield_now().await;
                            }
                        }
                        .with_subscriber(dispatch),
                    )
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        })
    });
    let a = analyze(&dump.into(), &Default::default());
    let wait = a
        .findings
        .iter()
        .find(|f| {
            f.class.as_str() == "waiting"
                && f.location
                    .as_ref()
                    .is_some_and(|l| l.name == "load_profile")
        })
        .unwrap_or_else(|| panic!("{:#?}", a.findings));
    assert!(wait.summary.contains("its calls took turns"), "{wait:#?}");
    let plan = perf_report::plan::plan(&a);
    let step = plan
        .steps
        .iter()
        .find(|s| s.class.as_str() == "waiting")
        .unwrap();
    assert!(
        step.fixes[0].starts_with("Shorten lock hold times"),
        "{:?}",
        step.fixes
    );
}
