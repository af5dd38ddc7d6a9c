//! The SQLite backend: one file in WAL mode, shared safely by several
//! processes; every write transaction is `BEGIN IMMEDIATE`, so writers queue
//! on the database's write lock instead of failing half-way.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, TransactionBehavior};

use crate::error::StoreError;
use crate::location::StoreLocation;
use crate::sql::{Backend, Param, Row, Sql, Val};

/// How long a writer waits for another process's write transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct SqliteBackend {
    conn: Mutex<Connection>,
    location: StoreLocation,
    shown: String,
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
        let location = StoreLocation::Sqlite(path.to_owned());
        let shown = location.to_string();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Io {
                path: parent.to_owned(),
                source,
            })?;
        }
        let err = |e| StoreError::sqlite(&shown, e);
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unsupported {
                location: shown,
                detail: format!(
                    "the file would not switch to WAL mode (it is in {mode} mode); keep it on a local file system"
                ),
            });
        }
        // WAL makes NORMAL durable across application crashes; only a power
        // loss may lose the last commits, never corrupt the file.
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(err)?;
        Ok(Self {
            conn: Mutex::new(conn),
            location,
            shown,
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
        let mut conn = self.conn();
        let err = |e| StoreError::sqlite(&self.shown, e);
        let tx = conn.transaction_with_behavior(behavior).map_err(err)?;
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
    const MIGRATION_LOCK: &'static str = "";
    const MIGRATIONS: &'static [(i64, &'static str)] = &[
        (1, include_str!("../migrations/sqlite/0001_init.sql")),
        (2, include_str!("../migrations/sqlite/0002_variables.sql")),
        (3, include_str!("../migrations/sqlite/0003_deployments.sql")),
    ];

    fn location(&self) -> &StoreLocation {
        &self.location
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
        })
        .collect()
}

impl Sql for SqliteSql<'_> {
    fn exec(&mut self, sql: &str, params: &[Param]) -> Result<u64, StoreError> {
        let n = self
            .conn
            .execute(&placeholders(sql), bind(params).as_slice())
            .map_err(|e| StoreError::sqlite(self.location, e))?;
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
                    ValueRef::Real(v) => Val::Other(format!("the real {v}")),
                    ValueRef::Blob(b) => Val::Other(format!("a blob of {} bytes", b.len())),
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
