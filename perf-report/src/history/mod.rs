//! The run history: every recorded run kept in one SQLite file, so that a
//! new run is judged against the spread of many, not against one other.
//!
//! ```text
//! dump ─► Store::record ─► runs, labels, spans (summaries + whole busy histograms), the dump itself
//!                            │
//!          Store::runs / span_series ─► trends and change points (`history`)
//!          check::check ─► a new run against the window of comparable runs (`check`)
//! ```
//!
//! * [`Store`]: open (create, migrate, refuse a newer schema), record (a
//!   dump stored twice is stored once), list, read back, prune.
//! * [`fingerprint`]: which runs are comparable: the same program on the
//!   same kind of machine (CPU model and core count, never the boot id).
//! * [`changepoint`]: when a span's metric shifted across runs.
//! * [`check`]: regression gating against history.
//! * [`trend`]: a span across runs; [`render`]: all of these as outlines
//!   of the report's blocks, in any [`Format`](crate::render::Format).
//!
//! The database is SQLite through rusqlite with SQLite compiled in (no
//! system library), in WAL mode. Its schema is versioned
//! (`PRAGMA user_version`) and migrated forward on open; a database from a
//! newer perf-report is refused, never rewritten. Every error names the file
//! and says what to do; a failed write rolls back, so a run already stored
//! is never lost.
//!
//! ```
//! use perf_layer::dump::Dump;
//! use perf_report::history::Store;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let mut store = Store::open(dir.path().join("history.db")).unwrap();
//! let first = store.record(&Dump::empty("demo"), &[]).unwrap();
//! let again = store.record(&Dump::empty("demo"), &[]).unwrap();
//! assert!(first.created && !again.created && first.id == again.id);
//! assert_eq!(store.run_count().unwrap(), 1);
//! ```

pub mod changepoint;
pub mod check;
mod error;
pub mod fingerprint;
pub mod render;
mod schema;
mod store;
pub mod trend;

pub use error::HistoryError;
pub use schema::SCHEMA_VERSION;
pub use store::{
    DEFAULT_BUSY_TIMEOUT_MS, DEFAULT_DB, ENV_DB, ENV_DB_TIMEOUT, Label, MAX_LABEL_KEY,
    MAX_LABEL_VALUE, RecordOutcome, RunFilter, RunSummary, SpanPoint, SpanSummary, Store,
    busy_timeout, parse_label,
};
