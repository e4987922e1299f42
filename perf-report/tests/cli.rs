//! The binary: exit codes 0/1/2, one-line error messages, stdin, merge,
//! diff, output files and colour.

mod support;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use perf_layer::dump::FORMAT_VERSION;
use predicates::prelude::*;

fn cmd() -> Command {
    let mut c = Command::cargo_bin("perf-report").unwrap();
    c.env_remove("CLICOLOR_FORCE").env_remove("NO_COLOR");
    c
}

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn raw(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
    fn ground_truth(&self) -> PathBuf {
        support::write(self.dir.path(), "gt.json", &support::ground_truth())
    }
    fn clean(&self) -> PathBuf {
        support::write(self.dir.path(), "clean.json", &support::clean())
    }
}

/// Runs and checks an error: exit 2, exactly one stderr line, prefixed and
/// naming the file, containing `what`.
fn fails_with(path: &Path, what: &str) {
    let out = cmd().arg(path).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    let name = path.display().to_string();
    assert!(err.starts_with(&format!("perf-report: {name}: ")), "{err}");
    assert!(err.contains(what), "expected `{what}` in: {err}");
    assert!(!err.contains("panicked"));
    assert!(out.stdout.is_empty());
}

#[test]
fn help_teaches_with_examples_and_exit_codes() {
    cmd()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Examples:"))
        .stdout(predicate::str::contains(
            "perf-report diff before.json after.json",
        ))
        .stdout(predicate::str::contains("Exit codes:"))
        .stdout(predicate::str::contains("--fail-on"));
    cmd()
        .args(["diff", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Kolmogorov-Smirnov"));
}

#[test]
fn bad_arguments_exit_2() {
    cmd().assert().code(2);
    cmd().args(["x.json", "--format", "yaml"]).assert().code(2);
    cmd()
        .args(["x.json", "--max-size", "lots"])
        .assert()
        .code(2);
}

#[test]
fn a_clean_dump_exits_0_even_with_fail_on() {
    let f = Files::new();
    cmd()
        .arg(f.clean())
        .args(["--fail-on", "medium"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("No findings"));
}

#[test]
fn fail_on_gates_by_severity() {
    let f = Files::new();
    let gt = f.ground_truth();
    // Findings, but no bar: 0.
    cmd()
        .arg(&gt)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("hot spot"));
    for bar in ["critical", "high", "medium"] {
        cmd().arg(&gt).args(["--fail-on", bar]).assert().code(1);
    }
    // One medium tail among eleven even spans: only the medium bar trips.
    let mut spans: Vec<support::Span> = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"]
        .iter()
        .zip(1..)
        .map(|(name, line)| support::Span::new(name, line, &[(5 * support::MS, 100)]))
        .collect();
    spans.push(support::Span::new(
        "lookup",
        99,
        &[(50 * support::US, 1_960), (10 * support::MS, 40)],
    ));
    let d = support::dump("tail", 6_000 * support::MS, &spans);
    let tail_only = support::write(f.dir.path(), "tail.json", &d);
    cmd()
        .arg(&tail_only)
        .assert()
        .stdout(predicate::str::contains(
            "0 critical, 0 high, 1 medium, 0 low",
        ));
    cmd()
        .arg(&tail_only)
        .args(["--fail-on", "critical"])
        .assert()
        .code(0);
    cmd()
        .arg(&tail_only)
        .args(["--fail-on", "medium"])
        .assert()
        .code(1);
}

#[test]
fn broken_inputs_get_one_clear_line_and_exit_2() {
    let f = Files::new();
    fails_with(&f.path("missing.json"), "no such file");
    fails_with(&f.raw("empty.json", b""), "the file is empty");
    let valid = serde_json::to_vec(&support::ground_truth()).unwrap();
    fails_with(&f.raw("cut.json", &valid[..valid.len() / 3]), "truncated");
    fails_with(&f.raw("text.json", b"this is not json"), "not JSON");

    let mut v: serde_json::Value = serde_json::from_slice(&valid).unwrap();
    v["format_version"] = (FORMAT_VERSION + 1).into();
    fails_with(
        &f.raw("newer.json", v.to_string().as_bytes()),
        "newer than this perf-report reads",
    );

    let mut v: serde_json::Value = serde_json::from_slice(&valid).unwrap();
    v["callsites"][1]["wall_ns"]["encoded"] = "%%%".into();
    fails_with(
        &f.raw("hist.json", v.to_string().as_bytes()),
        "callsite `parse` has a broken histogram",
    );
}

#[test]
fn files_above_max_size_are_refused() {
    let f = Files::new();
    let gt = f.ground_truth();
    let out = cmd()
        .arg(&gt)
        .args(["--max-size", "1KiB"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("larger than the 1024-byte limit"), "{err}");
}

#[test]
fn stdin_is_read_with_a_dash() {
    let dump = serde_json::to_vec(&support::ground_truth()).unwrap();
    cmd()
        .args(["-", "--kind", "summary"])
        .write_stdin(dump)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("ground-truth"))
        .stdout(predicate::str::contains("hot spot"));
    let out = cmd().arg("-").write_stdin("").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .starts_with("perf-report: <stdin>: the file is empty")
    );
}

#[test]
fn two_dumps_merge_into_the_known_answer() {
    let f = Files::new();
    let gt = f.ground_truth();
    let gt2 = support::write(f.dir.path(), "gt2.json", &support::ground_truth());
    let out = cmd()
        .args([&gt, &gt2])
        .args(["--format", "json", "--top", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Twice the calls, twice the time, the same shares.
    assert_eq!(v["totals"]["calls"], 2 * 4_601);
    assert_eq!(v["totals"]["duration_ns"], 24_000_000_000u64);
    let parse = v["callsites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["location"]["name"] == "parse")
        .unwrap();
    assert_eq!(parse["calls"], 2_000);
    assert_eq!(parse["self_total_ns"], 12_000_000_000u64);
    assert!((parse["self_share"].as_f64().unwrap() - 6_000.0 / 7_108.0).abs() < 1e-3);
    assert_eq!(v["findings"][0]["class"], "hot_spot");
}

#[test]
fn diff_gates_on_regression_percentage() {
    let f = Files::new();
    let base = f.ground_truth();
    let new = support::write(
        f.dir.path(),
        "new.json",
        &support::improved_and_regressed(&support::ground_truth()),
    );
    cmd()
        .arg("diff")
        .args([&base, &new])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("regressed"))
        .stdout(predicate::str::contains("improved"));
    // lookup regressed by 60%, encode's allocation by 100%.
    cmd()
        .arg("diff")
        .args([&base, &new])
        .args(["--fail-on-regression", "50"])
        .assert()
        .code(1);
    cmd()
        .arg("diff")
        .args([&base, &new])
        .args(["--fail-on-regression", "150"])
        .assert()
        .code(0);
    // Against itself nothing regresses.
    cmd()
        .arg("diff")
        .args([&base, &base])
        .args(["--fail-on-regression", "1"])
        .assert()
        .code(0);
    // A broken side is an error.
    let out = cmd()
        .arg("diff")
        .arg(&base)
        .arg(f.path("gone.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("gone.json: no such file")
    );
    // JSON diff is versioned.
    let out = cmd()
        .arg("diff")
        .args([&base, &new])
        .args(["--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["report_format_version"], 1);
    assert_eq!(v["verdict_counts"]["regressed"], 2);
    // JSON lists every row unless --top says otherwise (text shows 10).
    let out = cmd()
        .arg(f.clean())
        .args(["--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["callsites"].as_array().unwrap().len(), 12);
    assert_eq!(v["shown"]["top"], 0);
    cmd()
        .arg(f.clean())
        .assert()
        .stdout(predicate::str::contains("CALLSITES  10 of 12"));
}

#[test]
fn output_goes_to_a_file_when_asked() {
    let f = Files::new();
    let gt = f.ground_truth();
    let report = f.path("report.md");
    cmd()
        .arg(&gt)
        .args(["--format", "markdown", "--output"])
        .arg(&report)
        .assert()
        .code(0)
        .stdout(predicate::str::is_empty());
    let md = std::fs::read_to_string(&report).unwrap();
    assert!(md.starts_with("## perf-report: ground-truth"));
    assert!(!md.contains('\u{1b}'));
    let out = cmd()
        .arg(&gt)
        .arg("--output")
        .arg(f.path("no/such/dir/r.txt"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("cannot write the report")
    );
}

#[test]
fn colour_follows_the_flag_and_no_color() {
    let f = Files::new();
    let gt = f.ground_truth();
    // Not a terminal: no colour by default.
    cmd()
        .arg(&gt)
        .assert()
        .stdout(predicate::str::contains("\u{1b}[").not());
    cmd()
        .arg(&gt)
        .args(["--color", "always"])
        .assert()
        .stdout(predicate::str::contains("\u{1b}["));
    cmd()
        .arg(&gt)
        .env("CLICOLOR_FORCE", "1")
        .env("NO_COLOR", "1")
        .assert()
        .stdout(predicate::str::contains("\u{1b}[").not());
    cmd()
        .arg(&gt)
        .env("CLICOLOR_FORCE", "1")
        .assert()
        .stdout(predicate::str::contains("\u{1b}["));
}

#[test]
fn weight_kind_and_top_limit_rows() {
    let f = Files::new();
    let gt = f.ground_truth();
    cmd()
        .arg(&gt)
        .args(["--kind", "weight", "--top", "2"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("SESSION WEIGHTS"))
        .stdout(predicate::str::contains("encode"))
        .stdout(predicate::str::contains(
            "(4 more spans; --top 0 shows all)",
        ));
}

#[test]
fn a_hostile_span_name_cannot_break_markdown_or_the_terminal() {
    let f = Files::new();
    let mut d = support::ground_truth();
    d.callsites[1].name = "evil|name`<script>\n| x | y |\u{1b}[31m".to_owned();
    let p = support::write(f.dir.path(), "evil.json", &d);
    let md = cmd()
        .arg(&p)
        .args(["--format", "markdown", "--top", "0"])
        .output()
        .unwrap();
    let md = String::from_utf8(md.stdout).unwrap();
    assert!(!md.contains("<script>"));
    assert!(!md.contains('\u{1b}'));
    for line in md.lines().filter(|l| l.starts_with('|')) {
        let unescaped = line.replace("\\|", "");
        let cells = unescaped.matches('|').count();
        // The findings (6 columns), callsite (14) and weight (7) tables.
        assert!(cells == 7 || cells == 15 || cells == 8, "{line}");
    }
    let text = cmd().arg(&p).output().unwrap();
    assert!(!String::from_utf8(text.stdout).unwrap().contains('\u{1b}'));
}

#[test]
fn a_config_file_changes_thresholds_and_bands() {
    let f = Files::new();
    let gt = f.ground_truth();
    // One critical finding by default (the hot spot, 40.1); with critical at
    // 45 there is none, and --fail-on critical passes.
    cmd()
        .arg(&gt)
        .args(["--fail-on", "critical"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("1 critical, 2 high"));
    let cfg = f.raw("cfg.json", br#"{"bands": {"critical": 45}}"#);
    cmd()
        .arg(&gt)
        .arg("--config")
        .arg(&cfg)
        .args(["--fail-on", "critical"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("0 critical, 3 high"));
    let bad = f.raw("bad.json", br#"{"band": {"critical": 35}}"#);
    let out = cmd().arg(&gt).arg("--config").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1);
    assert!(
        err.contains("not a valid perf-report config (unknown field `band`"),
        "{err}"
    );
}

/// The gate fails on what matters to the run: a fix that made the run 20%
/// faster passes although a negligible span got 60% slower (listed on
/// standard error), and a 20% regression of the main work fails.
#[test]
fn the_time_gate_fails_only_on_regressions_that_matter_to_the_run() {
    use support::{Span, dump};
    let f = Files::new();
    let run = |main_ns: u64, tiny_ns: u64| {
        dump(
            "service",
            2_000_000_000,
            &[
                Span::new("main_work", 10, &[(main_ns, 1_000)]),
                // 600 calls of 1 µs: 0.06% of the run's self time.
                Span::new("tiny", 20, &[(tiny_ns, 600)]),
            ],
        )
    };
    let base = support::write(f.dir.path(), "base.json", &run(1_000_000, 1_000));
    let faster = support::write(f.dir.path(), "faster.json", &run(800_000, 1_600));
    let out = cmd()
        .arg("diff")
        .args([&base, &faster])
        .args(["--fail-on-regression", "5"])
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("below --min-regression-share 1") && err.contains("tiny"),
        "{err}"
    );
    let slower = support::write(f.dir.path(), "slower.json", &run(1_200_000, 1_000));
    let out = cmd()
        .arg("diff")
        .args([&base, &slower])
        .args(["--fail-on-regression", "5"])
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("main_work") && err.contains("regressed +20.0%"),
        "{err}"
    );
    assert!(err.contains("at least 1% of the run's self time"), "{err}");
    // A bar of 0 restores the old gate: any significant regression fails.
    cmd()
        .arg("diff")
        .args([&base, &faster])
        .args(["--fail-on-regression", "5", "--min-regression-share", "0"])
        .assert()
        .code(1);
}

#[test]
fn a_dependency_path_is_shortened_before_the_location_column_is_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = support::ground_truth();
    for cs in &mut d.callsites {
        cs.file = Some(
            "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tower-http-0.7.1/src/trace/make_span.rs"
                .to_owned(),
        );
        cs.line = Some(109);
    }
    let path = support::write(dir.path(), "deps.json", &d);
    let out = cmd().arg(&path).args(["--width", "100"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("tower-http…/make_span.rs:109"), "{text}");
    // Shortened, the column stays (it was hidden at 100 columns).
    assert!(
        text.lines()
            .filter(|l| l.starts_with("(hidden to fit"))
            .all(|l| !l.contains("location")),
        "{text}"
    );
}
