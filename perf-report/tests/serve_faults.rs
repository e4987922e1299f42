//! `perf-report serve` when its database goes wrong under it: deleted,
//! replaced, read-only, on a full disk; and a history whose write-ahead log
//! was cut short. Each is one clear status and message, the runs stored
//! before stay intact, and the server keeps serving what it can.

mod support;

use std::path::Path;

use perf_report::history::{RunFilter, Store};
use serde_json::Value;
use support::history::run;
use support::server::{agent, serve, serve_command, stop};

/// `GET url`: the status and the JSON answer.
fn get(a: &ureq::Agent, url: &str) -> (u16, Value) {
    let mut r = a.get(url).call().unwrap();
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// `POST /api/runs` with run `i`: the status and the JSON answer.
fn upload(a: &ureq::Agent, base: &str, i: u64) -> (u16, Value) {
    let body = serde_json::to_vec(&run(i, 0.04, None, 0.0)).unwrap();
    let mut r = a.post(&format!("{base}/api/runs")).send(&body[..]).unwrap();
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn runs(a: &ureq::Agent, base: &str) -> usize {
    let (code, v) = get(a, &format!("{base}/api/runs"));
    assert_eq!(code, 200, "{v}");
    v.as_array().unwrap().len()
}

/// A history of `n` runs at `db`.
fn history(db: &Path, n: u64) {
    let mut s = Store::open(db).unwrap();
    for i in 0..n {
        s.record(&run(100 + i, 0.04, None, 0.0), &[]).unwrap();
    }
}

fn remove_db(db: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}

fn error_of(v: &Value) -> &str {
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("not a JSON error: {v}"))
}

#[test]
fn a_database_deleted_then_replaced_while_serving() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    history(&db, 2);
    let server = serve(&db, &[]);
    let (a, b) = (agent(), server.base.clone());
    assert_eq!(runs(&a, &b), 2);

    // Deleted: reads say so with 503; an upload starts a new history there
    // (what `record` does), and is not lost.
    remove_db(&db);
    let (code, v) = get(&a, &format!("{b}/api/runs"));
    assert_eq!(code, 503, "{v}");
    assert!(error_of(&v).contains("no history database here"), "{v}");
    let (code, v) = upload(&a, &b, 1);
    assert_eq!(code, 201, "{v}");
    assert_eq!(runs(&a, &b), 1);

    // Replaced by a file that is not a history: 503 naming it, the file
    // left alone, and the status page still answers what it can.
    remove_db(&db);
    std::fs::write(&db, b"not a database, a text file put here by mistake\n").unwrap();
    let (code, v) = get(&a, &format!("{b}/api/runs"));
    assert_eq!(code, 503, "{v}");
    assert!(error_of(&v).contains("not a perf-report history"), "{v}");
    let (code, v) = upload(&a, &b, 2);
    assert_eq!(code, 503, "{v}");
    assert_eq!(
        std::fs::read(&db).unwrap(),
        b"not a database, a text file put here by mistake\n"
    );

    // Replaced by another history (restored from a backup, say): served
    // from the next request, and written to.
    std::fs::remove_file(&db).unwrap();
    history(&db, 3);
    assert_eq!(runs(&a, &b), 3);
    let (code, v) = upload(&a, &b, 3);
    assert_eq!(code, 201, "{v}");
    assert_eq!(runs(&a, &b), 4);
    stop(server);
}

#[cfg(target_os = "linux")]
#[test]
fn an_upload_on_a_full_disk_is_a_503_and_the_stored_runs_stay() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    history(&db, 2);
    // A clean checkpoint, then the server may write no file past 8 KiB
    // (RLIMIT_FSIZE, SIGXFSZ ignored so the write fails, as on a full
    // disk): a run's write-ahead log does not fit. This connection keeps
    // the shared-memory index (32 KiB, made by the first opener) in place.
    let holder = rusqlite::Connection::open(&db).unwrap();
    holder
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    let mut command = std::process::Command::new("sh");
    command
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 16; exec \"$0\" serve --addr 127.0.0.1:0 --db \"$1\"")
        .arg(assert_cmd::cargo::cargo_bin("perf-report"))
        .arg(&db);
    let server = serve_command(command);
    let (a, b) = (agent(), server.base.clone());
    let (code, v) = upload(&a, &b, 7);
    assert_eq!(code, 503, "{v}");
    let message = error_of(&v);
    assert!(
        message.contains("full") && message.contains("the runs stored before are intact"),
        "{message}"
    );
    // Still serving: the runs stored before, whole.
    assert_eq!(runs(&a, &b), 2);
    let (code, v) = get(&a, &format!("{b}/api/runs/1/report"));
    assert_eq!(code, 200, "{v}");
    stop(server);
    drop(holder);
    assert_eq!(Store::open(&db).unwrap().run_count().unwrap(), 2);
}

#[cfg(target_os = "linux")]
#[test]
fn an_upload_to_a_read_only_database_is_a_503_and_reads_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    history(&db, 2);
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE;")
        .unwrap();
    let server = serve(&db, &[]);
    let (a, b) = (agent(), server.base.clone());
    // Root ignores file modes: chattr +i makes the file read-only for it.
    let ro = |on: bool| {
        std::process::Command::new("chattr")
            .arg(if on { "+i" } else { "-i" })
            .arg(&db)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ro(true) {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "chattr +i failed: the read-only case cannot be tested"
        );
        eprintln!("skipped: chattr +i is not available here");
        return;
    }
    let (code, v) = upload(&a, &b, 7);
    let listed = runs(&a, &b);
    ro(false);
    assert_eq!(code, 503, "{v}");
    assert!(error_of(&v).contains("read-only"), "{v}");
    assert_eq!(listed, 2);
    // Writable again: the same upload is stored.
    assert_eq!(upload(&a, &b, 7).0, 201);
    stop(server);
}

#[test]
fn a_write_ahead_log_cut_short_loses_only_the_unfinished_run() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.db");
    history(&live, 1);
    // Three more runs committed to the write-ahead log and not yet
    // checkpointed; the files are copied while a connection holds them,
    // as a crash would leave them.
    let holder = rusqlite::Connection::open(&live).unwrap();
    holder
        .execute_batch("PRAGMA wal_autocheckpoint = 0; PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    {
        let mut s = Store::open(&live).unwrap();
        for i in 0..3 {
            s.record(&run(200 + i, 0.04, None, 0.0), &[]).unwrap();
        }
        // Keep the log: nothing checkpoints it on close while `holder`
        // is open.
    }
    let db = dir.path().join("h.db");
    std::fs::copy(&live, &db).unwrap();
    let wal = std::fs::read(format!("{}-wal", live.display())).unwrap();
    assert!(
        wal.len() > 4096,
        "the runs are in the log: {} bytes",
        wal.len()
    );
    drop(holder);
    // Cut the log in the middle of its last transaction.
    std::fs::write(format!("{}-wal", db.display()), &wal[..wal.len() - 3000]).unwrap();

    let mut s = Store::open_existing(&db).unwrap();
    let runs = s.runs(&RunFilter::default()).unwrap();
    assert!(
        (1..4).contains(&runs.len()),
        "{} runs: the checkpointed one stays, the cut one goes",
        runs.len()
    );
    // Every run that is listed reads back whole.
    for r in &runs {
        s.dump(r.id).unwrap();
        assert_eq!(s.spans(r.id).unwrap().len(), 3);
    }
    // And the history takes new runs.
    assert!(s.record(&run(300, 0.04, None, 0.0), &[]).unwrap().created);
}
