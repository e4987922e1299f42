//! The terminal renderer: aligned tables (comfy-table) and optional colour
//! (owo-colors for prose, comfy-table styling inside tables so widths stay
//! right), fitted to [`RenderOptions::width`]: prose is wrapped (textwrap)
//! and each table drops its least important columns until it fits, saying
//! which; Markdown and JSON keep everything.
//!
//! The report's sections are here; `out.rs` is the text being built (lines,
//! paragraphs, fitted tables), `diff.rs` the diff.

use std::io;

mod diff;
mod out;

use owo_colors::OwoColorize;

use self::diff::render_diff;
use self::out::{Out, clean};
use super::table;
use super::wording::{counts, plan_totals, process_line, run_summary};
use super::{RenderOptions, Renderer, ReportKind};
use crate::Report;
use crate::analyze::Analysis;
use crate::callsite::Subject;
use crate::diff::Diff;
use crate::plan::Step;

/// The terminal renderer.
#[derive(Debug)]
pub(super) struct Text;

impl Renderer for Text {
    fn report(
        &self,
        report: &Report,
        kind: ReportKind,
        opts: &RenderOptions,
        out: &mut dyn io::Write,
    ) -> io::Result<()> {
        out.write_all(render_report(report, kind, opts).as_bytes())
    }

    fn diff(&self, diff: &Diff, opts: &RenderOptions, out: &mut dyn io::Write) -> io::Result<()> {
        out.write_all(render_diff(diff, opts).as_bytes())
    }
}

fn header(out: &mut Out<'_>, a: &Analysis) {
    let title = if out.opts.color {
        "perf-report".bold().to_string()
    } else {
        "perf-report".to_owned()
    };
    let body = format!("{}: {}", clean(&a.program), run_summary(a));
    if out.fits(&format!("perf-report {body}")) {
        out.line(&format!("{title} {body}"));
    } else {
        out.para("perf-report ", "  ", &body);
    }
}

fn findings(out: &mut Out<'_>, a: &Analysis) {
    out.blank();
    out.heading("FINDINGS", &counts(a));
    if a.findings.is_empty() {
        out.para("", "", "No findings: nothing crossed a threshold.");
        return;
    }
    let shown = out.opts.limit(a.findings.len());
    out.table(table::FINDINGS, &a.findings[..shown]);
    out.more(shown, a.findings.len(), "findings");
}

/// A step's title: `hot spot: name (file:line)`, or the class alone for a
/// process-wide step (its title names the process).
fn step_title(s: &Step) -> String {
    match &s.location {
        Some(_) => format!(
            "{}: {}",
            s.class.title(),
            clean(&Subject(s.location.as_ref()).to_string())
        ),
        None => s.class.title().to_owned(),
    }
}

fn plan_full(out: &mut Out<'_>, r: &Report) {
    let plan = &r.plan;
    out.blank();
    out.heading(
        "PLAN",
        &format!("estimated total gain: {}", plan_totals(plan, &r.analysis)),
    );
    if plan.steps.is_empty() {
        out.line("Nothing to do.");
        return;
    }
    const LABEL: &str = "               ";
    let shown = out.opts.limit(plan.steps.len());
    for s in &plan.steps[..shown] {
        out.blank();
        let tag = format!("[{} {:.1}]", s.severity, s.score);
        let title = step_title(s);
        let plain = format!("{}. {tag} {title}", s.rank);
        if out.fits(&plain) {
            let styled_title = if out.opts.color {
                title.bold().to_string()
            } else {
                title.clone()
            };
            let line = format!(
                "{}. {} {styled_title}",
                s.rank,
                out.severity(s.severity, &tag)
            );
            out.line(&line);
        } else {
            out.para("", "   ", &plain);
        }
        out.para("   why       ", &LABEL[..13], &clean(&s.summary));
        let evidence: Vec<String> = s.evidence.iter().map(ToString::to_string).collect();
        out.para("   evidence  ", &LABEL[..13], &clean(&evidence.join("; ")));
        out.para("   gain      ", &LABEL[..13], &clean(&s.gain.statement));
        out.para(
            "   effort    ",
            &LABEL[..13],
            &format!("complexity {}, risk {}", s.complexity, s.risk),
        );
        for (i, fix) in s.fixes.iter().enumerate() {
            let first = if i == 0 {
                "   fixes     - "
            } else {
                "             - "
            };
            out.para(first, LABEL, fix);
        }
        for (i, pre) in s.prerequisites.iter().enumerate() {
            let first = if i == 0 {
                "   first     - "
            } else {
                "             - "
            };
            out.para(first, LABEL, &clean(pre));
        }
        for (i, v) in s.validation.iter().enumerate() {
            let label = if i == 0 { "validate" } else { "" };
            let first = format!("   {label:<9} {}. ", i + 1);
            let rest = " ".repeat(first.len());
            out.para(&first, &rest, &clean(v));
        }
    }
    out.more(shown, plan.steps.len(), "steps");
}

fn plan_short(out: &mut Out<'_>, r: &Report) {
    let plan = &r.plan;
    out.blank();
    out.heading(
        "PLAN",
        &format!("estimated total gain: {}", plan_totals(plan, &r.analysis)),
    );
    let shown = out.opts.limit(plan.steps.len());
    for s in &plan.steps[..shown] {
        let body = format!(
            "[{}] {}: {} (complexity {}, risk {})",
            s.severity,
            step_title(s),
            clean(&s.gain.statement),
            s.complexity,
            s.risk
        );
        out.para(&format!("{:>3}. ", s.rank), "     ", &body);
    }
    out.more(shown, plan.steps.len(), "steps");
}

fn callsites(out: &mut Out<'_>, a: &Analysis) {
    let shown = out.opts.limit(a.callsites.len());
    out.blank();
    out.heading(
        "CALLSITES",
        &format!("{} of {} by self time", shown, a.callsites.len()),
    );
    if a.callsites.is_empty() {
        return;
    }
    out.table(table::CALLSITES, &a.callsites[..shown]);
    out.dim(
        "times are busy time per call unless named self; alloc is self-allocated; rss Δ/call is process RSS at close minus at open, as coarse as the sampler",
    );
}

fn process(out: &mut Out<'_>, a: &Analysis) {
    if let Some(line) = process_line(a) {
        out.blank();
        out.heading("PROCESS", &line);
    }
}

fn notes(out: &mut Out<'_>, a: &Analysis) {
    if a.notes.is_empty() {
        return;
    }
    out.blank();
    out.heading("NOTES", "");
    for n in &a.notes {
        out.para(" - ", "   ", &clean(n));
    }
}

fn weights(out: &mut Out<'_>, r: &Report) {
    let a = &r.analysis;
    let w = &r.config.weights;
    out.blank();
    out.heading(
        "SESSION WEIGHTS",
        &format!(
            "weight = {:.0}% CPU (self time) + {:.0}% memory (allocated bytes) + {:.0}% frequency (calls), each over the largest of any span",
            w.cpu * 100.0,
            w.memory * 100.0,
            w.frequency * 100.0
        ),
    );
    let shown = out.opts.limit(a.weights.len());
    out.table(table::WEIGHTS, &a.weights[..shown]);
    out.more(shown, a.weights.len(), "spans");
    if a.totals.self_alloc_bytes.is_none() {
        out.dim(
            "allocation was not tracked: the memory weight is shared out between CPU and frequency",
        );
    }
}

fn render_report(r: &Report, kind: ReportKind, opts: &RenderOptions) -> String {
    let a = &r.analysis;
    let mut out = Out::new(opts);
    header(&mut out, a);
    match kind {
        ReportKind::Full => {
            findings(&mut out, a);
            plan_full(&mut out, r);
            callsites(&mut out, a);
            process(&mut out, a);
            notes(&mut out, a);
        }
        ReportKind::Summary => {
            findings(&mut out, a);
            plan_short(&mut out, r);
            notes(&mut out, a);
        }
        ReportKind::Weight => weights(&mut out, r),
    }
    out.text
}
