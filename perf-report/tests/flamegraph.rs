//! Folded stacks and flamegraphs rebuilt from call edges, on dumps whose
//! answer is known.

mod support;

use assert_cmd::Command;
use perf_layer::dump::{CallEdge, Dump};
use perf_report::flamegraph::{flamegraph_svg, folded_stacks};
use predicates::prelude::*;
use support::{MS, Span};

/// `spans` with the given `(parent, child, child_busy_ns)` edges.
fn graph(spans: &[Span], edges: &[(u32, u32, u64)]) -> Dump {
    let mut d = support::dump("graph", 1_000 * MS, spans);
    d.edges = edges
        .iter()
        .map(|&(parent, child, child_busy_ns)| CallEdge {
            parent,
            child,
            calls: 1,
            child_busy_ns,
            outlived: 0,
        })
        .collect();
    d
}

fn weight(lines: &[String], stack: &str) -> Option<u64> {
    lines.iter().find_map(|l| {
        l.rsplit_once(' ')
            .filter(|(s, _)| *s == stack)
            .map(|(_, w)| w.parse().unwrap())
    })
}

#[test]
fn a_call_tree_folds_exactly_and_keeps_all_self_time() {
    let d = graph(
        &[
            Span::new("root", 1, &[(100 * MS, 1)]).self_time(&[(10 * MS, 1)]),
            Span::new("parse", 2, &[(60 * MS, 1)]),
            Span::new("write", 3, &[(30 * MS, 1)]),
        ],
        &[(0, 1, 60 * MS), (0, 2, 30 * MS)],
    );
    let lines = folded_stacks(&d);
    assert_eq!(weight(&lines, "root"), Some(10 * MS));
    assert_eq!(weight(&lines, "root;parse"), Some(60 * MS));
    assert_eq!(weight(&lines, "root;write"), Some(30 * MS));
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(
        lines[0],
        format!("root;parse {}", 60 * MS),
        "heaviest first"
    );
}

#[test]
fn a_callsite_with_two_callers_is_split_by_the_time_spent_under_each() {
    let d = graph(
        &[
            Span::new("root", 1, &[(100 * MS, 1)]).self_time(&[(0, 1)]),
            Span::new("a", 2, &[(50 * MS, 1)]).self_time(&[(20 * MS, 1)]),
            Span::new("b", 3, &[(50 * MS, 1)]).self_time(&[(40 * MS, 1)]),
            Span::new("shared", 4, &[(40 * MS, 1)]),
        ],
        &[
            (0, 1, 50 * MS),
            (0, 2, 50 * MS),
            (1, 3, 30 * MS),
            (2, 3, 10 * MS),
        ],
    );
    let lines = folded_stacks(&d);
    assert_eq!(weight(&lines, "root;a;shared"), Some(30 * MS));
    assert_eq!(weight(&lines, "root;b;shared"), Some(10 * MS));
    let total: u64 = lines
        .iter()
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, 100 * MS, "{lines:?}");
}

#[test]
fn recursion_and_cycles_terminate_and_names_cannot_break_the_format() {
    let d = graph(
        &[
            Span::new("evil;name\nwith newline", 1, &[(10 * MS, 1)]).self_time(&[(5 * MS, 1)]),
            Span::new("ping", 2, &[(5 * MS, 1)]),
        ],
        &[(0, 0, 10 * MS), (0, 1, 5 * MS), (1, 0, MS)],
    );
    let lines = folded_stacks(&d);
    assert!(!lines.is_empty());
    for line in &lines {
        assert!(line.contains(" "));
        assert!(!line.contains('\n'));
        let stack = line.rsplit_once(' ').unwrap().0;
        assert!(
            stack.split(';').all(|frame| frame != "evil"),
            "semicolon in a name split a frame: {line}"
        );
    }
}

#[test]
fn the_svg_is_drawn_and_an_empty_dump_is_an_error() {
    let d = graph(&[Span::new("only", 1, &[(3 * MS, 2)])], &[]);
    let mut svg = Vec::new();
    flamegraph_svg(&d, &mut svg).unwrap();
    let svg = String::from_utf8(svg).unwrap();
    assert!(
        svg.starts_with("<?xml") && svg.contains("only"),
        "{}",
        &svg[..200.min(svg.len())]
    );
    assert!(flamegraph_svg(&Dump::empty("none"), Vec::new()).is_err());
}

#[test]
fn self_times_past_u64_are_an_error_not_a_panic() {
    // Two roots of 2^63 ns and more each: their sum passes u64.
    let mut d = graph(
        &[Span::new("a", 1, &[(MS, 1)]), Span::new("b", 2, &[(MS, 1)])],
        &[],
    );
    for cs in &mut d.callsites {
        cs.self_ns.sum = u64::MAX / 2 + 1;
    }
    d.edges.clear();
    let err = flamegraph_svg(&d, Vec::new()).unwrap_err();
    assert!(err.to_string().contains("2^64"), "{err}");
    // Each is drawn alone.
    d.callsites.truncate(1);
    assert!(flamegraph_svg(&d, Vec::new()).is_ok());
}

#[test]
fn the_same_dump_draws_the_same_svg() {
    let d = support::ground_truth();
    let draw = || {
        let mut svg = Vec::new();
        flamegraph_svg(&d, &mut svg).unwrap();
        svg
    };
    assert_eq!(
        draw(),
        draw(),
        "colours come from the names, not a random draw"
    );
}

#[test]
fn the_cli_draws_to_a_file_and_refuses_an_empty_dump_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let dump = support::write(dir.path(), "gt.json", &support::ground_truth());
    let svg = dir.path().join("flame.svg");
    Command::cargo_bin("perf-report")
        .unwrap()
        .arg("flamegraph")
        .arg(&dump)
        .arg("-o")
        .arg(&svg)
        .assert()
        .success();
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<?xml"));

    Command::cargo_bin("perf-report")
        .unwrap()
        .args(["flamegraph", "--folded"])
        .arg(&dump)
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"(?m)^[^ ]+ \d+$").unwrap());

    let empty = support::write(dir.path(), "empty.json", &Dump::empty("none"));
    Command::cargo_bin("perf-report")
        .unwrap()
        .arg("flamegraph")
        .arg(&empty)
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("empty.json")
                .and(predicate::str::contains("nothing").or(predicate::str::contains("no span"))),
        );
}
