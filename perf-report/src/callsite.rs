//! The identity of a callsite across dumps, below everything that compares
//! callsites (merge, diff, analysis), and the labels every renderer uses.

use std::fmt;

use perf_layer::dump::CallsiteStats;
use serde::Serialize;

/// Where a callsite lives in the code: its identity across dumps.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Location {
    /// Span target (usually the module path).
    pub target: String,
    /// Span name.
    pub name: String,
    /// Source file, if known.
    pub file: Option<String>,
    /// Source line, if known.
    pub line: Option<u32>,
}

impl Location {
    /// The location of a dump's callsite.
    pub fn of(cs: &CallsiteStats) -> Self {
        Self {
            target: cs.target.clone(),
            name: cs.name.clone(),
            file: cs.file.clone(),
            line: cs.line,
        }
    }

    /// `file:line`, `file`, or `target` when the file is unknown.
    pub fn source(&self) -> String {
        match (&self.file, self.line) {
            (Some(f), Some(l)) => format!("{f}:{l}"),
            (Some(f), None) => f.clone(),
            _ => self.target.clone(),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.source())
    }
}

/// What a finding or a plan step is about: a callsite, or the whole process
/// (`None`). The one place that says how "the process" is written.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a>(pub Option<&'a Location>);

impl Subject<'_> {
    /// The span's name, or `(process)`: for a "span" column.
    pub fn name(&self) -> &str {
        self.0.map_or("(process)", |l| l.name.as_str())
    }

    /// The span's source, or nothing: for a "location" column.
    pub fn source(&self) -> String {
        self.0.map(Location::source).unwrap_or_default()
    }

    /// The span's name in backticks, or `the process`: inside a sentence.
    pub fn in_prose(&self) -> String {
        self.0
            .map_or_else(|| "the process".to_owned(), |l| format!("`{}`", l.name))
    }
}

impl fmt::Display for Subject<'_> {
    /// `name (file:line)`, or `the process`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(l) => l.fmt(f),
            None => f.write_str("the process"),
        }
    }
}
