//! The history's views (the runs, a span's trends with sparklines and
//! change points, a check's verdicts) as outlines of the report's blocks,
//! so every format that lays out a report lays them out too: text,
//! Markdown, HTML and CSV. JSON is the types themselves (`serde`).

use serde::Serialize;

use super::check::{CheckReport, Judgement, Metric, MetricCheck};
use super::store::RunSummary;
use super::trend::{Series, Trend, sparkline};
use crate::render::outline::{self, Block, Outline, Section, Table, Title};
use crate::render::table::{Align, Cell, Column, Tone, col, dump_col};
use crate::render::wording::Words;
use crate::render::{Format, RenderOptions};
use crate::units;

/// A date and time for people, UTC, from ms since the Unix epoch.
pub(crate) fn when(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60
    )
}

/// A run's labels, `key=value` apart by spaces.
pub(crate) fn labels(run: &RunSummary) -> String {
    run.labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The runs table (the dashboard's too).
pub(crate) static RUNS: &[Column<RunSummary>] = &[
    col::<RunSummary>("id", Align::Right, |_, r| Cell::from(r.id.to_string())),
    col::<RunSummary>("started (UTC)", Align::Left, |_, r| {
        Cell::from(when(r.started_at_unix_ms))
    }),
    dump_col::<RunSummary>("program", |_, r| Cell::from(r.program.clone())),
    col::<RunSummary>("duration", Align::Right, |_, r| {
        Cell::from(units::ns(r.duration_ns as f64))
    }),
    col::<RunSummary>("spans", Align::Right, |_, r| {
        Cell::from(units::count(r.spans as f64))
    }),
    dump_col::<RunSummary>("machine", |_, r| Cell::from(r.machine_desc.clone())),
    dump_col::<RunSummary>("labels", |_, r| Cell::from(labels(r))),
];

fn format_metric(metric: &str, v: f64) -> String {
    match metric {
        "self_share" => units::pct(v),
        "live_bytes" => units::bytes(v),
        _ => units::ns(v),
    }
}

/// The first or last value of a series, in its unit.
fn end_value(s: &Series, last: bool) -> Cell {
    let mut present = s.values.iter().flatten();
    let v = if last {
        present.next_back()
    } else {
        present.next()
    };
    Cell::from(v.map_or_else(|| "-".to_owned(), |&v| format_metric(s.metric, v)))
}

/// A trend's table: one row per metric.
static TREND: &[Column<Series>] = &[
    col::<Series>("metric", Align::Left, |_, s| {
        Cell::from(s.metric.to_owned())
    }),
    col::<Series>("trend (oldest → newest)", Align::Left, |_, s| {
        Cell::from(sparkline(&s.values))
    }),
    col::<Series>("first", Align::Right, |_, s| end_value(s, false)),
    col::<Series>("latest", Align::Right, |_, s| end_value(s, true)),
];

fn format_check_value(metric: Metric, v: f64) -> String {
    metric.figure().unit.format(v)
}

/// A check's table: one row per span and metric judged.
static CHECK: &[Column<MetricCheck>] = &[
    col::<MetricCheck>("verdict", Align::Left, |_, c| Cell {
        text: c.judgement.to_string(),
        tone: Tone::Verdict(c.judgement),
    }),
    dump_col::<MetricCheck>("span", |_, c| Cell::from(c.identity.clone())),
    col::<MetricCheck>("metric", Align::Left, |_, c| {
        Cell::from(c.metric.to_string())
    }),
    col::<MetricCheck>("now", Align::Right, |_, c| {
        Cell::from(format_check_value(c.metric, c.value))
    }),
    col::<MetricCheck>("history", Align::Left, |_, c| {
        Cell::from(format!(
            "{} ± {} ({} runs)",
            format_check_value(c.metric, c.history_median),
            format_check_value(c.metric, c.history_spread),
            c.history_runs
        ))
    }),
    col::<MetricCheck>("change", Align::Right, |_, c| {
        Cell::from(units::change(c.change))
    }),
    col::<MetricCheck>("z", Align::Right, |_, c| {
        Cell::from(if c.z.is_finite() {
            format!("{:.1}", c.z)
        } else {
            "∞".to_owned()
        })
    }),
];

/// The sentence of a listing that has nothing to list.
fn nothing(id: &'static str, sentence: &'static str) -> Section<'static> {
    let mut s = outline::section(id, "", None, vec![Block::Paragraph(sentence)]);
    s.titled = false;
    s
}

fn listing<'a>(page_title: &str, sections: Vec<Section<'a>>) -> Outline<'a> {
    Outline {
        page_title: format!("perf-report history: {page_title}"),
        title: Title::History {
            command: "perf-report history",
            program: None,
            summary: None,
        },
        sections,
    }
}

/// The runs as an outline: one table.
pub(crate) fn runs_outline(runs: &[RunSummary]) -> Outline<'_> {
    let section = if runs.is_empty() {
        nothing(
            "runs",
            "No runs stored (or none match). Record one with `perf-report record DUMP`.",
        )
    } else {
        outline::section(
            "runs",
            "Runs",
            Some(Words::figures(format!("{} stored", runs.len()))),
            vec![Block::Table(Table::new("runs", RUNS, runs))],
        )
    };
    listing("runs", vec![section])
}

/// Where each of a trend's series shifted, in words.
fn shifts(tr: &Trend) -> Vec<String> {
    tr.series
        .iter()
        .flat_map(|s| {
            // Indices count the runs that have the metric.
            let runs: Vec<usize> = s
                .values
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_some())
                .map(|(i, _)| i)
                .collect();
            s.change_points.iter().map(move |c| {
                let at = runs.get(c.index).copied().unwrap_or(0);
                let run = &tr.points[at];
                format!(
                    "{} shifted {} at run {} ({}): {} → {} (p {:.3})",
                    s.metric,
                    units::change(c.relative_change),
                    run.run_id,
                    when(run.started_at_unix_ms),
                    format_metric(s.metric, c.before),
                    format_metric(s.metric, c.after),
                    c.p_value
                )
            })
        })
        .collect()
}

/// The trends as an outline: a section per span, its table and its change
/// points (`shifts[i]` for `trends[i]`, from [`shifts`]).
fn trends_outline<'a>(trends: &'a [Trend], shifts: &'a [Vec<String>]) -> Outline<'a> {
    if trends.is_empty() {
        return listing(
            "trends",
            vec![nothing("trends", "No stored run has that span.")],
        );
    }
    let sections = trends
        .iter()
        .zip(shifts)
        .enumerate()
        .map(|(i, (tr, shifts))| {
            let changes = if shifts.is_empty() {
                Block::Aside(Words::sentence("no change points".to_owned()))
            } else {
                Block::List(shifts)
            };
            let mut s = outline::section(
                "span",
                "Span",
                Some(Words::figures(format!(
                    "{} ({} runs)",
                    tr.identity,
                    tr.points.len()
                ))),
                vec![
                    Block::Table(Table::new("trend", TREND, &tr.series)),
                    changes,
                ],
            );
            s.id = format!("span-{}", i + 1);
            s
        })
        .collect();
    listing("trends", sections)
}

/// A check as an outline: its summary, then the spans and metrics that
/// regressed or improved.
pub(crate) fn check_outline(r: &CheckReport) -> Outline<'_> {
    let regressed = r.regressions().count();
    let improved = r
        .checks
        .iter()
        .filter(|c| c.judgement == Judgement::Improved)
        .count();
    let summary = format!(
        "against {} comparable runs (same program and machine {}); {} tests, z > {:.2} each (α split over them); {} regressed, {} improved, {} unchanged; {} spans without enough history",
        r.history.len(),
        r.machine,
        r.tests,
        r.z_critical,
        regressed,
        improved,
        r.tests - regressed - improved,
        r.not_judged
    );
    let notable: Vec<MetricCheck> = r
        .checks
        .iter()
        .filter(|c| c.judgement != Judgement::Unchanged)
        .cloned()
        .collect();
    let mut sections = Vec::new();
    if !notable.is_empty() {
        let mut changed = outline::section(
            "changed",
            "Changed",
            None,
            vec![Block::Table(Table::new("check", CHECK, &notable))],
        );
        // The check's summary leads into its table.
        changed.titled = false;
        sections.push(changed);
    }
    Outline {
        page_title: format!("perf-report check: {}", r.program),
        title: Title::History {
            command: "perf-report check",
            program: Some(&r.program),
            summary: Some(Words::sentence(summary)),
        },
        sections,
    }
}

/// `outline` in `format`; JSON is `value` itself.
fn render(
    outline: &Outline<'_>,
    value: &impl Serialize,
    format: Format,
    opts: &RenderOptions,
) -> String {
    format.outline(outline, opts).unwrap_or_else(|| {
        // Serialising our own types into memory cannot fail.
        let mut s = serde_json::to_string_pretty(value).unwrap_or_default();
        s.push('\n');
        s
    })
}

/// The runs in `format`: a table, or their JSON.
pub fn runs(runs: &[RunSummary], format: Format, opts: &RenderOptions) -> String {
    render(&runs_outline(runs), &runs, format, opts)
}

/// Each trend in `format`: the span's metrics as sparklines, the first
/// and latest values, and every change point; or their JSON.
pub fn trends(trends: &[Trend], format: Format, opts: &RenderOptions) -> String {
    let shifts: Vec<Vec<String>> = trends.iter().map(shifts).collect();
    render(&trends_outline(trends, &shifts), &trends, format, opts)
}

/// A check in `format`: its summary, the regressions and improvements,
/// and a count of the rest; or its JSON.
pub fn check(r: &CheckReport, format: Format, opts: &RenderOptions) -> String {
    render(&check_outline(r), r, format, opts)
}

fn text(width: Option<usize>) -> RenderOptions {
    RenderOptions::default().with_width(width)
}

/// The runs for a terminal: [`runs`] in [`Format::Text`].
pub fn runs_text(list: &[RunSummary], width: Option<usize>) -> String {
    runs(list, Format::Text, &text(width))
}

/// The trends for a terminal: [`trends`] in [`Format::Text`].
pub fn trends_text(list: &[Trend], width: Option<usize>) -> String {
    trends(list, Format::Text, &text(width))
}

/// A check for a terminal: [`check`] in [`Format::Text`].
pub fn check_text(r: &CheckReport, width: Option<usize>) -> String {
    check(r, Format::Text, &text(width))
}

#[cfg(test)]
mod tests {
    use super::when;

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(when(0), "1970-01-01 00:00");
        assert_eq!(when(1_796_120_026_796), "2026-12-01 10:13");
        assert_eq!(when(951_782_400_000), "2000-02-29 00:00");
    }
}
