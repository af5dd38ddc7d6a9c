//! Variable: seed 001's keys and URLs, seed 002 Secret Set and seed 003
//! Environment Variables, as one record per key. The clear value is never
//! part of it: it lives age-encrypted in the secrets store.

use serde::{Deserialize, Serialize};

use crate::ids::VariableId;
use crate::status::VariableType;
use crate::time::Timestamp;

/// One variable of one environment, without its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variable {
    /// Seed 003 `variable_id`.
    pub id: VariableId,
    /// The environment's name: seed 002 `environmentId`, seed 003 `environment_id`.
    pub environment: String,
    /// Seed 003 `key_name`; seed 001's `backendUrl`, `cohereApiKey`, … and
    /// seed 002's `appKeys`, `jwtSecret`, … become keys like `BACKEND_URL`,
    /// `APP_KEYS`, `JWT_SECRET`.
    pub key: String,
    /// What the value is: seed 001's URL fields (`url`) and API keys and
    /// tokens (`key`); everything else is `string`.
    #[serde(rename = "type")]
    pub value_type: VariableType,
    /// The URL scheme a `url` value must use (rollway.toml `scheme`), e.g.
    /// `postgres` for seed 001 `databaseUrl`.
    pub scheme: Option<String>,
    /// Seed 003 `is_secret`: masked in every output; seed 002's Secret Set
    /// members are all secret.
    pub secret: bool,
    /// Seed 003 `platform_synced`.
    pub platform_synced: bool,
    /// When the value was last pushed to the platform (seed 003 `platform_synced`).
    pub synced_at: Option<Timestamp>,
    /// Seed 002 `createdAt`, seed 003 `created_at`.
    pub created_at: Timestamp,
    /// Seed 003 `updated_at`.
    pub updated_at: Timestamp,
    /// Seed 002 `rotatedAt`: when the value was last replaced by a new one.
    pub rotated_at: Option<Timestamp>,
    /// The operator accepted a value that fails the seed 002 strength rule
    /// (never an empty secret in production).
    pub allow_weak: bool,
}

impl Variable {
    /// A new plain (non-secret) `string` variable.
    pub fn new(environment: impl Into<String>, key: impl Into<String>, at: Timestamp) -> Self {
        Self {
            id: VariableId::generate(at),
            environment: environment.into(),
            key: key.into(),
            value_type: VariableType::String,
            scheme: None,
            secret: false,
            platform_synced: false,
            synced_at: None,
            created_at: at,
            updated_at: at,
            rotated_at: None,
            allow_weak: false,
        }
    }

    /// Records that the value was replaced; a platform copy is now stale.
    pub fn rotated(&mut self, at: Timestamp) {
        self.rotated_at = Some(at);
        self.updated_at = self.updated_at.max(at);
        self.platform_synced = false;
    }

    /// Records that the value was pushed to the environment's platform.
    pub fn synced(&mut self, at: Timestamp) {
        self.platform_synced = true;
        self.synced_at = Some(at);
    }
}
