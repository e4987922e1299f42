//! A file pipeline written fresh for a truth check (2026-12-05): two
//! threads each process files: `parse` computes, then 200 `tokenize_word`
//! spans of a few nanoseconds of work each run in a loop in
//! `process_file`. The cheap spans are a hot loop: their instrumentation
//! is most of their cost. That instrumentation runs while their parent is
//! innermost, in `process_file`'s self time, and between their own
//! timestamps, in their wall time: before, `process_file` was a hot spot
//! and `tokenize_word` was "waiting" for it.

#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

use perf_report::analyze::analyze;
use tracing::info_span;

mod kept_support;
mod runtime_support;

use runtime_support::traced;

fn spin(d: Duration, seed: u64) -> u64 {
    let mut x = seed | 1;
    let start = Instant::now();
    while start.elapsed() < d {
        for _ in 0..200 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
    }
    x
}

fn process_file(i: u64) -> u64 {
    info_span!("process_file").in_scope(|| {
        let v = info_span!("parse").in_scope(|| spin(Duration::from_micros(300), i));
        let mut t = 0;
        for w in 0..200 {
            t ^= info_span!("tokenize_word").in_scope(|| {
                std::hint::black_box((w + v).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 7)
            });
        }
        t
    })
}

#[test]
fn a_loop_of_cheap_spans_is_a_hot_loop_not_its_parent_s_hot_spot_nor_a_wait() {
    let ((), dump) = traced(|dispatch| {
        let start = Instant::now();
        std::thread::scope(|s| {
            for t in 0..2u64 {
                let dispatch = dispatch.clone();
                s.spawn(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        let mut i = t << 32;
                        while start.elapsed() < Duration::from_millis(1_500) {
                            i += 1;
                            std::hint::black_box(process_file(i));
                        }
                    })
                });
            }
        });
    });
    let a = analyze(&dump.clone().into(), &Default::default());
    let of = |span: &str| -> Vec<&str> {
        a.findings
            .iter()
            .filter(|f| f.location.as_ref().is_some_and(|l| l.name == span))
            .map(|f| f.class.as_str())
            .collect()
    };
    assert!(
        of("tokenize_word").contains(&"hot_loop"),
        "{} {:#?}",
        kept_support::keep(&dump, "hot_loop"),
        a.findings
    );
    assert!(
        !of("tokenize_word").contains(&"waiting"),
        "{} {:#?}",
        kept_support::keep(&dump, "hot_loop"),
        a.findings
    );
    assert!(
        !of("process_file").contains(&"hot_spot"),
        "{} {:#?}",
        kept_support::keep(&dump, "hot_loop"),
        a.findings
    );
    assert!(
        of("parse").contains(&"hot_spot"),
        "{} {:#?}",
        kept_support::keep(&dump, "hot_loop"),
        a.findings
    );
}
