//! The page of a report or a diff: the outline's sections, pictures
//! included, and a navigation bar over them.

use std::fmt::Write as _;

use super::page::Page;
use super::{charts, escape, location, prose, section, severity_class, table, verdict_class};
use crate::Report;
use crate::diff::{CallsiteDiff, Diff};
use crate::plan::Step;
use crate::render::markup::{self, Markup};
use crate::render::outline::{self, Chart, Detail, Outline, Section, Table, Title};
use crate::render::wording::{self, Words};
use crate::render::{RenderOptions, ReportKind};

/// The page being written.
struct Html<'o> {
    page: Page,
    opts: &'o RenderOptions,
}

impl Markup for Html<'_> {
    fn draws_charts(&self) -> bool {
        true
    }

    fn title(&mut self, outline: &Outline<'_>) {
        let out = &mut self.page.body;
        let _ = match &outline.title {
            Title::Report { program, summary } => writeln!(
                out,
                "<header>\n<h1>perf-report: <span class=\"name\">{}</span></h1>\n<p>{}</p>",
                escape(program),
                escape(summary)
            ),
            Title::Diff {
                base,
                new,
                self_time,
                counts,
            } => writeln!(
                out,
                "<header>\n<h1>perf-report diff: <span class=\"name\">{}</span> → <span class=\"name\">{}</span></h1>\n<p>base {} -> new {}: self time in spans {}</p>\n<p>{}</p>",
                escape(base),
                escape(new),
                escape(base),
                escape(new),
                escape(self_time),
                escape(counts)
            ),
            Title::History {
                command,
                program,
                summary,
            } => {
                let _ = write!(out, "<header>\n<h1>{}", escape(command));
                if let Some(program) = program {
                    let _ = write!(out, ": <span class=\"name\">{}</span>", escape(program));
                }
                out.push_str("</h1>\n");
                match summary {
                    Some(summary) => writeln!(out, "<p>{}</p>", escape(&summary.sentence)),
                    None => Ok(()),
                }
            }
        };
        let links: Vec<String> = outline
            .sections
            .iter()
            .map(|s| format!("<a href=\"#{}\">{}</a>", s.id, escape(s.nav)))
            .collect();
        let _ = writeln!(out, "<nav>{}</nav>\n</header>", links.join(""));
        out.push_str("<main>\n");
    }

    fn heading(&mut self, s: &Section<'_>) {
        let lede = s.lede.as_ref().map_or("", |w| w.sentence.as_str());
        section(&mut self.page.body, &s.id, s.title, lede);
    }

    fn end_section(&mut self) {
        self.page.body.push_str("</section>\n");
    }

    fn table(&mut self, t: &Table) {
        table(&mut self.page.body, t);
    }

    fn paragraph(&mut self, text: &str) {
        let _ = writeln!(self.page.body, "<p>{}</p>", prose(text));
    }

    fn aside(&mut self, words: &Words) {
        let _ = writeln!(
            self.page.body,
            "<p class=\"more\">{}</p>",
            prose(&words.sentence)
        );
    }

    fn more(&mut self, hidden: usize, what: &str) {
        let _ = writeln!(
            self.page.body,
            "<p class=\"more\">({}; --top 0 shows all)</p>",
            wording::more(hidden, what)
        );
    }

    fn list(&mut self, items: &[String]) {
        let out = &mut self.page.body;
        out.push_str("<ul class=\"notes\">");
        for item in items {
            let _ = write!(out, "<li>{}</li>", prose(item));
        }
        out.push_str("</ul>\n");
    }

    fn steps(&mut self, steps: &[Step], detail: Detail) {
        let out = &mut self.page.body;
        match detail {
            Detail::Full => {
                out.push_str("<ol class=\"steps\">\n");
                for s in steps {
                    step_full(out, s);
                }
            }
            Detail::Line => {
                out.push_str("<ol class=\"short\">\n");
                for s in steps {
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
        }
        out.push_str("</ol>\n");
    }

    fn reasons(&mut self, changed: &[&CallsiteDiff]) {
        let out = &mut self.page.body;
        out.push_str("<ul class=\"notes\">");
        for c in changed {
            let _ = write!(
                out,
                "<li><span class=\"{}\">{}</span> <span class=\"name\">{}</span>: {}</li>",
                verdict_class(c.verdict),
                c.verdict,
                escape(&c.location.label),
                prose(&c.reason)
            );
        }
        out.push_str("</ul>\n");
    }

    fn chart(&mut self, chart: Chart<'_>) {
        let page = &mut self.page;
        match chart {
            Chart::Latency(latency) => charts::latency(page, latency, self.opts),
            Chart::Flamegraph(call_graph, program, caption) => {
                let _ = writeln!(page.body, "<p class=\"lede\">{}</p>", prose(caption));
                charts::flamegraph(page, call_graph, program);
            }
            Chart::Timeline(timeline) => charts::timeline(page, timeline),
            Chart::LiveHeap(heap) => charts::live_heap(page, heap, self.opts),
            Chart::DiffCurves(diff, caption) => {
                let _ = writeln!(page.body, "<p class=\"lede\">{}</p>", prose(caption));
                charts::diff_curves(page, diff);
            }
        }
    }

    fn end(&mut self) {
        self.page.body.push_str("</main>\n");
    }
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

/// The page of a report of `kind`.
pub(super) fn render_report(r: &Report, kind: ReportKind, opts: &RenderOptions) -> String {
    render(&outline::report(r, kind, opts), opts)
}

/// The page of a diff.
pub(super) fn render_diff(d: &Diff, opts: &RenderOptions) -> String {
    render(&outline::diff(d, opts), opts)
}

pub(super) fn render(outline: &Outline<'_>, opts: &RenderOptions) -> String {
    let mut html = Html {
        page: Page::default(),
        opts,
    };
    markup::write(&mut html, outline);
    html.page.finish(&outline.page_title)
}
