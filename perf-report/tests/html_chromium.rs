//! The HTML report in a real browser: Debian's Chromium, headless, loads
//! each page from a file, and the page's self-check (`data-charts`,
//! `data-errors` on `<body>`) says how many charts drew and how many
//! script errors there were. A screenshot shows it renders at all.
//!
//! The dashboard of `perf-report serve` too, over HTTP from the real
//! server: its runs table and its trend sparklines.
//!
//! Without Chromium on `PATH` the tests skip, except under `CI=true`, where
//! they fail: install Debian's `chromium` package.

mod support;

use std::path::Path;

use perf_report::history::Store;
use perf_report::render::{Format, RenderOptions, ReportKind, render, render_diff};
use perf_report::{Config, Report};
use support::browser::{body_data, chromium, run_browser};
use support::history::run;
use support::server::serve;

/// Loads `html` in the browser from a file and checks its self-check.
fn assert_draws(browser: &Path, html: &str, charts: usize) -> String {
    let dir = tempfile::tempdir().expect("a temp dir");
    let page = dir.path().join("report.html");
    std::fs::write(&page, html).expect("the page is written");
    assert_url_draws(browser, &format!("file://{}", page.display()), charts)
}

/// Loads `url` in the browser and checks its self-check: `charts` charts
/// drew and no script failed; returns the DOM as the browser left it.
fn assert_url_draws(browser: &Path, url: &str, charts: usize) -> String {
    let dom = run_browser(browser, url, &["--dump-dom".to_owned()]);
    assert_eq!(
        body_data(&dom, "errors").as_deref(),
        Some("0"),
        "script errors, or the self-check did not run:\n{}",
        &dom[..dom.len().min(2_000)]
    );
    assert_eq!(
        body_data(&dom, "charts"),
        Some(charts.to_string()),
        "charts that drew"
    );
    assert_eq!(
        body_data(&dom, "expected-charts"),
        Some(charts.to_string()),
        "charts the renderer wrote"
    );
    dom
}

fn ground_truth_page() -> String {
    let r = Report::build(&support::ground_truth().into(), &Config::default());
    render(
        &r,
        Format::Html,
        ReportKind::Full,
        &RenderOptions::default(),
    )
}

#[test]
fn every_chart_of_the_report_draws_without_script_errors() {
    let Some(browser) = chromium() else { return };
    // Flamegraph, latency, RSS, CPU, live heap.
    assert_draws(&browser, &ground_truth_page(), 5);
}

#[test]
fn every_chart_of_the_diff_draws_without_script_errors() {
    let Some(browser) = chromium() else { return };
    let base = support::ground_truth();
    let new = support::improved_and_regressed(&base);
    let d = perf_report::diff::diff(&base, &new, &Default::default());
    // encode, lookup and parse changed.
    assert_draws(
        &browser,
        &render_diff(&d, Format::Html, &RenderOptions::default()),
        3,
    );
}

#[test]
fn a_hostile_span_name_stays_text_in_the_browser() {
    let Some(browser) = chromium() else { return };
    let mut d = support::ground_truth();
    let parse = d
        .callsites
        .iter_mut()
        .find(|c| c.name == "parse")
        .expect("ground truth has parse");
    parse.name = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&".to_owned();
    let r = Report::build(&d.into(), &Config::default());
    let html = render(
        &r,
        Format::Html,
        ReportKind::Full,
        &RenderOptions::default(),
    );
    let dom = assert_draws(&browser, &html, 5);
    // The browser parsed two scripts, ours, and no image but the flamegraph.
    assert_eq!(dom.matches("<script").count(), 2);
    assert_eq!(dom.matches("<img").count(), 1);
    assert!(dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}

#[test]
fn the_report_screenshots_as_a_real_picture() {
    let Some(browser) = chromium() else { return };
    let dir = tempfile::tempdir().expect("a temp dir");
    let page = dir.path().join("report.html");
    std::fs::write(&page, ground_truth_page()).expect("the page is written");
    let shot = dir.path().join("report.png");
    run_browser(
        &browser,
        &format!("file://{}", page.display()),
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,2000".to_owned(),
        ],
    );
    let png = std::fs::read(&shot).expect("a screenshot was written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    // A blank 1280x2000 page compresses to a few kilobytes.
    assert!(png.len() > 50_000, "{} bytes", png.len());
}

#[test]
fn the_dashboard_and_a_served_report_draw_in_the_browser() {
    let Some(browser) = chromium() else { return };
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = dir.path().join("dash.db");
    let mut store = Store::open(&db).expect("a new history");
    // Twelve runs; `lookup` is 60% slower from the seventh: a change point.
    let mut last = 0;
    for i in 0..12 {
        let slow = (i >= 6).then_some(("lookup", 1.6));
        last = store
            .record(
                &run(i, 0.02, slow, 0.0),
                &[("branch".into(), "main".into())],
            )
            .expect("recorded")
            .id;
    }
    drop(store);
    let server = serve(&db, &[]);
    let dom = run_browser(
        &browser,
        &format!("{}/", server.base),
        &["--dump-dom".to_owned()],
    );
    // Every run is a row of the table, each span drawn has sparklines, and
    // lookup's shift is marked.
    assert_eq!(dom.matches("/report.html\"").count(), 12, "{:.2000}", dom);
    let lines = dom.matches("<polyline").count();
    assert!(lines >= 3, "{lines} sparklines:\n{:.2000}", dom);
    assert!(
        dom.contains("class=\"change\""),
        "no change point marked:\n{:.3000}",
        dom
    );
    // A run's report, as the dashboard links it, draws every chart: these
    // dumps have no process timeline or heap, so the flamegraph and the
    // latency distributions.
    assert_url_draws(
        &browser,
        &format!("{}/api/runs/{last}/report.html", server.base),
        2,
    );
}
