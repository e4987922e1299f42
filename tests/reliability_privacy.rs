//! Privacy: field values never reach the dump, and dump files are readable
//! by their owner only.
//!
//! The layer keys everything by static callsite metadata (name, target,
//! file, line, level) and never records fields, so a value can reach the
//! dump only through a bug; these tests plant secrets everywhere a value can
//! go (span fields, `#[instrument]` arguments, event fields and messages,
//! `record` after creation) and look for them in the snapshot, in the JSON
//! and in the file on disk.

use std::fs;

use perf_layer::PerfLayer;
use tracing::{Dispatch, info_span};
use tracing_subscriber::prelude::*;

const SECRET: &str = "s3cr3t-hunter2-7f3a9c";
const SECRET_NUMBER: u64 = 918_273_645_546_372;

#[tracing::instrument]
fn login(user: &str, password: &str) -> bool {
    tracing::info!(password, "checking the password for {user}");
    let span = info_span!("query", sql = tracing::field::Empty);
    span.record(
        "sql",
        format!("SELECT * FROM users WHERE password = '{password}'"),
    );
    span.in_scope(|| tracing::warn!(token = SECRET_NUMBER, "{}", SECRET));
    password.len() > 3
}

#[test]
fn field_values_never_reach_the_dump() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump.json");
    let (layer, handle) = PerfLayer::builder()
        .output_path(&path)
        .sampler_interval(std::time::Duration::from_millis(5))
        .build()
        .unwrap();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        for _ in 0..3 {
            assert!(login("alice", SECRET));
        }
        info_span!("session", key = SECRET, id = SECRET_NUMBER).in_scope(|| {});
    });

    let written = handle.write_dump().unwrap();
    let on_disk = fs::read_to_string(written).unwrap();
    let in_memory = serde_json::to_string(&handle.snapshot()).unwrap();
    // The spans were recorded: the dump is not empty by accident.
    assert!(on_disk.contains("\"login\"") && on_disk.contains("\"query\""));
    assert!(on_disk.contains("\"session\""));
    for text in [&on_disk, &in_memory] {
        assert!(!text.contains(SECRET), "a field value reached the dump");
        assert!(!text.contains(&SECRET_NUMBER.to_string()));
        assert!(!text.contains("alice"), "an argument reached the dump");
        assert!(
            !text.contains("SELECT"),
            "a recorded value reached the dump"
        );
    }
}

#[cfg(unix)]
#[test]
fn dump_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump.json");
    // A file already there, world-readable: the dump replaces it, and the
    // replacement is not world-readable.
    fs::write(&path, b"old").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();

    let (layer, handle) = PerfLayer::builder()
        .output_path(&path)
        .without_sampler()
        .without_overhead_calibration()
        .build()
        .unwrap();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || info_span!("work").in_scope(|| {}));

    handle.write_dump().unwrap();
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "mode {mode:o}");

    let other = dir.path().join("other.json");
    handle.write_dump_to(&other).unwrap();
    drop(handle.dump_on_drop());
    for p in [&path, &other] {
        let mode = fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}: mode {mode:o}", p.display());
    }
}
