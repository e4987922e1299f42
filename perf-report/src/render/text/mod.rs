//! The terminal renderer: aligned tables (comfy-table) and optional colour
//! (owo-colors for prose, comfy-table styling inside tables so widths stay
//! right), fitted to [`RenderOptions::width`]: prose is wrapped (textwrap)
//! and each table drops its least important columns until it fits, saying
//! which; Markdown and JSON keep everything.
//!
//! Here: how the outline's blocks look in a terminal; `out.rs` is the text
//! being built (lines, paragraphs, fitted tables).

use std::io;

mod out;

use owo_colors::OwoColorize;

use self::out::{Out, clean};
use super::markup::{self, Markup};
use super::outline::{self, Detail, Outline, Section, Table, Title};
use super::wording::{self, Words};
use super::{RenderOptions, Renderer, ReportKind};
use crate::Report;
use crate::callsite::Subject;
use crate::diff::{CallsiteDiff, Diff};
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
        let mut text = Out::new(opts);
        markup::write(&mut text, &outline::diff(diff, opts));
        out.write_all(text.text.as_bytes())
    }
}

impl Markup for Out<'_> {
    fn title(&mut self, outline: &Outline<'_>) {
        let (command, body) = match &outline.title {
            Title::Report { program, summary } => {
                ("perf-report", format!("{}: {summary}", clean(program)))
            }
            Title::Diff {
                base,
                new,
                self_time,
                ..
            } => (
                "perf-report diff",
                format!(
                    "base {} -> new {}: self time in spans {self_time}",
                    clean(base),
                    clean(new)
                ),
            ),
            // A listing starts with its first heading.
            Title::History { summary: None, .. } => return,
            Title::History {
                command,
                program,
                summary: Some(summary),
            } => (
                *command,
                match program {
                    Some(program) => format!("{}: {}", clean(program), clean(&summary.terse)),
                    None => clean(&summary.terse),
                },
            ),
        };
        let styled = if self.opts.color {
            command.bold().to_string()
        } else {
            command.to_owned()
        };
        if self.fits(&format!("{command} {body}")) {
            self.line(&format!("{styled} {body}"));
        } else {
            self.para(&format!("{command} "), "  ", &body);
        }
        if let Title::Diff { counts, .. } = &outline.title {
            self.para("", "", counts);
        }
    }

    fn heading(&mut self, section: &Section<'_>) {
        // Apart from what came before; an outline without a title line
        // starts with its first section.
        if !self.text.is_empty() {
            self.blank();
        }
        if !section.titled {
            return;
        }
        // A lede may quote a name from the dump (a history's span).
        let tail = section.lede.as_ref().map_or_else(String::new, |w| clean(&w.terse));
        self.heading_line(&section.title.to_uppercase(), &tail);
    }

    fn table(&mut self, table: &Table) {
        self.fitted_table(table);
    }

    fn paragraph(&mut self, text: &str) {
        self.para("", "", &clean(text));
    }

    fn aside(&mut self, words: &Words) {
        self.dim(&words.terse);
    }

    fn more(&mut self, hidden: usize, what: &str) {
        self.dim(&format!("({}; --top 0 shows all)", wording::more(hidden, what)));
    }

    fn list(&mut self, items: &[String]) {
        for item in items {
            self.para(" - ", "   ", &clean(item));
        }
    }

    fn steps(&mut self, steps: &[Step], detail: Detail) {
        for s in steps {
            match detail {
                Detail::Full => step_full(self, s),
                Detail::Line => step_line(self, s),
            }
        }
    }

    fn reasons(&mut self, changed: &[&CallsiteDiff]) {
        for c in changed {
            let line = format!(
                "{} {}: {}",
                c.verdict,
                clean(&c.location.label),
                clean(&c.reason)
            );
            self.para(" - ", "   ", &line);
        }
    }
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

fn step_full(out: &mut Out<'_>, s: &Step) {
    const LABEL: &str = "               ";
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

fn step_line(out: &mut Out<'_>, s: &Step) {
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

/// Any outline for a terminal.
pub(super) fn outline(outline: &Outline<'_>, opts: &RenderOptions) -> Option<String> {
    let mut text = Out::new(opts);
    markup::write(&mut text, outline);
    Some(text.text)
}

fn render_report(r: &Report, kind: ReportKind, opts: &RenderOptions) -> String {
    let mut out = Out::new(opts);
    markup::write(&mut out, &outline::report(r, kind, opts));
    out.text
}
