//! The live view for real: perf-layer's endpoint serving `/snapshot.json`
//! while a thread records spans, `perf-report live --once` reading a window
//! of it, `perf-report live` in a real terminal (tmux: keys sent, the pane
//! captured, what a user sees asserted), the service going away and
//! coming back, and an address that is not the layer's endpoint.
//!
//! tmux comes from Debian's `tmux` package; without it the terminal test
//! skips, except under `CI=true`, where it fails.

#![cfg(target_os = "linux")]

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use perf_layer::dump::Dump;
use perf_layer::{PerfHandle, PerfLayer};
use tracing_subscriber::prelude::*;

/// A process's worth of spans: a thread recording `checkout` (about 2 ms
/// of sleep) and `render` (a little CPU) until stopped, under a layer with
/// an endpoint on a free loopback port.
struct Service {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    handle: Option<PerfHandle>,
    addr: String,
}

impl Service {
    fn start() -> Self {
        Self::start_on(([127, 0, 0, 1], 0).into())
    }

    fn start_on(at: std::net::SocketAddr) -> Self {
        let (layer, handle) = PerfLayer::builder()
            .without_overhead_calibration()
            .sampler_interval(Duration::from_millis(100))
            .prometheus(at)
            .output_path(
                std::env::temp_dir().join(format!("perf-live-{}.json", std::process::id())),
            )
            .build()
            .unwrap();
        let addr = handle.prometheus_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    let mut x = 1u64;
                    while !stop.load(Ordering::Relaxed) {
                        tracing::info_span!("checkout")
                            .in_scope(|| std::thread::sleep(Duration::from_millis(2)));
                        // A name that is markup: text in every view.
                        tracing::info_span!("<img src=x onerror=alert(1)>").in_scope(|| {});
                        tracing::info_span!("render").in_scope(|| {
                            for i in 0..20_000 {
                                x = x.wrapping_mul(31).wrapping_add(i);
                            }
                        });
                    }
                    std::hint::black_box(x);
                });
            })
        };
        Self {
            stop,
            thread: Some(thread),
            handle: Some(handle),
            addr,
        }
    }

    /// Stops recording and drops the layer: the endpoint goes away.
    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.handle.take();
        std::thread::sleep(Duration::from_millis(600));
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

fn perf_report() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_perf-report"));
    c.env_remove("NO_COLOR");
    c
}

#[test]
fn the_endpoint_serves_its_snapshot_and_takes_it_at_most_four_times_a_second() {
    let service = Service::start();
    std::thread::sleep(Duration::from_millis(300));
    let agent = ureq::Agent::new_with_defaults();
    let get = || -> Vec<u8> {
        agent
            .get(&format!("http://{}/snapshot.json", service.addr))
            .call()
            .unwrap()
            .body_mut()
            .read_to_vec()
            .unwrap()
    };
    let (a, b) = (get(), get());
    // Asked twice at once: the same snapshot, not two.
    assert_eq!(a, b);
    let dump = Dump::from_slice(&a).unwrap();
    assert!(
        dump.callsites
            .iter()
            .any(|c| c.name == "checkout" && c.calls > 0)
    );
    std::thread::sleep(Duration::from_millis(300));
    let later = Dump::from_slice(&get()).unwrap();
    assert!(later.run.duration_ns > dump.run.duration_ns);
}

#[test]
fn once_prints_a_window_of_the_running_process() {
    let service = Service::start();
    let out = perf_report()
        .args(["live", &service.addr, "--once", "--interval", "0.5"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("the last 0.5 s"), "{text}");
    // checkout: about 2 ms a call, so a few hundred a second at most, and
    // most of its time off the CPU.
    let row = text
        .lines()
        .find(|l| l.starts_with("checkout"))
        .unwrap_or_else(|| panic!("{text}"));
    let calls_per_s: f64 = row
        .split_whitespace()
        .nth(1)
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap();
    assert!((50.0..=600.0).contains(&calls_per_s), "{row}");
    assert!(text.contains("findings of this window:"), "{text}");
    // Every share names its whole.
    assert!(
        text.contains("self %: of the recording threads' wall time"),
        "{text}"
    );
}

#[test]
fn an_address_that_is_not_the_layer_s_endpoint_is_one_line_and_exit_2() {
    // Something that answers HTTP, but not with a snapshot.
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let addr = server.server_addr().to_ip().unwrap();
    let answering = std::thread::spawn(move || {
        if let Ok(Some(r)) = server.recv_timeout(Duration::from_secs(10)) {
            let _ = r.respond(tiny_http::Response::from_string("<html>hello</html>"));
        }
    });
    let out = perf_report()
        .args(["live", &addr.to_string()])
        .output()
        .unwrap();
    answering.join().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("not perf-layer's endpoint"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    // Nothing there at all.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = free.local_addr().unwrap().to_string();
    drop(free);
    let out = perf_report().args(["live", &gone]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("nothing answers"), "{err}");
}

/// tmux on `PATH`, or a skip (a failure under `CI=true`).
fn tmux() -> bool {
    let found = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "tmux is not on PATH: install Debian's `tmux` package"
        );
        eprintln!("skipped: tmux is not on PATH");
    }
    found
}

/// A tmux session of its own, killed when dropped.
struct Tmux(String);

impl Tmux {
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.0];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    fn pane(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", &self.0])
    }

    /// Waits up to 15 s for the pane to show `what`; returns the pane.
    fn wait_for(&self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let pane = self.pane();
            if pane.contains(what) {
                return pane;
            }
            assert!(
                Instant::now() < deadline,
                "the pane never showed {what:?}:\n{pane}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .output();
    }
}

#[test]
fn the_terminal_view_under_tmux_sorts_filters_pauses_survives_the_service_going_away_and_quits() {
    if !tmux() {
        return;
    }
    let mut service = Service::start();
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("live.json");
    let name = format!("perf-live-{}", std::process::id());
    let command = format!(
        "NO_COLOR=1 {} live {} --record {}; echo exited $?; sleep 30",
        env!("CARGO_BIN_EXE_perf-report"),
        service.addr,
        record.display()
    );
    let status = Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-s",
            &name,
            "-x",
            "120",
            "-y",
            "32",
            &command,
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let t = Tmux(name);

    // The first window: both spans, by self time, and the process line.
    let pane = t.wait_for("render");
    assert!(pane.contains("checkout"), "{pane}");
    assert!(pane.contains("sorted by self time"), "{pane}");
    assert!(pane.contains("RSS"), "{pane}");
    assert!(pane.contains("findings of this window"), "{pane}");
    // NO_COLOR: no colour escape in what the terminal got.
    let raw = t.run(&["capture-pane", "-p", "-e", "-t", &t.0]);
    assert!(
        !raw.contains("\u{1b}[3") && !raw.contains("\u{1b}[9"),
        "colour under NO_COLOR: {raw:?}"
    );

    // s: sorted by calls/s. /: a filter that keeps only render.
    t.keys(&["s"]);
    t.wait_for("sorted by calls/s");
    t.keys(&["/", "r", "e", "n", "d", "Enter"]);
    let pane = t.wait_for("/ filter [rend]");
    // (The findings below the table may still name it.)
    assert!(
        !pane.lines().any(|l| l.starts_with("│checkout")),
        "the filter let checkout through:\n{pane}"
    );
    // Esc clears it: checkout is back.
    t.keys(&["Escape"]);
    let pane = t.wait_for("│checkout");
    assert!(!pane.contains("[rend]"), "{pane}");
    t.keys(&["p"]);
    t.wait_for("PAUSED");
    t.keys(&["p"]);

    // A narrower terminal: redrawn to fit.
    t.run(&["resize-window", "-t", &t.0, "-x", "80", "-y", "24"]);
    let pane = t.wait_for("render");
    assert!(pane.lines().all(|l| l.chars().count() <= 80), "{pane}");

    // The service goes away: said, and retried; it comes back on the same
    // address and the view carries on from it.
    let addr: std::net::SocketAddr = service.addr.parse().unwrap();
    service.stop();
    t.wait_for("retrying every second");
    let _back = Service::start_on(addr);
    t.wait_for("the process restarted");

    // q: out, and the last snapshot is written as a dump.
    t.keys(&["q"]);
    t.wait_for("exited 0");
    let written = Dump::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    assert!(written.callsites.iter().any(|c| c.name == "render"));
}

mod support;

#[test]
fn a_window_is_the_exact_difference_of_two_snapshots() {
    use perf_report::live::{WindowError, WindowView, window};
    use support::{MS, Span, dump};
    // A second of 100 calls of 1 ms, then a second with 10 more of 50 ms.
    let old = dump("svc", 1_000 * MS, &[Span::new("a", 1, &[(MS, 100)])]);
    let new = dump(
        "svc",
        2_000 * MS,
        &[Span::new("a", 1, &[(MS, 100), (50 * MS, 10)])],
    );
    let w = window(&old, &new).unwrap();
    assert_eq!(w.run.duration_ns, 1_000 * MS);
    let a = &w.callsites[0];
    assert_eq!(a.calls, 10);
    assert_eq!(a.busy_ns.count, 10);
    assert_eq!(a.busy_ns.sum, 500 * MS);
    // The window's median is its own calls', not the whole run's 1 ms.
    let p50 = a.busy_ns.p50 as f64;
    assert!((p50 / (50 * MS) as f64 - 1.0).abs() < 0.01, "{p50}");
    // The watch's reading of its system calls: the window's probes.
    let (mut old, mut new) = (old, new);
    let io = |probes, writes| perf_layer::dump::WatchedIo {
        probes,
        cpu_ns: probes * 250_000,
        writes,
        written_bytes: writes * 14,
        ..Default::default()
    };
    old.callsites[0].watched_io = Some(io(10, 2_000));
    new.callsites[0].watched_io = Some(io(30, 2_500));
    let io_w = window(&old, &new).unwrap().callsites[0].watched_io;
    assert_eq!(io_w, Some(io(20, 500)));
    old.callsites[0].watched_io = new.callsites[0].watched_io;
    assert_eq!(window(&old, &new).unwrap().callsites[0].watched_io, None);
    let view = WindowView::of(&w);
    assert_eq!(view.rows.len(), 1);
    assert!((view.rows[0].calls_per_s - 10.0).abs() < 1e-9);
    // Two processes have no window between them; nor has a snapshot and
    // an older one.
    let mut other = new.clone();
    other.run.pid += 1;
    assert_eq!(window(&old, &other), Err(WindowError::Restarted));
    assert_eq!(window(&new, &old), Err(WindowError::NotLater));
}

#[test]
fn a_callsite_that_first_closes_between_snapshots_moves_no_other_s_window() {
    use perf_layer::PerfLayer;
    use perf_report::live::window;
    use tracing_subscriber::prelude::*;
    // Ids are positions in a sorted list: `a_first` closing for the first
    // time between the snapshots moves `b_then`'s id. Its window must
    // still be its 5 new calls, not its 105 since the start.
    let (layer, handle) = PerfLayer::builder()
        .without_sampler()
        .without_overhead_calibration()
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let old = tracing::dispatcher::with_default(&dispatch, || {
        for _ in 0..100 {
            tracing::info_span!("b_then").in_scope(|| ());
        }
        handle.snapshot()
    });
    std::thread::sleep(std::time::Duration::from_millis(5));
    let new = tracing::dispatcher::with_default(&dispatch, || {
        tracing::info_span!("a_first").in_scope(|| {
            for _ in 0..5 {
                tracing::info_span!("b_then").in_scope(|| ());
            }
        });
        handle.snapshot()
    });
    let id = |d: &perf_layer::dump::Dump, name: &str| {
        d.callsites.iter().find(|c| c.name == name).unwrap().id
    };
    assert_ne!(id(&old, "b_then"), id(&new, "b_then"), "the id moved");
    let w = window(&old, &new).unwrap();
    let calls = |name: &str| w.callsites.iter().find(|c| c.name == name).unwrap().calls;
    assert_eq!(calls("b_then"), 5);
    assert_eq!(calls("a_first"), 1);
    // The edge a_first -> b_then is the window's 5 calls, in its ids.
    let edge = w
        .edges
        .iter()
        .find(|e| e.parent == id(&w, "a_first") && e.child == id(&w, "b_then"))
        .expect("the new edge");
    assert_eq!(edge.calls, 5);
}

use support::{browser, server};

#[test]
fn serve_live_shows_the_process_in_the_browser_and_its_windows_move() {
    let service = Service::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    let served = server::serve(&db, &["--live", &service.addr]);
    // The API: windows of the running process, one after another.
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let live = |agent: &ureq::Agent| -> serde_json::Value {
        let text = agent
            .get(&format!("{}/api/live", served.base))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        serde_json::from_str(&text).unwrap()
    };
    assert_eq!(live(&agent)["status"], "waiting for a second snapshot");
    // The dashboard links to the live view.
    let dashboard = agent
        .get(&format!("{}/", served.base))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(
        dashboard.contains("<a href=\"/live\">Live view</a>"),
        "{dashboard:.2000}"
    );
    std::thread::sleep(Duration::from_millis(700));
    let first = live(&agent);
    std::thread::sleep(Duration::from_millis(700));
    let second = live(&agent);
    assert!(
        second["ended_at_unix_ms"].as_u64() > first["ended_at_unix_ms"].as_u64(),
        "{first} then {second}"
    );
    assert!(
        second["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "render")
    );
    // The page: its script fills the table from the API, again and again,
    // as text.
    let Some(chromium) = browser::chromium() else {
        return;
    };
    let dom = browser::run_browser(
        &chromium,
        &format!("{}/live", served.base),
        &["--dump-dom".to_owned()],
    );
    assert_eq!(browser::body_data(&dom, "errors").as_deref(), Some("0"));
    let updates: u32 = browser::body_data(&dom, "updates")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        updates >= 2,
        "the table was drawn {updates} times:\n{dom:.3000}"
    );
    assert!(dom.contains("<td>render</td>"), "{dom:.3000}");
    assert!(
        dom.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{dom:.3000}"
    );
    assert!(!dom.contains("<img"), "a span name became markup");
    // Without --live there is no live view, and the API says so as JSON.
    let plain = server::serve(&dir.path().join("other.db"), &[]);
    let mut r = agent
        .get(&format!("{}/api/live", plain.base))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert!(r.body_mut().read_to_string().unwrap().contains("--live"));
}
