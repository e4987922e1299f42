//! Leak suspect: a callsite whose spans keep memory across calls, or,
//! where no span holds it, a process RSS that keeps growing.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::{Class, Detector, Info};
use crate::analyze::advice::{Advice, Effort, lines};
use crate::analyze::context::Context;
use crate::analyze::finding::{Draft, Evidence, Finding, Resource};
use crate::stats::{self, LinearFit};
use crate::units::{self, Unit};

/// When a callsite or the process is a leak suspect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Settings {
    /// Callsite: at least this share of its calls closed holding more than
    /// they freed... (default 0.5)
    pub min_retaining_ratio: f64,
    /// ...and it kept at least this many bytes in total (1 MiB)...
    pub min_net_bytes: u64,
    /// ...and every ancestor (by call edges) still holds at least this share
    /// of it; otherwise a caller freed it: a hand-off, not a leak (0.5).
    pub min_ancestor_hold: f64,
    /// RSS trend: at least this many timeline samples for a fit (8)...
    pub min_samples: usize,
    /// ...a least-squares fit explaining at least this much of the RSS
    /// variance (R², 0.8)...
    pub min_r2: f64,
    /// ...a fitted growth over the timeline of at least this share of the
    /// first sample's RSS (0.10)...
    pub min_growth_share: f64,
    /// ...and of at least this many bytes (8 MiB).
    pub min_growth_bytes: u64,
    /// The share of the retained memory a fix returns (0.9).
    pub recoverable: f64,
    /// Callsite confidence is the retaining-call ratio, times this when no
    /// significant RSS trend backs it (0.7).
    pub confidence_without_trend: f64,
    /// Process confidence is R² x `samples / (samples + this)` (4).
    pub half_confidence_samples: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            min_retaining_ratio: 0.5,
            min_net_bytes: 1024 * 1024,
            min_ancestor_hold: 0.5,
            min_samples: 8,
            min_r2: 0.8,
            min_growth_share: 0.10,
            min_growth_bytes: 8 * 1024 * 1024,
            recoverable: 0.9,
            confidence_without_trend: 0.7,
            half_confidence_samples: 4.0,
        }
    }
}

pub(crate) struct LeakSuspect;

static INFO: Info = Info {
    id: "leak_suspect",
    title: "leak suspect",
    innermost: true,
    supersedes: &[],
};

fn trend_evidence(fit: &LinearFit, min_r2: f64) -> Vec<Evidence> {
    vec![
        Evidence::new("RSS slope", fit.slope, Unit::BytesPerSec, None),
        Evidence::new("RSS fit R²", fit.r2, Unit::Number, Some(min_r2)),
        Evidence::new("timeline samples", fit.n as f64, Unit::Count, None),
    ]
}

impl Detector for LeakSuspect {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn detect(&self, cx: &Context<'_>, found: &mut Vec<Finding>) {
        let s = &cx.config.classes.leak_suspect;
        let process = &cx.process;
        // A significant RSS trend, shared by callsite and process findings.
        let trend = process.rss_trend.filter(|fit| {
            let growth = fit.slope * cx.timeline_span_s();
            fit.n >= s.min_samples
                && fit.r2 >= s.min_r2
                && fit.slope > 0.0
                && growth >= s.min_growth_bytes as f64
                && growth >= s.min_growth_share * process.rss_first_bytes as f64
        });
        let net_of: HashMap<u32, i64> = cx
            .callsites()
            .filter_map(|(_, cs, row)| row.alloc.as_ref().map(|a| (cs.id, a.net_retained_bytes)))
            .collect();
        // Memory a span keeps is a hand-off, not a leak, when a caller frees
        // it: every ancestor must still hold enough of it.
        let kept_by_ancestors = |id: u32, net: i64| {
            let mut seen = HashSet::from([id]);
            let mut todo: Vec<u32> = cx.parents.get(&id).cloned().unwrap_or_default();
            while let Some(p) = todo.pop() {
                if !seen.insert(p) {
                    continue;
                }
                if let Some(&pn) = net_of.get(&p) {
                    if (pn as f64) < s.min_ancestor_hold * net as f64 {
                        return false;
                    }
                }
                todo.extend(cx.parents.get(&p).into_iter().flatten().copied());
            }
            true
        };
        let mut any = false;
        for (_, cs, row) in cx.callsites() {
            let Some(a) = &row.alloc else { continue };
            let calls_f = cs.calls as f64;
            let retaining = stats::share(a.calls_retaining as f64, calls_f);
            if a.net_retained_bytes <= 0
                || (a.net_retained_bytes as u64) < s.min_net_bytes
                || retaining < s.min_retaining_ratio
                || !kept_by_ancestors(cs.id, a.net_retained_bytes)
            {
                continue;
            }
            any = true;
            let base = if process.rss_peak_bytes > 0 {
                process.rss_peak_bytes as f64
            } else {
                cx.totals.self_alloc_bytes.unwrap_or(0) as f64
            };
            let per_call = stats::ratio(a.net_retained_bytes as f64, calls_f);
            let mut evidence = vec![
                Evidence::new(
                    "net retained",
                    a.net_retained_bytes as f64,
                    Unit::Bytes,
                    Some(s.min_net_bytes as f64),
                ),
                Evidence::new(
                    "calls retaining",
                    retaining,
                    Unit::Share,
                    Some(s.min_retaining_ratio),
                ),
                Evidence::new("retained per call", per_call, Unit::Bytes, None),
            ];
            if let Some(fit) = &trend {
                evidence.extend(trend_evidence(fit, s.min_r2));
            }
            found.push(cx.score(Draft {
                class: Class::LeakSuspect,
                callsite: Some((cs.id, row.location.clone())),
                resource: Resource::Memory,
                cost_share: stats::share(a.net_retained_bytes as f64, base),
                recoverable: s.recoverable,
                confidence: retaining
                    * if trend.is_some() {
                        1.0
                    } else {
                        s.confidence_without_trend
                    },
                summary: format!(
                    "kept {} ({} per call) and {} of its calls closed holding memory{}",
                    units::bytes(a.net_retained_bytes as f64),
                    units::bytes(per_call),
                    units::pct(retaining),
                    match &trend {
                        Some(fit) => format!(
                            "; process RSS grows {}/s (R² {:.2})",
                            units::bytes(fit.slope),
                            fit.r2
                        ),
                        None => String::new(),
                    }
                ),
                evidence,
            }));
        }
        if let (Some(fit), false) = (&trend, any) {
            let growth = fit.slope * cx.timeline_span_s();
            found.push(cx.score(Draft {
                class: Class::LeakSuspect,
                callsite: None,
                resource: Resource::Memory,
                cost_share: stats::share(growth, process.rss_peak_bytes as f64),
                recoverable: s.recoverable,
                confidence: fit.r2
                    * stats::sample_confidence(fit.n as u64, s.half_confidence_samples),
                summary: format!(
                    "process RSS grows {}/s over the run (R² {:.2}, {} samples) and no span holds it",
                    units::bytes(fit.slope),
                    fit.r2,
                    fit.n
                ),
                evidence: trend_evidence(fit, s.min_r2),
            }));
        }
    }

    fn advice(&self, f: &Finding) -> Advice {
        let name = f.subject().in_prose();
        Advice {
            statement: format!(
                "releasing {} of what {name} keeps ({} of peak memory) returns {} of peak memory and stops the growth",
                units::pct(f.recoverable),
                units::pct(f.cost_share),
                units::pct(f.expected_gain())
            ),
            fixes: lines(&[
                "Bound caches and maps that grow with input: an LRU (`lru`, `moka`) or eviction by age or size",
                "Break `Arc` reference cycles: hold back-references (parents, observers, callbacks) as `Weak`",
                "Drain or bound what is never emptied: unbounded `mpsc` queues, spawned tasks that never finish, `Box::leak`/`mem::forget`, `static` collections",
            ]),
            prerequisites: lines(&[
                "Run long enough past warm-up to see the trend, so a cache filling to its bound is not mistaken for a leak",
            ]),
            check: if f.location.is_some() {
                format!(
                    "{name}'s net retained bytes must fall to near zero and the RSS slope must flatten"
                )
            } else {
                "the RSS slope must flatten (a fit with low slope or low R²)".to_owned()
            },
            complexity: Effort::Medium,
            risk: Effort::Medium,
        }
    }
}
