//! A span guard held across an `.await` (`let _g = span.enter();` then
//! `.await`, the mistake tracing's documentation warns of): the span stays
//! entered while its worker polls other tasks or parks, so its figures are
//! not its own. The layer counts the exits that did not nest; the report
//! says so and makes no finding about the span, where without the count it
//! read the workers' idle time as the span blocking them.

#![cfg(target_os = "linux")]

use std::time::Duration;

mod runtime_support;

use perf_report::analyze::analyze;
use runtime_support::{traced, two_workers};
use tracing::instrument::WithSubscriber;
use tracing::{Instrument, info_span};

/// Every span a root: the registry's current span on a worker can be a
/// `held_across` that closed on the other worker, and making a child of it
/// trips the registry's debug assertion ("tried to clone a span that
/// already closed"), in this debug test build only.
#[test]
fn a_guard_held_across_an_await_is_named_and_its_figures_left_out() {
    let ((), dump) = traced(|dispatch| {
        let rt = two_workers();
        rt.block_on(async {
            let tasks: Vec<_> = (0..32)
                .map(|_| {
                    tokio::spawn(
                        async move {
                            for _ in 0..10 {
                                let span = info_span!(parent: None, "held_across");
                                let _guard = span.enter();
                                tokio::time::sleep(Duration::from_millis(1)).await;
                                info_span!(parent: None, "work")
                                    .in_scope(|| std::hint::black_box(7));
                            }
                            for _ in 0..10 {
                                tokio::time::sleep(Duration::from_millis(1))
                                    .instrument(info_span!(parent: None, "instrumented"))
                                    .await;
                            }
                        }
                        .with_subscriber(dispatch.clone()),
                    )
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        });
    });
    let by_name = |name: &str| dump.callsites.iter().find(|c| c.name == name).unwrap();
    let held = by_name("held_across");
    assert_eq!(held.calls, 320);
    // Most exits: 32 tasks on two workers each leave the span entered on
    // the thread that polled them, under the next task's.
    let intervals = held.intervals.unwrap();
    assert!(
        held.misnested_exits * 4 >= intervals,
        "{} of {intervals}",
        held.misnested_exits
    );
    for nested in ["work", "instrumented"] {
        assert_eq!(by_name(nested).misnested_exits, 0, "{nested}");
    }

    let analysis = analyze(&dump.into(), &Default::default());
    let about_held = |f: &&perf_report::analyze::finding::Finding| {
        f.location.as_ref().is_some_and(|l| l.name == "held_across")
    };
    assert!(
        !analysis.findings.iter().any(|f| about_held(&f)),
        "{:?}",
        analysis.findings
    );
    let note = analysis
        .notes
        .iter()
        .find(|n| n.starts_with("`held_across`"))
        .unwrap_or_else(|| panic!("{:?}", analysis.notes));
    assert!(
        note.contains("did not nest") && note.contains(".instrument(span)"),
        "{note}"
    );
}
