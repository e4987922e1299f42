//! `--format csv`: the report's tables parse as CSV (every row as wide as
//! its header), names with commas, quotes and line breaks included, through
//! the binary and the library.

mod support;

use assert_cmd::Command;
use perf_report::render::{Format, RenderOptions, ReportKind, render, render_diff};
use perf_report::{Config, Report};

/// RFC 4180 fields of one record: quoted fields may hold commas and doubled
/// quotes. Panics on a malformed field, so a test fails on bad quoting.
fn fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => panic!("unterminated quote in {line:?}"),
                }
            }
            assert!(
                matches!(chars.peek(), None | Some(',')),
                "text after a closing quote in {line:?}"
            );
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                assert_ne!(c, '"', "a bare quote in {line:?}");
                field.push(c);
                chars.next();
            }
        }
        out.push(field);
        if chars.next().is_none() {
            return out;
        }
    }
}

/// The tables of a CSV output: records split into fields, each table's
/// rows checked against its header's width.
fn tables(csv: &str) -> Vec<Vec<Vec<String>>> {
    assert!(csv.ends_with('\n'), "the last record ends its line");
    csv.split("\n\n")
        .map(|table| {
            let rows: Vec<Vec<String>> = table.lines().map(fields).collect();
            let width = rows[0].len();
            for row in &rows {
                assert_eq!(row.len(), width, "{row:?} against {:?}", rows[0]);
            }
            rows
        })
        .collect()
}

#[test]
fn the_full_report_is_its_findings_and_callsites_tables() {
    let mut dump = support::ground_truth();
    let hostile = "parse, \"fast\"\nnext";
    let i = dump
        .callsites
        .iter()
        .position(|c| c.name == "parse")
        .unwrap();
    dump.callsites[i].name = hostile.to_owned();
    dump.callsites[i + 1].name = "=HYPERLINK(\"x\")".to_owned();
    let dir = tempfile::tempdir().unwrap();
    let path = support::write(dir.path(), "gt.json", &dump);
    let out = Command::cargo_bin("perf-report")
        .unwrap()
        .arg(&path)
        .args(["--format", "csv", "--top", "0"])
        .output()
        .unwrap();
    let csv = String::from_utf8(out.stdout).unwrap();
    let t = tables(&csv);
    assert_eq!(t.len(), 2, "{csv}");
    assert_eq!(
        t[0][0],
        ["#", "severity", "score", "class", "span", "location"]
    );
    assert_eq!(t[0].len(), 1 + 5, "five findings");
    assert_eq!(t[1][0][..3], ["span", "location", "calls"]);
    assert_eq!(t[1].len(), 1 + 6, "six callsites");
    let names: Vec<&str> = t[1].iter().map(|r| r[0].as_str()).collect();
    // The line break is made visible; the comma and quotes survive quoted.
    assert!(names.contains(&"parse, \"fast\"\u{FFFD}next"), "{names:?}");
    // A formula is shown, not evaluated.
    assert!(names.contains(&"'=HYPERLINK(\"x\")"), "{names:?}");
}

#[test]
fn every_kind_and_the_diff_parse() {
    let base = support::ground_truth();
    let report = Report::build(&base.clone().into(), &Config::default());
    let opts = RenderOptions::default().with_top(0);
    let summary = tables(&render(&report, Format::Csv, ReportKind::Summary, &opts));
    assert_eq!(summary.len(), 1);
    assert_eq!(summary[0][0][0], "#");
    let weight = tables(&render(&report, Format::Csv, ReportKind::Weight, &opts));
    assert_eq!(weight.len(), 1);
    assert_eq!(weight[0][0][3], "weight");
    assert_eq!(weight[0].len(), 1 + 6);
    let new = support::improved_and_regressed(&base);
    let d = perf_report::diff::diff(&base, &new, &Default::default());
    let diff = tables(&render_diff(&d, Format::Csv, &opts));
    assert_eq!(diff[0][0][0], "verdict");
    assert_eq!(diff[0].len(), 1 + 6);
    // --top applies as in every format.
    let top = render(
        &report,
        Format::Csv,
        ReportKind::Weight,
        &RenderOptions::default().with_top(2),
    );
    assert_eq!(tables(&top)[0].len(), 1 + 2);
}
