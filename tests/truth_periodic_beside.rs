//! A periodic task beside another task's loop is no waiting finding,
//! however little that loop computes: a background `upload` that holds
//! nothing anyone waits for read "waiting, not working", critical,
//! "shortens the run by 27.9%", beside six clients that waited on a pool
//! of two permits and computed 0.03 cores in all.

#![cfg(target_os = "linux")]

use std::sync::Arc;
use std::time::{Duration, Instant};

mod runtime_support;

use perf_report::analyze::{Class, analyze};
use runtime_support::{traced, two_workers};
use tokio::sync::Semaphore;
use tracing::instrument::WithSubscriber;
use tracing::{Instrument, info_span};

/// 30 µs of computing.
fn work() {
    let end = Instant::now() + Duration::from_micros(30);
    let mut x = 1u64;
    while Instant::now() < end {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
    }
    std::hint::black_box(x);
}

#[test]
fn a_periodic_upload_beside_clients_waiting_on_a_pool_is_a_note() {
    let ((), dump) = traced(|dispatch| {
        two_workers().block_on(async {
            let pool = Arc::new(Semaphore::new(2));
            let deadline = Instant::now() + Duration::from_millis(1_500);
            let background = {
                let pool = pool.clone();
                tokio::spawn(
                    async move {
                        while Instant::now() < deadline {
                            async {
                                // A permit for 1 ms, released before the upload.
                                {
                                    let _permit = pool.acquire().await.unwrap();
                                    tokio::time::sleep(Duration::from_millis(1)).await;
                                }
                                tokio::time::sleep(Duration::from_millis(25))
                                    .instrument(info_span!("upload"))
                                    .await;
                            }
                            .instrument(info_span!("export_report"))
                            .await;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                    .with_subscriber(dispatch.clone()),
                )
            };
            let clients: Vec<_> = (0..6)
                .map(|_| {
                    let pool = pool.clone();
                    tokio::spawn(
                        async move {
                            while Instant::now() < deadline {
                                async {
                                    let _permit = pool.acquire().await.unwrap();
                                    tokio::time::sleep(Duration::from_millis(2)).await;
                                    work();
                                }
                                .instrument(info_span!("query"))
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
            background.await.unwrap();
        });
    });
    let analysis = analyze(&dump.into(), &Default::default());
    let waiting = |name: &str| {
        analysis.findings.iter().any(|f| {
            f.class == Class::Waiting && f.location.as_ref().is_some_and(|l| l.label == name)
        })
    };
    assert!(waiting("query"), "{:#?}", analysis.findings);
    assert!(!waiting("upload"), "{:#?}", analysis.findings);
    assert!(
        analysis
            .notes
            .iter()
            .any(|n| n.starts_with("`upload` waits about")
                && n.contains("while `query` was open beside it")),
        "{:#?}",
        analysis.notes
    );
}
