//! The analysis and the plan on dumps whose answer is known.

mod support;

use perf_report::analyze::{Class, Severity, analyze};
use perf_report::config::Config;
use perf_report::{Report, plan};
use support::{MIB, MS, Span, US, dump, ground_truth, timeline};

fn names(a: &perf_report::Analysis) -> Vec<(Class, String)> {
    a.findings
        .iter()
        .map(|f| {
            (
                f.class,
                f.location
                    .as_ref()
                    .map_or_else(|| "process".to_owned(), |l| l.name.clone()),
            )
        })
        .collect()
}

#[test]
fn ground_truth_is_found_with_the_right_class_and_order() {
    let a = analyze(&ground_truth().into(), &Config::default());
    assert_eq!(
        names(&a),
        vec![
            (Class::HotSpot, "parse".to_owned()),
            (Class::Waiting, "fetch".to_owned()),
            (Class::LeakSuspect, "cache_insert".to_owned()),
            (Class::TailLatency, "lookup".to_owned()),
            (Class::AllocationHeavy, "encode".to_owned()),
        ]
    );
    let sev: Vec<Severity> = a.findings.iter().map(|f| f.severity).collect();
    assert_eq!(
        sev,
        vec![
            Severity::Critical,
            Severity::High,
            Severity::High,
            Severity::Medium,
            Severity::Low
        ]
    );
    // Scores strictly decrease and follow the documented formula.
    for w in a.findings.windows(2) {
        assert!(w[0].score > w[1].score);
    }
    let hot = &a.findings[0];
    let expected = 100.0 * hot.cost_share * 0.5 * 0.95;
    assert!(
        (hot.score - expected).abs() < 0.06,
        "{} vs {expected}",
        hot.score
    );
    // parse has 6 s of 7.108 s self time.
    assert!((hot.cost_share - 6_000.0 / 7_108.0).abs() < 1e-3);
}

#[test]
fn the_leak_carries_its_rss_trend() {
    let a = analyze(&ground_truth().into(), &Config::default());
    let trend = a.process.rss_trend.expect("a fit over 20 samples");
    // 5 MiB per 500 ms sample.
    assert!(
        (trend.slope - 10.0 * MIB as f64).abs() < 0.05 * MIB as f64,
        "{trend:?}"
    );
    assert!(trend.r2 > 0.99);
    let leak = a
        .findings
        .iter()
        .find(|f| f.class == Class::LeakSuspect)
        .unwrap();
    assert!(leak.evidence.iter().any(|e| e.metric == "RSS slope"));
    // No separate process-level leak when a span explains it.
    assert_eq!(
        a.findings
            .iter()
            .filter(|f| f.class == Class::LeakSuspect)
            .count(),
        1
    );
}

#[test]
fn plan_orders_by_gain_over_effort_and_ends_validation_with_a_diff() {
    let r = Report::build(&ground_truth().into(), &Config::default());
    let p = &r.plan;
    assert_eq!(p.steps.len(), 5);
    // Time steps first, by score (the gain as sure as the evidence, weighed
    // by what its resource is worth to the run) over effort; then the
    // memory part.
    for w in p.steps.windows(2) {
        assert!(
            (w[0].memory_part, -w[0].priority) <= (w[1].memory_part, -w[1].priority),
            "{:?} before {:?}",
            (w[0].class, w[0].priority),
            (w[1].class, w[1].priority)
        );
    }
    // No step sits above a time step that scores more than twice as much:
    // effort and risk only break near-ties.
    for (i, a) in p.steps.iter().enumerate() {
        for b in &p.steps[i + 1..] {
            if !a.memory_part && !b.memory_part {
                assert!(
                    a.score * 2.0 >= b.score * 0.999,
                    "{:?} over {:?}",
                    a.class,
                    b.class
                );
            }
        }
    }
    // The allocation fix, however cheap, and the leak that is not yet
    // critical are in the memory part, after every step that gives back
    // time (a byte is not a nanosecond), the leak (high) before the
    // allocation (low).
    let order: Vec<Class> = p.steps.iter().map(|s| s.class).collect();
    assert_eq!(
        order,
        vec![
            Class::HotSpot,
            Class::Waiting,
            Class::TailLatency,
            Class::LeakSuspect,
            Class::AllocationHeavy
        ]
    );
    for s in &p.steps {
        assert!(!s.fixes.is_empty() && !s.prerequisites.is_empty());
        assert!(s.validation.last().unwrap().contains("perf-report diff"));
        assert_eq!(s.rank, p.steps.iter().position(|x| x == s).unwrap() + 1);
    }
    let hot = p.steps.iter().find(|s| s.class == Class::HotSpot).unwrap();
    assert!(
        hot.gain
            .statement
            .starts_with("halving `parse`'s self time")
    );
    assert!((hot.gain.share - 3_000.0 / 7_108.0).abs() < 1e-3);
    // Time gains compound: hot spot and tail.
    let tail = p
        .steps
        .iter()
        .find(|s| s.class == Class::TailLatency)
        .unwrap();
    let expected = 1.0 - (1.0 - hot.gain.share) * (1.0 - tail.gain.share);
    assert!((p.total_time_gain - expected).abs() < 1e-12);
    // fetch idles 4 s of a 12 s run; the threads were busy 59%, so the cap
    // (41%) does not bind and half of the 33% comes back.
    assert!((p.total_wall_gain - 4.0 / 12.0 * 0.5).abs() < 1e-9);
}

#[test]
fn thresholds_are_configurable() {
    let mut config = Config::default();
    config.classes.hot_spot.min_share = 0.9;
    let a = analyze(&ground_truth().into(), &config);
    assert!(a.findings.iter().all(|f| f.class != Class::HotSpot));

    let mut config = Config::default();
    config.bands.critical = 50.0;
    let a = analyze(&ground_truth().into(), &config);
    assert_eq!(a.findings[0].severity, Severity::High);
}

#[test]
fn a_hot_loop_is_not_also_reported_as_a_hot_spot() {
    let spans = [
        Span::new("main", 1, &[(300 * MS, 1)]).self_time(&[(MS, 1)]),
        Span::new("checksum", 2, &[(200, 1_000_000)]),
        Span::new("other", 3, &[(MS, 100)]),
    ];
    let mut d = dump("loop", 300 * MS, &spans);
    d.overhead.per_span_ns = 150.0;
    let a = analyze(&d.clone().into(), &Config::default());
    assert_eq!(
        names(&a),
        vec![
            (Class::HotLoop, "checksum".to_owned()),
            (Class::HotSpot, "other".to_owned())
        ]
    );
    let f = &a.findings[0];
    assert!(
        f.evidence
            .iter()
            .any(|e| e.metric.contains("instrumentation"))
    );
}

/// Batching gives back a call's instrumentation (the layer's cost per span
/// and tracing's own), not half of its work: 1,000,000 calls of 200 ns
/// with 150 + 60 ns of instrumentation each are a hot loop whose gain is
/// those 210 ms; 100,000 calls of 2 µs of work are a hot spot (batching
/// them would give back 7% of each call).
#[test]
fn a_hot_loop_gives_back_its_instrumentation_and_real_work_is_a_hot_spot() {
    let run = |calls: u64, ns: u64| {
        let spans = [
            Span::new("main", 1, &[(600 * MS, 1)]).self_time(&[(MS, 1)]),
            Span::new("checksum", 2, &[(ns, calls)]),
        ];
        let mut d = dump("loop", 600 * MS, &spans);
        d.overhead.per_span_ns = 150.0;
        d.overhead.floor_per_span_ns = 60.0;
        d.run.cpu_ns = Some(600 * MS);
        analyze(&d.into(), &Config::default())
    };
    let a = run(1_000_000, 200);
    let f = a
        .findings
        .iter()
        .find(|f| f.class == Class::HotLoop)
        .expect("a hot loop");
    // 200 ms of self time and 210 ms of instrumentation, of 600 ms of CPU.
    assert!(
        (f.cost_share - 410.0 / 600.0).abs() < 0.01,
        "{}",
        f.cost_share
    );
    assert!(
        (f.expected_gain() - 210.0 / 600.0).abs() < 0.01,
        "{}",
        f.expected_gain()
    );
    assert!(!a.findings.iter().any(|f| f.class == Class::HotSpot));
    let a = run(100_000, 2_000);
    assert!(
        !a.findings.iter().any(|f| f.class == Class::HotLoop),
        "{:?}",
        a.findings
    );
    let hot = a
        .findings
        .iter()
        .find(|f| f.class == Class::HotSpot)
        .expect("a hot spot");
    assert_eq!(
        hot.location.as_ref().map(|l| l.name.as_str()),
        Some("checksum")
    );
}

#[test]
fn the_instrumentation_share_is_the_loop_calibration_else_the_lower_of_measured_and_calibrated() {
    let spans = [
        Span::new("main", 1, &[(300 * MS, 1)]).self_time(&[(MS, 1)]),
        Span::new("checksum", 2, &[(400, 100_000)]),
    ];
    let share = |d: &perf_layer::dump::Dump| {
        let a = analyze(&d.clone().into(), &Config::default());
        let f = a
            .findings
            .iter()
            .find(|f| f.class == Class::HotLoop)
            .expect("the hot loop");
        f.evidence
            .iter()
            .find(|e| e.metric.contains("instrumentation share"))
            .expect("the instrumentation share")
            .value
    };
    let mut d = dump("loop", 300 * MS, &spans);
    d.overhead.per_span_ns = 150.0;
    // The calibrated cost: 150 ns against 400 ns of self time.
    let calibrated = share(&d);
    assert!((calibrated - 150.0 / 550.0).abs() < 0.01, "{calibrated}");
    // The run's callbacks measured 2 µs a span, less a 10 ns clock read a
    // callback: an average over every span (an async span's polls and
    // events in it), more than a cheap span in a loop costs; the lower of
    // the two stands.
    d.overhead.spans = 100_001;
    d.overhead.callbacks = 400_004;
    d.overhead.callbacks_sampled = 6_250;
    d.overhead.per_clock_read_ns = 10.0;
    d.overhead.callbacks_ns = 100_001 * 2_000 + 4_000_040;
    assert_eq!(share(&d), calibrated);
    // Measured at 140 ns a span: that one.
    d.overhead.callbacks_ns = 100_001 * 140 + 4_000_040;
    let measured = share(&d);
    assert!((measured - 140.0 / 540.0).abs() < 0.01, "{measured}");
    // The layer's cost calibrated on spans made back to back (a loop's),
    // and tracing's own: 120 + 110 ns against 400 ns, whatever the other
    // spans' callbacks cost.
    d.overhead.callbacks_ns = 100_001 * 2_000 + 4_000_040;
    d.overhead.loop_per_span_ns = 120.0;
    d.overhead.floor_per_span_ns = 110.0;
    let in_a_loop = share(&d);
    assert!((in_a_loop - 230.0 / 630.0).abs() < 0.01, "{in_a_loop}");
}

#[test]
fn process_cpu_and_memory_spikes_are_found() {
    let spans = [Span::new("main", 1, &[(MS, 1)])];
    let mut d = dump("proc", 10_000 * MS, &spans);
    // 12 of 20 samples spike to 1 GiB; CPU saturated in 15 of 20.
    timeline(
        &mut d,
        500,
        |i| if i == 12 { 1024 * MIB } else { 100 * MIB },
        0.0,
        20,
    );
    for (i, s) in d.timeline.samples.iter_mut().enumerate() {
        s.cpu_percent = if i < 15 { 99.0 } else { 10.0 };
    }
    let a = analyze(&d.clone().into(), &Config::default());
    let classes: Vec<Class> = a.findings.iter().map(|f| f.class).collect();
    assert!(classes.contains(&Class::ProcessCpu), "{classes:?}");
    assert!(classes.contains(&Class::ProcessMemory), "{classes:?}");
    let cpu = a
        .findings
        .iter()
        .find(|f| f.class == Class::ProcessCpu)
        .unwrap();
    assert!((cpu.cost_share - 0.75).abs() < 1e-9);
    assert!(cpu.location.is_none());
}

#[test]
fn growing_rss_without_a_retaining_span_is_a_process_leak() {
    let spans = [Span::new("main", 1, &[(MS, 1)]).alloc(0, 0, 0, 0)];
    let mut d = dump("grow", 10_000 * MS, &spans);
    timeline(&mut d, 500, |i| 100 * MIB + i * 4 * MIB, 10.0, 20);
    let a = analyze(&d.clone().into(), &Config::default());
    let leaks: Vec<_> = names(&a)
        .into_iter()
        .filter(|(c, _)| *c == Class::LeakSuspect)
        .collect();
    assert_eq!(leaks, vec![(Class::LeakSuspect, "process".to_owned())]);

    // A sawtooth of the same range is no trend.
    timeline(&mut d, 500, |i| 100 * MIB + (i % 2) * 76 * MIB, 10.0, 20);
    let a = analyze(&d.clone().into(), &Config::default());
    assert!(
        a.findings.iter().all(|f| f.class != Class::LeakSuspect),
        "{:?}",
        names(&a)
    );
}

#[test]
fn only_the_innermost_waiting_span_is_reported() {
    let spans = [
        Span::new("handler", 1, &[(2 * MS, 10)]).idle(100 * MS),
        Span::new("db_query", 2, &[(MS, 10)]).idle(100 * MS),
    ];
    let d = dump("wait", 1_100 * MS, &spans);
    let a = analyze(&d.clone().into(), &Config::default());
    let waiting: Vec<_> = names(&a)
        .into_iter()
        .filter(|(c, _)| *c == Class::Waiting)
        .collect();
    assert_eq!(waiting, vec![(Class::Waiting, "db_query".to_owned())]);
}

/// tower-http's `request` around a route whose `compress` is sometimes
/// slow: `request`'s busy time has the tail, its own time has none.
#[test]
fn a_parents_tail_that_is_its_childs_is_found_on_the_child_and_noted_on_the_parent() {
    let spans = [
        Span::new("request", 1, &[(50 * US, 1_960), (10 * MS, 40)]).self_time(&[(35 * US, 2_000)]),
        Span::new("compress", 2, &[(10 * US, 1_960), (10 * MS, 40)]),
        Span::new("parse", 3, &[(5 * US, 2_000)]),
    ];
    let mut d = dump("route", 1_000 * MS, &spans);
    for e in &mut d.edges {
        e.child_busy_ns = d.callsites[e.child as usize].busy_ns.sum;
    }
    let a = analyze(&d.clone().into(), &Config::default());
    let tails: Vec<_> = names(&a)
        .into_iter()
        .filter(|(c, _)| *c == Class::TailLatency)
        .collect();
    assert_eq!(tails, vec![(Class::TailLatency, "compress".to_owned())]);
    let note = a
        .notes
        .iter()
        .find(|n| n.starts_with("`request`'s slow calls"))
        .unwrap_or_else(|| panic!("no note on request's tail: {:?}", a.notes));
    assert!(note.contains("is `compress`"), "{note}");
    assert!(
        !a.notes
            .iter()
            .any(|n| n.starts_with("`compress`'s slow calls"))
    );

    // The same parent with a tail of its own keeps its finding, and says
    // how much of the tail is its own.
    let mut d = d.clone();
    let own = Span::new("request", 1, &[(50 * US, 1_960), (10 * MS, 40)])
        .self_time(&[(35 * US, 1_960), (5 * MS, 40)])
        .callsite(0);
    d.callsites[0] = own;
    let a = analyze(&d.into(), &Config::default());
    let request = a
        .findings
        .iter()
        .find(|f| f.class == Class::TailLatency && f.location.as_ref().unwrap().name == "request")
        .expect("request's own tail is found");
    let share = request
        .evidence
        .iter()
        .find(|e| e.metric == "tail in its own time, not its children's")
        .expect("the own share is evidence")
        .value;
    assert!((0.3..0.7).contains(&share), "{share}");
}

#[test]
fn untracked_allocation_gives_no_allocation_findings_and_says_so() {
    let mut d = ground_truth();
    d.allocations_tracked = false;
    let a = analyze(&d.clone().into(), &Config::default());
    assert!(
        a.findings.iter().all(|f| f.class != Class::AllocationHeavy
            && (f.class != Class::LeakSuspect || f.location.is_none())),
        "{:?}",
        names(&a)
    );
    assert!(
        a.notes
            .iter()
            .any(|n| n.contains("allocation was not tracked"))
    );
    // The memory weight is shared out: weights still reach the top of the scale.
    assert!(a.weights[0].memory_share.is_none());
    assert_eq!(a.weights[0].location.name, "parse");
}

#[test]
fn session_weights_mix_cpu_memory_and_frequency() {
    let a = analyze(&ground_truth().into(), &Config::default());
    let top = &a.weights[0];
    assert_eq!(top.location.name, "encode");
    for w in a.weights.windows(2) {
        assert!(w[0].weight >= w[1].weight);
    }
}

#[test]
fn session_weights_normalise_each_dimension_by_its_heaviest_span() {
    // `heavy` holds 96% of the self time, `chatty` 3.5% of it but nearly
    // every call and most of the bytes. Over shares of totals the two came
    // out nearly equal; over each dimension's heaviest span, each gets the
    // whole 40 (or 20) points of the dimension it leads.
    let spans = [
        Span::new("heavy", 1, &[(961 * MS, 10)]).alloc(MIB, 10, 0, 0),
        Span::new("chatty", 2, &[(3_500, 100_000)]).alloc(10 * MIB, 100_000, 0, 0),
        Span::new("quiet", 3, &[(4 * MS, 10)]).alloc(0, 0, 0, 0),
    ];
    let a = analyze(
        &dump("weights", 10_000 * MS, &spans).into(),
        &Config::default(),
    );
    let weight = |name: &str| {
        a.weights
            .iter()
            .find(|w| w.location.name == name)
            .map(|w| w.weight)
            .unwrap()
    };
    // heavy: 40 x 1 + 40 x 0.1 + 20 x 10 / 100,000
    assert!(
        (weight("heavy") - 44.0).abs() < 0.051,
        "{}",
        weight("heavy")
    );
    // chatty: 40 x 0.35 / 9.61 + 40 x 1 + 20 x 1
    assert!(
        (weight("chatty") - 61.5).abs() < 0.051,
        "{}",
        weight("chatty")
    );
    // quiet: 40 x 0.04 / 9.61 + 0 + 20 x 10 / 100,000
    assert!((weight("quiet") - 0.2).abs() < 0.051, "{}", weight("quiet"));
}

#[test]
fn a_clean_run_has_no_findings_and_an_empty_plan() {
    let r = Report::build(&support::clean().into(), &Config::default());
    assert!(r.analysis.findings.is_empty(), "{:?}", names(&r.analysis));
    assert!(plan::plan(&r.analysis).steps.is_empty());
    assert!(!r.has_findings_at_or_above(Severity::Medium));
}

#[test]
fn absurd_figures_do_not_panic() {
    let mut d = ground_truth();
    for cs in &mut d.callsites {
        cs.calls = u64::MAX;
        cs.intervals = Some(u64::MAX);
        cs.self_ns.sum = u64::MAX;
        cs.busy_ns.sum = u64::MAX;
        cs.idle_ns.sum = u64::MAX;
        cs.wall_ns.sum = u64::MAX;
        if let Some(a) = &mut cs.alloc {
            a.self_alloc_bytes = u64::MAX;
            a.net_bytes = i64::MAX;
            a.calls_retaining = u64::MAX;
        }
    }
    d.run.duration_ns = u64::MAX;
    d.overhead.per_span_ns = f64::MAX;
    d.overhead.fraction_of_run = f64::MAX;
    for s in &mut d.timeline.samples {
        s.rss_bytes = u64::MAX;
        s.cpu_percent = f64::MAX;
    }
    let r = Report::build(&d.clone().into(), &Config::default());
    for f in &r.analysis.findings {
        assert!((0.0..=100.0).contains(&f.score), "{f:?}");
    }
    use perf_report::render::{Format, RenderOptions, ReportKind, render};
    for format in [Format::Text, Format::Markdown, Format::Json] {
        assert!(!render(&r, format, ReportKind::Full, &RenderOptions::default()).is_empty());
    }
}

#[test]
fn memory_handed_to_a_caller_that_frees_it_is_not_a_leak() {
    // `fetch` returns a buffer it allocated; `handler` frees it. The live
    // heap credits the free to `fetch`, whose live bytes come back to zero
    // after every call, though `fetch` closes "holding" what it allocated.
    let sawtooth: Vec<u64> = (0..30)
        .map(|i| if i % 2 == 0 { 0 } else { 512 * 1024 })
        .collect();
    let spans = [
        Span::new("handler", 1, &[(2 * MS, 100)]).alloc(50 * MIB, 200, 1024, 100),
        Span::new("fetch", 2, &[(MS, 100)])
            .alloc(50 * MIB, 100, 50 * MIB as i64, 100)
            .live(sawtooth.into_iter().chain([0]).collect()),
    ];
    let a = analyze(
        &dump("handoff", 3_000 * MS, &spans).into(),
        &Config::default(),
    );
    assert!(
        a.findings.iter().all(|f| f.class != Class::LeakSuspect),
        "{:?}",
        names(&a)
    );

    // What `fetch` makes and nobody frees grows with every call: a leak,
    // reported at `fetch`, which made it (not at `handler`, around it).
    let spans = [
        Span::new("handler", 1, &[(2 * MS, 100)]).alloc(50 * MIB, 200, 50 * MIB as i64, 100),
        Span::new("fetch", 2, &[(MS, 100)])
            .alloc(50 * MIB, 100, 50 * MIB as i64, 100)
            .live((0..31).map(|i| i * 50 * MIB / 30).collect()),
    ];
    let a = analyze(&dump("kept", 3_000 * MS, &spans).into(), &Config::default());
    let leaks: Vec<_> = names(&a)
        .into_iter()
        .filter(|(c, _)| *c == Class::LeakSuspect)
        .collect();
    assert_eq!(leaks, vec![(Class::LeakSuspect, "fetch".to_owned())]);
}

#[test]
fn a_bounded_cache_that_fills_and_holds_is_not_a_leak() {
    // Fills to 40 MiB over the first half, then evicts as it inserts.
    let cache: Vec<u64> = (0..40).map(|i| i.min(20) * 2 * MIB).collect();
    let spans = [Span::new("cache_put", 1, &[(MS, 1_000)])
        .alloc(200 * MIB, 1_000, 0, 0)
        .live(cache)];
    let a = analyze(
        &dump("cache", 4_000 * MS, &spans).into(),
        &Config::default(),
    );
    assert!(
        a.findings.iter().all(|f| f.class != Class::LeakSuspect),
        "{:?}",
        names(&a)
    );
    let row = &a.callsites[0];
    assert_eq!(row.heap.as_ref().unwrap().live_bytes, 40 * MIB);
}

#[test]
fn waiting_gives_back_no_more_than_the_idle_capacity_of_the_threads() {
    // 100 tasks each idle 90 ms of 100 ms in a 1 s run: idle sums to 9 s.
    let spans = [
        Span::new("main", 1, &[(900 * MS, 1)]).self_time(&[(700 * MS, 1)]),
        Span::new("task", 2, &[(2 * MS, 100)]).idle(90 * MS),
    ];
    let a = analyze(&dump("busy", 1_000 * MS, &spans).into(), &Config::default());
    let w = a
        .findings
        .iter()
        .find(|f| f.class == Class::Waiting)
        .unwrap();
    // Threads busy 90% of the run: at most 10% can come back.
    assert!((a.totals.utilization - 0.9).abs() < 1e-9);
    assert!((w.cost_share - 0.1).abs() < 1e-9, "{}", w.cost_share);

    // A run whose one thread is busy all the time has nothing to give back.
    let spans = [
        Span::new("main", 1, &[(1_000 * MS, 1)]).self_time(&[(800 * MS, 1)]),
        Span::new("task", 2, &[(2 * MS, 100)]).idle(90 * MS),
    ];
    let a = analyze(
        &dump("saturated", 1_000 * MS, &spans).into(),
        &Config::default(),
    );
    assert!(
        a.findings.iter().all(|f| f.class != Class::Waiting),
        "{:?}",
        names(&a)
    );
}

#[test]
fn waiting_gives_back_no_more_than_the_phase_its_spans_lived_in() {
    // 100 tasks idle 90 ms each, all inside the same 150 ms of a 1 s run in
    // which the threads are mostly idle: 9 s of waiting, but no fix to it
    // can shorten the run by more than that phase.
    let spans = [
        Span::new("main", 1, &[(300 * MS, 1)]).self_time(&[(100 * MS, 1)]),
        Span::new("task", 2, &[(2 * MS, 100)]).idle(90 * MS),
    ];
    let mut d = dump("phase", 1_000 * MS, &spans);
    let unbounded = analyze(&d.clone().into(), &Config::default());
    let before = unbounded
        .findings
        .iter()
        .find(|f| f.class == Class::Waiting)
        .unwrap()
        .cost_share;
    assert!(before > 0.5, "{before}");
    d.callsites[1].active = Some(perf_layer::dump::ActiveWindow {
        first_open_ns: 400 * MS,
        last_close_ns: 550 * MS,
    });
    let a = analyze(&d.into(), &Config::default());
    let w = a
        .findings
        .iter()
        .find(|f| f.class == Class::Waiting)
        .unwrap();
    assert!((w.cost_share - 0.15).abs() < 1e-9, "{}", w.cost_share);
    assert!(
        w.summary
            .contains("live in only 15.0% of the run's wall time"),
        "{}",
        w.summary
    );
}

/// A process that computes 30% of the time: halving `checksum` (93% of
/// its CPU) saves 47% of the CPU, 14% of the run; halving `fetch`'s wait
/// (99% of the run, 70% of it on idle cores) gives back 35% of the run.
/// The plan's order follows what the run gets back, as the severities do:
/// the critical wait first, the high hot spot after, although its share
/// of the CPU is the larger number (which used to put it first).
#[test]
fn the_plan_puts_a_wait_the_run_spends_in_before_the_cpu_of_an_idle_process() {
    let spans = [
        Span::new("main", 1, &[(1_000 * MS, 1)]).self_time(&[(10 * MS, 1)]),
        Span::new("checksum", 2, &[(14 * MS, 20)]),
        Span::new("fetch", 3, &[(100 * US, 100)]).idle(9_900 * US),
    ];
    let mut d = dump("idle", 1_000 * MS, &spans);
    d.run.cpu_ns = Some(300 * MS);
    let r = Report::build(&d.into(), &Config::default());
    let steps: Vec<(Class, Severity)> =
        r.plan.steps.iter().map(|s| (s.class, s.severity)).collect();
    assert_eq!(
        steps[..2],
        [
            (Class::Waiting, Severity::Critical),
            (Class::HotSpot, Severity::High)
        ],
        "{steps:?}"
    );
    // The hot spot's share of its whole is the larger one.
    assert!(r.plan.steps[1].gain.share > r.plan.steps[0].gain.share);
}

#[test]
fn rss_alerts_count_against_their_threshold() {
    use perf_layer::dump::{Alert, AlertKind};
    let spans = [Span::new("main", 1, &[(MS, 1)])];
    let mut d = dump("alert", 10_000 * MS, &spans);
    // Flat 100 MiB: no spike, no trend; but the user's limit is 80 MiB.
    timeline(&mut d, 500, |_| 100 * MIB, 10.0, 20);
    d.config.rss_alert_bytes = Some(80 * MIB);
    d.alerts.push(Alert {
        t_ms: 500,
        kind: AlertKind::Rss,
        value: (100 * MIB) as f64,
        threshold: (80 * MIB) as f64,
        message: "rss".into(),
    });
    let a = analyze(&d.clone().into(), &Config::default());
    let f = a
        .findings
        .iter()
        .find(|f| f.class == Class::ProcessMemory)
        .expect("an RSS alert is a finding");
    // 20 MiB of 100 MiB above the limit.
    assert!((f.cost_share - 0.2).abs() < 1e-9, "{}", f.cost_share);
    assert!(f.summary.contains("80.0 MiB threshold"), "{}", f.summary);

    d.alerts.clear();
    let a = analyze(&d.clone().into(), &Config::default());
    assert!(a.findings.iter().all(|f| f.class != Class::ProcessMemory));
}

#[test]
fn memory_pressure_is_worded_against_the_limit() {
    let spans = [Span::new("main", 1, &[(MS, 1)])];
    let mut d = dump("pressed", 60_000 * MS, &spans);
    // Flat RSS: no spike, no alert; but 415 MiB is 81% of a 512 MiB
    // container limit, 12 s in WARNING.
    timeline(&mut d, 500, |_| 415 * MIB, 10.0, 20);
    d.memory_pressure = Some(
        serde_json::from_value(serde_json::json!({
            "limit_bytes": 512 * MIB,
            "limit_source": "cgroup_v2",
            "thresholds": [0.70, 0.85, 0.95],
            "hysteresis": 0.02,
            "level": "warning",
            "peak_level": "warning",
            "peak_rss_bytes": 415 * MIB,
            "time_in_level_ms": [48_000, 12_000, 0, 0],
            "transitions": [{"t_ms": 48_000, "from": "normal", "to": "warning", "rss_bytes": 415 * MIB}],
            "transitions_dropped": 0,
            "callback_events_dropped": 0
        }))
        .unwrap(),
    );
    let a = analyze(&d.clone().into(), &Config::default());
    let f = a
        .findings
        .iter()
        .find(|f| f.class == Class::ProcessMemory)
        .expect("time in WARNING is a finding");
    assert_eq!(
        f.summary,
        "peak 81.1% of the container's 512 MiB limit, 12.0 s in WARNING"
    );
    // What must go to stay below 70%: (415 - 358.4) / 415 of peak memory.
    let want = (415.0 - 0.70 * 512.0) / 415.0;
    assert!((f.cost_share - want).abs() < 1e-6, "{}", f.cost_share);
    let plan = perf_report::Report::build(&d.clone().into(), &Config::default());
    let text = perf_report::render::render(
        &plan,
        perf_report::render::Format::Text,
        perf_report::render::ReportKind::Full,
        &Default::default(),
    );
    assert!(text.contains("on_memory_pressure"), "{text}");

    // Never above NORMAL: no finding from flat RSS.
    if let Some(m) = d.memory_pressure.as_mut() {
        m.peak_level = perf_layer::dump::PressureLevel::Normal;
    }
    let a = analyze(&d.into(), &Config::default());
    assert!(a.findings.iter().all(|f| f.class != Class::ProcessMemory));
}

#[test]
fn instrumentation_overhead_lowers_a_hot_spots_confidence() {
    let spans = [
        Span::new("main", 1, &[(100 * MS, 1)]).self_time(&[(10 * MS, 1)]),
        Span::new("tiny", 2, &[(20 * US, 1_000)]),
        Span::new("rest", 3, &[(70 * MS, 1)]),
    ];
    let mut d = dump("overhead", 100 * MS, &spans);
    let before = analyze(&d.clone().into(), &Config::default());
    let tiny = |a: &perf_report::Analysis| {
        a.findings
            .iter()
            .find(|f| f.location.as_ref().is_some_and(|l| l.name == "tiny"))
            .map(|f| f.confidence)
            .unwrap()
    };
    assert!((tiny(&before) - 0.95).abs() < 1e-9);
    // Half of each 20 µs call is the layer's own cost.
    d.overhead.per_span_ns = 10_000.0;
    let after = analyze(&d.clone().into(), &Config::default());
    assert!((tiny(&after) - 0.475).abs() < 1e-6, "{}", tiny(&after));
}
