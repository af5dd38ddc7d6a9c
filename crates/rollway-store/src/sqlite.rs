//! The SQLite backend: one file in WAL mode, shared safely by several
//! processes; every write transaction is `BEGIN IMMEDIATE`, so writers queue
//! on the database's write lock instead of failing half-way. Opening,
//! switching to WAL and migrating happen under a lock file beside the
//! database, so concurrent first opens of a new store wait for each other.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, TransactionBehavior};

use crate::error::StoreError;
use crate::location::StoreLocation;
use crate::monitoring::RollupLayout;
use crate::sql::{Backend, Param, Row, Sql, Val};

/// How long any opener, reader or writer waits for another process before
/// it fails, naming the store.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct SqliteBackend {
    conn: Mutex<Connection>,
    location: StoreLocation,
    shown: String,
    /// Held from open until the migrations are done (see [`OpenLock`]).
    opening: Mutex<Option<OpenLock>>,
}

/// `DB.open-lock` beside the database, locked exclusively while one process
/// creates, switches to WAL and migrates a store not yet in WAL mode. SQLite's busy handler
/// does not cover every step of that (a journal-mode change on a file
/// another process has just created answers "database is locked" at once),
/// so openers queue here instead. The holder writes its pid and command line
/// into the file, so a waiter that gives up can say who held it.
struct OpenLock {
    _held: rollway_fs::HolderLock,
}

impl OpenLock {
    fn acquire(db: &Path, shown: &str, timeout: Duration) -> Result<Self, StoreError> {
        let me = rollway_fs::this_process("pid {pid} ({command})");
        match rollway_fs::HolderLock::acquire(&rollway_fs::beside(db, "open-lock"), timeout, &me) {
            Ok(held) => Ok(Self { _held: held }),
            Err(rollway_fs::HoldError::Held { holder, .. }) => Err(StoreError::Busy {
                location: shown.to_owned(),
                waited: timeout,
                holder,
            }),
            Err(rollway_fs::HoldError::Io { path, source }) => Err(StoreError::Io { path, source }),
        }
    }
}

/// Runs `f` again while it answers "busy", up to [`BUSY_TIMEOUT`].
fn retry_busy<T>(shown: &str, mut f: impl FnMut() -> rusqlite::Result<T>) -> Result<T, StoreError> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if is_busy(&e) && Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) if is_busy(&e) => return Err(StoreError::busy(shown, BUSY_TIMEOUT)),
            Err(e) => return Err(StoreError::sqlite(shown, e)),
        }
    }
}

/// True for the two answers that mean "another connection holds a lock".
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

impl std::fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteBackend").field("location", &self.shown).finish()
    }
}

impl SqliteBackend {
    /// Opens (creating) the file and its parent directories, in WAL mode with
    /// a busy timeout and foreign keys on.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_waiting(path, BUSY_TIMEOUT)
    }

    /// [`Self::open`], waiting at most `wait` for another opener.
    fn open_waiting(path: &Path, wait: Duration) -> Result<Self, StoreError> {
        let location = StoreLocation::Sqlite(path.to_owned());
        let shown = location.to_string();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Io {
                path: parent.to_owned(),
                source,
            })?;
        }
        let err = |e| StoreError::sqlite(&shown, e);
        // A store already in WAL mode needs nothing that only one opener at
        // a time may do (migrations queue on the write lock like any write),
        // so it is opened without touching the lock file.
        let ready = Connection::open(path).ok().filter(|c| {
            c.busy_timeout(BUSY_TIMEOUT).is_ok()
                && c.pragma_query_value(None, "journal_mode", |r| r.get::<_, String>(0))
                    .is_ok_and(|m| m.eq_ignore_ascii_case("wal"))
        });
        let (conn, opening) = match ready {
            Some(conn) => (conn, None),
            None => {
                let opening = OpenLock::acquire(path, &shown, wait)?;
                let conn = Connection::open(path).map_err(err)?;
                conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
                let mode: String = retry_busy(&shown, || {
                    conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
                })?;
                if !mode.eq_ignore_ascii_case("wal") {
                    return Err(StoreError::Unsupported {
                        location: shown,
                        detail: format!(
                            "the file would not switch to WAL mode (it is in {mode} mode); keep it on a local file system"
                        ),
                    });
                }
                (conn, Some(opening))
            }
        };
        // WAL makes NORMAL durable across application crashes; only a power
        // loss may lose the last commits, never corrupt the file.
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(err)?;
        Ok(Self {
            conn: Mutex::new(conn),
            location,
            shown,
            opening: Mutex::new(opening),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the connection dropped its transaction, which
        // rolled back; the connection itself is still good.
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn run<T>(
        &self,
        behavior: TransactionBehavior,
        commit: bool,
        f: impl FnOnce(&mut dyn Sql) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.conn();
        let err = |e| StoreError::sqlite(&self.shown, e);
        // The busy handler covers `BEGIN IMMEDIATE`; a reader can still be
        // told "busy" while another connection recovers the WAL, so the
        // start of any transaction waits by the same rule.
        let deadline = Instant::now() + BUSY_TIMEOUT;
        let tx = loop {
            match rusqlite::Transaction::new_unchecked(&conn, behavior) {
                Ok(tx) => break tx,
                Err(e) if is_busy(&e) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) if is_busy(&e) => return Err(StoreError::busy(&self.shown, BUSY_TIMEOUT)),
                Err(e) => return Err(err(e)),
            }
        };
        let out = f(&mut SqliteSql {
            conn: &tx,
            location: &self.shown,
        })?;
        if commit {
            tx.commit().map_err(err)?;
        }
        Ok(out)
    }
}

impl Backend for SqliteBackend {
    const NAME: &'static str = "sqlite";
    const LOCK_HEAD: &'static str = "";
    const LOCK_ROW: &'static str = "";
    const SKIP_LOCKED: &'static str = "";
    const RANGES_JOIN: &'static str = "q CROSS JOIN monitors m CROSS JOIN TABLE r \
         WHERE m.name = q.name AND r.monitor_id = m.id AND r.bucket >= q.lo AND r.bucket < q.hi";
    const ROLLUPS: RollupLayout = RollupLayout::Plain;
    const BULK_READ: &'static str = "";
    const MIGRATION_LOCK: &'static str = "";
    const MIGRATIONS: &'static [(i64, &'static str)] = &[
        (1, include_str!("../migrations/sqlite/0001_init.sql")),
        (2, include_str!("../migrations/sqlite/0002_variables.sql")),
        (3, include_str!("../migrations/sqlite/0003_deployments.sql")),
        (4, include_str!("../migrations/sqlite/0004_failed_probes.sql")),
        (5, include_str!("../migrations/sqlite/0005_monitoring.sql")),
        (6, include_str!("../migrations/sqlite/0006_maintenance.sql")),
        (7, include_str!("../migrations/sqlite/0007_shard_leases.sql")),
        (8, include_str!("../migrations/sqlite/0008_metric_records.sql")),
        (10, include_str!("../migrations/sqlite/0010_alerts.sql")),
        (11, include_str!("../migrations/sqlite/0011_log_records.sql")),
        (12, include_str!("../migrations/sqlite/0012_compact_monitoring.sql")),
        (14, include_str!("../migrations/sqlite/0014_backups.sql")),
        (15, include_str!("../migrations/sqlite/0015_compact_rollups.sql")),
    ];

    fn location(&self) -> &StoreLocation {
        &self.location
    }

    fn migrated(&self) {
        let mut opening = self.opening.lock().unwrap_or_else(|p| p.into_inner());
        *opening = None;
    }

    fn write<T>(&self, f: impl FnOnce(&mut dyn Sql) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.run(TransactionBehavior::Immediate, true, f)
    }

    fn read<T>(&self, f: impl FnOnce(&mut dyn Sql) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.run(TransactionBehavior::Deferred, false, f)
    }

    fn execute_raw(&self, sql: &str) -> Result<(), StoreError> {
        self.conn()
            .execute_batch(sql)
            .map_err(|e| StoreError::sqlite(&self.shown, e))
    }
}

struct SqliteSql<'a> {
    conn: &'a Connection,
    location: &'a str,
}

/// `$1` → `?1`: SQLite numbers `$NAME` parameters by first appearance, which
/// would silently reorder them; `?NNN` keeps the number.
fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

fn bind(params: &[Param]) -> Vec<&dyn rusqlite::ToSql> {
    params
        .iter()
        .map(|p| match p {
            Param::Int(v) => v as &dyn rusqlite::ToSql,
            Param::Text(v) => v as &dyn rusqlite::ToSql,
            Param::Bool(v) => v as &dyn rusqlite::ToSql,
            Param::Real(v) => v as &dyn rusqlite::ToSql,
            Param::Bytes(v) => v as &dyn rusqlite::ToSql,
        })
        .collect()
}

impl Sql for SqliteSql<'_> {
    fn exec(&mut self, sql: &str, params: &[Param]) -> Result<u64, StoreError> {
        // Cached: sample batches and rollups run the same few statements
        // thousands of times.
        let err = |e| StoreError::sqlite(self.location, e);
        let n = self
            .conn
            .prepare_cached(&placeholders(sql))
            .map_err(err)?
            .execute(bind(params).as_slice())
            .map_err(err)?;
        Ok(n as u64)
    }

    fn rows(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError> {
        let err = |e| StoreError::sqlite(self.location, e);
        let mut stmt = self.conn.prepare_cached(&placeholders(sql)).map_err(err)?;
        let width = stmt.column_count();
        let mut rows = stmt.query(bind(params).as_slice()).map_err(err)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(err)? {
            let mut vals = Vec::with_capacity(width);
            for i in 0..width {
                vals.push(match r.get_ref(i).map_err(err)? {
                    ValueRef::Null => Val::Null,
                    ValueRef::Integer(v) => Val::Int(v),
                    ValueRef::Text(t) => match std::str::from_utf8(t) {
                        Ok(s) => Val::Text(s.to_owned()),
                        Err(_) => Val::Other("text that is not UTF-8".into()),
                    },
                    ValueRef::Real(v) => Val::Real(v),
                    ValueRef::Blob(b) => Val::Bytes(b.to_vec()),
                });
            }
            out.push(Row(vals));
        }
        Ok(out)
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.conn
            .execute_batch(sql)
            .map_err(|e| StoreError::sqlite(self.location, e))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn placeholders_keep_their_numbers() {
        assert_eq!(
            placeholders("SELECT $2, $1, $10 WHERE x = '$'"),
            "SELECT ?2, ?1, ?10 WHERE x = '$'"
        );
    }

    #[test]
    fn an_opener_waits_for_another_and_names_it_when_it_gives_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rollway.db");
        // Another opener is creating the store: the next one waits.
        let first = OpenLock::acquire(&path, "first", Duration::from_secs(1)).unwrap();
        let err = SqliteBackend::open_waiting(&path, Duration::from_millis(200)).unwrap_err();
        let msg = err.to_string();
        let expected = format!(
            "the store {} stayed locked by another process for 200ms (held by pid {} (",
            path.display(),
            std::process::id()
        );
        assert!(msg.starts_with(&expected), "{msg}");
        // Once it is done, the next one opens, and later ones go straight in
        // (the store is in WAL mode) without touching the lock file.
        drop(first);
        let second = SqliteBackend::open_waiting(&path, Duration::from_millis(200)).unwrap();
        second.migrated();
        let held = OpenLock::acquire(&path, "someone", Duration::from_secs(1)).unwrap();
        SqliteBackend::open_waiting(&path, Duration::from_millis(200)).unwrap();
        drop(held);
    }

    #[test]
    fn opens_in_wal_mode_with_parent_directories() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/rollway.db");
        let b = SqliteBackend::open(&path).unwrap();
        assert!(path.exists());
        let mode: String = b.conn().query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = b.conn().query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
        assert_eq!(fk, 1);
    }
}
