//! Exact timings with an injected mock clock: wall, busy, idle and self time
//! of nested, re-entered and migrating spans.

use std::sync::Arc;
use std::thread;

use perf_layer::PerfLayer;
use perf_layer::dump::{CallsiteStats, Dump};
use quanta::{Clock, Mock};
use tracing::{Dispatch, info_span};
use tracing_subscriber::prelude::*;

/// The layer on a mock clock, with nothing that reads the real one.
fn mocked_layer() -> (PerfLayer, perf_layer::PerfHandle, Arc<Mock>) {
    let (clock, mock) = Clock::mock();
    let (layer, handle) = PerfLayer::builder()
        .clock(clock)
        .without_sampler()
        .without_overhead_calibration()
        .build()
        .unwrap();
    (layer, handle, mock)
}

fn mocked() -> (Dispatch, perf_layer::PerfHandle, Arc<Mock>) {
    let (layer, handle, mock) = mocked_layer();
    (
        Dispatch::new(tracing_subscriber::registry().with(layer)),
        handle,
        mock,
    )
}

fn callsite<'a>(dump: &'a Dump, name: &str) -> &'a CallsiteStats {
    dump.callsites
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no callsite `{name}` in {:?}", names(dump)))
}

fn names(dump: &Dump) -> Vec<&str> {
    dump.callsites.iter().map(|c| c.name.as_str()).collect()
}

/// (wall, busy, idle, self) sums in nanoseconds.
fn sums(c: &CallsiteStats) -> (u64, u64, u64, u64) {
    (c.wall_ns.sum, c.busy_ns.sum, c.idle_ns.sum, c.self_ns.sum)
}

#[test]
fn nested_spans_split_self_from_total() {
    let (dispatch, handle, mock) = mocked();
    tracing::dispatcher::with_default(&dispatch, || {
        let outer = info_span!("outer");
        let entered = outer.enter();
        mock.increment(10);
        {
            let inner = info_span!("inner");
            let _e = inner.enter();
            mock.increment(30);
        }
        mock.increment(5);
        drop(entered);
    });
    let dump = handle.snapshot();
    assert_eq!(sums(callsite(&dump, "outer")), (45, 45, 0, 15));
    assert_eq!(sums(callsite(&dump, "inner")), (30, 30, 0, 30));
    let (outer_id, inner_id) = (callsite(&dump, "outer").id, callsite(&dump, "inner").id);
    let edge = dump
        .edges
        .iter()
        .find(|e| e.parent == outer_id && e.child == inner_id);
    assert_eq!(edge.map(|e| (e.calls, e.child_busy_ns)), Some((1, 30)));
}

#[test]
fn a_span_entered_many_times_sums_its_busy_intervals() {
    let (dispatch, handle, mock) = mocked();
    tracing::dispatcher::with_default(&dispatch, || {
        let span = info_span!("polled");
        for _ in 0..3 {
            mock.increment(5); // idle between polls
            let _e = span.enter();
            mock.increment(10);
        }
    });
    let c = &handle.snapshot().callsites[0];
    assert_eq!(c.calls, 1);
    assert_eq!(sums(c), (45, 30, 15, 30));
    // Each poll is one entered interval.
    assert_eq!(c.intervals, Some(3));
}

#[test]
fn re_entering_a_span_already_entered_does_not_count_twice() {
    let (dispatch, handle, mock) = mocked();
    tracing::dispatcher::with_default(&dispatch, || {
        let span = info_span!("recursive");
        let _outer = span.enter();
        mock.increment(10);
        {
            let _inner = span.enter();
            mock.increment(20);
        }
        mock.increment(10);
    });
    let c = &handle.snapshot().callsites[0];
    assert_eq!(sums(c), (40, 40, 0, 40));
    // Each enter and exit is an interval, the re-entry's too: what the
    // layer's callbacks cost is counted by.
    assert_eq!(c.intervals, Some(2));
}

#[test]
fn an_async_span_polled_on_several_threads_keeps_busy_and_idle() {
    let (dispatch, handle, mock) = mocked();
    let span = tracing::dispatcher::with_default(&dispatch, || info_span!("task"));
    mock.increment(7); // created, not yet polled
    for poll_ns in [10u64, 20, 30] {
        let (span, poll_mock, dispatch) = (span.clone(), mock.clone(), dispatch.clone());
        thread::spawn(move || {
            tracing::dispatcher::with_default(&dispatch, || {
                let _e = span.enter();
                poll_mock.increment(poll_ns);
            })
        })
        .join()
        .unwrap();
        mock.increment(3); // waiting to be woken
    }
    tracing::dispatcher::with_default(&dispatch, || drop(span));
    let c = &handle.snapshot().callsites[0];
    assert_eq!(c.calls, 1);
    // wall = 7 + (10 + 3) + (20 + 3) + (30 + 3) = 76; busy = 60
    assert_eq!(sums(c), (76, 60, 16, 60));
    // Three polls, on three threads, counted where the span closed.
    assert_eq!(c.intervals, Some(3));
}

/// Two long-lived workers poll the same spans in turn, as a work-stealing
/// runtime does: each worker keeps the sums of the polls it ran, and a
/// span's close adds them up wherever it closes, with its events.
#[test]
fn spans_polled_in_turn_by_two_workers_add_up_every_poll_wherever_they_close() {
    use std::sync::mpsc;
    let (dispatch, handle, mock) = mocked();
    // Opened here (the main thread), polled on workers 0 and 1 in turn.
    let spans: Vec<tracing::Span> = tracing::dispatcher::with_default(&dispatch, || {
        (0..4).map(|i| info_span!("task", i)).collect()
    });
    let mut to_worker = Vec::new();
    let (back, from_workers) = mpsc::channel::<(tracing::Span, bool)>();
    let mut workers = Vec::new();
    for w in 0..2u64 {
        let (tx, rx) = mpsc::channel::<(tracing::Span, u64, bool)>();
        to_worker.push(tx);
        let (dispatch, mock, back) = (dispatch.clone(), mock.clone(), back.clone());
        workers.push(thread::spawn(move || {
            tracing::dispatcher::with_default(&dispatch, || {
                for (span, poll_ns, close_here) in rx {
                    span.in_scope(|| {
                        mock.increment(poll_ns + w);
                        tracing::info!("polled");
                    });
                    if close_here {
                        drop(span);
                        back.send((tracing::Span::none(), true)).unwrap();
                    } else {
                        back.send((span, false)).unwrap();
                    }
                }
            })
        }));
    }
    drop(back);
    // Span k: 5 polls alternating between the workers, of 10 ns (+1 on
    // worker 1); spans 0 and 1 close on a worker, 2 and 3 back here.
    for (k, span) in spans.into_iter().enumerate() {
        let mut span = span;
        for poll in 0..5 {
            let close_here = k < 2 && poll == 4;
            to_worker[(poll + k) % 2]
                .send((span, 10, close_here))
                .unwrap();
            let (next, closed) = from_workers.recv().unwrap();
            span = next;
            assert_eq!(closed, close_here);
        }
        tracing::dispatcher::with_default(&dispatch, || drop(span));
    }
    drop(to_worker);
    for w in workers {
        w.join().unwrap();
    }
    let c = callsite(&handle.snapshot(), "task").clone();
    assert_eq!(c.calls, 4);
    // Even spans: polls on workers 0,1,0,1,0 = 50 + 2; odd ones 50 + 3.
    assert_eq!(sums(&c).1, 2 * 52 + 2 * 53, "busy of every poll, summed");
    assert_eq!(c.events.info, 20, "every poll's event");
    assert_eq!(c.busy_ns.max, 53);
}

#[test]
fn children_on_another_thread_do_not_eat_the_parents_self_time() {
    let (dispatch, handle, mock) = mocked();
    tracing::dispatcher::with_default(&dispatch, || {
        let parent = info_span!("parent");
        let _e = parent.enter();
        mock.increment(10);
        let child = info_span!("child");
        let (dispatch, mock2) = (dispatch.clone(), mock.clone());
        thread::spawn(move || {
            // Dropped inside the dispatcher scope: the registry closes the
            // parent's reference through the thread's default dispatcher.
            tracing::dispatcher::with_default(&dispatch, move || {
                child.in_scope(|| mock2.increment(25));
                drop(child);
            })
        })
        .join()
        .unwrap();
    });
    let dump = handle.snapshot();
    // The parent was innermost on its own thread the whole time.
    assert_eq!(sums(callsite(&dump, "parent")), (35, 35, 0, 35));
    assert_eq!(sums(callsite(&dump, "child")).1, 25);
}

#[test]
fn events_are_counted_per_level_inside_their_span() {
    let (dispatch, handle, _mock) = mocked();
    tracing::dispatcher::with_default(&dispatch, || {
        let span = info_span!("noisy");
        span.in_scope(|| {
            tracing::info!("one");
            tracing::warn!("two");
            tracing::warn!("three");
            info_span!("quiet").in_scope(|| tracing::error!("belongs to the child"));
        });
        tracing::error!(parent: &span, "explicit parent");
        tracing::info!("outside any span");
    });
    let dump = handle.snapshot();
    let noisy = callsite(&dump, "noisy").events;
    assert_eq!(
        (noisy.info, noisy.warn, noisy.error, noisy.total()),
        (1, 2, 1, 4)
    );
    assert_eq!(callsite(&dump, "quiet").events.error, 1);
}

#[test]
fn durations_above_the_histogram_maximum_are_clamped_and_counted() {
    let (clock, mock) = Clock::mock();
    let (layer, handle) = PerfLayer::builder()
        .clock(clock)
        .histogram_max(std::time::Duration::from_millis(1))
        .without_sampler()
        .without_overhead_calibration()
        .build()
        .unwrap();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        info_span!("slow").in_scope(|| mock.increment(5_000_000u64));
    });
    let c = &handle.snapshot().callsites[0];
    assert_eq!(c.busy_ns.clamped, 1);
    assert_eq!(c.busy_ns.sum, 5_000_000, "sums stay exact");
    assert!(c.busy_ns.max <= 1_000_000 + 10_000, "max {}", c.busy_ns.max);
}

#[test]
fn without_the_counting_allocator_allocation_is_unknown_not_zero() {
    let (dispatch, handle, _mock) = mocked();
    tracing::dispatcher::with_default(&dispatch, || {
        info_span!("allocates").in_scope(|| std::hint::black_box(vec![0u8; 4096]));
    });
    let dump = handle.snapshot();
    assert!(!dump.allocations_tracked);
    assert!(dump.callsites[0].alloc.is_none());
}

#[test]
fn the_active_window_runs_from_the_first_opening_to_the_last_closing() {
    let (dispatch, handle, mock) = mocked();
    tracing::dispatcher::with_default(&dispatch, || {
        let phase = || info_span!("phase");
        mock.increment(100);
        let first = phase();
        mock.increment(20);
        // A second span of the callsite opens later and closes first.
        phase().in_scope(|| mock.increment(7));
        mock.increment(50);
        drop(first);
        mock.increment(1_000);
        // Opened, never closed: in no window.
        std::mem::forget(phase());
    });
    let dump = handle.snapshot();
    let w = callsite(&dump, "phase").active.expect("a window");
    assert_eq!((w.first_open_ns, w.last_close_ns), (100, 177));
    assert_eq!(w.len_ns(), 77);
}

/// A span whose child outlives it (a task spawned inside a request with
/// the request's span as its parent, never awaited) is closed by the
/// registry only when that child closes, as the child holds its last
/// reference: it ended at its last exit, not then. A parent that waits
/// for its child keeps every nanosecond of the wait, and one never entered
/// keeps its close.
#[test]
fn a_span_ends_at_its_last_exit_when_a_detached_child_closes_it() {
    let (dispatch, handle, mock) = mocked();
    tracing::dispatcher::with_default(&dispatch, || {
        // Detached: the request spawns `watcher` and returns.
        let request = info_span!("request");
        let watcher = request.in_scope(|| {
            mock.increment(10);
            let watcher = info_span!("watcher");
            mock.increment(5);
            watcher
        });
        drop(request);
        watcher.in_scope(|| mock.increment(3));
        mock.increment(1_000);
        drop(watcher);

        // Awaited: `join` waits for its child's close on another thread
        // before it exits.
        let join = info_span!("join");
        let entered = join.enter();
        let child = info_span!("joined");
        let d = tracing::dispatcher::get_default(Clone::clone);
        let mock2 = Arc::clone(&mock);
        thread::spawn(move || {
            tracing::dispatcher::with_default(&d, || {
                child.in_scope(|| mock2.increment(200));
                drop(child);
            })
        })
        .join()
        .unwrap();
        mock.increment(4);
        drop(entered);
        drop(join);

        // Never entered: its end is its close.
        let holder = info_span!("holder");
        let held = info_span!(parent: &holder, "held");
        drop(holder);
        mock.increment(50);
        drop(held);
    });
    let dump = handle.snapshot();
    assert_eq!(callsite(&dump, "request").wall_ns.sum, 15);
    assert_eq!(callsite(&dump, "watcher").wall_ns.sum, 1_008);
    assert_eq!(callsite(&dump, "join").wall_ns.sum, 204);
    assert_eq!(callsite(&dump, "holder").wall_ns.sum, 50);
    let request = callsite(&dump, "request").active.expect("a window");
    assert_eq!((request.first_open_ns, request.last_close_ns), (0, 15));
}

/// Spans still open at a snapshot are counted by callsite, with when they
/// opened and the callsite most opened under: a callsite whose spans are
/// all open is listed with no calls, and a span that closes leaves the
/// count.
#[test]
fn spans_open_at_the_snapshot_are_counted_by_callsite() {
    let (dispatch, handle, mock) = mocked();
    let kept = tracing::dispatcher::with_default(&dispatch, || {
        let session = info_span!("session");
        let mut kept = Vec::new();
        for _ in 0..3 {
            mock.increment(100);
            kept.push(session.in_scope(|| info_span!("watch")));
        }
        mock.increment(100);
        info_span!("done").in_scope(|| mock.increment(1));
        kept.push(session);
        kept
    });
    let dump = handle.snapshot();
    let session = callsite(&dump, "session");
    let watch = callsite(&dump, "watch");
    assert_eq!((session.calls, watch.calls), (0, 0));
    let open = watch.open.expect("open watches");
    assert_eq!(
        (
            open.spans,
            open.first_opened_ns,
            open.mean_opened_ns,
            open.parent
        ),
        (3, 100, 200, Some(session.id))
    );
    let open = session.open.expect("an open session");
    assert_eq!(
        (open.spans, open.first_opened_ns, open.parent),
        (1, 0, None)
    );
    assert_eq!(callsite(&dump, "done").open, None);

    tracing::dispatcher::with_default(&dispatch, || drop(kept));
    let dump = handle.snapshot();
    assert_eq!(callsite(&dump, "watch").open, None);
    assert_eq!(callsite(&dump, "watch").calls, 3);
}

/// A layer that takes `ns` of the mock clock to handle each event, as a
/// `fmt` layer formatting and writing a line does.
struct SlowWriter {
    mock: Arc<Mock>,
    ns: u64,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for SlowWriter {
    fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        self.mock.increment(self.ns);
    }
}

/// The subscriber's time handling the events inside a span is the dump's
/// `events.ns`, part of the span's self time, from a sample of the events
/// (one in about 16, each weighted by the events it stands for): whole
/// where perf-layer is the outermost layer (asked first, told last),
/// nothing where it is the innermost (told before the writer runs). An
/// event with an explicit parent is counted, not timed; one outside every
/// span is neither.
#[test]
fn the_subscriber_s_time_on_events_inside_a_span_is_counted_where_the_layer_is_outermost() {
    for outermost in [true, false] {
        let (layer, handle, mock) = mocked_layer();
        let writer = SlowWriter {
            mock: mock.clone(),
            ns: 100,
        };
        let dispatch = if outermost {
            Dispatch::new(tracing_subscriber::registry().with(writer).with(layer))
        } else {
            Dispatch::new(tracing_subscriber::registry().with(layer).with(writer))
        };
        tracing::dispatcher::with_default(&dispatch, || {
            tracing::info!("before any span");
            let other = info_span!("other");
            info_span!("report").in_scope(|| {
                mock.increment(10);
                for row in 0..1_600 {
                    tracing::info!(row, "report row");
                }
                tracing::warn!(parent: &other, "explicit parent");
                mock.increment(5);
            });
        });
        let dump = handle.snapshot();
        let report = callsite(&dump, "report");
        // 10 + 5 of its own, 100 for each of the 1,601 events' writing.
        assert_eq!(sums(report).3, 160_115, "outermost: {outermost}");
        assert_eq!(report.events.info, 1_600, "outermost: {outermost}");
        if outermost {
            // The sample's weights add up to the events within a gap (at
            // most 31) at either end.
            let ns = report.events.ns;
            assert!((160_000 - 6_200..=160_000 + 6_200).contains(&ns), "{ns}");
        } else {
            assert_eq!(report.events.ns, 0);
        }
        let other = callsite(&dump, "other");
        assert_eq!(
            (other.events.warn, other.events.ns),
            (1, 0),
            "outermost: {outermost}"
        );
    }
}

/// A callsite keeps its spans of 1 ms or more (when each opened and
/// closed, and its idle time), a thread its latest 64, and the dump says
/// from when it holds every one; shorter spans are not kept.
#[test]
fn long_spans_are_kept_with_their_times_and_a_thread_keeps_its_latest() {
    let (dispatch, handle, mock) = mocked();
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..70u64 {
            let span = info_span!("long");
            mock.increment(400_000);
            {
                let _e = span.enter();
                mock.increment(600_000 + i);
            }
            drop(span);
            let short = info_span!("short");
            let _e = short.enter();
            mock.increment(999_999);
        }
    });
    let dump = handle.snapshot();
    assert_eq!(callsite(&dump, "short").long_spans, None);
    let long = callsite(&dump, "long").long_spans.as_ref().unwrap();
    assert_eq!(long.threshold_ns, 1_000_000);
    // Span i opens after i rounds of 1,999,999 ns plus 0 + 1 + ... + (i - 1).
    let opened = |i: u64| i * 1_999_999 + i * i.saturating_sub(1) / 2;
    let closed = |i: u64| opened(i) + 1_000_000 + i;
    let kept: Vec<(u64, u64, u64)> = long
        .spans
        .iter()
        .map(|s| (s.opened_ns, s.closed_ns, s.idle_ns))
        .collect();
    let expected: Vec<(u64, u64, u64)> = (6..70).map(|i| (opened(i), closed(i), 400_000)).collect();
    assert_eq!(kept, expected);
    assert_eq!(long.complete_after_ns, closed(5));
    // The 16 a thread keeps idle the longest, whenever they closed: every
    // span was idle alike, so its first 16 stay.
    let longest: Vec<u64> = long.longest_waits.iter().map(|s| s.opened_ns).collect();
    assert_eq!(longest.len(), 16);
    assert!(longest.contains(&opened(0)), "{longest:?}");
}
