//! The layer in real subscriber stacks: many threads, per-layer filters,
//! EnvFilter, a fmt layer beside it, `#[instrument]` on sync and async code,
//! and dumps written to disk.

use std::time::Duration;

use perf_layer::PerfLayer;
use perf_layer::dump::Dump;
use tracing::{Dispatch, info_span, instrument};
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::prelude::*;

fn quiet_builder() -> perf_layer::PerfLayerBuilder {
    PerfLayer::builder()
        .without_sampler()
        .without_overhead_calibration()
}

/// A count of every callsite named `name`, added up.
fn sum_of(dump: &Dump, name: &str, count: impl Fn(&perf_layer::dump::CallsiteStats) -> u64) -> u64 {
    dump.callsites
        .iter()
        .filter(|c| c.name == name)
        .map(count)
        .sum()
}

fn calls(dump: &Dump, name: &str) -> u64 {
    sum_of(dump, name, |c| c.calls)
}

#[test]
fn n_threads_times_m_spans_are_all_recorded_exactly_once() {
    const THREADS: usize = 4;
    const SPANS: u64 = 5_000;
    let (layer, handle) = quiet_builder().build().unwrap();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            let dispatch = dispatch.clone();
            s.spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    for _ in 0..SPANS {
                        info_span!("worker").in_scope(|| info_span!("step").in_scope(|| {}));
                    }
                })
            });
        }
    });
    let dump = handle.snapshot();
    let expected = THREADS as u64 * SPANS;
    assert_eq!(calls(&dump, "worker"), expected);
    assert_eq!(calls(&dump, "step"), expected);
    assert_eq!(dump.edges.iter().map(|e| e.calls).sum::<u64>(), expected);
    assert_eq!(dump.overhead.spans, 2 * expected);
}

#[test]
fn works_under_a_per_layer_filter_beside_a_fmt_layer() {
    let (layer, handle) = quiet_builder().build().unwrap();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink))
        .with(layer.with_filter(LevelFilter::INFO));
    tracing::subscriber::with_default(subscriber, || {
        info_span!("kept").in_scope(|| {
            tracing::debug_span!("filtered_out").in_scope(|| {
                info_span!("grandchild").in_scope(|| {});
            });
        });
    });
    let dump = handle.snapshot();
    assert_eq!(calls(&dump, "kept"), 1);
    assert_eq!(calls(&dump, "grandchild"), 1);
    assert_eq!(calls(&dump, "filtered_out"), 0);
    // The filtered span is skipped: the grandchild's parent is `kept`.
    let id = |name: &str| dump.callsites.iter().find(|c| c.name == name).unwrap().id;
    assert!(
        dump.edges
            .iter()
            .any(|e| e.parent == id("kept") && e.child == id("grandchild"))
    );
}

#[test]
fn works_with_env_filter() {
    let (layer, handle) = quiet_builder().build().unwrap();
    let subscriber = tracing_subscriber::registry()
        .with(EnvFilter::new("layer_integration=info,off"))
        .with(layer);
    tracing::subscriber::with_default(subscriber, || {
        info_span!("seen").in_scope(|| {});
        info_span!(target: "elsewhere", "unseen").in_scope(|| {});
    });
    let dump = handle.snapshot();
    assert_eq!((calls(&dump, "seen"), calls(&dump, "unseen")), (1, 0));
}

#[instrument]
fn parse(input: &str) -> usize {
    input.split(',').count()
}

#[instrument]
async fn fetch(delay_ms: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    tokio::task::yield_now().await;
    delay_ms
}

#[test]
fn instrumented_sync_and_async_functions_on_a_multi_threaded_runtime() {
    let (layer, handle) = quiet_builder().build().unwrap();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .on_thread_start({
            let dispatch = dispatch.clone();
            move || {
                // Leaked guard: the worker threads use this dispatcher for life.
                std::mem::forget(tracing::dispatcher::set_default(&dispatch));
            }
        })
        .build()
        .unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        assert_eq!(parse("a,b,c"), 3);
        runtime.block_on(async {
            let tasks: Vec<_> = (0..8).map(|i| tokio::spawn(fetch(10 + i))).collect();
            for task in tasks {
                task.await.unwrap();
            }
        });
    });
    drop(runtime);
    let dump = handle.snapshot();
    assert_eq!(calls(&dump, "parse"), 1);
    let fetch = dump.callsites.iter().find(|c| c.name == "fetch").unwrap();
    assert_eq!(fetch.calls, 8);
    // Each task slept at least 10 ms, almost all of it idle, not busy.
    assert!(
        fetch.wall_ns.min >= 10_000_000,
        "wall {:?}",
        fetch.wall_ns.min
    );
    assert!(
        fetch.idle_ns.sum > fetch.busy_ns.sum * 5,
        "idle {} busy {}",
        fetch.idle_ns.sum,
        fetch.busy_ns.sum
    );
}

#[test]
fn dumps_round_trip_losslessly_through_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump.json");
    let (layer, handle) = quiet_builder().output_path(&path).build().unwrap();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..200u64 {
            info_span!("varied").in_scope(|| std::thread::sleep(Duration::from_micros(i % 7)));
        }
    });
    let before = handle.snapshot();
    assert_eq!(handle.write_dump().unwrap(), path);
    let after = Dump::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    after.validate_histograms().unwrap();
    let (a, b) = (&before.callsites[0], &after.callsites[0]);
    for (x, y) in [
        (&a.wall_ns, &b.wall_ns),
        (&a.busy_ns, &b.busy_ns),
        (&a.self_ns, &b.self_ns),
    ] {
        assert_eq!(x.decode().unwrap(), y.decode().unwrap());
        assert_eq!((x.count, x.sum), (y.count, y.sum));
    }
    // Nothing but the dump is left in the directory: the temporary file was renamed.
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files, vec![std::ffi::OsString::from("dump.json")]);
}

#[test]
fn an_unwritable_output_path_is_an_error_and_the_program_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    // The directory exists when the layer is built (`build` checks it) and
    // is gone by the time the dump is written.
    let missing = dir.path().join("missing-dir");
    std::fs::create_dir(&missing).unwrap();
    let path = missing.join("dump.json");
    let (layer, handle) = quiet_builder().output_path(&path).build().unwrap();
    std::fs::remove_dir(&missing).unwrap();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        info_span!("before").in_scope(|| {});
        let err = handle.write_dump().unwrap_err();
        assert!(err.to_string().contains("missing-dir"), "{err}");
        {
            let _guard = handle.dump_on_drop(); // reports on stderr, does not panic
        }
        info_span!("after").in_scope(|| {});
    });
    assert_eq!(calls(&handle.snapshot(), "after"), 1);
}

#[test]
fn field_values_never_reach_the_dump() {
    let (layer, handle) = quiet_builder().build().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        info_span!("login", password = "hunter2-secret").in_scope(|| {});
    });
    let json = serde_json::to_string(&handle.snapshot()).unwrap();
    assert!(json.contains("login"));
    assert!(!json.contains("hunter2-secret"));
}

#[test]
fn invalid_configuration_is_refused_with_the_setting_named() {
    let err = PerfLayer::builder()
        .histogram_sigfig(9)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("significant digits"), "{err}");
    let err = PerfLayer::builder().max_edges(0).build().unwrap_err();
    assert!(err.to_string().contains("max_edges"), "{err}");
}

#[test]
fn the_sampler_records_a_timeline_and_rss_deltas() {
    let (layer, handle) = PerfLayer::builder()
        .sampler_interval(Duration::from_millis(10))
        .rss_alert(1) // every process is above one byte: exactly one alert
        .without_overhead_calibration()
        .build()
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        info_span!("long").in_scope(|| std::thread::sleep(Duration::from_millis(120)));
    });
    let dump = handle.snapshot();
    assert!(
        dump.timeline.samples.len() >= 5,
        "{} samples",
        dump.timeline.samples.len()
    );
    assert!(dump.timeline.samples.iter().all(|s| s.rss_bytes > 0));
    assert!(dump.callsites[0].rss_delta.is_some());
    assert_eq!(dump.alerts.len(), 1, "{:?}", dump.alerts);
}

#[test]
fn the_overhead_estimate_is_the_calibrated_cost_times_the_spans_and_timed_intervals() {
    let (layer, handle) = PerfLayer::builder().without_sampler().build().unwrap();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        for _ in 0..100 {
            info_span!("work").in_scope(|| std::hint::black_box(0));
        }
    });
    let first = handle.snapshot().overhead;
    // Every span costs the layer something, so the calibration finds more
    // than zero (it is clamped at zero when the rounds disagree).
    assert!(first.per_span_ns > 0.0, "{first:?}");
    assert_eq!(first.spans, 100);
    // A callsite's first interval on a thread is timed on the CPU (on
    // Linux), and the next ones while the first call's own set-up keeps
    // their moving mean over the threshold (the newest weighs 1/64: a 10 ms
    // first call fades within about 300, so all 100 may be); of the short
    // ones after that, one in 512. They cost what the calibration found
    // beside the span's (in an unoptimised build the span's own cost can
    // hide it, so it is only counted here).
    if cfg!(target_os = "linux") {
        let timed = first.timed_intervals;
        assert!((1..=100).contains(&timed), "{first:?}");
    }
    // One interval per span: no further polls to pay for.
    assert_eq!(first.intervals, 100);
    // 400 callbacks, about 6 of them timed as they ran: too few, so the
    // calibrated model stands in for the callbacks. No counting allocator
    // in this binary, no background thread.
    assert!(first.callbacks_sampled < 16, "{first:?}");
    assert_eq!((first.allocations, first.background_cpu_ns), (0, 0));
    let called = first.called_intervals as f64;
    let clock_timed = (first.timed_intervals - first.called_intervals) as f64;
    assert_eq!(
        first.estimated_ns,
        (first.per_span_ns * 100.0
            + first.per_timed_interval_ns * clock_timed
            + first.per_called_interval_ns * called) as u64
    );
    // Calibrated once per handle: the next snapshot reuses the figures.
    let second = handle.snapshot().overhead;
    assert_eq!(second.per_span_ns, first.per_span_ns);
    assert_eq!(second.per_timed_interval_ns, first.per_timed_interval_ns);
}

#[test]
fn on_a_longer_run_the_overhead_estimate_is_the_callbacks_timed_as_they_ran() {
    let (layer, handle) = PerfLayer::builder().without_sampler().build().unwrap();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    let spans = 10_000u64;
    tracing::dispatcher::with_default(&dispatch, || {
        for _ in 0..spans {
            info_span!("work").in_scope(|| std::hint::black_box(0));
        }
    });
    let o = handle.snapshot().overhead;
    // Four callbacks a span (new, enter, exit, close); one in about 64
    // timed, each standing for the callbacks since the one before.
    let callbacks = 4 * spans;
    assert!(
        o.callbacks <= callbacks && o.callbacks + 128 > callbacks,
        "{o:?}"
    );
    assert!((400..=900).contains(&o.callbacks_sampled), "{o:?}");
    // The callbacks' measured time, less one clock read per callback (the
    // samples' own timing), is the estimate: no allocator, no sampler here.
    assert!(o.per_clock_read_ns > 0.0, "{o:?}");
    let measured = o.callbacks_ns as f64 - o.per_clock_read_ns * o.callbacks as f64;
    assert_eq!(o.estimated_ns, measured.max(0.0) as u64, "{o:?}");
    // A span's four callbacks take some time, and not a millisecond.
    let per_span = o.estimated_ns as f64 / spans as f64;
    assert!(
        per_span > 1.0 && per_span < 1_000_000.0,
        "{per_span} ns a span: {o:?}"
    );
}

#[test]
fn the_overhead_estimate_counts_the_polls_of_spans_still_open() {
    let (layer, handle) = PerfLayer::builder().without_sampler().build().unwrap();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    let connection = tracing::dispatcher::with_default(&dispatch, || {
        let connection = info_span!("connection");
        for _ in 0..1_000 {
            drop(connection.enter());
        }
        connection
    });
    // The connection is still open: no span has closed, yet its 1,000
    // polls cost the layer something, and the estimate counts them.
    let overhead = handle.snapshot().overhead;
    assert_eq!((overhead.spans, overhead.intervals), (0, 1_000));
    assert!(overhead.per_interval_ns > 0.0, "{overhead:?}");
    // 2,001 callbacks (a new span, then an enter and an exit a poll): about
    // 31 timed as they ran, which is what the estimate counts.
    assert!(overhead.callbacks_sampled >= 16, "{overhead:?}");
    let measured =
        overhead.callbacks_ns as f64 - overhead.per_clock_read_ns * overhead.callbacks as f64;
    assert_eq!(overhead.estimated_ns, measured.max(0.0) as u64);
    drop(connection);
}

#[test]
fn a_bad_output_path_fails_build_with_a_sentence_that_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir").join("dump.json");
    let err = PerfLayer::builder()
        .output_path(&missing)
        .without_sampler()
        .build()
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("no-such-dir"), "{message}");
    assert!(message.contains("create the directory"), "{message}");
    assert!(
        !message.contains("Output {"),
        "a sentence, not Debug: {message}"
    );

    // A directory where the file should be.
    let err = PerfLayer::builder()
        .output_path(dir.path())
        .without_sampler()
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("it is a directory"), "{err}");

    // A directory that takes no new file, where the OS enforces it (root
    // ignores permission bits).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let read_only = dir.path().join("read-only");
        std::fs::create_dir(&read_only).unwrap();
        std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o555)).unwrap();
        let enforced = std::fs::write(read_only.join("probe"), b"").is_err();
        let built = PerfLayer::builder()
            .output_path(read_only.join("dump.json"))
            .without_sampler()
            .build();
        if enforced {
            let err = built.unwrap_err();
            assert!(err.to_string().contains("cannot create a file"), "{err}");
        }
        std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // Checking leaves nothing behind.
    let mut left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    left.sort();
    assert_eq!(left, ["read-only"]);
}

#[test]
fn the_run_duration_and_its_end_time_agree() {
    // With the overhead calibration, which the first snapshot runs.
    let (layer, handle) = PerfLayer::builder().without_sampler().build().unwrap();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        info_span!("work").in_scope(|| std::thread::sleep(Duration::from_millis(20)));
    });
    // The first snapshot calibrates the layer's overhead, which takes tens
    // of milliseconds: it must not count as part of the run.
    let dump = handle.snapshot();
    let wall_ms = dump.run.ended_at_unix_ms - dump.run.started_at_unix_ms;
    let duration_ms = dump.run.duration_ns / 1_000_000;
    assert!(
        wall_ms.abs_diff(duration_ms) <= 2,
        "ended - started = {wall_ms} ms, duration = {duration_ms} ms"
    );
    assert!(duration_ms >= 20, "{duration_ms} ms");
}

/// The callbacks the layer times for its own cost are split by the callsite
/// each served: every callback of a span's life and the events inside it.
/// Each sample stands for the callbacks of its period (1 to 127), whichever
/// callsites they served, so a callsite's count is a sample's estimate of
/// its callbacks: within about 3% (one standard deviation) here.
#[test]
fn the_layers_own_time_is_split_by_the_callsite_each_callback_served() {
    const SPANS: u64 = 8_000;
    let (layer, handle) = quiet_builder().build().unwrap();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    std::thread::spawn(move || {
        tracing::dispatcher::with_default(&dispatch, || {
            for _ in 0..SPANS {
                // New, three enters and exits, an event, close: 9 callbacks.
                let polled = info_span!("polled");
                for _ in 0..3 {
                    let _e = polled.enter();
                }
                polled.in_scope(|| tracing::info!("inside"));
                drop(polled);
                // New, enter, exit, close: 4.
                info_span!("once").in_scope(|| {});
            }
        })
    })
    .join()
    .unwrap();
    let dump = handle.snapshot();
    let layer = |name: &str| {
        dump.callsites
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.layer)
            .unwrap_or_else(|| panic!("no layer time for {name}"))
    };
    // `polled` is entered four times (the event's `in_scope` too): 11.
    let (polled, once) = (layer("polled"), layer("once"));
    for (got, made) in [(polled.callbacks, 11 * SPANS), (once.callbacks, 4 * SPANS)] {
        // Over four standard deviations of `once`'s 500 samples.
        assert!(
            got.abs_diff(made) as f64 <= 0.15 * made as f64,
            "{got} sampled against {made} made"
        );
    }
    assert!(polled.ns > 0 && once.ns > 0, "{polled:?} {once:?}");
    // Every callback here served a span.
    assert_eq!(
        polled.callbacks + once.callbacks,
        dump.overhead.callbacks - dump.overhead.callbacks_dropped,
    );
}

fn thread_starts(dump: &Dump, name: &str) -> u64 {
    sum_of(dump, name, |c| c.thread_starts)
}

/// A thread started for each call counts one start a call, at the first
/// span it opens (after entering a span handed to it, too); a pool's
/// threads count once each, however many spans they open.
#[test]
fn each_thread_s_start_is_counted_once_at_its_first_span() {
    let (layer, handle) = quiet_builder().build().unwrap();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        for _ in 0..25 {
            let request = info_span!("request");
            let _in = request.enter();
            std::thread::scope(|s| {
                for _ in 0..2 {
                    // One plain, one that enters the request's span first.
                    let (plain, parent) = (dispatch.clone(), request.clone());
                    s.spawn(move || {
                        tracing::dispatcher::with_default(&plain, || {
                            info_span!("chunk").in_scope(|| {
                                info_span!("inner").in_scope(|| {});
                            });
                        })
                    });
                    let dispatch = dispatch.clone();
                    s.spawn(move || {
                        tracing::dispatcher::with_default(&dispatch, || {
                            let _in = parent.enter();
                            info_span!("handed").in_scope(|| {});
                        })
                    });
                }
            });
        }
        std::thread::scope(|s| {
            for _ in 0..2 {
                let dispatch = dispatch.clone();
                s.spawn(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        for _ in 0..100 {
                            info_span!("job").in_scope(|| {});
                        }
                    })
                });
            }
        });
    });
    let dump = handle.snapshot();
    assert_eq!(calls(&dump, "chunk"), 50);
    assert_eq!(thread_starts(&dump, "chunk"), 50);
    assert_eq!(thread_starts(&dump, "inner"), 0);
    assert_eq!(thread_starts(&dump, "handed"), 50);
    assert_eq!(calls(&dump, "job"), 200);
    assert_eq!(thread_starts(&dump, "job"), 2);
    // This thread's first span, once.
    assert_eq!(thread_starts(&dump, "request"), 1);
    // And back from the dump's JSON.
    let json = serde_json::to_string(&dump).unwrap();
    let back: Dump = serde_json::from_str(&json).unwrap();
    assert_eq!(thread_starts(&back, "chunk"), 50);
}
