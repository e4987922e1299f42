//! Hot spot: a callsite holding a large share of the process's CPU time
//! while innermost. Where the layer timed the spans on the CPU, that is
//! their self time on the CPU: a span that sleeps is not a hot spot
//! (`blocked` is its class).

use serde::{Deserialize, Serialize};

use super::{Class, Detector, Info};
use crate::analyze::advice::{Advice, Effort, lines, speedup_phrase};
use crate::analyze::context::Context;
use crate::analyze::finding::{Draft, Evidence, Finding, Resource};
use crate::stats;
use crate::units::{self, Unit};

/// When a callsite is a hot spot. Its cost is its self time on the CPU
/// (where the spans were not timed on the CPU, its self time less its
/// tail's excess, which the tail latency finding has); shares are of
/// the process's CPU time (of all self time in spans when the dump does not
/// record it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Settings {
    /// The callsite's self time on the CPU is at least this share of the
    /// process's CPU time (default 0.10).
    pub min_share: f64,
    /// The share of its self time a fix gives back (0.5: halving it).
    pub recoverable: f64,
    /// How sure the finding is before the instrumentation discount (0.95):
    /// the confidence is this times one minus the share of the callsite's
    /// self time that is the layer's own cost (its cost per span, measured
    /// from its callbacks where the dump has them, else
    /// `overhead.per_span_ns`, times the calls).
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
        for (i, cs, row) in cx.callsites() {
            let on_cpu = cx.usual_cpu_ns(i);
            let share = cx.time_share(on_cpu);
            if share < s.min_share {
                continue;
            }
            let calls_f = cs.calls as f64;
            // Instrumentation inflates the measured self time; discount by it.
            let instr = stats::share(cx.per_span_ns * calls_f, on_cpu);
            let mut evidence = vec![
                Evidence::new(
                    &format!("share of {share_of}"),
                    share,
                    Unit::Share,
                    Some(s.min_share),
                ),
                Evidence::new("self time", cs.self_ns.sum as f64, Unit::Ns, None),
            ];
            let what = match &row.cpu {
                Some(c) => {
                    evidence.push(Evidence::new(
                        "self time on the CPU",
                        c.self_on_cpu_share,
                        Unit::Share,
                        None,
                    ));
                    format!(
                        "{} on the CPU, {} of its self time",
                        units::ns(on_cpu),
                        units::pct(c.self_on_cpu_share)
                    )
                }
                None if on_cpu < 0.9 * row.self_cpu_ns => format!(
                    "{} of self time beside its tail",
                    units::ns(on_cpu)
                ),
                None => format!("{} of self time", units::ns(on_cpu)),
            };
            evidence.push(Evidence::new("calls", calls_f, Unit::Count, None));
            let draft = Draft {
                class: Class::HotSpot,
                callsite: Some((cs.id, row.location.clone())),
                resource: Resource::Time,
                cost_share: share,
                recoverable: s.recoverable,
                confidence: s.confidence * (1.0 - instr),
                summary: format!(
                    "{} of {share_of} ({what} over {} calls)",
                    units::pct(share),
                    units::count(calls_f)
                ),
                evidence,
            };
            found.push(cx.score(draft, advice));
        }
    }

}

/// The plan step's advice for one of its findings.
fn advice(f: &Finding) -> Advice {
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

#[cfg(test)]
mod tests {
    use crate::analyze::Class;
    use crate::analyze::test_dump::{MS, Span, about, assert_near, detect, dump};

    /// Of 1 s of self time, `hot` has 900 ms (90%) and `warm` 99 ms, just
    /// under the 10% it takes.
    #[test]
    fn finds_the_span_with_a_tenth_of_the_time_and_not_one_just_under() {
        let found = detect(
            Class::HotSpot,
            dump(
                2_000 * MS,
                &[
                    Span::new("hot", &[(MS, 900)]),
                    Span::new("warm", &[(MS, 99)]),
                    Span::new("cold", &[(MS, 1)]),
                ],
            ),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        let f = about(&found, "hot").unwrap();
        assert_near(f.cost_share, 0.9, 1e-9);
        assert_eq!((f.recoverable, f.confidence), (0.5, 0.95));
        // 100 x 0.9 x 0.5 x 0.95, the process's CPU time unknown (weight 1).
        assert_eq!(f.score, 42.8);
        assert_eq!(
            f.advice.statement,
            "halving `hot`'s self time (90.0% of all self time in spans) saves 45.0% of all self time in spans"
        );
    }
}
