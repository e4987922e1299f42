//! The harness the benchmarks share: criterion settings sized for a small
//! shared machine, the subscribers under test (baselines, perf-layer in its
//! configurations, and the peers), the span workloads, and a multithreaded
//! runner (N threads, a `Barrier`, `dispatcher::with_default`, core pinning).
//!
//! Every bench binary includes this module but uses only part of it.
#![allow(dead_code)]

use std::any::Any;
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::Criterion;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use tracing::{Dispatch, Instrument as _};
use tracing_subscriber::layer::{Layer, SubscriberExt as _};

/// Short runs: the whole suite has to finish in minutes on two shared cores.
/// Noise is handled by comparing ratios within one run, not by long runs.
/// Wall time: for benches whose threads run in parallel.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args()
}

/// As [`criterion`], measuring the benchmark thread's CPU time instead of
/// wall time: on a machine shared with other work, time this thread spends
/// descheduled is not counted. Work a subscriber hands to a thread of its
/// own (tracing-chrome's writer, perf-layer's sampler) is not counted either.
pub fn criterion_cpu() -> Criterion<ThreadTime> {
    Criterion::default()
        .with_measurement(ThreadTime)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args()
}

/// The calling thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a
    // constant the kernel supports on every Linux this runs on.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The whole process's CPU time, every thread (`CLOCK_PROCESS_CPUTIME_ID`).
pub fn process_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: as in `thread_cpu_time`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Criterion measurement: CPU time of the benchmarking thread, in ns.
pub struct ThreadTime;

impl Measurement for ThreadTime {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        thread_cpu_time()
    }
    fn end(&self, start: Duration) -> Duration {
        thread_cpu_time().saturating_sub(start)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        WallTime.formatter()
    }
}

/// A layer that does nothing: `registry().with(NoopLayer)` is the floor.
/// A bare `registry()` keeps closed spans alive (tracing issue #900), so it
/// would flatter the layers measured against it.
pub struct NoopLayer;

impl<S: tracing::Subscriber> Layer<S> for NoopLayer {}

/// The least a layer that times every span does: it reads the clock at
/// each of the four callbacks perf-layer times (a span's creation, every
/// enter and exit, its close) and counts each entered interval into a
/// per-thread power-of-two histogram. It keeps no state per span, no
/// callsite, no self time, no allocation or CPU figure: it is not a
/// profiler, only the floor under any profiler that timestamps those
/// callbacks. A target below this layer's ratio cannot be met by reading
/// the clock at each of them (issue 25's lifecycle and server targets are
/// set against it in `scripts/bench-report`).
pub struct ClockOnlyLayer {
    clock: quanta::Clock,
}

thread_local! {
    static CLOCK_ONLY: std::cell::RefCell<ClockOnlyThread> = std::cell::RefCell::new(ClockOnlyThread {
        entered: Vec::with_capacity(64),
        counts: [0; 64],
        last_created: 0,
    });
}

struct ClockOnlyThread {
    /// Entered spans and the clock at their enter, innermost last.
    entered: Vec<(u64, u64)>,
    /// Intervals by the power of two of their nanoseconds.
    counts: [u64; 64],
    /// The clock at this thread's last span creation.
    last_created: u64,
}

impl ClockOnlyThread {
    fn count(&mut self, clock: &quanta::Clock, from: u64, to: u64) {
        let ns = clock.delta_as_nanos(from, to);
        self.counts[(64 - ns.leading_zeros() as usize).min(63)] += 1;
    }
}

impl ClockOnlyLayer {
    pub fn new() -> Self {
        Self {
            clock: quanta::Clock::new(),
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for ClockOnlyLayer {
    fn on_new_span(
        &self,
        _: &tracing::span::Attributes<'_>,
        _: &tracing::span::Id,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let now = self.clock.raw();
        let _ = CLOCK_ONLY.try_with(|t| t.borrow_mut().last_created = now);
    }

    fn on_enter(&self, id: &tracing::span::Id, _: tracing_subscriber::layer::Context<'_, S>) {
        let now = self.clock.raw();
        let _ = CLOCK_ONLY.try_with(|t| t.borrow_mut().entered.push((id.into_u64(), now)));
    }

    fn on_exit(&self, id: &tracing::span::Id, _: tracing_subscriber::layer::Context<'_, S>) {
        let now = self.clock.raw();
        let _ = CLOCK_ONLY.try_with(|t| {
            let mut t = t.borrow_mut();
            if let Some(at) = t
                .entered
                .iter()
                .rposition(|(span, _)| *span == id.into_u64())
            {
                let (_, entered) = t.entered.remove(at);
                t.count(&self.clock, entered, now);
            }
        });
    }

    fn on_close(&self, _: tracing::span::Id, _: tracing_subscriber::layer::Context<'_, S>) {
        let now = self.clock.raw();
        let _ = CLOCK_ONLY.try_with(|t| {
            let mut t = t.borrow_mut();
            let created = t.last_created;
            t.count(&self.clock, created, now);
        });
    }
}

/// The middle of `values` once sorted (the upper one of an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// One subscriber under test. The name is the benchmark id, so it says which
/// baseline or configuration it is.
pub struct Subject {
    pub name: &'static str,
    pub dispatch: Dispatch,
    /// Flush guards and handles that must outlive the measurement.
    _keep: Box<dyn Any>,
}

impl Subject {
    /// The floor's name: the baseline every ratio is over.
    pub const FLOOR: &'static str = "floor_registry_noop_layer";
    /// The clock floor's name ([`ClockOnlyLayer`]).
    pub const CLOCK_ONLY: &'static str = "clock_only_layer";

    fn new(name: &'static str, dispatch: Dispatch, keep: impl Any) -> Self {
        Self {
            name,
            dispatch,
            _keep: Box::new(keep),
        }
    }

    /// Tracing's own cost with nothing listening: the callsite is disabled.
    pub fn no_subscriber() -> Self {
        Self::new("no_subscriber", Dispatch::none(), ())
    }

    /// The floor: the registry with a no-op layer.
    pub fn floor() -> Self {
        let subscriber = tracing_subscriber::registry().with(NoopLayer);
        Self::new(Self::FLOOR, Dispatch::new(subscriber), ())
    }

    /// The clock floor: [`ClockOnlyLayer`] on the registry.
    pub fn clock_only() -> Self {
        let subscriber = tracing_subscriber::registry().with(ClockOnlyLayer::new());
        Self::new(Self::CLOCK_ONLY, Dispatch::new(subscriber), ())
    }

    /// perf-layer without the sampler. In a binary whose global allocator is
    /// the counting allocator this also counts allocations; the name the
    /// caller gives says which.
    pub fn perf_layer(name: &'static str) -> Self {
        let (layer, handle) = perf_layer::PerfLayer::builder()
            .without_sampler()
            .build()
            .expect("default configuration is valid");
        let subscriber = tracing_subscriber::registry().with(layer);
        Self::new(name, Dispatch::new(subscriber), handle)
    }

    /// perf-layer without the sampler, grouping spans by their `uri` field
    /// (`group_by(["uri"])`, issue 23).
    pub fn perf_layer_grouped(name: &'static str) -> Self {
        let (layer, handle) = perf_layer::PerfLayer::builder()
            .without_sampler()
            .group_by(["uri"])
            .build()
            .expect("default configuration is valid");
        let subscriber = tracing_subscriber::registry().with(layer);
        Self::new(name, Dispatch::new(subscriber), handle)
    }

    /// perf-layer with the background sampler at its default interval.
    pub fn perf_layer_sampler(name: &'static str) -> Self {
        let (layer, handle) = perf_layer::PerfLayer::builder()
            .sampler_interval(Duration::from_millis(100))
            .build()
            .expect("default configuration is valid");
        let subscriber = tracing_subscriber::registry().with(layer);
        Self::new(name, Dispatch::new(subscriber), handle)
    }

    /// perf-layer with the sampler and an idle Prometheus endpoint on a free
    /// loopback port (nothing scrapes it).
    pub fn perf_layer_prometheus(name: &'static str) -> Self {
        let (layer, handle) = perf_layer::PerfLayer::builder()
            .sampler_interval(Duration::from_millis(100))
            .prometheus(([127, 0, 0, 1], 0).into())
            .build()
            .expect("a free loopback port");
        let subscriber = tracing_subscriber::registry().with(layer);
        Self::new(name, Dispatch::new(subscriber), handle)
    }

    /// tracing-timing as a layer, recording a sample at every span close.
    pub fn peer_tracing_timing() -> Self {
        let layer = tracing_timing::Builder::default()
            .span_close_events()
            .layer(|| tracing_timing::Histogram::new_with_max(1_000_000_000, 2).unwrap());
        let subscriber = tracing_subscriber::registry().with(layer);
        Self::new("peer_tracing_timing", Dispatch::new(subscriber), ())
    }

    /// tracing-flame writing folded stacks to a sink.
    pub fn peer_tracing_flame() -> Self {
        let layer = tracing_flame::FlameLayer::new(std::io::sink());
        let guard = layer.flush_on_drop();
        let subscriber = tracing_subscriber::registry().with(layer);
        Self::new("peer_tracing_flame", Dispatch::new(subscriber), guard)
    }

    /// tracing-chrome writing its trace to a sink (it serializes on a
    /// background thread, which on two cores runs beside the benchmark).
    pub fn peer_tracing_chrome() -> Self {
        let (layer, guard) = tracing_chrome::ChromeLayerBuilder::new()
            .writer(std::io::sink())
            .build();
        let subscriber = tracing_subscriber::registry().with(layer);
        Self::new("peer_tracing_chrome", Dispatch::new(subscriber), guard)
    }

    /// tracing-opentelemetry with the OpenTelemetry SDK, spans handed to
    /// an in-memory exporter as they end (the simple processor: the whole
    /// cost on the span's thread, as thread CPU time counts it). The
    /// exporter keeps every span, so this peer's memory grows while it is
    /// benched (a few hundred bytes a span).
    pub fn peer_tracing_opentelemetry() -> Self {
        use opentelemetry::trace::TracerProvider as _;
        let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"));
        let subscriber = tracing_subscriber::registry().with(layer);
        Self::new(
            "peer_tracing_opentelemetry",
            Dispatch::new(subscriber),
            (provider, exporter),
        )
    }

    /// The peers.
    pub fn peers() -> Vec<Self> {
        vec![
            Self::peer_tracing_timing(),
            Self::peer_tracing_flame(),
            Self::peer_tracing_chrome(),
            Self::peer_tracing_opentelemetry(),
        ]
    }
}

/// One span's whole lifecycle: new, enter, exit, close.
#[inline(never)]
pub fn span_lifecycle() {
    let span = tracing::info_span!("lifecycle");
    let _entered = span.enter();
    black_box(&span);
}

/// A span with a `uri` field, one of eight paths in turn: what a grouped
/// layer reads, hashes and files under its group.
pub fn span_with_uri() {
    const URIS: [&str; 8] = [
        "/",
        "/health",
        "/orders",
        "/orders/new",
        "/export",
        "/login",
        "/logout",
        "/static/app.js",
    ];
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let uri = URIS[NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % URIS.len()];
    let span = tracing::info_span!("request", uri);
    let _entered = span.enter();
    black_box(&span);
}

/// An `#[instrument]`ed function with one recorded argument.
#[inline(never)]
#[tracing::instrument]
pub fn instrumented(n: u64) -> u64 {
    black_box(n)
}

/// Three spans of three callsites, each inside the one before.
#[inline(never)]
pub fn nested_3() {
    tracing::info_span!("outer").in_scope(|| {
        tracing::info_span!("middle").in_scope(|| {
            tracing::info_span!("inner").in_scope(|| black_box(()));
        });
    });
}

/// A future that is pending `polls - 1` times before it completes, so an
/// instrumented span around it is entered and exited `polls` times.
pub struct YieldTimes(pub u32);

impl Future for YieldTimes {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if self.0 <= 1 {
            Poll::Ready(())
        } else {
            self.0 -= 1;
            Poll::Pending
        }
    }
}

/// How many times [`async_span`] polls its future.
pub const ASYNC_POLLS: u32 = 4;

/// An instrumented future polled [`ASYNC_POLLS`] times with a no-op waker,
/// no runtime: one span, entered and exited at every poll.
#[inline(never)]
pub fn async_span() {
    let future = YieldTimes(ASYNC_POLLS).instrument(tracing::info_span!("async_task"));
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    while future.as_mut().poll(&mut cx).is_pending() {}
}

/// A span of one of two callsites, chosen by `which`, so two threads can
/// close spans of distinct callsites.
#[inline(never)]
pub fn span_of_callsite(which: usize) {
    let span = if which == 0 {
        tracing::info_span!("callsite_a")
    } else {
        tracing::info_span!("callsite_b")
    };
    let _entered = span.enter();
    black_box(&span);
}

/// What [`run_threads`] measured: the wall time of the parallel section and
/// the most CPU time any one thread spent in it.
#[derive(Debug, Clone, Copy)]
pub struct ThreadsTook {
    pub wall: Duration,
    pub max_cpu: Duration,
}

/// Runs `work(thread_index)` on `threads` threads at once, each with
/// `dispatch` as its default and pinned to its own core (where the machine
/// has enough), all released together by a barrier.
pub fn run_threads(
    threads: usize,
    dispatch: &Dispatch,
    work: impl Fn(usize) + Send + Sync + 'static,
) -> ThreadsTook {
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let barrier = Arc::new(Barrier::new(threads));
    let work = Arc::new(work);
    let handles: Vec<_> = (0..threads)
        .map(|index| {
            let barrier = Arc::clone(&barrier);
            let work = Arc::clone(&work);
            let dispatch = dispatch.clone();
            let core = cores.get(index % cores.len().max(1)).copied();
            std::thread::spawn(move || {
                if let Some(core) = core {
                    core_affinity::set_for_current(core);
                }
                tracing::dispatcher::with_default(&dispatch, || {
                    barrier.wait();
                    let (start, start_cpu) = (Instant::now(), thread_cpu_time());
                    work(index);
                    (start.elapsed(), thread_cpu_time() - start_cpu)
                })
            })
        })
        .collect();
    let took: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().expect("benchmark thread panicked"))
        .collect();
    ThreadsTook {
        wall: took.iter().map(|t| t.0).max().unwrap_or_default(),
        max_cpu: took.iter().map(|t| t.1).max().unwrap_or_default(),
    }
}

/// The four lifecycle workloads, by the name their criterion group carries.
pub const WORKLOADS: [(&str, fn()); 4] = [
    ("span", span_lifecycle),
    ("instrument_fn", || {
        black_box(instrumented(black_box(7)));
    }),
    ("nested_3", nested_3),
    ("async_4_polls", async_span),
];

/// One criterion group per workload, `<binary>.<workload>`, each holding
/// every subject, baselines first, so ratios come from one run.
pub fn lifecycle_groups(c: &mut Criterion<ThreadTime>, binary: &str, subjects: &[Subject]) {
    workload_groups(c, binary, subjects, &WORKLOADS);
}

/// [`lifecycle_groups`] over the given workloads.
pub fn workload_groups(
    c: &mut Criterion<ThreadTime>,
    binary: &str,
    subjects: &[Subject],
    workloads: &[(&str, fn())],
) {
    for &(workload, run) in workloads {
        let mut group = c.benchmark_group(format!("{binary}.{workload}"));
        for subject in subjects {
            group.bench_function(subject.name, |b| {
                tracing::dispatcher::with_default(&subject.dispatch, || b.iter(run));
            });
        }
        group.finish();
    }
}

/// Where criterion keeps its results: `$CRITERION_HOME`, else
/// `$CARGO_TARGET_DIR/criterion`, else `target/criterion`.
pub fn criterion_home() -> std::path::PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| "target".into(), std::path::PathBuf::from);
    target.join("criterion")
}

/// Writes a bench's own result beside criterion's, as
/// `<criterion home>/<group>/<file>`, for `scripts/bench-report`. A failure
/// is reported and the bench goes on.
pub fn write_result(group: &str, file: &str, value: &serde_json::Value) {
    let dir = criterion_home().join(group);
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        std::fs::write(
            dir.join(file),
            serde_json::to_vec_pretty(value).expect("plain JSON values"),
        )
    });
    if let Err(e) = written {
        eprintln!("{group}: cannot write {}: {e}", dir.display());
    }
}
