//! A retry's backoff is a wait some calls take and others do not: a fresh
//! `fetch_user` backing off 40 ms one call in twenty before retrying its
//! `call_backend` ranked after the child's smaller wait on its upstream,
//! and read like a wait in every call. Shortening the backoff to 1 ms
//! served 2.3 times the requests.

#![cfg(target_os = "linux")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod runtime_support;

use perf_report::analyze::{Class, analyze};
use runtime_support::{traced, two_workers};
use tracing::instrument::WithSubscriber;
use tracing::{Instrument, info_span};

#[test]
fn a_retry_s_backoff_is_its_own_rare_wait_and_ranks_first() {
    let ((), dump) = traced(|dispatch| {
        two_workers().block_on(async {
            let deadline = Instant::now() + Duration::from_millis(1_500);
            let calls = Arc::new(AtomicU64::new(0));
            let clients: Vec<_> = (0..8)
                .map(|_| {
                    let calls = calls.clone();
                    tokio::spawn(
                        async move {
                            while Instant::now() < deadline {
                                async {
                                    loop {
                                        let failed = async {
                                            tokio::time::sleep(Duration::from_micros(200)).await;
                                            calls.fetch_add(1, Ordering::Relaxed) % 20 == 7
                                        }
                                        .instrument(info_span!("call_backend"))
                                        .await;
                                        if !failed {
                                            break;
                                        }
                                        tokio::time::sleep(Duration::from_millis(40)).await;
                                    }
                                }
                                .instrument(info_span!("fetch_user"))
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
    let analysis = analyze(&dump.into(), &Default::default());
    let waiting = |name: &str| {
        analysis
            .findings
            .iter()
            .find(|f| {
                f.class == Class::Waiting && f.location.as_ref().is_some_and(|l| l.label == name)
            })
            .unwrap_or_else(|| panic!("no wait on {name}: {:#?}", analysis.findings))
    };
    let (parent, child) = (waiting("fetch_user"), waiting("call_backend"));
    assert!(
        parent
            .summary
            .contains("of its own waiting is in its slow calls"),
        "{}",
        parent.summary
    );
    assert!(!child.summary.contains("slow calls"), "{}", child.summary);
    assert!(
        parent.score > child.score,
        "{} against {}",
        parent.score,
        child.score
    );
}
