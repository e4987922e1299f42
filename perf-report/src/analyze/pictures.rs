//! What the report's pictures draw, taken from the dump once, where the
//! analysis is built, so that no renderer reads the dump: the call graph
//! of the flamegraph, the busy-time distributions of the callsites with the
//! most self time, the sampler's timeline and the live heap of the
//! callsites that hold the most.
//!
//! Each picture keeps only a few series ([`MAX_SERIES`]), so that a dump of
//! ten thousand callsites still makes a page of a few megabytes.

use hdrhistogram::Histogram;
use perf_layer::dump::{Dump, HistogramDump};

use super::rows::CallsiteRow;
use crate::callsite::Location;
use crate::flamegraph::CallGraph;

/// The most series a picture keeps (lines in one chart, charts of a diff).
pub const MAX_SERIES: usize = 8;

/// The steps of `log10(1 / (1 - p))` at which a [`Distribution`] is read.
pub const PERCENTILE_STEP: f64 = 0.025;

/// The deepest percentile a [`Distribution`] is read to: 99.999%, five
/// decades.
pub const MAX_DECADES: i32 = 5;

/// Everything the report's pictures draw.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Pictures {
    /// The call graph the flamegraph folds into call paths when it is
    /// drawn: folding a graph of ten thousand callsites costs as much as the
    /// rest of the analysis, which a report without a flamegraph need not
    /// pay.
    pub call_graph: CallGraph,
    /// The busy-time distributions of the callsites with the most self time
    /// (at most [`MAX_SERIES`], of those with self time and a recorded
    /// distribution), by self time, largest first.
    pub latency: Vec<(Location, Distribution)>,
    /// The sampler's RSS and CPU over the run.
    pub timeline: Timeline,
    /// The live heap over the run of the callsites holding the most, when
    /// the dump has the counting allocator's timeline.
    pub live_heap: Option<LiveHeap>,
}

/// The process over the run, as the sampler saw it.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Timeline {
    /// The samples, in the dump's order.
    pub samples: Vec<Sample>,
    /// The machine's cores, as the dump says.
    pub cores: Option<u32>,
}

/// One sample of the process.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Sample {
    /// When it was taken, ms since the start.
    pub t_ms: u64,
    /// Resident memory, bytes.
    pub rss_bytes: u64,
    /// CPU over every thread, percent of one core.
    pub cpu_percent: f64,
}

/// Live bytes over the run, by callsite.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct LiveHeap {
    /// When each point was taken, ms since the start.
    pub t_ms: Vec<u64>,
    /// The callsites with the most live bytes at their peak (at most
    /// [`MAX_SERIES`]), most first.
    pub holders: Vec<Holder>,
}

/// One callsite's live bytes over the run.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Holder {
    /// Where the span is.
    pub location: Location,
    /// The most bytes it held at a point of the timeline.
    pub peak_bytes: u64,
    /// Its live bytes at each point of [`LiveHeap::t_ms`].
    pub live_bytes: Vec<u64>,
}

/// A busy-time distribution read at the points a percentile chart draws:
/// at `p = 1 - 10^-l` for `l` in steps of [`PERCENTILE_STEP`], evenly
/// spaced on a logarithmic axis of `1 / (1 - p)`, as far as the calls go.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Distribution {
    /// Calls recorded.
    pub calls: u64,
    /// The 99th percentile, ns.
    pub p99_ns: u64,
    /// The slowest call, ns.
    pub max_ns: u64,
    /// The value at `1 - 10^-l`, ns, for `l = k` × [`PERCENTILE_STEP`],
    /// `k = 0, 1, …`, while `l < log10(calls)` and `l <` [`MAX_DECADES`].
    pub steps_ns: Vec<u64>,
    /// The value at `1 - 10^-d`, ns, for each whole `d = 1, 2, …` up to
    /// [`MAX_DECADES`] with `d <= log10(calls)`.
    pub decades_ns: Vec<u64>,
}

impl Distribution {
    /// The distribution of a stored histogram; `None` when it does not
    /// decode or holds no call.
    pub fn of(stored: &HistogramDump) -> Option<Self> {
        stored
            .decode()
            .ok()
            .filter(|h| !h.is_empty())
            .map(|h| Self::of_histogram(&h))
    }

    /// Every point read in one walk of the recorded values: what
    /// `Histogram::value_at_quantile` gives at each, without a walk per
    /// point.
    fn of_histogram(h: &Histogram<u64>) -> Self {
        let calls = h.len();
        let log_calls = (calls as f64).log10();
        let end = log_calls.min(f64::from(MAX_DECADES));
        let steps: Vec<f64> = (0u32..)
            .map(|step| f64::from(step) * PERCENTILE_STEP)
            .take_while(|&l| l < end)
            .map(|l| 1.0 - 10f64.powf(-l))
            .collect();
        let decades: Vec<f64> = (1..=MAX_DECADES)
            .map(f64::from)
            .take_while(|&d| d <= log_calls)
            .map(|d| 1.0 - 10f64.powf(-d))
            .collect();
        Self {
            calls,
            p99_ns: h.value_at_quantile(0.99),
            max_ns: h.max(),
            steps_ns: at_quantiles(h, &steps),
            decades_ns: at_quantiles(h, &decades),
        }
    }
}

/// `h.value_at_quantile(q)` for each of the ascending `quantiles`, in one
/// walk: the first recorded value whose running count reaches
/// `ceil(q × calls)` (at least 1), the lowest value of its bucket for
/// `q = 0` and the highest otherwise, as hdrhistogram reads it.
fn at_quantiles(h: &Histogram<u64>, quantiles: &[f64]) -> Vec<u64> {
    let total = h.len();
    let mut recorded = h
        .iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()));
    let mut running = 0u64;
    let mut at = None;
    quantiles
        .iter()
        .map(|&q| {
            let wanted = ((q.min(1.0) * total as f64).ceil() as u64).max(1);
            while running < wanted {
                let Some((value, count)) = recorded.next() else {
                    return 0;
                };
                running = running.saturating_add(count);
                at = Some(value);
            }
            match at {
                Some(value) if q == 0.0 => h.lowest_equivalent(value),
                Some(value) => value,
                None => 0,
            }
        })
        .collect()
}

impl Pictures {
    /// The pictures of `dump`, whose callsites have the `rows` (in the
    /// dump's order, with the labels every table shows) and come by self
    /// time in the order of the indices `by_self_time`, as the callsite
    /// table lists them.
    pub(crate) fn of(dump: &Dump, rows: &[CallsiteRow], by_self_time: &[usize]) -> Self {
        let latency = by_self_time
            .iter()
            .map(|&i| (i, &dump.callsites[i]))
            .filter(|(_, cs)| cs.self_ns.sum > 0)
            .filter_map(|(i, cs)| Some((rows[i].location.clone(), Distribution::of(&cs.busy_ns)?)))
            .take(MAX_SERIES)
            .collect();
        Self {
            call_graph: CallGraph::with_labels(dump, rows.iter().map(|r| &r.location)),
            latency,
            timeline: Timeline {
                samples: dump
                    .timeline
                    .samples
                    .iter()
                    .map(|s| Sample {
                        t_ms: s.t_ms,
                        rss_bytes: s.rss_bytes,
                        cpu_percent: s.cpu_percent,
                    })
                    .collect(),
                cores: dump.run.cores,
            },
            live_heap: live_heap(dump, rows, by_self_time),
        }
    }
}

/// The callsites holding the most live bytes at their peak, the first by
/// self time among equals.
fn live_heap(dump: &Dump, rows: &[CallsiteRow], by_self_time: &[usize]) -> Option<LiveHeap> {
    let heap = dump.heap.as_ref().filter(|h| !h.timeline_t_ms.is_empty())?;
    let mut holders: Vec<Holder> = by_self_time
        .iter()
        .filter_map(|&i| {
            let live = &dump.callsites[i].heap.as_ref()?.live_timeline_bytes;
            let peak = live.iter().copied().max()?;
            (peak > 0).then(|| Holder {
                location: rows[i].location.clone(),
                peak_bytes: peak,
                live_bytes: live.clone(),
            })
        })
        .collect();
    holders.sort_by(|a, b| {
        b.peak_bytes
            .cmp(&a.peak_bytes)
            .then_with(|| a.location.cmp(&b.location))
    });
    holders.truncate(MAX_SERIES);
    Some(LiveHeap {
        t_ms: heap.timeline_t_ms.clone(),
        holders,
    })
}

#[cfg(test)]
mod tests {
    use super::{Distribution, MAX_DECADES, PERCENTILE_STEP};
    use hdrhistogram::Histogram;

    /// The one walk reads what a walk per point reads, `p = 0` included.
    #[test]
    fn every_point_is_value_at_quantile() {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for v in 1..=20_000u64 {
            h.record(v * v % 7_919 + 1_000).unwrap();
        }
        h.record_n(3_000_000, 7).unwrap();
        let d = Distribution::of_histogram(&h);
        let end = (h.len() as f64).log10().min(f64::from(MAX_DECADES));
        let mut step = 0u32;
        loop {
            let l = f64::from(step) * PERCENTILE_STEP;
            if l >= end {
                break;
            }
            let p = 1.0 - 10f64.powf(-l);
            assert_eq!(d.steps_ns[step as usize], h.value_at_quantile(p), "at {p}");
            step += 1;
        }
        assert_eq!(d.steps_ns.len(), step as usize);
        assert_eq!(d.decades_ns.len(), 4);
        for (i, &v) in d.decades_ns.iter().enumerate() {
            let p = 1.0 - 10f64.powf(-(i as f64 + 1.0));
            assert_eq!(v, h.value_at_quantile(p));
        }
        assert_eq!(d.steps_ns[0], h.min());
        assert_eq!((d.max_ns, d.calls), (h.max(), h.len()));
    }
}
