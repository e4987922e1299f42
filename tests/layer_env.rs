//! Configuration from environment variables, and periodic dumps.
//!
//! One test in its own binary: environment variables are process-wide, so
//! no other test may read them while this one sets them.

use std::time::{Duration, Instant};

use perf_layer::{ENV_DUMP_EVERY_MS, ENV_OUTPUT, ENV_SAMPLE_MS, PerfLayer};
use tracing_subscriber::prelude::*;

#[test]
fn environment_variables_configure_the_layer_and_periodic_dumps_land() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("from-env.json");
    // SAFETY: this binary runs this single test; no other thread reads the
    // environment while it is changed.
    unsafe {
        std::env::set_var(ENV_OUTPUT, &path);
        std::env::set_var(ENV_SAMPLE_MS, "0");
        std::env::set_var(ENV_DUMP_EVERY_MS, "20");
    }
    let (layer, handle) = PerfLayer::builder()
        .from_env()
        .without_overhead_calibration()
        .build()
        .unwrap();
    assert_eq!(handle.output_path(), path);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info_span!("tick").in_scope(|| {});
    });
    // The periodic dump writes without anyone asking (the first one may
    // predate the span on a loaded machine: wait for one that has it).
    let deadline = Instant::now() + Duration::from_secs(10);
    let dump = loop {
        let read = std::fs::read(&path)
            .ok()
            .and_then(|b| perf_layer::dump::Dump::from_slice(&b).ok());
        match read {
            Some(dump) if !dump.callsites.is_empty() => break dump,
            _ if Instant::now() > deadline => {
                panic!("no periodic dump with the span at {}", path.display())
            }
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    assert_eq!(
        dump.config.sampler_interval_ms, None,
        "PERF_LAYER_SAMPLE_MS=0 turns the sampler off"
    );
    assert_eq!(dump.callsites[0].calls, 1);

    // An invalid value names the variable.
    unsafe { std::env::set_var(ENV_SAMPLE_MS, "fast") };
    let err = PerfLayer::builder().from_env().build().unwrap_err();
    assert!(err.to_string().contains(ENV_SAMPLE_MS), "{err}");
    // Settings after `from_env` override it.
    unsafe { std::env::remove_var(ENV_SAMPLE_MS) };
    let (_, handle) = PerfLayer::builder()
        .from_env()
        .output_path("x.json")
        .without_sampler()
        .build()
        .unwrap();
    assert_eq!(handle.output_path(), std::path::Path::new("x.json"));

    // An empty output path is refused at build, naming the variable.
    unsafe { std::env::set_var(ENV_OUTPUT, "") };
    let err = PerfLayer::builder().from_env().build().unwrap_err();
    assert!(err.to_string().contains(ENV_OUTPUT), "{err}");
    assert!(err.to_string().contains("unset it"), "{err}");
    unsafe { std::env::remove_var(ENV_OUTPUT) };
}
