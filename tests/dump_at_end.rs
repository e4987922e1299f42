//! How a process ends, and what is left on disk: SIGTERM and SIGINT with
//! `dump_on_signal`, `std::process::exit` with `dump_on_exit`, and the
//! warning when a process ends with spans in no dump.
//!
//! Each case runs one ignored test of this binary as a child process (the
//! child installs the subscriber globally, as a program does) and checks
//! what it left behind.

mod reliability_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use perf_layer::dump::Dump;
use perf_layer::{PerfHandle, PerfLayer, PerfLayerBuilder};
use reliability_support::{CHILD_ENV, calls, is_child, run_child};
use tracing_subscriber::prelude::*;

const DUMP_ENV: &str = "PERF_END_DUMP";

#[tracing::instrument]
fn work(n: u64) -> u64 {
    (0..n).sum()
}

/// In the child process `name` (else `None`): the layer of `builder`, its
/// dump at the test's path and no sampler, installed as the process's
/// subscriber, as a program installs it.
fn installed(name: &str, builder: PerfLayerBuilder) -> Option<PerfHandle> {
    if !is_child(name) {
        return None;
    }
    let path = std::env::var(DUMP_ENV).unwrap();
    let (layer, handle) = builder
        .output_path(&path)
        .without_sampler()
        .build()
        .unwrap();
    tracing_subscriber::registry().with(layer).init();
    Some(handle)
}

fn read_dump(path: &Path) -> Dump {
    let bytes =
        std::fs::read(path).unwrap_or_else(|e| panic!("no dump at {}: {e}", path.display()));
    Dump::from_slice(&bytes).expect("a whole, readable dump")
}

/// Starts the child test `name` with its dump at `path`, waits until it
/// prints `ready`, and returns it.
fn start_child(name: &str, path: &Path) -> std::process::Child {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, name)
        .env(DUMP_ENV, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match lines.next() {
            // After the harness's own `test … ` on the same line.
            Some(Ok(line)) if line.trim_end().ends_with("ready") => break,
            Some(Ok(_)) => {}
            _ => {
                let _ = child.kill();
                panic!("the child ended before it was ready");
            }
        }
        assert!(Instant::now() < deadline, "the child never got ready");
    }
    child
}

#[cfg(unix)]
fn killed_by(signal: i32) {
    use std::os::unix::process::ExitStatusExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump.json");
    let mut child = start_child("child_service_waiting_for_a_signal", &path);
    // SAFETY: `kill` with a live child's pid and a valid signal number.
    let sent = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    assert_eq!(sent, 0, "the signal was delivered");
    let status = child.wait().unwrap();
    // The signal took its usual course: the process died of it.
    assert_eq!(status.signal(), Some(signal), "{status:?}");
    let dump = read_dump(&path);
    assert_eq!(calls(&dump, "work"), 1_000);
}

#[test]
#[cfg(unix)]
fn a_service_stopped_with_sigterm_leaves_a_whole_dump_and_dies_of_the_signal() {
    killed_by(libc::SIGTERM);
}

#[test]
#[cfg(unix)]
fn ctrl_c_leaves_a_whole_dump_and_ends_the_process() {
    killed_by(libc::SIGINT);
}

#[test]
#[ignore = "child process of the signal tests"]
fn child_service_waiting_for_a_signal() {
    if !is_child("child_service_waiting_for_a_signal") {
        return;
    }
    let path = std::env::var(DUMP_ENV).unwrap();
    let (layer, _handle) = PerfLayer::builder()
        .output_path(&path)
        .without_sampler()
        .dump_on_signal()
        .build()
        .unwrap();
    tracing_subscriber::registry().with(layer).init();
    for n in 0..1_000 {
        work(n);
    }
    println!("ready");
    // A service that runs until it is stopped; bounded, so a lost signal
    // fails the parent's wait instead of hanging.
    std::thread::sleep(Duration::from_secs(30));
    panic!("no signal arrived");
}

#[test]
fn a_program_that_calls_exit_leaves_a_dump_with_dump_on_exit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump.json");
    let out = run_child(
        "child_that_calls_exit",
        "",
        &[(DUMP_ENV, path.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(calls(&read_dump(&path), "work"), 500);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("no dump"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "child process of a_program_that_calls_exit_leaves_a_dump_with_dump_on_exit"]
fn child_that_calls_exit() {
    let Some(_handle) = installed("child_that_calls_exit", PerfLayer::builder().dump_on_exit())
    else {
        return;
    };
    for n in 0..500 {
        work(n);
    }
    // No destructor runs, so no guard could have written the dump.
    std::process::exit(3);
}

#[test]
fn a_forgotten_guard_is_said_on_standard_error() {
    for (child, expected) in [
        (
            "child_that_forgets_the_guard",
            "200 spans were recorded but no dump was ever written to",
        ),
        (
            "child_that_drops_the_guard_at_once",
            "200 spans were recorded since the last dump written to",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.json");
        let out = run_child(child, "", &[(DUMP_ENV, path.to_str().unwrap())]);
        assert!(out.status.success(), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{child}: {stderr}");
        assert!(stderr.contains("dump_on_drop"), "says what to do: {stderr}");
    }
}

/// A program that reads its data its own way (snapshots, or a Prometheus
/// scrape) and never writes a dump loses nothing: no warning at its end.
#[test]
fn a_program_that_takes_its_data_out_another_way_is_not_warned() {
    for child in [
        "child_that_takes_a_snapshot",
        "child_that_is_scraped_by_prometheus",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.json");
        let out = run_child(child, "", &[(DUMP_ENV, path.to_str().unwrap())]);
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("took 200 spans out"), "{child}: {stdout}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("spans were recorded"), "{child}: {stderr}");
    }
}

#[test]
#[ignore = "child process of a_program_that_takes_its_data_out_another_way_is_not_warned"]
fn child_that_takes_a_snapshot() {
    let Some(handle) = installed("child_that_takes_a_snapshot", PerfLayer::builder()) else {
        return;
    };
    for n in 0..200 {
        work(n);
    }
    println!("took {} spans out", calls(&handle.snapshot(), "work"));
}

#[test]
#[ignore = "child process of a_program_that_takes_its_data_out_another_way_is_not_warned"]
fn child_that_is_scraped_by_prometheus() {
    use std::io::{Read as _, Write as _};
    let builder = PerfLayer::builder().prometheus("127.0.0.1:0".parse().unwrap());
    let Some(handle) = installed("child_that_is_scraped_by_prometheus", builder) else {
        return;
    };
    for n in 0..200 {
        work(n);
    }
    let addr = handle.prometheus_addr().expect("the endpoint is up");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).unwrap();
    let line = body
        .lines()
        .find(|l| l.starts_with("perf_layer_span_calls_total") && l.contains("\"work\""))
        .unwrap_or_else(|| panic!("no calls of work in the scrape: {body}"));
    let spans = line.rsplit(' ').next().unwrap();
    println!("took {spans} spans out");
}

#[test]
#[ignore = "child process of a_forgotten_guard_is_said_on_standard_error"]
fn child_that_forgets_the_guard() {
    let Some(_handle) = installed("child_that_forgets_the_guard", PerfLayer::builder()) else {
        return;
    };
    for n in 0..200 {
        work(n);
    }
}

#[test]
#[ignore = "child process of a_forgotten_guard_is_said_on_standard_error"]
fn child_that_drops_the_guard_at_once() {
    let Some(handle) = installed("child_that_drops_the_guard_at_once", PerfLayer::builder()) else {
        return;
    };
    // The classic slip: `let _ =` drops the guard here, writing an empty dump.
    #[allow(clippy::let_underscore_must_use)]
    let _ = handle.dump_on_drop();
    for n in 0..200 {
        work(n);
    }
}

#[test]
fn a_guard_kept_to_the_end_leaves_a_dump_and_no_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump.json");
    let out = run_child(
        "child_that_keeps_the_guard",
        "",
        &[(DUMP_ENV, path.to_str().unwrap())],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(calls(&read_dump(&path), "work"), 100);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("perf-layer:"), "{stderr}");
}

#[test]
#[ignore = "child process of a_guard_kept_to_the_end_leaves_a_dump_and_no_warning"]
fn child_that_keeps_the_guard() {
    let Some(handle) = installed("child_that_keeps_the_guard", PerfLayer::builder()) else {
        return;
    };
    let _dump = handle.dump_on_drop();
    for n in 0..100 {
        work(n);
    }
}

/// A program that writes its dump itself, to a path of its own, at the end
/// of `main`, while a few spans still close as it tears down (as a
/// runtime's tasks do): no warning. Writing there early and recording on
/// is still said, naming that path.
#[test]
fn a_dump_written_elsewhere_counts_and_teardown_spans_are_not_a_loss() {
    for (child, expected) in [
        ("child_that_writes_elsewhere_at_the_end", None),
        (
            "child_that_writes_elsewhere_then_goes_on",
            Some("200 spans were recorded since the last dump written to"),
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.json");
        let mine = dir.path().join("mine.json");
        let out = run_child(
            child,
            "",
            &[
                (DUMP_ENV, path.to_str().unwrap()),
                ("PERF_END_MINE", mine.to_str().unwrap()),
            ],
        );
        assert!(out.status.success(), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        match expected {
            None => assert!(!stderr.contains("perf-layer:"), "{child}: {stderr}"),
            Some(expected) => {
                assert!(stderr.contains(expected), "{child}: {stderr}");
                assert!(stderr.contains("mine.json"), "names the path: {stderr}");
            }
        }
        assert!(!path.exists(), "nothing written to the output path");
        assert!(calls(&read_dump(&mine), "work") >= 10);
    }
}

/// A child that records `before` spans, writes its dump itself to
/// `PERF_END_MINE` (not its output path), and records `after` more.
fn write_elsewhere_between(before: u64, after: u64) {
    let (layer, handle) = PerfLayer::builder()
        .output_path(std::env::var(DUMP_ENV).unwrap())
        .without_sampler()
        .build()
        .unwrap();
    tracing_subscriber::registry().with(layer).init();
    for n in 0..before {
        work(n);
    }
    handle
        .write_dump_to(std::env::var("PERF_END_MINE").unwrap())
        .unwrap();
    for n in 0..after {
        work(n);
    }
}

#[test]
#[ignore = "child process of a_dump_written_elsewhere_counts_and_teardown_spans_are_not_a_loss"]
fn child_that_writes_elsewhere_at_the_end() {
    if is_child("child_that_writes_elsewhere_at_the_end") {
        // One span closes after the dump, as a task dropped at teardown.
        write_elsewhere_between(1_000, 1);
    }
}

#[test]
#[ignore = "child process of a_dump_written_elsewhere_counts_and_teardown_spans_are_not_a_loss"]
fn child_that_writes_elsewhere_then_goes_on() {
    if is_child("child_that_writes_elsewhere_then_goes_on") {
        write_elsewhere_between(10, 200);
    }
}

#[test]
fn two_layers_writing_one_file_are_told_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump.json");
    let out = run_child(
        "child_with_two_layers_on_one_file",
        "",
        &[(DUMP_ENV, path.to_str().unwrap())],
    );
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr
            .matches("another layer in this process also writes its dumps to")
            .count(),
        2,
        "each layer says it once: {stderr}"
    );
}

#[test]
#[ignore = "child process of two_layers_writing_one_file_are_told_so"]
fn child_with_two_layers_on_one_file() {
    if !is_child("child_with_two_layers_on_one_file") {
        return;
    }
    let path = std::env::var(DUMP_ENV).unwrap();
    let build = || {
        PerfLayer::builder()
            .output_path(&path)
            .without_sampler()
            .without_overhead_calibration()
            .build()
            .unwrap()
    };
    let (first, first_handle) = build();
    let (second, second_handle) = build();
    tracing_subscriber::registry()
        .with(first)
        .with(second)
        .init();
    work(10);
    for _ in 0..3 {
        first_handle.write_dump().unwrap();
        second_handle.write_dump().unwrap();
    }
}
