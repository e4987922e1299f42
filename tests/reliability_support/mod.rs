//! Helpers shared by the reliability tests (soak, faults, bounds): a
//! watchdog for "no deadlock", process memory figures, and re-running one
//! test of the current binary as a child process, for faults that must not
//! touch the test harness itself (resource limits, standard error).
#![allow(dead_code, unreachable_pub)] // each test binary uses a part

use std::process::{Command, Output};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use perf_layer::dump::{CallsiteStats, Dump};

/// Runs `work` on its own thread and returns its result, failing the test if
/// it has not finished after `limit`: a deadlock shows up as this failure
/// instead of a test run that hangs until CI kills it.
pub fn within<T: Send + 'static>(
    what: &str,
    limit: Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let worker = thread::Builder::new()
        .name(format!("watched: {what}"))
        .spawn(move || {
            let _ = tx.send(work());
        })
        .expect("spawn the watched thread");
    match rx.recv_timeout(limit) {
        Ok(value) => {
            worker.join().expect("the watched thread finished");
            value
        }
        // The sender was dropped without a value: the work panicked. Join to
        // re-raise its panic with its own message.
        Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => panic!("{what}: the watched thread ended without a result"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what} did not finish within {limit:?}: deadlock or stall")
        }
    }
}

/// Resident set size of this process in bytes (`VmRSS` in
/// `/proc/self/status`; `None` where there is no procfs).
pub fn rss_bytes() -> Option<u64> {
    proc_status_kib("VmRSS:").map(|kib| kib * 1024)
}

/// Peak resident set size of this process in bytes (`VmHWM`).
pub fn peak_rss_bytes() -> Option<u64> {
    proc_status_kib("VmHWM:").map(|kib| kib * 1024)
}

fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The callsite named `name`, or a failure listing the names there are.
pub fn callsite<'a>(dump: &'a Dump, name: &str) -> &'a CallsiteStats {
    dump.callsites
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| {
            let names: Vec<&str> = dump.callsites.iter().map(|c| c.name.as_str()).collect();
            panic!("no callsite `{name}` in {names:?}")
        })
}

/// Calls of the callsite named `name`, 0 when it is absent.
pub fn calls(dump: &Dump, name: &str) -> u64 {
    dump.callsites
        .iter()
        .filter(|c| c.name == name)
        .map(|c| c.calls)
        .sum()
}

/// The environment variable that tells a test it runs as a child.
pub const CHILD_ENV: &str = "PERF_RELIABILITY_CHILD";

/// Whether this process is the child run of test `name`.
pub fn is_child(name: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == name)
}

/// Runs the (ignored) test `name` of this test binary as a child process,
/// through `sh -c` so `shell_prefix` can set limits first (`ulimit`, `trap`),
/// with `envs` set, and returns its output.
pub fn run_child(name: &str, shell_prefix: &str, envs: &[(&str, &str)]) -> Output {
    let exe = std::env::current_exe().expect("the test binary's path");
    let script = format!("{shell_prefix} exec \"$0\" \"$@\"");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(script)
        .arg(exe)
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, name);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run the child test process")
}
