//! `perf-report serve` as a child process on 127.0.0.1: started on a free
//! port, stopped with SIGTERM, killed if a test fails first.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server process, killed if a test fails before stopping it.
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client for the server: statuses are answers, not errors, and
/// a request gives up after 60 s.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// Starts `perf-report serve` on `db` with `extra` arguments.
pub fn serve(db: &std::path::Path, extra: &[&str]) -> Server {
    let mut command = Command::new(assert_cmd::cargo::cargo_bin("perf-report"));
    command
        .args(["serve", "--addr", "127.0.0.1:0", "--db"])
        .arg(db)
        .args(extra);
    serve_command(command)
}

/// Starts `command`, which runs `perf-report serve --addr 127.0.0.1:0`
/// (directly or through a shell that sets limits first).
pub fn serve_command(mut command: Command) -> Server {
    let mut child = command
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // "perf-report: serving http://127.0.0.1:PORT/ (Ctrl-C to stop)"
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .trim_end_matches('/')
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    Server { child, base }
}

/// SIGTERM: the server finishes and exits 0, within a bound.
pub fn stop(mut server: Server) {
    let pid = server.child.id();
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
