//! Memory pressure levels: the process's RSS against its real memory
//! limit, with hysteresis, and the callbacks told of each change.
//!
//! The limit is the cgroup's when the process runs in one that sets it
//! (v2 `memory.max` of its cgroup or an ancestor, else v1
//! `memory.limit_in_bytes`), else the machine's physical memory, unless the
//! builder's `memory_limit` sets it. Levels are fractions of it (70%, 85%,
//! 95% by default). A level is entered as soon as a sample reaches its
//! fraction and left only once RSS falls [`HYSTERESIS`] of the limit below
//! it, so a process hovering at a boundary does not flap.
//!
//! Each change of level is logged as a `tracing` warning under the layer's
//! target, kept in the dump, and handed to the callbacks on a thread of
//! their own through a bounded queue: a callback that blocks delays only
//! the next callbacks (later changes are dropped and counted while the
//! queue is full), one that panics is reported once and the others still
//! run. The sampler never waits for them.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::{self, SyncSender, TrySendError};

use crate::dump::{LimitSource, MemoryPressure, PressureLevel, PressureTransition};

/// How far below a level's fraction RSS must fall to leave the level, as a
/// fraction of the limit.
pub(crate) const HYSTERESIS: f64 = 0.02;

/// The most transitions kept in the dump.
const MAX_TRANSITIONS: usize = 256;

/// Changes of level waiting for the callback thread.
const QUEUE: usize = 16;

/// What a memory pressure callback is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryPressureEvent {
    /// The level entered.
    pub level: PressureLevel,
    /// The level left.
    pub previous: PressureLevel,
    /// RSS at the sample that crossed, bytes.
    pub rss_bytes: u64,
    /// The limit the levels are fractions of, bytes.
    pub limit_bytes: u64,
}

/// A callback registered with `on_memory_pressure`.
pub(crate) type Callback = Arc<dyn Fn(MemoryPressureEvent) + Send + Sync + 'static>;

/// The level state over the run.
#[derive(Debug)]
pub(crate) struct PressureState {
    limit: u64,
    source: LimitSource,
    thresholds: [f64; 3],
    level: PressureLevel,
    peak_level: PressureLevel,
    peak_rss: u64,
    time_in_level_ms: [u64; 4],
    last_t_ms: Option<u64>,
    transitions: Vec<PressureTransition>,
    transitions_dropped: u64,
    callback_events_dropped: u64,
}

impl PressureState {
    pub(crate) fn new(limit: u64, source: LimitSource, thresholds: [f64; 3]) -> Self {
        Self {
            limit: limit.max(1),
            source,
            thresholds,
            level: PressureLevel::Normal,
            peak_level: PressureLevel::Normal,
            peak_rss: 0,
            time_in_level_ms: [0; 4],
            last_t_ms: None,
            transitions: Vec::new(),
            transitions_dropped: 0,
            callback_events_dropped: 0,
        }
    }

    /// The level `rss` puts the process in, coming from `current`.
    pub(crate) fn level_for(&self, rss: u64, current: PressureLevel) -> PressureLevel {
        let share = rss as f64 / self.limit as f64;
        let reached = PressureLevel::ALL
            .iter()
            .skip(1)
            .zip(self.thresholds)
            .rfind(|&(_, t)| share >= t)
            .map(|(&l, _)| l)
            .unwrap_or(PressureLevel::Normal);
        if reached >= current {
            return reached;
        }
        // Lower: leave each level above only once clear of its fraction.
        let mut level = current;
        while level > reached {
            let index = level as usize - 1;
            if share < self.thresholds[index] - HYSTERESIS {
                level = PressureLevel::ALL[index];
            } else {
                break;
            }
        }
        level
    }

    /// Takes a sample at `t_ms`; the change of level it makes, if any.
    pub(crate) fn observe(&mut self, t_ms: u64, rss: u64) -> Option<MemoryPressureEvent> {
        if let Some(last) = self.last_t_ms {
            self.time_in_level_ms[self.level as usize] += t_ms.saturating_sub(last);
        }
        self.last_t_ms = Some(t_ms);
        self.peak_rss = self.peak_rss.max(rss);
        let next = self.level_for(rss, self.level);
        if next == self.level {
            return None;
        }
        let event = MemoryPressureEvent {
            level: next,
            previous: self.level,
            rss_bytes: rss,
            limit_bytes: self.limit,
        };
        if self.transitions.len() >= MAX_TRANSITIONS {
            self.transitions.remove(0);
            self.transitions_dropped += 1;
        }
        self.transitions.push(PressureTransition {
            t_ms,
            from: self.level,
            to: next,
            rss_bytes: rss,
        });
        self.level = next;
        self.peak_level = self.peak_level.max(next);
        Some(event)
    }

    pub(crate) fn dropped_callback_event(&mut self) {
        self.callback_events_dropped += 1;
    }

    /// The figures for a dump.
    pub(crate) fn to_dump(&self) -> MemoryPressure {
        MemoryPressure {
            limit_bytes: self.limit,
            limit_source: self.source,
            thresholds: self.thresholds,
            hysteresis: HYSTERESIS,
            level: self.level,
            peak_level: self.peak_level,
            peak_rss_bytes: self.peak_rss,
            time_in_level_ms: self.time_in_level_ms,
            transitions: self.transitions.clone(),
            transitions_dropped: self.transitions_dropped,
            callback_events_dropped: self.callback_events_dropped,
        }
    }
}

/// The callbacks' thread, fed through a bounded queue.
#[derive(Debug)]
pub(crate) struct Callbacks {
    queue: SyncSender<MemoryPressureEvent>,
}

impl Callbacks {
    /// Starts the thread that calls `callbacks`; `None` when there are none
    /// or the thread cannot start (then changes are only logged and kept).
    pub(crate) fn start(callbacks: Vec<Callback>) -> Option<Self> {
        if callbacks.is_empty() {
            return None;
        }
        let (queue, events) = mpsc::sync_channel::<MemoryPressureEvent>(QUEUE);
        std::thread::Builder::new()
            .name("perf-layer-pressure".to_owned())
            .spawn(move || {
                let mut panicked = vec![false; callbacks.len()];
                for event in events {
                    for (callback, panicked) in callbacks.iter().zip(&mut panicked) {
                        let call = AssertUnwindSafe(|| callback(event));
                        if catch_unwind(call).is_err() && !*panicked {
                            *panicked = true;
                            eprintln!(
                                "perf-layer: a memory pressure callback panicked at the change to {}; the other callbacks, and this one at later changes, still run",
                                event.level
                            );
                        }
                    }
                }
            })
            .ok()
            .map(|_| Self { queue })
    }

    /// Hands `event` to the thread; `false` when its queue is full.
    pub(crate) fn deliver(&self, event: MemoryPressureEvent) -> bool {
        match self.queue.try_send(event) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => true,
            Err(TrySendError::Full(_)) => false,
        }
    }
}

/// The memory limit and where it came from: the cgroup's, else the
/// machine's physical memory.
pub(crate) fn detect_limit() -> Option<(u64, LimitSource)> {
    if let Some(found) = cgroup::limit() {
        return Some(found);
    }
    let mut system = sysinfo::System::new();
    system.refresh_memory();
    let total = system.total_memory();
    (total > 0).then_some((total, LimitSource::Physical))
}

/// Reading the cgroup's memory limit.
pub(crate) mod cgroup {
    use std::path::{Path, PathBuf};

    use crate::dump::LimitSource;

    /// A limit this large or larger means none (cgroup v1 writes the largest
    /// page-aligned `i64`).
    const UNLIMITED: u64 = 1 << 60;

    /// The process's cgroup paths from `/proc/self/cgroup`: the v2 path
    /// (`0::/path`) and the v1 memory controller's (`N:memory:/path`).
    pub(crate) fn paths(text: &str) -> (Option<String>, Option<String>) {
        let (mut v2, mut v1) = (None, None);
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(id), Some(controllers), Some(path)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if id == "0" && controllers.is_empty() {
                v2 = Some(path.to_owned());
            } else if controllers.split(',').any(|c| c == "memory") {
                v1 = Some(path.to_owned());
            }
        }
        (v2, v1)
    }

    /// A limit file's value: `None` for `max` or an unlimited figure.
    pub(crate) fn parse_limit(text: &str) -> Option<u64> {
        let t = text.trim();
        if t == "max" {
            return None;
        }
        t.parse::<u64>().ok().filter(|&v| v > 0 && v < UNLIMITED)
    }

    /// The smallest v2 `memory.max` from `dir` up to `root`.
    pub(crate) fn v2_limit(root: &Path, cgroup: &str) -> Option<u64> {
        let mut dir = root.join(cgroup.trim_start_matches('/'));
        let mut best: Option<u64> = None;
        loop {
            if let Some(v) = read(&dir.join("memory.max")).and_then(|t| parse_limit(&t)) {
                best = Some(best.map_or(v, |b| b.min(v)));
            }
            if dir == root || !dir.pop() || !dir.starts_with(root) {
                break;
            }
        }
        best
    }

    /// The v1 `memory.limit_in_bytes` of the process's memory cgroup, or of
    /// the hierarchy's root.
    pub(crate) fn v1_limit(root: &Path, cgroup: &str) -> Option<u64> {
        let mount = root.join("memory");
        [mount.join(cgroup.trim_start_matches('/')), mount]
            .iter()
            .find_map(|dir| read(&dir.join("memory.limit_in_bytes")).and_then(|t| parse_limit(&t)))
    }

    fn read(path: &Path) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }

    /// This process's cgroup memory limit, if one is set.
    pub(crate) fn limit() -> Option<(u64, LimitSource)> {
        let text = read(Path::new("/proc/self/cgroup"))?;
        let root = PathBuf::from("/sys/fs/cgroup");
        let (v2, v1) = paths(&text);
        if let Some(v) = v2.as_deref().and_then(|p| v2_limit(&root, p)) {
            return Some((v, LimitSource::CgroupV2));
        }
        v1.as_deref()
            .and_then(|p| v1_limit(&root, p))
            .map(|v| (v, LimitSource::CgroupV1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn state() -> PressureState {
        PressureState::new(100 * MIB, LimitSource::Configured, [0.70, 0.85, 0.95])
    }

    #[test]
    fn levels_rise_at_once_and_fall_past_the_hysteresis() {
        let mut s = state();
        let mut at = 0;
        let mut step = |s: &mut PressureState, rss_mib: u64| {
            at += 1_000;
            s.observe(at, rss_mib * MIB).map(|e| e.level)
        };
        assert_eq!(step(&mut s, 50), None);
        assert_eq!(step(&mut s, 72), Some(PressureLevel::Warning));
        // Hovering at the boundary does not flap.
        assert_eq!(step(&mut s, 69), None);
        assert_eq!(step(&mut s, 71), None);
        assert_eq!(step(&mut s, 69), None);
        // Straight to critical.
        assert_eq!(step(&mut s, 96), Some(PressureLevel::Critical));
        // Down one level at a time only past each level's hysteresis: 94%
        // stays critical, 92% is emergency.
        assert_eq!(step(&mut s, 94), None);
        assert_eq!(step(&mut s, 92), Some(PressureLevel::Emergency));
        // A fall below everything leaves every level at once.
        assert_eq!(step(&mut s, 10), Some(PressureLevel::Normal));
        let d = s.to_dump();
        assert_eq!(d.peak_level, PressureLevel::Critical);
        assert_eq!(d.peak_rss_bytes, 96 * MIB);
        assert_eq!(d.transitions.len(), 4);
        assert_eq!(
            d.time_in_level_ms.iter().sum::<u64>(),
            8_000,
            "first to last of nine samples a second apart"
        );
        assert_eq!(d.time_in_level_ms[1], 4_000, "warning from 72% to the jump");
    }

    #[test]
    fn cgroup_files_parse() {
        let v2 = "0::/system.slice/app.service\n";
        assert_eq!(
            cgroup::paths(v2),
            (Some("/system.slice/app.service".to_owned()), None)
        );
        let v1 = "12:memory:/docker/abc\n11:cpu,cpuacct:/docker/abc\n";
        assert_eq!(cgroup::paths(v1), (None, Some("/docker/abc".to_owned())));
        let hybrid = "1:name=systemd:/x\n0::/user.slice\n4:memory:/user.slice\n";
        assert_eq!(
            cgroup::paths(hybrid),
            (
                Some("/user.slice".to_owned()),
                Some("/user.slice".to_owned())
            )
        );
        assert_eq!(cgroup::parse_limit("536870912\n"), Some(512 * MIB));
        assert_eq!(cgroup::parse_limit("max\n"), None);
        assert_eq!(
            cgroup::parse_limit("9223372036854771712"),
            None,
            "v1 unlimited"
        );
        assert_eq!(cgroup::parse_limit("0"), None);
        assert_eq!(cgroup::parse_limit("garbage"), None);
    }

    #[test]
    fn the_smallest_limit_up_the_cgroup_tree_wins() {
        let root = tempfile::tempdir().unwrap();
        let leaf = root.path().join("a/b");
        std::fs::create_dir_all(&leaf).unwrap();
        std::fs::write(leaf.join("memory.max"), "max\n").unwrap();
        std::fs::write(root.path().join("a/memory.max"), format!("{}\n", 256 * MIB)).unwrap();
        assert_eq!(cgroup::v2_limit(root.path(), "/a/b"), Some(256 * MIB));
        std::fs::write(leaf.join("memory.max"), format!("{}\n", 64 * MIB)).unwrap();
        assert_eq!(cgroup::v2_limit(root.path(), "/a/b"), Some(64 * MIB));
        assert_eq!(cgroup::v2_limit(root.path(), "/elsewhere"), None);
        // v1: the process's group, else the hierarchy root.
        let v1 = root.path().join("memory/docker/x");
        std::fs::create_dir_all(&v1).unwrap();
        std::fs::write(
            root.path().join("memory/memory.limit_in_bytes"),
            "9223372036854771712",
        )
        .unwrap();
        assert_eq!(cgroup::v1_limit(root.path(), "/docker/x"), None);
        std::fs::write(v1.join("memory.limit_in_bytes"), format!("{}", 128 * MIB)).unwrap();
        assert_eq!(cgroup::v1_limit(root.path(), "/docker/x"), Some(128 * MIB));
    }

    #[test]
    fn a_panicking_or_blocking_callback_does_not_hold_the_caller() {
        let (seen, got) = mpsc::channel::<PressureLevel>();
        let (release, wait) = mpsc::channel::<()>();
        let wait = std::sync::Mutex::new(wait);
        let callbacks: Vec<Callback> = vec![
            Arc::new(|_| panic!("a callback that panics")),
            Arc::new(move |e: MemoryPressureEvent| {
                let _ = seen.send(e.level);
                // Blocks until the test releases it.
                let _ = wait.lock().unwrap().recv();
            }),
        ];
        let c = Callbacks::start(callbacks).unwrap();
        let event = |level| MemoryPressureEvent {
            level,
            previous: PressureLevel::Normal,
            rss_bytes: 1,
            limit_bytes: 2,
        };
        assert!(c.deliver(event(PressureLevel::Warning)));
        assert_eq!(got.recv().unwrap(), PressureLevel::Warning);
        // The second callback is blocked: the queue fills, and delivering
        // never waits.
        let start = std::time::Instant::now();
        let delivered = (0..QUEUE + 4)
            .filter(|_| c.deliver(event(PressureLevel::Critical)))
            .count();
        assert!(delivered <= QUEUE && delivered + 4 >= QUEUE, "{delivered}");
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
        for _ in 0..=QUEUE + 4 {
            let _ = release.send(());
        }
        assert_eq!(
            got.recv().unwrap(),
            PressureLevel::Critical,
            "still called after a panic"
        );
    }
}
