//! A task's waits that queue behind work stalling the runtime's workers:
//! a fresh service whose background tasks computed 40 ms and 30 ms inline
//! in their polls read `handle`'s wait (a 1 ms upstream) as its own, p99
//! 19.7 ms; moved into `spawn_blocking`, p99 2.8 ms and 14% more requests.
//! The waiting finding now ties its longest waits to the stalls' ends and
//! names them; with the work in `spawn_blocking`, it does not.

#![cfg(target_os = "linux")]

use std::sync::Mutex;
use std::time::{Duration, Instant};

mod runtime_support;

use perf_report::analyze::{Class, analyze};
use runtime_support::{compute, traced, two_workers};
use tracing::instrument::WithSubscriber;
use tracing::{Instrument, Span, info_span};

/// The tests take turns: side by side on two cores, one's stalls would
/// be the other's.
static TURNS: Mutex<()> = Mutex::new(());

/// A background task that computes `ms` in a span every `every` ms,
/// inline in its poll or in `spawn_blocking`.
async fn stalls(span: fn() -> Span, ms: u64, every: u64, deadline: Instant, blocking_pool: bool) {
    let run = move || span().in_scope(|| compute(Duration::from_millis(ms)));
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(every)).await;
        if blocking_pool {
            let dispatch = tracing::dispatcher::get_default(|d| d.clone());
            tokio::task::spawn_blocking(move || tracing::dispatcher::with_default(&dispatch, run))
                .await
                .unwrap();
        } else {
            run();
        }
    }
}

/// The `handle` waiting finding's summary beside `rebuild_index` (30 ms
/// every 60 ms) and `compact` (25 ms every 70 ms). Two of them, so that
/// both workers stall at times: where one alone stalls, the other worker
/// may steal its queued tasks before the stall ends (not tied: a run in
/// eight with one).
fn handle_summary(blocking_pool: bool, runtime: fn() -> tokio::runtime::Runtime) -> String {
    let ((), dump) = traced(|dispatch| {
        runtime().block_on(async {
            let deadline = Instant::now() + Duration::from_millis(1_500);
            let background = [
                tokio::spawn(
                    stalls(
                        || info_span!("rebuild_index"),
                        30,
                        60,
                        deadline,
                        blocking_pool,
                    )
                    .with_subscriber(dispatch.clone()),
                ),
                tokio::spawn(
                    stalls(|| info_span!("compact"), 25, 70, deadline, blocking_pool)
                        .with_subscriber(dispatch.clone()),
                ),
            ];
            let clients: Vec<_> = (0..8)
                .map(|_| {
                    tokio::spawn(
                        async move {
                            while Instant::now() < deadline {
                                async {
                                    compute(Duration::from_micros(20));
                                    tokio::time::sleep(Duration::from_millis(1)).await;
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
            for b in background {
                b.await.unwrap();
            }
        });
    });
    let analysis = analyze(&dump.into(), &Default::default());
    analysis
        .findings
        .iter()
        .find(|f| {
            f.class == Class::Waiting && f.location.as_ref().is_some_and(|l| l.label == "handle")
        })
        .unwrap_or_else(|| panic!("{:#?}", analysis.findings))
        .summary
        .clone()
}

#[test]
fn waits_behind_a_stalled_worker_name_what_stalls_it() {
    let _turn = TURNS.lock().unwrap_or_else(|e| e.into_inner());
    let inline = handle_summary(false, two_workers);
    assert!(
        inline.contains("stalled a runtime worker through them (`rebuild_index`"),
        "{inline}"
    );
    let pooled = handle_summary(true, two_workers);
    assert!(!pooled.contains("stalled a runtime worker"), "{pooled}");
}

/// A current-thread runtime polls its tasks on the thread that called
/// `block_on`, named anything: the layer knows it for a runtime's by the
/// tasks it runs (tokio's task ids), not by its name. A fresh service
/// whose `reindex` computed 20 ms every 100 ms inline there read `handle`'s
/// timer as its wait and `reindex` as a hot spot, no word of the stall; on
/// `spawn_blocking`, 17% more requests.
#[test]
fn a_current_thread_runtime_s_stalls_are_named_too() {
    let _turn = TURNS.lock().unwrap_or_else(|e| e.into_inner());
    let current_thread = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    };
    let inline = handle_summary(false, current_thread);
    assert!(
        inline.contains("stalled a runtime worker through them (`rebuild_index`"),
        "{inline}"
    );
    let pooled = handle_summary(true, current_thread);
    assert!(!pooled.contains("stalled a runtime worker"), "{pooled}");
}
