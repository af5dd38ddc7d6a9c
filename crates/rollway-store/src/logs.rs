//! Seed 002 Log Records as the store keeps them (schema 11,
//! `db/log_records.rs`): what a collector writes, where its reading of one
//! service's output on one host stands, and what a reader asks for.

use std::time::Duration;

use rollway_model::{Level, Timestamp};

/// Whose output a cursor and its records belong to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LogSource {
    pub environment: String,
    pub host: String,
    pub service: String,
}

/// One line as a collector hands it to the store (message and trace id
/// masked by the collector; the store's masker passes them again).
#[derive(Debug, Clone, PartialEq)]
pub struct NewLogRecord {
    pub level: Level,
    pub message: String,
    pub trace_id: Option<String>,
    /// The line's own time, else when it was collected.
    pub time: Timestamp,
}

/// A stored line.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LogRecord {
    /// Insertion order: breaks ties between lines of one time.
    pub id: i64,
    pub environment: String,
    pub host: String,
    pub service: String,
    pub level: Level,
    pub message: String,
    pub trace_id: Option<String>,
    pub time: Timestamp,
    pub collected_at: Timestamp,
}

/// Which records to read: every filter given must hold. The newest
/// `limit` that match, returned oldest first (by time, then id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    pub environment: String,
    /// Records with `time` at or after this.
    pub since: Option<Timestamp>,
    /// Records at this level or above (debug < info < warn < error):
    /// `warn` gives warn and error lines.
    pub level: Option<Level>,
    pub trace_id: Option<String>,
    /// A substring of the message, ASCII case ignored (`%` and `_` are
    /// plain characters).
    pub grep: Option<String>,
    /// Only records stored after record `after_id` (`--follow`).
    pub after_id: Option<i64>,
    pub limit: usize,
}

impl LogQuery {
    /// Every record of `environment`, up to `limit`.
    pub fn new(environment: impl Into<String>, limit: usize) -> Self {
        Self {
            environment: environment.into(),
            since: None,
            level: None,
            trace_id: None,
            grep: None,
            after_id: None,
            limit,
        }
    }
}

/// How long log records are kept by default (OPERATIONS.md: 14 days).
pub const DEFAULT_LOG_RETENTION: Duration = Duration::from_secs(14 * 24 * 3_600);
