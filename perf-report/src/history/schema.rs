//! The database schema and its migrations.
//!
//! The version is SQLite's `user_version`; the file is marked as ours by
//! `application_id`. Opening applies every migration above the file's
//! version, each in its own transaction with the version bump, so a
//! migration either completes or leaves the file as it was. A file whose
//! version is above [`SCHEMA_VERSION`] was written by a newer perf-report
//! and is refused, never rewritten.

use rusqlite::{Connection, TransactionBehavior};

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
    // 3: each span's mean idle time (its waits), what `diff` compares on
    // its wait axis; NULL for the runs stored before.
    "ALTER TABLE spans ADD COLUMN idle_mean_ns REAL;",
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

/// The file's application id, schema version and whether it holds any
/// table, read in one transaction: another process creating the schema at
/// the same moment is seen either not at all or whole.
pub(crate) fn identity(conn: &Connection) -> rusqlite::Result<(i32, u32, bool)> {
    let tx = conn.unchecked_transaction()?;
    let read = (application_id(&tx)?, version(&tx)?, has_tables(&tx)?);
    tx.commit()?;
    Ok(read)
}

/// Takes the file to version `to` (at most [`SCHEMA_VERSION`]): WAL mode
/// first, then each migration above the file's version in one write
/// transaction with its version bump. The version is read again inside
/// that transaction, so of several processes migrating one file at once,
/// one applies each step and the others find it applied. A file another
/// program owns is left alone (the caller checks it afterwards).
pub(crate) fn migrate(conn: &mut Connection, to: u32) -> rusqlite::Result<()> {
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))?;
    }
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let from = version(&tx)?;
        let foreign = application_id(&tx)? != APPLICATION_ID && (from != 0 || has_tables(&tx)?);
        if from >= to || foreign {
            return tx.commit();
        }
        tx.execute_batch(MIGRATIONS[from as usize])?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.pragma_update(None, "user_version", i64::from(from + 1))?;
        tx.commit()?;
    }
}
