//! A real browser for the tests: Debian's Chromium, headless, one at a
//! time, killed past a bound. Without Chromium on `PATH` a test skips,
//! except under `CI=true`, where it fails.
#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest a browser may run before it is killed.
pub const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);

/// One browser at a time: the machine may have two cores.
static BROWSER: Mutex<()> = Mutex::new(());

/// `chromium`, else `chromium-browser`, on `PATH`; `None` means skip,
/// unless in CI.
pub fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "Chromium is not on PATH (looked for chromium and chromium-browser): install Debian's `chromium` package (apt-get install chromium)"
        );
    }
    eprintln!("skipped: Chromium is not on PATH (install Debian's `chromium` package to run it)");
    None
}

/// Runs the browser headless on `url` (a `file://` or `http://` address)
/// with `extra` arguments, killing it after [`BROWSER_TIMEOUT`]; returns
/// what it wrote to standard output.
pub fn run_browser(browser: &Path, url: &str, extra: &[String]) -> String {
    let _one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("a temp dir");
    let profile = dir.path().join("profile");
    let (stdout, stderr) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        // Files, not pipes: a full pipe would stall the browser.
        .stdout(File::create(&stdout).expect("stdout file"))
        .stderr(File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("the browser starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("the browser can be waited for") {
            break status;
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the browser ran over {BROWSER_TIMEOUT:?} on {}; stderr:\n{}",
                url,
                std::fs::read_to_string(&stderr).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "the browser failed ({status}); stderr:\n{}",
        std::fs::read_to_string(&stderr).unwrap_or_default()
    );
    std::fs::read_to_string(&stdout).expect("the browser's output")
}

/// The value of `data-<name>` on the dumped DOM's `<body>`.
pub fn body_data(dom: &str, name: &str) -> Option<String> {
    let body = &dom[dom.find("<body")?..];
    let tag = &body[..body.find('>')?];
    let needle = format!("data-{name}=\"");
    let rest = &tag[tag.find(&needle)? + needle.len()..];
    Some(rest[..rest.find('"')?].to_owned())
}
