//! Waits that tasks make side by side are shares of the tasks' time, not
//! of the run's: eight client tasks each loop on `handle`, whose
//! `query_db` waits for one of two pooled connections and whose
//! `update_cache` (one request in four) waits behind a lock held across an
//! await. Summed over the eight clients both waits exceed the run; each
//! client spends about three quarters of its time in the first and a fifth
//! in the second, and the report must rank them so.

#![cfg(any(target_os = "linux", target_os = "macos"))]

use std::sync::Arc;
use std::time::{Duration, Instant};

mod runtime_support;

use perf_layer::dump::Dump;
use perf_report::Report;
use perf_report::analyze::Class;
use runtime_support::{traced, two_workers};
use tokio::sync::{Mutex, Semaphore};
use tracing::instrument::WithSubscriber;
use tracing::{Instrument, info_span};

/// Eight clients for `run_for`, on two workers.
fn run(run_for: Duration) -> Dump {
    let ((), dump) = traced(|dispatch| {
        let rt = two_workers();
        rt.block_on(async {
            let pool = Arc::new(Semaphore::new(2));
            let cache = Arc::new(Mutex::new(0u64));
            let deadline = Instant::now() + run_for;
            let clients: Vec<_> = (0..8u64)
                .map(|c| {
                    let (pool, cache) = (pool.clone(), cache.clone());
                    tokio::spawn(
                        async move {
                            let mut n = c;
                            while Instant::now() < deadline {
                                n += 1;
                                let (pool, cache) = (&pool, &cache);
                                async move {
                                    async {
                                        let _conn = pool.acquire().await.unwrap();
                                        tokio::time::sleep(Duration::from_millis(1)).await;
                                    }
                                    .instrument(info_span!("query_db"))
                                    .await;
                                    if n % 4 == 0 {
                                        async {
                                            let mut held = cache.lock().await;
                                            tokio::time::sleep(Duration::from_millis(3)).await;
                                            *held += 1;
                                        }
                                        .instrument(info_span!("update_cache"))
                                        .await;
                                    }
                                }
                                .instrument(info_span!("handle"))
                                .await;
                            }
                        }
                        .with_subscriber(dispatch.clone()),
                    )
                })
                .collect();
            for c in clients {
                c.await.unwrap();
            }
        });
    });
    dump
}

#[test]
fn the_wait_each_task_spends_most_in_ranks_first() {
    let dump = run(Duration::from_millis(1_500));
    let report = Report::build(&dump.into(), &Default::default());
    let waiting = |name: &str| {
        report
            .plan
            .steps
            .iter()
            .find(|s| {
                s.class == Class::Waiting && s.location.as_ref().is_some_and(|l| l.name == name)
            })
            .unwrap_or_else(|| panic!("no waiting step on {name}: {:#?}", report.plan.steps))
    };
    let (db, cache) = (waiting("query_db"), waiting("update_cache"));
    // About 0.75 and 0.2 of each client's time; without the lanes both
    // were capped at the idle cores and tied.
    assert!(
        db.gain.share > 2.0 * cache.gain.share,
        "query_db {} update_cache {}",
        db.gain.share,
        cache.gain.share
    );
    // Eight clients (7.9 or so: the moments between one `handle` and the
    // next are in no span).
    let at_once: f64 = db
        .summary
        .split("`handle` ran ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0);
    assert!((7.0..=8.0).contains(&at_once), "{}", db.summary);
    assert!(db.score > cache.score && db.rank < cache.rank);
    // The diff compares waits on its own axis: the last check asks it to
    // show the span improved.
    let last = db.validation.last().unwrap();
    assert!(last.contains("must show `query_db` improved"), "{last}");
    // Eight clients wait side by side already: the pool comes before join!.
    assert!(
        db.fixes[0].starts_with("Make what it waits on answer sooner")
            && db.fixes[1].contains("more semaphore permits"),
        "{:?}",
        db.fixes
    );
}
