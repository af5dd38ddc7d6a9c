//! Environment: seed 001 DeploymentConfiguration, seed 002 and seed 003
//! Environment Configuration, as one record with one lifecycle.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::EnvironmentId;
use crate::status::{EnvironmentKind, EnvironmentStatus, Platform};
use crate::time::Timestamp;
use crate::transitions::{Lifecycle, TransitionError};

/// An environment as the store keeps it. rollway.toml defines it; the store
/// holds its record and lifecycle (created when first seen → active →
/// deprecated).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    pub id: EnvironmentId,
    /// Seed 002 `name`, seed 003 `environment_id` (e.g. "prod-backend").
    pub name: String,
    /// Seed 001 `environment`, seed 003 `environment_type`.
    pub kind: EnvironmentKind,
    pub lifecycle: Lifecycle<EnvironmentStatus>,
    /// Seed 002 `domain`.
    pub domain: Option<String>,
    /// Seed 002 `httpsEnabled`.
    pub https: bool,
    /// Seed 003 `platform`.
    pub platform: Platform,
    /// Seed 003 `app_name`.
    pub app: Option<String>,
    /// Seed 002 `nginxConfigRef`.
    pub nginx_config: Option<String>,
    /// Seed 003 `config_data`: free-form, kept as JSON.
    pub config: Value,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What rollway.toml says of an environment; the store merges it into the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentSpec {
    pub name: String,
    pub kind: EnvironmentKind,
    pub domain: Option<String>,
    pub https: bool,
    pub platform: Platform,
    pub app: Option<String>,
    pub nginx_config: Option<String>,
    pub config: Value,
}

impl Environment {
    /// A new record in status `created`.
    pub fn create(spec: EnvironmentSpec, at: Timestamp) -> Self {
        Self {
            id: EnvironmentId::generate(at),
            name: spec.name,
            kind: spec.kind,
            lifecycle: Lifecycle::new(at),
            domain: spec.domain,
            https: spec.https,
            platform: spec.platform,
            app: spec.app,
            nginx_config: spec.nginx_config,
            config: spec.config,
            created_at: at,
            updated_at: at,
        }
    }

    pub fn status(&self) -> EnvironmentStatus {
        self.lifecycle.status()
    }

    /// Seed 003 `is_active`.
    pub fn is_active(&self) -> bool {
        self.status() == EnvironmentStatus::Active
    }

    /// Moves the lifecycle; `updated_at` follows, never backwards.
    pub fn transition(&mut self, to: EnvironmentStatus, at: Timestamp) -> Result<(), TransitionError> {
        self.lifecycle.transition(to, at)?;
        self.updated_at = self.updated_at.max(at);
        Ok(())
    }

    /// Takes the config's current description; true when anything changed.
    pub fn apply_spec(&mut self, spec: &EnvironmentSpec, at: Timestamp) -> bool {
        let changed = self.kind != spec.kind
            || self.domain != spec.domain
            || self.https != spec.https
            || self.platform != spec.platform
            || self.app != spec.app
            || self.nginx_config != spec.nginx_config
            || self.config != spec.config;
        if changed {
            self.kind = spec.kind;
            self.domain.clone_from(&spec.domain);
            self.https = spec.https;
            self.platform = spec.platform;
            self.app.clone_from(&spec.app);
            self.nginx_config.clone_from(&spec.nginx_config);
            self.config = spec.config.clone();
            self.updated_at = self.updated_at.max(at);
        }
        changed
    }
}
