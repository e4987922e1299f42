//! `record`, `history` and `check` as a CI job uses them: exit codes, what
//! standard error names, and a database that is locked, full, read-only,
//! damaged or newer, which is an error of one line and never loses a run.

mod support;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use support::history::run;

fn cmd() -> Command {
    let mut c = Command::cargo_bin("perf-report").unwrap();
    c.env_remove("PERF_REPORT_DB")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("NO_COLOR");
    c
}

fn write_run(dir: &Path, i: u64, slow: Option<(&str, f64)>) -> PathBuf {
    support::write(dir, &format!("run-{i}.json"), &run(i, 0.04, slow, 0.0))
}

/// Ten runs of main recorded in `db`.
fn main_history(dir: &Path, db: &Path) {
    for i in 0..10 {
        cmd()
            .arg("record")
            .arg(write_run(dir, i, None))
            .arg("--db")
            .arg(db)
            .args(["--label", "branch=main", "--label"])
            .arg(format!("commit=c{i}"))
            .assert()
            .success()
            .stderr(predicate::str::contains("stored as run"));
    }
}

#[test]
fn record_then_check_a_pull_request_against_main() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf-history.db");
    main_history(dir.path(), &db);
    // The same code: no regression, exit 0.
    cmd()
        .arg("check")
        .arg(write_run(dir.path(), 20, None))
        .arg("--db")
        .arg(&db)
        .args(["--against", "branch=main", "--width", "120"])
        .assert()
        .success()
        .stdout(predicate::str::contains("against 10 comparable runs"))
        .stdout(predicate::str::contains("0 regressed"));
    // A 20% slower lookup: exit 1, standard error names span and metric.
    cmd()
        .arg("check")
        .arg(write_run(dir.path(), 21, Some(("lookup", 1.2))))
        .arg("--db")
        .arg(&db)
        .args(["--against", "branch=main"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("app::work::lookup busy_p50"))
        .stderr(predicate::str::contains("parse").not());
    // JSON for machines.
    let out = cmd()
        .arg("check")
        .arg(write_run(dir.path(), 21, Some(("lookup", 1.2))))
        .arg("--db")
        .arg(&db)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["history"].as_array().unwrap().len(), 10);
    assert_eq!(v["checks"][0]["judgement"], "regressed");
}

#[test]
fn history_lists_runs_and_a_span_s_trend_with_its_change_point() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    main_history(dir.path(), &db);
    // Eight more runs where lookup became 40% slower.
    for i in 10..18 {
        cmd()
            .arg("record")
            .arg(write_run(dir.path(), i, Some(("lookup", 1.4))))
            .arg("--db")
            .arg(&db)
            .assert()
            .success();
    }
    cmd()
        .args(["history", "--width", "120", "--db"])
        .arg(&db)
        .assert()
        .success()
        .stdout(predicate::str::contains("RUNS  18 stored"))
        .stdout(predicate::str::contains("branch=main commit=c3"));
    let out = cmd()
        .args(["history", "--span", "lookup", "--format", "json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let p50 = &v[0]["series"][0];
    assert_eq!(p50["metric"], "busy_p50_ns");
    let changes = p50["change_points"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{p50:#}");
    assert_eq!(changes[0]["index"], 10);
    let rise = changes[0]["relative_change"].as_f64().unwrap();
    assert!((rise - 0.4).abs() < 0.08, "{rise}");
    // The other spans did not move.
    let parse = cmd()
        .args(["history", "--span", "parse", "--format", "json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&parse.stdout).unwrap();
    assert_eq!(
        v[0]["series"][0]["change_points"].as_array().unwrap().len(),
        0
    );
    cmd()
        .args(["history", "--span", "lookup", "--width", "120", "--db"])
        .arg(&db)
        .assert()
        .success()
        .stdout(predicate::str::contains("busy_p50_ns shifted +"))
        .stdout(predicate::str::contains("at run 11"));
    // Prune to the newest five.
    cmd()
        .args(["history", "prune", "--keep-runs", "5", "--db"])
        .arg(&db)
        .assert()
        .success()
        .stderr(predicate::str::contains("pruned 13 runs"));
}

#[test]
fn the_history_s_views_come_in_every_report_format() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    main_history(dir.path(), &db);
    let out = |args: &[&str]| {
        let out = cmd().args(args).arg("--db").arg(&db).output().unwrap();
        // 1: a check that found a regression.
        assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    // CSV: the runs table, its header row first.
    let csv = out(&["history", "--format", "csv"]);
    assert!(
        csv.starts_with("id,started (UTC),program,duration,spans,machine,labels\n"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 11, "{csv}");
    // Markdown: a check's title and its table.
    let slower = write_run(dir.path(), 21, Some(("lookup", 1.2)));
    let md = out(&["check", slower.to_str().unwrap(), "--format", "markdown"]);
    assert!(
        md.starts_with("## perf-report check: svc\n\nAgainst 10"),
        "{md}"
    );
    assert!(
        md.contains("| **regressed** | app::work::lookup | busy_p50 |"),
        "{md}"
    );
    // HTML: a span's trend is a page with its table.
    let html = out(&["history", "--span", "lookup", "--format", "html"]);
    assert!(html.starts_with("<!DOCTYPE html>"), "{html:.300}");
    assert!(html.contains("<table class=\"t-trend\">"), "{html}");
}

#[test]
fn too_little_history_judges_nothing_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    record_first_run(dir.path(), &db);
    cmd()
        .arg("check")
        .arg(write_run(dir.path(), 1, Some(("lookup", 2.0))))
        .arg("--db")
        .arg(&db)
        .assert()
        .success()
        .stderr(predicate::str::contains("only 1 comparable runs"))
        .stderr(predicate::str::contains("nothing was judged"));
}

#[test]
fn the_database_comes_from_the_environment_when_not_given() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("from-env.db");
    cmd()
        .arg("record")
        .arg(write_run(dir.path(), 0, None))
        .env("PERF_REPORT_DB", &db)
        .assert()
        .success();
    assert!(db.exists());
    // And perf-history.db in the working directory otherwise.
    cmd()
        .current_dir(dir.path())
        .arg("record")
        .arg(write_run(dir.path(), 1, None))
        .assert()
        .success();
    assert!(dir.path().join("perf-history.db").exists());
}

#[test]
fn bad_databases_and_labels_are_one_line_errors_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let dump = write_run(dir.path(), 0, None);
    let one_line = |out: &std::process::Output| {
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.starts_with("perf-report: "), "{err}");
        err
    };
    // Damaged.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![7u8; 4096]).unwrap();
    let out = cmd()
        .arg("record")
        .arg(&dump)
        .arg("--db")
        .arg(&junk)
        .output()
        .unwrap();
    assert!(one_line(&out).contains("not a perf-report history database"));
    // Newer.
    let newer = dir.path().join("newer.db");
    cmd()
        .arg("record")
        .arg(&dump)
        .arg("--db")
        .arg(&newer)
        .assert()
        .success();
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute_batch("PRAGMA user_version = 42;")
        .unwrap();
    let out = cmd()
        .args(["history", "--db"])
        .arg(&newer)
        .output()
        .unwrap();
    assert!(one_line(&out).contains("newer perf-report"));
    // Missing, for a reader.
    let out = cmd()
        .args(["history", "--db"])
        .arg(dir.path().join("none.db"))
        .output()
        .unwrap();
    assert!(one_line(&out).contains("no history database here"));
    // A label that is not KEY=VALUE.
    let out = cmd()
        .arg("record")
        .arg(&dump)
        .args(["--label", "main", "--db"])
        .arg(dir.path().join("l.db"))
        .output()
        .unwrap();
    assert!(one_line(&out).contains("is not KEY=VALUE"));
}

#[test]
fn a_locked_database_is_an_error_and_the_stored_runs_survive() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    record_first_run(dir.path(), &db);
    // Another writer holds the database.
    let holder = rusqlite::Connection::open(&db).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE;").unwrap();
    let out = cmd()
        .arg("record")
        .arg(write_run(dir.path(), 1, None))
        .arg("--db")
        .arg(&db)
        .env("PERF_REPORT_DB_TIMEOUT_MS", "200")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    // It says how long it waited and which process holds the file: this
    // test's own.
    assert!(
        err.contains("stayed locked by another writer for 2"),
        "{err}"
    );
    assert!(
        err.contains(&format!("open in {} (", std::process::id())),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    holder.execute_batch("ROLLBACK;").unwrap();
    drop(holder);
    assert_eq!(runs_listed(&db), 1);
}

#[cfg(unix)]
#[test]
fn a_full_disk_is_an_error_and_the_stored_runs_survive() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    record_first_run(dir.path(), &db);
    // The process may write no file past 512 bytes (RLIMIT_FSIZE, SIGXFSZ
    // ignored so the write fails): the write-ahead log cannot take a page,
    // as on a full disk.
    let bin = assert_cmd::cargo::cargo_bin("perf-report");
    let script = "trap '' XFSZ; ulimit -f 1; exec \"$0\" record \"$1\" --db \"$2\"";
    let big = support::write(
        dir.path(),
        "big.json",
        &support::history::run(1, 0.04, None, 0.0),
    );
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(&bin)
        .arg(&big)
        .arg(&db)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("may be full"), "{err}");
    assert!(err.contains("the runs stored before are intact"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    // The run stored before is intact, and the next record works.
    assert_eq!(runs_listed(&db), 1);
    cmd()
        .arg("record")
        .arg(&big)
        .arg("--db")
        .arg(&db)
        .assert()
        .success();
}

#[cfg(unix)]
#[test]
fn a_read_only_database_is_an_error_for_a_writer_and_readable_for_a_reader() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    record_first_run(dir.path(), &db);
    // A clean checkpoint, so a reader needs no write-ahead log.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE;")
        .unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).unwrap();
    // Root ignores file modes: make it truly read-only where the test can
    // (chattr +i); otherwise test what a non-root user sees.
    let root = unsafe { libc_geteuid() } == 0;
    let immutable = root
        && std::process::Command::new("chattr")
            .arg("+i")
            .arg(&db)
            .status()
            .is_ok_and(|s| s.success());
    if root && !immutable {
        eprintln!("skipped: running as root without chattr +i, a file cannot be made read-only");
        return;
    }
    let out = cmd()
        .arg("record")
        .arg(write_run(dir.path(), 1, None))
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    cmd()
        .args(["history", "--db"])
        .arg(&db)
        .assert()
        .success()
        .stdout(predicate::str::contains("RUNS  1 stored"));
    if immutable {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&db)
            .status();
    }
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("read-only"), "{err}");
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// How many runs `perf-report history --format json` lists from `db`.
fn runs_listed(db: &std::path::Path) -> usize {
    let out = cmd()
        .args(["history", "--format", "json", "--db"])
        .arg(db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .len()
}

/// Records run 0 into `db`, which must succeed.
fn record_first_run(dir: &Path, db: &Path) {
    cmd()
        .arg("record")
        .arg(write_run(dir, 0, None))
        .arg("--db")
        .arg(db)
        .assert()
        .success();
}
