//! Renderers: one per output format behind one trait, [`Renderer`], over the
//! column definitions of `table` that every tabular format shares.
//!
//! * [`Format::Text`]: aligned tables for a terminal; colour only when
//!   [`RenderOptions::color`] is set (the binary sets it from `--color`,
//!   `NO_COLOR` and whether stdout is a terminal).
//! * [`Format::Markdown`]: pastes into a pull request; every name from the
//!   dump is escaped so a hostile span name cannot break a table.
//! * [`Format::Json`]: the versioned schema of `docs/report-format.md`.
//! * [`Format::Html`]: one self-contained page (inline CSS and SVG charts,
//!   nothing fetched), with the flamegraph and the distributions drawn.
//! * [`Format::Csv`]: the report's tables, each a header row and its rows,
//!   the tables apart by an empty line.
//!
//! The text, Markdown, HTML and CSV reports are one outline (which
//! sections, in which order, with which words), laid out by each format's
//! few primitives; JSON serialises the typed [`JsonReport`].

use std::io::{self, Write};

use crate::Report;
use crate::diff::Diff;
use crate::label::labelled;

pub(crate) mod markup;
pub(crate) mod outline;
pub(crate) mod table;
pub(crate) mod wording;

pub use json::{Count, JsonDiff, JsonPlan, JsonReport, REPORT_FORMAT_VERSION, Shown};

/// Declares the formats: each line is a variant of [`Format`], its label
/// (for `--format`, with the doc comment as its `--help` text) and the
/// module that holds its renderer, a type named as the variant, and its
/// `outline` function (how it lays out any outline: a report's, a diff's,
/// the history's). A new format is its file and one line here.
macro_rules! formats {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $(
                $(#[doc = $doc:literal])*
                $variant:ident = $label:literal in $module:ident,
            )+
        }
    ) => {
        $(pub(crate) mod $module;)+

        labelled! {
            $(#[$meta])*
            pub enum $name {
                $(
                    $(#[doc = $doc])*
                    $variant = $label,
                )+
            }
        }

        impl $name {
            /// The renderer of this format.
            pub fn renderer(self) -> &'static dyn Renderer {
                match self {
                    $($name::$variant => &$module::$variant,)+
                }
            }

            /// An outline laid out in this format, or `None` for a format
            /// that serialises its own types instead (JSON).
            pub(crate) fn outline(
                self,
                outline: &outline::Outline<'_>,
                opts: &RenderOptions,
            ) -> Option<String> {
                match self {
                    $($name::$variant => $module::outline(outline, opts),)+
                }
            }
        }
    };
}

formats! {
    /// An output format.
    #[non_exhaustive]
    pub enum Format {
        /// Aligned tables for a terminal.
        Text = "text" in text,
        /// Versioned JSON (docs/report-format.md).
        Json = "json" in json,
        /// Markdown for a pull request.
        Markdown = "markdown" in markdown,
        /// One self-contained HTML page with charts.
        Html = "html" in html,
        /// The report's tables as CSV, for a spreadsheet or a script.
        Csv = "csv" in csv,
    }
}

labelled! {
    /// Which report to render.
    #[non_exhaustive]
    pub enum ReportKind {
        /// Findings, the whole plan, the callsite table, the process.
        Full = "full",
        /// Findings and a one-line-per-step plan.
        Summary = "summary",
        /// Every span scored 40% CPU, 40% memory, 20% frequency.
        Weight = "weight",
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
/// | `width` | `None` (no limit) |
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RenderOptions {
    /// Emit ANSI colour (text format only).
    pub color: bool,
    /// The most rows of each list (findings, steps, callsites, weights); 0
    /// for all.
    pub top: usize,
    /// The text format's width in columns: prose wraps to it and tables hide
    /// their least important columns to fit it, saying which. `None` for no
    /// limit. Markdown, JSON and HTML ignore it.
    pub width: Option<usize>,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            color: false,
            top: 10,
            width: None,
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

    /// Sets [`RenderOptions::width`].
    #[must_use]
    pub fn with_width(mut self, width: Option<usize>) -> Self {
        self.width = width;
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

/// One output format.
///
/// The output is deterministic: the same report and options give the same
/// bytes (no clock, no paths beyond those in the dump).
pub trait Renderer {
    /// Writes a report of `kind`.
    ///
    /// # Errors
    /// Any error of `out`.
    fn report(
        &self,
        report: &Report,
        kind: ReportKind,
        opts: &RenderOptions,
        out: &mut dyn Write,
    ) -> io::Result<()>;

    /// Writes the comparison of two dumps.
    ///
    /// # Errors
    /// Any error of `out`.
    fn diff(&self, diff: &Diff, opts: &RenderOptions, out: &mut dyn Write) -> io::Result<()>;
}

/// Renders a report into a string.
///
/// ```
/// use perf_layer::dump::Dump;
/// use perf_report::render::{render, Format, RenderOptions, ReportKind};
/// use perf_report::{Config, LoadedDump, Report};
///
/// let report = Report::build(&LoadedDump::from(Dump::empty("demo")), &Config::default());
/// let text = render(&report, Format::Markdown, ReportKind::Summary, &RenderOptions::default());
/// assert!(text.starts_with("## perf-report: demo"));
/// ```
pub fn render(report: &Report, format: Format, kind: ReportKind, opts: &RenderOptions) -> String {
    into_string(|out| format.renderer().report(report, kind, opts, out))
}

/// Renders the comparison of two dumps into a string.
pub fn render_diff(diff: &Diff, format: Format, opts: &RenderOptions) -> String {
    into_string(|out| format.renderer().diff(diff, opts, out))
}

fn into_string(f: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> String {
    let mut bytes = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = f(&mut bytes);
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Renderers take the analysis, never the wire types: no code under
    /// `render/` names perf-layer (its dump) or decodes a histogram. A doc
    /// example may build a report from a dump, as a user does.
    #[test]
    fn no_renderer_reads_the_dump() {
        // Split, so that this test does not find itself.
        const NAMES: [&str; 2] = [concat!("perf", "_layer"), concat!("hdr", "histogram")];
        fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    files(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(path);
                }
            }
        }
        let mut sources = Vec::new();
        files(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/render"),
            &mut sources,
        );
        assert!(sources.len() > 10, "render/ has its files");
        let readers: Vec<String> = sources
            .iter()
            .flat_map(|path| {
                let text = std::fs::read_to_string(path).unwrap();
                text.lines()
                    .enumerate()
                    .filter(|(_, l)| !l.trim_start().starts_with("//"))
                    .filter(|(_, l)| NAMES.iter().any(|name| l.contains(name)))
                    .map(|(i, l)| format!("{}:{}: {}", path.display(), i + 1, l.trim()))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(readers.is_empty(), "{readers:#?}");
    }
}
