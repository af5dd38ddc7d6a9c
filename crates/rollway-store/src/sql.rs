//! The small SQL surface both backends offer, so the store's logic (the event
//! chain, lifecycles, leases) is written once and hashes alike everywhere.
//! Statements use `$1`-style placeholders; the SQLite backend rewrites them.

use std::fmt;

use crate::error::StoreError;
use crate::location::StoreLocation;

/// A bound parameter. Typed even when null, because PostgreSQL checks the
/// Rust type against the column type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    Int(Option<i64>),
    Text(Option<String>),
    Bool(bool),
    Real(Option<f64>),
    Bytes(Option<Vec<u8>>),
}

impl From<i64> for Param {
    fn from(v: i64) -> Self {
        Param::Int(Some(v))
    }
}

impl From<&str> for Param {
    fn from(v: &str) -> Self {
        Param::Text(Some(v.to_owned()))
    }
}

impl From<String> for Param {
    fn from(v: String) -> Self {
        Param::Text(Some(v))
    }
}

impl From<Option<String>> for Param {
    fn from(v: Option<String>) -> Self {
        Param::Text(v)
    }
}

impl From<f64> for Param {
    fn from(v: f64) -> Self {
        Param::Real(Some(v))
    }
}

impl From<Option<f64>> for Param {
    fn from(v: Option<f64>) -> Self {
        Param::Real(v)
    }
}

impl From<bool> for Param {
    fn from(v: bool) -> Self {
        Param::Bool(v)
    }
}

/// A value read back from a row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Null,
    Int(i64),
    Text(String),
    Bool(bool),
    Real(f64),
    Bytes(Vec<u8>),
    /// A type the store never writes: someone changed the table.
    Other(String),
}

/// One result row; the getters say which column was wrong and how.
#[derive(Debug, Clone)]
pub(crate) struct Row(pub Vec<Val>);

impl Row {
    fn at(&self, i: usize) -> Result<&Val, String> {
        self.0.get(i).ok_or_else(|| format!("column {i} is missing"))
    }

    pub fn int(&self, i: usize, name: &str) -> Result<i64, String> {
        match self.at(i)? {
            Val::Int(v) => Ok(*v),
            other => Err(format!("{name} is {other:?}, expected an integer")),
        }
    }

    pub fn opt_int(&self, i: usize, name: &str) -> Result<Option<i64>, String> {
        match self.at(i)? {
            Val::Null => Ok(None),
            Val::Int(v) => Ok(Some(*v)),
            other => Err(format!("{name} is {other:?}, expected an integer or null")),
        }
    }

    pub fn text(&self, i: usize, name: &str) -> Result<String, String> {
        match self.at(i)? {
            Val::Text(v) => Ok(v.clone()),
            other => Err(format!("{name} is {other:?}, expected text")),
        }
    }

    pub fn opt_text(&self, i: usize, name: &str) -> Result<Option<String>, String> {
        match self.at(i)? {
            Val::Null => Ok(None),
            Val::Text(v) => Ok(Some(v.clone())),
            other => Err(format!("{name} is {other:?}, expected text or null")),
        }
    }

    /// A bytes column, or a text one (its UTF-8 bytes): the sketches were
    /// text before PostgreSQL's schema 15 and still are on SQLite.
    pub fn opt_bytes(&self, i: usize, name: &str) -> Result<Option<Vec<u8>>, String> {
        match self.at(i)? {
            Val::Null => Ok(None),
            Val::Bytes(v) => Ok(Some(v.clone())),
            Val::Text(v) => Ok(Some(v.clone().into_bytes())),
            other => Err(format!("{name} is {other:?}, expected bytes, text or null")),
        }
    }

    pub fn opt_real(&self, i: usize, name: &str) -> Result<Option<f64>, String> {
        match self.at(i)? {
            Val::Null => Ok(None),
            Val::Real(v) => Ok(Some(*v)),
            // SQLite may hand back a whole-number real as an integer.
            Val::Int(v) => Ok(Some(*v as f64)),
            other => Err(format!("{name} is {other:?}, expected a number or null")),
        }
    }

    pub fn real(&self, i: usize, name: &str) -> Result<f64, String> {
        self.opt_real(i, name)?
            .ok_or_else(|| format!("{name} is null, expected a number"))
    }

    pub fn bool(&self, i: usize, name: &str) -> Result<bool, String> {
        match self.at(i)? {
            Val::Bool(v) => Ok(*v),
            Val::Int(0) => Ok(false),
            Val::Int(1) => Ok(true),
            other => Err(format!("{name} is {other:?}, expected a boolean")),
        }
    }

    /// Parses a text column with `FromStr`.
    pub fn parse<T>(&self, i: usize, name: &str) -> Result<T, String>
    where
        T: std::str::FromStr,
        T::Err: fmt::Display,
    {
        let s = self.text(i, name)?;
        s.parse().map_err(|e| format!("{name} '{s}': {e}"))
    }

    /// Parses a nullable text column with `FromStr`.
    pub fn parse_opt<T>(&self, i: usize, name: &str) -> Result<Option<T>, String>
    where
        T: std::str::FromStr,
        T::Err: fmt::Display,
    {
        self.opt_text(i, name)?
            .map(|s| s.parse().map_err(|e| format!("{name} '{s}': {e}")))
            .transpose()
    }
}

/// Statements inside one open transaction (or snapshot).
pub(crate) trait Sql {
    /// Runs one statement; returns the number of rows changed.
    fn exec(&mut self, sql: &str, params: &[Param]) -> Result<u64, StoreError>;
    /// Runs one query and returns all its rows.
    fn rows(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError>;
    /// Runs several statements without parameters (migrations).
    fn batch(&mut self, sql: &str) -> Result<(), StoreError>;

    fn row(&mut self, sql: &str, params: &[Param]) -> Result<Option<Row>, StoreError> {
        Ok(self.rows(sql, params)?.into_iter().next())
    }
}

/// A database engine with its transactions. Not object safe on purpose: the
/// store is generic over it, and the `Store` trait is the dynamic seam.
pub(crate) trait Backend: Send + Sync + fmt::Debug + 'static {
    const NAME: &'static str;
    /// Appended to the `SELECT … FROM event_head` that opens every write
    /// transaction. PostgreSQL locks the row so that writers queue; SQLite's
    /// `BEGIN IMMEDIATE` has already taken the database's write lock.
    const LOCK_HEAD: &'static str;
    /// Appended to a `SELECT` of one row that a write transaction must hold
    /// until it ends (a monitor being rolled up): PostgreSQL locks it,
    /// SQLite already holds the write lock.
    const LOCK_ROW: &'static str;
    /// Appended to a `SELECT` of rows to claim (shard leases) or delete:
    /// PostgreSQL locks them and skips rows another transaction holds, so
    /// instances never wait on one another; SQLite holds the write lock.
    const SKIP_LOCKED: &'static str;
    /// How `rollups_in` joins its table of ranges `q (k, name, lo, hi)` to
    /// the rollups `TABLE` as `r`: an index range scan per range, in a form
    /// each planner keeps to. SQLite: `CROSS JOIN` fixes the order.
    /// PostgreSQL misjudges range conditions on a parameter and would hash
    /// join a full scan; a `LATERAL` subquery (`OFFSET 0` keeps it from
    /// being flattened) is one parameterised index scan per range.
    const RANGES_JOIN: &'static str;
    /// How the rollup tables store a row (bucket unit, zeros, sketch).
    const ROLLUPS: crate::monitoring::RollupLayout;
    /// Run before a large read of many small index scans (PostgreSQL: the
    /// cost estimate would start JIT compiling, which costs more than the
    /// query); empty when there is nothing to do.
    const BULK_READ: &'static str;
    /// Run first in the migration transaction so that concurrent openers
    /// migrate one after another.
    const MIGRATION_LOCK: &'static str;
    /// The migrations of this backend, in version order.
    const MIGRATIONS: &'static [(i64, &'static str)];

    fn location(&self) -> &StoreLocation;

    /// Called once the migrations are done: SQLite lets the next opener in.
    fn migrated(&self) {}

    /// Runs `f` in one write transaction and commits when it returns `Ok`;
    /// on `Err` nothing it did is kept.
    fn write<T>(&self, f: impl FnOnce(&mut dyn Sql) -> Result<T, StoreError>) -> Result<T, StoreError>;

    /// Runs `f` on one consistent snapshot.
    fn read<T>(&self, f: impl FnOnce(&mut dyn Sql) -> Result<T, StoreError>) -> Result<T, StoreError>;

    /// Runs raw SQL outside any store logic (tests tamper with it).
    fn execute_raw(&self, sql: &str) -> Result<(), StoreError>;
}
