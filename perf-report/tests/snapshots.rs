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

/// The sentences every format says (the plan's gains, the process line,
/// the diff's counts) are the same in text, Markdown and HTML, and each
/// full report has the same sections: they come from one place.
#[test]
fn every_format_says_the_same_sentences_and_has_the_same_sections() {
    let r = report();
    let wide = RenderOptions::default().with_width(Some(400));
    let text = render(&r, Format::Text, ReportKind::Full, &wide);
    let markdown = render(&r, Format::Markdown, ReportKind::Full, &wide);
    let html = render(&r, Format::Html, ReportKind::Full, &wide)
        .replace("&gt;", ">")
        .replace("&lt;", "<")
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    // Markdown's escapes undone: `\`` and `&gt;` read as themselves.
    let markdown = markdown
        .replace('\\', "")
        .replace("&gt;", ">")
        .replace("&lt;", "<");
    // Only gains the plan has are said: this one has all four.
    let gains = "44.8% of all self time in spans, 16.7% of the run's wall time, 49.5% of all bytes allocated, 13.8% of peak memory";
    let process = "20 samples; RSS 100 MiB -> 196 MiB (median 150 MiB";
    for (name, out) in [("text", &text), ("markdown", &markdown), ("html", &html)] {
        assert!(out.contains(gains), "{name} has no plan gains: {out}");
        assert!(out.contains(process), "{name} has no process line");
        // Code is marked up as each format does it (backticks, <code>).
        let plain = |s: &str| {
            s.replace(['`'], "")
                .replace("<code>", "")
                .replace("</code>", "")
        };
        let out = plain(out);
        for note in &r.analysis.notes {
            let start: String = plain(note).chars().take(40).collect();
            assert!(out.contains(&start), "{name} lacks the note {note:?}");
        }
    }

    let base = support::ground_truth();
    let new = support::improved_and_regressed(&base);
    let d = perf_report::diff::diff(&base, &new, &Default::default());
    let counts = "2 regressed, 0 mixed, 1 improved, 3 unchanged, 0 added, 0 removed (noise threshold ±10%, KS α 0.01)";
    for format in [Format::Text, Format::Markdown, Format::Html] {
        let out = render_diff(&d, format, &wide).replace("&#177;", "±");
        assert!(out.contains(counts), "{format:?}: {out}");
    }
}
