//! The HTML report on the ground-truth dump: one self-contained document,
//! every picture drawn, every name from the dump escaped, the diff's curves
//! overlaid. `html_chromium.rs` loads the same pages in a browser.

mod support;

use base64::Engine as _;
use perf_report::render::{Format, RenderOptions, ReportKind, render, render_diff};
use perf_report::{Config, Report};

/// A span name, a file and a program that would run script or end an
/// attribute if they were not escaped.
const HOSTILE_NAME: &str = "<script>alert(1)</script>\"'&";
const HOSTILE_FILE: &str = "src/\"><img src=x onerror=alert(2)>.rs";
const HOSTILE_PROGRAM: &str = "</title><script>alert(3)</script>";

fn report(dump: perf_layer::dump::Dump) -> Report {
    Report::build(&dump.into(), &Config::default())
}

fn html(r: &Report, kind: ReportKind) -> String {
    render(r, Format::Html, kind, &RenderOptions::default())
}

/// The ground-truth dump with hostile strings where names go.
fn hostile() -> perf_layer::dump::Dump {
    let mut d = support::ground_truth();
    d.run.program = HOSTILE_PROGRAM.to_owned();
    let parse = d
        .callsites
        .iter_mut()
        .find(|c| c.name == "parse")
        .expect("ground truth has parse");
    parse.name = HOSTILE_NAME.to_owned();
    parse.file = Some(HOSTILE_FILE.to_owned());
    d
}

/// The values of every `name="..."` attribute in `page`.
fn attributes<'a>(page: &'a str, name: &str) -> Vec<&'a str> {
    let needle = format!(" {name}=\"");
    page.match_indices(&needle)
        .filter_map(|(at, _)| {
            let rest = &page[at + needle.len()..];
            rest.find('"').map(|end| &rest[..end])
        })
        .collect()
}

/// The part of `page` from `<section id="id">` to its end.
fn section<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!("<section id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no section {id}"));
    let end = page[start..].find("</section>").expect("sections end") + start;
    &page[start..end]
}

/// Each chart figure of `page`: from `<figure class="chart-box">` to its end.
fn chart_figures(page: &str) -> Vec<&str> {
    page.match_indices("<figure class=\"chart-box\">")
        .map(|(at, _)| {
            let end = page[at..].find("</figure>").expect("figures end") + at;
            &page[at..end]
        })
        .collect()
}

fn assert_self_contained(page: &str) {
    assert!(page.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
    assert!(page.trim_end().ends_with("</html>"));
    for tag in ["<html", "<head>", "<body", "</body>", "</html>"] {
        assert_eq!(page.matches(tag).count(), 1, "one {tag}");
    }
    for src in attributes(page, "src") {
        assert!(src.starts_with("data:"), "fetches {src}");
    }
    for href in attributes(page, "href") {
        assert!(href.starts_with('#'), "links out to {href}");
    }
    for fetch in ["<link", "@import", "url(", "<iframe", "<object", "<embed"] {
        assert!(!page.contains(fetch), "{fetch} fetches at view time");
    }
    assert!(page.contains("Content-Security-Policy\" content=\"default-src 'none'"));
}

#[test]
fn the_full_report_is_one_self_contained_page_with_every_picture() {
    let r = report(support::ground_truth());
    let page = html(&r, ReportKind::Full);
    assert_self_contained(&page);
    assert!(page.contains("<title>perf-report: ground-truth</title>"));

    // The findings, in the shared columns, severity coloured.
    let findings = section(&page, "findings");
    for header in ["severity", "score", "class", "span", "location"] {
        assert!(findings.contains(&format!(">{header}</th>")), "{header}");
    }
    for (class, span) in [
        ("hot spot", "parse"),
        ("waiting, not working", "fetch"),
        ("leak suspect", "cache_insert"),
        ("allocation-heavy", "encode"),
        ("tail latency", "lookup"),
    ] {
        assert!(
            findings.contains(&format!("<td>{class}</td><td>{span}</td>")),
            "{class} {span}"
        );
    }
    assert!(findings.contains("<span class=\"sev-critical\">critical</span>"));
    assert!(findings.contains("1 critical, 2 high, 1 medium, 1 low"));

    // The plan's steps with every part the text report has.
    let plan = section(&page, "plan");
    assert_eq!(plan.matches("<li class=\"step\"").count(), 5);
    for part in [
        "why", "evidence", "gain", "effort", "fixes", "first", "validate",
    ] {
        assert!(plan.contains(&format!("<dt>{part}</dt>")), "{part}");
    }
    assert!(section(&page, "callsites").contains("6 of 6 by self time."));
    assert!(section(&page, "process").contains("20 samples; RSS 100 MiB -&gt; 196 MiB"));

    // One chart per picture, each with a line.
    let figures = chart_figures(&page);
    let titles: Vec<&str> = figures
        .iter()
        .filter_map(|f| f.split("<strong>").nth(1)?.split("</strong>").next())
        .collect();
    assert_eq!(
        titles,
        [
            "Busy time by percentile",
            "Resident memory (RSS)",
            "CPU",
            "Live heap by callsite"
        ]
    );
    for f in &figures {
        assert!(f.contains("<svg class=\"chart"), "{f}");
        assert!(f.contains("<polyline"), "{f}");
        assert!(f.contains("class=\"axis-title\""), "axis labels: {f}");
        assert!(f.contains("<ul class=\"legend\">"), "legend: {f}");
    }
    let latency = figures[0];
    for label in ["50%", "90%", "99%", "99.9%", "1 ms", "10 ms", "100 µs"] {
        assert!(latency.contains(&format!(">{label}</text>")), "{label}");
    }
    // The five spans with self time beside main, each its own curve.
    assert_eq!(latency.matches("<polyline").count(), 6);
    assert!(latency.contains("lookup (p99 10.0 ms, 2,000 calls)"));
    assert!(figures[3].contains("cache_insert (peak 30.0 MiB)"));

    // The flamegraph, as an image of inferno's SVG.
    let images: Vec<&str> = attributes(&page, "src");
    assert_eq!(images.len(), 1);
    let svg = base64::engine::general_purpose::STANDARD
        .decode(images[0].trim_start_matches("data:image/svg+xml;base64,"))
        .expect("the flamegraph is base64");
    let svg = String::from_utf8(svg).expect("SVG is text");
    assert!(svg.contains("<svg") && svg.contains("parse"), "{svg}");
    assert!(page.contains("<img class=\"flamegraph\""));

    assert!(page.contains("<body data-expected-charts=\"5\">"));
    assert!(page.contains("window.addEventListener('error'"));
    assert!(page.contains("document.body.dataset.charts"));
}

#[test]
fn a_hostile_span_name_is_only_ever_escaped() {
    let d = hostile();
    let r = report(d.clone());
    let new = support::improved_and_regressed(&support::ground_truth());
    let mut pages: Vec<(String, String)> =
        [ReportKind::Full, ReportKind::Summary, ReportKind::Weight]
            .into_iter()
            .map(|kind| (kind.to_string(), html(&r, kind)))
            .collect();
    let diff = perf_report::diff::diff(&d, &new, &Default::default());
    pages.push((
        "diff".to_owned(),
        render_diff(&diff, Format::Html, &RenderOptions::default().with_top(0)),
    ));
    for (kind, page) in &pages {
        assert_self_contained(page);
        // Ours are the only scripts: the error hook and the self-check.
        assert_eq!(page.matches("<script").count(), 2, "{kind}");
        assert!(!page.contains("alert(1)</script>"), "{kind}");
        assert!(!page.contains("<img src=x"), "{kind}");
        assert!(!page.contains("</title><script>"), "{kind}");
        assert!(!page.contains("\"'&"), "{kind}");
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"),
            "{kind}: the name is shown, escaped"
        );
    }
    let full = &pages[0].1;
    assert!(full.contains("&lt;/title&gt;&lt;script&gt;alert(3)&lt;/script&gt;</title>"));
    assert!(full.contains("src/&quot;&gt;&lt;img src=x onerror=alert(2)&gt;.rs:10"));
    // In a chart's legend and tooltip too.
    let latency = chart_figures(full)[0];
    assert!(latency.contains("<title>&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp; (p99"));
    // And in the flamegraph, which inferno escapes for its own SVG.
    let src = attributes(full, "src")[0].trim_start_matches("data:image/svg+xml;base64,");
    let svg = base64::engine::general_purpose::STANDARD
        .decode(src)
        .expect("base64");
    let svg = String::from_utf8(svg).expect("SVG is text");
    assert!(!svg.contains("<script>alert(1)"), "{svg}");
}

#[test]
fn the_diff_page_overlays_base_and_new_for_each_changed_span() {
    let base = support::ground_truth();
    let new = support::improved_and_regressed(&base);
    let d = perf_report::diff::diff(&base, &new, &Default::default());
    let page = render_diff(&d, Format::Html, &RenderOptions::default());
    assert_self_contained(&page);
    assert!(page.contains("2 regressed, 0 mixed, 1 improved, 3 unchanged"));
    let table = section(&page, "callsites");
    assert!(table.contains(">mean busy (base -&gt; new)</th>"));
    assert!(table.contains("<span class=\"v-regressed\">regressed</span>"));
    let why = section(&page, "why");
    assert!(why.contains("<span class=\"name\">lookup</span>: time: mean +60.0%"));

    let figures = chart_figures(&page);
    let lookup = figures
        .iter()
        .find(|f| f.contains("<strong>lookup: regressed</strong>"))
        .expect("a chart of the regressed lookup");
    assert_eq!(lookup.matches("<polyline").count(), 2, "{lookup}");
    assert_eq!(
        lookup.matches("stroke-dasharray").count(),
        2,
        "base dashed, in legend too"
    );
    assert!(lookup.contains("base (p99 10.0 ms)") && lookup.contains("new (p99 16.1 ms)"));
    // Every changed span, and only those.
    assert_eq!(figures.len(), 3);
    assert!(
        figures
            .iter()
            .any(|f| f.contains("<strong>parse: improved</strong>"))
    );
    assert!(page.contains("<body data-expected-charts=\"3\">"));
}

#[test]
fn rows_follow_top_and_other_kinds_show_their_parts() {
    let r = report(support::ground_truth());
    let page = render(
        &r,
        Format::Html,
        ReportKind::Full,
        &RenderOptions::default().with_top(2),
    );
    let findings = section(&page, "findings");
    assert_eq!(findings.matches("<tr>").count(), 3, "header and two rows");
    assert!(findings.contains("(3 more findings; --top 0 shows all)"));
    assert_eq!(
        section(&page, "plan").matches("<li class=\"step\"").count(),
        2
    );
    assert!(section(&page, "callsites").contains("2 of 6 by self time."));
    // The latency chart follows it too.
    assert_eq!(chart_figures(&page)[0].matches("<polyline").count(), 2);

    let summary = html(&r, ReportKind::Summary);
    assert_self_contained(&summary);
    assert!(section(&summary, "plan").contains("<ol class=\"short\">"));
    assert!(!summary.contains("<section id=\"callsites\">"));
    assert!(summary.contains("<body data-expected-charts=\"0\">"));

    let weight = html(&r, ReportKind::Weight);
    assert_self_contained(&weight);
    let weights = section(&weight, "weights");
    assert!(weights.contains(">frequency</th>"));
    assert!(weights.contains("weight = 40% CPU (self time)"));
    assert!(!weight.contains("<section id=\"findings\">"));
}

#[test]
fn the_same_report_renders_the_same_bytes() {
    let r = report(support::ground_truth());
    assert_eq!(html(&r, ReportKind::Full), html(&r, ReportKind::Full));
}

#[test]
fn a_dump_without_timeline_or_spans_still_makes_a_page() {
    let r = report(perf_layer::dump::Dump::empty("empty"));
    let page = html(&r, ReportKind::Full);
    assert_self_contained(&page);
    assert!(page.contains("No findings: nothing crossed a threshold."));
    assert!(page.contains("No span has self time to draw."));
    assert!(page.contains("No process timeline"));
    assert!(page.contains("<body data-expected-charts=\"0\">"));
}

#[test]
fn the_command_line_writes_html() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let dump = support::write(dir.path(), "dump.json", &support::ground_truth());
    let out = dir.path().join("report.html");
    assert_cmd::Command::cargo_bin("perf-report")
        .expect("the binary")
        .arg(&dump)
        .args(["-f", "html", "-o"])
        .arg(&out)
        .assert()
        .success();
    let page = std::fs::read_to_string(&out).expect("the page");
    assert_self_contained(&page);
    assert!(page.contains("<body data-expected-charts=\"5\">"));
}

#[test]
fn a_dump_of_ten_thousand_callsites_makes_a_page_of_a_few_megabytes() {
    // One callsite, copied: building ten thousand histograms would be slow.
    let mut d = support::dump(
        "large",
        60_000 * support::MS,
        &[
            support::Span::new("main", 1, &[(60_000 * support::MS, 1)]),
            support::Span::new("work", 2, &[(1_000, 30), (50_000, 1)]),
        ],
    );
    let template = d.callsites[1].clone();
    for i in 2..10_000u32 {
        let mut cs = template.clone();
        cs.id = i;
        cs.name = format!("work_{i}");
        cs.line = Some(i);
        cs.self_ns.sum += u64::from(i);
        d.callsites.push(cs);
        d.edges.push(perf_layer::dump::CallEdge {
            parent: 0,
            child: i,
            calls: 31,
            child_busy_ns: template.busy_ns.sum,
            outlived: 0,
        });
    }
    support::timeline(&mut d, 100, |i| 100 * support::MIB + i * 4096, 80.0, 600);
    let r = report(d);
    let page = html(&r, ReportKind::Full);
    assert!(page.len() < 5_000_000, "{} bytes", page.len());
    // Ten rows and eight curves, not ten thousand.
    assert_eq!(section(&page, "callsites").matches("<tr>").count(), 11);
    assert_eq!(chart_figures(&page)[0].matches("<polyline").count(), 8);
    let all = render(
        &r,
        Format::Html,
        ReportKind::Full,
        &RenderOptions::default().with_top(0),
    );
    assert_eq!(section(&all, "callsites").matches("<tr>").count(), 10_001);
    assert!(all.len() < 10_000_000, "{} bytes", all.len());
}
