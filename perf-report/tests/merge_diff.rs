//! Merge and diff on dumps whose answer is known.

mod support;

use hdrhistogram::Histogram;
use perf_layer::dump::{Alert, AlertKind, HistogramDump, WaitedBeside, WatchedIo, WatchedWaits};
use perf_report::diff::{DiffOptions, Verdict, diff};
use perf_report::merge::{MergeError, merge};
use support::{MIB, MS, Span, US, dump, ground_truth, hist, timeline};

#[test]
fn merging_adds_histograms_and_sums_counts() {
    let a = dump(
        "svc",
        1_000 * MS,
        &[
            Span::new("main", 1, &[(900 * MS, 1)]).alloc(10, 1, 0, 0),
            Span::new("parse", 10, &[(6 * MS, 1_000)]).alloc(1_000, 10, 100, 3),
        ],
    );
    let mut b = dump(
        "svc",
        2_000 * MS,
        &[
            Span::new("main", 1, &[(1_800 * MS, 1)]).alloc(20, 2, 0, 0),
            Span::new("only_in_b", 99, &[(MS, 7)]).alloc(0, 0, 0, 0),
            Span::new("parse", 10, &[(2 * MS, 500)]).alloc(500, 5, 50, 2),
        ],
    );
    b.run.started_at_unix_ms = 1_000;
    let mut a = a;
    timeline(&mut a, 100, |i| 10 * MIB + i, 1.0, 3);
    timeline(&mut b, 100, |i| 20 * MIB + i, 2.0, 3);
    b.alerts.push(Alert {
        t_ms: 5,
        kind: AlertKind::Cpu,
        value: 99.0,
        threshold: 90.0,
        message: "cpu".into(),
    });

    let m = merge(vec![a.clone(), b.clone()]).unwrap();
    assert_eq!(m.callsites.len(), 3);
    let ids: Vec<u32> = m.callsites.iter().map(|c| c.id).collect();
    assert_eq!(ids, vec![0, 1, 2]);
    let parse = m.callsites.iter().find(|c| c.name == "parse").unwrap();
    assert_eq!(parse.calls, 1_500);
    assert_eq!(parse.busy_ns.sum, 6_000 * MS + 1_000 * MS);
    let h = parse.busy_ns.decode().unwrap();
    assert_eq!(h.len(), 1_500);
    // 1000 of 1500 calls took 6 ms: the median is 6 ms, the 20th percentile 2 ms.
    assert!(h.equivalent(h.value_at_quantile(0.5), 6 * MS));
    assert!(h.equivalent(h.value_at_quantile(0.2), 2 * MS));
    let mut expected = a.callsites[1].busy_ns.decode().unwrap();
    expected
        .add(b.callsites[2].busy_ns.decode().unwrap())
        .unwrap();
    assert_eq!(h, expected);
    let alloc = parse.alloc.unwrap();
    assert_eq!(
        (alloc.alloc_bytes, alloc.net_bytes, alloc.calls_retaining),
        (1_500, 150, 5)
    );

    // Edges follow the renumbered ids.
    let main_id = m.callsites.iter().find(|c| c.name == "main").unwrap().id;
    let parse_edge = m.edges.iter().find(|e| e.child == parse.id).unwrap();
    assert_eq!((parse_edge.parent, parse_edge.calls), (main_id, 1_500));

    // One clock: b started 1 s after a.
    let t: Vec<u64> = m.timeline.samples.iter().map(|s| s.t_ms).collect();
    assert_eq!(t, vec![0, 100, 200, 1_000, 1_100, 1_200]);
    assert_eq!(m.alerts[0].t_ms, 1_005);
    assert_eq!(m.run.duration_ns, 3_000 * MS);

    // A callsite whose allocation is unknown in one part is unknown merged.
    let mut c = b.clone();
    c.callsites[2].alloc = None;
    let m = merge(vec![a, c]).unwrap();
    let parse = m.callsites.iter().find(|c| c.name == "parse").unwrap();
    assert_eq!(parse.alloc, None);
}

/// What a callsite's spans waited beside adds up across parts; what the
/// rest of the process wanted is known only where every part says it.
#[test]
fn merging_adds_watched_waits_and_keeps_what_was_wanted_only_where_all_say_it() {
    let waits = |wanted| WatchedWaits {
        intervals: 10,
        wait_ns: 100 * MS,
        others_cpu_ns: 50 * MS,
        others_wanted_ns: wanted,
        for_a_thread_ns: wanted.map(|_| 60 * MS),
        asleep_ns: wanted.map(|_| 30 * MS),
        beside: vec![WaitedBeside {
            callsite: 0,
            ns: 40 * MS,
        }],
        glances: wanted.map(|_| 20),
        glances_in_futex: wanted.map(|_| 5),
    };
    let part = |w: Option<WatchedWaits>| {
        let mut d = dump("svc", 1_000 * MS, &[Span::new("join", 1, &[(MS, 10)])]);
        d.callsites[0].watched_waits = w;
        d
    };
    let both = merge(vec![
        part(Some(waits(Some(200 * MS)))),
        part(Some(waits(Some(100 * MS)))),
    ])
    .unwrap();
    let w = both.callsites[0].watched_waits.clone().unwrap();
    assert_eq!(
        (w.intervals, w.wait_ns, w.others_cpu_ns, w.others_wanted_ns),
        (20, 200 * MS, 100 * MS, Some(300 * MS))
    );
    // The futex waits add up; what they waited beside names callsites by
    // each part's ids, and is left out.
    assert_eq!(w.for_a_thread_ns, Some(120 * MS));
    assert_eq!(w.asleep_ns, Some(60 * MS));
    assert_eq!((w.glances, w.glances_in_futex), (Some(40), Some(10)));
    assert!(w.beside.is_empty(), "{w:?}");
    assert_eq!(w.others_wanted_cores(), Some(1.5));
    // An older part does not say what was wanted: the busy cores stand.
    let older = merge(vec![
        part(Some(waits(Some(200 * MS)))),
        part(Some(waits(None))),
    ])
    .unwrap();
    let w = older.callsites[0].watched_waits.clone().unwrap();
    assert_eq!(
        (
            w.intervals,
            w.others_wanted_ns,
            w.for_a_thread_ns,
            w.glances
        ),
        (20, None, None, None)
    );
    assert_eq!(w.others_wanted_cores(), w.others_cores());
    // A part that was not watched: nothing is known.
    let unwatched = merge(vec![part(Some(waits(Some(200 * MS)))), part(None)]).unwrap();
    assert_eq!(unwatched.callsites[0].watched_waits, None);
}

/// The system calls each part's watch read add up, a sample of each
/// part's time on the CPU; a part the watch read none of adds nothing.
#[test]
fn merging_adds_the_watched_system_calls_of_the_parts_that_have_them() {
    let part = |io: Option<WatchedIo>| {
        let mut d = dump("svc", 1_000 * MS, &[Span::new("export", 1, &[(MS, 10)])]);
        d.callsites[0].watched_io = io;
        d
    };
    let io = WatchedIo {
        probes: 10,
        cpu_ns: 2 * MS,
        reads: 1,
        writes: 2_000,
        read_bytes: 8,
        written_bytes: 28_000,
    };
    let merged = merge(vec![part(Some(io)), part(None), part(Some(io))]).unwrap();
    let sum = merged.callsites[0].watched_io.unwrap();
    assert_eq!(
        sum,
        WatchedIo {
            probes: 20,
            cpu_ns: 4 * MS,
            reads: 2,
            writes: 4_000,
            read_bytes: 16,
            written_bytes: 56_000
        }
    );
    assert_eq!(sum.writes_per_cpu_second(), Some((1e6, 14.0)));
    let none = merge(vec![part(None), part(None)]).unwrap();
    assert_eq!(none.callsites[0].watched_io, None);
}

#[test]
fn merging_is_refused_only_when_histograms_cannot_be_added() {
    let narrow = |v: u64| {
        let mut h = Histogram::<u64>::new_with_bounds(1, 1_000_000, 3).unwrap();
        h.record(v).unwrap();
        HistogramDump::from_histogram(&h, v, 0)
    };
    let a = dump("a", MS, &[Span::new("x", 1, &[(500, 1)])]);
    let mut b = a.clone();
    // Different precision, values in range: adds fine.
    b.callsites[0].busy_ns = narrow(700);
    let mut a2 = a.clone();
    a2.callsites[0].busy_ns = narrow(500);
    assert!(merge(vec![a2.clone(), b.clone()]).is_ok());
    // A value beyond the first dump's range cannot be added.
    let mut c = a.clone();
    c.callsites[0].busy_ns = hist(&[(3_600 * 1_000 * MS, 1)]);
    let err = merge(vec![a2, c]).unwrap_err();
    assert!(
        matches!(&err, MergeError::Histogram { callsite, which: "busy", .. } if callsite == "x"),
        "{err}"
    );
    assert!(err.to_string().contains("same histogram settings"));
    assert_eq!(merge(vec![]).unwrap_err(), MergeError::NoDumps);
}

#[test]
fn identical_dumps_do_not_differ() {
    let d = ground_truth();
    let r = diff(&d, &d, &DiffOptions::default());
    assert!(r.callsites.iter().all(|c| c.verdict == Verdict::Unchanged));
    assert_eq!(r.worst_regression(), 0.0);
}

#[test]
fn diff_finds_the_known_changes() {
    let base = ground_truth();
    let new = support::improved_and_regressed(&base);
    let r = diff(&base, &new, &DiffOptions::default());
    let verdict = |n: &str| {
        r.callsites
            .iter()
            .find(|c| c.location.name == n)
            .unwrap()
            .clone()
    };
    let parse = verdict("parse");
    assert_eq!(parse.verdict, Verdict::Improved);
    assert!((parse.busy_mean_ns.relative.unwrap() + 0.5).abs() < 1e-9);
    let lookup = verdict("lookup");
    assert_eq!(lookup.verdict, Verdict::Regressed);
    assert!(
        (lookup.regression - 0.6).abs() < 1e-3,
        "{}",
        lookup.regression
    );
    assert!(lookup.ks_statistic > lookup.ks_critical);
    let encode = verdict("encode");
    assert_eq!(
        (encode.time_verdict, encode.alloc_verdict),
        (Verdict::Unchanged, Verdict::Regressed)
    );
    assert!((encode.regression - 1.0).abs() < 1e-9);
    assert_eq!(verdict("fetch").verdict, Verdict::Unchanged);
    // Regressions come first, largest first.
    assert_eq!(r.callsites[0].location.name, "encode");
    assert_eq!(r.callsites[1].location.name, "lookup");
    assert!((r.worst_regression() - 1.0).abs() < 1e-9);
}

fn one(name: &'static str, busy: &[(u64, u64)]) -> perf_layer::dump::Dump {
    dump("x", MS, &[Span::new(name, 1, busy)])
}

#[test]
fn the_significance_rule_needs_both_a_change_and_a_shift() {
    let opts = DiffOptions::default();
    let base = one("s", &[(100 * US, 1_000)]);

    // +5%: within the noise threshold.
    let r = diff(&base, &one("s", &[(105 * US, 1_000)]), &opts);
    assert_eq!(r.callsites[0].verdict, Verdict::Unchanged);

    // One outlier doubles the mean but moves neither the bulk nor two quantiles.
    let r = diff(&base, &one("s", &[(100 * US, 999), (100 * MS, 1)]), &opts);
    let c = &r.callsites[0];
    assert!(c.busy_mean_ns.relative.unwrap() > 0.9);
    assert_eq!(c.verdict, Verdict::Unchanged, "{}", c.reason);

    // A tail regression: 3% of calls 20x slower moves p99 and p99.9.
    let r = diff(&base, &one("s", &[(100 * US, 970), (2 * MS, 30)]), &opts);
    let c = &r.callsites[0];
    assert_eq!(c.verdict, Verdict::Regressed, "{}", c.reason);
    assert!(c.quantiles_moved >= 2);

    // The bulk got 10% faster while 1% of calls got very slow: the mean
    // rises 39%, the two-sided KS gap is huge (0.99), but nothing moved the
    // way of the mean except one quantile: not a regression.
    let r = diff(&base, &one("s", &[(90 * US, 990), (5 * MS, 10)]), &opts);
    let c = &r.callsites[0];
    assert!(c.busy_mean_ns.relative.unwrap() > 0.3);
    assert!(c.ks_statistic < c.ks_critical, "{}", c.reason);
    assert_eq!(c.verdict, Verdict::Unchanged, "{}", c.reason);

    // Too few calls for any time verdict.
    let r = diff(
        &one("s", &[(100 * US, 3)]),
        &one("s", &[(300 * US, 3)]),
        &opts,
    );
    assert_eq!(r.callsites[0].verdict, Verdict::Unchanged);

    // A looser threshold turns a +15% shift into noise.
    let shifted = one("s", &[(115 * US, 1_000)]);
    assert_eq!(
        diff(&base, &shifted, &opts).callsites[0].verdict,
        Verdict::Regressed
    );
    let loose = DiffOptions::default().with_threshold(0.2);
    assert_eq!(
        diff(&base, &shifted, &loose).callsites[0].verdict,
        Verdict::Unchanged
    );
}

#[test]
fn added_and_removed_callsites_are_reported() {
    let r = diff(
        &one("old", &[(US, 10)]),
        &one("new", &[(US, 10)]),
        &DiffOptions::default(),
    );
    let v: Vec<(String, Verdict)> = r
        .callsites
        .iter()
        .map(|c| (c.location.name.clone(), c.verdict))
        .collect();
    assert_eq!(
        v,
        vec![
            ("new".to_owned(), Verdict::Added),
            ("old".to_owned(), Verdict::Removed)
        ]
    );
}

#[test]
fn merging_weights_each_overhead_cost_by_its_own_events() {
    let mut a = dump("svc", 1_000 * MS, &[Span::new("work", 1, &[(MS, 10)])]);
    let mut b = dump("svc", 1_000 * MS, &[Span::new("work", 1, &[(MS, 10)])]);
    a.overhead.per_span_ns = 100.0;
    a.overhead.spans = 3;
    a.overhead.per_timed_interval_ns = 1_000.0;
    a.overhead.timed_intervals = 1;
    b.overhead.per_span_ns = 200.0;
    b.overhead.spans = 1;
    b.overhead.per_timed_interval_ns = 2_000.0;
    b.overhead.timed_intervals = 3;
    let m = merge(vec![a, b]).unwrap().overhead;
    assert_eq!(m.spans, 4);
    assert_eq!(m.timed_intervals, 4);
    // (3 x 100 + 1 x 200) / 4 and (1 x 1,000 + 3 x 2,000) / 4.
    assert_eq!(m.per_span_ns, 125.0);
    assert_eq!(m.per_timed_interval_ns, 1_750.0);
}
