//! Any bytes as a `--config` file: what does not read as a config is a
//! clear error, and any config that reads (NaN, negative, huge or zero
//! thresholds and weights) gives a report of a real dump in every format,
//! never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use perf_report::load::{LoadOptions, load_slice};
use perf_report::render::{Format, RenderOptions, ReportKind, render};
use perf_report::{Config, Report};

const DUMPS: [&[u8]; 2] = [
    include_bytes!("../seeds/load_analyze/threads_alloc.json"),
    include_bytes!("../seeds/load_analyze/requests.json"),
];

fuzz_target!(|data: &[u8]| {
    let Ok(config) = serde_json::from_slice::<Config>(data) else {
        return;
    };
    let dump = DUMPS[data.len() % DUMPS.len()];
    let dump = load_slice(dump, "seed.json", &LoadOptions::default()).expect("a seed dump loads");
    let report = Report::build(&dump, &config);
    for format in [Format::Text, Format::Markdown, Format::Json, Format::Html] {
        let _ = render(&report, format, ReportKind::Full, &RenderOptions::default());
    }
    let _ = render(&report, Format::Text, ReportKind::Weight, &RenderOptions::default());
});
