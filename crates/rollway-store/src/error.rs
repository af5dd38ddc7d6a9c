//! What can go wrong in the store, worded for the person who has to act on it:
//! which store, which entity, and what to do next.

use std::path::PathBuf;

use rollway_model::rules::Violation;
use rollway_model::{Lock, StatusChangeError, TransitionError};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the state directory {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("sqlite store {location}: {source}")]
    Sqlite {
        location: String,
        #[source]
        source: rusqlite::Error,
    },

    #[error(
        "cannot connect to the postgresql store {location}: {detail} (is the server running, and are the host, port, user and database in the URL right?)"
    )]
    PostgresConnect {
        location: String,
        detail: String,
        #[source]
        source: postgres::Error,
    },

    #[error(
        "the postgresql store {location} did not answer within {waited:?}: is it a PostgreSQL server, and is it stuck? (set connect_timeout=SECONDS in the URL to wait longer)"
    )]
    PostgresTimeout {
        location: String,
        waited: std::time::Duration,
    },

    #[error(
        "refusing to connect to the postgresql store {location} without TLS: rollway speaks to PostgreSQL unencrypted, so use a server on this machine (127.0.0.1, ::1, localhost or a unix socket), for example through an ssh tunnel"
    )]
    NotLoopback { location: String },

    #[error("postgresql store {location}: {detail}")]
    Postgres {
        location: String,
        detail: String,
        #[source]
        source: postgres::Error,
    },

    /// Another process kept the store locked longer than the busy timeout.
    #[error(
        "the store {location} stayed locked by another process for {:?}{}: it may be stuck; stop it, or try again when it is done",
        .waited,
        .holder.as_ref().map(|h| format!(" (held by {h})")).unwrap_or_default()
    )]
    Busy {
        location: String,
        waited: std::time::Duration,
        holder: Option<String>,
    },

    #[error("the store {location} cannot be used: {detail}")]
    Unsupported { location: String, detail: String },

    #[error("cannot migrate the store {location} to schema version {version}: {detail}")]
    Migration {
        location: String,
        version: i64,
        detail: String,
    },

    #[error(
        "stored {what} {id} is unreadable: {detail}; the store was changed outside rollway: restore it from a backup"
    )]
    Corrupt {
        what: &'static str,
        id: String,
        detail: String,
    },

    #[error("no {what} '{id}' in the store")]
    NotFound { what: &'static str, id: String },

    #[error("{what} {id} is already in the store: it was recorded before; read it instead of inserting it again")]
    Exists { what: &'static str, id: String },

    /// The transition table refused an edge, or a time went backwards;
    /// nothing was written.
    #[error(transparent)]
    Transition(#[from] TransitionError),

    /// The change would break a rule of the model (for example a failed
    /// deployment without a failure reason); nothing was written.
    #[error("{what} {id} was not saved: {}; nothing was written", join(violations))]
    Invalid {
        what: &'static str,
        id: String,
        violations: Vec<Violation>,
    },

    /// A whole record was put over a newer one (its stored lifecycle has steps
    /// the new copy lacks); nothing was written.
    #[error("{what} {id} changed in the store since this copy was read ({detail}): read it again and retry")]
    Stale {
        what: &'static str,
        id: String,
        detail: String,
    },

    #[error(
        "{} is locked by {} since {} ({}{}; lease until {}): wait for it to finish or for its lease to expire, or pass --lock-wait",
        .0.name,
        .0.owner,
        .0.acquired_at,
        .0.deployment_id.map(|d| format!("deployment {d}, ")).unwrap_or_default(),
        if .0.reason.is_empty() { "no reason given" } else { .0.reason.as_str() },
        .0.expires_at
    )]
    /// Boxed to keep every `Result<_, StoreError>` small.
    Locked(Box<Lock>),

    #[error(
        "the lock {name} was lost: its lease expired or it was released, and it may now be held by someone else; stop and start over"
    )]
    LockLost { name: String },
}

fn join(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// What a model refusal means to the store: an edge the table (or the clock)
/// refused is `Transition`, a broken rule is `Invalid`.
impl From<StatusChangeError> for StoreError {
    fn from(e: StatusChangeError) -> Self {
        match e.transition {
            Some(t) => Self::Transition(*t),
            None => Self::Invalid {
                what: e.entity,
                id: e.id,
                violations: e.violations,
            },
        }
    }
}

impl StoreError {
    pub(crate) fn sqlite(location: &str, source: rusqlite::Error) -> Self {
        Self::Sqlite {
            location: location.to_owned(),
            source,
        }
    }

    pub(crate) fn busy(location: &str, waited: std::time::Duration) -> Self {
        Self::Busy {
            location: location.to_owned(),
            waited,
            holder: None,
        }
    }

    pub(crate) fn postgres(location: &str, source: postgres::Error) -> Self {
        Self::Postgres {
            location: location.to_owned(),
            detail: pg_detail(&source),
            source,
        }
    }

    pub(crate) fn corrupt(what: &'static str, id: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::Corrupt {
            what,
            id: id.into(),
            detail: detail.into(),
        }
    }
}

/// `postgres::Error` displays only its kind ("db error"); the server's words
/// are in its source, and they are what a person needs to read.
pub(crate) fn pg_detail(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{}: {}", db.severity(), db.message());
        if let Some(d) = db.detail() {
            s.push_str(&format!(" ({d})"));
        }
        if let Some(h) = db.hint() {
            s.push_str(&format!("; hint: {h}"));
        }
        return s;
    }
    let mut s = e.to_string();
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
