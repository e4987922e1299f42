//! Snapshot tests of every renderer on the ground-truth dump. Colour is off
//! and the dump has no timestamps or paths that vary, so output is stable.

mod support;

use perf_report::render::{Format, RenderOptions, ReportKind, render, render_diff};
use perf_report::{Config, Report};

fn report() -> Report {
    Report::build(&support::ground_truth().into(), &Config::default())
}

#[test]
fn text_full() {
    let out = render(
        &report(),
        Format::Text,
        ReportKind::Full,
        &RenderOptions::default(),
    );
    assert!(!out.contains('\u{1b}'), "colour must be off");
    insta::assert_snapshot!(out);
}

#[test]
fn text_summary() {
    let out = render(
        &report(),
        Format::Text,
        ReportKind::Summary,
        &RenderOptions::default(),
    );
    insta::assert_snapshot!(out);
}

#[test]
fn text_weight() {
    let out = render(
        &report(),
        Format::Text,
        ReportKind::Weight,
        &RenderOptions::default(),
    );
    insta::assert_snapshot!(out);
}

#[test]
fn markdown_full() {
    let out = render(
        &report(),
        Format::Markdown,
        ReportKind::Full,
        &RenderOptions::default(),
    );
    insta::assert_snapshot!(out);
}

#[test]
fn json_full() {
    let out = render(
        &report(),
        Format::Json,
        ReportKind::Full,
        &RenderOptions::default(),
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["report_format_version"], 1);
    insta::assert_snapshot!(out);
}

#[test]
fn text_diff() {
    let base = support::ground_truth();
    let new = support::improved_and_regressed(&base);
    let d = perf_report::diff::diff(&base, &new, &Default::default());
    let out = render_diff(&d, Format::Text, &RenderOptions::default());
    insta::assert_snapshot!(out);
}

#[test]
fn markdown_and_json_diff() {
    let base = support::ground_truth();
    let new = support::improved_and_regressed(&base);
    let d = perf_report::diff::diff(&base, &new, &Default::default());
    insta::assert_snapshot!(
        "markdown_diff",
        render_diff(&d, Format::Markdown, &RenderOptions::default())
    );
    insta::assert_snapshot!(
        "json_diff",
        render_diff(&d, Format::Json, &RenderOptions::default())
    );
}

#[test]
fn json_kinds_hold_their_parts() {
    let r = report();
    let json = |kind| {
        let s = render(
            &r,
            Format::Json,
            kind,
            &RenderOptions::default().with_top(2),
        );
        serde_json::from_str::<serde_json::Value>(&s).unwrap()
    };
    let weight = json(ReportKind::Weight);
    assert_eq!(weight["kind"], "weight");
    assert_eq!(weight["weights"].as_array().unwrap().len(), 2);
    assert!(weight.get("findings").is_none());
    assert_eq!(weight["shown"]["weights"]["total"], 6);
    let summary = json(ReportKind::Summary);
    assert_eq!(summary["findings"].as_array().unwrap().len(), 2);
    assert_eq!(summary["plan"]["steps"][0]["rank"], 1);
    assert!(summary.get("callsites").is_none());
    assert_eq!(summary["finding_counts"]["critical"], 1);
}

#[test]
fn colour_is_emitted_only_when_asked() {
    let r = report();
    let coloured = render(
        &r,
        Format::Text,
        ReportKind::Full,
        &RenderOptions::default().with_color(true),
    );
    assert!(coloured.contains("\u{1b}["));
}

/// Every line of a text rendering fits `width` terminal columns.
fn assert_fits(out: &str, width: usize) {
    for line in out.lines() {
        let w = unicode_width::UnicodeWidthStr::width(line);
        assert!(w <= width, "{w} columns: {line}");
    }
}

#[test]
fn text_at_100_columns() {
    let r = report();
    let narrow = RenderOptions::default().with_width(Some(100));
    for (name, kind) in [
        ("text_full_100", ReportKind::Full),
        ("text_summary_100", ReportKind::Summary),
        ("text_weight_100", ReportKind::Weight),
    ] {
        let out = render(&r, Format::Text, kind, &narrow);
        assert_fits(&out, 100);
        insta::assert_snapshot!(name, out);
    }
    let base = support::ground_truth();
    let new = support::improved_and_regressed(&base);
    let d = perf_report::diff::diff(&base, &new, &Default::default());
    let out = render_diff(&d, Format::Text, &narrow);
    assert_fits(&out, 100);
    insta::assert_snapshot!("text_diff_100", out);
}
