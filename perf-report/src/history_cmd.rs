//! The history's commands: `record`, `history`, `check`, and `serve`'s
//! start-up. Parsing is in `cli.rs`; the work is library calls.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};
use perf_report::history::check::{CheckOptions, check};
use perf_report::history::{
    DEFAULT_DB, ENV_DB, Label, RunFilter, Store, parse_label, render as view, trend,
};
use perf_report::load::{LoadOptions, load_path};
use perf_report::render::RenderOptions;
use perf_report::sanitize::one_line;

use crate::cli::{CheckArgs, DbArgs, HistoryAction, HistoryArgs, RecordArgs};
use crate::{CLEAN, FOUND, emit, terminal_width};

/// The database: `--db`, else `$PERF_REPORT_DB`, else `perf-history.db`.
pub(crate) fn db_path(args: &DbArgs) -> PathBuf {
    args.db.clone().unwrap_or_else(|| {
        std::env::var_os(ENV_DB)
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_DB), PathBuf::from)
    })
}

fn labels(raw: &[String]) -> Result<Vec<Label>> {
    raw.iter()
        .map(|l| parse_label(l).map_err(|e| anyhow!("{e}")))
        .collect()
}

pub(crate) fn record(args: RecordArgs) -> Result<u8> {
    let labels = labels(&args.labels)?;
    let path = db_path(&args.db);
    let mut store = Store::open(&path)?;
    let load = LoadOptions::default().with_max_bytes(args.max_size);
    for dump_path in &args.dumps {
        let dump = load_path(dump_path, &load)?;
        let outcome = store.record(&dump, &labels)?;
        eprintln!(
            "perf-report: {}: {} as run {} in {}",
            name(dump_path),
            if outcome.created {
                "stored"
            } else {
                "already stored"
            },
            outcome.id,
            path.display()
        );
        for (key, asked, kept) in &outcome.conflicting_labels {
            eprintln!(
                "perf-report: label {key}={asked} not applied: run {} already has {key}={kept} (a key holds one value; the first is kept)",
                outcome.id
            );
        }
    }
    if args.keep_runs.is_some() || args.keep_days.is_some() {
        prune(&mut store, args.keep_runs, args.keep_days)?;
    }
    Ok(CLEAN)
}

fn prune(store: &mut Store, keep_runs: Option<usize>, keep_days: Option<u64>) -> Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let deleted = store.prune(keep_runs, keep_days, now)?;
    eprintln!(
        "perf-report: {}: pruned {deleted} run{}",
        store.path().display(),
        if deleted == 1 { "" } else { "s" }
    );
    Ok(())
}

pub(crate) fn history(args: HistoryArgs) -> Result<u8> {
    if let Some(HistoryAction::Prune(p)) = args.action {
        if p.keep_runs.is_none() && p.keep_days.is_none() {
            return Err(anyhow!(
                "history prune: say what to keep with --keep-runs N or --keep-days D"
            ));
        }
        let mut store = Store::open_existing(db_path(&p.db))?;
        prune(&mut store, p.keep_runs, p.keep_days)?;
        return Ok(CLEAN);
    }
    let store = Store::open_existing(db_path(&args.db))?;
    let mut filter = RunFilter::default().labels(&labels(&args.labels)?);
    if let Some(program) = &args.program {
        filter = filter.program(program);
    }
    if let Some(n) = args.last {
        filter = filter.newest(n);
    }
    let opts = RenderOptions::default().with_width(terminal_width(args.width, false));
    let out = match &args.span {
        Some(span) => view::trends(&trend::trends(&store, span, &filter)?, args.format, &opts),
        None => view::runs(&store.runs(&filter)?, args.format, &opts),
    };
    emit(&out, None)?;
    Ok(CLEAN)
}

pub(crate) fn check_cmd(args: CheckArgs) -> Result<u8> {
    let store = Store::open_existing(db_path(&args.db))?;
    let dump = load_path(
        &args.dump,
        &LoadOptions::default().with_max_bytes(args.max_size),
    )?;
    let opts = CheckOptions::default()
        .against(&labels(&args.against)?)
        .with_time_threshold(args.fail_on_regression / 100.0)
        .with_alloc_threshold(args.fail_on_alloc_regression / 100.0)
        .with_window(args.window);
    let report = check(&store, &dump, &opts)?;
    let render = RenderOptions::default().with_width(terminal_width(args.width, false));
    let out = view::check(&report, args.format, &render);
    emit(&out, None)?;
    if report.history.len() < opts.min_runs {
        eprintln!(
            "perf-report: warning: {}: only {} comparable runs of {} on this machine{} (at least {} are needed); nothing was judged",
            store.path().display(),
            report.history.len(),
            one_line(&report.program),
            if opts.against.is_empty() {
                String::new()
            } else {
                format!(" with {}", args.against.join(", "))
            },
            opts.min_runs
        );
        return Ok(CLEAN);
    }
    let tripped: Vec<String> = report
        .regressions()
        .map(|c| format!("{} {}: {}", c.identity, c.metric, c.reason))
        .collect();
    if tripped.is_empty() {
        return Ok(CLEAN);
    }
    eprintln!(
        "perf-report: check: {} regression{} against {} runs: {}",
        tripped.len(),
        if tripped.len() == 1 { "" } else { "s" },
        report.history.len(),
        one_line(&tripped.join("; "))
    );
    Ok(FOUND)
}

fn name(p: &Path) -> String {
    if p.as_os_str() == "-" {
        "<stdin>".to_owned()
    } else {
        p.display().to_string()
    }
}
