//! The JSON report, typed: [`JsonReport`] and [`JsonDiff`], serialized in
//! the order their fields are declared (`report_format_version` first),
//! then the parts of the report kind. Documented in
//! `docs/report-format.md`.

use std::collections::BTreeMap;
use std::io;

use serde::Serialize;

use super::outline::Outline;
use super::{RenderOptions, Renderer, ReportKind};
use crate::Report;
use crate::analyze::{CallsiteRow, Finding, ProcessSummary, Severity, Totals, WeightRow};
use crate::config::{Config, SessionWeights};
use crate::diff::{CallsiteDiff, Change, Diff, DiffOptions, Verdict};
use crate::plan::Step;

/// The JSON renderer.
#[derive(Debug)]
pub(super) struct Json;

impl Renderer for Json {
    fn report(
        &self,
        report: &Report,
        kind: ReportKind,
        opts: &RenderOptions,
        out: &mut dyn io::Write,
    ) -> io::Result<()> {
        write_value(out, &JsonReport::new(report, kind, opts))
    }

    fn diff(&self, diff: &Diff, opts: &RenderOptions, out: &mut dyn io::Write) -> io::Result<()> {
        write_value(out, &JsonDiff::new(diff, opts))
    }
}

/// Pretty JSON and a final newline.
fn write_value(out: &mut dyn io::Write, value: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    out.write_all(b"\n")
}

/// The version of the JSON report schema. Bumped on any change that an
/// existing consumer would misread; adding a field does not bump it.
pub const REPORT_FORMAT_VERSION: u32 = 1;

/// The JSON report (`perf-report -f json`): the fields of every kind, then
/// those of its kind (absent from the others).
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct JsonReport<'a> {
    /// [`REPORT_FORMAT_VERSION`].
    pub report_format_version: u32,
    /// `full`, `summary` or `weight`.
    pub kind: &'static str,
    /// The program the dump is of.
    pub program: &'a str,
    /// The run's totals, the wholes every share is of.
    pub totals: &'a Totals,
    /// Findings by severity: `critical`, `high`, `medium`, `low`.
    pub finding_counts: BTreeMap<&'static str, usize>,
    /// How many of each list are shown (`--top`), of how many.
    pub shown: Shown,
    /// The findings, best first (full and summary).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub findings: Option<&'a [Finding]>,
    /// The plan (full and summary).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<JsonPlan<'a>>,
    /// One row per callsite, by self time (full).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callsites: Option<&'a [CallsiteRow]>,
    /// The process as the sampler saw it (full).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<&'a ProcessSummary>,
    /// The configuration the report was made with (full).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<&'a Config>,
    /// The notes (full and summary).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<&'a [String]>,
    /// The session-weight mix (weight).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_weights: Option<&'a SessionWeights>,
    /// The session weights, heaviest first (weight).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights: Option<&'a [WeightRow]>,
}

/// How many of each list a report shows, of how many.
#[derive(Debug, Clone, Copy, Serialize)]
#[non_exhaustive]
pub struct Shown {
    /// `--top`: the most rows of each list (0: all).
    pub top: usize,
    /// Findings.
    pub findings: Count,
    /// Plan steps.
    pub steps: Count,
    /// Callsite rows.
    pub callsites: Count,
    /// Session-weight rows.
    pub weights: Count,
}

/// One list's rows shown, of its total.
#[derive(Debug, Clone, Copy, Serialize)]
#[non_exhaustive]
pub struct Count {
    /// Rows shown.
    pub shown: usize,
    /// Rows in all.
    pub total: usize,
}

/// The plan in the JSON report: its compounded gains, then its steps.
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct JsonPlan<'a> {
    /// [`crate::Plan::total_time_gain`].
    pub total_time_gain: f64,
    /// [`crate::Plan::total_wall_gain`].
    pub total_wall_gain: f64,
    /// [`crate::Plan::total_allocation_gain`].
    pub total_allocation_gain: f64,
    /// [`crate::Plan::total_memory_gain`].
    pub total_memory_gain: f64,
    /// The steps, best first, cut to `--top`.
    pub steps: &'a [Step],
}

impl<'a> JsonReport<'a> {
    /// The report of `kind`, its lists cut to `opts.top`.
    pub fn new(r: &'a Report, kind: ReportKind, opts: &RenderOptions) -> Self {
        let a = &r.analysis;
        let top = |n: usize| opts.limit(n);
        let count = |n: usize| Count {
            shown: top(n),
            total: n,
        };
        let findings_and_plan = matches!(kind, ReportKind::Full | ReportKind::Summary);
        let full = kind == ReportKind::Full;
        let weight = kind == ReportKind::Weight;
        Self {
            report_format_version: REPORT_FORMAT_VERSION,
            kind: kind.as_str(),
            program: &a.program,
            totals: &a.totals,
            finding_counts: Severity::ALL
                .iter()
                .map(|&sev| {
                    let n = a.findings.iter().filter(|f| f.severity == sev).count();
                    (sev.as_str(), n)
                })
                .collect(),
            shown: Shown {
                top: opts.top,
                findings: count(a.findings.len()),
                steps: count(r.plan.steps.len()),
                callsites: count(a.callsites.len()),
                weights: count(a.weights.len()),
            },
            findings: findings_and_plan.then(|| &a.findings[..top(a.findings.len())]),
            plan: findings_and_plan.then(|| {
                let p = &r.plan;
                JsonPlan {
                    total_time_gain: p.total_time_gain,
                    total_wall_gain: p.total_wall_gain,
                    total_allocation_gain: p.total_allocation_gain,
                    total_memory_gain: p.total_memory_gain,
                    steps: &p.steps[..top(p.steps.len())],
                }
            }),
            callsites: full.then(|| &a.callsites[..top(a.callsites.len())]),
            process: full.then_some(&a.process),
            config: full.then_some(&r.config),
            notes: findings_and_plan.then_some(&a.notes[..]),
            session_weights: weight.then_some(&r.config.weights),
            weights: weight.then(|| &a.weights[..top(a.weights.len())]),
        }
    }
}

/// The JSON diff (`perf-report diff -f json`).
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct JsonDiff<'a> {
    /// [`REPORT_FORMAT_VERSION`].
    pub report_format_version: u32,
    /// `diff`.
    pub kind: &'static str,
    /// The base dump's program.
    pub base_program: &'a str,
    /// The new dump's program.
    pub new_program: &'a str,
    /// The verdict rule's parameters.
    pub options: &'a DiffOptions,
    /// Self time in spans, base and new.
    pub total_self_ns: &'a Change,
    /// Callsites by verdict: `regressed`, `mixed`, `improved`, ...
    pub verdict_counts: BTreeMap<&'static str, usize>,
    /// The largest regression of any callsite (0 when none).
    pub worst_regression: f64,
    /// One row per callsite, cut to `--top`.
    pub callsites: &'a [CallsiteDiff],
}

impl<'a> JsonDiff<'a> {
    /// The diff, its rows cut to `opts.top`.
    pub fn new(d: &'a Diff, opts: &RenderOptions) -> Self {
        Self {
            report_format_version: REPORT_FORMAT_VERSION,
            kind: "diff",
            base_program: &d.base_program,
            new_program: &d.new_program,
            options: &d.options,
            total_self_ns: &d.total_self_ns,
            verdict_counts: Verdict::ALL
                .iter()
                .map(|&v| (v.as_str(), d.count(v)))
                .collect(),
            worst_regression: d.worst_regression(),
            callsites: &d.callsites[..opts.limit(d.callsites.len())],
        }
    }
}

/// JSON serialises its own types, never an outline.
pub(super) fn outline(_: &Outline<'_>, _: &RenderOptions) -> Option<String> {
    None
}
