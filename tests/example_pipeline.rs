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
fn the_pipeline_s_planted_problems_are_found_and_its_hand_off_is_not_a_leak() {
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
    let classes_of = |name: &str| -> Vec<Class> {
        a.findings
            .iter()
            .filter(|f| f.location.as_ref().is_some_and(|l| l.name == name))
            .map(|f| f.class)
            .collect()
    };
    assert!(
        classes_of("checksum").contains(&Class::HotSpot),
        "{:#?}",
        a.findings
    );
    // `render_receipt` makes nine in ten of the run's allocations, small
    // ones (a fifth of its bytes): found by their number, where its own
    // time is at least 1% of the process's CPU and its allocator time, by
    // the detector's estimate, at least 0.5%, as in a release build.
    // Unoptimized, `checksum` takes so much more that allocating less in
    // `render_receipt` could give back less: then it is no step.
    // `fetch_order` and `remember_order` allocate 2 KiB payloads in two
    // blocks a call, the run's bytes but a sliver of its CPU: never a step.
    let settings = perf_report::Config::default().classes.allocation_heavy;
    let shares = |name: &str| {
        let row = a
            .callsites
            .iter()
            .find(|c| c.location.name == name)
            .unwrap();
        let alloc = row.alloc.as_ref().unwrap();
        let whole = a.totals.time_whole_ns as f64;
        let allocator = (alloc.self_allocs_per_call * row.calls as f64 * settings.allocation_ns
            + alloc.self_alloc_bytes as f64 * settings.byte_ns)
            / whole;
        (row.self_cpu_ns / whole, allocator)
    };
    let (own_cpu, allocator) = shares("render_receipt");
    let found = classes_of("render_receipt").contains(&Class::AllocationHeavy);
    let qualifies =
        own_cpu >= settings.min_self_cpu_share && allocator >= settings.min_alloc_time_share;
    // Its weight is times the process's CPU utilisation (0.19 cores of 2
    // in a release run): where the process idles more, a step that
    // qualifies can score under `min_score` and be dropped as noise.
    assert!(
        found == qualifies || (qualifies && a.totals.cpu_utilization < 0.5),
        "self time on the CPU {:.2}%, allocator time {:.2}% of the process's: {:#?}",
        own_cpu * 100.0,
        allocator * 100.0,
        a.findings
    );
    for payload in ["fetch_order", "remember_order"] {
        assert!(
            shares(payload).1 < settings.min_alloc_time_share,
            "{:?}",
            shares(payload)
        );
        assert!(
            !classes_of(payload).contains(&Class::AllocationHeavy),
            "{:#?}",
            a.findings
        );
    }
    // `audit` sleeps on a runtime worker: blocked, said to stall the worker,
    // and not a hot spot; `fetch_order` awaits a timer: never blocked.
    assert!(
        classes_of("audit").contains(&Class::Blocked),
        "{:#?}",
        a.findings
    );
    assert!(
        !classes_of("audit").contains(&Class::HotSpot),
        "{:#?}",
        a.findings
    );
    assert!(
        !classes_of("fetch_order").contains(&Class::Blocked),
        "{:#?}",
        a.findings
    );
    // `audit` holds about one of the two workers, so `fetch_order`'s tasks
    // find the other free: its waiting on its database is its own, not
    // put on `audit` as a starved task's.
    assert!(
        !a.notes
            .iter()
            .any(|n| n.starts_with("`fetch_order` waited")),
        "{:#?}",
        a.notes
    );
    // `audit`'s own queueing between its polls goes with its blocking: no
    // waiting finding of its own ranked above the cause.
    assert!(
        !classes_of("audit").contains(&Class::Waiting),
        "{:#?}",
        a.findings
    );
    let blocked = a
        .findings
        .iter()
        .find(|f| f.class == Class::Blocked)
        .unwrap();
    assert!(
        blocked.summary.contains("stalls a runtime worker"),
        "{}",
        blocked.summary
    );
}
