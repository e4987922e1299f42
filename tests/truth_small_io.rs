//! A file written a line at a time beside computing: two threads each
//! loop on `score` (about 2 ms of computing) then `export` (2,000 short
//! lines, one `write_all` a line on a bare `File`). A fresh program of
//! this shape (8 ms of `score`) read `export` a hot spot whose fixes were
//! the general ones: the process's kernel share was diluted by the
//! computing threads. A `BufWriter` gave 43% more rounds. The watch now
//! reads each thread's system calls where a span stayed innermost on the
//! CPU: `export`'s first fix is to buffer its writes, and buffered it is
//! not told so. Alone in its binary: the process's CPU is its.

#![cfg(target_os = "linux")]

use std::io::{BufWriter, Write};
use std::time::{Duration, Instant};

use perf_report::Report;
use perf_report::analyze::Class;
use tracing::info_span;

mod cpu_support;

use cpu_support::{calibrate, fixed_work};

fn rounds(dir: &std::path::Path, score: u64, buffered: bool) -> perf_layer::dump::Dump {
    cpu_support::run(20, || {
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        let until = Instant::now() + Duration::from_millis(1_200);
        std::thread::scope(|s| {
            for t in 0..2 {
                let dispatch = dispatch.clone();
                let path = dir.join(format!("export-{t}.csv"));
                s.spawn(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        let mut n = 0u64;
                        while Instant::now() < until {
                            info_span!("score").in_scope(|| fixed_work(score));
                            info_span!("export").in_scope(|| {
                                let file = std::fs::File::create(&path).unwrap();
                                let mut out: Box<dyn Write> = if buffered {
                                    Box::new(BufWriter::new(file))
                                } else {
                                    Box::new(file)
                                };
                                for i in 0..2_000u64 {
                                    out.write_all(format!("{n},{i},{}\n", i * 7).as_bytes())
                                        .unwrap();
                                }
                                out.flush().unwrap();
                            });
                            n += 1;
                        }
                    })
                });
            }
        });
    })
}

/// The plan's hot spot step on `export`, if any.
fn export_step(report: &Report) -> Option<&perf_report::plan::Step> {
    report.plan.steps.iter().find(|s| {
        s.class == Class::HotSpot && s.location.as_ref().is_some_and(|l| l.name == "export")
    })
}

#[test]
fn a_file_written_a_line_at_a_time_is_told_to_buffer_and_a_buffered_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let score = calibrate(Duration::from_millis(2));

    let dump = rounds(dir.path(), score, false);
    let io = dump
        .callsites
        .iter()
        .find(|c| c.name == "export")
        .and_then(|c| c.watched_io)
        .expect("the watch read `export`'s system calls");
    let (per_second, bytes) = io.writes_per_cpu_second().expect("writes");
    // A line is 10 to 16 bytes; a write every few microseconds of CPU.
    assert!(bytes < 20.0, "{io:?}");
    assert!(per_second > 50_000.0, "{io:?}");
    let report = Report::build(&dump.into(), &Default::default());
    let step = export_step(&report).unwrap_or_else(|| panic!("{:#?}", report.plan.steps));
    assert!(
        step.fixes[0].starts_with("Buffer its writes"),
        "{:?}",
        step.fixes
    );
    assert!(
        step.summary.contains("`write` system call every"),
        "{}",
        step.summary
    );

    let dump = rounds(dir.path(), score, true);
    let report = Report::build(&dump.into(), &Default::default());
    let told = report
        .plan
        .steps
        .iter()
        .flat_map(|s| s.fixes.iter())
        .any(|f| f.starts_with("Buffer its"));
    assert!(!told, "{:#?}", report.plan.steps);
}
