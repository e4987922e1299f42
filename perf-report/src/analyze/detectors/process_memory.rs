//! Process memory: RSS that spiked far above its usual level, above the
//! RSS alert threshold, or into a memory pressure level (a fraction of the
//! process's real limit: its container's, else the machine's).
//!
//! With pressure figures the finding is worded against the limit ("peak
//! 81% of the container's 512 MiB limit, 12 s in WARNING"): a bare RSS
//! number says nothing about how close the process came to being killed.
//! The cost is then at least the share of peak memory above the warning
//! fraction: what must go for the process to stay NORMAL.
//!
//! With the counting allocator's heap timeline the finding says what the
//! RSS was made of: the span whose allocations held the most live bytes at
//! the peak (its first fix to shrink that), and RSS that stayed far above
//! the live heap after the heap's peak, which the allocator kept after the
//! frees (a fix to give it back). That second reading is a finding by
//! itself, spike or none: a one-off index dropped before the serving phase
//! left 96 MiB of RSS over 1 MiB live for the rest of a fresh program's
//! run.

use perf_layer::dump::{AlertKind, MemoryPressure, PressureLevel};
use serde::{Deserialize, Serialize};

use super::{Class, Detector, Info};
use crate::analyze::advice::{Advice, Effort, lines};
use crate::analyze::context::Context;
use crate::analyze::finding::{Draft, Evidence, Finding, Resource};
use crate::stats;
use crate::units::{self, Unit};

/// When the process's memory spikes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Settings {
    /// Peak RSS at least this many times the median... (default 2)
    pub spike_over_median: f64,
    /// ...and at least this many bytes above it (64 MiB).
    pub spike_min_bytes: u64,
    /// The share of the excess memory a fix trims (0.25).
    pub recoverable: f64,
    /// Confidence is `samples / (samples + this)` (4)...
    pub half_confidence_samples: f64,
    /// ...or this with RSS alerts (0.9).
    pub confidence_with_alerts: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            spike_over_median: 2.0,
            spike_min_bytes: 64 * 1024 * 1024,
            recoverable: 0.25,
            half_confidence_samples: 4.0,
            confidence_with_alerts: 0.9,
        }
    }
}

pub(crate) struct ProcessMemory;

static INFO: Info = Info {
    title: "process memory",
    innermost: false,
    supersedes: &[],
};

impl Detector for ProcessMemory {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn detect(&self, cx: &Context<'_>, found: &mut Vec<Finding>) {
        let s = &cx.config.classes.process_memory;
        let p = &cx.process;
        let spike = p.rss_peak_bytes.saturating_sub(p.rss_median_bytes);
        let spiking = p.samples >= 2
            && p.rss_peak_bytes as f64 >= s.spike_over_median * p.rss_median_bytes as f64
            && spike >= s.spike_min_bytes;
        let pressure = cx
            .dump
            .memory_pressure
            .as_ref()
            .filter(|m| m.peak_level > PressureLevel::Normal && m.limit_bytes > 0);
        let kept = kept_after_frees(cx, s);
        if !spiking && p.rss_alerts == 0 && pressure.is_none() && kept.is_none() {
            return;
        }
        let holder = spiking.then(|| holder_at_peak(cx, spike as f64)).flatten();
        let confidence = if p.rss_alerts > 0 || pressure.is_some() {
            s.confidence_with_alerts
        } else {
            stats::sample_confidence(p.samples as u64, s.half_confidence_samples)
        };
        let rss_alerts = || {
            cx.dump
                .alerts
                .iter()
                .filter(|a| a.kind == AlertKind::Rss)
        };
        // The part of peak memory above the usual level, or above the
        // threshold the user set for alerts, whichever is larger.
        let peak = rss_alerts()
            .filter(|a| a.value.is_finite())
            .map(|a| a.value)
            .fold(p.rss_peak_bytes as f64, f64::max);
        let over_threshold = rss_alerts()
            .filter(|a| a.threshold.is_finite())
            .map(|a| stats::share(peak - a.threshold, peak))
            .fold(0.0, f64::max);
        let peak = pressure.map_or(peak, |m| peak.max(m.peak_rss_bytes as f64));
        let over_warning = pressure.map_or(0.0, |m| {
            stats::share(peak - m.thresholds[0] * m.limit_bytes as f64, peak)
        });
        let mut evidence = vec![
            Evidence::new("peak RSS", p.rss_peak_bytes as f64, Unit::Bytes, None),
            Evidence::new("median RSS", p.rss_median_bytes as f64, Unit::Bytes, None),
            Evidence::new(
                "peak / median",
                stats::ratio(p.rss_peak_bytes as f64, p.rss_median_bytes as f64),
                Unit::Ratio,
                Some(s.spike_over_median),
            ),
            Evidence::new("RSS alerts", p.rss_alerts as f64, Unit::Count, None),
        ];
        if let Some(m) = pressure {
            evidence.extend([
                Evidence::new("memory limit", m.limit_bytes as f64, Unit::Bytes, None),
                Evidence::new(
                    "peak share of the limit",
                    stats::share(peak, m.limit_bytes as f64),
                    Unit::Share,
                    Some(m.thresholds[0]),
                ),
                Evidence::new(
                    "time at WARNING or above",
                    m.time_in_level_ms[1..].iter().sum::<u64>() as f64 * 1e6,
                    Unit::Ns,
                    None,
                ),
            ]);
        }
        let draft = Draft {
            class: Class::ProcessMemory,
            callsite: None,
            resource: Resource::Memory,
            cost_share: stats::share(spike as f64, peak)
                .max(over_threshold)
                .max(over_warning)
                .max(kept.as_ref().map_or(0.0, |k| stats::share(k.kept(), peak))),
            recoverable: s.recoverable,
            confidence,
            summary: match (pressure, &kept) {
                (Some(m), _) => pressure_summary(m, peak),
                // Kept memory alone: no peak to speak of.
                (None, Some(k)) if !spiking && p.rss_alerts == 0 => {
                    k.clause().trim_start_matches("; ").to_owned()
                }
                (None, _) => format!(
                "RSS peaked at {} against a median of {}{}{}{}",
                units::bytes(peak),
                units::bytes(p.rss_median_bytes as f64),
                match cx.dump.config.rss_alert_bytes {
                    Some(limit) if p.rss_alerts > 0 => format!(
                        "; {} RSS alerts above the {} threshold",
                        p.rss_alerts,
                        units::bytes(limit as f64)
                    ),
                    _ => String::new(),
                },
                holder.as_ref().map_or(String::new(), Holder::clause),
                kept.as_ref().map_or(String::new(), Kept::clause),
            ),
            },
            evidence,
        };
        found.push(cx.score(draft, |f| {
            let mut advice = advice(f, pressure.is_some());
            if let Some(k) = &kept {
                advice.fixes.insert(0, k.fix());
                if !spiking && pressure.is_none() {
                    advice.check =
                        "RSS after the live heap's peak must come down towards the live heap"
                            .to_owned();
                }
            }
            if let Some(h) = &holder {
                advice.fixes.insert(0, h.fix());
                advice.prerequisites = vec![format!(
                    "Keep perf-layer's counting allocator installed in the re-run, so what `{}` holds at the peak can be compared",
                    h.label
                )];
            }
            advice
        }));
    }

}

/// The span whose allocations held the most live bytes at the RSS peak,
/// when they were at least this share of the spike above the median.
const HOLDER_SHARE: f64 = 0.25;

/// The span whose allocations held the most of the heap at the RSS peak
/// ([`holder_at_peak`]).
struct Holder {
    label: String,
    live: f64,
}

impl Holder {
    fn clause(&self) -> String {
        format!(
            "; at the peak, `{}`'s allocations held {} live",
            self.label,
            units::bytes(self.live)
        )
    }

    fn fix(&self) -> String {
        format!(
            "Shrink what `{}` holds at the peak ({} live): build it in pieces or stream it, keep a compact form (borrowed or interned strings, `Box<str>`, a sorted `Vec` for a map), or drop it as soon as it is used",
            self.label,
            units::bytes(self.live)
        )
    }
}

/// The span whose allocations held the most live bytes at the sample of
/// peak RSS (the heap timeline's point at or before it), when those are at
/// least [`HOLDER_SHARE`] of `spike` (peak over median RSS). A fresh
/// program's one-off `build_index` held 170 MiB of a 227 MiB peak.
fn holder_at_peak(cx: &Context<'_>, spike: f64) -> Option<Holder> {
    let samples = &cx.dump.timeline.samples;
    let peak = samples
        .iter()
        .fold(None::<&perf_layer::dump::ProcessSample>, |best, x| match best {
            Some(b) if b.rss_bytes >= x.rss_bytes => Some(b),
            _ => Some(x),
        })?;
    let heap = cx.dump.heap.as_ref()?;
    let at = heap.timeline_t_ms.iter().rposition(|&t| t <= peak.t_ms)?;
    cx.callsites()
        .filter_map(|(_, cs, row)| {
            let live = *cs.heap.as_ref()?.live_timeline_bytes.get(at)? as f64;
            Some(Holder {
                label: row.location.label.clone(),
                live,
            })
        })
        .max_by(|a, b| a.live.total_cmp(&b.live))
        .filter(|h| h.live >= HOLDER_SHARE * spike)
}

/// RSS kept after frees is at most this many times the live heap's peak
/// (2-million small strings: 183 MiB live, 227 MiB of RSS).
const KEPT_OF_PEAK: f64 = 2.0;

/// RSS the heap no longer used after its live bytes fell from their peak
/// ([`kept_after_frees`]): the medians over the samples after the peak.
struct Kept {
    rss: f64,
    live: f64,
}

impl Kept {
    fn kept(&self) -> f64 {
        self.rss - self.live
    }

    fn clause(&self) -> String {
        format!(
            "; after the live heap fell from its peak, RSS stayed near {} where {} was live: the allocator kept {} of freed memory",
            units::bytes(self.rss),
            units::bytes(self.live),
            units::bytes(self.kept())
        )
    }

    fn fix(&self) -> String {
        format!(
            "Give freed memory back after a peak ({} kept): `libc::malloc_trim(0)` once the peak's data is dropped (glibc), or an allocator that returns it (jemalloc with `background_thread`, mimalloc); fewer, larger allocations at the peak leave less behind",
            units::bytes(self.kept())
        )
    }
}

/// Whether RSS stayed well above the live heap after the heap's peak: over
/// the RSS samples after it (at least three), the median RSS less the
/// median live heap (each sample's heap point at or before it) is at
/// least `spike_min_bytes` and half the RSS, and at most [`KEPT_OF_PEAK`]
/// times the heap's peak (what freed heap could leave behind, with the
/// allocator's own overhead; more is other mappings). A fresh program
/// that dropped a 2-million-entry index: RSS 95.9 MiB for the rest of the
/// run with 1.6 MiB live; `malloc_trim(0)` after the drop, 4.6 MiB.
fn kept_after_frees(cx: &Context<'_>, s: &Settings) -> Option<Kept> {
    let heap = cx.dump.heap.as_ref()?;
    let (at_peak, &peak_live) = heap
        .timeline_live_bytes
        .iter()
        .enumerate()
        .max_by_key(|&(i, v)| (*v, std::cmp::Reverse(i)))?;
    let peak_t = *heap.timeline_t_ms.get(at_peak)?;
    let (rss, live): (Vec<f64>, Vec<f64>) = cx
        .dump
        .timeline
        .samples
        .iter()
        .filter(|x| x.t_ms > peak_t)
        .filter_map(|x| {
            let at = heap.timeline_t_ms.iter().rposition(|&t| t <= x.t_ms)?;
            Some((x.rss_bytes as f64, *heap.timeline_live_bytes.get(at)? as f64))
        })
        .unzip();
    if rss.len() < 3 {
        return None;
    }
    let kept = Kept {
        rss: stats::median(&rss),
        live: stats::median(&live),
    };
    (kept.kept() >= s.spike_min_bytes as f64
        && kept.kept() >= 0.5 * kept.rss
        && kept.kept() <= KEPT_OF_PEAK * peak_live as f64)
        .then_some(kept)
}

/// The plan step's advice for one of its findings, worded against the
/// memory limit where the dump has one (`against_limit`).
fn advice(f: &Finding, against_limit: bool) -> Advice {
    Advice {
        statement: format!(
            "trimming {} of the excess memory ({} of peak memory above {}) returns {} of peak memory",
            units::pct(f.recoverable),
            units::pct(f.cost_share),
            if against_limit {
                "the usual level, the alert threshold or the warning fraction of the limit"
            } else {
                "the usual level or the alert threshold"
            },
            units::pct(f.expected_gain())
        ),
        fixes: lines(&[
            "Stream instead of loading whole inputs (`BufReader`, iterators, `serde_json::Deserializer::from_reader`)",
            "Limit the concurrency of memory-heavy work with a `tokio::sync::Semaphore` so peaks do not stack",
            "Drop large buffers as soon as they are done and release capacity after spikes (`shrink_to_fit`)",
            "React to pressure before the kernel does: register `PerfLayer::builder().on_memory_pressure(..)` to shed caches at WARNING and refuse new work at EMERGENCY",
        ]),
        prerequisites: lines(&[
            "Enable the sampler with an RSS alert so the spike's time can be matched to the spans running then",
        ]),
        check: if against_limit {
            "peak RSS must stay below the warning fraction of the limit: the dump's memory_pressure.peak_level normal".to_owned()
        } else {
            "peak RSS must come down towards the median".to_owned()
        },
        complexity: Effort::Medium,
        risk: Effort::Medium,
    }
}

/// "peak 81% of the container's 512 MiB limit, 12 s in WARNING, 2 s in
/// EMERGENCY": the peak against the limit and the time at each level above
/// NORMAL that the run spent any time in.
fn pressure_summary(m: &MemoryPressure, peak: f64) -> String {
    let mut s = format!(
        "peak {} of {} {} limit",
        units::pct(stats::share(peak, m.limit_bytes as f64)),
        m.limit_source.describe(),
        units::bytes(m.limit_bytes as f64)
    );
    let mut any = false;
    for (level, &ms) in PressureLevel::ALL.iter().zip(&m.time_in_level_ms).skip(1) {
        if ms > 0 {
            s.push_str(&format!(", {} in {level}", units::ns(ms as f64 * 1e6)));
            any = true;
        }
    }
    if !any {
        s.push_str(&format!(", reached {}", m.peak_level));
    }
    s
}

#[cfg(test)]
mod tests {
    use crate::analyze::Class;
    use crate::analyze::test_dump::{MIB, MS, Span, assert_near, detect, dump, evidence, timeline};

    /// Ten samples at 100 MiB but one at `peak` MiB.
    fn run(peak: u64) -> perf_layer::dump::Dump {
        let mut d = dump(10_000_000_000, &[]);
        let samples: Vec<(u64, f64)> = (0..10)
            .map(|i| (if i == 6 { peak } else { 100 } * MIB, 10.0))
            .collect();
        timeline(&mut d, &samples);
        d
    }

    /// A run whose `build_index` holds `live` MiB at each second, with RSS
    /// `rss` MiB at each.
    fn phases(live: &[u64], rss: &[u64]) -> perf_layer::dump::Dump {
        let series = |v: &[u64]| v.iter().map(|m| m * MIB).collect::<Vec<_>>();
        let mut d = dump(
            10_000_000_000,
            &[
                Span::new("build_index", &[(900 * MS, 1)]).live(series(live)),
                Span::new("handle", &[(40_000, 100_000)]),
            ],
        );
        let heap = d.heap.as_mut().unwrap();
        heap.timeline_t_ms = (0..live.len() as u64).map(|i| i * 1_000).collect();
        let samples: Vec<(u64, f64)> = rss.iter().map(|&m| (m * MIB, 150.0)).collect();
        timeline(&mut d, &samples);
        d
    }

    /// A phase that builds an index (170 MiB live at the 227 MiB peak) and
    /// drops it: the spike names it, and RSS kept at 96 MiB with nothing
    /// live is the allocator's, said with its fix. Trimmed to 5 MiB after
    /// the drop, only the index is said; kept at 220 MiB, no spike over
    /// the median but the kept memory alone is a finding; 500 MiB of RSS
    /// beside a heap that never held over 10 MiB is other mappings, none.
    #[test]
    fn names_the_span_holding_the_peak_and_the_memory_kept_after_it() {
        let live = [0, 100, 170, 0, 0, 0, 0, 0, 0, 0];
        let found = detect(Class::ProcessMemory, phases(&live, &[20, 120, 227, 96, 96, 96, 96, 96, 96, 96]));
        let f = &found[0];
        assert!(f.summary.contains("; at the peak, `build_index`'s allocations held 170 MiB live"), "{}", f.summary);
        assert!(f.summary.contains("RSS stayed near 96.0 MiB where 0 B was live: the allocator kept 96.0 MiB of freed memory"), "{}", f.summary);
        assert!(f.advice.fixes[0].starts_with("Shrink what `build_index` holds at the peak"));
        assert!(f.advice.fixes[1].contains("malloc_trim(0)"));

        let found = detect(Class::ProcessMemory, phases(&live, &[20, 120, 227, 5, 5, 5, 5, 5, 5, 5]));
        let f = &found[0];
        assert!(f.summary.contains("`build_index`'s allocations held"), "{}", f.summary);
        assert!(!f.summary.contains("kept"), "{}", f.summary);

        let found = detect(Class::ProcessMemory, phases(&live, &[20, 120, 227, 220, 220, 220, 220, 220, 220, 220]));
        let f = &found[0];
        assert!(f.summary.starts_with("after the live heap fell from its peak, RSS stayed near 220 MiB where 0 B was live: the allocator kept 220 MiB"), "{}", f.summary);
        assert_near(f.cost_share, 220.0 / 227.0, 1e-9);
        assert!(f.advice.check.contains("towards the live heap"), "{}", f.advice.check);

        let small = [0, 5, 10, 0, 0, 0, 0, 0, 0, 0];
        assert!(detect(Class::ProcessMemory, phases(&small, &[500; 10])).is_empty());
    }

    /// A 300 MiB peak over a 100 MiB median is a spike (3x, 200 MiB above);
    /// 199 MiB is 1.99x, just under twice.
    #[test]
    fn finds_a_spike_over_twice_the_median_and_not_one_just_under() {
        let found = detect(Class::ProcessMemory, run(300));
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        assert_near(evidence(f, "peak / median"), 3.0, 1e-9);
        // The 200 MiB above the median, of the 300 MiB peak.
        assert_near(f.cost_share, 2.0 / 3.0, 1e-9);
        assert_near(f.confidence, 10.0 / 14.0, 1e-9);
        // No memory limit in the dump: the advice says the median, not it.
        assert_eq!(f.advice.check, "peak RSS must come down towards the median");

        assert!(detect(Class::ProcessMemory, run(199)).is_empty());
    }
}
