//! Writes the fuzzing seed corpus: real dumps from small instrumented
//! workloads, and the raw encodings of real histograms. Not part of the
//! suite's run (ignored); regenerate the committed seeds with
//!
//! ```text
//! cargo test -p perf-suite --test reliability_seeds -- --ignored
//! ```
//!
//! The counting allocator is installed here (this test binary is the only
//! one that can), so one seed has allocation figures.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hdrhistogram::serialization::{Serializer as _, V2DeflateSerializer, V2Serializer};
use perf_layer::dump::Dump;
use perf_layer::{CountingAllocator, PerfLayer, PerfLayerBuilder};
use tracing::{Dispatch, info_span};
use tracing_subscriber::prelude::*;

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::system();

fn seeds_dir(target: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn record(builder: PerfLayerBuilder, work: impl FnOnce()) -> Dump {
    let (layer, handle) = builder.build().unwrap();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, work);
    handle.snapshot()
}

#[tracing::instrument]
fn parse(n: usize) -> Vec<u64> {
    tracing::debug!("parsing");
    (0..n as u64).collect()
}

#[tracing::instrument]
fn handle_request(n: usize) -> u64 {
    let values = parse(n);
    info_span!("sum").in_scope(|| values.iter().sum())
}

#[test]
#[ignore = "writes fuzz/seeds; run by hand"]
fn write_fuzz_seeds() {
    let quiet = || {
        PerfLayer::builder()
            .without_sampler()
            .without_overhead_calibration()
    };
    let mut dumps = vec![("empty", Dump::empty("seed"))];

    dumps.push((
        "requests",
        record(
            PerfLayer::builder()
                .sampler_interval(Duration::from_millis(5))
                .timeline_capacity(8)
                .rss_alert(1)
                .max_alerts(2),
            || {
                for n in 0..40 {
                    handle_request(n * 50);
                }
                std::thread::sleep(Duration::from_millis(60));
                tracing::warn!("outside any span");
            },
        ),
    ));

    let (clock, mock) = quanta::Clock::mock();
    dumps.push((
        "caps",
        record(
            quiet()
                .clock(clock)
                .histogram_max(Duration::from_micros(10))
                .max_callsites(3)
                .max_edges(1),
            || {
                for wall in [100, 5_000, 50_000, 7_000_000] {
                    info_span!("outer").in_scope(|| {
                        mock.increment(wall);
                        info_span!("a").in_scope(|| mock.increment(wall / 2));
                        info_span!("b").in_scope(|| mock.increment(wall / 4));
                        info_span!("dropped").in_scope(|| {});
                    });
                }
            },
        ),
    ));

    let workers = record(quiet(), || {
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        let threads: Vec<_> = (0..3)
            .map(|t| {
                let dispatch = dispatch.clone();
                std::thread::spawn(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        for n in 0..20 {
                            handle_request(n * (t + 1) * 10);
                        }
                    })
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    });
    assert!(workers.allocations_tracked);
    dumps.push(("threads_alloc", workers));

    // Grouped by route, one group past the cap (`other`), with group edges.
    dumps.push((
        "routes",
        record(quiet().group_by(["route"]).max_groups(2), || {
            for n in 0..30 {
                let route = ["/a", "/b", "/c"][n % 3];
                info_span!("request", route).in_scope(|| {
                    info_span!("handler").in_scope(|| handle_request(n * 10));
                });
            }
        }),
    ));

    let dir = seeds_dir("load_analyze");
    for (name, dump) in &dumps {
        dump.write_atomic(&dir.join(format!("{name}.json")))
            .unwrap();
    }

    // Raw histogram encodings, for the histogram_decode target: plain V2,
    // as perf-layer writes them, and V2 + DEFLATE, as 0.1.0 wrote them.
    let dir = seeds_dir("histogram_decode");
    let requests = &dumps[1].1;
    for (i, cs) in requests.callsites.iter().take(3).enumerate() {
        let hist = cs.busy_ns.decode().unwrap();
        let mut plain = Vec::new();
        V2Serializer::new().serialize(&hist, &mut plain).unwrap();
        std::fs::write(dir.join(format!("busy_{i}.bin")), plain).unwrap();
        let mut deflated = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&hist, &mut deflated)
            .unwrap();
        std::fs::write(dir.join(format!("busy_{i}_deflated.bin")), deflated).unwrap();
    }
}
