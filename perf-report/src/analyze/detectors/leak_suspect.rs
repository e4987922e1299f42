//! Leak suspect: a callsite whose live bytes (what its spans made that is
//! still allocated, whoever frees what) keep growing after warm-up and are
//! still live at the end; or, where no callsite explains it (or the dump has
//! no live heap), a process RSS that keeps growing.
//!
//! Or, by its own calls, however short the run and whether or not the calls
//! went on to the end: most of its calls each closed holding memory they
//! made, and what they held is still live at the end (a leak grows with
//! the calls that leak, not with the clock; a phase that leaks and then
//! ends stopped growing, but what it kept is still there). A phase that
//! builds a table it keeps reads the same: where the calls all ended in
//! the first half of the run, the finding says so, at half the confidence,
//! and memory still growing at the end ranks first.
//!
//! A hand-off (a span builds a `Vec` that its caller or another thread
//! frees) ends with nothing live; a bounded cache fills and then holds
//! steady (its growth stops before the end, and once full its calls free
//! what they evict, so few of them close holding more than they freed);
//! neither is a leak.
//!
//! A callsite whose kept memory is freed again, but slower than its calls
//! keep it (a share `drained_share` of what they held when they closed
//! freed since), is more likely a backlog than memory nothing frees:
//! events queued on an unbounded channel for a consumer that falls
//! behind. The finding says so, on a trend or by its own calls, and puts
//! bounding the queue first among its fixes.

use serde::{Deserialize, Serialize};

use super::{Class, Detector, Info};
use crate::analyze::advice::{Advice, Effort, lines};
use crate::analyze::context::{Context, GrowthWindow};
use crate::analyze::open_spans;
use crate::analyze::finding::{Draft, Evidence, Finding, Resource};
use crate::stats::{self, LinearFit};
use crate::units::{self, Unit};

/// When a callsite or the process is a leak suspect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Settings {
    /// Callsite: at least this many of its bytes are live at the end
    /// (default 1 MiB)...
    pub min_live_bytes: u64,
    /// ...its live-bytes timeline, without the first `warmup_share` of the
    /// run's points (0.25, a warm-up that fills caches), has at least
    /// `min_points` points (8)...
    pub warmup_share: f64,
    /// ...see above.
    pub min_points: usize,
    /// ...a least-squares line explains at least this much of it (R², 0.8)...
    pub min_r2: f64,
    /// ...it grew at least this many bytes over that window (1 MiB)...
    pub min_growth_bytes: u64,
    /// ...and at least this share of what is live at the end (0.25)...
    pub min_growth_share: f64,
    /// ...and it still grows at the end: over the window's last third, at
    /// least this share of the window's rate (0.5; a cache that filled and
    /// holds steady does not). The process's RSS too, over the timeline's
    /// last third.
    pub min_end_rate_share: f64,
    /// Process (no live heap, or no callsite explains the growth): at least
    /// this many timeline samples for an RSS fit (8)...
    pub min_samples: usize,
    /// ...a fit of R² at least `min_r2`, a fitted growth over the timeline
    /// of at least this share of the first sample's RSS (0.10)...
    pub min_rss_growth_share: f64,
    /// ...and of at least this many bytes (8 MiB).
    pub min_rss_growth_bytes: u64,
    /// By its own calls: at least this many calls (100)...
    pub min_calls: u64,
    /// ...at least this share of which closed holding more than they freed
    /// (0.5)...
    pub min_retaining_share: f64,
    /// ...and at least this share of what those calls kept is still live
    /// at the end (0.5), at least `min_live_bytes` of it.
    pub min_kept_live_share: f64,
    /// A leaking callsite at least this share of whose kept bytes (what
    /// its calls held when they closed) were freed since (0.25) is said to
    /// be drained slower than it fills (a backlog), and bounding the queue
    /// comes first among its fixes.
    pub drained_share: f64,
    /// The share of what it holds a fix returns (0.9).
    pub recoverable: f64,
    /// Confidence is R² x `points / (points + this)` (4).
    pub half_confidence_points: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            min_live_bytes: 1024 * 1024,
            warmup_share: 0.25,
            min_points: 8,
            min_r2: 0.8,
            min_growth_bytes: 1024 * 1024,
            min_growth_share: 0.25,
            min_end_rate_share: 0.5,
            min_samples: 8,
            min_rss_growth_share: 0.10,
            min_rss_growth_bytes: 8 * 1024 * 1024,
            min_calls: 100,
            min_retaining_share: 0.5,
            min_kept_live_share: 0.5,
            drained_share: 0.25,
            recoverable: 0.9,
            half_confidence_points: 4.0,
        }
    }
}

impl Settings {
    /// The part of a live-bytes timeline a growth fit reads, for the rows'
    /// growth and the memory axis of a diff.
    pub(crate) fn growth_window(&self) -> GrowthWindow {
        GrowthWindow {
            warmup_share: self.warmup_share,
            min_points: self.min_points,
        }
    }
}

pub(crate) struct LeakSuspect;

static INFO: Info = Info {
    title: "leak suspect",
    // Live bytes belong to the innermost span that made them: a parent
    // does not inherit its children's.
    innermost: false,
    supersedes: &[],
};

/// What a leak finding is about, with the figures its advice states.
#[derive(Debug, Clone, Copy)]
enum Held {
    /// A callsite's bytes live at the end, growing this many bytes per
    /// second after warm-up; drained slower than it fills, or not.
    Growing { live: f64, per_s: f64, drained: bool },
    /// A callsite's bytes live at the end, kept by its own calls; drained
    /// slower than they keep it, or not.
    KeptByCalls { live: f64, drained: bool },
    /// The process's RSS, growing with no callsite to explain it.
    ProcessRss,
}

fn trend_evidence(fit: &LinearFit, min_r2: f64) -> Vec<Evidence> {
    vec![
        Evidence::new("RSS slope", fit.slope, Unit::BytesPerSec, None),
        Evidence::new("RSS fit R²", fit.r2, Unit::Number, Some(min_r2)),
        Evidence::new("timeline samples", fit.n as f64, Unit::Count, None),
    ]
}

/// The share of what the callsite's calls kept when they closed
/// (`alloc.net_bytes`) that has been freed since, `live` bytes of it left:
/// temporaries freed inside a call are not in it, so a leak that formats a
/// key to keep a copy is still one.
fn freed_since(cs: &perf_layer::dump::CallsiteStats, live: f64) -> f64 {
    let kept = cs.alloc.map_or(0.0, |a| a.net_bytes.max(0) as f64);
    stats::ratio((kept - live).max(0.0), kept)
}

/// The summary's words for memory drained slower than it is kept.
fn backlog(drained: bool, freed: f64) -> String {
    if drained {
        format!(
            "; {} of what its calls kept was freed since, slower than they kept it: a backlog (a queue a slower consumer drains) more likely than memory nothing frees",
            units::pct(freed)
        )
    } else {
        String::new()
    }
}

/// Where memory that `cs`'s calls made and closed holding is kept, for a
/// summary: where they put it, or by their caller (the one with the most
/// calls of it) if they returned it; the dump cannot tell which. Empty when most calls closed holding nothing, or no caller
/// is known. A fresh program's sessions (async spans open to the end) each
/// pushed every message `handle_message` rendered into a history nobody
/// trimmed: the leak was read, rightly, as `handle_message`'s, whose code
/// keeps nothing.
fn kept_past_its_calls(cx: &Context<'_>, cs: &perf_layer::dump::CallsiteStats, s: &Settings) -> String {
    let Some(i) = keeping_caller(cx, cs, s) else {
        // Its own spans kept open by tasks spawned inside them, which took
        // what the span made with them.
        return cx
            .index_of(cs.id)
            .and_then(|own| open_spans::tasks_clause(cx, own))
            .unwrap_or_default();
    };
    let open = if cx.dump.callsites[i].calls == 0 {
        " (its spans all still open when the dump was written)"
    } else {
        ""
    };
    format!(
        "; what its calls made outlived them: it is kept where they put it (a shared or `static` collection, a cache, a channel) or by their caller `{}`{open}, if they returned it{}",
        cx.rows[i].location.label,
        open_spans::tasks_clause(cx, i).unwrap_or_default()
    )
}

/// The caller that may keep what `cs`'s calls made and closed holding
/// (the one with the most calls of it), by its index in the dump; `None`
/// when most calls closed holding nothing, or no caller is known.
fn keeping_caller(cx: &Context<'_>, cs: &perf_layer::dump::CallsiteStats, s: &Settings) -> Option<usize> {
    let a = cs.alloc?;
    if cs.calls == 0 || (a.calls_retaining as f64) < s.min_retaining_share * cs.calls as f64 {
        return None;
    }
    cx.edges_into(cs.id)
        .max_by_key(|e| e.calls)
        .and_then(|e| cx.index_of(e.parent))
}

/// The callsite of tasks that never end, piled up open under the caller
/// that keeps what `cs`'s calls made, or under `cs` itself
/// ([`open_spans::kept_open_under`]), by its label: ending them is the
/// first fix. A fresh tokio service whose `handle` spawned an `audit` task
/// with a 4 KiB copy of each response, awaiting an acknowledgement that
/// never came, read a leak on `handle` (right) with "Bound caches and
/// maps" first, and `audit`'s 18,070 open spans only in a note.
fn never_ending_tasks(cx: &Context<'_>, cs: &perf_layer::dump::CallsiteStats, s: &Settings) -> Option<String> {
    let piled_under = |i: usize| open_spans::kept_open_under(cx, i);
    let (tasks, _) = keeping_caller(cx, cs, s)
        .and_then(piled_under)
        .or_else(|| cx.index_of(cs.id).and_then(piled_under))?;
    Some(cx.rows[tasks].location.label.clone())
}

/// Whether most of the callsite's calls each kept memory they made and
/// what they kept is still live at the end: a leak by its own calls.
fn kept_by_calls(
    cs: &perf_layer::dump::CallsiteStats,
    h: &crate::analyze::HeapRow,
    s: &Settings,
) -> bool {
    let Some(a) = cs.alloc else { return false };
    let kept = a.net_bytes.max(0) as f64;
    cs.calls >= s.min_calls
        && a.calls_retaining as f64 >= s.min_retaining_share * cs.calls as f64
        && h.live_bytes >= s.min_live_bytes
        && kept > 0.0
        && h.live_bytes as f64 >= s.min_kept_live_share * kept
}

/// A callsite whose calls all ended by this share of the run...
const ENDED_BY: f64 = 0.5;
/// ...keeps what a phase built and holds (a table loaded at start-up) as
/// much as what a phase leaked: its finding has this share of the
/// confidence, so memory still growing at the end ranks first. A fresh
/// batch job's `load_row` (a 40 MiB lookup table filled in the run's
/// first 9% and read through the rest) was the plan's first step, before
/// `score`'s leak of 512 bytes an item that grew to the end.
const ENDED_EARLY_CONFIDENCE: f64 = 0.5;

/// When `cs`'s calls all ended by [`ENDED_BY`] of the run: that share.
/// `None` without its `active` window.
fn calls_ended_early(cx: &Context<'_>, cs: &perf_layer::dump::CallsiteStats) -> Option<f64> {
    let at = stats::share(cs.active?.last_close_ns as f64, cx.run_wall_ns);
    (cx.run_wall_ns > 0.0 && at <= ENDED_BY).then_some(at)
}

/// The finding of a leak by its own calls ([`kept_by_calls`]).
fn by_own_calls(
    cx: &Context<'_>,
    cs: &perf_layer::dump::CallsiteStats,
    row: &crate::analyze::CallsiteRow,
    base: f64,
    s: &Settings,
) -> Option<Finding> {
    let h = row.heap.as_ref()?;
    if !kept_by_calls(cs, h, s) {
        return None;
    }
    let a = cs.alloc?;
    let live = h.live_bytes as f64;
    let retaining = stats::share(a.calls_retaining as f64, cs.calls as f64);
    let per_call = stats::ratio(live, a.calls_retaining as f64);
    let freed = freed_since(cs, live);
    let drained = freed >= s.drained_share;
    let ended = calls_ended_early(cx, cs);
    let draft = Draft {
        class: Class::LeakSuspect,
        callsite: Some((cs.id, row.location.clone())),
        resource: Resource::Memory,
        cost_share: stats::share(live, base),
        recoverable: s.recoverable,
        confidence: retaining
            * stats::sample_confidence(a.calls_retaining, s.half_confidence_points)
            * if ended.is_some() { ENDED_EARLY_CONFIDENCE } else { 1.0 },
        summary: format!(
            "holds {} at the end, kept by its own calls: {} of its {} closed holding memory (about {} each), and it is still live{}{}{}",
            units::bytes(live),
            units::pct(retaining),
            units::calls(cs.calls),
            units::bytes(per_call),
            backlog(drained, freed),
            kept_past_its_calls(cx, cs, s),
            ended.map_or(String::new(), |at| format!(
                "; its calls ended {} into the run and nothing was added since: memory built once and kept on purpose (a table, a cache loaded at start-up) reads the same, and is a leak only if nothing uses it again",
                units::pct(at)
            )),
        ),
        evidence: vec![
            Evidence::new("live at the end", live, Unit::Bytes, Some(s.min_live_bytes as f64)),
            Evidence::new(
                "calls that closed holding memory",
                retaining,
                Unit::Share,
                Some(s.min_retaining_share),
            ),
            Evidence::new("kept per such call", per_call, Unit::Bytes, None),
            Evidence::new("calls", cs.calls as f64, Unit::Count, Some(s.min_calls as f64)),
            Evidence::new("peak live", h.peak_live_bytes as f64, Unit::Bytes, None),
            Evidence::new(
                "kept by its calls and freed since",
                freed,
                Unit::Share,
                Some(s.drained_share),
            ),
        ],
    };
    let tasks = never_ending_tasks(cx, cs, s);
    Some(cx.score(draft, |f| advice(f, Held::KeptByCalls { live, drained }, tasks)))
}

impl Detector for LeakSuspect {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn detect(&self, cx: &Context<'_>, found: &mut Vec<Finding>) {
        let s = &cx.config.classes.leak_suspect;
        let base = match (cx.process.rss_peak_bytes, &cx.dump.heap) {
            (0, Some(h)) => h.timeline_live_bytes.iter().copied().max().unwrap_or(h.live_bytes),
            (peak, _) => peak,
        } as f64;
        // The process's RSS trend, when significant: corroboration for a
        // callsite, the finding itself where no callsite explains it.
        let process = &cx.process;
        let trend = process.rss_trend.filter(|fit| {
            let growth = fit.slope * cx.timeline_span_s();
            fit.n >= s.min_samples
                && fit.r2 >= s.min_r2
                && fit.slope > 0.0
                && growth >= s.min_rss_growth_bytes as f64
                && growth >= s.min_rss_growth_share * process.rss_first_bytes as f64
        });
        let mut any = false;
        for (_, cs, row) in cx.callsites() {
            let (Some(heap), Some(h)) = (&cs.heap, &row.heap) else {
                continue;
            };
            // A trend after warm-up where the run is long enough to show
            // one; else (or where it does not hold) the callsite's own calls.
            let by_calls = |found: &mut Vec<Finding>| {
                let finding = by_own_calls(cx, cs, row, base, s);
                let any = finding.is_some();
                found.extend(finding);
                any
            };
            let Some(fit) = Fitted::of(cx, s, heap, h) else {
                any |= by_calls(found);
                continue;
            };
            let Fitted {
                slope,
                r2,
                growth,
                end_rate,
                points,
            } = fit;
            let live = h.live_bytes as f64;
            if h.live_bytes < s.min_live_bytes
                || growth < s.min_growth_bytes as f64
                || !fit.grows_steadily(live, s)
            {
                any |= by_calls(found);
                continue;
            }
            any = true;
            let freed = freed_since(cs, live);
            let drained = freed >= s.drained_share;
            let draft = Draft {
                class: Class::LeakSuspect,
                callsite: Some((cs.id, row.location.clone())),
                resource: Resource::Memory,
                cost_share: stats::share(live, base),
                recoverable: s.recoverable,
                confidence: r2
                    * stats::sample_confidence(points as u64, s.half_confidence_points),
                summary: format!(
                    "holds {} at the end and grew {}/s after warm-up (R² {:.2} over {} points), still growing at the end{}{}",
                    units::bytes(live),
                    units::bytes(slope),
                    r2,
                    points,
                    backlog(drained, freed),
                    kept_past_its_calls(cx, cs, s),
                ),
                evidence: vec![
                    Evidence::new(
                        "live at the end",
                        live,
                        Unit::Bytes,
                        Some(s.min_live_bytes as f64),
                    ),
                    Evidence::new("growth after warm-up", slope, Unit::BytesPerSec, None),
                    Evidence::new(
                        "growth over the window",
                        growth,
                        Unit::Bytes,
                        Some(s.min_growth_bytes as f64),
                    ),
                    Evidence::new("fit R²", r2, Unit::Number, Some(s.min_r2)),
                    Evidence::new(
                        "rate at the end / rate",
                        stats::ratio(end_rate, slope),
                        Unit::Ratio,
                        Some(s.min_end_rate_share),
                    ),
                    Evidence::new("peak live", h.peak_live_bytes as f64, Unit::Bytes, None),
                    Evidence::new(
                        "kept by its calls and freed since",
                        freed,
                        Unit::Share,
                        Some(s.drained_share),
                    ),
                ]
                .into_iter()
                .chain(trend.iter().flat_map(|fit| trend_evidence(fit, s.min_r2)))
                .collect(),
            };
            found.push(cx.score(draft, |f| {
                advice(f, Held::Growing { live, per_s: slope, drained }, never_ending_tasks(cx, cs, s))
            }));
        }
        if any {
            return;
        }
        // No callsite explains it: the process's RSS trend, still rising
        // over the timeline's last third (eight threads' bounded caches
        // filled over the run and were freed as the threads ended: RSS
        // rose 3.6 MiB/s for four seconds, then fell by half).
        let Some(fit) = trend else {
            return;
        };
        let rss: Vec<(f64, f64)> = cx
            .dump
            .timeline
            .samples
            .iter()
            .map(|p| (p.t_ms as f64 / 1e3, p.rss_bytes as f64))
            .collect();
        let end_rate = end_rate(&rss);
        if end_rate < s.min_end_rate_share * fit.slope {
            return;
        }
        let growth = fit.slope * cx.timeline_span_s();
        let held_by_spans = if cx.dump.heap.is_some() {
            "no span's live heap explains it"
        } else {
            "the dump has no live heap per callsite (install perf-layer's counting allocator)"
        };
        // Tasks or threads that never end hold their stacks and what they
        // were given, in no span's figures.
        let pile = open_spans::largest_pile(cx);
        let piled = pile.as_ref().map_or(String::new(), |(i, p)| {
            format!(
                "; `{}` has {}: tasks or threads that never end hold their stacks and what they were given",
                cx.rows[*i].location.label,
                p.clause()
            )
        });
        let draft = Draft {
            class: Class::LeakSuspect,
            callsite: None,
            resource: Resource::Memory,
            cost_share: stats::share(growth, process.rss_peak_bytes as f64),
            recoverable: s.recoverable,
            confidence: fit.r2 * stats::sample_confidence(fit.n as u64, s.half_confidence_points),
            summary: format!(
                "process RSS grows {}/s over the run (R² {:.2}, {} samples) and {held_by_spans}{piled}",
                units::bytes(fit.slope),
                fit.r2,
                fit.n
            ),
            evidence: trend_evidence(&fit, s.min_r2)
                .into_iter()
                .chain([Evidence::new(
                    "RSS rate over the last third of the run / rate",
                    stats::ratio(end_rate, fit.slope),
                    Unit::Ratio,
                    Some(s.min_end_rate_share),
                )])
                .collect(),
        };
        let tasks = pile.map(|(i, _)| cx.rows[i].location.label.clone());
        found.push(cx.score(draft, |f| advice(f, Held::ProcessRss, tasks)));
    }

}

/// A callsite's live-bytes line after warm-up, as its row fitted it, with
/// what the window's points say beside it.
#[derive(Debug, Clone, Copy)]
struct Fitted {
    /// The line's growth, bytes a second.
    slope: f64,
    /// The line's R².
    r2: f64,
    /// Its growth over the window, bytes.
    growth: f64,
    /// The growth rate over the window's last third ([`end_rate`]).
    end_rate: f64,
    /// The window's points.
    points: usize,
}

impl Fitted {
    /// Of `heap`, whose row's heap figures are `h`; `None` where the row
    /// has no line.
    fn of(
        cx: &Context<'_>,
        s: &Settings,
        heap: &perf_layer::dump::HeapStats,
        h: &crate::analyze::HeapRow,
    ) -> Option<Self> {
        let (slope, r2) = (h.growth_bytes_per_s?, h.growth_r2?);
        let points = s.growth_window().points(cx.dump, heap);
        let span_s = points.last().map_or(0.0, |l| l.0) - points.first().map_or(0.0, |f| f.0);
        Some(Self {
            slope,
            r2,
            growth: slope * span_s,
            end_rate: end_rate(&points),
            points: points.len(),
        })
    }

    /// Whether the live bytes (`live` at the end) grew steadily and still
    /// grow at the end, whatever their size: a line of R² at least
    /// `min_r2` and positive slope, a growth over the window of at least
    /// `min_growth_share` of what is live, and a rate over the last third
    /// at least `min_end_rate_share` of the line's.
    fn grows_steadily(&self, live: f64, s: &Settings) -> bool {
        self.slope > 0.0
            && self.r2 >= s.min_r2
            && self.growth >= s.min_growth_share * live
            && self.end_rate >= s.min_end_rate_share * self.slope
    }
}

/// At least this much live at the end for a growth under the finding's
/// bars to be said (16 KiB)...
const SMALL_MIN_LIVE_BYTES: u64 = 16 * 1024;

/// ...over a run of at least this long, ns (1 s): a short run's rate an
/// hour says nothing.
const SMALL_MIN_RUN_NS: f64 = 1e9;

/// A callsite's live heap that grew steadily to the end but stayed under
/// the finding's `min_live_bytes`: a short run of a leak (a server's access
/// log kept in a `static` grew 47 KiB in 4 s, 41 MiB an hour at that rate)
/// or a cache still filling, which a longer run tells apart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SmallGrowth {
    /// Live at the end, bytes.
    pub(crate) live: f64,
    /// The line's growth, bytes a second.
    pub(crate) slope: f64,
    /// The line's R².
    pub(crate) r2: f64,
}

impl SmallGrowth {
    /// Of `cs`, with `row`: `None` unless its live bytes after warm-up grew
    /// steadily ([`Fitted::grows_steadily`]), under `min_live_bytes` and at least
    /// [`SMALL_MIN_LIVE_BYTES`] at the end, at a rate that makes
    /// `min_live_bytes` within an hour, over a run of at least
    /// [`SMALL_MIN_RUN_NS`].
    pub(crate) fn of(
        cx: &Context<'_>,
        cs: &perf_layer::dump::CallsiteStats,
        row: &crate::analyze::CallsiteRow,
    ) -> Option<Self> {
        let s = &cx.config.classes.leak_suspect;
        let (heap, h) = (cs.heap.as_ref()?, row.heap.as_ref()?);
        let fit = Fitted::of(cx, s, heap, h)?;
        let live = h.live_bytes as f64;
        (cx.run_wall_ns >= SMALL_MIN_RUN_NS
            && h.live_bytes < s.min_live_bytes
            && h.live_bytes >= SMALL_MIN_LIVE_BYTES
            && fit.slope * 3_600.0 >= s.min_live_bytes as f64
            && fit.grows_steadily(live, s))
            .then_some(Self {
                live,
                slope: fit.slope,
                r2: fit.r2,
            })
    }
}

/// The growth rate over the last third of `points` (`(seconds, bytes)`),
/// by least squares: a callsite's live bytes or the process's RSS still
/// rising at the end, or not.
fn end_rate(points: &[(f64, f64)]) -> f64 {
    stats::least_squares(&points[points.len() - points.len() / 3..]).map_or(0.0, |f| f.slope)
}

/// The plan step's advice for one of its findings, about what it holds;
/// `tasks`, the callsite of tasks that never end which keep it
/// ([`never_ending_tasks`]): ending them is the first fix.
fn advice(f: &Finding, held: Held, tasks: Option<String>) -> Advice {
    let name = f.subject().in_prose();
    let statement = match held {
        Held::Growing { live, per_s, .. } => format!(
            "releasing {} of the {} {name} holds ({} of peak memory) returns {}, {} of peak memory, and stops its growth of {}/s",
            units::pct(f.recoverable),
            units::bytes(live),
            units::pct(f.cost_share),
            units::bytes(live * f.recoverable),
            units::pct(f.expected_gain()),
            units::bytes(per_s)
        ),
        Held::KeptByCalls { live, .. } => format!(
            "releasing {} of the {} {name} holds ({} of peak memory) returns {}, {} of peak memory, and stops it growing with its calls",
            units::pct(f.recoverable),
            units::bytes(live),
            units::pct(f.cost_share),
            units::bytes(live * f.recoverable),
            units::pct(f.expected_gain())
        ),
        Held::ProcessRss => format!(
            "stopping the growth returns {} of peak memory ({} of peak memory grew over the run)",
            units::pct(f.expected_gain()),
            units::pct(f.cost_share)
        ),
    };
    let mut fixes = if matches!(
            held,
            Held::Growing { drained: true, .. } | Held::KeptByCalls { drained: true, .. }
        ) {
            lines(&[
                "Bound the queue it fills: a bounded channel (`tokio::sync::mpsc::channel(n)`, `std::sync::mpsc::sync_channel(n)`) makes the producer wait for the consumer (backpressure), or shed what it cannot take; and let the consumer keep pace (a faster one, or several)",
                "Bound caches and maps that grow with input: an LRU (`lru`, `moka`) or eviction by age or size",
                "Break `Arc` reference cycles: hold back-references (parents, observers, callbacks) as `Weak`",
            ])
        } else {
            lines(&[
                "Bound caches and maps that grow with input: an LRU (`lru`, `moka`) or eviction by age or size",
                "Break `Arc` reference cycles: hold back-references (parents, observers, callbacks) as `Weak`",
                "Drain or bound what is never emptied: unbounded `mpsc` queues, spawned tasks that never finish, `Box::leak`/`mem::forget`, `static` collections",
            ])
        };
    if let Some(tasks) = tasks {
        fixes.insert(
            0,
            format!(
                "End the `{tasks}` tasks or threads: they never finish and keep what they were given (give each a way out: a timeout, a cancellation token, a `select!` on a shutdown or a session's end, a channel whose senders are dropped)"
            ),
        );
    }
    Advice {
        statement,
        fixes,
        prerequisites: lines(&[
            "Run long enough past warm-up to see the trend, so a cache filling to its bound is not mistaken for a leak",
        ]),
        check: match held {
            Held::Growing { .. } | Held::KeptByCalls { .. } => format!(
                "{name}'s live bytes must stop growing after warm-up and its live bytes at the end must fall"
            ),
            Held::ProcessRss => {
                "the RSS slope must flatten (a fit with low slope or low R²)".to_owned()
            }
        },
        complexity: Effort::Medium,
        risk: Effort::Medium,
    }
}

#[cfg(test)]
mod tests {
    use super::{Context, Detector, LeakSuspect, SmallGrowth};
    use crate::analyze::Class;
    use crate::analyze::test_dump::{MIB, MS, Span, about, assert_near, detect, dump, evidence};

    /// Two spans of 200 calls, each still holding the 2 MiB its calls kept,
    /// on a timeline too short for a trend: in `leaks` 150 calls closed
    /// holding memory (75%), in `near` 99 (just under half).
    #[test]
    fn finds_memory_kept_by_most_calls_and_not_by_just_under_half() {
        let found = detect(
            Class::LeakSuspect,
            dump(
                1_000 * MS,
                &[
                    Span::new("leaks", &[(MS, 200)])
                        .alloc(4 * MIB, 200, 2 * MIB as i64, 150)
                        .live(vec![0, 2 * MIB]),
                    Span::new("near", &[(MS, 200)])
                        .alloc(4 * MIB, 200, 2 * MIB as i64, 99)
                        .live(vec![0, 2 * MIB]),
                ],
            ),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        let f = about(&found, "leaks").unwrap();
        assert_eq!(evidence(f, "live at the end"), (2 * MIB) as f64);
        assert_eq!(evidence(f, "calls that closed holding memory"), 0.75);
        // 2 MiB of the heap's 4 MiB peak.
        assert_near(f.cost_share, 0.5, 1e-9);
        assert_near(f.confidence, 0.75 * 150.0 / 154.0, 1e-9);
        assert_eq!(
            f.advice.statement,
            "releasing 90.0% of the 2.00 MiB `leaks` holds (50.0% of peak memory) returns 1.80 MiB, 45.0% of peak memory, and stops it growing with its calls"
        );
    }

    /// `load` and `leaks` each keep 2 MiB by their own calls; `load`'s
    /// calls all ended a tenth into the run (a table built at start-up, or
    /// a phase that leaked), so its finding has half the confidence, says
    /// so, and ranks after the one whose calls went on to the end.
    #[test]
    fn memory_kept_by_calls_that_ended_early_ranks_after_memory_kept_to_the_end() {
        let mut d = dump(
            1_000 * MS,
            &[
                Span::new("load", &[(MS, 200)])
                    .alloc(4 * MIB, 200, 2 * MIB as i64, 200)
                    .live(vec![0, 2 * MIB]),
                Span::new("leaks", &[(MS, 200)])
                    .alloc(4 * MIB, 200, 2 * MIB as i64, 200)
                    .live(vec![0, 2 * MIB]),
            ],
        );
        let window = |first_open_ns, last_close_ns| perf_layer::dump::ActiveWindow {
            first_open_ns,
            last_close_ns,
        };
        d.callsites[0].active = Some(window(0, 100 * MS));
        d.callsites[1].active = Some(window(100 * MS, 990 * MS));
        let found = detect(Class::LeakSuspect, d);
        let (load, leaks) = (about(&found, "load").unwrap(), about(&found, "leaks").unwrap());
        assert_near(load.confidence, 0.5 * leaks.confidence, 1e-9);
        assert!(load.score < leaks.score, "{found:#?}");
        assert!(
            load.summary.contains("its calls ended 10.0% into the run"),
            "{}",
            load.summary
        );
        assert!(!leaks.summary.contains("ended"), "{}", leaks.summary);
    }

    /// The process's RSS rising 1 MiB a second for 30 s: a leak suspect
    /// where no span's live heap explains it. Rising for 22 s, then level
    /// (a cache at its bound, or memory the threads freed as they ended):
    /// the fit over the run is as good (R² 0.96), but the last third
    /// does not rise, and it is not one.
    #[test]
    fn a_process_rss_that_stops_rising_before_the_end_is_no_leak() {
        let with_level_from = |second: u64| {
            let mut d = dump(30_000 * MS, &[Span::new("work", &[(MS, 200)])]);
            let rss: Vec<(u64, f64)> = (0..30).map(|i| ((10 + i.min(second)) * MIB, 50.0)).collect();
            crate::analyze::test_dump::timeline(&mut d, &rss);
            detect(Class::LeakSuspect, d)
        };
        let rising = with_level_from(30);
        assert_eq!(rising.len(), 1, "{rising:?}");
        assert!(rising[0].summary.starts_with("process RSS grows 1.00 MiB/s"), "{}", rising[0].summary);
        assert_near(evidence(&rising[0], "RSS rate over the last third of the run / rate"), 1.0, 1e-6);
        let level = with_level_from(22);
        assert!(level.is_empty(), "{level:?}");
    }

    /// The same rise beside 950 `session` spans still open, opened through
    /// the run (a thread a job, each blocked on a channel nobody closes):
    /// the summary names them, and ending them is the first fix.
    #[test]
    fn a_process_rss_beside_a_pile_of_open_spans_names_them() {
        let mut d = dump(30_000 * MS, &[Span::new("work", &[(MS, 200)])]);
        d.callsites[0].open = Some(perf_layer::dump::OpenAtDump {
            spans: 950,
            first_opened_ns: 10 * MS,
            mean_opened_ns: 15_000 * MS,
            parent: None,
        });
        let rss: Vec<(u64, f64)> = (0..30).map(|i| ((10 + i) * MIB, 50.0)).collect();
        crate::analyze::test_dump::timeline(&mut d, &rss);
        let found = detect(Class::LeakSuspect, d);
        assert!(
            found[0].summary.ends_with("; `work` has 950 spans still open when the dump was written, opened through the run (the oldest 30.0 s before it, on average 15.0 s): tasks or threads that never end hold their stacks and what they were given"),
            "{}",
            found[0].summary
        );
        assert!(found[0].advice.fixes[0].starts_with("End the `work` tasks or threads"), "{:?}", found[0].advice.fixes);
    }

    /// Live bytes rising evenly to 30 MiB over 40 points (one a
    /// millisecond): a trend after warm-up, still growing at the end.
    #[test]
    fn finds_live_bytes_that_keep_growing() {
        let series: Vec<u64> = (0..40).map(|i| i * 30 * MIB / 39).collect();
        let found = detect(
            Class::LeakSuspect,
            dump(
                1_000 * MS,
                &[Span::new("grows", &[(MS, 200)])
                    .alloc(30 * MIB, 200, 30 * MIB as i64, 0)
                    .live(series)],
            ),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        // 30/39 MiB a millisecond.
        let per_s = 30.0 * MIB as f64 / 39.0 * 1e3;
        assert_near(evidence(f, "growth after warm-up"), per_s, 1e-3);
        assert_near(evidence(f, "fit R²"), 1.0, 1e-6);
        assert!(
            f.advice.statement.ends_with("and stops its growth of 769 MiB/s"),
            "{}",
            f.advice.statement
        );
    }

    /// A server's access log kept in a `static`: 47 KiB in 4 s, no finding
    /// (under `min_live_bytes`) but a steady growth the notes say; not a
    /// cache that filled and levelled off, nor 8 KiB, nor a run under 1 s.
    #[test]
    fn a_steady_growth_under_the_bars_is_a_small_growth() {
        let with = |series: Vec<u64>, wall_ms: u64| {
            let d = dump(
                wall_ms * MS,
                &[Span::new("handle", &[(MS, 400)]).alloc(MIB, 400, 0, 0).live(series)],
            );
            let input = crate::LoadedDump::from(d);
            let config = crate::config::Config::default();
            let cx = Context::new(&input, &config, config.classes.measures());
            let mut found = Vec::new();
            LeakSuspect.detect(&cx, &mut found);
            assert!(found.is_empty(), "{found:?}");
            let (_, cs, row) = cx.callsites().next().unwrap();
            SmallGrowth::of(&cx, cs, row)
        };
        let log = with((1..=40).map(|i| i * 1_200).collect(), 4_000).expect("a small growth");
        assert_near(log.live, 48_000.0, 1e-9);
        assert_near(log.slope, 1.2e6, 1.0);
        let filled: Vec<u64> = (1..=40).map(|i| i.min(20) * 2_400).collect();
        assert_eq!(with(filled, 4_000), None);
        assert_eq!(with((1..=40).map(|i| i * 200).collect(), 4_000), None);
        assert_eq!(with((1..=40).map(|i| i * 1_200).collect(), 900), None);
    }

    /// `handle_message`: 200 calls that each returned what they made, 30 MiB
    /// in all, still live and growing evenly over 40 points.
    fn returned_to_its_caller() -> Span {
        let series: Vec<u64> = (0..40).map(|i| i * 30 * MIB / 39).collect();
        Span::new("handle_message", &[(MS, 200)])
            .alloc(30 * MIB, 200, 30 * MIB as i64, 200)
            .live(series)
    }

    /// Memory its calls made and returned, kept past them by their caller
    /// `session`, open to the end: the summary says where to look. A span
    /// with no caller says nothing of one.
    #[test]
    fn memory_returned_by_its_calls_is_looked_for_in_their_caller() {
        let grows = returned_to_its_caller();
        let found = detect(
            Class::LeakSuspect,
            dump(
                1_000 * MS,
                &[Span::new("session", &[]).alloc(0, 0, 0, 0), grows.clone()],
            ),
        );
        let f = about(&found, "handle_message").unwrap_or_else(|| panic!("{found:#?}"));
        assert!(
            f.summary.contains(
                "or by their caller `session` (its spans all still open when the dump was written), if they returned it"
            ),
            "{}",
            f.summary
        );
        let alone = detect(Class::LeakSuspect, dump(1_000 * MS, &[grows]));
        assert!(!alone[0].summary.contains("caller"), "{}", alone[0].summary);
    }

    /// Memory a span's own code made and handed to a task spawned inside
    /// it that never ends (`audit`, 1,000 open under `handle`, which they
    /// keep open: no call of `handle` closed): the summary names the
    /// tasks, and ending them is the first fix.
    #[test]
    fn memory_handed_to_tasks_spawned_inside_the_span_names_them_first() {
        let with = |spans: u64| {
            let series: Vec<u64> = (0..40).map(|i| i * 30 * MIB / 39).collect();
            let mut d = dump(
                1_000 * MS,
                &[
                    Span::new("handle", &[]).alloc(30 * MIB, 200, 30 * MIB as i64, 0).live(series),
                    Span::new("audit", &[]).alloc(0, 0, 0, 0),
                ],
            );
            d.callsites[1].open = Some(perf_layer::dump::OpenAtDump {
                spans,
                first_opened_ns: MS,
                mean_opened_ns: 500 * MS,
                parent: Some(0),
            });
            let found = detect(Class::LeakSuspect, d);
            about(&found, "handle").cloned().unwrap_or_else(|| panic!("{found:#?}"))
        };
        let f = with(1_000);
        assert!(
            f.summary.ends_with("; `audit` has 1,000 spans still open when the dump was written, opened through the run (the oldest 999 ms before it, on average 500 ms) under `handle`, which they keep open: tasks that never end hold what they were given"),
            "{}",
            f.summary
        );
        assert!(f.advice.fixes[0].starts_with("End the `audit` tasks"), "{:?}", f.advice.fixes);
        let f = with(10);
        assert!(!f.summary.contains("still open when the dump was written,"), "{}", f.summary);
        assert!(f.advice.fixes[0].starts_with("Bound caches and maps"), "{:?}", f.advice.fixes);
    }

    /// The same, with the `session` spans kept open by `watcher` tasks that
    /// never end (1,000 open under it, opened through the run): the summary
    /// names them, and ending them is the first fix. Without the pile, the
    /// fixes are as before.
    #[test]
    fn memory_kept_by_tasks_that_never_end_names_them_first() {
        let grows = returned_to_its_caller();
        let with = |spans: u64| {
            let mut d = dump(
                1_000 * MS,
                &[
                    Span::new("session", &[]).alloc(0, 0, 0, 0),
                    grows.clone(),
                    Span::new("watcher", &[]).alloc(0, 0, 0, 0),
                ],
            );
            d.edges.retain(|e| e.child != 2);
            d.callsites[2].open = Some(perf_layer::dump::OpenAtDump {
                spans,
                first_opened_ns: MS,
                mean_opened_ns: 500 * MS,
                parent: Some(0),
            });
            let found = detect(Class::LeakSuspect, d);
            about(&found, "handle_message").cloned().unwrap_or_else(|| panic!("{found:#?}"))
        };
        let f = with(1_000);
        assert!(
            f.summary.contains("; `watcher` has 1,000 spans still open when the dump was written, opened through the run (the oldest 999 ms before it, on average 500 ms) under `session`, which they keep open: tasks that never end hold what they were given"),
            "{}",
            f.summary
        );
        assert!(f.advice.fixes[0].starts_with("End the `watcher` tasks"), "{:?}", f.advice.fixes);
        let f = with(10);
        assert!(!f.summary.contains("still open when the dump was written,"), "{}", f.summary);
        assert!(f.advice.fixes[0].starts_with("Bound caches and maps"), "{:?}", f.advice.fixes);
    }

    /// A fresh event processor's `ingest` puts a 4 KiB event on an
    /// unbounded channel a call for a consumer that falls behind: its calls
    /// kept 60 MiB when they closed, 30 MiB of which the consumer freed
    /// since, and the other 30 MiB still grows. A backlog: said, and
    /// bounding the queue is its first fix. The same growth with what its
    /// calls kept all still live is memory nothing frees: the cache and
    /// cycle fixes first.
    #[test]
    fn growth_that_is_freed_slower_than_it_is_kept_is_a_backlog() {
        let with = |kept: u64| {
            let series: Vec<u64> = (0..40).map(|i| i * 30 * MIB / 39).collect();
            detect(
                Class::LeakSuspect,
                dump(
                    1_000 * MS,
                    &[Span::new("ingest", &[(MS, 200)])
                        .alloc(kept, 200, kept as i64, 200)
                        .live(series)],
                ),
            )
        };
        let backlog = with(60 * MIB);
        let f = about(&backlog, "ingest").unwrap();
        assert_near(evidence(f, "kept by its calls and freed since"), 0.5, 1e-9);
        assert!(f.summary.contains("; 50.0% of what its calls kept was freed since"), "{}", f.summary);
        assert!(f.advice.fixes[0].starts_with("Bound the queue it fills"), "{:?}", f.advice.fixes);
        let leak = with(30 * MIB);
        let f = about(&leak, "ingest").unwrap();
        assert_eq!(evidence(f, "kept by its calls and freed since"), 0.0);
        assert!(!f.summary.contains("backlog"), "{}", f.summary);
        assert!(f.advice.fixes[0].starts_with("Bound caches and maps"), "{:?}", f.advice.fixes);
        // A run too short for a trend: found by its own calls, the same
        // words for what its consumer freed.
        let short = detect(
            Class::LeakSuspect,
            dump(
                100 * MS,
                &[Span::new("ingest", &[(MS, 200)])
                    .alloc(4 * MIB, 200, 4 * MIB as i64, 200)
                    .live(vec![0, 3 * MIB])],
            ),
        );
        let f = about(&short, "ingest").unwrap();
        assert!(f.summary.contains("kept by its own calls"), "{}", f.summary);
        assert!(f.summary.contains("; 25.0% of what its calls kept was freed since"), "{}", f.summary);
        assert!(f.advice.fixes[0].starts_with("Bound the queue it fills"), "{:?}", f.advice.fixes);
    }
}
