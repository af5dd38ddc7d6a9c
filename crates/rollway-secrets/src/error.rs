//! The crate's error type: each message says what failed, where (a path or
//! the recipient concerned) and what to do, and never holds a secret value.

use std::path::PathBuf;

use crate::dotenv::DotenvError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "no identity file at {}; run `rollway secrets init` to create one or set ROLLWAY_IDENTITY to an age identity file or an unencrypted ssh-ed25519 key",
        path.display()
    )]
    IdentityMissing { path: PathBuf },

    #[error("{}:{line}: {reason}", path.display())]
    IdentityFile { path: PathBuf, line: usize, reason: String },

    #[error(
        "{} holds no identity; expected AGE-SECRET-KEY-1… lines (from `age-keygen` or `rollway secrets init`) or an unencrypted OpenSSH private key",
        path.display()
    )]
    NoIdentity { path: PathBuf },

    #[error(
        "{} holds {count} identities; use load_identities for a file with several keys",
        path.display()
    )]
    SeveralIdentities { path: PathBuf, count: usize },

    #[error(
        "{} is a passphrase-protected ssh key, which rollway cannot use unattended; point ROLLWAY_IDENTITY at an age identity (`rollway secrets init`) or at an unencrypted copy of the key (`cp KEY COPY && ssh-keygen -p -N '' -f COPY`)",
        path.display()
    )]
    EncryptedSshKey { path: PathBuf },

    #[error("{} is an unsupported ssh key ({kind}); use an ssh-ed25519 or ssh-rsa key, or an age identity", path.display())]
    UnsupportedSshKey { path: PathBuf, kind: String },

    #[error("{} is a public key; an identity is the private key (the file without .pub)", path.display())]
    PublicKeyAsIdentity { path: PathBuf },

    #[error("{} is not an identity: {reason}", path.display())]
    InvalidIdentity { path: PathBuf, reason: String },

    #[error("{} already exists; rollway never overwrites an identity (remove it first if you really mean to)", path.display())]
    IdentityExists { path: PathBuf },

    #[error(
        "cannot locate the identity file: neither ROLLWAY_IDENTITY, XDG_CONFIG_HOME nor HOME is set; set ROLLWAY_IDENTITY"
    )]
    NoHome,

    #[error("an ssh identity has no age identity file text; it stays in its own key file")]
    NotAnAgeIdentity,

    #[error("invalid recipient {shown}: {reason}")]
    Recipient { shown: String, reason: String },

    #[error(
        "no recipients to encrypt to; list some under [secrets] recipients or create a local identity with `rollway secrets init`"
    )]
    NoRecipients,

    #[error("cannot encrypt: {0}")]
    Encrypt(String),

    #[error("cannot decrypt {origin}: {reason}")]
    Decrypt { origin: String, reason: String },

    #[error("{origin} does not decrypt to UTF-8 text; it is not a rollway secrets file")]
    NotUtf8 { origin: String },

    #[error("{0}")]
    Dotenv(#[from] DotenvError),

    #[error("unknown preset {name} (expected one of: {expected})")]
    UnknownPreset { name: String, expected: String },

    #[error("the operating system's random source failed: {0}")]
    Random(String),
}

impl Error {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
