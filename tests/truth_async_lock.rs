//! A lock held across a traced await: the waiting for the lock is the
//! caller's own wait, not its child's. Its own test binary: the process's
//! CPU, which the waiting finding reads, is every test's in one process.

#![cfg(any(target_os = "linux", target_os = "macos"))]

use std::sync::Arc;
use std::time::Duration;

mod runtime_support;

use perf_report::Report;
use perf_report::analyze::Class;
use runtime_support::{traced, two_workers};
use tokio::sync::Mutex;
use tracing::instrument::WithSubscriber;
use tracing::{Instrument, info_span};

/// Eight clients whose `update` holds a `tokio::sync::Mutex` across its
/// traced child `persist` (2 ms), then `lookup` (1 ms, beside the lock).
/// Each client waits for the lock most of its time: that wait is `update`'s
/// own, not `persist`'s, and must come first. Written fresh on 2026-12-06:
/// `update` was no finding at all, as a parent of the waiting `persist`.
#[test]
fn a_lock_held_across_a_traced_await_is_the_holder_s_caller_s_own_wait() {
    let ((), dump) = traced(|dispatch| {
        let rt = two_workers();
        rt.block_on(async {
            let stock = Arc::new(Mutex::new(0u64));
            let clients: Vec<_> = (0..8u64)
                .map(|_| {
                    let stock = stock.clone();
                    tokio::spawn(
                        async move {
                            for _ in 0..25 {
                                async {
                                    let mut held = stock.lock().await;
                                    tokio::time::sleep(Duration::from_millis(2))
                                        .instrument(info_span!("persist"))
                                        .await;
                                    *held += 1;
                                }
                                .instrument(info_span!("update"))
                                .await;
                                tokio::time::sleep(Duration::from_millis(1))
                                    .instrument(info_span!("lookup"))
                                    .await;
                            }
                        }
                        .instrument(info_span!("client"))
                        .with_subscriber(dispatch.clone()),
                    )
                })
                .collect();
            for c in clients {
                c.await.unwrap();
            }
        });
    });
    let report = Report::build(&dump.into(), &Default::default());
    let first = &report.plan.steps[0];
    assert_eq!(first.class, Class::Waiting, "{:#?}", report.plan.steps);
    assert_eq!(
        first.location.as_ref().map(|l| l.name.as_str()),
        Some("update"),
        "{:#?}",
        report.plan.steps
    );
    assert!(
        first.summary.contains("idle of its own"),
        "{}",
        first.summary
    );
    // The guard held across `persist`'s await is the first fix (a fresh
    // cache whose `get_user` held its guard across a 1 ms fetch read
    // "give it room" first; dropping the guard served 19 times the
    // requests).
    assert!(
        first.fixes[0].contains("where `update` holds a lock's guard across it"),
        "{:?}",
        first.fixes
    );
    // Seven clients of eight wait for the lock at any time: well over half
    // of their wall time.
    assert!(first.gain.share > 0.25, "{}", first.gain.share);
}
