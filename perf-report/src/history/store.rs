//! The store: open, record, read back, prune.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use perf_layer::dump::Dump;
use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params,
    params_from_iter,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::error::HistoryError;
use super::fingerprint;
use super::schema::{self, APPLICATION_ID, SCHEMA_VERSION};
use crate::callsite;
pub use crate::figures::SpanSummary;
pub(crate) use crate::figures::summarize;

/// The database used when neither `--db` nor [`ENV_DB`] names one.
pub const DEFAULT_DB: &str = "perf-history.db";

/// The environment variable naming the database.
pub const ENV_DB: &str = "PERF_REPORT_DB";

/// How long a writer waits for another's write to finish before reporting
/// the database as locked, ms: a CI fleet's jobs record into one file at
/// the same moment, and each write is one short transaction.
/// [`ENV_DB_TIMEOUT`] overrides it.
pub const DEFAULT_BUSY_TIMEOUT_MS: u64 = 30_000;

/// The environment variable giving the wait for a locked database, ms.
pub const ENV_DB_TIMEOUT: &str = "PERF_REPORT_DB_TIMEOUT_MS";

/// The wait for a locked database: [`ENV_DB_TIMEOUT`] when set, else
/// [`DEFAULT_BUSY_TIMEOUT_MS`]; a value that is not a number of ms is an
/// error, not a silent default.
///
/// ```
/// use perf_report::history::busy_timeout;
/// // SAFETY: doc test on one thread.
/// unsafe { std::env::set_var("PERF_REPORT_DB_TIMEOUT_MS", "250") };
/// assert_eq!(busy_timeout().unwrap().as_millis(), 250);
/// unsafe { std::env::set_var("PERF_REPORT_DB_TIMEOUT_MS", "soon") };
/// assert!(busy_timeout().is_err());
/// ```
pub fn busy_timeout() -> Result<Duration, HistoryError> {
    match std::env::var(ENV_DB_TIMEOUT) {
        Ok(v) => v
            .trim()
            .parse()
            .map(Duration::from_millis)
            .map_err(|_| HistoryError::Timeout(v)),
        Err(_) => Ok(Duration::from_millis(DEFAULT_BUSY_TIMEOUT_MS)),
    }
}

/// A run's label: `KEY=VALUE`, e.g. `commit=3f2a9c1`.
pub type Label = (String, String);

/// The longest label key, in characters.
pub const MAX_LABEL_KEY: usize = 128;
/// The longest label value, in characters.
pub const MAX_LABEL_VALUE: usize = 1024;

/// Parses `KEY=VALUE`: a key of at most [`MAX_LABEL_KEY`] characters and a
/// value of at most [`MAX_LABEL_VALUE`], neither with a control character
/// (a label is a commit, a branch, a runner: never a newline or an escape
/// sequence, never a megabyte).
///
/// ```
/// use perf_report::history::parse_label;
/// assert_eq!(parse_label("branch=main").unwrap(), ("branch".into(), "main".into()));
/// assert!(parse_label("main").is_err());
/// assert!(parse_label("commit=a\nb").is_err());
/// assert!(parse_label(&format!("k={}", "x".repeat(2000))).is_err());
/// ```
pub fn parse_label(s: &str) -> Result<Label, HistoryError> {
    let bad = |reason: String| HistoryError::BadLabel {
        label: crate::sanitize::one_line(&crate::sanitize::bounded(s, 60)).into_owned(),
        reason,
    };
    let (k, v) = match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => (k.trim(), v.trim()),
        _ => {
            return Err(HistoryError::Label(
                crate::sanitize::bounded(s, 200).into_owned(),
            ));
        }
    };
    if s.chars().any(char::is_control) {
        return Err(bad("holds a control character".to_owned()));
    }
    let (kn, vn) = (k.chars().count(), v.chars().count());
    if kn > MAX_LABEL_KEY {
        return Err(bad(format!(
            "has a key of {kn} characters; the most is {MAX_LABEL_KEY}"
        )));
    }
    if vn > MAX_LABEL_VALUE {
        return Err(bad(format!(
            "has a value of {vn} characters; the most is {MAX_LABEL_VALUE}"
        )));
    }
    Ok((k.to_owned(), v.to_owned()))
}

/// What [`Store::record`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordOutcome {
    /// The run's id.
    pub id: i64,
    /// `false` when the same dump was already stored (its new labels are
    /// added to it).
    pub created: bool,
    /// Labels not applied because the run, stored before, already has a
    /// different value for the key: `(key, value asked, value kept)`. A key
    /// holds one value; the first record's is kept.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conflicting_labels: Vec<(String, String, String)>,
}

/// Which runs to list: every field narrows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunFilter {
    /// Runs of this program.
    pub program: Option<String>,
    /// Runs on machines of this fingerprint.
    pub machine: Option<String>,
    /// Runs carrying every one of these labels.
    pub labels: Vec<Label>,
    /// Runs that started before this time (ms since the Unix epoch).
    pub started_before_unix_ms: Option<u64>,
    /// Leave this run out.
    pub exclude: Option<i64>,
    /// The newest this many (of those that match).
    pub newest: Option<usize>,
}

impl RunFilter {
    /// Runs of `program`.
    pub fn program(mut self, program: &str) -> Self {
        self.program = Some(program.to_owned());
        self
    }

    /// Runs on machines of `fingerprint`.
    pub fn machine(mut self, fingerprint: &str) -> Self {
        self.machine = Some(fingerprint.to_owned());
        self
    }

    /// Runs carrying every one of `labels`.
    pub fn labels(mut self, labels: &[Label]) -> Self {
        self.labels = labels.to_vec();
        self
    }

    /// The newest `n` of the runs that match.
    pub fn newest(mut self, n: usize) -> Self {
        self.newest = Some(n);
        self
    }

    /// Leave run `id` out.
    pub fn exclude(mut self, id: i64) -> Self {
        self.exclude = Some(id);
        self
    }

    /// Runs that started before `unix_ms`.
    pub fn started_before(mut self, unix_ms: u64) -> Self {
        self.started_before_unix_ms = Some(unix_ms);
        self
    }
}

/// A stored run, without its spans.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    /// Its id in this database.
    pub id: i64,
    /// SHA-256 of the dump: one dump is stored once.
    pub digest: String,
    /// The program.
    pub program: String,
    /// The host.
    pub host: String,
    /// The machine fingerprint ([`fingerprint`]).
    pub machine: String,
    /// The machine in words.
    pub machine_desc: String,
    /// When the run started, ms since the Unix epoch.
    pub started_at_unix_ms: u64,
    /// Its duration, ns.
    pub duration_ns: u64,
    /// Its CPU time, ns, where the dump has it.
    pub cpu_ns: Option<u64>,
    /// When it was recorded, ms since the Unix epoch.
    pub recorded_at_unix_ms: u64,
    /// Spans it recorded.
    pub spans: u64,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
}

/// A span's figures in one run, for its trend across runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpanPoint {
    /// The run's id.
    pub run_id: i64,
    /// When the run started, ms since the Unix epoch.
    pub started_at_unix_ms: u64,
    /// The span's figures.
    pub span: SpanSummary,
}

/// The run history in one SQLite file.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
    timeout: Duration,
}

impl Store {
    /// Opens the database at `path`, creating it when it does not exist and
    /// migrating it to [`SCHEMA_VERSION`]; refuses a newer schema, a damaged
    /// file and a SQLite database of something else.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, HistoryError> {
        Self::open_with(path.as_ref(), true)
    }

    /// Opens an existing database ([`HistoryError::Missing`] when there is
    /// none); read-only when the file cannot be written, as long as it needs
    /// no migration.
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Self, HistoryError> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(HistoryError::Missing {
                path: path.to_path_buf(),
            });
        }
        Self::open_with(path, false)
    }

    fn open_with(path: &Path, create: bool) -> Result<Self, HistoryError> {
        let timeout = busy_timeout()?;
        let err = |e| HistoryError::sqlite(path, e);
        let writable =
            !path.exists() || std::fs::OpenOptions::new().append(true).open(path).is_ok();
        let mut flags = OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        flags |= match (writable, create) {
            (true, true) => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
            (true, false) => OpenFlags::SQLITE_OPEN_READ_WRITE,
            (false, _) => OpenFlags::SQLITE_OPEN_READ_ONLY,
        };
        if !writable && create {
            return Err(HistoryError::ReadOnly {
                path: path.to_path_buf(),
            });
        }
        let mut conn = Connection::open_with_flags(path, flags).map_err(err)?;
        conn.busy_timeout(timeout).map_err(err)?;
        // The first read of the file tells a database from anything else.
        let read = |conn: &Connection| locked(path, timeout, || schema::identity(conn));
        let (app, version, tables) = read(&conn)?;
        check_ours(path, app, version, tables)?;
        if version < SCHEMA_VERSION {
            if !writable {
                return Err(HistoryError::ReadOnly {
                    path: path.to_path_buf(),
                });
            }
            // Many processes may open a new or old file at once: one
            // migrates under the write lock, the others wait for it and then
            // find the file already at the version (migrate re-reads it
            // inside the lock).
            locked(path, timeout, || schema::migrate(&mut conn, SCHEMA_VERSION))?;
            let (app, version, tables) = read(&conn)?;
            check_ours(path, app, version, tables)?;
        }
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(err)?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
            timeout,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the file (always [`SCHEMA_VERSION`] once
    /// opened).
    pub fn schema_version(&self) -> Result<u32, HistoryError> {
        schema::version(&self.conn).map_err(|e| self.err(e))
    }

    fn err(&self, e: rusqlite::Error) -> HistoryError {
        HistoryError::sqlite(&self.path, e)
    }

    /// Stores `dump` with `labels`, in one transaction: the run, its labels,
    /// a summary and the whole busy-time histogram of each span, and the
    /// dump itself (compressed). A dump already stored (same SHA-256 of its
    /// content) is not stored again; its new labels are added.
    pub fn record(&mut self, dump: &Dump, labels: &[Label]) -> Result<RecordOutcome, HistoryError> {
        let json = serde_json::to_vec(dump).map_err(|e| HistoryError::Sqlite {
            path: self.path.clone(),
            detail: format!("the dump does not serialize: {e}"),
        })?;
        let digest = hex_sha256(&json);
        let compressed = deflate(&json);
        let path = self.path.clone();
        let conn = &mut self.conn;
        locked(&path, self.timeout, || {
            record_in(conn, dump, labels, &digest, &compressed)
        })
    }

    /// The id of the stored run whose dump has this [`digest`], if any.
    pub(crate) fn run_id_of_digest(&self, digest: &str) -> Result<Option<i64>, HistoryError> {
        self.conn
            .query_row("SELECT id FROM runs WHERE digest = ?1", [digest], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    /// How many runs are stored.
    pub fn run_count(&self) -> Result<usize, HistoryError> {
        self.conn
            .query_row("SELECT count(*) FROM runs", [], |r| r.get::<_, i64>(0))
            .map(|n| usize::try_from(n).unwrap_or(0))
            .map_err(|e| self.err(e))
    }

    /// The runs `filter` selects, oldest first.
    pub fn runs(&self, filter: &RunFilter) -> Result<Vec<RunSummary>, HistoryError> {
        let (sql, args) = select_runs(filter, "id");
        let ids: Vec<i64> = {
            let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
            stmt.query_map(params_from_iter(args.iter()), |r| r.get(0))
                .map_err(|e| self.err(e))?
                .collect::<rusqlite::Result<_>>()
                .map_err(|e| self.err(e))?
        };
        let mut labels = self.labels_of(&ids)?;
        let mut stmt = self
            .conn
            .prepare_cached(RUN_COLUMNS_BY_ID)
            .map_err(|e| self.err(e))?;
        let mut runs = Vec::with_capacity(ids.len());
        for id in ids {
            let mut run = stmt
                .query_row([id], run_from_row)
                .map_err(|e| self.err(e))?;
            run.labels = labels.remove(&id).unwrap_or_default();
            runs.push(run);
        }
        Ok(runs)
    }

    /// The run `id`.
    pub fn run(&self, id: i64) -> Result<RunSummary, HistoryError> {
        let mut run = self
            .conn
            .query_row(RUN_COLUMNS_BY_ID, [id], run_from_row)
            .optional()
            .map_err(|e| self.err(e))?
            .ok_or_else(|| HistoryError::NoSuchRun {
                path: self.path.clone(),
                id,
            })?;
        run.labels = self.labels_of(&[id])?.remove(&id).unwrap_or_default();
        Ok(run)
    }

    /// The dump of run `id`, as it was recorded.
    pub fn dump(&self, id: i64) -> Result<Dump, HistoryError> {
        let blob: Vec<u8> = self
            .conn
            .query_row("SELECT dump FROM runs WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?
            .ok_or_else(|| HistoryError::NoSuchRun {
                path: self.path.clone(),
                id,
            })?;
        let bad = |detail: String| HistoryError::BadRun {
            path: self.path.clone(),
            id,
            detail,
        };
        let mut json = Vec::new();
        DeflateDecoder::new(blob.as_slice())
            .read_to_end(&mut json)
            .map_err(|e| bad(e.to_string()))?;
        Dump::from_slice(&json).map_err(|e| bad(e.to_string()))
    }

    /// The spans of run `id`, by self time, most first.
    pub fn spans(&self, id: i64) -> Result<Vec<SpanSummary>, HistoryError> {
        self.run(id)?;
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {SPAN_COLUMNS} FROM spans WHERE run_id = ?1 ORDER BY self_ns DESC, identity"
            ))
            .map_err(|e| self.err(e))?;
        stmt.query_map([id], span_from_row)
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    /// One span's figures in every run `filter` selects that has it, oldest
    /// first. `span` is an identity ([`SpanSummary::identity`]) or a name;
    /// a name several identities share gives all of them.
    pub fn span_series(
        &self,
        span: &str,
        filter: &RunFilter,
    ) -> Result<Vec<SpanPoint>, HistoryError> {
        let (runs_sql, mut args) = select_runs(filter, "id, started_at_unix_ms");
        args.push(span.to_owned());
        args.push(span.to_owned());
        let n = args.len();
        let sql = format!(
            "SELECT r.id, r.started_at_unix_ms, {cols} FROM ({runs_sql}) r
             JOIN spans s ON s.run_id = r.id
             WHERE s.identity = ?{a} OR s.name = ?{b}
             ORDER BY r.started_at_unix_ms, r.id, s.identity",
            cols = SPAN_COLUMNS
                .split(", ")
                .map(|c| format!("s.{c}"))
                .collect::<Vec<_>>()
                .join(", "),
            a = n - 1,
            b = n,
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        stmt.query_map(params_from_iter(args.iter()), |r| {
            Ok(SpanPoint {
                run_id: r.get(0)?,
                started_at_unix_ms: from_sql_u64(r.get(1)?),
                span: span_from_row_at(r, 2)?,
            })
        })
        .map_err(|e| self.err(e))?
        .collect::<rusqlite::Result<_>>()
        .map_err(|e| self.err(e))
    }

    /// The busy-time histograms (as the dump encodes them) of span
    /// `identity` in each of `runs` that has it.
    pub fn busy_histograms(
        &self,
        runs: &[i64],
        identity: &str,
    ) -> Result<Vec<(i64, String)>, HistoryError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT busy_hist FROM spans WHERE run_id = ?1 AND identity = ?2")
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for &run in runs {
            if let Some(h) = stmt
                .query_row(params![run, identity], |r| r.get::<_, String>(0))
                .optional()
                .map_err(|e| self.err(e))?
            {
                out.push((run, h));
            }
        }
        Ok(out)
    }

    /// Deletes runs beyond the newest `keep_runs` of each program, and runs
    /// that started more than `keep_days` before `now_unix_ms`. Returns how
    /// many were deleted.
    pub fn prune(
        &mut self,
        keep_runs: Option<usize>,
        keep_days: Option<u64>,
        now_unix_ms: u64,
    ) -> Result<usize, HistoryError> {
        let path = self.path.clone();
        let conn = &mut self.conn;
        locked(&path, self.timeout, || {
            prune_in(conn, keep_runs, keep_days, now_unix_ms)
        })
    }

    fn labels_of(
        &self,
        ids: &[i64],
    ) -> Result<BTreeMap<i64, BTreeMap<String, String>>, HistoryError> {
        let mut out: BTreeMap<i64, BTreeMap<String, String>> = BTreeMap::new();
        let mut stmt = self
            .conn
            .prepare_cached("SELECT key, value FROM labels WHERE run_id = ?1 ORDER BY key")
            .map_err(|e| self.err(e))?;
        for &id in ids {
            let rows = stmt
                .query_map([id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(|e| self.err(e))?;
            for row in rows {
                let (k, v) = row.map_err(|e| self.err(e))?;
                out.entry(id).or_default().insert(k, v);
            }
        }
        Ok(out)
    }
}

const RUN_COLUMNS_BY_ID: &str = "SELECT id, digest, program, host, machine, machine_desc,
    started_at_unix_ms, duration_ns, cpu_ns, recorded_at_unix_ms, spans FROM runs WHERE id = ?1";

const SPAN_COLUMNS: &str = "identity, name, target, calls, busy_p50_ns, busy_p99_ns, busy_mean_ns, self_ns, self_share, alloc_bytes_per_call, allocs_per_call, live_bytes, idle_mean_ns";

fn run_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunSummary> {
    Ok(RunSummary {
        id: r.get(0)?,
        digest: r.get(1)?,
        program: r.get(2)?,
        host: r.get(3)?,
        machine: r.get(4)?,
        machine_desc: r.get(5)?,
        started_at_unix_ms: from_sql_u64(r.get(6)?),
        duration_ns: from_sql_u64(r.get(7)?),
        cpu_ns: r.get::<_, Option<i64>>(8)?.map(from_sql_u64),
        recorded_at_unix_ms: from_sql_u64(r.get(9)?),
        spans: from_sql_u64(r.get(10)?),
        labels: BTreeMap::new(),
    })
}

fn span_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SpanSummary> {
    span_from_row_at(r, 0)
}

fn span_from_row_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<SpanSummary> {
    Ok(SpanSummary {
        identity: r.get(at)?,
        name: r.get(at + 1)?,
        target: r.get(at + 2)?,
        calls: from_sql_u64(r.get(at + 3)?),
        busy_p50_ns: from_sql_u64(r.get(at + 4)?),
        busy_p99_ns: from_sql_u64(r.get(at + 5)?),
        busy_mean_ns: r.get(at + 6)?,
        self_ns: from_sql_u64(r.get(at + 7)?),
        self_share: r.get(at + 8)?,
        alloc_bytes_per_call: r.get(at + 9)?,
        allocs_per_call: r.get(at + 10)?,
        live_bytes: r.get::<_, Option<i64>>(at + 11)?.map(from_sql_u64),
        idle_mean_ns: r.get(at + 12)?,
    })
}

/// The SQL selecting the runs of `filter` (oldest first) and its arguments.
fn select_runs(filter: &RunFilter, columns: &str) -> (String, Vec<String>) {
    let mut wheres = Vec::new();
    let mut args: Vec<String> = Vec::new();
    let arg = |v: String, args: &mut Vec<String>| {
        args.push(v);
        format!("?{}", args.len())
    };
    if let Some(p) = &filter.program {
        let a = arg(p.clone(), &mut args);
        wheres.push(format!("program = {a}"));
    }
    if let Some(m) = &filter.machine {
        let a = arg(m.clone(), &mut args);
        wheres.push(format!("machine = {a}"));
    }
    for (k, v) in &filter.labels {
        let (ka, va) = (arg(k.clone(), &mut args), arg(v.clone(), &mut args));
        wheres.push(format!(
            "EXISTS (SELECT 1 FROM labels l WHERE l.run_id = runs.id AND l.key = {ka} AND l.value = {va})"
        ));
    }
    if let Some(t) = filter.started_before_unix_ms {
        let a = arg(t.min(i64::MAX as u64).to_string(), &mut args);
        wheres.push(format!("started_at_unix_ms < CAST({a} AS INTEGER)"));
    }
    if let Some(id) = filter.exclude {
        let a = arg(id.to_string(), &mut args);
        wheres.push(format!("id != CAST({a} AS INTEGER)"));
    }
    let where_sql = if wheres.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", wheres.join(" AND "))
    };
    let sql = match filter.newest {
        Some(n) => format!(
            "SELECT {columns} FROM (SELECT * FROM runs{where_sql}
               ORDER BY started_at_unix_ms DESC, id DESC LIMIT {n})
             ORDER BY started_at_unix_ms, id"
        ),
        None => format!("SELECT {columns} FROM runs{where_sql} ORDER BY started_at_unix_ms, id"),
    };
    (sql, args)
}

/// Stores one run in one write transaction, taken at its start (a
/// transaction that reads first and then writes would be refused when
/// another writer committed in between, without waiting).
fn record_in(
    conn: &mut Connection,
    dump: &Dump,
    labels: &[Label],
    digest: &str,
    compressed: &[u8],
) -> rusqlite::Result<RecordOutcome> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let existing: Option<i64> = tx
        .query_row("SELECT id FROM runs WHERE digest = ?1", [digest], |r| {
            r.get(0)
        })
        .optional()?;
    let (id, created) = match existing {
        Some(id) => (id, false),
        None => {
            let spans: u64 = dump.callsites.iter().map(|c| c.calls).sum();
            tx.execute(
                "INSERT INTO runs (digest, program, host, pid, started_at_unix_ms, duration_ns,
                    cpu_ns, machine, machine_desc, recorded_at_unix_ms, spans, dump)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    digest,
                    dump.run.program,
                    dump.run.host,
                    dump.run.pid,
                    sql_u64(dump.run.started_at_unix_ms),
                    sql_u64(dump.run.duration_ns),
                    dump.run.cpu_ns.map(sql_u64),
                    fingerprint::fingerprint(dump),
                    fingerprint::describe(dump),
                    sql_u64(now_unix_ms()),
                    sql_u64(spans),
                    compressed,
                ],
            )?;
            let id = tx.last_insert_rowid();
            insert_spans(&tx, id, dump)?;
            (id, true)
        }
    };
    let mut conflicting_labels = Vec::new();
    {
        let mut insert =
            tx.prepare("INSERT OR IGNORE INTO labels (run_id, key, value) VALUES (?1, ?2, ?3)")?;
        let mut kept = tx.prepare("SELECT value FROM labels WHERE run_id = ?1 AND key = ?2")?;
        for (k, v) in labels {
            if insert.execute(params![id, k, v])? == 0 {
                let old: String = kept.query_row(params![id, k], |r| r.get(0))?;
                if &old != v {
                    conflicting_labels.push((k.clone(), v.clone(), old));
                }
            }
        }
    }
    tx.commit()?;
    Ok(RecordOutcome {
        id,
        created,
        conflicting_labels,
    })
}

/// Refuses a file that is not a history of a version this reads.
fn check_ours(path: &Path, app: i32, version: u32, tables: bool) -> Result<(), HistoryError> {
    if app != APPLICATION_ID && (version != 0 || tables) {
        return Err(HistoryError::NotHistory {
            path: path.to_path_buf(),
            detail: "a SQLite database of something else".to_owned(),
        });
    }
    if version > SCHEMA_VERSION {
        return Err(HistoryError::NewerSchema {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// Runs `f`, retrying while SQLite reports the database busy in a way its
/// busy handler does not wait for (a snapshot gone stale, or the switch to
/// WAL), up to `timeout`; a lock still held then is
/// [`HistoryError::Locked`] with the wait and the processes holding the
/// file.
fn locked<T>(
    path: &Path,
    timeout: Duration,
    mut f: impl FnMut() -> rusqlite::Result<T>,
) -> Result<T, HistoryError> {
    let start = std::time::Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        match f() {
            Err(e) if is_busy(&e) && start.elapsed() < timeout => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(e) if is_busy(&e) => {
                return Err(HistoryError::Locked {
                    path: path.to_path_buf(),
                    waited_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
                    holders: holders(path),
                });
            }
            other => return other.map_err(|e| HistoryError::sqlite(path, e)),
        }
    }
}

/// Deletes the runs [`Store::prune`] names, in one write transaction.
fn prune_in(
    conn: &mut Connection,
    keep_runs: Option<usize>,
    keep_days: Option<u64>,
    now_unix_ms: u64,
) -> rusqlite::Result<usize> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut deleted = 0;
    if let Some(keep) = keep_runs {
        deleted += tx.execute(
            "DELETE FROM runs WHERE id IN (
                SELECT id FROM (
                    SELECT id, ROW_NUMBER() OVER (
                        PARTITION BY program ORDER BY started_at_unix_ms DESC, id DESC
                    ) AS newer FROM runs
                ) WHERE newer > ?1
            )",
            [i64::try_from(keep).unwrap_or(i64::MAX)],
        )?;
    }
    if let Some(days) = keep_days {
        let cutoff = now_unix_ms.saturating_sub(days.saturating_mul(86_400_000));
        deleted += tx.execute(
            "DELETE FROM runs WHERE started_at_unix_ms < ?1",
            [sql_u64(cutoff)],
        )?;
    }
    tx.commit()?;
    Ok(deleted)
}

/// SQLite's "busy" and "locked", whatever the extended code.
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// The other processes that have `path` (or its WAL) open, as `pid (name)`,
/// for the message of a lock that outlasted the wait; empty where /proc
/// does not tell.
fn holders(path: &Path) -> Vec<String> {
    let Ok(target) = std::fs::canonicalize(path) else {
        return Vec::new();
    };
    let wal = PathBuf::from(format!("{}-wal", target.display()));
    let me = std::process::id().to_string();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for p in procs.flatten() {
        let pid = p.file_name().to_string_lossy().into_owned();
        if pid == me || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        let open = fds
            .flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .any(|l| l == target || l == wal);
        if open {
            let name = std::fs::read_to_string(p.path().join("comm")).unwrap_or_default();
            out.push(format!("{pid} ({})", name.trim()));
        }
        if out.len() >= 8 {
            break;
        }
    }
    out
}

fn insert_spans(tx: &rusqlite::Transaction<'_>, run: i64, dump: &Dump) -> rusqlite::Result<()> {
    let ids = callsite::identities(&dump.callsites);
    let total_self: f64 = dump.callsites.iter().map(|c| c.self_ns.sum as f64).sum();
    let mut insert = tx.prepare(
        "INSERT OR IGNORE INTO spans (run_id, identity, name, target, calls, busy_p50_ns,
            busy_p99_ns, busy_mean_ns, self_ns, self_share, alloc_bytes_per_call,
            allocs_per_call, live_bytes, busy_hist, idle_mean_ns)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?;
    for (cs, id) in dump.callsites.iter().zip(ids) {
        let s = summarize(cs, &id.key(), total_self, dump.allocations_tracked);
        insert.execute(params![
            run,
            s.identity,
            s.name,
            s.target,
            sql_u64(s.calls),
            sql_u64(s.busy_p50_ns),
            sql_u64(s.busy_p99_ns),
            s.busy_mean_ns,
            sql_u64(s.self_ns),
            s.self_share,
            s.alloc_bytes_per_call,
            s.allocs_per_call,
            s.live_bytes.map(sql_u64),
            cs.busy_ns.encoded,
            s.idle_mean_ns,
        ])?;
    }
    Ok(())
}

/// The SHA-256 of a dump's JSON: one dump is stored once.
pub(crate) fn digest(dump: &Dump) -> String {
    hex_sha256(&serde_json::to_vec(dump).unwrap_or_default())
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// SQLite integers are signed 64-bit: larger values are stored as the
/// largest.
fn sql_u64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn from_sql_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn deflate(bytes: &[u8]) -> Vec<u8> {
    let mut enc = DeflateEncoder::new(Vec::with_capacity(bytes.len() / 4), Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

/// Now, ms since the Unix epoch.
pub(crate) fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
