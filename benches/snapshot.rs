//! What a snapshot costs with spans still open (docs/benchmarks.md): the
//! snapshot counts every open span by callsite (`callsites[].open`), each
//! thread's under that thread's shard lock, which the thread's own span
//! path waits for meanwhile (yielding).
//!
//! - `snapshot.open_0`: a layer that recorded 1,000 spans of 10 callsites,
//!   none open;
//! - `snapshot.open_100000`: the same with 100,000 spans of one callsite
//!   open on the snapshotting thread (tasks that never end).
//!
//! The difference is the walk: about what a thread with that many open
//! spans can wait at a snapshot. `cargo bench --bench snapshot` (about
//! 10 s).

mod support;

use std::hint::black_box;

use criterion::Criterion;
use support::criterion;
use tracing_subscriber::prelude::*;

fn snapshots(c: &mut Criterion, open: usize) {
    let (layer, handle) = perf_layer::PerfLayer::builder()
        .without_sampler()
        .build()
        .expect("a valid configuration");
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        for _ in 0..100 {
            for i in 0..10 {
                tracing::info_span!("recorded", i).in_scope(|| black_box(i));
            }
        }
        let kept: Vec<tracing::Span> = (0..open).map(|_| tracing::info_span!("kept")).collect();
        // The first snapshot calibrates the layer's own cost.
        let dump = handle.snapshot();
        assert_eq!(
            dump.callsites
                .iter()
                .find(|c| c.name == "kept")
                .and_then(|c| c.open)
                .map_or(0, |o| o.spans),
            open as u64
        );
        let mut g = c.benchmark_group("snapshot");
        g.sample_size(20);
        g.bench_function(format!("open_{open}"), |b| {
            b.iter(|| black_box(handle.snapshot().callsites.len()))
        });
        g.finish();
        drop(kept);
    });
}

fn main() {
    let mut c = criterion();
    snapshots(&mut c, 0);
    snapshots(&mut c, 100_000);
    c.final_summary();
}
