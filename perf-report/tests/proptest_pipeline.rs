//! Property tests of the report path against hostile input: structurally
//! arbitrary dumps and byte- or JSON-mutated real dumps never make load ->
//! analyze -> plan -> render (every format and kind), diff or merge panic;
//! a dump diffed against itself shows no change; a Markdown table keeps its
//! shape whatever the names in it; an HTML page holds no markup but its own.
//!
//! Case counts are modest so the suite stays fast; the fuzz target
//! (`scripts/fuzz`) runs the same path for as long as one likes.

mod proptest_support;

use perf_report::diff::{DiffOptions, Verdict, diff};
use perf_report::load::{LoadOptions, load_slice};
use perf_report::render::{Format, RenderOptions, ReportKind, render};
use perf_report::{Config, Report};
use proptest::prelude::*;
use proptest_support::{
    SEEDS, apply_bytes, apply_json, arbitrary_dump_json, byte_edit, json_edit, load_and_run,
    pipeline,
};

#[test]
fn every_seed_loads_and_renders() {
    for seed in SEEDS {
        let outputs = load_and_run(seed.as_bytes()).expect("a real dump loads");
        assert!(outputs.iter().all(|o| !o.is_empty()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: proptest_support::cases(96), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_dumps_never_panic(value in arbitrary_dump_json()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        // Valid histograms and schema: these load (anything else is a
        // finding in itself), then the whole path runs.
        let dump = load_slice(&bytes, "arbitrary.json", &LoadOptions::default());
        prop_assert!(dump.is_ok(), "refused: {}", dump.unwrap_err());
        pipeline(&dump.unwrap());
    }

    #[test]
    fn byte_mutated_dumps_never_panic(
        seed in 0..SEEDS.len(),
        edits in prop::collection::vec(byte_edit(), 1..6),
    ) {
        let mut bytes = SEEDS[seed].as_bytes().to_vec();
        for edit in &edits {
            apply_bytes(&mut bytes, edit);
        }
        let _ = load_and_run(&bytes);
    }

    #[test]
    fn json_mutated_dumps_never_panic(
        seed in 1..SEEDS.len(),
        edits in prop::collection::vec(json_edit(), 1..5),
    ) {
        let mut value: serde_json::Value = serde_json::from_str(SEEDS[seed]).unwrap();
        for edit in &edits {
            apply_json(&mut value, edit);
        }
        let _ = load_and_run(&serde_json::to_vec(&value).unwrap());
    }

    #[test]
    fn a_dump_diffed_against_itself_shows_no_change(value in arbitrary_dump_json()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        let dump = load_slice(&bytes, "self.json", &LoadOptions::default()).unwrap();
        let d = diff(&dump, &dump, &DiffOptions::default());
        for c in &d.callsites {
            prop_assert_eq!(c.verdict, Verdict::Unchanged, "{:?}", c);
            prop_assert_eq!(c.regression, 0.0);
        }
        prop_assert_eq!(d.worst_regression(), 0.0);
        prop_assert!(matches!(d.total_self_ns.relative, None | Some(0.0)), "{:?}", d.total_self_ns);
    }

    #[test]
    fn markdown_tables_keep_their_shape_whatever_the_names(value in arbitrary_dump_json()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        let dump = load_slice(&bytes, "md.json", &LoadOptions::default()).unwrap();
        let report = Report::build(&dump, &Config::default());
        let all = RenderOptions::default().with_top(0);
        for kind in [ReportKind::Full, ReportKind::Summary, ReportKind::Weight] {
            let md = render(&report, Format::Markdown, kind, &all);
            check_tables(&md)?;
            prop_assert!(!md.contains("<script"), "raw HTML in:\n{}", md);
        }
    }

    #[test]
    fn html_pages_hold_no_markup_but_their_own(value in arbitrary_dump_json()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        let dump = load_slice(&bytes, "html.json", &LoadOptions::default()).unwrap();
        let report = Report::build(&dump, &Config::default());
        let all = RenderOptions::default().with_top(0);
        let mut pages: Vec<String> = [ReportKind::Full, ReportKind::Summary, ReportKind::Weight]
            .into_iter()
            .map(|kind| render(&report, Format::Html, kind, &all))
            .collect();
        pages.push(perf_report::render::render_diff(
            &diff(&dump, &dump, &DiffOptions::default()),
            Format::Html,
            &all,
        ));
        for page in &pages {
            // The error hook and the self-check, and nothing a name brought.
            prop_assert_eq!(page.matches("<script").count(), 2, "{}", page);
            prop_assert!(page.matches("<img").count() <= 1, "{}", page);
            prop_assert!(!page.contains("<script>alert"), "{}", page);
        }
    }
}

/// Columns of one Markdown table row: the `|` not escaped by a backslash.
fn columns(line: &str) -> usize {
    let (mut n, mut escaped) = (0, false);
    for c in line.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '|' => n += 1,
            _ => {}
        }
    }
    n
}

/// Every row of each table has as many columns as its header.
fn check_tables(md: &str) -> Result<(), TestCaseError> {
    let mut header: Option<usize> = None;
    for line in md.lines() {
        if line.starts_with('|') {
            let n = columns(line);
            match header {
                None => header = Some(n),
                Some(h) => prop_assert_eq!(n, h, "row breaks its table: {:?}\n{}", line, md),
            }
        } else {
            header = None;
        }
    }
    Ok(())
}
