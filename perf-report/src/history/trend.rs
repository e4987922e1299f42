//! A span's trend across the stored runs: its figures run by run, with the
//! change points of each metric.

use serde::Serialize;

use super::changepoint::{ChangeOptions, ChangePoint, change_points};
use super::error::HistoryError;
use super::store::{RunFilter, SpanPoint, Store};
use crate::figures::{Drawn, FIGURES};

/// One metric of a span across runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    /// Its name: a figure's (`busy_p50_ns`, `busy_p99_ns`, `self_share`,
    /// `live_bytes`).
    pub metric: &'static str,
    /// One value per point of the trend (`None` where the run lacks it).
    pub values: Vec<Option<f64>>,
    /// Where it shifted (indices into `values`, counting only the runs that
    /// have a value).
    pub change_points: Vec<ChangePoint>,
}

/// A span across runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trend {
    /// The span's identity.
    pub identity: String,
    /// Its name.
    pub name: String,
    /// The runs that have it, oldest first.
    pub points: Vec<SpanPoint>,
    /// Its metrics.
    pub series: Vec<Series>,
}

/// The trends of span `span` (an identity, or a name several identities may
/// share) over the runs `filter` selects.
pub fn trends(store: &Store, span: &str, filter: &RunFilter) -> Result<Vec<Trend>, HistoryError> {
    let points = store.span_series(span, filter)?;
    let mut by_identity: Vec<(String, Vec<SpanPoint>)> = Vec::new();
    for p in points {
        match by_identity
            .iter_mut()
            .find(|(id, _)| *id == p.span.identity)
        {
            Some((_, v)) => v.push(p),
            None => by_identity.push((p.span.identity.clone(), vec![p])),
        }
    }
    Ok(by_identity
        .into_iter()
        .map(|(identity, points)| trend(identity, points))
        .collect())
}

/// The trend of one span's points.
pub fn trend(identity: String, points: Vec<SpanPoint>) -> Trend {
    let opts = ChangeOptions::default();
    let series = FIGURES
        .iter()
        .filter_map(|f| {
            let values: Vec<Option<f64>> = points.iter().map(|p| (f.of)(&p.span)).collect();
            let drawn = match f.trend {
                Drawn::Never => false,
                Drawn::Always => true,
                Drawn::WhenMeasured => values.iter().any(Option::is_some),
            };
            drawn.then(|| {
                let present: Vec<f64> = values.iter().flatten().copied().collect();
                Series {
                    metric: f.name,
                    change_points: change_points(&present, &opts),
                    values,
                }
            })
        })
        .collect();
    Trend {
        name: points
            .first()
            .map_or_else(String::new, |p| p.span.name.clone()),
        identity,
        points,
        series,
    }
}

/// A one-line picture of `values` in block characters, lowest to highest.
///
/// ```
/// use perf_report::history::trend::sparkline;
/// assert_eq!(sparkline(&[Some(1.0), Some(2.0), None, Some(8.0)]), "▁▂ █");
/// ```
pub fn sparkline(values: &[Option<f64>]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let present = values.iter().flatten().copied().filter(|v| v.is_finite());
    let (lo, hi) = present.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    values
        .iter()
        .map(|v| match v {
            Some(v) if v.is_finite() && hi > lo => {
                let i = ((v - lo) / (hi - lo) * 7.0).round() as usize;
                BARS[i.min(7)]
            }
            Some(v) if v.is_finite() => BARS[3],
            _ => ' ',
        })
        .collect()
}
