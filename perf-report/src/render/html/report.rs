//! The report's page: the sections of the text report in its order, with
//! the pictures between the callsites and the notes of a full report.

use std::fmt::Write as _;

use super::page::Page;
use super::{charts, escape, location, more, prose, section, severity_class, table};
use crate::Report;
use crate::plan::Step;
use crate::render::table as columns;
use crate::render::wording::{counts, plan_totals, process_line, run_summary};
use crate::render::{RenderOptions, ReportKind};

/// The sections of a report of `kind`, in the text format's order, with
/// the anchors a navigation bar links to.
fn sections(kind: ReportKind) -> &'static [(&'static str, &'static str)] {
    match kind {
        ReportKind::Full => &[
            ("findings", "Findings"),
            ("plan", "Plan"),
            ("callsites", "Callsites"),
            ("latency", "Latency"),
            ("flamegraph", "Flamegraph"),
            ("process", "Process"),
            ("heap", "Live heap"),
            ("notes", "Notes"),
        ],
        ReportKind::Summary => &[
            ("findings", "Findings"),
            ("plan", "Plan"),
            ("notes", "Notes"),
        ],
        ReportKind::Weight => &[("weights", "Session weights")],
    }
}

fn header(out: &mut String, r: &Report, kind: ReportKind) {
    let a = &r.analysis;
    let _ = writeln!(
        out,
        "<header>\n<h1>perf-report: <span class=\"name\">{}</span></h1>\n<p>{}</p>",
        escape(&a.program),
        escape(&run_summary(a))
    );
    let links: Vec<String> = sections(kind)
        .iter()
        .filter(|(id, _)| *id != "notes" || !a.notes.is_empty())
        .map(|(id, title)| format!("<a href=\"#{id}\">{}</a>", escape(title)))
        .collect();
    let _ = writeln!(out, "<nav>{}</nav>\n</header>", links.join(""));
}

fn findings(out: &mut String, r: &Report, opts: &RenderOptions) {
    let a = &r.analysis;
    section(out, "findings", "Findings", &counts(a));
    if a.findings.is_empty() {
        out.push_str("<p>No findings: nothing crossed a threshold.</p>\n");
    } else {
        let shown = opts.limit(a.findings.len());
        table(out, "findings", columns::FINDINGS, &a.findings[..shown]);
        more(out, shown, a.findings.len(), "findings");
    }
    out.push_str("</section>\n");
}

/// `hot spot: name (file:line)`, or the class alone for a process-wide step.
fn step_title(s: &Step) -> String {
    match &s.location {
        Some(l) => format!("{}: {}", escape(s.class.title()), location(l)),
        None => escape(s.class.title()).into_owned(),
    }
}

fn list(out: &mut String, tag: &str, items: &[String]) {
    let _ = write!(out, "<{tag}>");
    for item in items {
        let _ = write!(out, "<li>{}</li>", prose(item));
    }
    let _ = write!(out, "</{tag}>");
}

fn step_full(out: &mut String, s: &Step) {
    let _ = write!(
        out,
        "<li class=\"step\" id=\"step-{}\"><h3>{}. <span class=\"{}\">[{} {:.1}]</span> {}</h3>\n<dl>",
        s.rank,
        s.rank,
        severity_class(s.severity),
        s.severity,
        s.score,
        step_title(s)
    );
    let evidence: Vec<String> = s.evidence.iter().map(ToString::to_string).collect();
    let _ = write!(
        out,
        "<dt>why</dt><dd>{}</dd><dt>evidence</dt><dd>{}</dd><dt>gain</dt><dd>{}</dd><dt>effort</dt><dd>complexity {}, risk {}</dd>",
        prose(&s.summary),
        prose(&evidence.join("; ")),
        prose(&s.gain.statement),
        s.complexity,
        s.risk
    );
    for (label, tag, items) in [
        ("fixes", "ul", &s.fixes),
        ("first", "ul", &s.prerequisites),
        ("validate", "ol", &s.validation),
    ] {
        if !items.is_empty() {
            let _ = write!(out, "<dt>{label}</dt><dd>");
            list(out, tag, items);
            out.push_str("</dd>");
        }
    }
    out.push_str("</dl></li>\n");
}

fn plan(out: &mut String, r: &Report, opts: &RenderOptions, full: bool) {
    let p = &r.plan;
    section(
        out,
        "plan",
        "Plan",
        &format!("Estimated total gain: {}.", plan_totals(p, &r.analysis)),
    );
    if p.steps.is_empty() {
        out.push_str("<p>Nothing to do.</p>\n</section>\n");
        return;
    }
    let shown = opts.limit(p.steps.len());
    if full {
        out.push_str("<ol class=\"steps\">\n");
        for s in &p.steps[..shown] {
            step_full(out, s);
        }
    } else {
        out.push_str("<ol class=\"short\">\n");
        for s in &p.steps[..shown] {
            let _ = writeln!(
                out,
                "<li value=\"{}\"><span class=\"{}\">[{}]</span> {}: {} (complexity {}, risk {})</li>",
                s.rank,
                severity_class(s.severity),
                s.severity,
                step_title(s),
                prose(&s.gain.statement),
                s.complexity,
                s.risk
            );
        }
    }
    out.push_str("</ol>\n");
    more(out, shown, p.steps.len(), "steps");
    out.push_str("</section>\n");
}

fn callsites(out: &mut String, r: &Report, opts: &RenderOptions) {
    let a = &r.analysis;
    let shown = opts.limit(a.callsites.len());
    section(
        out,
        "callsites",
        "Callsites",
        &format!("{} of {} by self time.", shown, a.callsites.len()),
    );
    if !a.callsites.is_empty() {
        table(out, "callsites", columns::CALLSITES, &a.callsites[..shown]);
        out.push_str("<p class=\"more\">Times are busy time per call unless named self; alloc is self-allocated; rss Δ/call is process RSS at close minus at open, as coarse as the sampler.</p>\n");
    }
    out.push_str("</section>\n");
}

fn pictures(page: &mut Page, r: &Report, opts: &RenderOptions) {
    let dump = r.dump();
    section(&mut page.body, "latency", "Latency distributions", "");
    charts::latency(page, dump, opts);
    page.body.push_str("</section>\n");
    section(
        &mut page.body,
        "flamegraph",
        "Flamegraph",
        "Self time by call path.",
    );
    charts::flamegraph(page, dump);
    page.body.push_str("</section>\n");
    let line = process_line(&r.analysis).unwrap_or_default();
    section(&mut page.body, "process", "Process", &line);
    charts::timeline(page, dump);
    page.body.push_str("</section>\n");
    section(&mut page.body, "heap", "Live heap", "");
    charts::live_heap(page, dump, opts);
    page.body.push_str("</section>\n");
}

fn notes(out: &mut String, r: &Report) {
    let a = &r.analysis;
    if a.notes.is_empty() {
        return;
    }
    section(out, "notes", "Notes", "");
    out.push_str("<ul class=\"notes\">");
    for n in &a.notes {
        let _ = write!(out, "<li>{}</li>", prose(n));
    }
    out.push_str("</ul>\n</section>\n");
}

fn weights(out: &mut String, r: &Report, opts: &RenderOptions) {
    let a = &r.analysis;
    let w = &r.config.weights;
    section(
        out,
        "weights",
        "Session weights",
        &format!(
            "weight = {:.0}% CPU (self time) + {:.0}% memory (allocated bytes) + {:.0}% frequency (calls), each over the largest of any span.",
            w.cpu * 100.0,
            w.memory * 100.0,
            w.frequency * 100.0
        ),
    );
    let shown = opts.limit(a.weights.len());
    table(out, "weights", columns::WEIGHTS, &a.weights[..shown]);
    more(out, shown, a.weights.len(), "spans");
    if a.totals.self_alloc_bytes.is_none() {
        out.push_str("<p class=\"more\">Allocation was not tracked: the memory weight is shared out between CPU and frequency.</p>\n");
    }
    out.push_str("</section>\n");
}

pub(super) fn render_report(r: &Report, kind: ReportKind, opts: &RenderOptions) -> String {
    let mut page = Page::default();
    header(&mut page.body, r, kind);
    page.body.push_str("<main>\n");
    match kind {
        ReportKind::Full => {
            findings(&mut page.body, r, opts);
            plan(&mut page.body, r, opts, true);
            callsites(&mut page.body, r, opts);
            pictures(&mut page, r, opts);
            notes(&mut page.body, r);
        }
        ReportKind::Summary => {
            findings(&mut page.body, r, opts);
            plan(&mut page.body, r, opts, false);
            notes(&mut page.body, r);
        }
        ReportKind::Weight => weights(&mut page.body, r, opts),
    }
    page.body.push_str("</main>\n");
    page.finish(&format!("perf-report: {}", r.analysis.program))
}
