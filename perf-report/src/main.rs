//! The `perf-report` binary: parse arguments, call the library, map the
//! result to an exit code (0 clean, 1 over the bar, 2 error).

use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result, anyhow};
use clap::Parser as _;
use perf_report::diff::{Axis, DiffOptions, diff};
use perf_report::flamegraph;
use perf_report::load::{LoadOptions, load_path, load_paths};
use perf_report::render::{Format, RenderOptions, render, render_diff};
use perf_report::sanitize::one_line;
use perf_report::{Config, Report};

mod cli;
#[cfg(feature = "history")]
mod history_cmd;

use cli::{Cli, ColorArg, Command, OutputArgs};

/// Exit code for "ran, nothing over the bar".
pub(crate) const CLEAN: u8 = 0;
/// Exit code for "ran, and found something over the bar".
pub(crate) const FOUND: u8 = 1;
/// Exit code for "could not do the job".
const ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { ERROR } else { CLEAN });
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // Library errors already carry their cause in one line; print
            // it once, prefixed with the program's name.
            eprintln!("perf-report: {}", one_line(&e.to_string()));
            ExitCode::from(ERROR)
        }
    }
}

fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Some(Command::Diff(args)) => {
            let load = load_options(&args.output);
            let base = load_path(&args.base, &load)?;
            let new = load_path(&args.new, &load)?;
            let opts = DiffOptions::default().with_threshold(args.threshold / 100.0);
            let d = diff(&base, &new, &opts);
            let text = render_diff(&d, args.output.format, &render_options(&args.output));
            emit(&text, args.output.output.as_deref())?;
            // Each axis gates on its own bar: time by --fail-on-regression,
            // wait, allocation and memory by theirs.
            let gates = [
                (Axis::Time, "--fail-on-regression", args.fail_on_regression),
                (
                    Axis::Wait,
                    "--fail-on-wait-regression",
                    args.fail_on_wait_regression,
                ),
                (
                    Axis::Allocation,
                    "--fail-on-alloc-regression",
                    args.fail_on_alloc_regression,
                ),
                (
                    Axis::Memory,
                    "--fail-on-memory-regression",
                    args.fail_on_memory_regression,
                ),
            ];
            let mut found = CLEAN;
            let material = args.min_regression_share / 100.0;
            for (axis, flag, pct) in gates {
                let Some(pct) = pct else { continue };
                let mut tripped = Vec::new();
                let mut small = Vec::new();
                for (c, r) in d.regressions(axis, pct / 100.0) {
                    let line = format!(
                        "{} ({}) regressed {} on {axis}",
                        c.location.label,
                        c.location.source(),
                        perf_report::units::change(r)
                    );
                    // Time is gated by what it adds to the run; a large
                    // change on a negligible span is listed, not failed.
                    let added = d.added_time_share(c);
                    if axis == Axis::Time && added < material {
                        small.push(format!(
                            "{line}, adding {} of all self time in spans",
                            perf_report::units::pct(added.max(0.0))
                        ));
                    } else if axis == Axis::Time {
                        tripped.push(format!(
                            "{line}, adding {} of all self time in spans",
                            perf_report::units::pct(added)
                        ));
                    } else {
                        tripped.push(line);
                    }
                }
                if !small.is_empty() {
                    eprintln!(
                        "perf-report: {flag} {pct}: below --min-regression-share {} (not failing): {}",
                        args.min_regression_share,
                        one_line(&small.join("; "))
                    );
                }
                if !tripped.is_empty() {
                    let gate = if axis == Axis::Time {
                        format!(
                            "{flag} {pct} (and at least {}% of the run's self time in spans)",
                            args.min_regression_share
                        )
                    } else {
                        format!("{flag} {pct}")
                    };
                    eprintln!("perf-report: {gate}: {}", one_line(&tripped.join("; ")));
                    found = FOUND;
                }
            }
            Ok(found)
        }
        Some(Command::Flamegraph(args)) => {
            let dump = load_paths(
                &args.dumps,
                &LoadOptions::default().with_max_bytes(args.max_size),
            )?;
            let mut out = Vec::new();
            if args.folded {
                for line in flamegraph::folded_stacks(&dump) {
                    out.extend_from_slice(line.as_bytes());
                    out.push(b'\n');
                }
            } else {
                let source = args
                    .dumps
                    .first()
                    .map_or_else(String::new, |p| p.display().to_string());
                flamegraph::flamegraph_svg(&dump, &mut out)
                    .map_err(|e| anyhow!("{source}: {e}"))?;
            }
            emit_bytes(&out, args.output.as_deref())?;
            Ok(CLEAN)
        }
        #[cfg(feature = "history")]
        Some(Command::Record(args)) => history_cmd::record(args),
        #[cfg(feature = "history")]
        Some(Command::History(args)) => history_cmd::history(args),
        #[cfg(feature = "history")]
        Some(Command::Check(args)) => history_cmd::check_cmd(args),
        #[cfg(feature = "serve")]
        Some(Command::Serve(args)) => serve_cmd(args),
        #[cfg(feature = "live")]
        Some(Command::Live(args)) => live_cmd(&args),
        None => {
            let args = cli.report;
            let dump = load_paths(&args.dumps, &load_options(&args.output))?;
            let config = match &args.config {
                Some(path) => read_config(path)?,
                None => Config::default(),
            };
            let report = Report::build(&dump, &config);
            let text = render(
                &report,
                args.output.format,
                args.kind,
                &render_options(&args.output),
            );
            emit(&text, args.output.output.as_deref())?;
            let inputs = names(&args.dumps);
            if report.analysis.totals.calls == 0 {
                eprintln!(
                    "perf-report: warning: {inputs} recorded no spans; a filter (RUST_LOG, an EnvFilter or a per-layer filter) may have disabled them all, the layer may not be in the subscriber that is in use, or the dump was taken before any span closed"
                );
                if let Some(bar) = args.fail_on {
                    eprintln!(
                        "perf-report: --fail-on {bar}: there is nothing to judge in a dump without spans"
                    );
                    return Ok(FOUND);
                }
            }
            let Some(bar) = args.fail_on else {
                return Ok(CLEAN);
            };
            let tripped: Vec<String> = report
                .analysis
                .findings
                .iter()
                .filter(|f| f.severity >= bar)
                .map(|f| {
                    let subject = match &f.location {
                        Some(l) => format!("{} ({})", l.label, l.source()),
                        None => "the process".to_owned(),
                    };
                    format!(
                        "{} {} {} ({:.1})",
                        f.severity,
                        f.class.title(),
                        subject,
                        f.score
                    )
                })
                .collect();
            if tripped.is_empty() {
                return Ok(CLEAN);
            }
            eprintln!(
                "perf-report: --fail-on {bar}: {} finding{} at or above {bar}: {}",
                tripped.len(),
                if tripped.len() == 1 { "" } else { "s" },
                one_line(&tripped.join("; "))
            );
            Ok(FOUND)
        }
    }
}

/// Reads a JSON [`Config`]; fields left out keep their defaults.
fn read_config(path: &Path) -> Result<Config> {
    let bytes = fs::read(path).map_err(|e| {
        anyhow!(
            "{}: cannot read the config ({e}); check the path",
            path.display()
        )
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        anyhow!(
            "{}: not a valid perf-report config ({e}); see docs/report-format.md for the fields",
            path.display()
        )
    })
}

/// The inputs as a user named them, for messages.
fn names(paths: &[std::path::PathBuf]) -> String {
    let names: Vec<String> = paths
        .iter()
        .map(|p| {
            if p.as_os_str() == "-" {
                "<stdin>".to_owned()
            } else {
                p.display().to_string()
            }
        })
        .collect();
    names.join(", ")
}

fn load_options(o: &OutputArgs) -> LoadOptions {
    LoadOptions::default().with_max_bytes(o.max_size)
}

fn render_options(o: &OutputArgs) -> RenderOptions {
    let color = match o.color {
        ColorArg::Always => true,
        ColorArg::Never => false,
        // Files get no colour unless asked; stdout follows the terminal,
        // NO_COLOR and CLICOLOR(_FORCE) as anstream reads them.
        ColorArg::Auto => {
            o.output.is_none()
                && anstream::AutoStream::choice(&io::stdout()) != anstream::ColorChoice::Never
        }
    };
    // Machines reading JSON get every row unless they ask for fewer.
    let top = o.top.unwrap_or(match o.format {
        Format::Json => 0,
        _ => 10,
    });
    let width = terminal_width(o.width, o.output.is_some());
    RenderOptions::default()
        .with_color(color)
        .with_top(top)
        .with_width(width)
}

/// The width to fit text to: `--width` (0 for none); else, writing to a
/// terminal, its width; to a pipe, the width a shell exports; to a file,
/// none.
pub(crate) fn terminal_width(asked: Option<usize>, to_file: bool) -> Option<usize> {
    match asked {
        Some(0) => None,
        Some(w) => Some(w),
        None if !to_file => terminal_size::terminal_size_of(io::stdout())
            .map(|(w, _)| usize::from(w.0))
            .or_else(|| std::env::var("COLUMNS").ok()?.trim().parse().ok()),
        None => None,
    }
}

/// Serves the history until Ctrl-C or SIGTERM.
#[cfg(feature = "serve")]
fn serve_cmd(args: cli::ServeArgs) -> Result<u8> {
    let path = history_cmd::db_path(&args.db);
    if !args.addr.ip().is_loopback() {
        eprintln!(
            "perf-report: serve: listening on {}, beyond this machine: the API has no authentication",
            args.addr
        );
    }
    let options = perf_report::serve::ServeOptions::new(path)
        .with_max_body(args.max_size)
        .with_queue(args.queue);
    let options = match &args.live {
        Some(addr) => options.with_live(addr),
        None => options,
    };
    perf_report::serve::run_blocking(args.addr, options, |addr| {
        eprintln!("perf-report: serving http://{addr}/ (Ctrl-C to stop)");
    })?;
    Ok(CLEAN)
}

/// Watches a running process until `q`.
#[cfg(feature = "live")]
fn live_cmd(args: &cli::LiveArgs) -> Result<u8> {
    if !(args.interval.is_finite() && (0.1..=3600.0).contains(&args.interval)) {
        return Err(anyhow!(
            "--interval {} is not between 0.1 and 3600 seconds",
            args.interval
        ));
    }
    let mut opts = perf_report::live::LiveOptions::new(&args.addr)
        .with_interval(std::time::Duration::from_secs_f64(args.interval));
    if let Some(path) = &args.record {
        opts = opts.with_record(path);
    }
    if args.once {
        opts = opts.once();
    }
    perf_report::live::run(&opts)?;
    Ok(CLEAN)
}

/// Writes the report; a closed pipe (`perf-report x | head`) is not an error.
pub(crate) fn emit(text: &str, output: Option<&Path>) -> Result<()> {
    emit_bytes(text.as_bytes(), output)
}

fn emit_bytes(bytes: &[u8], output: Option<&Path>) -> Result<()> {
    match output {
        Some(path) => fs::write(path, bytes).map_err(|e| {
            anyhow!(
                "{}: cannot write the report ({e}); check that the directory exists and is writable",
                path.display()
            )
        }),
        None => {
            let mut out = io::stdout().lock();
            match out.write_all(bytes).and_then(|()| out.flush()) {
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
                other => other.context("cannot write to standard output"),
            }
        }
    }
}
