//! Real servers from crates.io under the layer, each with its server and 8
//! clients in one process on a 2-worker tokio runtime:
//!
//! - **mini-redis 0.4.1**: every client does SET then GET of its own key as
//!   fast as the server answers. Its per-connection `run` span
//!   (`#[instrument]` in mini-redis) is a long-lived async span polled at
//!   every request: the shape that lost 15% of the throughput when every
//!   poll was timed on the CPU (issue 25).
//! - **axum 0.8 behind tower-http's `TraceLayer`**: a JSON-ish service with
//!   a route that computes (an `#[instrument]`ed checksum of about 50 µs)
//!   and one that awaits an upstream call (a second in-process axum server
//!   that sleeps 200 µs); every client asks three computes for each
//!   upstream call, over a keep-alive connection.
//!
//! Subjects, each in a child process of this binary (the global allocator
//! is chosen there, before the first allocation), taking turns round by
//! round so that the machine's drift cancels:
//!
//! - `floor_registry_noop_layer`: `registry()` with a no-op layer, the
//!   system allocator;
//! - `perf_layer_all`: perf-layer as a user adds it (`PerfLayer::builder()`,
//!   every feature on: sampler, CPU time, counting allocator);
//! - `perf_layer_without_task_clock`, `perf_layer_without_cpu_time`,
//!   `perf_layer_without_sampler`, `perf_layer_without_wait_watch`,
//!   `perf_layer_without_alloc` (the system allocator): one feature off
//!   each;
//! - `perf_layer_without_client_spans`, run by hand only
//!   (`PERF_SUITE_SERVER_SUBJECT=perf_layer_without_client_spans` on this
//!   binary): every feature, with mini-redis's client spans (`get`, `set`)
//!   left out by a per-layer filter, as perf-report's note on the layer's
//!   own cost suggests (docs/benchmarks.md);
//! - `clock_only_layer` ([`support::ClockOnlyLayer`]): the clock read at
//!   every callback perf-layer times and each interval counted, nothing
//!   else: the least any layer timing every span adds.
//!
//! Each child serves for a window of wall time and reports the requests
//! completed and the process's CPU time; the loss of a subject is
//! `1 - its median requests / the floor's median` over the rounds (the
//! per-round ratios are kept too: one process's luck in spreading the
//! connections over the workers moves its throughput by ±15%), and the
//! median of the per-round losses, which `scripts/bench-report`'s verdicts
//! take (a load that comes and goes moves a round's floor with its
//! subjects). Then the same rounds with two threads spinning
//! beside the server (CPU contention: the loss should not grow past 1.5×).
//! For `perf_layer_all`, the dump's own estimate of its overhead
//! (`overhead.fraction_of_run`) is set against the measured loss.
//!
//! `cargo bench --bench servers` (about 7 minutes: two servers, 24 rounds
//! of 500 ms each, quiet and with hogs; short windows taking turns often
//! cancel a shared guest's drift better than long ones: docs/benchmarks.md,
//! "Shorter windows"); `-- --quick` for two rounds of 1 s;
//! `PERF_SUITE_SERVERS=axum` for one server. `PERF_SUITE_SERVER_ROUNDS` and `PERF_SUITE_SERVER_WINDOW_MS`
//! override; `PERF_SUITE_SERVER_DUMP=path` makes each perf-layer child
//! write its dump there. Results go to `<criterion home>/servers/servers.json`, which
//! `scripts/bench-report` prints. Bounded: every child serves one window
//! and is waited for; the server binds 127.0.0.1 only.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tracing_subscriber::layer::SubscriberExt as _;

/// The global allocator of this binary: the counting allocator or the
/// system's, as `PERF_SUITE_ALLOCATOR` says when the first allocation is
/// made (before `main`, so before any thread), and never switched after:
/// a block must be freed by the allocator that made it.
struct Switch;

static COUNTING: perf_layer::CountingAllocator = perf_layer::CountingAllocator::system();
/// 0: not decided yet; 1: system; 2: counting.
static MODE: AtomicU8 = AtomicU8::new(0);

fn counting() -> bool {
    match MODE.load(Ordering::Relaxed) {
        0 => {
            // SAFETY: `getenv` with a NUL-terminated name; it allocates
            // nothing, and only the main thread runs this early.
            let value = unsafe { libc::getenv(c"PERF_SUITE_ALLOCATOR".as_ptr()) };
            // SAFETY: a non-null `getenv` result is a NUL-terminated string.
            let counting = !value.is_null()
                && unsafe { std::ffi::CStr::from_ptr(value) }.to_bytes() == b"counting";
            MODE.store(if counting { 2 } else { 1 }, Ordering::Relaxed);
            counting
        }
        mode => mode == 2,
    }
}

// SAFETY: every call goes to one allocator for the whole process (the
// choice is made once, at the first call), which upholds `GlobalAlloc`.
unsafe impl GlobalAlloc for Switch {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counting() {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { COUNTING.alloc(layout) }
        } else {
            // SAFETY: as above.
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if counting() {
            // SAFETY: `ptr` came from the same allocator (see above).
            unsafe { COUNTING.dealloc(ptr, layout) }
        } else {
            // SAFETY: as above.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if counting() {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { COUNTING.alloc_zeroed(layout) }
        } else {
            // SAFETY: as above.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if counting() {
            // SAFETY: `ptr` came from the same allocator (see above).
            unsafe { COUNTING.realloc(ptr, layout, new_size) }
        } else {
            // SAFETY: as above.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }
}

#[global_allocator]
static ALLOC: Switch = Switch;

const SUBJECT_ENV: &str = "PERF_SUITE_SERVER_SUBJECT";
const SERVER_ENV: &str = "PERF_SUITE_SERVER";
/// The servers, by the name `PERF_SUITE_SERVER` gives the child.
const SERVERS: [&str; 2] = ["mini-redis", "axum"];
const WINDOW_ENV: &str = "PERF_SUITE_SERVER_WINDOW_MS";
const CLIENTS: usize = 8;

/// A subject: its name, and whether it runs under the counting allocator.
const SUBJECTS: [(&str, bool); 8] = [
    (support::Subject::FLOOR, false),
    (support::Subject::CLOCK_ONLY, false),
    ("perf_layer_all", true),
    ("perf_layer_without_task_clock", true),
    ("perf_layer_without_cpu_time", true),
    ("perf_layer_without_sampler", true),
    ("perf_layer_without_wait_watch", true),
    ("perf_layer_without_alloc", false),
];

fn main() {
    if let Ok(subject) = std::env::var(SUBJECT_ENV) {
        child(&subject);
        return;
    }
    // `cargo bench` passes `--bench`; a filter that is not ours skips us.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    if args
        .iter()
        .any(|a| !a.starts_with("--") && !"servers".contains(a.as_str()))
    {
        return;
    }
    let rounds = env_number("PERF_SUITE_SERVER_ROUNDS").unwrap_or(if quick { 2 } else { 24 });
    let window_ms = env_number(WINDOW_ENV).unwrap_or(if quick { 1_000 } else { 500 });
    // `PERF_SUITE_SERVERS=axum` runs only the named ones.
    let only = std::env::var("PERF_SUITE_SERVERS").ok();
    let mut servers = serde_json::Map::new();
    for server in SERVERS {
        if only
            .as_deref()
            .is_some_and(|o| !o.split(',').any(|s| s == server))
        {
            continue;
        }
        let quiet = turns(server, "quiet", rounds, window_ms, false);
        let hogs = turns(server, "two CPU hogs", rounds, window_ms, true);
        servers.insert(
            server.to_owned(),
            serde_json::json!({"quiet": quiet, "hogs": hogs}),
        );
    }
    let result = serde_json::json!({
        "servers": servers,
        "clients": CLIENTS,
        "workers": 2,
        "rounds": rounds,
        "window_ms": window_ms,
    });
    support::write_result("servers", "servers.json", &result);
}

fn env_number(var: &str) -> Option<u64> {
    std::env::var(var).ok()?.parse().ok()
}

/// What one child served in its window.
#[derive(Debug, Clone, Copy)]
struct Served {
    requests: f64,
    cpu_ns: f64,
    /// The dump's estimate of the layer's share of the process's CPU.
    estimate: Option<f64>,
}

/// `rounds` rounds of every subject in turn; the medians of the per-round
/// ratios to the floor.
fn turns(server: &str, label: &str, rounds: u64, window_ms: u64, hogs: bool) -> serde_json::Value {
    let stop = Arc::new(AtomicBool::new(false));
    let hog_threads: Vec<_> = (0..if hogs { 2 } else { 0 })
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut x = 1u64;
                while !stop.load(Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            })
        })
        .collect();
    let mut per_subject: Vec<Vec<Served>> = vec![Vec::new(); SUBJECTS.len()];
    for round in 0..rounds {
        // Each round in another order, so no subject always follows another.
        let mut order: Vec<usize> = (0..SUBJECTS.len()).collect();
        order.rotate_left(round as usize % SUBJECTS.len());
        for i in order {
            per_subject[i].push(run_child(server, SUBJECTS[i], window_ms));
        }
    }
    stop.store(true, Ordering::Relaxed);
    hog_threads.into_iter().for_each(|h| h.join().unwrap());

    let floor = &per_subject[0];
    let clock_only = &per_subject[1];
    let mut subjects = serde_json::Map::new();
    eprintln!(
        "\nservers ({label}): {server}, {CLIENTS} clients, {rounds} rounds of {window_ms} ms"
    );
    for (i, (name, _)) in SUBJECTS.iter().enumerate() {
        let served = &per_subject[i];
        let losses: Vec<f64> = served
            .iter()
            .zip(floor)
            .map(|(s, f)| 1.0 - s.requests / f.requests)
            .collect();
        // The same server's throughput moves by ±15% from one process to
        // the next (how the runtime happens to spread the connections over
        // its two workers), floor included: a ratio of one run to one run
        // carries both runs' luck. The medians over rounds carry less.
        let per_s = |s: &Served| s.requests * 1e3 / window_ms as f64;
        let requests_per_s = support::median(served.iter().map(per_s).collect());
        let floor_per_s = support::median(floor.iter().map(per_s).collect());
        let loss = 1.0 - requests_per_s / floor_per_s;
        // The median of the per-round losses: each round's subjects run
        // within seconds of each other, so a load that comes and goes (a
        // build beside the bench) moves a round's floor with its subjects
        // and cancels; the ratio of medians can pair one subject's slow
        // rounds with the floor's fast ones (27% against 8% per round, seen
        // with two compilations running).
        let paired_loss = support::median(losses.clone());
        // Against the clock floor, round by round: the part of the loss a
        // layer that reads the clock at every callback could still cut.
        let over_clock = support::median(
            served
                .iter()
                .zip(clock_only)
                .map(|(s, c)| 1.0 - s.requests / c.requests)
                .collect(),
        );
        let per_request = |s: &Served| s.cpu_ns / s.requests;
        let cpu_per_request = support::median(served.iter().map(per_request).collect())
            / support::median(floor.iter().map(per_request).collect());
        let estimate = {
            let e: Vec<f64> = served.iter().filter_map(|s| s.estimate).collect();
            (!e.is_empty()).then(|| support::median(e))
        };
        eprintln!(
            "  {name:<32} {requests_per_s:>9.0} req/s  loss {:>6.2}% (per round {:>6.2}%, over the clock floor {:>6.2}%)  CPU/request {cpu_per_request:.3}×{}",
            loss * 100.0,
            paired_loss * 100.0,
            over_clock * 100.0,
            estimate.map_or_else(String::new, |e| format!("  estimate {:.2}%", e * 100.0))
        );
        let rounds: Vec<String> = losses.iter().map(|l| format!("{:.1}", l * 100.0)).collect();
        eprintln!("  {:<32} rounds: {}", "", rounds.join(" "));
        subjects.insert(
            (*name).to_owned(),
            serde_json::json!({
                "requests_per_s": requests_per_s,
                "loss": loss,
                "paired_loss": paired_loss,
                "paired_loss_over_clock_floor": over_clock,
                "round_losses": losses,
                "cpu_per_request_ratio": cpu_per_request,
                "estimate": estimate,
            }),
        );
    }
    serde_json::Value::Object(subjects)
}

/// Runs one subject in a child process of this binary for one window.
fn run_child(server: &str, (name, counting): (&str, bool), window_ms: u64) -> Served {
    let exe = std::env::current_exe().expect("the bench binary's path");
    let output = Command::new(exe)
        .env(SUBJECT_ENV, name)
        .env(SERVER_ENV, server)
        .env(WINDOW_ENV, window_ms.to_string())
        .env(
            "PERF_SUITE_ALLOCATOR",
            if counting { "counting" } else { "system" },
        )
        .output()
        .expect("the bench binary runs as a child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| {
            panic!(
                "{name}: no result from the child ({}):\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )
        });
    let v: serde_json::Value = serde_json::from_str(line).expect("the child's JSON line");
    Served {
        requests: v["requests"].as_f64().unwrap_or(0.0).max(1.0),
        cpu_ns: v["cpu_ns"].as_f64().unwrap_or(0.0),
        estimate: v["estimate"].as_f64(),
    }
}

/// The child: one subject's subscriber, the server and its clients for one
/// window, then one JSON line on standard output.
fn child(subject: &str) {
    let window = Duration::from_millis(env_number(WINDOW_ENV).unwrap_or(1_500));
    let handle = match subject {
        support::Subject::FLOOR => {
            tracing::dispatcher::set_global_default(support::Subject::floor().dispatch)
                .expect("one global subscriber");
            None
        }
        support::Subject::CLOCK_ONLY => {
            tracing::dispatcher::set_global_default(support::Subject::clock_only().dispatch)
                .expect("one global subscriber");
            None
        }
        _ => {
            let builder = perf_layer::PerfLayer::builder().output_path(
                std::env::temp_dir()
                    .join(format!("perf-suite-servers-{}.json", std::process::id())),
            );
            let builder = match subject {
                "perf_layer_without_cpu_time" => builder.without_cpu_time(),
                "perf_layer_without_task_clock" => builder.without_task_clock(),
                "perf_layer_without_sampler" => builder.without_sampler(),
                "perf_layer_without_wait_watch" => builder.without_wait_watch(),
                _ => builder,
            };
            let (layer, handle) = builder.build().expect("a valid configuration");
            if subject == "perf_layer_without_client_spans" {
                // What perf-report's note on the layer's own cost suggests
                // for mini-redis: its client's spans, which it names first,
                // left out of the layer by a per-layer filter.
                use tracing_subscriber::Layer as _;
                let filter = tracing_subscriber::filter::filter_fn(|m| {
                    !(m.is_span() && m.target() == "mini_redis::client")
                });
                tracing::subscriber::set_global_default(
                    tracing_subscriber::registry().with(layer.with_filter(filter)),
                )
                .expect("one global subscriber");
            } else {
                tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
                    .expect("one global subscriber");
            }
            Some(handle)
        }
    };
    let requests = Arc::new(AtomicU64::new(0));
    let cpu_at_start = support::process_cpu_time();
    match std::env::var(SERVER_ENV).as_deref() {
        Ok("axum") => two_workers().block_on(serve_axum(window, Arc::clone(&requests))),
        _ => two_workers().block_on(serve(window, Arc::clone(&requests))),
    }
    let cpu = support::process_cpu_time() - cpu_at_start;
    // The dump's whole overhead record rides along, for reading the
    // estimate's terms against the measured loss; the whole dump is written
    // where `PERF_SUITE_SERVER_DUMP` says, for perf-report.
    let overhead = handle.map(|h| {
        if let Ok(path) = std::env::var("PERF_SUITE_SERVER_DUMP") {
            h.write_dump_to(path).expect("the dump is written");
        }
        h.snapshot().overhead
    });
    println!(
        "{}",
        serde_json::json!({
            "requests": requests.load(Ordering::Relaxed),
            "cpu_ns": cpu.as_nanos() as u64,
            "estimate": overhead.as_ref().map(|o| o.fraction_of_run),
            "overhead": overhead,
        })
    );
}

/// A tokio runtime of two workers, as a server would run on this machine.
fn two_workers() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// `CLIENTS` clients of the mini-redis server at `addr`, each doing SET
/// then GET of its own key until `window` is over.
async fn clients(addr: std::net::SocketAddr, window: Duration, requests: Arc<AtomicU64>) {
    let deadline = Instant::now() + window;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let requests = Arc::clone(&requests);
            tokio::spawn(async move {
                let mut client = mini_redis::client::connect(addr)
                    .await
                    .expect("the server accepts");
                let key = format!("key-{i}");
                let value = bytes::Bytes::from(vec![b'x'; 64]);
                while Instant::now() < deadline {
                    client.set(&key, value.clone()).await.expect("SET");
                    let got = client.get(&key).await.expect("GET");
                    assert!(got.is_some());
                    requests.fetch_add(2, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for c in clients {
        c.await.expect("a client finished");
    }
}

/// The server on 127.0.0.1 and `CLIENTS` clients until `window` is over.
async fn serve(window: Duration, requests: Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let _ = mini_redis::server::run(listener, async {
            let _ = stop_rx.await;
        })
        .await;
    });
    clients(addr, window, requests).await;
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
}

/// The compute route's own work: about 50 µs of checksum.
#[tracing::instrument(skip_all)]
fn checksum(rounds: u64) -> u64 {
    let mut x = 0xcbf2_9ce4_8422_2325_u64;
    for i in 0..rounds {
        x = (x ^ i).wrapping_mul(0x0100_0000_01b3);
    }
    std::hint::black_box(x)
}

async fn compute_route() -> String {
    checksum(60_000).to_string()
}

/// The upstream route: one GET to the upstream server, over a connection of
/// its own (as a client without a pool makes one).
async fn upstream_route(upstream: std::net::SocketAddr) -> String {
    let stream = tokio::net::TcpStream::connect(upstream)
        .await
        .expect("the upstream accepts");
    let mut stream = tokio::io::BufStream::new(stream);
    get(&mut stream, "/data").await.len().to_string()
}

/// One HTTP/1.1 GET over a keep-alive connection, its body returned.
async fn get(stream: &mut tokio::io::BufStream<tokio::net::TcpStream>, path: &str) -> Vec<u8> {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
    let request = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("a request");
    stream.flush().await.expect("a request");
    let mut length = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        if stream.read_line(&mut line).await.expect("a response") == 0 || line == "\r\n" {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().expect("a length");
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.expect("a body");
    body
}

/// The axum service behind `TraceLayer` on 127.0.0.1, its upstream, and
/// `CLIENTS` clients until `window` is over.
async fn serve_axum(window: Duration, requests: Arc<AtomicU64>) {
    use axum::Router;
    use axum::routing::get as route;
    let upstream_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let upstream_addr = upstream_listener.local_addr().expect("its address");
    let upstream = Router::new().route(
        "/data",
        route(|| async {
            tokio::time::sleep(Duration::from_micros(200)).await;
            "x".repeat(256)
        }),
    );
    tokio::spawn(async move { axum::serve(upstream_listener, upstream).await });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    let app = Router::new()
        .route("/compute", route(compute_route))
        .route("/upstream", route(move || upstream_route(upstream_addr)))
        .layer(tower_http::trace::TraceLayer::new_for_http());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let deadline = Instant::now() + window;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let requests = Arc::clone(&requests);
            tokio::spawn(async move {
                let stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .expect("the service accepts");
                let mut stream = tokio::io::BufStream::new(stream);
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let path = if i % 4 == 3 { "/upstream" } else { "/compute" };
                    assert!(!get(&mut stream, path).await.is_empty());
                    requests.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    for c in clients {
        c.await.expect("a client finished");
    }
}
