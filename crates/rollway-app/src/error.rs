//! The one error of every use case: what went wrong (a context chain), the
//! class it ends in (the CLI's exit code, later the server's status), the
//! details a machine answer carries, and lines to show before the message.
//! Which class an error belongs to is decided here, once.

use rollway_config::ConfigError;
use rollway_engine::DeployError;
use rollway_secrets::VaultError;
use rollway_secrets::lock::LockError;
use rollway_store::StoreError;

/// The class of an error: the documented exit codes, and the exit of a
/// command run for the user (`rollway exec`), which passes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The operation failed: a deployment failed, a check found a problem.
    Failed,
    /// Invalid input: usage, config, validation.
    Invalid,
    /// Conflict: a lock is held, a transition is forbidden.
    Conflict,
    /// Interrupted by a signal (Ctrl-C, SIGTERM, SIGHUP).
    Interrupted,
    /// A command run for the user ended with this code.
    Exited(i32),
}

impl Code {
    /// The process exit code: 1, 2, 3, 130, or the command's own.
    pub fn exit_code(self) -> i32 {
        match self {
            Code::Failed => 1,
            Code::Invalid => 2,
            Code::Conflict => 3,
            Code::Interrupted => 130,
            Code::Exited(c) => c,
        }
    }
}

/// Something to show before an error's message (or beside an answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// One problem found by a check, on stderr in every mode.
    Problem(String),
    /// A warning beside the answer, on stderr in every mode.
    Warning(String),
    /// How long each phase of a failed deployment took
    /// (`build 1.2s, ship 0.3s`), for people only.
    Phases(String),
}

/// An error of a use case, with its class.
#[derive(Debug, thiserror::Error)]
#[error("{error:#}")]
pub struct Error {
    code: Code,
    error: anyhow::Error,
    details: Option<serde_json::Value>,
    notes: Vec<Note>,
}

/// The result of a use case.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of class `code`.
    pub fn new(code: Code, error: impl Into<anyhow::Error>) -> Self {
        Self {
            code,
            error: error.into(),
            details: None,
            notes: Vec::new(),
        }
    }

    /// Invalid input (exit 2) saying `message`.
    pub fn invalid(message: impl std::fmt::Display) -> Self {
        Self::new(Code::Invalid, anyhow::anyhow!("{message}"))
    }

    /// A failed operation (exit 1) saying `message`.
    pub fn failed(message: impl std::fmt::Display) -> Self {
        Self::new(Code::Failed, anyhow::anyhow!("{message}"))
    }

    /// The same error with details for the machine answer.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// The same error with lines to show before it.
    pub fn with_notes(mut self, notes: Vec<Note>) -> Self {
        self.notes = notes;
        self
    }

    /// The same error, in the same class, with `context` before it.
    pub fn context(self, context: impl std::fmt::Display + Send + Sync + 'static) -> Self {
        Self {
            error: self.error.context(context),
            ..self
        }
    }

    /// The class (the exit code) of this error.
    pub fn code(&self) -> Code {
        self.code
    }

    /// What the machine answer adds under `error.details`.
    pub fn details(&self) -> Option<&serde_json::Value> {
        self.details.as_ref()
    }

    /// Lines to show before the message.
    pub fn notes(&self) -> &[Note] {
        &self.notes
    }

    /// The config problems this error is made of, when it is an invalid
    /// rollway.toml: each is shown as `FILE:LINE:COL: …`.
    pub fn diagnostics(&self) -> Option<&rollway_config::Diagnostics> {
        diagnostics_in(&self.error)
    }
}

fn diagnostics_in(error: &anyhow::Error) -> Option<&rollway_config::Diagnostics> {
    error.chain().find_map(|c| match c.downcast_ref::<ConfigError>() {
        Some(ConfigError::Invalid(d)) => Some(d),
        _ => c.downcast_ref::<Error>().and_then(Error::diagnostics),
    })
}

/// The class of an error nobody classed: an inner [`Error`] wins, then what
/// the error is (a lock held, an invalid config, a store conflict…).
fn class_of(err: &anyhow::Error) -> Code {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<Error>() {
            return e.code;
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

impl From<anyhow::Error> for Error {
    fn from(error: anyhow::Error) -> Self {
        // An app error that travelled through anyhow comes back as it was.
        // One wrapped in context keeps its class, details and notes (and
        // the context: anyhow's `downcast` would find the error under it
        // and drop the context, so only a bare one is taken back as it is).
        let bare = error.chain().next().is_some_and(|c| c.is::<Error>());
        match if bare { error.downcast::<Error>() } else { Err(error) } {
            Ok(e) => e,
            Err(error) => {
                let inner = error.chain().find_map(|c| c.downcast_ref::<Error>());
                let details = inner.and_then(|e| e.details.clone());
                let notes = inner.map(|e| e.notes.clone()).unwrap_or_default();
                Self {
                    code: class_of(&error),
                    error,
                    details,
                    notes,
                }
            }
        }
    }
}

/// Library errors become app errors through `?`, classed by what they are.
macro_rules! classed_from {
    ($($t:ty),* $(,)?) => {
        $(impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Self::from(anyhow::Error::new(e))
            }
        })*
    };
}

classed_from!(
    StoreError,
    VaultError,
    LockError,
    ConfigError,
    DeployError,
    serde_json::Error,
    rollway_secrets::Error,
    rollway_engine::HostError,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_class_survives_context_in_either_direction() {
        let e = Error::invalid("bad input").with_details(serde_json::json!({ "k": 1 }));
        let e = e.context("while deploying");
        assert_eq!(e.code(), Code::Invalid);
        assert_eq!(e.to_string(), "while deploying: bad input");

        // Through anyhow (a closure's error, a context added there) and back.
        let wrapped = anyhow::Error::new(
            Error::new(Code::Conflict, anyhow::anyhow!("held")).with_notes(vec![Note::Problem("p".into())]),
        )
        .context("outer");
        let back = Error::from(wrapped);
        assert_eq!(back.code(), Code::Conflict);
        assert_eq!(back.to_string(), "outer: held");
        assert_eq!(back.notes(), &[Note::Problem("p".into())]);
    }

    #[test]
    fn exit_codes_are_the_documented_ones() {
        let codes = [
            Code::Failed,
            Code::Invalid,
            Code::Conflict,
            Code::Interrupted,
            Code::Exited(7),
        ];
        let exits: Vec<i32> = codes.iter().map(|c| c.exit_code()).collect();
        assert_eq!(exits, [1, 2, 3, 130, 7]);
        assert_eq!(Error::from(anyhow::anyhow!("plain")).code(), Code::Failed);
    }
}
