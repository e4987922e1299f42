//! perf-report turns perf-layer dumps into severity-ranked findings and an
//! ordered optimization plan.
//!
//! The data path reads top to bottom, each stage handing its output to the
//! next as a value: [`load`] (files, stdin, bytes; size limit, version check,
//! histogram validation) -> [`merge`] (several dumps into one, losslessly)
//! -> [`LoadedDump`] -> [`analyze`] (a context built once, then one detector
//! per finding class: per-callsite table, findings with an impact score,
//! session weights) -> [`plan`] (ordering and compounding of the detectors'
//! advice) -> [`render`] (one [`render::Renderer`] per format over shared
//! table columns). [`diff`] compares two dumps; [`flamegraph`] draws self
//! time by call path. [`callsite`] (the identity of a callsite across dumps)
//! sits below all of them.
//!
//! ```
//! use perf_layer::dump::Dump;
//! use perf_report::render::{render, Format, RenderOptions, ReportKind};
//! use perf_report::{Config, Report};
//!
//! let json = serde_json::to_vec(&Dump::empty("demo")).unwrap();
//! let dump = perf_report::load::load_slice(&json, "demo.json", &Default::default()).unwrap();
//! let report = Report::build(&dump, &Config::default());
//! let text = render(&report, Format::Text, ReportKind::Full, &RenderOptions::default());
//! assert!(text.contains("demo"));
//! assert!(report.analysis.findings.is_empty());
//! ```
//!
//! The scoring formula, severity bands, diff significance rule and JSON
//! report schema are documented in `docs/report-format.md`.
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub, rust_2018_idioms)]

pub mod analyze;
pub mod callsite;
pub mod config;
pub mod diff;
mod figures;
pub mod flamegraph;
pub mod groups;
#[cfg(feature = "history")]
pub mod history;
mod label;
#[cfg(feature = "live")]
pub mod live;
pub mod load;
mod loaded;
pub mod merge;
mod par;
pub mod plan;
pub mod render;
pub mod sanitize;
#[cfg(feature = "serve")]
pub mod serve;
pub mod stats;
pub mod units;

pub use analyze::{Analysis, Severity};
pub use config::Config;
pub use loaded::LoadedDump;
pub use plan::Plan;

/// An analysed dump and its plan: what the renderers show.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Report {
    /// Findings, callsites, weights, process summary.
    pub analysis: Analysis,
    /// The ordered plan.
    pub plan: Plan,
    /// The configuration the analysis used.
    pub config: Config,
}

impl Report {
    /// Analyses `dump` and plans from the findings.
    pub fn build(dump: &LoadedDump, config: &Config) -> Report {
        let analysis = analyze::analyze(dump, config);
        let plan = plan::plan(&analysis);
        Report {
            analysis,
            plan,
            config: config.clone(),
        }
    }

    /// Whether a finding at or above `bar` exists (what `--fail-on` checks).
    pub fn has_findings_at_or_above(&self, bar: Severity) -> bool {
        self.analysis.findings.iter().any(|f| f.severity >= bar)
    }
}
