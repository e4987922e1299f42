//! What can go wrong with the history database, each said in one line with
//! the file and what to do.

use std::path::PathBuf;

use rusqlite::ErrorCode;

/// An error of the run history.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// The file is not a perf-report history: another SQLite database, or
    /// not a database at all, or damaged.
    #[error(
        "{path}: not a perf-report history database ({detail}); give another --db path, or move this file away"
    )]
    NotHistory {
        /// The database file.
        path: PathBuf,
        /// What SQLite or the check said.
        detail: String,
    },
    /// Written by a newer perf-report.
    #[error(
        "{path}: written by a newer perf-report (history schema {found}; this one reads up to {supported}); upgrade perf-report, or use another --db"
    )]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// Its schema version.
        found: u32,
        /// The newest this perf-report reads.
        supported: u32,
    },
    /// Another writer held the database for longer than the wait.
    #[error(
        "{path}: the database stayed locked by another writer{}{}; retry when it has finished, or wait longer with PERF_REPORT_DB_TIMEOUT_MS (nothing was written)",
        held_for(*waited_ms),
        held_by(holders)
    )]
    Locked {
        /// The database file.
        path: PathBuf,
        /// How long this waited, ms.
        waited_ms: u64,
        /// The processes that had the file open, `pid (name)`, where the
        /// system tells.
        holders: Vec<String>,
    },
    /// `PERF_REPORT_DB_TIMEOUT_MS` is not a number of milliseconds.
    #[error("PERF_REPORT_DB_TIMEOUT_MS={0:?} is not a number of milliseconds (for example 30000)")]
    Timeout(String),
    /// The file or its directory cannot be written.
    #[error(
        "{path}: the database is read-only; make the file and its directory writable, or give another --db (nothing was written)"
    )]
    ReadOnly {
        /// The database file.
        path: PathBuf,
    },
    /// The disk, or SQLite's size limit, is full.
    #[error(
        "{path}: the disk (or the database's size limit) is full; free space or prune old runs (`perf-report history prune`), then record again (the runs stored before are intact)"
    )]
    Full {
        /// The database file.
        path: PathBuf,
    },
    /// The disk failed a read or a write (full for this process, failing,
    /// or a file-size limit).
    #[error(
        "{path}: the disk failed a write or a read ({detail}): it may be full or failing; free space, then retry (the runs stored before are intact)"
    )]
    Io {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        detail: String,
    },
    /// The file cannot be opened at all.
    #[error(
        "{path}: cannot open the history database: {detail}; check the path and its permissions"
    )]
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        detail: String,
    },
    /// A command that reads history was given a database that does not exist.
    #[error(
        "{path}: no history database here; record runs first with `perf-report record DUMP --db {path}`"
    )]
    Missing {
        /// The database file.
        path: PathBuf,
    },
    /// No run with this id.
    #[error("{path}: no run {id}; `perf-report history --db {path}` lists the runs")]
    NoSuchRun {
        /// The database file.
        path: PathBuf,
        /// The id asked for.
        id: i64,
    },
    /// A stored run does not read back (the file was edited or damaged).
    #[error("{path}: run {id} does not read back ({detail}); the file may be damaged")]
    BadRun {
        /// The database file.
        path: PathBuf,
        /// The run.
        id: i64,
        /// What failed.
        detail: String,
    },
    /// A `--label` that is not `KEY=VALUE`.
    #[error("label {0:?} is not KEY=VALUE (for example commit=3f2a9c1 or branch=main)")]
    Label(String),
    /// A `--label` too long or holding a control character.
    #[error("label {label:?} {reason}")]
    BadLabel {
        /// The label's start.
        label: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Any other SQLite error.
    #[error("{path}: {detail}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        detail: String,
    },
}

impl HistoryError {
    /// Classifies a rusqlite error on the database at `path`.
    pub(crate) fn sqlite(path: &std::path::Path, e: rusqlite::Error) -> Self {
        let path = path.to_path_buf();
        let detail = e.to_string();
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Self::Locked {
                path,
                waited_ms: 0,
                holders: Vec::new(),
            },
            Some(ErrorCode::ReadOnly) => Self::ReadOnly { path },
            Some(ErrorCode::DiskFull) => Self::Full { path },
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
                Self::NotHistory { path, detail }
            }
            Some(ErrorCode::CannotOpen) => Self::Open { path, detail },
            Some(ErrorCode::SystemIoFailure) => Self::Io { path, detail },
            _ => Self::Sqlite { path, detail },
        }
    }
}

/// ` for 200 ms`, or nothing when the wait is not known.
fn held_for(waited_ms: u64) -> String {
    if waited_ms == 0 {
        String::new()
    } else {
        format!(" for {waited_ms} ms")
    }
}

/// ` (open in 123 (perf-report), ...)`, or nothing.
fn held_by(holders: &[String]) -> String {
    if holders.is_empty() {
        String::new()
    } else {
        format!(" (open in {})", holders.join(", "))
    }
}
