//! Getting the data out: snapshots, dumps, and the dump-on-drop guard.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::dump::{Dump, DumpWriteError};
use crate::profiler::Profiler;

/// A cheap-to-clone handle to the data a [`PerfLayer`](crate::PerfLayer)
/// records. Snapshots and dumps never stop recording.
///
/// ```
/// use tracing_subscriber::prelude::*;
///
/// let dir = tempfile::tempdir().unwrap();
/// let (layer, handle) = perf_layer::PerfLayer::builder()
///     .output_path(dir.path().join("dump.json"))
///     .without_sampler()
///     .build()
///     .unwrap();
/// let _default = tracing_subscriber::registry().with(layer).set_default();
/// tracing::info_span!("step").in_scope(|| {});
/// let path = handle.write_dump().unwrap();
/// let dump = perf_layer::dump::Dump::from_slice(&std::fs::read(path).unwrap()).unwrap();
/// assert_eq!(dump.callsites.len(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct PerfHandle {
    profiler: Arc<Profiler>,
}

impl PerfHandle {
    pub(crate) fn new(profiler: Arc<Profiler>) -> Self {
        Self { profiler }
    }

    /// The address the Prometheus endpoint listens on (feature
    /// `prometheus`), `None` without one.
    #[cfg(feature = "prometheus")]
    pub fn prometheus_addr(&self) -> Option<std::net::SocketAddr> {
        self.profiler.prometheus_addr.get().copied()
    }

    /// Everything recorded so far. Spans still open are not included; their
    /// callsites appear once their first span closes.
    pub fn snapshot(&self) -> Dump {
        let dump = self.profiler.snapshot();
        self.profiler.mark_taken_out();
        dump
    }

    /// Where [`write_dump`](Self::write_dump) writes.
    pub fn output_path(&self) -> &Path {
        &self.profiler.config.output_path
    }

    /// Writes a snapshot to the configured output path, atomically, and
    /// returns that path.
    ///
    /// # Errors
    /// [`DumpWriteError`] when the file cannot be written; the previous dump
    /// at that path, if any, is left whole.
    pub fn write_dump(&self) -> Result<PathBuf, DumpWriteError> {
        let path = self.output_path().to_owned();
        self.profiler.write_dump(&path)?;
        Ok(path)
    }

    /// Writes a snapshot to `path`, atomically.
    ///
    /// # Errors
    /// As [`write_dump`](Self::write_dump).
    pub fn write_dump_to(&self, path: impl AsRef<Path>) -> Result<(), DumpWriteError> {
        self.profiler.write_dump(path.as_ref())
    }

    /// A guard that writes the dump to the output path when dropped, for
    /// the end of `main`. A failure is reported on standard error, never a panic.
    pub fn dump_on_drop(&self) -> DumpGuard {
        DumpGuard {
            handle: self.clone(),
        }
    }
}

/// Writes the dump when dropped; see [`PerfHandle::dump_on_drop`].
#[derive(Debug)]
#[must_use = "the dump is written when this guard is dropped; bind it with `let _guard = ...`"]
pub struct DumpGuard {
    handle: PerfHandle,
}

impl Drop for DumpGuard {
    fn drop(&mut self) {
        self.handle.profiler.write_final_dump();
    }
}
