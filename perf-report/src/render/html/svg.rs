//! Line charts as inline SVG, drawn here rather than by a script in the
//! browser: the plot, grid lines and tick labels of two axes (`axis.rs`),
//! axis titles, series with a tooltip each, and an HTML legend under the
//! chart; and the thinning of long series.
//!
//! Every label goes through [`escape`]: series are named after spans.

use std::fmt::Write as _;

use super::axis::Axis;
use super::escape;

/// The drawing's size in SVG units; CSS scales it to the page, so a chart
/// as wide as the page is drawn wider to keep its text the page's size.
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 280.0;
const WIDE_WIDTH: f64 = 1100.0;
const WIDE_HEIGHT: f64 = 360.0;
/// Room for the tick labels and the axis titles.
const LEFT: f64 = 86.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 48.0;

/// Distinct on white and on the dark background, in legend order.
pub(super) const PALETTE: [&str; 8] = [
    "#4e79a7", "#f28e2b", "#e15759", "#59a14f", "#b07aa1", "#76b7b2", "#9c755f", "#ff9da7",
];

/// One line of a chart.
#[derive(Debug, Clone)]
pub(super) struct Series {
    /// Shown in the legend and as the line's tooltip.
    pub(super) name: String,
    pub(super) points: Vec<(f64, f64)>,
    /// A colour of [`PALETTE`] or any CSS colour of ours.
    pub(super) color: &'static str,
    pub(super) dashed: bool,
}

/// A line chart.
#[derive(Debug, Clone)]
pub(super) struct LineChart {
    /// The SVG's accessible name and the figure's caption.
    pub(super) title: String,
    /// One sentence under the title: what is drawn, how to read it.
    pub(super) note: String,
    pub(super) x: Axis,
    pub(super) y: Axis,
    pub(super) series: Vec<Series>,
    /// As wide as the page rather than one of a row of charts.
    pub(super) wide: bool,
}

fn px(v: f64) -> String {
    format!("{v:.1}")
}

impl LineChart {
    /// Writes the chart as a `<figure>`: caption, `<svg class="chart">`, and
    /// the legend.
    pub(super) fn write(&self, out: &mut String) {
        let (width, height) = if self.wide {
            (WIDE_WIDTH, WIDE_HEIGHT)
        } else {
            (WIDTH, HEIGHT)
        };
        let (pw, ph) = (width - LEFT - RIGHT, height - TOP - BOTTOM);
        let x = |v: f64| LEFT + self.x.fraction(v) * pw;
        let y = |v: f64| TOP + (1.0 - self.y.fraction(v)) * ph;
        let title = escape(&self.title);
        let _ = write!(
            out,
            "<figure class=\"chart-box\"><figcaption><strong>{title}</strong> <span class=\"muted\">{}</span></figcaption>\n<svg class=\"chart{}\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"{title}\"><title>{title}</title>\n",
            escape(&self.note),
            if self.wide { " wide" } else { "" }
        );
        let _ = writeln!(
            out,
            "<rect class=\"plot\" x=\"{LEFT}\" y=\"{TOP}\" width=\"{pw}\" height=\"{ph}\"/>"
        );
        for (v, label) in &self.y.ticks {
            let ty = px(y(*v));
            let _ = writeln!(
                out,
                "<line class=\"grid\" x1=\"{LEFT}\" y1=\"{ty}\" x2=\"{}\" y2=\"{ty}\"/><text class=\"tick\" x=\"{}\" y=\"{ty}\" text-anchor=\"end\" dominant-baseline=\"middle\">{}</text>",
                width - RIGHT,
                LEFT - 6.0,
                escape(label)
            );
        }
        for (v, label) in &self.x.ticks {
            let tx = px(x(*v));
            // The last label ends at the edge rather than past it.
            let anchor = if self.x.fraction(*v) > 0.97 {
                "end"
            } else {
                "middle"
            };
            let _ = writeln!(
                out,
                "<line class=\"grid\" x1=\"{tx}\" y1=\"{TOP}\" x2=\"{tx}\" y2=\"{}\"/><text class=\"tick\" x=\"{tx}\" y=\"{}\" text-anchor=\"{anchor}\">{}</text>",
                TOP + ph,
                TOP + ph + 18.0,
                escape(label)
            );
        }
        let _ = writeln!(
            out,
            "<text class=\"axis-title\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text><text class=\"axis-title\" x=\"16\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {})\">{}</text>",
            px(LEFT + pw / 2.0),
            height - 8.0,
            escape(&self.x.title),
            px(TOP + ph / 2.0),
            px(TOP + ph / 2.0),
            escape(&self.y.title)
        );
        // Dashed lines (a diff's base) over solid ones, so that a line drawn
        // twice still shows both.
        let solid_first = self.series.iter().filter(|s| !s.dashed);
        for s in solid_first.chain(self.series.iter().filter(|s| s.dashed)) {
            let points: Vec<String> = s
                .points
                .iter()
                .map(|&(a, b)| format!("{},{}", px(x(a)), px(y(b))))
                .collect();
            let dash = if s.dashed {
                " stroke-dasharray=\"6 4\""
            } else {
                ""
            };
            let name = escape(&s.name);
            let _ = writeln!(
                out,
                "<polyline class=\"series\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{dash} points=\"{}\"><title>{name}</title></polyline>",
                s.color,
                points.join(" ")
            );
            // A lone point draws no line: mark it.
            if let [(a, b)] = s.points[..] {
                let _ = writeln!(
                    out,
                    "<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{}\"><title>{name}</title></circle>",
                    px(x(a)),
                    px(y(b)),
                    s.color
                );
            }
        }
        out.push_str("</svg>\n");
        legend(out, &self.series);
        out.push_str("</figure>\n");
    }
}

/// The series' names beside a sample of their line.
fn legend(out: &mut String, series: &[Series]) {
    out.push_str("<ul class=\"legend\">");
    for s in series {
        let dash = if s.dashed {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        let _ = write!(
            out,
            "<li><svg class=\"swatch\" width=\"28\" height=\"10\" aria-hidden=\"true\"><line x1=\"0\" y1=\"5\" x2=\"28\" y2=\"5\" stroke=\"{}\" stroke-width=\"3\"{dash}/></svg>{}</li>",
            s.color,
            escape(&s.name)
        );
    }
    out.push_str("</ul>\n");
}

/// At most `max` points that keep the shape of `points` (sorted by x): in
/// each of `max / 2` runs, the lowest and the highest in their order, so
/// peaks survive.
pub(super) fn decimate(points: Vec<(f64, f64)>, max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max || max < 4 {
        return points;
    }
    let buckets = max / 2;
    let per = points.len().div_ceil(buckets);
    let mut out = Vec::with_capacity(max);
    for run in points.chunks(per) {
        let lowest = run
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.1.total_cmp(&b.1.1))
            .map(|(i, _)| i);
        let highest = run
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.1.total_cmp(&b.1.1))
            .map(|(i, _)| i);
        if let (Some(lo), Some(hi)) = (lowest, highest) {
            let (first, second) = if lo <= hi { (lo, hi) } else { (hi, lo) };
            out.push(run[first]);
            if second != first {
                out.push(run[second]);
            }
        }
    }
    out
}

/// `points` without those between two of the same height: a step curve
/// keeps its corners only.
pub(super) fn drop_flat(points: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(points.len());
    for (i, &p) in points.iter().enumerate() {
        let flat_before = out.last().is_some_and(|q| q.1 == p.1);
        let flat_after = points.get(i + 1).is_some_and(|q| q.1 == p.1);
        if !(flat_before && flat_after) {
            out.push(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_peaks_and_corners() {
        let points: Vec<(f64, f64)> = (0..1000)
            .map(|i| (f64::from(i), if i == 500 { 99.0 } else { 1.0 }))
            .collect();
        let thin = decimate(points, 100);
        assert!(thin.len() <= 100);
        assert!(thin.iter().any(|p| p.1 == 99.0));
        let steps = drop_flat(vec![(0.0, 1.0), (1.0, 1.0), (2.0, 1.0), (3.0, 2.0)]);
        assert_eq!(steps, [(0.0, 1.0), (2.0, 1.0), (3.0, 2.0)]);
    }
}
