//! Hot spot: a callsite holding a large share of all self time.

use serde::{Deserialize, Serialize};

use super::{Class, Detector, Info};
use crate::analyze::advice::{Advice, Effort, lines, speedup_phrase};
use crate::analyze::context::Context;
use crate::analyze::finding::{Draft, Evidence, Finding, Resource};
use crate::stats;
use crate::units::{self, Unit};

/// When a callsite is a hot spot. Shares are of the process's CPU time (of
/// all self time in spans when the dump does not record it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Settings {
    /// The callsite's self time is at least this share of the process's CPU
    /// time (default 0.10).
    pub min_share: f64,
    /// The share of its self time a fix gives back (0.5: halving it).
    pub recoverable: f64,
    /// How sure the finding is before the instrumentation discount (0.95):
    /// the confidence is this times one minus the share of the callsite's
    /// self time that is the layer's own cost (`overhead.per_span_ns` x
    /// calls).
    pub confidence: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            min_share: 0.10,
            recoverable: 0.5,
            confidence: 0.95,
        }
    }
}

pub(crate) struct HotSpot;

static INFO: Info = Info {
    id: "hot_spot",
    title: "hot spot",
    innermost: false,
    supersedes: &[],
};

impl Detector for HotSpot {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn detect(&self, cx: &Context<'_>, found: &mut Vec<Finding>) {
        let s = &cx.config.classes.hot_spot;
        let share_of = cx.share_of(Resource::Time);
        for (_, cs, row) in cx.callsites() {
            let share = cx.time_share(cs.self_ns.sum as f64);
            if share < s.min_share {
                continue;
            }
            let calls_f = cs.calls as f64;
            // Instrumentation inflates the measured self time; discount by it.
            let instr = stats::share(cx.per_span_ns * calls_f, cs.self_ns.sum as f64);
            found.push(cx.score(Draft {
                class: Class::HotSpot,
                callsite: Some((cs.id, row.location.clone())),
                resource: Resource::Time,
                cost_share: share,
                recoverable: s.recoverable,
                confidence: s.confidence * (1.0 - instr),
                summary: format!(
                    "{} of {share_of} ({} of self time over {} calls)",
                    units::pct(share),
                    units::ns(cs.self_ns.sum as f64),
                    units::count(calls_f)
                ),
                evidence: vec![
                    Evidence::new(
                        &format!("share of {share_of}"),
                        share,
                        Unit::Share,
                        Some(s.min_share),
                    ),
                    Evidence::new("self time", cs.self_ns.sum as f64, Unit::Ns, None),
                    Evidence::new("calls", calls_f, Unit::Count, None),
                ],
            }));
        }
    }

    fn advice(&self, f: &Finding) -> Advice {
        let name = f.subject().in_prose();
        let of = &f.share_of;
        let cost = units::pct(f.cost_share);
        let gain = f.expected_gain();
        Advice {
            statement: format!(
                "{} {name}'s self time ({cost} of {of}) saves {} of {of}",
                speedup_phrase(f.recoverable),
                units::pct(gain)
            ),
            fixes: lines(&[
                "Memoize repeated work: cache results by input (a `HashMap`, or `moka`/`cached`) when it is called with the same arguments",
                "Use a better algorithm or data structure: replace linear searches (`Vec::contains`, `iter().find`) with a `HashSet`/`HashMap` or a sorted `binary_search`, remove nested loops and repeated sorting",
                "Parallelise independent items with `rayon` (`par_iter`) when the work per item is independent",
                "Cut needless copies in the hot path: borrow (`&str`, `&[T]`, `Cow`) instead of `clone()`/`to_string()`",
            ]),
            prerequisites: vec![format!(
                "Add a criterion benchmark of {name} with a representative input, so the speed-up is measured rather than assumed"
            )],
            check: format!(
                "{name}'s self time must fall from {cost} of {of} towards {}",
                units::pct(f.cost_share - gain)
            ),
            complexity: Effort::Medium,
            risk: Effort::Medium,
        }
    }
}
