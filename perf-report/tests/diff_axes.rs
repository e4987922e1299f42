//! The diff's four axes: time, wait, allocation and live memory, each with its
//! verdict, an overall verdict that never calls a faster span regressed
//! because it now allocates, and a CI gate per axis.

mod support;

use assert_cmd::Command;
use perf_report::diff::{Axis, DiffOptions, Verdict, diff};
use support::{MIB, MS, Span, dump};

/// A service whose `handle` keeps `leaked` MiB by the end, growing evenly.
fn service(handle_ms: u64, alloc_per_call: u64, leaked: u64) -> perf_layer::dump::Dump {
    dump(
        "svc",
        4_000 * MS,
        &[
            Span::new("main", 1, &[(3_900 * MS, 1)]).alloc(0, 0, 0, 0),
            Span::new("handle", 2, &[(handle_ms * MS, 1_000)])
                .alloc(alloc_per_call * 1_000, 1_000, 0, 0)
                .live((0..40).map(|i| i * leaked * MIB / 39).collect()),
        ],
    )
}

fn handle(d: &perf_report::diff::Diff) -> &perf_report::diff::CallsiteDiff {
    d.callsites
        .iter()
        .find(|c| c.location.name == "handle")
        .unwrap()
}

#[test]
fn fixing_a_leak_is_improved_on_memory_and_bringing_it_back_regressed() {
    let leaking = service(2, 1024, 64);
    let fixed = service(2, 1024, 0);
    let d = diff(&leaking, &fixed, &DiffOptions::default());
    let h = handle(&d);
    assert_eq!(h.memory_verdict, Verdict::Improved, "{}", h.reason);
    assert_eq!(
        (h.time_verdict, h.verdict),
        (Verdict::Unchanged, Verdict::Improved)
    );
    let live = h.live_bytes.unwrap();
    assert_eq!((live.base, live.new), ((64 * MIB) as f64, 0.0));
    assert!(h.growth_bytes_per_s.unwrap().base > 0.0);

    let d = diff(&fixed, &leaking, &DiffOptions::default());
    let h = handle(&d);
    assert_eq!(
        (h.memory_verdict, h.verdict),
        (Verdict::Regressed, Verdict::Regressed)
    );
    assert!(
        (h.memory.regression() - 1.0).abs() < 1e-9,
        "from nothing: 100%"
    );
    assert_eq!(d.regressions(Axis::Memory, 0.5).len(), 1);
    assert!(d.regressions(Axis::Time, 0.0).is_empty());
}

#[test]
fn a_span_much_faster_that_now_allocates_is_mixed_never_regressed() {
    // 83% faster, but allocating 4 KiB per call where it allocated 1 KiB.
    let before = service(12, 1024, 0);
    let after = service(2, 4096, 0);
    let d = diff(&before, &after, &DiffOptions::default());
    let h = handle(&d);
    assert_eq!(h.time_verdict, Verdict::Improved);
    assert_eq!(h.alloc_verdict, Verdict::Regressed);
    assert_eq!(h.verdict, Verdict::Mixed);
    assert!(d.regressions(Axis::Time, 0.0).is_empty());
    assert_eq!(d.regressions(Axis::Allocation, 1.0).len(), 1);
    assert_eq!(d.count(Verdict::Regressed), 0);
}

#[test]
fn each_axis_gates_on_its_own_bar_and_says_which_tripped() {
    let dir = tempfile::tempdir().unwrap();
    let before = support::write(dir.path(), "before.json", &service(12, 1024, 0));
    let after = support::write(dir.path(), "after.json", &service(2, 4096, 0));
    let run = |args: &[&str]| {
        Command::cargo_bin("perf-report")
            .unwrap()
            .arg("diff")
            .arg(&before)
            .arg(&after)
            .args(args)
            .output()
            .unwrap()
    };
    // Time gates by default, and time improved.
    let out = run(&["--fail-on-regression", "1"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("1 mixed"), "{text}");
    // The allocation bar trips, naming the callsite and the axis.
    let out = run(&["--fail-on-alloc-regression", "5"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("--fail-on-alloc-regression 5"), "{err}");
    assert!(
        err.contains("handle (src/work.rs:2) regressed +300.0% on allocation"),
        "{err}"
    );
    // Memory did not change.
    let out = run(&["--fail-on-memory-regression", "1"]);
    assert_eq!(out.status.code(), Some(0));
}

/// One call in twenty of `handle` now takes 2 ms against 100 µs: p50 and
/// p90 stay, p99 and p99.9 move, the mean nearly doubles. KS over the whole
/// distribution (5% of it moved) is under its critical value: the tail
/// decides, and the reason says so rather than that the distribution moved.
#[test]
fn a_tail_that_moved_alone_is_regressed_and_said_to_be_the_tail() {
    let with = |slow: u64| {
        dump(
            "svc",
            4_000 * MS,
            &[
                Span::new("main", 1, &[(3_900 * MS, 1)]),
                Span::new("handle", 2, &[(MS / 10, 1_000 - slow), (2 * MS, slow)]),
            ],
        )
    };
    let d = diff(&with(0), &with(50), &DiffOptions::default());
    let h = handle(&d);
    assert_eq!(h.time.verdict, Verdict::Regressed, "{:?}", h.time);
    assert!(
        h.time
            .reason
            .contains("with its tail moved (2 of 4 quantiles moved; KS D 0.050"),
        "{}",
        h.time.reason
    );
}

/// A query waiting 8 ms a call for a pool of two, then 2 ms with a larger
/// pool: its busy time (8 µs a call) did not move, its wait did. The wait
/// axis says improved, the way back regressed, and its gate trips on it; a
/// span that does not wait gets no wait verdict.
#[test]
fn a_shorter_wait_is_improved_on_the_wait_axis_where_busy_time_did_not_move() {
    let pool = |wait_ms: u64| {
        dump(
            "svc",
            4_000 * MS,
            &[
                Span::new("main", 1, &[(3_900 * MS, 1)]),
                Span::new("handle", 2, &[(MS / 100, 400)]).idle(wait_ms * MS),
            ],
        )
    };
    let d = diff(&pool(8), &pool(2), &DiffOptions::default());
    let h = handle(&d);
    assert_eq!(
        (h.time_verdict, h.wait_verdict, h.verdict),
        (Verdict::Unchanged, Verdict::Improved, Verdict::Improved),
        "{}",
        h.reason
    );
    let wait = h.idle_mean_ns.unwrap();
    assert_eq!((wait.base, wait.new), ((8 * MS) as f64, (2 * MS) as f64));
    assert!(h.reason.contains("wait: mean -75.0%"), "{}", h.reason);
    // `main` never waits: no wait verdict, no wait figure.
    let main = d
        .callsites
        .iter()
        .find(|c| c.location.name == "main")
        .unwrap();
    assert_eq!(main.wait_verdict, Verdict::Unchanged);
    assert!(main.idle_mean_ns.is_none() && !main.reason.contains("wait"));

    let d = diff(&pool(2), &pool(8), &DiffOptions::default());
    assert_eq!(handle(&d).wait_verdict, Verdict::Regressed);
    assert_eq!(d.regressions(Axis::Wait, 1.0).len(), 1);
    assert!(d.regressions(Axis::Time, 0.0).is_empty());

    let dir = tempfile::tempdir().unwrap();
    let before = support::write(dir.path(), "before.json", &pool(2));
    let after = support::write(dir.path(), "after.json", &pool(8));
    let out = Command::cargo_bin("perf-report")
        .unwrap()
        .args(["diff", "--fail-on-wait-regression", "50"])
        .arg(&before)
        .arg(&after)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("handle (src/work.rs:2) regressed +300.0% on wait"),
        "{err}"
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("wait"), "{text}");
}
