//! Property tests of the lossless parts: a stored histogram decodes to the
//! histogram it was made from, and merging dumps is associative and loses
//! no count.

mod proptest_support;

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use perf_layer::dump::{Dump, HistogramDump};
use perf_report::merge::merge;
use proptest::prelude::*;
use proptest_support::histogram_json;
use serde_json::json;

proptest! {
    #![proptest_config(ProptestConfig { cases: proptest_support::cases(64), ..ProptestConfig::default() })]

    #[test]
    fn histograms_round_trip_through_the_dump(
        sigfig in 1u8..=4,
        max_exp in 10u32..=42,
        values in prop::collection::vec(prop_oneof![1..1_000u64, any::<u64>()], 0..64),
    ) {
        let max = 1u64 << max_exp;
        let mut h = Histogram::<u64>::new_with_bounds(1, max, sigfig).unwrap();
        let (mut sum, mut clamped) = (0u64, 0u64);
        for &v in &values {
            sum = sum.saturating_add(v);
            clamped += u64::from(v > h.high());
            h.saturating_record(v);
        }
        let stored = HistogramDump::from_histogram(&h, sum, clamped);
        prop_assert_eq!(stored.decode().unwrap(), h.clone());
        // Through JSON too, as a file carries it.
        let mut back: HistogramDump = serde_json::from_str(&serde_json::to_string(&stored).unwrap()).unwrap();
        // serde_json without its `float_roundtrip` feature may read a float
        // back one unit in the last place off; `mean` is only the readable
        // summary (sum and count are exact), so allow that much there.
        prop_assert!((back.mean - stored.mean).abs() <= stored.mean.abs() * 4.0 * f64::EPSILON);
        back.mean = stored.mean;
        prop_assert_eq!(&back, &stored);
        prop_assert_eq!(back.decode().unwrap(), h.clone());
        prop_assert_eq!((back.count, back.sum, back.clamped), (values.len() as u64, sum, clamped));
        if !values.is_empty() {
            prop_assert_eq!((back.min, back.max), (h.min(), h.max()));
        }
    }

    #[test]
    fn merging_is_associative_and_loses_no_count(
        a in part(), b in part(), c in part(),
    ) {
        let parts = [a, b, c];
        let flat = merge(parts.to_vec()).unwrap();
        let left = merge(vec![merge(parts[..2].to_vec()).unwrap(), parts[2].clone()]).unwrap();
        let right = merge(vec![parts[0].clone(), merge(parts[1..].to_vec()).unwrap()]).unwrap();
        let (f, l, r) = (Totals::of(&flat), Totals::of(&left), Totals::of(&right));
        prop_assert_eq!(&l, &f, "(a+b)+c differs from a+b+c");
        prop_assert_eq!(&r, &f, "a+(b+c) differs from a+b+c");

        // Nothing lost: every figure is the sum of the parts'.
        let mut expected = Totals::default();
        for p in &parts {
            expected.add(&Totals::of(p));
        }
        prop_assert_eq!(&f, &expected);
        prop_assert_eq!(flat.run.duration_ns, parts.iter().map(|p| p.run.duration_ns).sum::<u64>());
        prop_assert_eq!(left.timeline.samples.len(), parts.iter().map(|p| p.timeline.samples.len()).sum::<usize>());
        prop_assert_eq!(&left.timeline, &flat.timeline);
        prop_assert_eq!(&right.timeline, &flat.timeline);
    }
}

/// Per callsite identity: calls, events and the four histograms; per edge
/// identity: calls and busy time; the dropped counts.
#[derive(Debug, Default, PartialEq)]
struct Totals {
    callsites: BTreeMap<String, Site>,
    edges: BTreeMap<(String, String), (u64, u64)>,
    dropped: (u64, u64, u64),
}

#[derive(Debug, Default, Clone, PartialEq)]
struct Site {
    calls: u64,
    events: u64,
    hists: [Hist; 4],
}

/// A histogram as counts per bucket, with its stored count, sum and clamped.
#[derive(Debug, Default, Clone, PartialEq)]
struct Hist {
    count: u64,
    sum: u64,
    clamped: u64,
    buckets: BTreeMap<u64, u64>,
}

impl Hist {
    fn of(h: &HistogramDump) -> Self {
        let decoded = h.decode().unwrap();
        assert_eq!(
            decoded.len(),
            h.count,
            "the summary count matches the histogram"
        );
        Hist {
            count: h.count,
            sum: h.sum,
            clamped: h.clamped,
            buckets: decoded
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect(),
        }
    }

    fn add(&mut self, other: &Hist) {
        self.count += other.count;
        self.sum += other.sum;
        self.clamped += other.clamped;
        for (k, v) in &other.buckets {
            *self.buckets.entry(*k).or_default() += v;
        }
    }
}

impl Site {
    fn add(&mut self, other: &Site) {
        self.calls += other.calls;
        self.events += other.events;
        for (mine, theirs) in self.hists.iter_mut().zip(&other.hists) {
            mine.add(theirs);
        }
    }
}

fn identity(target: &str, name: &str) -> String {
    format!("{target}::{name}")
}

impl Totals {
    fn of(dump: &Dump) -> Self {
        let key = |id: u32| {
            let cs = dump.callsites.iter().find(|c| c.id == id).unwrap();
            identity(&cs.target, &cs.name)
        };
        let mut t = Totals {
            dropped: (
                dump.callsites_dropped_spans,
                dump.edges_dropped,
                dump.alerts_dropped,
            ),
            ..Totals::default()
        };
        for cs in &dump.callsites {
            let site = Site {
                calls: cs.calls,
                events: cs.events.total(),
                hists: [&cs.wall_ns, &cs.busy_ns, &cs.idle_ns, &cs.self_ns].map(Hist::of),
            };
            t.callsites
                .entry(identity(&cs.target, &cs.name))
                .or_default()
                .add(&site);
        }
        for e in &dump.edges {
            let v = t.edges.entry((key(e.parent), key(e.child))).or_default();
            v.0 += e.calls;
            v.1 += e.child_busy_ns;
        }
        t
    }

    fn add(&mut self, other: &Totals) {
        for (k, site) in &other.callsites {
            self.callsites.entry(k.clone()).or_default().add(site);
        }
        for (k, v) in &other.edges {
            let e = self.edges.entry(k.clone()).or_default();
            e.0 += v.0;
            e.1 += v.1;
        }
        self.dropped.0 += other.dropped.0;
        self.dropped.1 += other.dropped.1;
        self.dropped.2 += other.dropped.2;
    }
}

/// The callsites a service has; each part (process, run) has some of them.
const IDENTITIES: [(&str, &str); 4] = [("app", "a"), ("app", "b"), ("db", "query"), ("app", "c")];

/// One part of a service's profile: a subset of [`IDENTITIES`] with real
/// histograms (one configuration for all parts), edges between them, a
/// timeline, and its own start time.
fn part() -> impl Strategy<Value = Dump> {
    let site = (
        any::<bool>(),
        prop::collection::vec(prop::collection::vec(1..1_000_000_000u64, 0..8), 4),
        prop::array::uniform5(0..1_000u64),
    );
    (
        prop::collection::vec(site, IDENTITIES.len()),
        prop::collection::vec((0..4u32, 0..4u32, 0..1_000u64, 0..1_000_000u64), 0..5),
        prop::collection::vec(0..10_000u64, 0..4),
        (0..1_000_000u64, 0..1_000_000_000u64, prop::array::uniform3(0..100u64)),
    )
        .prop_map(|(sites, edges, samples, (start, duration, dropped))| {
            let max = 3_600_000_000_000;
            let mut callsites = Vec::new();
            let mut ids = Vec::new(); // identity index -> id in this part
            for (i, (present, values, events)) in sites.iter().enumerate() {
                if !present {
                    ids.push(None);
                    continue;
                }
                let id = callsites.len() as u32;
                ids.push(Some(id));
                let (target, name) = IDENTITIES[i];
                callsites.push(json!({
                    "id": id, "name": name, "target": target, "module_path": target,
                    "file": "src/lib.rs", "line": 10 + i,
                    "level": "INFO", "calls": values[0].len(),
                    "wall_ns": histogram_json(&values[0], 2, max, None),
                    "busy_ns": histogram_json(&values[1], 2, max, None),
                    "idle_ns": histogram_json(&values[2], 2, max, None),
                    "self_ns": histogram_json(&values[3], 2, max, None),
                    "events": {"trace": events[0], "debug": events[1], "info": events[2], "warn": events[3], "error": events[4]},
                    "alloc": null, "rss_delta": null,
                }));
            }
            let edges: Vec<_> = edges
                .into_iter()
                .filter_map(|(p, c, calls, busy)| {
                    Some(json!({
                        "parent": ids[p as usize]?, "child": ids[c as usize]?,
                        "calls": calls, "child_busy_ns": busy,
                    }))
                })
                .collect();
            let samples: Vec<_> = samples
                .into_iter()
                .map(|t| json!({"t_ms": t, "rss_bytes": t * 4096, "virtual_bytes": 0, "cpu_percent": 1.0, "threads": 2}))
                .collect();
            let mut dump = serde_json::to_value(Dump::empty("svc")).unwrap();
            dump["run"]["started_at_unix_ms"] = start.into();
            dump["run"]["ended_at_unix_ms"] = (start + duration / 1_000_000).into();
            dump["run"]["duration_ns"] = duration.into();
            dump["config"]["histogram_max_ns"] = max.into();
            dump["callsites"] = callsites.into();
            dump["edges"] = edges.into();
            dump["timeline"] = json!({"interval_ms": 100, "samples": samples});
            dump["callsites_dropped_spans"] = dropped[0].into();
            dump["edges_dropped"] = dropped[1].into();
            dump["alerts_dropped"] = dropped[2].into();
            Dump::from_slice(&serde_json::to_vec(&dump).unwrap()).unwrap()
        })
}
