//! The database schema and its migrations.
//!
//! The version is SQLite's `user_version`; the file is marked as ours by
//! `application_id`. Opening applies every migration above the file's
//! version, each in its own transaction with the version bump, so a
//! migration either completes or leaves the file as it was. A file whose
//! version is above [`SCHEMA_VERSION`] was written by a newer perf-report
//! and is refused, never rewritten.

use rusqlite::Connection;

/// Marks a SQLite file as a perf-report history (`PRAGMA application_id`):
/// "PRHY".
pub(crate) const APPLICATION_ID: i32 = 0x5052_4859;

/// The schema this perf-report writes and reads.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Migration `i` takes a database from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: runs, their labels, per-span summaries with whole busy histograms.
    "CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        digest TEXT NOT NULL UNIQUE,
        program TEXT NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at_unix_ms INTEGER NOT NULL,
        duration_ns INTEGER NOT NULL,
        cpu_ns INTEGER,
        machine TEXT NOT NULL,
        recorded_at_unix_ms INTEGER NOT NULL,
        spans INTEGER NOT NULL,
        dump BLOB NOT NULL
    );
    CREATE INDEX runs_by_program ON runs (program, machine, started_at_unix_ms);
    CREATE TABLE labels (
        run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (run_id, key)
    );
    CREATE TABLE spans (
        run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        identity TEXT NOT NULL,
        name TEXT NOT NULL,
        target TEXT NOT NULL,
        calls INTEGER NOT NULL,
        busy_p50_ns INTEGER NOT NULL,
        busy_p99_ns INTEGER NOT NULL,
        busy_mean_ns REAL NOT NULL,
        self_ns INTEGER NOT NULL,
        self_share REAL NOT NULL,
        alloc_bytes_per_call REAL,
        allocs_per_call REAL,
        live_bytes INTEGER,
        busy_hist TEXT NOT NULL,
        PRIMARY KEY (run_id, identity)
    );
    CREATE INDEX spans_by_identity ON spans (identity, run_id);
    CREATE INDEX spans_by_name ON spans (name, run_id);",
    // 2: a description of the machine for people, beside its fingerprint.
    "ALTER TABLE runs ADD COLUMN machine_desc TEXT NOT NULL DEFAULT '';",
];

/// The file's schema version.
pub(crate) fn version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .map(|v| u32::try_from(v).unwrap_or(u32::MAX))
}

/// The file's application id.
pub(crate) fn application_id(conn: &Connection) -> rusqlite::Result<i32> {
    conn.query_row("PRAGMA application_id", [], |r| r.get(0))
}

/// Whether the file holds any table (a database of something else, when it
/// is not marked as ours).
pub(crate) fn has_tables(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n > 0)
}

/// Applies the migrations from `from` up to `to` (at most
/// [`SCHEMA_VERSION`]), each in one transaction with its version bump.
pub(crate) fn migrate(conn: &mut Connection, from: u32, to: u32) -> rusqlite::Result<()> {
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(from as usize)
        .take(to.saturating_sub(from) as usize)
    {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(i + 1).unwrap_or(i64::MAX),
        )?;
        tx.commit()?;
    }
    Ok(())
}
