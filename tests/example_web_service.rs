//! The web-service example (axum + tower-http from crates.io), run as a
//! user would and read by perf-report: grouped by `uri`, the first span
//! finding is the export's compression and names the route it runs under;
//! without grouping, the report says once that `request` mixes very
//! different calls and how to split it.

use std::path::{Path, PathBuf};
use std::process::Command;

use perf_report::analyze::{Analysis, analyze};
use perf_report::load::{LoadOptions, load_path};

fn example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    dir.join("examples")
        .join(format!("web_service{}", std::env::consts::EXE_SUFFIX))
}

fn run(out: &Path, extra: &[&str]) -> Analysis {
    let status = Command::new(example())
        .args(["--seconds", "2", "--out"])
        .arg(out)
        .args(extra)
        .env("PERF_LAYER_PROMETHEUS", "127.0.0.1:0")
        .status()
        .expect("run the example (cargo test builds it)");
    assert!(status.success());
    analyze(
        &load_path(out, &LoadOptions::default()).unwrap(),
        &Default::default(),
    )
}

#[test]
fn grouped_the_slow_route_comes_first_and_ungrouped_the_report_says_how_to_split() {
    let dir = tempfile::tempdir().unwrap();
    let a = run(&dir.path().join("grouped.json"), &[]);
    // A row per route, ids in paths as `{}`.
    let labels: Vec<&str> = a
        .callsites
        .iter()
        .map(|c| c.location.label.as_str())
        .collect();
    for route in [
        "request{uri=/export}",
        "request{uri=/users/{}}",
        "request{uri=/orders}",
    ] {
        assert!(labels.contains(&route), "{labels:?}");
    }
    let first = a
        .findings
        .iter()
        .find(|f| f.location.is_some())
        .expect("a span finding");
    assert_eq!(
        first.location.as_ref().map(|l| l.label.as_str()),
        Some("compress_json"),
        "{:#?}",
        a.findings
    );
    assert!(
        first
            .summary
            .contains("it runs under `request{uri=/export}`"),
        "{}",
        first.summary
    );
    assert!(
        !a.notes.iter().any(|n| n.contains("mixes calls")),
        "{:?}",
        a.notes
    );

    let a = run(&dir.path().join("ungrouped.json"), &["--no-group"]);
    let mixed: Vec<&String> = a
        .notes
        .iter()
        .filter(|n| n.contains("mixes calls"))
        .collect();
    assert_eq!(mixed.len(), 1, "{:?}", a.notes);
    assert!(
        mixed[0].contains("`request`") && mixed[0].contains("group_by([\"uri\"])"),
        "{}",
        mixed[0]
    );
    // `request`'s slow calls are the export's compression: that has the
    // finding, and `request` none of its own (its own time has no tail).
    let first = a
        .findings
        .iter()
        .find(|f| f.location.is_some())
        .expect("a span finding");
    assert_eq!(
        first.location.as_ref().unwrap().name,
        "compress_json",
        "{:#?}",
        a.findings
    );
    assert!(
        a.findings
            .iter()
            .all(|f| f.location.as_ref().is_none_or(|l| l.name != "request")),
        "{:#?}",
        a.findings
    );
}
