//! Any bytes as `--label` strings, one per line: a label that is not
//! KEY=VALUE is refused with an error, and every one that parses is stored
//! and read back exactly (the first value of a key kept, the others
//! reported as conflicts), filtered on, and shown in the history's text and
//! JSON, never a panic.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use perf_layer::dump::Dump;
use perf_report::history::render::runs_text;
use perf_report::history::{RunFilter, Store, parse_label};

const DUMP: &[u8] = include_bytes!("../seeds/load_analyze/threads_alloc.json");

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let labels: Vec<_> = text.split('\n').filter_map(|l| parse_label(l).ok()).collect();
    let mut store = Store::open(":memory:").expect("an in-memory history");
    let dump = Dump::from_slice(DUMP).expect("the seed dump reads");
    let outcome = store.record(&dump, &labels).expect("a run with any labels is stored");
    let mut expected = BTreeMap::new();
    let mut conflicts = Vec::new();
    for (k, v) in &labels {
        match expected.get(k) {
            None => {
                expected.insert(k.clone(), v.clone());
            }
            Some(kept) if kept != v => conflicts.push((k.clone(), v.clone(), kept.clone())),
            Some(_) => {}
        }
    }
    // The first value given for a key is kept; later different ones are
    // reported, never dropped silently.
    let run = store.run(outcome.id).expect("the run reads back");
    assert_eq!(run.labels, expected);
    assert_eq!(outcome.conflicting_labels, conflicts);
    for (k, v) in &expected {
        let found = store
            .runs(&RunFilter::default().labels(&[(k.clone(), v.clone())]))
            .expect("a filter on any label");
        assert_eq!(found.len(), 1, "filter {k}={v}");
    }
    let runs = store.runs(&RunFilter::default()).expect("the runs list");
    for width in [None, Some(40), Some(120)] {
        let _ = runs_text(&runs, width);
    }
    let _ = serde_json::to_string(&runs).expect("the runs serialize");
});
