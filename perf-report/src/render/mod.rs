//! Renderers: one per output format, sharing the report's structure.
//!
//! * [`Format::Text`]: aligned tables for a terminal; colour only when
//!   [`RenderOptions::color`] is set (the binary sets it from `--color`,
//!   `NO_COLOR` and whether stdout is a terminal).
//! * [`Format::Markdown`]: pastes into a pull request; every name from the
//!   dump is escaped so a hostile span name cannot break a table.
//! * [`Format::Json`]: the versioned schema of `docs/report-format.md`.

use std::fmt;

use serde::Serialize;

use crate::Report;
use crate::diff::Diff;

mod json;
mod markdown;
mod text;

pub use json::REPORT_FORMAT_VERSION;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Format {
    /// Aligned tables for a terminal.
    Text,
    /// JSON, versioned by [`REPORT_FORMAT_VERSION`].
    Json,
    /// GitHub-flavoured Markdown.
    Markdown,
}

/// Which report to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReportKind {
    /// Findings, the whole plan, the callsite table, the process.
    Full,
    /// Findings and a one-line-per-step plan.
    Summary,
    /// The session-weight view: 40% CPU, 40% memory, 20% frequency.
    Weight,
}

impl ReportKind {
    /// `full`, `summary` or `weight`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Full => "full",
            ReportKind::Summary => "summary",
            ReportKind::Weight => "weight",
        }
    }
}

impl fmt::Display for ReportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to render.
///
/// # Default values
///
/// | field | default |
/// |---|---|
/// | `color` | `false` |
/// | `top` | 10 (0 shows everything) |
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RenderOptions {
    /// Emit ANSI colour (text format only).
    pub color: bool,
    /// The most rows of each list (findings, steps, callsites, weights); 0
    /// for all.
    pub top: usize,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            color: false,
            top: 10,
        }
    }
}

impl RenderOptions {
    /// Sets [`RenderOptions::color`].
    #[must_use]
    pub fn with_color(mut self, color: bool) -> Self {
        self.color = color;
        self
    }

    /// Sets [`RenderOptions::top`].
    #[must_use]
    pub fn with_top(mut self, top: usize) -> Self {
        self.top = top;
        self
    }

    /// How many of `len` items to show.
    pub(crate) fn limit(&self, len: usize) -> usize {
        if self.top == 0 {
            len
        } else {
            len.min(self.top)
        }
    }
}

/// Renders a report.
///
/// The output is deterministic: the same dump and options give the same
/// bytes (no clock, no paths beyond those in the dump).
pub fn render(report: &Report, format: Format, kind: ReportKind, opts: &RenderOptions) -> String {
    match format {
        Format::Text => text::report(report, kind, opts),
        Format::Markdown => markdown::report(report, kind, opts),
        Format::Json => json::report(report, kind, opts),
    }
}

/// Renders the comparison of two dumps.
pub fn render_diff(diff: &Diff, format: Format, opts: &RenderOptions) -> String {
    match format {
        Format::Text => text::diff(diff, opts),
        Format::Markdown => markdown::diff(diff, opts),
        Format::Json => json::diff(diff, opts),
    }
}

/// Replaces control characters (ANSI escapes, newlines) in text taken from a
/// dump, so a hostile span name cannot move the cursor or fake a line.
pub(crate) fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}
