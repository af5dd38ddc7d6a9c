//! UUIDv7 id newtypes, one per entity, and content digests. Ids embed the
//! clock's time so they sort by creation.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::time::Timestamp;

macro_rules! id_newtype {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new UUIDv7 whose time part is `at`.
            pub fn generate(at: Timestamp) -> Self {
                Self(new_v7(at))
            }
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    )*};
}

id_newtype! {
    EnvironmentId;
    VariableId;
    ArtifactId;
    PipelineRunId;
    JobId;
    DeploymentId;
    StackId;
    ResourceId;
    VerificationId;
    HostResultId;
    MonitorId;
    MetricId;
    AlertId;
    EventId;
    BackupId;
    RestoreId;
    CertificateId;
    DomainId;
}

fn new_v7(at: Timestamp) -> Uuid {
    let ms = u64::try_from(at.as_millis()).unwrap_or(0);
    let ts = uuid::Timestamp::from_unix(uuid::NoContext, ms / 1000, ((ms % 1000) * 1_000_000) as u32);
    Uuid::new_v7(ts)
}

/// Error for a value that is not of a digest's shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{value}' is not a {what}")]
pub struct DigestError {
    pub value: String,
    pub what: &'static str,
}

/// A SHA-256 digest: 64 lowercase hex characters.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256Digest(String);

impl Sha256Digest {
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest as _;
        Self(hex::encode(sha2::Sha256::digest(bytes)))
    }

    pub fn from_bytes(raw: [u8; 32]) -> Self {
        Self(hex::encode(raw))
    }

    /// The all-zero digest that precedes the first event of a hash chain.
    pub fn zero() -> Self {
        Self("0".repeat(64))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_valid(s: &str) -> bool {
        s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.0)
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Sha256Digest {
    type Error = DigestError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        if Self::is_valid(&value) {
            Ok(Self(value))
        } else {
            Err(DigestError {
                value,
                what: "SHA-256 digest (64 lowercase hex characters)",
            })
        }
    }
}

impl FromStr for Sha256Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_from(s.to_owned())
    }
}

impl From<Sha256Digest> for String {
    fn from(d: Sha256Digest) -> Self {
        d.0
    }
}

/// A git commit hash: 40 (SHA-1) or 64 (SHA-256) lowercase hex characters.
/// Outside git the field holds `None`, never an empty string.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CommitHash(String);

impl CommitHash {
    pub fn is_valid(s: &str) -> bool {
        (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CommitHash {
    type Error = DigestError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        if Self::is_valid(&value) {
            Ok(Self(value))
        } else {
            Err(DigestError {
                value,
                what: "git commit hash (40 or 64 lowercase hex characters)",
            })
        }
    }
}

impl From<CommitHash> for String {
    fn from(d: CommitHash) -> Self {
        d.0
    }
}

impl fmt::Display for CommitHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_v7_and_sort_by_time() {
        let a = DeploymentId::generate(Timestamp(1_000));
        let b = DeploymentId::generate(Timestamp(2_000));
        assert_eq!(a.0.get_version_num(), 7);
        assert!(a < b);
        assert_eq!(a.to_string().parse::<DeploymentId>().ok(), Some(a));
    }

    #[test]
    fn digests_validate_shape() {
        assert!(Sha256Digest::try_from("a".repeat(64)).is_ok());
        assert!(Sha256Digest::try_from("A".repeat(64)).is_err());
        assert!(Sha256Digest::try_from("a".repeat(63)).is_err());
        assert_eq!(
            Sha256Digest::of(b"").as_str(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(CommitHash::try_from("0".repeat(40)).is_ok());
        assert!(CommitHash::try_from("0".repeat(64)).is_ok());
        assert!(CommitHash::try_from("0".repeat(41)).is_err());
        assert!(CommitHash::try_from("g".repeat(40)).is_err());
    }
}
