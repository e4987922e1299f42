//! The report's pictures, from what the analysis took of the dump
//! ([`Pictures`](crate::analyze::Pictures)): the flamegraph, the busy-time percentile distributions of
//! the heaviest spans, the process timeline, the live heap of the callsites
//! that hold the most, and, for a diff, the base and new distributions of
//! each changed span.
//!
//! Each picture is drawn only for a few series ([`MAX_SERIES`]), so that a
//! dump of ten thousand callsites still makes a page of a few megabytes.

use super::axis;
use super::page::Page;
use super::svg::{self, LineChart, PALETTE, Series};
use super::{base64, escape};
use crate::analyze::pictures::{
    Distribution, LiveHeap, MAX_DECADES, MAX_SERIES, PERCENTILE_STEP, Timeline,
};
use crate::callsite::Location;
use crate::diff::{Diff, Verdict};
use crate::flamegraph::{CallGraph, FlamegraphError, flamegraph_svg_for_page};
use crate::render::RenderOptions;
use crate::units;

/// The most points of a timeline drawn: more than the chart has pixels.
const MAX_POINTS: usize = 600;

/// A note in place of a picture that cannot be drawn.
fn missing(page: &mut Page, what: &str) {
    page.body.push_str("<p class=\"muted\">");
    page.body.push_str(&escape(what));
    page.body.push_str("</p>\n");
}

/// The flamegraph of self time by call path, as an image: inferno's SVG
/// carries a script written for a page of its own, which inside an `<img>`
/// neither runs nor throws.
pub(super) fn flamegraph(page: &mut Page, call_graph: &CallGraph, program: &str) {
    let mut svg = Vec::new();
    match flamegraph_svg_for_page(&call_graph.folded_stacks(), program, &mut svg) {
        Ok(()) => {
            page.body.push_str(
                "<figure><div class=\"flame-wrap\"><img class=\"flamegraph\" alt=\"Flamegraph of self time by call path\" src=\"data:image/svg+xml;base64,",
            );
            page.body.push_str(&base64::encode(&svg));
            page.body.push_str(
                "\"></div><figcaption class=\"muted\">Each box is a span on its call path; its width is the self time spent there and in what it called. Hover a box in the standalone SVG (<code>perf-report flamegraph</code>) for its figures.</figcaption></figure>\n",
            );
            page.charts += 1;
        }
        Err(FlamegraphError::Empty) => missing(page, "No span has self time to draw."),
        Err(e) => missing(page, &e.to_string()),
    }
}

/// `(1 / (1 - p), busy ns)` along the distribution `d`, from the fastest
/// call to the slowest; the curve ends where the calls run out (at
/// `1 / (1 - p)` = calls, with the maximum) or at `10^decades`.
fn percentile_curve(d: &Distribution, decades: i32) -> Vec<(f64, f64)> {
    if d.calls == 0 {
        return Vec::new();
    }
    let end = (d.calls as f64).log10().min(f64::from(decades));
    let mut points = Vec::new();
    for (step, &value) in (0u32..).zip(&d.steps_ns) {
        let l = f64::from(step) * PERCENTILE_STEP;
        if l >= end {
            break;
        }
        points.push((10f64.powf(l), value.max(1) as f64));
    }
    let last = if end < f64::from(decades) {
        d.max_ns
    } else {
        // `end` is the whole `decades`, which the calls reach.
        usize::try_from(decades - 1)
            .ok()
            .and_then(|i| d.decades_ns.get(i).copied())
            .unwrap_or(d.max_ns)
    };
    points.push((10f64.powf(end), last.max(1) as f64));
    svg::drop_flat(points)
}

/// The decades of percentiles worth drawing for `calls`: enough for the
/// slowest call, at least 99%, at most [`MAX_DECADES`].
fn decades_for(calls: u64) -> i32 {
    ((calls.max(1) as f64).log10().ceil() as i32).clamp(2, MAX_DECADES)
}

/// A percentile-distribution chart of named histograms.
fn distribution_chart(
    title: String,
    note: &str,
    curves: Vec<(String, &Distribution, &'static str, bool)>,
) -> Option<LineChart> {
    let decades = decades_for(curves.iter().map(|c| c.1.calls).max().unwrap_or(0));
    let series: Vec<Series> = curves
        .into_iter()
        .map(|(name, h, color, dashed)| Series {
            name,
            points: percentile_curve(h, decades),
            color,
            dashed,
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    let values = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let (min, max) = values.fold((f64::INFINITY, 0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if series.is_empty() {
        return None;
    }
    Some(LineChart {
        title,
        note: note.to_owned(),
        x: axis::percentile_axis(decades),
        y: axis::log_ns_axis(min, max, "busy time per call"),
        series,
        wide: false,
    })
}

/// The busy-time distributions of the spans with the most self time.
pub(super) fn latency(page: &mut Page, latency: &[(Location, Distribution)], opts: &RenderOptions) {
    let curves: Vec<(String, &Distribution, &'static str, bool)> = latency
        .iter()
        .take(opts.limit(MAX_SERIES).min(MAX_SERIES))
        .zip(PALETTE)
        .map(|((location, d), color)| {
            let name = format!(
                "{} (p99 {}, {} call{})",
                location.label,
                units::ns(d.p99_ns as f64),
                units::count(d.calls as f64),
                if d.calls == 1 { "" } else { "s" }
            );
            (name, d, color, false)
        })
        .collect();
    match distribution_chart(
        "Busy time by percentile".to_owned(),
        "of the spans with the most self time. Right is rarer: the median at 50%, one call in a thousand beyond 99.9%; both axes are logarithmic.",
        curves,
    ) {
        Some(chart) => {
            LineChart {
                wide: true,
                ..chart
            }
            .write(&mut page.body);
            page.charts += 1;
        }
        None => missing(page, "No span has a busy-time distribution to draw."),
    }
}

/// RSS and CPU over the run, from the sampler's timeline.
pub(super) fn timeline(page: &mut Page, timeline: &Timeline) {
    let samples = &timeline.samples;
    if samples.is_empty() {
        missing(
            page,
            "No process timeline: enable the sampler for RSS and CPU over time.",
        );
        return;
    }
    let max_t = samples.iter().map(|s| s.t_ms).max().unwrap_or(0) as f64;
    let rss: Vec<(f64, f64)> = samples
        .iter()
        .map(|s| (s.t_ms as f64, s.rss_bytes as f64))
        .collect();
    let cpu: Vec<(f64, f64)> = samples
        .iter()
        .map(|s| (s.t_ms as f64, s.cpu_percent))
        .collect();
    let max_rss = rss.iter().map(|p| p.1).fold(0.0, f64::max);
    let max_cpu = cpu.iter().map(|p| p.1).fold(100.0, f64::max);
    let cores = timeline
        .cores
        .map_or_else(String::new, |n| format!(" of {n} cores"));
    page.body.push_str("<div class=\"charts\">\n");
    for chart in [
        LineChart {
            title: "Resident memory (RSS)".to_owned(),
            note: "of the whole process, as the sampler saw it.".to_owned(),
            x: axis::time_axis(max_t),
            y: axis::bytes_axis(max_rss, "RSS"),
            series: vec![Series {
                name: "RSS".to_owned(),
                points: svg::decimate(rss, MAX_POINTS),
                color: PALETTE[0],
                dashed: false,
            }],
            wide: false,
        },
        LineChart {
            title: "CPU".to_owned(),
            note: format!("of the whole process; 100% is one core{cores}."),
            x: axis::time_axis(max_t),
            y: axis::linear_axis(max_cpu, 1.0, "CPU (% of one core)", |v| {
                format!("{}%", axis::number(v))
            }),
            series: vec![Series {
                name: "CPU".to_owned(),
                points: svg::decimate(cpu, MAX_POINTS),
                color: PALETTE[1],
                dashed: false,
            }],
            wide: false,
        },
    ] {
        chart.write(&mut page.body);
        page.charts += 1;
    }
    page.body.push_str("</div>\n");
}

/// Live bytes over the run of the callsites holding the most at their peak,
/// where the dump has the counting allocator's timeline.
pub(super) fn live_heap(page: &mut Page, heap: Option<&LiveHeap>, opts: &RenderOptions) {
    let Some(heap) = heap else {
        missing(
            page,
            "No live-heap timeline: install perf-layer's counting allocator to see what each callsite holds over time.",
        );
        return;
    };
    let holders = &heap.holders[..heap.holders.len().min(opts.limit(MAX_SERIES).min(MAX_SERIES))];
    if holders.is_empty() {
        missing(page, "No callsite holds live heap.");
        return;
    }
    let series: Vec<Series> = holders
        .iter()
        .zip(PALETTE)
        .map(|(holder, color)| {
            let points = heap
                .t_ms
                .iter()
                .zip(&holder.live_bytes)
                .map(|(&t, &b)| (t as f64, b as f64))
                .collect();
            Series {
                name: format!(
                    "{} (peak {})",
                    holder.location.label,
                    units::bytes(holder.peak_bytes as f64)
                ),
                points: svg::decimate(points, MAX_POINTS),
                color,
                dashed: false,
            }
        })
        .collect();
    let max_t = heap.t_ms.iter().copied().max().unwrap_or(0) as f64;
    let max_bytes = holders.iter().map(|h| h.peak_bytes).max().unwrap_or(0) as f64;
    LineChart {
        title: "Live heap by callsite".to_owned(),
        note: "bytes the callsite's spans allocated that were still allocated, over the run."
            .to_owned(),
        x: axis::time_axis(max_t),
        y: axis::bytes_axis(max_bytes, "live bytes"),
        series,
        wide: true,
    }
    .write(&mut page.body);
    page.charts += 1;
}

/// The colour of a changed span's new distribution.
fn verdict_color(v: Verdict) -> &'static str {
    match v {
        Verdict::Regressed => "#d62728",
        Verdict::Improved => "#2ca02c",
        _ => "#e6a100",
    }
}

/// For each changed span (at most [`MAX_SERIES`]), its base and new busy
/// time by percentile, one over the other.
pub(super) fn diff_curves(page: &mut Page, d: &Diff) {
    let charts: Vec<LineChart> = d
        .callsites
        .iter()
        .filter(|c| c.verdict.is_change())
        .filter_map(|c| {
            let base = c.base_busy_ns.as_ref()?;
            let new = c.new_busy_ns.as_ref()?;
            let curves = vec![
                (
                    format!("base (p99 {})", units::ns(base.p99_ns as f64)),
                    base,
                    "#8c8c8c",
                    true,
                ),
                (
                    format!("new (p99 {})", units::ns(new.p99_ns as f64)),
                    new,
                    verdict_color(c.verdict),
                    false,
                ),
            ];
            distribution_chart(
                format!("{}: {}", c.location.label, c.verdict),
                &format!("{}.", c.location.source()),
                curves,
            )
        })
        .take(MAX_SERIES)
        .collect();
    if charts.is_empty() {
        missing(page, "No span changed: nothing to compare.");
        return;
    }
    page.body.push_str("<div class=\"charts\">\n");
    for chart in charts {
        chart.write(&mut page.body);
        page.charts += 1;
    }
    page.body.push_str("</div>\n");
}
