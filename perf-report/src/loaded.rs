//! The hand-off from loading to analysis: a dump whose histograms were
//! checked, with what the analysis needs of each busy-time histogram read
//! while checking it, so that nothing is decoded twice and no stage reaches
//! into another through a global.

use std::ops::Deref;
use std::ptr;
use std::sync::Arc;

use perf_layer::dump::{Dump, DumpReadError, HistogramDump};

use crate::{par, stats};

/// What the analysis takes from a callsite's busy-time histogram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BusySummary {
    /// p50, p90, p99, p99.9 and max.
    pub(crate) quantiles: [u64; 5],
    /// The time calls above p90 spent beyond it.
    pub(crate) tail_excess: f64,
    /// The same of the per-span preempted time, when the spans were timed
    /// on the CPU: the preemption the slowest spans had beyond the usual.
    pub(crate) preempted_tail_excess: Option<f64>,
}

impl BusySummary {
    /// Everything the analysis needs from a decoded busy-time histogram, in
    /// one walk of its recorded values.
    #[cfg(test)]
    pub(crate) fn of(h: &hdrhistogram::Histogram<u64>) -> Self {
        Self::of_recorded(
            &h.iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect::<Vec<_>>(),
        )
    }

    /// `of` (a test helper) from the histogram's recorded buckets,
    /// `(value_iterated_to, count)` in order, as
    /// `HistogramDump::recorded_buckets` reads them without building the
    /// histogram. Its maximum is the last bucket's value, as `max()` is.
    pub(crate) fn of_recorded(recorded: &[(u64, u64)]) -> Self {
        let Some(&(max, _)) = recorded.last() else {
            return Self {
                quantiles: [0; 5],
                // The empty sum, as `stats::tail_excess` gives it (-0.0).
                tail_excess: stats::tail_excess_recorded(&[], 0),
                preempted_tail_excess: None,
            };
        };
        // `Histogram::value_at_quantile` over the recorded buckets only (the
        // running count does not move at empty ones): the first bucket whose
        // running count reaches ceil(q x total), at least 1. The counts add
        // up without overflow: decoding refuses histograms whose do not.
        let total = recorded
            .iter()
            .fold(0u64, |total, &(_, count)| total.saturating_add(count));
        let at = |quantile: f64| {
            let wanted = ((quantile * total as f64).ceil() as u64).max(1);
            let mut running = 0u64;
            for &(value, count) in recorded {
                running = running.saturating_add(count);
                if running >= wanted {
                    return value;
                }
            }
            0
        };
        let p90 = at(0.9);
        Self {
            quantiles: [at(0.5), p90, at(0.99), at(0.999), max],
            tail_excess: stats::tail_excess_recorded(recorded, p90),
            preempted_tail_excess: None,
        }
    }

    /// With the tail excess of a decoded preempted-time histogram.
    fn with_preempted(self, recorded: Option<&[(u64, u64)]>) -> Self {
        Self {
            preempted_tail_excess: recorded.map(|r| Self::of_recorded(r).tail_excess),
            ..self
        }
    }

    /// Decoded from the encoding; the stored summary (and no tail excess)
    /// when it does not decode.
    fn of_stored(stored: &HistogramDump) -> Self {
        match stored.recorded_buckets() {
            Ok(recorded) => Self::of_recorded(&recorded),
            Err(_) => Self {
                quantiles: [stored.p50, stored.p90, stored.p99, stored.p999, stored.max],
                tail_excess: 0.0,
                preempted_tail_excess: None,
            },
        }
    }
}

/// A dump ready for analysis: the dump, and what loading learned of its
/// histograms. [`crate::load`] builds it after checking every histogram;
/// `LoadedDump::from(dump)` builds it from a dump made in memory (a
/// histogram that does not decode then falls back to its stored summary).
///
/// It dereferences to the [`Dump`].
///
/// ```
/// use perf_layer::dump::Dump;
/// let loaded = perf_report::LoadedDump::from(Dump::empty("demo"));
/// assert_eq!(loaded.run.program, "demo");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedDump {
    /// Shared, so that a clone of the loaded dump does not copy it.
    dump: Arc<Dump>,
    /// One per callsite, in the dump's order.
    busy: Vec<BusySummary>,
    /// The callsites that were split into groups, whole.
    grouped: Vec<GroupedCallsite>,
}

/// A callsite the dump split into groups (`group_by`), as it was whole:
/// the report shows its groups as rows, and its totals in a note.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupedCallsite {
    /// The span name.
    pub name: String,
    /// How many groups it was split into.
    pub groups: usize,
    /// The fields it was grouped by.
    pub fields: Vec<String>,
    /// All its calls.
    pub calls: u64,
    /// Busy time: median and 99th percentile of all its calls, ns.
    pub busy_p50_ns: u64,
    pub busy_p99_ns: u64,
    /// All its self time, ns.
    pub self_ns: u64,
    /// Its live heap, one for all its groups. `None` without the live
    /// heap.
    pub heap: Option<GroupedHeap>,
}

/// A grouped callsite's live heap, which allocations tag by callsite, not
/// group: shown on one group's row ([`crate::groups::expand`]).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupedHeap {
    /// Bytes live at the end.
    pub live_bytes: u64,
    /// The label of the group it is shown on.
    pub shown_on: String,
    /// That group's share of the bytes the callsite allocated in its own
    /// time.
    pub alloc_share: f64,
}

impl GroupedCallsite {
    /// The grouped callsites of `dump`, before it is expanded.
    fn of(dump: &Dump) -> Vec<Self> {
        dump.callsites
            .iter()
            .filter(|c| !c.groups.is_empty())
            .map(|c| {
                let mut fields: Vec<String> = Vec::new();
                for g in &c.groups {
                    for f in &g.fields {
                        if !fields.contains(&f.field) {
                            fields.push(f.field.clone());
                        }
                    }
                }
                Self {
                    name: crate::sanitize::bounded(&c.name, crate::sanitize::MAX_NAME_CHARS)
                        .into_owned(),
                    groups: c.groups.len(),
                    fields,
                    calls: c.calls,
                    busy_p50_ns: c.busy_ns.p50,
                    busy_p99_ns: c.busy_ns.p99,
                    self_ns: c.self_ns.sum,
                    heap: c.heap.as_ref().map(|h| {
                        let (at, alloc_share) = crate::groups::heap_group(&c.groups);
                        GroupedHeap {
                            live_bytes: h.live_bytes,
                            shown_on: crate::groups::shown_label(&c.groups[at]),
                            alloc_share,
                        }
                    }),
                }
            })
            .collect()
    }
}

impl LoadedDump {
    /// Checks every histogram of `dump` as [`Dump::validate_histograms`]
    /// does (the same error, for the first broken one in callsite order),
    /// on every core, keeping what the analysis needs of the busy-time ones.
    /// Grouped callsites are first replaced by their groups
    /// ([`crate::groups::expand`]): a row per route. Names longer than
    /// [`crate::sanitize::MAX_NAME_CHARS`] are cut (a hostile dump's
    /// megabyte name is not shown whole in every page).
    ///
    /// # Errors
    /// [`DumpReadError::Histogram`] naming the callsite.
    pub fn validated(dump: Dump) -> Result<Self, DumpReadError> {
        let grouped = GroupedCallsite::of(&dump);
        let mut dump = crate::groups::expand(dump);
        crate::sanitize::bound_names(&mut dump);
        let checked = par::map(&dump.callsites, |cs| {
            // Every histogram, in the order `Dump::validate_histograms`
            // reports errors; the busy-time and preempted ones read while
            // checked. None is built: `check` and `recorded_buckets` walk
            // the encoding.
            let preempted = cs.cpu.as_ref().map(|c| &c.preempted_ns);
            let (mut busy, mut preempted_read) = (Vec::new(), None);
            for h in cs.histograms() {
                if ptr::eq(h, &cs.busy_ns) {
                    busy = h.recorded_buckets()?;
                } else if preempted.is_some_and(|p| ptr::eq(h, p)) {
                    preempted_read = Some(h.recorded_buckets()?);
                } else {
                    h.check()?;
                }
            }
            Ok(BusySummary::of_recorded(&busy).with_preempted(preempted_read.as_deref()))
        });
        let mut busy = Vec::with_capacity(checked.len());
        for (cs, checked) in dump.callsites.iter().zip(checked) {
            match checked {
                Ok(summary) => busy.push(summary),
                Err(source) => {
                    return Err(DumpReadError::Histogram {
                        callsite: cs.name.clone(),
                        source,
                    });
                }
            }
        }
        Ok(Self {
            dump: Arc::new(dump),
            busy,
            grouped,
        })
    }

    /// The dump.
    pub fn dump(&self) -> &Dump {
        &self.dump
    }

    /// The dump, without what loading learned of it.
    pub fn into_dump(self) -> Dump {
        // A copy only when a clone still shares it.
        Arc::try_unwrap(self.dump).unwrap_or_else(|shared| (*shared).clone())
    }

    pub(crate) fn busy_summaries(&self) -> &[BusySummary] {
        &self.busy
    }

    /// The callsites the dump split into groups, as they were whole (the
    /// dump itself lists their groups as callsites).
    pub fn grouped(&self) -> &[GroupedCallsite] {
        &self.grouped
    }
}

impl From<Dump> for LoadedDump {
    fn from(dump: Dump) -> Self {
        let grouped = GroupedCallsite::of(&dump);
        let mut dump = crate::groups::expand(dump);
        crate::sanitize::bound_names(&mut dump);
        let busy = par::map(&dump.callsites, |cs| {
            let preempted = cs
                .cpu
                .as_ref()
                .and_then(|c| c.preempted_ns.recorded_buckets().ok());
            BusySummary::of_stored(&cs.busy_ns).with_preempted(preempted.as_deref())
        });
        Self {
            dump: Arc::new(dump),
            busy,
            grouped,
        }
    }
}

impl Deref for LoadedDump {
    type Target = Dump;

    fn deref(&self) -> &Dump {
        &self.dump
    }
}

#[cfg(test)]
mod tests {
    use hdrhistogram::Histogram;

    use super::*;

    #[test]
    fn busy_summary_matches_the_histogram_functions() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for values in [0usize, 1, 2, 3, 10, 999, 5_000] {
            let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 2).unwrap();
            for _ in 0..values {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                h.record((1 + seed % 1_000) << (seed % 30)).unwrap();
            }
            let s = BusySummary::of(&h);
            let q = |quantile| {
                if h.is_empty() {
                    0
                } else {
                    h.value_at_quantile(quantile)
                }
            };
            let max = if h.is_empty() { 0 } else { h.max() };
            assert_eq!(s.quantiles, [q(0.5), q(0.9), q(0.99), q(0.999), max]);
            assert_eq!(
                s.tail_excess.to_bits(),
                stats::tail_excess(&h, q(0.9)).to_bits()
            );
        }
    }
}
