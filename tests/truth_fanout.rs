//! A request that fans out to shards side by side lasts as long as its
//! slowest shard: where one shard is slow, the waiting finding says the
//! slow calls set the caller's time and puts finding them first; where the
//! shards are alike, it does not. A fresh service (eight shards, one
//! answering in 6 ms where the others took 1 ms) read as no chain, its
//! fixes ending with "overlap independent waits"; a fast shard gave 2.6
//! times the requests.

#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

mod runtime_support;

use perf_report::Report;
use perf_report::analyze::Class;
use runtime_support::{traced, two_workers};
use tracing::instrument::WithSubscriber;
use tracing::{Dispatch, Instrument, info_span};

/// One request: eight `fetch_shard` tasks spawned into a `JoinSet` (their
/// spans made in the request's, so children of it), shard 7 sleeping
/// `slow_ms`, the others 1 ms; joined.
async fn handle_request(dispatch: Dispatch, slow_ms: u64) {
    async move {
        let mut set = tokio::task::JoinSet::new();
        for shard in 0..8 {
            let ms = if shard == 7 { slow_ms } else { 1 };
            // The span made here, a child of the request's; awaited inside
            // the task, so that it closes (and releases its parent) under
            // the test's dispatcher, not where tokio drops a finished
            // task's future (the registry releases a parent through the
            // thread's default dispatcher).
            let span = info_span!("fetch_shard");
            set.spawn(
                async move {
                    async move { tokio::time::sleep(Duration::from_millis(ms)).await }
                        .instrument(span)
                        .await
                }
                .with_subscriber(dispatch.clone()),
            );
        }
        while set.join_next().await.is_some() {}
    }
    .instrument(info_span!("handle_request"))
    .await;
}

/// Eight clients looping on `handle_request` for 1.5 s; the summary and
/// fixes of the plan's waiting step on `fetch_shard`.
fn fan_out(slow_ms: u64) -> (String, Vec<String>) {
    let ((), dump) = traced(|dispatch| {
        two_workers().block_on(async {
            let deadline = Instant::now() + Duration::from_millis(1_500);
            let clients: Vec<_> = (0..8)
                .map(|_| {
                    let (dispatch, inner) = (dispatch.clone(), dispatch.clone());
                    tokio::spawn(
                        async move {
                            while Instant::now() < deadline {
                                handle_request(inner.clone(), slow_ms).await;
                            }
                        }
                        .with_subscriber(dispatch),
                    )
                })
                .collect();
            for c in clients {
                c.await.unwrap();
            }
        });
    });
    let report = Report::build(&dump.into(), &Default::default());
    let step = report
        .plan
        .steps
        .iter()
        .find(|s| {
            s.class == Class::Waiting
                && s.location.as_ref().is_some_and(|l| l.name == "fetch_shard")
        })
        .unwrap_or_else(|| panic!("no waiting step on `fetch_shard`: {:#?}", report.plan.steps));
    (step.summary.clone(), step.fixes.clone())
}

#[test]
fn a_request_waiting_for_its_slowest_shard_says_so() {
    let (summary, fixes) = fan_out(8);
    assert!(
        summary.contains("and lasts as long as the slowest of them"),
        "{summary}"
    );
    assert!(
        fixes[0].starts_with("Its slow calls set its caller's time"),
        "{fixes:#?}"
    );
    let (summary, _) = fan_out(1);
    assert!(!summary.contains("the slowest"), "{summary}");
    assert!(
        summary.contains("already awaits it 8.0 times a call side by side"),
        "{summary}"
    );
}
