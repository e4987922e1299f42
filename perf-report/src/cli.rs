//! The command line: parsing only. Everything it does is a library call.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use perf_report::Severity;
use perf_report::render::{Format, ReportKind};

const EXAMPLES: &str = "\
Examples:
  # Profile a run, then read the plan in the terminal
  cargo run --release --example pipeline && perf-report dump.json

  # Merge the dumps of several processes of one service
  perf-report host-a.json host-b.json host-c.json

  # Read a dump from standard input, write Markdown for a pull request
  cat dump.json | perf-report - --format markdown --output report.md

  # CI: fail when anything high or critical is found
  perf-report dump.json --kind summary --fail-on high

  # Stricter thresholds from a file (any subset of the fields)
  echo '{\"classes\": {\"hot_spot\": {\"min_share\": 0.05}}, \"bands\": {\"critical\": 15}}' > cfg.json
  perf-report dump.json --config cfg.json

  # Where does the session's weight go (40% CPU, 40% memory, 20% frequency)?
  perf-report dump.json --kind weight --top 20

  # Compare a change against its baseline; fail on a >5% significant regression
  perf-report diff before.json after.json --fail-on-regression 5

  # Self time by call path, as a flamegraph
  perf-report flamegraph dump.json -o flame.svg

  # One self-contained HTML page with the charts
  perf-report dump.json -f html -o report.html

  # Keep runs in a history (SQLite), gate a pull request on it, serve it
  perf-report record dump.json --label branch=main
  perf-report check dump.json --against branch=main
  perf-report serve

Exit codes:
  0  success: no finding at or above --fail-on, no regression over --fail-on-regression
  1  findings at or above --fail-on (or a dump without spans under --fail-on), a
     regression over --fail-on-regression, or `check` found a regression against the
     history; standard error names what tripped
  2  error: unreadable, empty, truncated, non-JSON, too new or damaged dump; the same
     run given twice; bad arguments

Severity comes from an impact score 0-100: the percentage of the run a fix is
expected to give back, discounted by how sure the evidence is (critical >= 20,
high >= 10, medium >= 4). The formula, the diff significance rule and the JSON
schema are in docs/report-format.md.";

/// Turns perf-layer dumps into severity-ranked findings and an ordered
/// optimization plan.
#[derive(Debug, Parser)]
#[command(
    name = "perf-report",
    version,
    about,
    long_about = "Turns perf-layer dumps into severity-ranked findings (hot spots, tail latency, \
hot loops, allocation-heavy spans, leak suspects, waiting, process CPU and memory) and an \
ordered optimization plan with concrete Rust fixes and Amdahl estimates of the gain. \
Several dumps are merged losslessly; `diff` compares two; `record`, `check` and `history` \
keep runs in a history and judge a new one against it; `serve` offers the history over HTTP.",
    after_help = "Run `perf-report --help` for examples and exit codes.",
    after_long_help = EXAMPLES,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    arg_required_else_help = true
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Compare two dumps callsite by callsite on time, allocation and live
    /// memory: each regressed, improved, mixed or unchanged.
    #[command(after_long_help = DIFF_HELP)]
    Diff(DiffArgs),
    /// Draw self time by call path as a flamegraph SVG (or folded stacks).
    #[command(after_long_help = FLAMEGRAPH_HELP)]
    Flamegraph(FlamegraphArgs),
    /// Store runs in the history database (SQLite), with labels such as
    /// commit=... and branch=....
    #[cfg(feature = "history")]
    #[command(after_long_help = RECORD_HELP)]
    Record(RecordArgs),
    /// List the stored runs, or one span's trend across them with its change
    /// points; `history prune` deletes old runs.
    #[cfg(feature = "history")]
    #[command(after_long_help = HISTORY_HELP, args_conflicts_with_subcommands = true)]
    History(HistoryArgs),
    /// Judge a new run against the history of comparable runs: exit 1 when a
    /// span regressed beyond the bar and beyond the spread between runs.
    #[cfg(feature = "history")]
    #[command(after_long_help = CHECK_HELP)]
    Check(CheckArgs),
    /// Serve the history: a REST API and a dashboard, on 127.0.0.1 unless
    /// told otherwise.
    #[cfg(feature = "serve")]
    #[command(after_long_help = SERVE_HELP)]
    Serve(ServeArgs),
    /// Watch a running process: its spans, process line and findings over
    /// the last second, from perf-layer's endpoint.
    #[cfg(feature = "live")]
    #[command(after_long_help = LIVE_HELP)]
    Live(LiveArgs),
}

#[cfg(feature = "live")]
const LIVE_HELP: &str = "\
The process serves its snapshot when its layer has an endpoint:
  PerfLayer::builder().prometheus(\"127.0.0.1:9464\".parse()?)   (or PERF_LAYER_PROMETHEUS=127.0.0.1:9464)
which serves /metrics for Prometheus and /snapshot.json for this view.

Every second the view takes a snapshot and shows the window since the last
one (histograms subtract, so p50 and p99 are of that second alone): the spans
that closed in it by self time, calls/s, busy p50/p99, on-CPU share, bytes
allocated per second, live heap; RSS, CPU and memory pressure; and the
findings of that window. A span open the whole window (a connection) shows
in the window it closes in.

Keys: s sort (self time, calls/s, p99, alloc/s) · / filter by name (Enter
keeps, Esc clears) · p pause · q quit. When the service goes away the view
says so and retries every second.

Examples:
  perf-report live 127.0.0.1:9464
  perf-report live 127.0.0.1:9464 --record live.json    # then: perf-report live.json
  perf-report live 127.0.0.1:9464 --once                # one window as text

Exit codes: 0 quit, 2 error (nothing answers at ADDR, it is not perf-layer's
endpoint, or the terminal cannot be used).";

#[cfg(feature = "live")]
#[derive(Debug, Args)]
pub(crate) struct LiveArgs {
    /// The layer's endpoint, HOST:PORT (what `prometheus(ADDR)` bound).
    #[arg(value_name = "ADDR")]
    pub(crate) addr: String,

    /// Seconds between snapshots.
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    pub(crate) interval: f64,

    /// On the way out, write the last snapshot seen as a dump.
    #[arg(long, value_name = "FILE")]
    pub(crate) record: Option<PathBuf>,

    /// Print one window as text and exit (for scripts; no terminal needed).
    #[arg(long)]
    pub(crate) once: bool,
}

#[cfg(feature = "history")]
const RECORD_HELP: &str = "\
Each dump is stored once (recording the same dump again adds its new labels
only), with its whole histograms, so any later comparison is exact. Runs are
comparable when they are of the same program on the same kind of machine
(CPU model and core count).

Examples:
  perf-report record dump.json --label commit=$(git rev-parse --short HEAD) --label branch=main
  perf-report record nightly-*.json --db perf-history.db --keep-runs 200 --keep-days 90

The database: --db, else $PERF_REPORT_DB, else perf-history.db.
Exit codes: 0 stored, 2 error (a broken dump, or a database that is locked,
read-only, full, damaged or from a newer perf-report; nothing stored is lost).";

#[cfg(feature = "history")]
const HISTORY_HELP: &str = "\
Without --span: the runs, oldest first. With --span NAME (a span name or a
module::name identity): its busy p50, p99, self share and live bytes run by
run as sparklines, and the change points where a metric shifted (binary
segmentation tested by permutation; docs/report-format.md).

Examples:
  perf-report history
  perf-report history --span checksum --label branch=main
  perf-report history --format json
  perf-report history prune --keep-runs 100

Exit codes: 0, 2 error.";

#[cfg(feature = "history")]
const CHECK_HELP: &str = "\
The history is the newest --window comparable runs (same program, same kind
of machine), narrowed by --against labels. A span's metric regresses when
the change is over the bar (time: p50 and p99 of busy time, default 10%;
allocation: bytes and allocations per call, default 1%), outside the
spread between the stored runs (median and MAD, at least the program's
pooled spread for time; Student's t for a history of few runs, corrected
for testing every span at once), and, for time, the busy-time distribution
moved (a one-sided Kolmogorov-Smirnov test against the pooled history). A
p99 that some stored run already reached is not a regression, nor a rise
that is all time preempted in the new run (another process on its core).

In CI, record runs of the main branch and check pull requests against them:
  perf-report record dump.json --label branch=main          # on main
  perf-report check dump.json --against branch=main         # on a pull request

Exit codes: 0 no regression, 1 a regression (standard error names each span and
metric), 2 error. With fewer than 5 comparable runs nothing is judged (exit 0,
with a warning).";

#[cfg(feature = "serve")]
const SERVE_HELP: &str = "\
Endpoints (JSON unless said):
  GET  /                              the dashboard (HTML)
  GET  /api/status                    version, database, runs stored
  GET  /api/runs?program=&label=k=v&limit=N
  GET  /api/runs/{id}                 a run and its spans
  GET  /api/runs/{id}/report          the report (JSON); /report.html the page
  GET  /api/runs/{id}/flamegraph.svg
  GET  /api/spans/{name}/trend        the span across runs, with change points
  POST /api/runs?label=k=v            record a dump (the body), like `record`

Listens on 127.0.0.1:8731 unless --addr says otherwise; another interface only
when given explicitly. Stops cleanly on Ctrl-C or SIGTERM.

Exit codes: 0 stopped, 2 error (address in use, database).";

/// Where the history database is.
#[cfg(feature = "history")]
#[derive(Debug, Args)]
pub(crate) struct DbArgs {
    /// The history database (default: $PERF_REPORT_DB, else perf-history.db).
    #[arg(long, value_name = "PATH")]
    pub(crate) db: Option<PathBuf>,
}

#[cfg(feature = "history")]
#[derive(Debug, Args)]
pub(crate) struct RecordArgs {
    /// Dump files written by perf-layer; each is one run; - reads standard input.
    #[arg(required = true, value_name = "DUMP")]
    pub(crate) dumps: Vec<PathBuf>,

    #[command(flatten)]
    pub(crate) db: DbArgs,

    /// A label for the runs, KEY=VALUE (repeatable): commit=..., branch=...
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub(crate) labels: Vec<String>,

    /// Afterwards keep only the newest N runs of each program.
    #[arg(long, value_name = "N")]
    pub(crate) keep_runs: Option<usize>,

    /// Afterwards delete runs that started more than D days ago.
    #[arg(long, value_name = "D")]
    pub(crate) keep_days: Option<u64>,

    /// Refuse inputs larger than this (bytes, or with a KiB/MiB/GiB suffix).
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
    pub(crate) max_size: u64,
}

#[cfg(feature = "history")]
#[derive(Debug, Args)]
pub(crate) struct HistoryArgs {
    #[command(subcommand)]
    pub(crate) action: Option<HistoryAction>,

    #[command(flatten)]
    pub(crate) db: DbArgs,

    /// One span's trend: a span name, or a module::name identity.
    #[arg(long, value_name = "NAME")]
    pub(crate) span: Option<String>,

    /// Only runs of this program.
    #[arg(long, value_name = "NAME")]
    pub(crate) program: Option<String>,

    /// Only runs with this label, KEY=VALUE (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub(crate) labels: Vec<String>,

    /// Only the newest N runs.
    #[arg(long, value_name = "N")]
    pub(crate) last: Option<usize>,

    /// Output format (CSV: the tables only).
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,

    /// Fit text to N columns (0: no limit; default: the terminal, else $COLUMNS).
    #[arg(long, value_name = "N")]
    pub(crate) width: Option<usize>,
}

#[cfg(feature = "history")]
#[derive(Debug, Subcommand)]
pub(crate) enum HistoryAction {
    /// Delete old runs: beyond the newest --keep-runs of each program, or
    /// older than --keep-days.
    Prune(PruneArgs),
}

#[cfg(feature = "history")]
#[derive(Debug, Args)]
pub(crate) struct PruneArgs {
    #[command(flatten)]
    pub(crate) db: DbArgs,

    /// Keep only the newest N runs of each program.
    #[arg(long, value_name = "N")]
    pub(crate) keep_runs: Option<usize>,

    /// Delete runs that started more than D days ago.
    #[arg(long, value_name = "D")]
    pub(crate) keep_days: Option<u64>,
}

#[cfg(feature = "history")]
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The new run's dump (- for standard input).
    pub(crate) dump: PathBuf,

    #[command(flatten)]
    pub(crate) db: DbArgs,

    /// Compare only with runs carrying this label, KEY=VALUE (repeatable),
    /// e.g. branch=main.
    #[arg(long = "against", value_name = "KEY=VALUE")]
    pub(crate) against: Vec<String>,

    /// The bar for time (busy p50 and p99), percent.
    #[arg(long, value_name = "PCT", default_value_t = 10.0, value_parser = parse_pct)]
    pub(crate) fail_on_regression: f64,

    /// The bar for allocation (bytes and allocations per call), percent.
    #[arg(long, value_name = "PCT", default_value_t = 1.0, value_parser = parse_pct)]
    pub(crate) fail_on_alloc_regression: f64,

    /// How many of the newest comparable runs form the history.
    #[arg(long, value_name = "N", default_value_t = 30)]
    pub(crate) window: usize,

    /// Output format (CSV: the tables only).
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,

    /// Fit text to N columns (0: no limit; default: the terminal, else $COLUMNS).
    #[arg(long, value_name = "N")]
    pub(crate) width: Option<usize>,

    /// Refuse inputs larger than this (bytes, or with a KiB/MiB/GiB suffix).
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
    pub(crate) max_size: u64,
}

#[cfg(feature = "serve")]
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    pub(crate) db: DbArgs,

    /// Where to listen. Another interface than loopback only when given
    /// explicitly (the API has no authentication).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8731")]
    pub(crate) addr: std::net::SocketAddr,

    /// Refuse POSTed dumps larger than this (bytes, or with a KiB/MiB/GiB suffix).
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
    pub(crate) max_size: u64,

    /// Uploads that may wait for the one writer; one more gets 503 with
    /// Retry-After (each waiting upload holds its dump in memory).
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub(crate) queue: usize,

    /// Also show a live view at /live of the process whose perf-layer
    /// endpoint is ADDR (what `perf-report live ADDR` shows, in the browser).
    #[arg(long, value_name = "ADDR")]
    pub(crate) live: Option<String>,
}

const FLAMEGRAPH_HELP: &str = "\
Call paths are rebuilt from the dump's parent-to-child edges: a span's self
time is split among its callers in proportion to the busy time it spent
under each. Exact for call trees; a proportional estimate where one span is
called from several places.

Examples:
  perf-report flamegraph dump.json -o flame.svg
  perf-report flamegraph dump.json --folded > stacks.folded   # for inferno or flamegraph.pl

Exit codes: 0 drawn, 2 error (unreadable dump, nothing to draw).";

#[derive(Debug, Args)]
pub(crate) struct FlamegraphArgs {
    /// Dump files written by perf-layer; several are merged; - reads standard input.
    #[arg(required = true, value_name = "DUMP")]
    pub(crate) dumps: Vec<PathBuf>,

    /// Print folded stacks (`a;b;c <self ns>`) instead of an SVG.
    #[arg(long)]
    pub(crate) folded: bool,

    /// Write to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,

    /// Refuse inputs larger than this (bytes, or with a KiB/MiB/GiB suffix).
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
    pub(crate) max_size: u64,
}

const DIFF_HELP: &str = "\
Each callsite gets a verdict on four axes. Time: the mean busy time per call
(less the time preempted, when both dumps timed it on the CPU) grew
(shrank) by more than --threshold AND the busy-time distribution moved
the same way (a one-sided two-sample Kolmogorov-Smirnov test on the HDR
histograms at alpha 0.01, or at least two of p50/p90/p99/p99.9 beyond the
threshold in the same direction). Wait: the same rule on the idle time per
call (open but not entered: an .await on a pool, a lock, an upstream), for
a span idle at least 10% of its wall time in one of the dumps; a fix to a
wait shows here, where busy time does not move. Allocation: bytes allocated per call grew
(shrank) by more than the threshold and by at least 16 bytes. Memory: the
bytes the callsite made that are still live at the end grew (shrank) by more
than the threshold and by at least 1 MiB. Overall, a callsite that got
better on one axis and worse on another is mixed, never regressed.

Examples:
  perf-report diff before.json after.json
  perf-report diff before.json after.json --threshold 5 --fail-on-regression 10
  perf-report diff before.json after.json --format markdown --output diff.md

CI gates on each axis separately: --fail-on-regression (time),
--fail-on-wait-regression, --fail-on-alloc-regression and
--fail-on-memory-regression. When one trips, standard error names each
callsite and axis. A time regression fails only when it is material: the
time it adds is at least --min-regression-share (default 1%) of all self
time in spans of the new run; a +60% on a span that is 0.5% of the run is
listed on standard error and does not fail.

Exit codes: 0 no regression over a --fail-on-*regression bar, 1 a regression over one,
2 error.";

#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// Dump files written by perf-layer; several are merged; - reads standard input.
    #[arg(required = true, value_name = "DUMP")]
    pub(crate) dumps: Vec<PathBuf>,

    /// Which report: the full plan, a short summary, or the session-weight view.
    #[arg(long, short = 'k', value_enum, default_value_t = ReportKind::Full)]
    pub(crate) kind: ReportKind,

    /// Exit 1 when a finding at or above this severity exists.
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub(crate) fail_on: Option<Severity>,

    /// Each finding class's thresholds, gain and confidence, the scoring weights,
    /// severity bands and session weights, from a JSON file;
    /// fields left out keep their defaults (see docs/report-format.md).
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    #[command(flatten)]
    pub(crate) output: OutputArgs,
}

#[derive(Debug, Args)]
pub(crate) struct DiffArgs {
    /// The baseline dump (- for standard input).
    pub(crate) base: PathBuf,
    /// The dump to compare with it.
    pub(crate) new: PathBuf,

    /// Noise threshold in percent: smaller relative changes are unchanged.
    #[arg(long, value_name = "PCT", default_value_t = 10.0, value_parser = parse_pct)]
    pub(crate) threshold: f64,

    /// Exit 1 when a callsite's time regressed (significantly) by at least
    /// PCT percent and the time it adds is material (--min-regression-share).
    /// Time only: a span much faster that now allocates more is no time
    /// regression; gate allocation and memory with their own options.
    #[arg(long, value_name = "PCT", value_parser = parse_pct)]
    pub(crate) fail_on_regression: Option<f64>,

    /// With --fail-on-regression: a time regression fails the gate only when
    /// the time it adds (its self time per call's growth times its calls) is
    /// at least PCT percent of all self time in spans of the new run; smaller
    /// ones are listed on standard error without failing.
    #[arg(long, value_name = "PCT", default_value_t = 1.0, value_parser = parse_pct)]
    pub(crate) min_regression_share: f64,

    /// Exit 1 when a callsite's wait (mean idle time per call) grew
    /// (significantly) by at least PCT percent: a slower upstream, a
    /// smaller pool, a lock held longer.
    #[arg(long, value_name = "PCT", value_parser = parse_pct)]
    pub(crate) fail_on_wait_regression: Option<f64>,

    /// Exit 1 when a callsite's allocated bytes per call grew by at least PCT
    /// percent (and 16 bytes). Allocation counts are nearly deterministic:
    /// a tight bar (1 to 5) is safe.
    #[arg(long, value_name = "PCT", value_parser = parse_pct)]
    pub(crate) fail_on_alloc_regression: Option<f64>,

    /// Exit 1 when what a callsite made and still holds at the end grew by at
    /// least PCT percent (and 1 MiB).
    #[arg(long, value_name = "PCT", value_parser = parse_pct)]
    pub(crate) fail_on_memory_regression: Option<f64>,

    #[command(flatten)]
    pub(crate) output: OutputArgs,
}

#[derive(Debug, Args)]
pub(crate) struct OutputArgs {
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,

    /// Write the report to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,

    /// Show at most N rows of each list (findings, steps, callsites); 0 for
    /// all. Default: 10 for text and Markdown, all for JSON.
    #[arg(long, value_name = "N")]
    pub(crate) top: Option<usize>,

    /// Refuse inputs larger than this (bytes, or with a KiB/MiB/GiB suffix).
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
    pub(crate) max_size: u64,

    /// Fit text to N columns: prose wraps, tables hide their least important
    /// columns and say which; 0 for no limit. Default: the terminal's width,
    /// else $COLUMNS, else no limit. Markdown and JSON are never cut.
    #[arg(long, value_name = "N")]
    pub(crate) width: Option<usize>,

    /// Colour: auto follows NO_COLOR, CLICOLOR_FORCE and whether stdout is a terminal.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    pub(crate) color: ColorArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorArg {
    /// Colour when stdout is a terminal and NO_COLOR is unset.
    Auto,
    /// Always colour (also into --output files).
    Always,
    /// Never colour.
    Never,
}

fn parse_pct(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("`{s}` is not a percentage; write e.g. 5 or 12.5"))?;
    if !(0.0..=100_000.0).contains(&v) {
        return Err(format!("`{s}` is out of range; use 0 to 100000"));
    }
    Ok(v)
}

fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size; write e.g. 1048576, 512KiB, 256MiB or 2GiB"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("`{s}` has an unknown unit; use B, KiB, MiB or GiB")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes_and_percentages_parse() {
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
        assert_eq!(parse_pct("5%"), Ok(5.0));
        assert!(parse_pct("-1").is_err());
    }
}
