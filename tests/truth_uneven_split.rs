//! A batch split in halves by index for two threads, its items sorted by
//! size: one half holds every dear item, and the parent lasts as long as
//! it while the other thread's core idles. A fresh program of this shape
//! read a hot spot alone; dealing the items out in turn took 45% less.
//! Dealt out evenly, the same work is no finding.

#![cfg(target_os = "linux")]

use std::time::Duration;

mod runtime_support;

use perf_report::analyze::{Class, analyze};
use runtime_support::{compute, traced};
use tracing::info_span;

/// `run_all` over 400 items (100 of 2 ms, 300 of 100 µs, dearest first),
/// split in halves by index or dealt out in turn.
fn batch(dealt: bool) -> Vec<&'static str> {
    let ((), dump) = traced(|dispatch| {
        let mut items: Vec<u64> = (0..400)
            .map(|i| if i % 4 == 0 { 2_000 } else { 100 })
            .collect();
        items.sort_unstable_by(|a, b| b.cmp(a));
        let (a, b): (Vec<u64>, Vec<u64>) = if dealt {
            (
                items.iter().copied().step_by(2).collect(),
                items.iter().copied().skip(1).step_by(2).collect(),
            )
        } else {
            (items[..200].to_vec(), items[200..].to_vec())
        };
        let part = |items: Vec<u64>| {
            let _part = info_span!("worker_batch").entered();
            for us in items {
                let _item = info_span!("process_item").entered();
                compute(Duration::from_micros(us));
            }
        };
        let run_all = info_span!("run_all");
        let _in = run_all.enter();
        std::thread::scope(|s| {
            let (dispatch, run_all) = (dispatch.clone(), run_all.clone());
            s.spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || run_all.in_scope(|| part(b)))
            });
            part(a);
        });
    });
    analyze(&dump.into(), &Default::default())
        .findings
        .iter()
        .filter(|f| f.class == Class::UnevenSplit)
        .filter_map(|f| {
            f.location.as_ref().map(|l| {
                if l.label == "run_all" {
                    "run_all"
                } else {
                    "other"
                }
            })
        })
        .collect()
}

#[test]
fn a_split_by_index_of_sorted_items_is_uneven_and_a_dealt_one_is_not() {
    assert_eq!(batch(false), ["run_all"]);
    assert!(batch(true).is_empty());
}
