//! A task spawned inside a request, with the request's span as its parent,
//! and not awaited: a fresh service's `handle` spawned a `watch_session`
//! task that slept 200 ms and ended. The registry closes a span only when
//! its last reference goes, and the child held it: `handle` read 2,054 s
//! of wall time in 10,214 calls (201 ms a call for 40 µs of work and a 1
//! ms upstream), and `watch_session` "waiting, not working", critical,
//! "shortens the run by 44.9%", where nothing waited for it. Now the
//! parent ends at its last exit, the dump says which children outlived
//! their parent, and the detached task's waits are no finding. Tasks that
//! never end were in no figure (a span's are recorded at its close): the
//! dump counts the spans still open, and a pile of them is named.

#![cfg(target_os = "linux")]

use std::sync::Mutex;
use std::time::{Duration, Instant};

mod runtime_support;

use perf_layer::dump::Dump;
use perf_report::analyze::{Analysis, analyze};
use runtime_support::{compute, traced};
use tracing::{Instrument, info_span};

/// The tests take turns: side by side, one's tasks would delay the other's
/// on two cores.
static TURNS: Mutex<()> = Mutex::new(());

/// What a request does with the `audit` task it spawns.
#[derive(Clone, Copy, PartialEq)]
enum Audit {
    /// Spawns it (a 50 ms timer) and answers.
    Detached,
    /// Awaits it before it answers.
    Awaited,
    /// Spawns it, and it never ends (a 50 ms timer in a loop).
    Endless,
    /// Spawns it with `.in_current_span()`, so that it holds and enters
    /// `handle`'s span at every poll (the audit's span opened in the task,
    /// as an `#[instrument]` async function's is), then 300 µs of work,
    /// and answers.
    InCurrentSpan,
    /// The same, awaited before it answers.
    InCurrentSpanAwaited,
}

/// Eight clients calling `handle` for `run`: 40 µs of work, an `audit`
/// task spawned inside it, a 1 ms upstream. The snapshot is taken with the
/// runtime and its tasks still alive.
fn serve(audit: Audit, run: Duration) -> Dump {
    on_workers(async move {
        let deadline = Instant::now() + run;
        let clients: Vec<_> = (0..8)
            .map(|_| {
                tokio::spawn(async move {
                    while Instant::now() < deadline {
                        handle(audit).instrument(info_span!("handle")).await;
                    }
                })
            })
            .collect();
        for c in clients {
            c.await.unwrap();
        }
    })
}

/// Runs `workload` on two workers whose default is a fresh layer, and
/// returns its snapshot, taken with the runtime and its tasks still alive.
fn on_workers(workload: impl std::future::Future<Output = ()>) -> Dump {
    let (rt, dump) = traced(|dispatch| {
        // The layer is each worker's default, as a global default is in a
        // service: a task's spans are dropped outside its polls, and the
        // registry tells a parent of its child's close through the default.
        let on_worker = dispatch.clone();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .on_thread_start(move || {
                std::mem::forget(tracing::dispatcher::set_default(&on_worker));
            })
            .build()
            .unwrap();
        rt.block_on(workload);
        rt
    });
    drop(rt);
    dump
}

async fn handle(audit: Audit) {
    compute(Duration::from_micros(40));
    let work = async move {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if audit != Audit::Endless {
                break;
            }
        }
        if matches!(audit, Audit::InCurrentSpan | Audit::InCurrentSpanAwaited) {
            compute(Duration::from_micros(300));
        }
    };
    let task = match audit {
        // As an `#[instrument]` async function's span opens: at its first
        // poll, in the spawned task, inside the span the task carries.
        Audit::InCurrentSpan | Audit::InCurrentSpanAwaited => tokio::spawn(
            async move { work.instrument(info_span!("audit")).await }.in_current_span(),
        ),
        _ => tokio::spawn(work.instrument(info_span!("audit"))),
    };
    tokio::time::sleep(Duration::from_millis(1)).await;
    if matches!(audit, Audit::Awaited | Audit::InCurrentSpanAwaited) {
        task.await.unwrap();
    }
}

fn callsite<'a>(dump: &'a Dump, name: &str) -> &'a perf_layer::dump::CallsiteStats {
    dump.callsites
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no `{name}` in the dump"))
}

/// The edge `handle` to `audit`: (calls, outlived).
fn edge(dump: &Dump) -> (u64, u64) {
    let (handle, audit) = (callsite(dump, "handle").id, callsite(dump, "audit").id);
    dump.edges
        .iter()
        .find(|e| e.parent == handle && e.child == audit)
        .map(|e| (e.calls, e.outlived))
        .expect("an edge from handle to audit")
}

/// The callsite's wall time a call, ms.
fn mean_wall_ms(dump: &Dump, name: &str) -> f64 {
    let cs = callsite(dump, name);
    cs.wall_ns.sum as f64 / cs.calls as f64 / 1e6
}

fn waits_on(a: &Analysis, name: &str) -> bool {
    a.findings.iter().any(|f| {
        f.class.as_str() == "waiting" && f.location.as_ref().is_some_and(|l| l.name == name)
    })
}

/// Serves with `audit` not awaited, and checks that the audits outlived
/// `handle`, which ended with its own work, and that their waits are no
/// finding but a note. The dump, for more checks.
fn not_awaited(audit: Audit) -> Dump {
    let dump = serve(audit, Duration::from_millis(800));
    let (calls, outlived) = edge(&dump);
    assert!(calls >= 100, "{calls} audits");
    assert!(
        outlived * 10 >= calls * 9,
        "{outlived} of {calls} audits outlived `handle`"
    );
    // 40 µs of work and a 1 ms timer (tokio's wheel rounds it up to about
    // 2 ms), queued behind seven other clients on two workers: far from
    // the audit's 50 ms.
    let mean_ms = mean_wall_ms(&dump, "handle");
    assert!(mean_ms < 20.0, "`handle` lasted {mean_ms:.1} ms a call");

    let a = analyze(&dump.clone().into(), &Default::default());
    assert!(!waits_on(&a, "audit"), "{:#?}", a.findings);
    assert!(
        a.notes
            .iter()
            .any(|n| n.starts_with("`audit` outlived the span it was opened in, `handle`")),
        "{:#?}",
        a.notes
    );
    dump
}

/// Serves with `audit` awaited, and checks that no audit outlived `handle`,
/// which lasted as long as its audit, and that the audit's wait is one.
fn awaited(audit: Audit) {
    let dump = serve(audit, Duration::from_millis(800));
    let (calls, outlived) = edge(&dump);
    assert!(calls >= 50, "{calls} audits");
    assert_eq!(
        outlived, 0,
        "{outlived} of {calls} audits outlived `handle`"
    );
    let mean_ms = mean_wall_ms(&dump, "handle");
    assert!(mean_ms >= 50.0, "`handle` lasted {mean_ms:.1} ms a call");
    let a = analyze(&dump.into(), &Default::default());
    assert!(waits_on(&a, "audit"), "{:#?}", a.findings);
}

#[test]
fn a_task_spawned_inside_a_request_and_not_awaited_is_not_the_request_s_wait() {
    let _turn = TURNS.lock().unwrap_or_else(|e| e.into_inner());
    not_awaited(Audit::Detached);
}

#[test]
fn a_task_the_request_awaits_is_its_wait() {
    let _turn = TURNS.lock().unwrap_or_else(|e| e.into_inner());
    awaited(Audit::Awaited);
}

/// A task spawned with `.in_current_span()` holds a clone of the request's
/// span and enters it at every poll: through span callbacks alone, the
/// request lives and is entered until the task ends, as if it awaited it.
/// The task that entered the span first owns it, and the span ends at its
/// owner's last exit, without the spawned task's polls.
#[test]
fn a_task_spawned_in_the_request_s_span_and_not_awaited_is_not_its_wait() {
    let _turn = TURNS.lock().unwrap_or_else(|e| e.into_inner());
    let dump = not_awaited(Audit::InCurrentSpan);
    // The audit's 300 µs of work ran inside `handle`'s span, entered by
    // the audit's task: not `handle`'s, which did 40 µs.
    let handle = callsite(&dump, "handle");
    let busy_us = handle.busy_ns.sum as f64 / handle.calls as f64 / 1e3;
    assert!(busy_us < 200.0, "`handle` busy {busy_us:.0} µs a call");
}

#[test]
fn a_task_spawned_in_the_request_s_span_and_awaited_is_its_wait() {
    let _turn = TURNS.lock().unwrap_or_else(|e| e.into_inner());
    awaited(Audit::InCurrentSpanAwaited);
}

/// A span entered by its spawner, then handed to a task that does the
/// work (`in_scope`, then `.instrument(span)`): the task's spans are the
/// job's, and its waits the job's wait. Through span callbacks and task
/// ids, this reads as `.in_current_span()` does but for how often the
/// span's owner entered it: once here, where a future's own task enters
/// its span at a poll and again as it is dropped.
#[test]
fn a_span_handed_to_a_task_is_that_task_s_work() {
    let _turn = TURNS.lock().unwrap_or_else(|e| e.into_inner());
    let dump = on_workers(async {
        let deadline = Instant::now() + Duration::from_millis(800);
        let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(16));
        while Instant::now() < deadline {
            let permit = permits.clone().acquire_owned().await.unwrap();
            let job = info_span!("job");
            job.in_scope(|| compute(Duration::from_micros(30)));
            tokio::spawn(
                async move {
                    for _ in 0..2 {
                        tokio::time::sleep(Duration::from_millis(3))
                            .instrument(info_span!("step"))
                            .await;
                    }
                    drop(permit);
                }
                .instrument(job),
            );
        }
    });
    let (job, step) = (callsite(&dump, "job").id, callsite(&dump, "step").id);
    let (calls, outlived) = dump
        .edges
        .iter()
        .find(|e| e.parent == job && e.child == step)
        .map(|e| (e.calls, e.outlived))
        .expect("an edge from job to step");
    assert!(calls >= 100, "{calls} steps");
    assert_eq!(outlived, 0, "{outlived} of {calls} steps outlived `job`");
    let mean_ms = mean_wall_ms(&dump, "job");
    assert!(mean_ms >= 6.0, "`job` lasted {mean_ms:.1} ms a call");
    let a = analyze(&dump.into(), &Default::default());
    assert!(waits_on(&a, "step"), "{:#?}", a.findings);
}

/// Tasks that never end pile up open: every `audit` and the `handle` it
/// keeps open are in no figure, and a note names them. The detached
/// audits of the first test, still running at the dump (the last 50 ms of
/// them), are no pile.
#[test]
fn tasks_that_never_end_are_named_as_a_pile_of_open_spans() {
    let _turn = TURNS.lock().unwrap_or_else(|e| e.into_inner());
    let dump = serve(Audit::Endless, Duration::from_millis(800));
    let open = callsite(&dump, "audit").open.expect("open audits");
    assert!(open.spans >= 100, "{} audits open", open.spans);
    assert_eq!(open.parent, Some(callsite(&dump, "handle").id));
    let a = analyze(&dump.into(), &Default::default());
    let pile = a
        .notes
        .iter()
        .find(|n| n.starts_with("`audit` has "))
        .unwrap_or_else(|| panic!("{:#?}", a.notes));
    assert!(
        pile.contains("spans still open when the dump was written, opened through the run"),
        "{pile}"
    );
    assert!(pile.contains("keeps its parent `handle`'s"), "{pile}");

    let dump = serve(Audit::Detached, Duration::from_millis(800));
    assert!(callsite(&dump, "audit").open.is_some_and(|o| o.spans > 0));
    let a = analyze(&dump.into(), &Default::default());
    assert!(
        !a.notes
            .iter()
            .any(|n| n.contains("spans still open when the dump")),
        "{:#?}",
        a.notes
    );
}
