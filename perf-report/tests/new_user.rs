//! What a new user meets: identities that survive an edit, readable names
//! and paths, figures that say what they are a share of, and no silent pass
//! or failure.

mod support;

use std::path::PathBuf;

use assert_cmd::Command;
use perf_layer::dump::Dump;
use perf_report::analyze::{Class, analyze};
use perf_report::config::Config;
use perf_report::diff::{DiffOptions, Verdict, diff};
use perf_report::merge::merge;
use perf_report::render::{Format, RenderOptions, ReportKind, render, render_diff};
use support::{MS, Span, dump, ground_truth};

fn cmd() -> Command {
    let mut c = Command::cargo_bin("perf-report").unwrap();
    c.env_remove("CLICOLOR_FORCE")
        .env_remove("NO_COLOR")
        .env_remove("COLUMNS");
    c
}

/// `d` with every callsite one line further down, as after adding a line
/// at the top of the file.
fn shifted(d: &Dump) -> Dump {
    let mut d = d.clone();
    for cs in &mut d.callsites {
        cs.line = cs.line.map(|l| l + 1);
    }
    d
}

#[test]
fn a_line_added_above_every_span_changes_nothing_in_a_diff() {
    let base = ground_truth();
    let d = diff(&base, &shifted(&base), &DiffOptions::default());
    assert_eq!(d.callsites.len(), base.callsites.len());
    assert!(
        d.callsites.iter().all(|c| c.verdict == Verdict::Unchanged),
        "{:?}",
        d.callsites
            .iter()
            .map(|c| (&c.location.name, c.verdict))
            .collect::<Vec<_>>()
    );
    // Shown where the new dump has it.
    let parse = d.callsites.iter().find(|c| c.location.name == "parse");
    assert_eq!(parse.unwrap().location.line, Some(11));
    let text = render_diff(&d, Format::Text, &RenderOptions::default());
    assert!(text.contains("6 unchanged, 0 added, 0 removed"), "{text}");
}

#[test]
fn dumps_from_before_and_after_an_edit_merge_into_one_span_each() {
    let base = ground_truth();
    let merged = merge(vec![base.clone(), shifted(&base)]).unwrap();
    assert_eq!(merged.callsites.len(), base.callsites.len());
    let a = analyze(&merged.into(), &Config::default());
    let hot_spots = a
        .findings
        .iter()
        .filter(|f| f.class == Class::HotSpot)
        .count();
    assert_eq!(hot_spots, 1, "one span, one finding");
}

#[test]
fn two_spans_of_one_name_in_one_module_stay_apart_across_a_line_shift() {
    // `apply` twice in one module (two impls), at lines 10 and 50.
    let spans = [
        Span::new("main", 1, &[(100 * MS, 1)]),
        Span::new("apply", 10, &[(2 * MS, 10)]),
        Span::new("apply", 50, &[(4 * MS, 10)]),
    ];
    let base = dump("two-apply", 200 * MS, &spans);
    let mut new = shifted(&base);
    // The second one got slower.
    new.callsites[2] = Span::new("apply", 51, &[(8 * MS, 10)]).callsite(2);
    let d = diff(&base, &new, &DiffOptions::default());
    assert_eq!(d.callsites.len(), 3);
    let verdict = |line: u32| {
        d.callsites
            .iter()
            .find(|c| c.location.line == Some(line))
            .map(|c| c.verdict)
    };
    assert_eq!(verdict(11), Some(Verdict::Unchanged));
    assert_eq!(verdict(51), Some(Verdict::Regressed));
}

/// Two spans named `apply` in two modules of one crate, in a dependency
/// from crates.io.
fn dependency_dump() -> Dump {
    let mut d = dump(
        "kv",
        1_000 * MS,
        &[
            Span::new("main", 1, &[(900 * MS, 1)]).self_time(&[(MS, 1)]),
            Span::new("apply", 109, &[(30 * MS, 20)]),
            Span::new("apply", 55, &[(10 * MS, 20)]),
        ],
    );
    let registry = "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/mini-kv-0.4.1/src";
    d.callsites[1].module_path = Some("mini_kv::client".to_owned());
    d.callsites[1].target = "mini_kv::client".to_owned();
    d.callsites[1].file = Some(format!("{registry}/client.rs"));
    d.callsites[2].module_path = Some("mini_kv::server".to_owned());
    d.callsites[2].target = "mini_kv::server".to_owned();
    d.callsites[2].file = Some(format!("{registry}/server.rs"));
    d
}

#[test]
fn ambiguous_names_are_qualified_and_dependency_paths_shortened_in_every_format() {
    let r = perf_report::Report::build(&dependency_dump().into(), &Config::default());
    let all = RenderOptions::default().with_top(0);
    for format in [Format::Text, Format::Markdown, Format::Json] {
        let out = render(&r, format, ReportKind::Full, &all);
        assert!(
            out.contains("client::apply") && out.contains("server::apply"),
            "{format}: {out}"
        );
        assert!(
            out.contains("mini-kv-0.4.1/src/client.rs:109"),
            "{format}: {out}"
        );
        if format != Format::Json {
            assert!(!out.contains("index.crates.io"), "{format}: {out}");
        }
    }
    // The unambiguous name stays bare.
    let text = render(&r, Format::Text, ReportKind::Full, &all);
    assert!(!text.contains("::main"), "{text}");
}

#[test]
fn a_program_that_mostly_sleeps_has_no_critical_cpu_finding() {
    // 4.55 s of run, 2.10 ms of self time in one hot loop and 1 ms of its
    // instrumentation, 4 ms of CPU.
    let mut d = dump(
        "sleepy",
        4_550 * MS,
        &[Span::new("tick", 1, &[(210, 10_000)])],
    );
    d.run.cpu_ns = Some(4 * MS);
    d.overhead.per_span_ns = 100.0;
    let loaded: perf_report::LoadedDump = d.into();
    // Batching away 1 ms of CPU in a run of 4.55 s gives back nearly nothing: no
    // finding is worth reporting.
    let a = analyze(&loaded, &Config::default());
    assert!(a.findings.is_empty(), "{:?}", a.findings);
    // Kept regardless of score, the hot loop is there, with its share of
    // the CPU the process used, and scores next to nothing.
    let mut config = Config::default();
    config.scoring.min_score = 0.0;
    let a = analyze(&loaded, &config);
    let hot = a
        .findings
        .iter()
        .find(|f| f.class == Class::HotLoop)
        .expect("a hot loop: most of the CPU the process used");
    assert_eq!(hot.share_of, "the process's CPU time");
    assert!((hot.cost_share - 0.775).abs() < 1e-6, "{}", hot.cost_share);
    assert!(hot.score < 0.1, "{}", hot.score);
    let text = render(
        &perf_report::Report::build(&dump_with_cpu().into(), &Config::default()),
        Format::Text,
        ReportKind::Full,
        &RenderOptions::default(),
    );
    assert!(text.contains("of the process's CPU time"), "{text}");
    assert!(!text.contains("of the run)"), "{text}");
}

/// The ground truth with the CPU time of a process that computed all along.
fn dump_with_cpu() -> Dump {
    let mut d = ground_truth();
    d.run.cpu_ns = Some(d.run.duration_ns);
    d
}

#[test]
fn a_busy_program_s_time_shares_are_of_its_cpu_time() {
    let a = analyze(&dump_with_cpu().into(), &Config::default());
    let hot = &a.findings[0];
    assert_eq!(hot.class, Class::HotSpot);
    // 6 s of `parse` in 12 s of CPU.
    assert!((hot.cost_share - 0.5).abs() < 1e-9, "{}", hot.cost_share);
    assert_eq!(a.totals.time_whole_ns, 12_000 * MS);
}

#[test]
fn rss_deltas_are_per_call_not_summed_over_concurrent_spans() {
    let mut d = ground_truth();
    d.callsites[1].rss_delta = Some(perf_layer::dump::RssDelta {
        sum_bytes: 1_000 * 1024 * 1024,
        max_bytes: 8 * 1024 * 1024,
        min_bytes: 0,
    });
    let a = analyze(&d.into(), &Config::default());
    let parse = a
        .callsites
        .iter()
        .find(|c| c.location.name == "parse")
        .unwrap();
    assert_eq!(parse.rss_delta_per_call_bytes, Some(1024.0 * 1024.0));
    assert_eq!(parse.rss_delta_max_bytes, Some(8 * 1024 * 1024));
    let md = render(
        &perf_report::Report::build(&a_dump_with(parse_rss()).into(), &Config::default()),
        Format::Markdown,
        ReportKind::Full,
        &RenderOptions::default(),
    );
    assert!(md.contains("rss Δ/call"), "{md}");
    assert!(md.contains("1.00 MiB"), "{md}");
}

fn parse_rss() -> perf_layer::dump::RssDelta {
    perf_layer::dump::RssDelta {
        sum_bytes: 1_000 * 1024 * 1024,
        max_bytes: 8 * 1024 * 1024,
        min_bytes: 0,
    }
}

fn a_dump_with(rss: perf_layer::dump::RssDelta) -> Dump {
    let mut d = ground_truth();
    d.callsites[1].rss_delta = Some(rss);
    d
}

#[test]
fn a_process_step_reads_as_one_phrase() {
    let mut d = ground_truth();
    support::timeline(&mut d, 500, |_| 100 << 20, 99.0, 20);
    let r = perf_report::Report::build(&d.into(), &Config::default());
    let text = render(
        &r,
        Format::Text,
        ReportKind::Summary,
        &RenderOptions::default(),
    );
    assert!(text.contains("process CPU saturation:"), "{text}");
    assert!(!text.contains("saturation the process"), "{text}");
}

struct Files(tempfile::TempDir);

impl Files {
    fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }

    fn write(&self, name: &str, d: &Dump) -> PathBuf {
        support::write(self.0.path(), name, d)
    }
}

#[test]
fn a_dump_without_spans_warns_and_fails_fail_on() {
    let f = Files::new();
    let empty = f.write("empty.json", &Dump::empty("filtered"));
    let out = cmd().arg(&empty).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("recorded no spans"), "{err}");
    assert!(err.contains("EnvFilter"), "names a likely cause: {err}");
    let out = cmd()
        .arg(&empty)
        .args(["--fail-on", "critical"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("nothing to judge")
    );
}

#[test]
fn fail_on_names_what_tripped_it_and_accepts_low() {
    let f = Files::new();
    let gt = f.write("gt.json", &ground_truth());
    let out = cmd().arg(&gt).args(["--fail-on", "high"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--fail-on high: 3 findings at or above high"),
        "{err}"
    );
    assert!(err.contains("hot spot parse (src/work.rs:10)"), "{err}");
    let out = cmd().arg(&gt).args(["--fail-on", "low"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

#[test]
fn fail_on_regression_names_the_callsite_that_tripped_it() {
    let f = Files::new();
    let base = ground_truth();
    let a = f.write("a.json", &base);
    let b = f.write("b.json", &support::improved_and_regressed(&base));
    let out = cmd()
        .args(["diff"])
        .arg(&a)
        .arg(&b)
        .args(["--fail-on-regression", "50"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("--fail-on-regression 50"), "{err}");
    assert!(
        err.contains("lookup (src/work.rs:20) regressed +60.0%"),
        "{err}"
    );
}

#[test]
fn the_same_run_given_twice_is_refused() {
    let f = Files::new();
    let mut d = ground_truth();
    d.run.pid = 4242;
    d.run.host = "box".to_owned();
    d.run.started_at_unix_ms = 1_700_000_000_000;
    let a = f.write("a.json", &d);
    // One file twice.
    let out = cmd().arg(&a).arg(&a).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("are the same file"), "{err}");
    // Two dumps of one run (a periodic dump and the final one).
    let b = f.write("b.json", &d);
    let out = cmd().arg(&a).arg(&b).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("are dumps of one run (pid 4242 on box"),
        "{err}"
    );
    assert!(err.contains("count its spans twice"), "{err}");
}

#[test]
fn json_that_is_not_an_object_is_called_json() {
    let f = Files::new();
    let p = f.0.path().join("array.json");
    std::fs::write(&p, b"[1,2,3]").unwrap();
    let out = cmd().arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("this is JSON, but an array"), "{err}");
    assert!(!err.contains("not JSON"), "{err}");
}

#[test]
fn no_argument_shows_the_subcommands() {
    let out = cmd().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("diff") && err.contains("flamegraph"), "{err}");
}

#[test]
fn help_texts_are_not_broken_mid_paragraph() {
    for args in [
        &["--help"][..],
        &["diff", "--help"],
        &["flamegraph", "--help"],
    ] {
        let out = cmd().args(args).output().unwrap();
        let help = String::from_utf8(out.stdout).unwrap();
        // In each paragraph of prose, every line but the last runs most of
        // the way across: a short one inside it is a sentence broken in two.
        for paragraph in help.split("\n\n") {
            let lines: Vec<&str> = paragraph.lines().collect();
            if lines.iter().any(|l| l.starts_with(' ') || l.ends_with(':')) {
                continue; // an indented list or a heading, not prose
            }
            for line in lines.iter().rev().skip(1) {
                assert!(
                    line.len() >= 50,
                    "{args:?}: a short line inside a paragraph: {line:?}"
                );
            }
        }
    }
}

#[test]
fn the_terminal_width_is_followed_and_can_be_lifted() {
    let f = Files::new();
    let gt = f.write("gt.json", &ground_truth());
    let narrow = cmd().arg(&gt).args(["--width", "80"]).output().unwrap();
    let narrow = String::from_utf8(narrow.stdout).unwrap();
    assert!(narrow.lines().all(|l| l.chars().count() <= 80), "{narrow}");
    assert!(narrow.contains("hidden to fit 80 columns"), "{narrow}");
    let wide = cmd().arg(&gt).args(["--width", "0"]).output().unwrap();
    let wide = String::from_utf8(wide.stdout).unwrap();
    assert!(wide.lines().any(|l| l.chars().count() > 120));
    // COLUMNS is read when stdout is not a terminal.
    let columns = cmd().arg(&gt).env("COLUMNS", "90").output().unwrap();
    let columns = String::from_utf8(columns.stdout).unwrap();
    assert!(
        columns.lines().all(|l| l.chars().count() <= 90),
        "{columns}"
    );
}
