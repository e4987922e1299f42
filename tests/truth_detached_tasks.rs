//! A task spawned inside a request, with the request's span as its parent,
//! and not awaited: a fresh service's `handle` spawned a `watch_session`
//! task that slept 200 ms and ended. The registry closes a span only when
//! its last reference goes, and the child held it: `handle` read 2,054 s
//! of wall time in 10,214 calls (201 ms a call for 40 µs of work and a 1
//! ms upstream), and `watch_session` "waiting, not working", critical,
//! "shortens the run by 44.9%", where nothing waited for it. Now the
//! parent ends at its last exit, the dump says which children outlived
//! their parent, and the detached task's waits are no finding.

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

/// Eight clients calling `handle` for `run`: 40 µs of work, an `audit`
/// task spawned inside it (a 50 ms timer), a 1 ms upstream. `awaited`: the
/// request awaits the audit before it answers.
fn serve(awaited: bool, run: Duration) -> Dump {
    let (_, dump) = traced(|dispatch| {
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
        rt.block_on(async {
            let deadline = Instant::now() + run;
            let clients: Vec<_> = (0..8)
                .map(|_| {
                    tokio::spawn(async move {
                        while Instant::now() < deadline {
                            handle(awaited).instrument(info_span!("handle")).await;
                        }
                    })
                })
                .collect();
            for c in clients {
                c.await.unwrap();
            }
        });
        // The audits still running end with the runtime; their spans close
        // as their tasks are dropped.
        drop(rt);
    });
    dump
}

async fn handle(awaited: bool) {
    compute(Duration::from_micros(40));
    let audit = tokio::spawn(
        async { tokio::time::sleep(Duration::from_millis(50)).await }
            .instrument(info_span!("audit")),
    );
    tokio::time::sleep(Duration::from_millis(1)).await;
    if awaited {
        audit.await.unwrap();
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

fn waits_on(a: &Analysis, name: &str) -> bool {
    a.findings.iter().any(|f| {
        f.class.as_str() == "waiting" && f.location.as_ref().is_some_and(|l| l.name == name)
    })
}

#[test]
fn a_task_spawned_inside_a_request_and_not_awaited_is_not_the_request_s_wait() {
    let _turn = TURNS.lock().unwrap_or_else(|e| e.into_inner());
    let dump = serve(false, Duration::from_millis(800));
    let (calls, outlived) = edge(&dump);
    assert!(calls >= 100, "{calls} audits");
    assert!(
        outlived * 10 >= calls * 9,
        "{outlived} of {calls} audits outlived `handle`"
    );
    // 40 µs of work and a 1 ms timer (tokio's wheel rounds it up to about
    // 2 ms), queued behind seven other clients on two workers: far from
    // the audit's 50 ms.
    let handle = callsite(&dump, "handle");
    let mean_ms = handle.wall_ns.sum as f64 / handle.calls as f64 / 1e6;
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
}

#[test]
fn a_task_the_request_awaits_is_its_wait() {
    let _turn = TURNS.lock().unwrap_or_else(|e| e.into_inner());
    let dump = serve(true, Duration::from_millis(800));
    let (calls, outlived) = edge(&dump);
    assert!(calls >= 50, "{calls} audits");
    assert_eq!(
        outlived, 0,
        "{outlived} of {calls} audits outlived `handle`"
    );
    let handle = callsite(&dump, "handle");
    let mean_ms = handle.wall_ns.sum as f64 / handle.calls as f64 / 1e6;
    assert!(mean_ms >= 50.0, "`handle` lasted {mean_ms:.1} ms a call");
    let a = analyze(&dump.into(), &Default::default());
    assert!(waits_on(&a, "audit"), "{:#?}", a.findings);
}
