//! A CI fleet writing one history at the same moment: many `record`
//! processes on a new file and on an existing one, and a burst of uploads to
//! one `perf-report serve` mixed with reads. Every valid run is stored
//! exactly once with every label; nothing waits past a bound.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use perf_report::history::{RunFilter, Store};
use serde_json::Value;
use support::history::run;
use support::server::{agent, serve, stop};

const WRITERS: u64 = 16;

fn record(db: &Path, dump: &Path, i: u64) -> Output {
    Command::new(assert_cmd::cargo::cargo_bin("perf-report"))
        .arg("record")
        .arg(dump)
        .arg("--db")
        .arg(db)
        .arg("--label")
        .arg(format!("job=j{i}"))
        .arg("--label")
        .arg("branch=main")
        .env_remove("PERF_REPORT_DB")
        .env_remove("PERF_REPORT_DB_TIMEOUT_MS")
        .output()
        .unwrap()
}

/// Writes `n` distinct dumps, from `first`, into `dir`.
fn dumps(dir: &Path, first: u64, n: u64) -> Vec<PathBuf> {
    (first..first + n)
        .map(|i| support::write(dir, &format!("run-{i}.json"), &run(i, 0.04, None, 0.0)))
        .collect()
}

/// `WRITERS` `record` processes started together on `db`, each with its own
/// dump and a `job` label; returns after all have exited, asserting each
/// succeeded.
fn record_all_at_once(db: &Path, files: &[PathBuf], first: u64) {
    let start = Arc::new(Barrier::new(files.len()));
    let t0 = Instant::now();
    let handles: Vec<_> = files
        .iter()
        .cloned()
        .enumerate()
        .map(|(k, f)| {
            let db = db.to_path_buf();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                record(&db, &f, first + k as u64)
            })
        })
        .collect();
    for (k, h) in handles.into_iter().enumerate() {
        let out = h.join().unwrap();
        assert!(
            out.status.success(),
            "writer {k} exited {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        t0.elapsed() < Duration::from_secs(120),
        "the writers took {:?}",
        t0.elapsed()
    );
}

/// Every run in `first..first + n` is stored exactly once, with its labels.
fn assert_stored(db: &Path, first: u64, n: u64, total: usize) {
    let store = Store::open_existing(db).unwrap();
    let runs = store.runs(&RunFilter::default()).unwrap();
    assert_eq!(runs.len(), total, "runs stored");
    for i in first..first + n {
        let job = format!("j{i}");
        let with: Vec<_> = runs
            .iter()
            .filter(|r| r.labels.get("job") == Some(&job))
            .collect();
        assert_eq!(with.len(), 1, "run {i} stored once with its job label");
        assert_eq!(
            with[0].labels.get("branch").map(String::as_str),
            Some("main")
        );
    }
}

#[test]
fn sixteen_record_processes_on_a_new_file_all_store_their_run() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fleet.db");
    let files = dumps(dir.path(), 0, WRITERS);
    record_all_at_once(&db, &files, 0);
    assert_stored(&db, 0, WRITERS, WRITERS as usize);
}

#[test]
fn sixteen_record_processes_on_an_existing_file_all_store_their_run() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fleet.db");
    let first = dumps(dir.path(), 100, 3);
    for (k, f) in first.iter().enumerate() {
        assert!(record(&db, f, 100 + k as u64).status.success());
    }
    let files = dumps(dir.path(), 0, WRITERS);
    record_all_at_once(&db, &files, 0);
    assert_stored(&db, 0, WRITERS, WRITERS as usize + 3);
    assert_stored(&db, 100, 3, WRITERS as usize + 3);
}

#[test]
fn sixty_four_uploads_to_serve_with_reads_between_are_all_stored() {
    const UPLOADS: u64 = 64;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("served.db");
    let server = serve(&db, &[]);
    let base = server.base.clone();
    let bodies: Vec<Vec<u8>> = (0..UPLOADS)
        .map(|i| serde_json::to_vec(&run(i, 0.04, None, 0.0)).unwrap())
        .collect();
    let t0 = Instant::now();
    let start = Arc::new(Barrier::new(UPLOADS as usize + 8));
    let uploads: Vec<_> = bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let (base, start) = (base.clone(), start.clone());
            std::thread::spawn(move || {
                let a = agent();
                start.wait();
                let url = format!("{base}/api/runs?label=job=j{i}&label=branch=main");
                let mut r = a.post(&url).send(&body[..]).unwrap();
                let status = r.status().as_u16();
                let text = r.body_mut().read_to_string().unwrap();
                (status, text)
            })
        })
        .collect();
    // Readers in the same burst: the list, a report, the dashboard.
    let readers: Vec<_> = (0..8)
        .map(|k| {
            let (base, start) = (base.clone(), start.clone());
            std::thread::spawn(move || {
                let a = agent();
                start.wait();
                let mut codes = Vec::new();
                for round in 0..4 {
                    let path = match (k + round) % 3 {
                        0 => "/api/runs".to_owned(),
                        1 => "/".to_owned(),
                        _ => "/api/runs/1/report".to_owned(),
                    };
                    let mut r = a.get(&format!("{base}{path}")).call().unwrap();
                    let _ = r.body_mut().read_to_string();
                    codes.push((path, r.status().as_u16()));
                }
                codes
            })
        })
        .collect();
    for (i, h) in uploads.into_iter().enumerate() {
        let (status, text) = h.join().unwrap();
        assert_eq!(status, 201, "upload {i}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["created"], Value::Bool(true), "{v}");
    }
    for h in readers {
        for (path, code) in h.join().unwrap() {
            // Run 1 may not exist yet when a reader asks for its report.
            assert!(
                code == 200 || (code == 404 && path.contains("/report")),
                "GET {path}: {code}"
            );
        }
    }
    assert!(
        t0.elapsed() < Duration::from_secs(120),
        "{:?}",
        t0.elapsed()
    );
    stop(server);
    assert_stored(&db, 0, UPLOADS, UPLOADS as usize);
}
