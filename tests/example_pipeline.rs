//! The README's example, run as a user would and read by perf-report: the
//! problems it plants are found, and a hand-off is not called a leak.

use std::path::PathBuf;
use std::process::Command;

use perf_report::analyze::{Class, analyze};
use perf_report::load::{LoadOptions, load_path};

/// The example binary `cargo test` built beside this test.
fn example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    dir.join("examples")
        .join(format!("pipeline{}", std::env::consts::EXE_SUFFIX))
}

#[test]
fn the_pipeline_s_planted_leak_is_found_and_its_hand_off_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump.json");
    let out = Command::new(example())
        .args(["--orders", "800", "--out"])
        .arg(&path)
        .env("PERF_LAYER_SAMPLE_MS", "10")
        .output()
        .expect("run the example (cargo test builds it)");
    assert!(out.status.success(), "{out:?}");
    let dump = load_path(&path, &LoadOptions::default()).unwrap();
    let a = analyze(&dump, &Default::default());
    let leaks: Vec<&str> = a
        .findings
        .iter()
        .filter(|f| f.class == Class::LeakSuspect)
        .filter_map(|f| f.location.as_ref().map(|l| l.name.as_str()))
        .collect();
    // `remember_order` keeps every order; `fetch_order` hands its order to
    // `process`, which drops it.
    assert_eq!(leaks, ["remember_order"], "{:#?}", a.findings);
    let fetch = a
        .callsites
        .iter()
        .find(|c| c.location.name == "fetch_order")
        .unwrap();
    assert!(
        fetch.heap.as_ref().unwrap().live_bytes < 64 * 1024,
        "{fetch:?}"
    );
    // The CPU it burns is where it was planted. (Whether waiting outweighs
    // it depends on the build: an unoptimized `checksum` is far slower.)
    assert!(
        a.findings.iter().any(|f| f.class == Class::HotSpot
            && f.location.as_ref().is_some_and(|l| l.name == "checksum")),
        "{:#?}",
        a.findings
    );
}
