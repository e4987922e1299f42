//! The terminal view: what one window shows ([`WindowView`]), and the loop
//! that fetches, subtracts, draws and answers keys ([`run`]).

use std::path::PathBuf;
use std::time::Duration;

use perf_layer::dump::{Dump, PressureLevel};

use super::client::{LiveError, fetch};
use super::window::{WindowError, window};
use crate::analyze::Severity;
use crate::{Config, LoadedDump, Report, units};

/// How `perf-report live` runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LiveOptions {
    /// The endpoint, `host:port`.
    pub addr: String,
    /// How often a snapshot is taken (1 s).
    pub interval: Duration,
    /// Where to write the last snapshot seen, as a dump, on the way out.
    pub record: Option<PathBuf>,
    /// Print one window as text and exit, instead of the terminal view.
    pub once: bool,
    /// No colour (`NO_COLOR`).
    pub no_color: bool,
}

impl LiveOptions {
    /// Watching `addr` every second.
    pub fn new(addr: impl Into<String>) -> Self {
        Self {
            addr: addr.into(),
            interval: Duration::from_secs(1),
            record: None,
            once: false,
            no_color: std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
        }
    }

    /// Snapshots every `interval`.
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Writes the last snapshot to `path` on the way out.
    pub fn with_record(mut self, path: impl Into<PathBuf>) -> Self {
        self.record = Some(path.into());
        self
    }

    /// One window as text, then exit.
    pub fn once(mut self) -> Self {
        self.once = true;
        self
    }

    /// With or without colour.
    pub fn with_color(mut self, color: bool) -> Self {
        self.no_color = !color;
        self
    }
}

/// One span in a window.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowRow {
    /// The span (with its group, `request{uri=/export}`).
    pub name: String,
    /// Spans closed per second.
    pub calls_per_s: f64,
    /// Self time in the window, ns.
    pub self_ns: u64,
    /// Its share of the window's wall time on the threads that record
    /// spans (self time over window × span threads).
    pub self_share: f64,
    /// Busy-time median and 99th percentile in the window, ns.
    pub p50_ns: u64,
    /// See `p50_ns`.
    pub p99_ns: u64,
    /// On the CPU, of the busy time timed on the CPU; `None` where not timed.
    pub on_cpu: Option<f64>,
    /// Bytes allocated while entered, per second; `None` without the
    /// counting allocator.
    pub alloc_per_s: Option<f64>,
    /// Live heap held by it now; `None` without the live heap.
    pub live_bytes: Option<u64>,
}

/// The order of the rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// Self time, most first.
    #[default]
    SelfTime,
    /// Calls per second.
    Calls,
    /// Busy p99.
    P99,
    /// Bytes allocated per second.
    Alloc,
}

impl Sort {
    fn next(self) -> Self {
        match self {
            Self::SelfTime => Self::Calls,
            Self::Calls => Self::P99,
            Self::P99 => Self::Alloc,
            Self::Alloc => Self::SelfTime,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::SelfTime => "self time",
            Self::Calls => "calls/s",
            Self::P99 => "p99",
            Self::Alloc => "alloc/s",
        }
    }

    fn sort(self, rows: &mut [WindowRow]) {
        let key = |r: &WindowRow| match self {
            Self::SelfTime => r.self_ns as f64,
            Self::Calls => r.calls_per_s,
            Self::P99 => r.p99_ns as f64,
            Self::Alloc => r.alloc_per_s.unwrap_or(0.0),
        };
        rows.sort_by(|a, b| key(b).total_cmp(&key(a)).then_with(|| a.name.cmp(&b.name)));
    }
}

/// What one window shows.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowView {
    /// The program.
    pub program: String,
    /// Its pid.
    pub pid: u32,
    /// The window's length, s.
    pub seconds: f64,
    /// The spans that closed in it, by self time.
    pub rows: Vec<WindowRow>,
    /// RSS at the end of the window, bytes.
    pub rss_bytes: Option<u64>,
    /// CPU used in the window, cores (CPU seconds per second).
    pub cpu_cores: Option<f64>,
    /// Cores the process could use.
    pub cores: Option<u32>,
    /// The memory pressure level now.
    pub pressure: Option<PressureLevel>,
    /// The window's findings, most severe first: `(severity, one line)`.
    pub findings: Vec<(Severity, String)>,
}

impl WindowView {
    /// The view of `window`, a dump of one window ([`window`]).
    pub fn of(window: &Dump) -> Self {
        let loaded = LoadedDump::from(window.clone());
        let seconds = window.run.duration_ns as f64 / 1e9;
        let per_s = |v: f64| if seconds > 0.0 { v / seconds } else { 0.0 };
        let threads = f64::from(window.run.span_threads.unwrap_or(1).max(1));
        let wall = window.run.duration_ns as f64 * threads;
        let mut rows: Vec<WindowRow> = loaded
            .callsites
            .iter()
            .map(|cs| WindowRow {
                name: crate::sanitize::one_line(&cs.name).into_owned(),
                calls_per_s: per_s(cs.calls as f64),
                self_ns: cs.self_ns.sum,
                self_share: if wall > 0.0 {
                    cs.self_ns.sum as f64 / wall
                } else {
                    0.0
                },
                p50_ns: cs.busy_ns.p50,
                p99_ns: cs.busy_ns.p99,
                on_cpu: cs
                    .cpu
                    .as_ref()
                    .filter(|c| c.busy_ns > 0)
                    .map(|c| (c.on_cpu_ns.sum as f64 / c.busy_ns as f64).min(1.0)),
                alloc_per_s: cs
                    .alloc
                    .filter(|_| window.allocations_tracked)
                    .map(|a| per_s(a.alloc_bytes as f64)),
                live_bytes: cs.heap.as_ref().map(|h| h.live_bytes),
            })
            .collect();
        Sort::SelfTime.sort(&mut rows);
        let report = Report::build(&loaded, &Config::default());
        let findings = report
            .analysis
            .findings
            .iter()
            .map(|f| {
                let what = match &f.location {
                    Some(l) => format!("{} {}", f.class.title(), l.label),
                    None => f.class.title().to_owned(),
                };
                let line = format!("{what}: {}", f.summary);
                (f.severity, crate::sanitize::one_line(&line).into_owned())
            })
            .collect();
        Self {
            program: crate::sanitize::one_line(&window.run.program).into_owned(),
            pid: window.run.pid,
            seconds,
            rows,
            rss_bytes: window.timeline.samples.last().map(|s| s.rss_bytes),
            cpu_cores: window
                .run
                .cpu_ns
                .filter(|_| window.run.duration_ns > 0)
                .map(|c| c as f64 / window.run.duration_ns as f64),
            cores: window.run.cores,
            pressure: window.memory_pressure.as_ref().map(|p| p.level),
            findings,
        }
    }

    /// The process line: `RSS 120 MiB · CPU 1.40 cores of 2 · pressure normal`.
    pub fn process_line(&self) -> String {
        let mut parts = Vec::new();
        if let Some(rss) = self.rss_bytes {
            parts.push(format!("RSS {}", units::bytes(rss as f64)));
        }
        if let Some(c) = self.cpu_cores {
            let of = self.cores.map_or(String::new(), |n| format!(" of {n}"));
            parts.push(format!("CPU {c:.2} cores{of}"));
        }
        if let Some(p) = self.pressure {
            parts.push(format!(
                "memory pressure {}",
                format!("{p:?}").to_lowercase()
            ));
        }
        if parts.is_empty() {
            "no process samples in this window".to_owned()
        } else {
            parts.join(" · ")
        }
    }

    /// The table's cells for `row`, in [`COLUMNS`] order.
    fn cells(row: &WindowRow) -> [String; 8] {
        [
            row.name.clone(),
            units::count(row.calls_per_s),
            format!("{:.1}%", row.self_share * 100.0),
            units::ns(row.p50_ns as f64),
            units::ns(row.p99_ns as f64),
            row.on_cpu
                .map_or("-".to_owned(), |s| format!("{:.0}%", s * 100.0)),
            row.alloc_per_s
                .map_or("-".to_owned(), |b| format!("{}/s", units::bytes(b))),
            row.live_bytes
                .map_or("-".to_owned(), |b| units::bytes(b as f64)),
        ]
    }

    /// The window as plain text (`--once`).
    pub fn text(&self, filter: &str) -> String {
        let mut out = format!(
            "{} (pid {}): the last {:.1} s\n{}\n\n",
            self.program,
            self.pid,
            self.seconds,
            self.process_line()
        );
        let widths = [40, 10, 8, 10, 10, 7, 12, 10];
        let line = |cells: &[String]| {
            cells
                .iter()
                .zip(widths)
                .enumerate()
                .map(|(i, (c, w))| {
                    let c = crate::sanitize::bounded(c, w);
                    if i == 0 {
                        format!("{c:<w$}")
                    } else {
                        format!("{c:>w$}")
                    }
                })
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        };
        out.push_str(&line(&COLUMNS.map(str::to_owned)));
        out.push('\n');
        for row in self.rows.iter().filter(|r| matches(r, filter)) {
            out.push_str(&line(&Self::cells(row)));
            out.push('\n');
        }
        if self.rows.is_empty() {
            out.push_str("(no span closed in this window)\n");
        }
        out.push_str(LEGEND);
        out.push('\n');
        out.push_str("\nfindings of this window:\n");
        if self.findings.is_empty() {
            out.push_str("  none\n");
        }
        for (severity, summary) in &self.findings {
            out.push_str(&format!("  [{severity}] {summary}\n"));
        }
        out
    }
}

/// What the table's shares are of, under it.
const LEGEND: &str = "self %: of the recording threads' wall time · on-CPU: of the span's busy time · alloc: bytes/s";

/// The table's header.
const COLUMNS: [&str; 8] = [
    "span",
    "calls/s",
    "self %",
    "p50",
    "p99",
    "on-CPU",
    "alloc",
    "live heap",
];

fn matches(row: &WindowRow, filter: &str) -> bool {
    filter.is_empty() || row.name.to_lowercase().contains(&filter.to_lowercase())
}

/// What the loop knows between two draws.
struct State {
    addr: String,
    last: Dump,
    view: Option<WindowView>,
    status: String,
    sort: Sort,
    filter: String,
    editing: bool,
    paused: bool,
}

impl State {
    /// Takes a snapshot and, against the last, a window.
    fn tick(&mut self) {
        match fetch(&self.addr) {
            Ok(new) => {
                match window(&self.last, &new) {
                    Ok(w) => {
                        let mut view = WindowView::of(&w);
                        self.sort.sort(&mut view.rows);
                        self.view = Some(view);
                        self.status.clear();
                    }
                    Err(WindowError::Restarted) => {
                        self.status =
                            "the process restarted; the next window starts from it".to_owned();
                    }
                    Err(WindowError::NotLater) => {}
                }
                self.last = new;
            }
            Err(e) => {
                let why = match e {
                    LiveError::Unreachable { .. } => "nothing answers: the service went away?",
                    _ => "it no longer answers as perf-layer's endpoint",
                };
                self.status = format!("retrying every second · {}: {why}", self.addr);
            }
        }
    }
}

/// Runs the view until `q` (or Ctrl-C), then writes `--record`'s file.
///
/// # Errors
/// [`LiveError`] when the first snapshot cannot be read (nothing answers,
/// or it is not perf-layer's endpoint), the terminal cannot be used, or the
/// record cannot be written.
pub fn run(opts: &LiveOptions) -> Result<(), LiveError> {
    let first = fetch(&opts.addr)?;
    let mut state = State {
        addr: opts.addr.clone(),
        last: first,
        view: None,
        status: format!("the first window in {:.0} s", opts.interval.as_secs_f64()),
        sort: Sort::default(),
        filter: String::new(),
        editing: false,
        paused: false,
    };
    if opts.once {
        std::thread::sleep(opts.interval);
        state.tick();
        match &state.view {
            Some(v) => print!("{}", v.text("")),
            None => println!("{}", state.status),
        }
    } else {
        tui::run(&mut state, opts)?;
    }
    if let Some(path) = &opts.record {
        state
            .last
            .write_atomic(path)
            .map_err(|e| LiveError::Record {
                path: path.display().to_string(),
                detail: e.to_string(),
            })?;
        eprintln!(
            "perf-report: wrote the last snapshot to {} (perf-report {} reports it)",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

mod tui {
    //! The ratatui side: raw mode and the alternate screen for the view's
    //! life (restored on the way out, on error too), keys, and drawing.

    use std::time::{Duration, Instant};

    use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
    use ratatui::Frame;
    use ratatui::layout::{Constraint, Layout};
    use ratatui::style::{Modifier, Style, Stylize};
    use ratatui::text::Line;
    use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};

    use super::{COLUMNS, LEGEND, LiveError, LiveOptions, State, WindowView, matches};
    use crate::analyze::Severity;

    /// Restores the terminal when dropped.
    struct Restore;

    impl Drop for Restore {
        fn drop(&mut self) {
            ratatui::restore();
        }
    }

    pub(super) fn run(state: &mut State, opts: &LiveOptions) -> Result<(), LiveError> {
        let mut terminal = ratatui::try_init()?;
        let _restore = Restore;
        let mut next = Instant::now() + opts.interval;
        loop {
            terminal.draw(|f| draw(f, state, opts.no_color))?;
            let wait = next.saturating_duration_since(Instant::now());
            if event::poll(wait.min(Duration::from_millis(250)))? {
                match event::read()? {
                    Event::Key(k) if k.kind == KeyEventKind::Press => {
                        let ctrl_c = k.code == KeyCode::Char('c')
                            && k.modifiers.contains(KeyModifiers::CONTROL);
                        if ctrl_c {
                            return Ok(());
                        }
                        if state.editing {
                            match k.code {
                                KeyCode::Enter => state.editing = false,
                                KeyCode::Esc => {
                                    state.editing = false;
                                    state.filter.clear();
                                }
                                KeyCode::Backspace => {
                                    state.filter.pop();
                                }
                                KeyCode::Char(c) if !c.is_control() && state.filter.len() < 64 => {
                                    state.filter.push(c);
                                }
                                _ => {}
                            }
                            continue;
                        }
                        match k.code {
                            KeyCode::Char('q') => return Ok(()),
                            KeyCode::Esc => state.filter.clear(),
                            KeyCode::Char('s') => {
                                state.sort = state.sort.next();
                                if let Some(v) = &mut state.view {
                                    state.sort.sort(&mut v.rows);
                                }
                            }
                            KeyCode::Char('p') | KeyCode::Char(' ') => {
                                state.paused = !state.paused;
                            }
                            KeyCode::Char('/') => {
                                state.editing = true;
                            }
                            _ => {}
                        }
                    }
                    // A resize is drawn at the next turn of the loop.
                    _ => {}
                }
            }
            if Instant::now() >= next {
                if !state.paused {
                    state.tick();
                }
                next = Instant::now() + opts.interval;
            }
        }
    }

    fn draw(f: &mut Frame<'_>, state: &State, no_color: bool) {
        let style = |s: Style| if no_color { Style::default() } else { s };
        let [head, process, table, findings, keys] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Min(4),
            Constraint::Length(7),
            Constraint::Length(1),
        ])
        .areas(f.area());
        let title = match &state.view {
            Some(v) => format!(
                "perf-report live {} · {} (pid {}) · the last {:.1} s · sorted by {}{}",
                state.addr,
                v.program,
                v.pid,
                v.seconds,
                state.sort.name(),
                if state.paused { " · PAUSED" } else { "" }
            ),
            None => format!("perf-report live {}", state.addr),
        };
        f.render_widget(
            Paragraph::new(Line::from(title))
                .style(style(Style::default().add_modifier(Modifier::BOLD))),
            head,
        );
        let line = if state.status.is_empty() {
            state
                .view
                .as_ref()
                .map_or(String::new(), WindowView::process_line)
        } else {
            state.status.clone()
        };
        f.render_widget(Paragraph::new(line), process);
        let rows: Vec<Row<'_>> = state
            .view
            .iter()
            .flat_map(|v| v.rows.iter())
            .filter(|r| matches(r, &state.filter))
            .map(|r| Row::new(WindowView::cells(r).map(Cell::from)))
            .collect();
        let widths = [
            Constraint::Fill(1),
            Constraint::Length(9),
            Constraint::Length(7),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(6),
            Constraint::Length(11),
            Constraint::Length(10),
        ];
        let header =
            Row::new(COLUMNS).style(style(Style::default().add_modifier(Modifier::BOLD).cyan()));
        f.render_widget(
            Table::new(rows, widths).header(header).block(
                Block::bordered()
                    .title(" spans that closed in the window ")
                    .title_bottom(format!(" {LEGEND} ")),
            ),
            table,
        );
        let lines: Vec<Line<'_>> = match &state.view {
            Some(v) if !v.findings.is_empty() => v
                .findings
                .iter()
                .take(5)
                .map(|(sev, s)| {
                    let color = match sev {
                        Severity::Critical | Severity::High => Style::default().red(),
                        Severity::Medium => Style::default().yellow(),
                        Severity::Low => Style::default(),
                    };
                    Line::from(vec![
                        ratatui::text::Span::styled(format!("[{sev}] "), style(color)),
                        ratatui::text::Span::raw(s.clone()),
                    ])
                })
                .collect(),
            Some(_) => vec![Line::from("none in this window")],
            None => vec![Line::from("waiting for the first window")],
        };
        f.render_widget(
            Paragraph::new(lines)
                .wrap(ratatui::widgets::Wrap { trim: true })
                .block(Block::bordered().title(" findings of this window ")),
            findings,
        );
        let keys_line = if state.editing {
            format!("filter: {}▏ (Enter keeps it, Esc clears)", state.filter)
        } else {
            format!(
                "q quit · s sort · / filter{} (Esc clears) · p {}",
                if state.filter.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", state.filter)
                },
                if state.paused { "resume" } else { "pause" }
            )
        };
        f.render_widget(
            Paragraph::new(keys_line).style(style(Style::default().dim())),
            keys,
        );
    }
}
