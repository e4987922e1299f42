//! Which fields of the schema are histograms: one list per struct that
//! holds them ([`CallsiteStats::HISTOGRAMS`], [`CpuStats::HISTOGRAMS`]), read
//! by everything that walks a callsite's histograms (validation here,
//! loading and merging in perf-report), so that a histogram added to the
//! schema is added to one list, not to each of them. A test below checks
//! the lists against the serialized schema.

use std::fmt;

use super::{CallsiteStats, CpuStats, HistogramDump};

/// One histogram field of the dump struct `T`: its name in the schema, the
/// word messages use for it, and how to reach it.
pub struct HistogramField<T> {
    /// The field's name in the schema: `busy_ns`.
    pub name: &'static str,
    /// What a message calls it: `busy`.
    pub label: &'static str,
    /// The field.
    pub get: fn(&T) -> &HistogramDump,
    /// The field, to set it.
    pub get_mut: fn(&mut T) -> &mut HistogramDump,
}

impl<T> fmt::Debug for HistogramField<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HistogramField")
            .field("name", &self.name)
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl CallsiteStats {
    /// The callsite's own histograms, in schema order; its
    /// [`cpu`](Self::cpu) holds more ([`CpuStats::HISTOGRAMS`]).
    pub const HISTOGRAMS: [HistogramField<CallsiteStats>; 4] = [
        HistogramField {
            name: "wall_ns",
            label: "wall",
            get: |c| &c.wall_ns,
            get_mut: |c| &mut c.wall_ns,
        },
        HistogramField {
            name: "busy_ns",
            label: "busy",
            get: |c| &c.busy_ns,
            get_mut: |c| &mut c.busy_ns,
        },
        HistogramField {
            name: "idle_ns",
            label: "idle",
            get: |c| &c.idle_ns,
            get_mut: |c| &mut c.idle_ns,
        },
        HistogramField {
            name: "self_ns",
            label: "self",
            get: |c| &c.self_ns,
            get_mut: |c| &mut c.self_ns,
        },
    ];

    /// Every histogram the callsite has: its own, then its `cpu`'s when it
    /// was timed on the CPU, in schema order (its groups' are theirs).
    ///
    /// ```
    /// use perf_layer::dump::{CallsiteStats, Dump};
    /// # let json = include_str!("../../../fuzz/seeds/load_analyze/routes.json");
    /// let dump = Dump::from_slice(json.as_bytes()).unwrap();
    /// for cs in &dump.callsites {
    ///     let expected = if cs.cpu.is_some() { 6 } else { 4 };
    ///     assert_eq!(cs.histograms().count(), expected);
    /// }
    /// ```
    pub fn histograms(&self) -> impl Iterator<Item = &HistogramDump> {
        let cpu = self
            .cpu
            .iter()
            .flat_map(|c| CpuStats::HISTOGRAMS.iter().map(move |f| (f.get)(c)));
        Self::HISTOGRAMS
            .iter()
            .map(move |f| (f.get)(self))
            .chain(cpu)
    }
}

impl CpuStats {
    /// The histograms of a callsite's time on the CPU, in schema order.
    pub const HISTOGRAMS: [HistogramField<CpuStats>; 2] = [
        HistogramField {
            name: "on_cpu_ns",
            label: "on-CPU",
            get: |c| &c.on_cpu_ns,
            get_mut: |c| &mut c.on_cpu_ns,
        },
        HistogramField {
            name: "preempted_ns",
            label: "preempted",
            get: |c| &c.preempted_ns,
            get_mut: |c| &mut c.preempted_ns,
        },
    ];
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::dump::{EventCounts, LongSpans, SampledCpu};

    /// A callsite timed on the CPU, every histogram distinct.
    fn callsite() -> CallsiteStats {
        let hist = |v: u64| {
            let mut h = hdrhistogram::Histogram::<u64>::new(2).unwrap();
            h.record(v).unwrap();
            HistogramDump::from_histogram(&h, v, 0)
        };
        CallsiteStats {
            id: 0,
            name: "a".to_owned(),
            target: "t".to_owned(),
            module_path: None,
            file: None,
            line: None,
            level: "INFO".to_owned(),
            calls: 1,
            wall_ns: hist(1),
            busy_ns: hist(2),
            idle_ns: hist(3),
            self_ns: hist(4),
            events: EventCounts::default(),
            alloc: None,
            rss_delta: None,
            heap: None,
            cpu: Some(CpuStats {
                timed_calls: 1,
                intervals: 1,
                untimed_intervals: 0,
                busy_ns: 2,
                self_ns: 2,
                on_cpu_ns: hist(5),
                self_on_cpu_ns: 1,
                off_cpu_ns: 1,
                preempted_ns: hist(6),
                self_preempted_ns: Some(1),
                voluntary_switches: 0,
                involuntary_switches: 0,
                sampled: Some(SampledCpu::default()),
            }),
            groups: Vec::new(),
            active: None,
            runtime_worker_calls: None,
            intervals: None,
            layer: None,
            watched_waits: None,
            watched_io: None,
            misnested_exits: 0,
            thread_starts: 0,
            long_spans: Some(LongSpans::default()),
            open: None,
        }
    }

    /// The paths of every object holding an `encoded` histogram, groups
    /// left out (a group's figures are a callsite's).
    fn histogram_paths(value: &Value, at: &str, out: &mut Vec<String>) {
        let Value::Object(fields) = value else {
            return;
        };
        if fields.contains_key("encoded") {
            out.push(at.to_owned());
            return;
        }
        for (name, field) in fields {
            if name != "groups" {
                let path = if at.is_empty() {
                    name.clone()
                } else {
                    format!("{at}.{name}")
                };
                histogram_paths(field, &path, out);
            }
        }
    }

    #[test]
    fn the_lists_name_every_histogram_of_the_schema() {
        let cs = &callsite();
        let mut found = Vec::new();
        histogram_paths(&serde_json::to_value(cs).unwrap(), "", &mut found);
        found.sort();
        let mut listed: Vec<String> = CallsiteStats::HISTOGRAMS
            .iter()
            .map(|f| f.name.to_owned())
            .chain(
                CpuStats::HISTOGRAMS
                    .iter()
                    .map(|f| format!("cpu.{}", f.name)),
            )
            .collect();
        listed.sort();
        assert_eq!(found, listed);

        let cpu = cs.cpu.as_ref().unwrap();
        let walked: Vec<&HistogramDump> = cs.histograms().collect();
        let by_hand = [
            &cs.wall_ns,
            &cs.busy_ns,
            &cs.idle_ns,
            &cs.self_ns,
            &cpu.on_cpu_ns,
            &cpu.preempted_ns,
        ];
        assert_eq!(walked.len(), by_hand.len());
        for (a, b) in walked.iter().zip(by_hand) {
            assert!(std::ptr::eq(*a, b));
        }
        let mut timed_out = cs.clone();
        timed_out.cpu = None;
        assert_eq!(timed_out.histograms().count(), 4);
    }

    #[test]
    fn get_and_get_mut_reach_the_same_field() {
        let mut cs = callsite();
        for f in &CallsiteStats::HISTOGRAMS {
            let read: *const HistogramDump = (f.get)(&cs);
            let set: *const HistogramDump = (f.get_mut)(&mut cs);
            assert_eq!(read, set, "{}", f.name);
        }
        let cpu = cs.cpu.as_mut().unwrap();
        for f in &CpuStats::HISTOGRAMS {
            let read: *const HistogramDump = (f.get)(cpu);
            let set: *const HistogramDump = (f.get_mut)(cpu);
            assert_eq!(read, set, "{}", f.name);
        }
    }
}
