//! Exit codes, documented in the README, and how an error maps onto them.

use rollway_config::ConfigError;
use rollway_secrets::VaultError;
use rollway_secrets::lock::LockError;
use rollway_store::StoreError;

/// The documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The operation failed: a deployment failed, a check found a problem.
    Failed = 1,
    /// Invalid input: usage, config, validation.
    Invalid = 2,
    /// Conflict: a lock is held, a transition is forbidden.
    Conflict = 3,
    /// Interrupted by Ctrl-C.
    #[allow(dead_code)]
    Interrupted = 130,
}

/// An error that already knows its exit code.
#[derive(Debug)]
pub struct Coded {
    pub code: Code,
    pub error: anyhow::Error,
    /// What `--json` adds under `error.details`.
    pub details: Option<serde_json::Value>,
}

impl std::fmt::Display for Coded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for Coded {}

/// Wraps an error with the exit code it should end the process with.
pub fn coded(code: Code, error: impl Into<anyhow::Error>) -> anyhow::Error {
    anyhow::Error::new(Coded {
        code,
        error: error.into(),
        details: None,
    })
}

/// Like `coded`, with details for the `--json` answer.
pub fn coded_with(code: Code, error: impl Into<anyhow::Error>, details: serde_json::Value) -> anyhow::Error {
    anyhow::Error::new(Coded {
        code,
        error: error.into(),
        details: Some(details),
    })
}

/// The exit code for an error: an explicit `Coded` wins, then what the error is.
pub fn code_of(err: &anyhow::Error) -> Code {
    for cause in err.chain() {
        if let Some(c) = cause.downcast_ref::<Coded>() {
            return c.code;
        }
        let lock = cause
            .downcast_ref::<LockError>()
            .or_else(|| match cause.downcast_ref::<VaultError>() {
                Some(VaultError::Locked(l)) => Some(l),
                _ => None,
            });
        if let Some(LockError::Held { .. }) = lock {
            return Code::Conflict;
        }
        if let Some(ConfigError::Invalid(_)) = cause.downcast_ref::<ConfigError>() {
            return Code::Invalid;
        }
        if let Some(e) = cause.downcast_ref::<StoreError>() {
            match e {
                StoreError::Transition(_)
                | StoreError::Locked(_)
                | StoreError::LockLost { .. }
                | StoreError::Exists { .. }
                | StoreError::Stale { .. } => {
                    return Code::Conflict;
                }
                StoreError::NotFound { .. } | StoreError::Invalid { .. } => return Code::Invalid,
                _ => {}
            }
        }
    }
    Code::Failed
}

/// A command run for the user (`rollway exec`) ended with `code`: the CLI
/// exits with that code, not with one of [`Code`].
#[derive(Debug)]
pub struct PassThrough {
    pub code: i32,
    pub message: String,
    /// What `--json` adds under `error.details`.
    pub details: Option<serde_json::Value>,
}

impl std::fmt::Display for PassThrough {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PassThrough {}
