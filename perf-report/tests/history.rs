//! The run history as a library: round trips, idempotence, retention,
//! migrations, and files that are not ours.

mod support;

use perf_report::history::check::{CheckOptions, CheckReport, Judgement, Metric, check};
use perf_report::history::{HistoryError, RunFilter, SCHEMA_VERSION, Store};
use support::history::{run, shaped_run};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path().join("h.db")).unwrap();
    (dir, s)
}

#[test]
fn a_run_reads_back_exactly_with_its_histograms() {
    let (_dir, mut s) = store();
    let d = run(0, 0.02, None, 0.0);
    let id = s.record(&d, &[("commit".into(), "abc".into())]).unwrap().id;
    assert_eq!(s.dump(id).unwrap(), d);
    let run = s.run(id).unwrap();
    assert_eq!(run.program, "svc");
    assert_eq!(run.labels.get("commit").map(String::as_str), Some("abc"));
    assert_eq!(run.machine_desc, "Test CPU 9000, 4 CPUs");
    let spans = s.spans(id).unwrap();
    assert_eq!(spans.len(), 3);
    assert_eq!(spans[0].name, "parse", "by self time, most first");
    for cs in &d.callsites {
        let key = format!("app::work::{}", cs.name);
        let stored = s.busy_histograms(&[id], &key).unwrap();
        assert_eq!(stored, [(id, cs.busy_ns.encoded.clone())], "{key}");
    }
}

#[test]
fn the_same_dump_is_stored_once_and_keeps_every_label() {
    let (_dir, mut s) = store();
    let d = run(1, 0.02, None, 0.0);
    let a = s.record(&d, &[("branch".into(), "main".into())]).unwrap();
    let b = s.record(&d, &[("commit".into(), "f00".into())]).unwrap();
    assert!(a.created && !b.created);
    assert_eq!(a.id, b.id);
    assert_eq!(s.run_count().unwrap(), 1);
    let labels = s.run(a.id).unwrap().labels;
    assert_eq!(labels.len(), 2, "{labels:?}");
    assert!(a.conflicting_labels.is_empty() && b.conflicting_labels.is_empty());
    // A second runner recording the same dump with another value for a key
    // it shares: the first value stays, and the outcome says which label
    // was not applied (nothing is dropped silently).
    let c = s
        .record(
            &d,
            &[
                ("branch".into(), "release".into()),
                ("runner".into(), "r2".into()),
            ],
        )
        .unwrap();
    assert_eq!(
        c.conflicting_labels,
        [("branch".to_owned(), "release".to_owned(), "main".to_owned())]
    );
    let labels = s.run(a.id).unwrap().labels;
    assert_eq!(labels.get("branch").map(String::as_str), Some("main"));
    assert_eq!(labels.get("runner").map(String::as_str), Some("r2"));
    // A different run of the same program is another run.
    assert!(s.record(&run(2, 0.02, None, 0.0), &[]).unwrap().created);
    assert_eq!(s.run_count().unwrap(), 2);
}

#[test]
fn filters_and_retention_keep_the_newest() {
    let (_dir, mut s) = store();
    for i in 0..6 {
        let branch = if i % 2 == 0 { "main" } else { "topic" };
        s.record(
            &run(i, 0.02, None, 0.0),
            &[("branch".into(), branch.into())],
        )
        .unwrap();
    }
    let main = s
        .runs(&RunFilter::default().labels(&[("branch".into(), "main".into())]))
        .unwrap();
    assert_eq!(main.len(), 3);
    let newest = s.runs(&RunFilter::default().newest(2)).unwrap();
    assert_eq!(
        newest
            .iter()
            .map(|r| r.started_at_unix_ms)
            .collect::<Vec<_>>(),
        [
            run(4, 0.0, None, 0.0).run.started_at_unix_ms,
            run(5, 0.0, None, 0.0).run.started_at_unix_ms
        ]
    );
    assert_eq!(s.prune(Some(4), None, u64::MAX / 2).unwrap(), 2);
    assert_eq!(s.run_count().unwrap(), 4);
    // Labels and spans go with their runs.
    let oldest_kept = s.runs(&RunFilter::default()).unwrap()[0].clone();
    assert_eq!(
        oldest_kept.started_at_unix_ms,
        run(2, 0.0, None, 0.0).run.started_at_unix_ms
    );
    // Runs started more than a day before "now", 90 minutes short of a day
    // after run 5 started: runs 2 and 3 (runs are an hour apart).
    let now = run(5, 0.0, None, 0.0).run.started_at_unix_ms + 86_400_000 - 90 * 60_000;
    assert_eq!(s.prune(None, Some(1), now).unwrap(), 2);
    assert_eq!(s.run_count().unwrap(), 2);
}

#[test]
fn an_older_schema_is_migrated_and_keeps_its_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let mut s = Store::open(&path).unwrap();
    let id = s.record(&run(0, 0.02, None, 0.0), &[]).unwrap().id;
    drop(s);
    // Back to version 1, as perf-report 0.2.0's first history wrote it.
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(
        "ALTER TABLE runs DROP COLUMN machine_desc; ALTER TABLE spans DROP COLUMN idle_mean_ns;
         PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(c);
    let mut s = Store::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(s.run_count().unwrap(), 1);
    assert_eq!(
        s.run(id).unwrap().machine_desc,
        "",
        "a run from before has no description"
    );
    // Its spans have no wait figure (schema 3); a run stored now has one.
    let old = s.spans(id).unwrap();
    assert!(!old.is_empty() && old.iter().all(|sp| sp.idle_mean_ns.is_none()));
    let new = s.record(&run(1, 0.02, None, 0.0), &[]).unwrap().id;
    assert!(
        s.spans(new)
            .unwrap()
            .iter()
            .all(|sp| sp.idle_mean_ns.is_some())
    );
}

#[test]
fn files_that_are_not_a_history_are_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    // A newer schema.
    let newer = dir.path().join("newer.db");
    drop(Store::open(&newer).unwrap());
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99;")
        .unwrap();
    let e = Store::open(&newer).unwrap_err();
    assert!(
        matches!(e, HistoryError::NewerSchema { found: 99, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("upgrade perf-report"), "{e}");
    // Not a database at all.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![0x42u8; 8192]).unwrap();
    let e = Store::open(&junk).unwrap_err();
    assert!(matches!(e, HistoryError::NotHistory { .. }), "{e}");
    assert_eq!(
        std::fs::read(&junk).unwrap(),
        vec![0x42u8; 8192],
        "untouched"
    );
    // Someone else's SQLite database.
    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE accounts (id INTEGER);")
        .unwrap();
    let e = Store::open(&other).unwrap_err();
    assert!(matches!(e, HistoryError::NotHistory { .. }), "{e}");
    // A history that does not exist is not created by a reader.
    let e = Store::open_existing(dir.path().join("none.db")).unwrap_err();
    assert!(matches!(e, HistoryError::Missing { .. }), "{e}");
    assert!(!dir.path().join("none.db").exists());
}

/// The (span, metric) pairs `r` found regressed.
fn regressions(r: &CheckReport) -> Vec<(&str, Metric)> {
    r.regressions()
        .map(|c| (c.identity.as_str(), c.metric))
        .collect()
}

/// Ten stored runs of the same code, each moved by up to ±4% of noise.
fn history_of_identical_runs() -> (tempfile::TempDir, Store) {
    let (dir, mut s) = store();
    for i in 0..10 {
        s.record(
            &run(i, 0.04, None, 0.0),
            &[("branch".into(), "main".into())],
        )
        .unwrap();
    }
    (dir, s)
}

#[test]
fn identical_code_with_noise_is_never_a_regression() {
    let (_dir, s) = history_of_identical_runs();
    for i in 10..30 {
        let r = check(&s, &run(i, 0.04, None, 0.0), &CheckOptions::default()).unwrap();
        assert_eq!(r.history.len(), 10);
        assert_eq!(r.regressions().count(), 0, "run {i}: {:#?}", r.checks);
        assert_eq!(r.tests, 12, "3 spans x 4 metrics");
    }
}

#[test]
fn a_planted_twenty_percent_slowdown_of_one_span_is_caught_and_named() {
    let (_dir, s) = history_of_identical_runs();
    let r = check(
        &s,
        &run(40, 0.04, Some(("lookup", 1.2)), 0.0),
        &CheckOptions::default(),
    )
    .unwrap();
    let regressed = regressions(&r);
    assert!(
        regressed.contains(&("app::work::lookup", Metric::BusyP50)),
        "{:#?}",
        r.checks
    );
    assert!(
        regressed.iter().all(|(id, _)| *id == "app::work::lookup"),
        "{regressed:?}"
    );
    // And one 2% allocation growth, under the 1% allocation bar.
    let r = check(&s, &run(41, 0.04, None, 0.02), &CheckOptions::default()).unwrap();
    let regressed = regressions(&r);
    assert_eq!(
        regressed,
        [("app::work::encode", Metric::AllocBytesPerCall)],
        "{:#?}",
        r.checks
    );
    // A faster span is an improvement, not a regression.
    let r = check(
        &s,
        &run(42, 0.04, Some(("parse", 0.7)), 0.0),
        &CheckOptions::default(),
    )
    .unwrap();
    assert_eq!(r.regressions().count(), 0);
    assert!(
        r.checks
            .iter()
            .any(|c| c.judgement == Judgement::Improved && c.identity == "app::work::parse")
    );
}

/// Five stored runs where `parse` and `encode` move by up to ±10% from run
/// to run and `lookup`, by chance, by ±0.2%.
fn five_runs_one_span_agreeing_by_chance() -> (tempfile::TempDir, Store) {
    let (dir, mut s) = store();
    for (i, f) in [0.90, 0.95, 1.0, 1.05, 1.10].into_iter().enumerate() {
        let lookup = 1.0 + 0.002 * (i as f64 - 2.0);
        s.record(&shaped_run(i as u64, [f, lookup, f], 1.0, 0.0), &[])
            .unwrap();
    }
    (dir, s)
}

#[test]
fn five_runs_that_agreed_by_chance_on_one_span_do_not_make_its_noise_a_regression() {
    // Found on a fresh three-thread program checked unchanged against five
    // runs: four runs of six failed, on spans whose five stored values
    // happened to agree.
    let (_dir, s) = five_runs_one_span_agreeing_by_chance();
    let r = check(
        &s,
        &shaped_run(10, [1.0, 1.11, 1.0], 1.0, 0.0),
        &CheckOptions::default(),
    )
    .unwrap();
    assert_eq!(r.regressions().count(), 0, "{:#?}", r.checks);
    let lookup = r
        .checks
        .iter()
        .find(|c| c.identity == "app::work::lookup" && c.metric == Metric::BusyP50)
        .unwrap();
    // Its spread is the program's (about 7%), not its own 0.3%.
    assert!(
        lookup.history_spread / lookup.history_median > 0.05,
        "{lookup:#?}"
    );
    assert!(
        lookup.z_critical > 8.0,
        "five runs, twelve tests: {lookup:#?}"
    );
    // A real slowdown still stands out of the program's noise.
    let r = check(
        &s,
        &shaped_run(11, [1.0, 1.8, 1.0], 1.0, 0.0),
        &CheckOptions::default(),
    )
    .unwrap();
    let regressed = regressions(&r);
    assert!(
        regressed.contains(&("app::work::lookup", Metric::BusyP50)),
        "{:#?}",
        r.checks
    );
}

#[test]
fn a_tail_excursion_the_history_already_showed_is_not_a_regression() {
    // Ten runs; in one, lookup's slowest calls took 2.5 times as long (a
    // burst of preemption), as a microsecond span's p99 does in about one
    // run of six on a quiet machine.
    let (_dir, mut s) = store();
    for i in 0..10 {
        let tail = if i == 4 {
            2.5
        } else {
            1.0 + 0.01 * (i % 3) as f64
        };
        s.record(&shaped_run(i, [1.0, 1.0, 1.0], tail, 0.0), &[])
            .unwrap();
    }
    let p99 = |tail: f64| {
        let r = check(
            &s,
            &shaped_run(20, [1.0, 1.0, 1.0], tail, 0.0),
            &CheckOptions::default(),
        )
        .unwrap();
        r.checks
            .into_iter()
            .find(|c| c.identity == "app::work::lookup" && c.metric == Metric::BusyP99)
            .unwrap()
    };
    let seen = p99(2.3);
    assert_eq!(seen.judgement, Judgement::Unchanged, "{seen:#?}");
    assert!(seen.reason.contains("already showed"), "{}", seen.reason);
    // Past anything the history showed, it is one.
    let beyond = p99(4.0);
    assert_eq!(beyond.judgement, Judgement::Regressed, "{beyond:#?}");
}

#[test]
fn a_tail_that_rose_by_preemption_alone_is_not_a_regression() {
    // Checked beside a CPU hog, unchanged code read busy p99 +122% and
    // +152% on two computing spans, all of it preemption.
    let (_dir, mut s) = store();
    for i in 0..10 {
        let tail = 1.0 + 0.01 * (i % 3) as f64;
        s.record(&shaped_run(i, [1.0, 1.0, 1.0], tail, 0.0), &[])
            .unwrap();
    }
    // lookup's slowest calls, 150 µs usually, take 3.5 times as long.
    let slow_tail = |preempted_us: u64| {
        let mut d = shaped_run(20, [1.0, 1.0, 1.0], 3.5, 0.0);
        let cs = d.callsites.iter_mut().find(|c| c.name == "lookup").unwrap();
        let busy = cs.busy_ns.sum;
        let preempted = support::hist(&[(0, 1_900), (preempted_us * support::US, 100)]);
        cs.cpu = Some(
            serde_json::from_value(serde_json::json!({
                "timed_calls": cs.calls,
                "intervals": cs.calls,
                "untimed_intervals": 0,
                "busy_ns": busy,
                "self_ns": busy,
                "on_cpu_ns": support::hist(&[(busy / cs.calls, cs.calls)]),
                "self_on_cpu_ns": busy - preempted.sum,
                "off_cpu_ns": preempted.sum,
                "preempted_ns": preempted,
                "self_preempted_ns": null,
                "voluntary_switches": 0,
                "involuntary_switches": 100,
                "sampled": null,
            }))
            .unwrap(),
        );
        let r = check(&s, &d, &CheckOptions::default()).unwrap();
        r.checks
            .into_iter()
            .find(|c| c.identity == "app::work::lookup" && c.metric == Metric::BusyP99)
            .unwrap()
    };
    // 375 µs of the 525 µs tail preempted: the code's own tail is 150 µs.
    let machine = slow_tail(375);
    assert_eq!(machine.judgement, Judgement::Unchanged, "{machine:#?}");
    assert!(
        machine.reason.contains("time preempted"),
        "{}",
        machine.reason
    );
    // Preempted for a tenth of it, the tail is the code's.
    let code = slow_tail(50);
    assert_eq!(code.judgement, Judgement::Regressed, "{code:#?}");
}

#[test]
fn other_machines_and_branches_are_not_the_history() {
    let (_dir, mut s) = history_of_identical_runs();
    let mut elsewhere = run(50, 0.04, Some(("lookup", 1.5)), 0.0);
    elsewhere.run.cpu_model = Some("Other CPU".to_owned());
    s.record(&elsewhere, &[("branch".into(), "main".into())])
        .unwrap();
    // The slow run on another machine is not in this machine's history...
    let r = check(&s, &run(51, 0.04, None, 0.0), &CheckOptions::default()).unwrap();
    assert_eq!(r.history.len(), 10);
    // ...and a new machine has none.
    let r = check(&s, &elsewhere, &CheckOptions::default()).unwrap();
    assert_eq!(r.history.len(), 0, "itself left out");
    let none = CheckOptions::default().against(&[("branch".into(), "topic".into())]);
    assert_eq!(
        check(&s, &run(52, 0.04, None, 0.0), &none)
            .unwrap()
            .history
            .len(),
        0
    );
}
