//! The JSON report: `report_format_version` first, then the parts of the
//! report kind. Documented in `docs/report-format.md`.

use std::io;

use serde_json::{Map, Value, json};

use super::{RenderOptions, Renderer, ReportKind};
use crate::Report;
use crate::analyze::Severity;
use crate::diff::{Diff, Verdict};

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
        write_value(out, render_report(report, kind, opts))
    }

    fn diff(&self, diff: &Diff, opts: &RenderOptions, out: &mut dyn io::Write) -> io::Result<()> {
        write_value(out, render_diff(diff, opts))
    }
}

/// Pretty JSON and a final newline.
fn write_value(out: &mut dyn io::Write, value: Value) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &value)?;
    out.write_all(b"\n")
}

/// The version of the JSON report schema. Bumped on any change that an
/// existing consumer would misread; adding a field does not bump it.
pub const REPORT_FORMAT_VERSION: u32 = 1;

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    // Serializing our own plain data types cannot fail (no maps with
    // non-string keys); fall back to null rather than panic.
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn top<T: serde::Serialize>(items: &[T], opts: &RenderOptions) -> Value {
    to_value(&&items[..opts.limit(items.len())])
}

fn render_report(r: &Report, kind: ReportKind, opts: &RenderOptions) -> Value {
    let a = &r.analysis;
    let mut m = Map::new();
    m.insert("report_format_version".into(), json!(REPORT_FORMAT_VERSION));
    m.insert("kind".into(), json!(kind.as_str()));
    m.insert("program".into(), json!(a.program));
    m.insert("totals".into(), to_value(&a.totals));
    let mut counts = Map::new();
    for &sev in Severity::ALL.iter().rev() {
        let n = a.findings.iter().filter(|f| f.severity == sev).count();
        counts.insert(sev.as_str().into(), json!(n));
    }
    m.insert("finding_counts".into(), Value::Object(counts));
    let count = |n: usize| json!({ "shown": opts.limit(n), "total": n });
    m.insert(
        "shown".into(),
        json!({
            "top": opts.top,
            "findings": count(a.findings.len()),
            "steps": count(r.plan.steps.len()),
            "callsites": count(a.callsites.len()),
            "weights": count(a.weights.len()),
        }),
    );
    match kind {
        ReportKind::Full | ReportKind::Summary => {
            m.insert("findings".into(), top(&a.findings, opts));
            let p = &r.plan;
            m.insert(
                "plan".into(),
                json!({
                    "total_time_gain": p.total_time_gain,
                    "total_wall_gain": p.total_wall_gain,
                    "total_allocation_gain": p.total_allocation_gain,
                    "total_memory_gain": p.total_memory_gain,
                    "steps": top(&p.steps, opts),
                }),
            );
            if kind == ReportKind::Full {
                m.insert("callsites".into(), top(&a.callsites, opts));
                m.insert("process".into(), to_value(&a.process));
                m.insert("config".into(), to_value(&r.config));
            }
            m.insert("notes".into(), to_value(&a.notes));
        }
        ReportKind::Weight => {
            m.insert("session_weights".into(), to_value(&r.config.weights));
            m.insert("weights".into(), top(&a.weights, opts));
        }
    }
    Value::Object(m)
}

fn render_diff(d: &Diff, opts: &RenderOptions) -> Value {
    let mut m = Map::new();
    m.insert("report_format_version".into(), json!(REPORT_FORMAT_VERSION));
    m.insert("kind".into(), json!("diff"));
    m.insert("base_program".into(), json!(d.base_program));
    m.insert("new_program".into(), json!(d.new_program));
    m.insert("options".into(), to_value(&d.options));
    m.insert("total_self_ns".into(), to_value(&d.total_self_ns));
    let mut counts = Map::new();
    for &v in Verdict::ALL {
        counts.insert(v.as_str().into(), json!(d.count(v)));
    }
    m.insert("verdict_counts".into(), Value::Object(counts));
    m.insert("worst_regression".into(), json!(d.worst_regression()));
    m.insert("callsites".into(), top(&d.callsites, opts));
    Value::Object(m)
}
