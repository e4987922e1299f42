//! Any bytes through the whole report path: load (size limit, version,
//! schema, histogram validation) -> analyze and plan -> render in every
//! format and kind; and what a user can do with any dump that loads: diff
//! it against itself, merge it with itself. Nothing may panic, hang or
//! allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use perf_report::diff::{DiffOptions, diff};
use perf_report::load::{LoadOptions, load_slice};
use perf_report::merge::merge;
use perf_report::render::{Format, RenderOptions, ReportKind, render, render_diff};
use perf_report::{Config, Report};

const FORMATS: [Format; 3] = [Format::Text, Format::Markdown, Format::Json];
const KINDS: [ReportKind; 3] = [ReportKind::Full, ReportKind::Summary, ReportKind::Weight];

fuzz_target!(|data: &[u8]| {
    let opts = LoadOptions::default().with_max_bytes(1 << 20);
    let Ok(dump) = load_slice(data, "fuzz.json", &opts) else {
        return;
    };
    let report = Report::build(&dump, &Config::default());
    for format in FORMATS {
        for kind in KINDS {
            let _ = render(&report, format, kind, &RenderOptions::default());
        }
    }
    let all_rows = RenderOptions::default().with_top(0);
    let _ = render(&report, Format::Text, ReportKind::Full, &all_rows);

    let d = diff(&dump, &dump, &DiffOptions::default());
    for format in FORMATS {
        let _ = render_diff(&d, format, &RenderOptions::default());
    }
    if let Ok(merged) = merge(vec![dump.dump().clone(), dump.into_dump()]) {
        let _ = Report::build(&merged.into(), &Config::default());
    }
});
