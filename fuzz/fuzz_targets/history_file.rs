//! Any bytes as the history's SQLite file (mutated from real histories):
//! opening it is a clear error or a store, and every read `history`,
//! `check` and `serve` make of a store that opens answers or errs, never a
//! panic, a hang or an unbounded allocation.
#![no_main]

use std::io::Write as _;

use libfuzzer_sys::fuzz_target;
use perf_report::history::check::{CheckOptions, check};
use perf_report::history::render::{runs_text, trends_text};
use perf_report::history::{RunFilter, Store, trend};

fuzz_target!(|data: &[u8]| {
    let mut file = tempfile::Builder::new()
        .suffix(".db")
        .tempfile_in(std::env::temp_dir())
        .expect("a temporary file");
    file.write_all(data).expect("written");
    let Ok(store) = Store::open_existing(file.path()) else {
        return;
    };
    let Ok(runs) = store.runs(&RunFilter::default()) else {
        return;
    };
    let _ = runs_text(&runs, Some(100));
    for run in runs.iter().take(4) {
        let _ = store.run(run.id);
        if let Ok(spans) = store.spans(run.id) {
            for span in spans.iter().take(3) {
                if let Ok(t) = trend::trends(&store, &span.identity, &RunFilter::default()) {
                    let _ = trends_text(&t, Some(100));
                }
            }
        }
        if let Ok(dump) = store.dump(run.id) {
            let _ = check(&store, &dump, &CheckOptions::default());
        }
    }
});
