//! What every command shares: where the config and state are, the store,
//! the printer and who the operator is.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::Context as _;
use rollway_config::{Config, ConfigError, VariableFormat};
use rollway_secrets::{EnvRef, Recipient, VariableDecl, Vault, VaultConfig, VaultError};
use rollway_store::{PreOpenError, Store, StoreLocation, SystemClock};

use crate::cli::Global;
use crate::exit::{Code, coded};
use crate::output::Printer;

#[derive(Debug)]
pub struct Session {
    pub global: Global,
    pub printer: Printer,
}

impl Session {
    pub fn new(global: Global, printer: Printer) -> Self {
        Self { global, printer }
    }

    pub fn config_path(&self) -> &Path {
        &self.global.config
    }

    /// The state directory: `--state-dir`, else `.rollway/` beside the config.
    pub fn state_dir(&self) -> PathBuf {
        match &self.global.state_dir {
            Some(d) => d.clone(),
            None => {
                let parent = self.global.config.parent().filter(|p| !p.as_os_str().is_empty());
                parent.unwrap_or_else(|| Path::new(".")).join(".rollway")
            }
        }
    }

    /// Loads and checks rollway.toml; every problem at once (exit 2).
    pub fn config(&self) -> anyhow::Result<Config> {
        let path = self.config_path();
        match rollway_config::load(path) {
            Err(ConfigError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Err(coded(
                Code::Invalid,
                anyhow::anyhow!(
                    "no config at {}: run `rollway init` to write one, or pass --config PATH",
                    path.display()
                ),
            )),
            other => Ok(other?),
        }
    }

    /// Opens the store (migrating it), creating the state directory for SQLite.
    /// A new SQLite store is created only at the default path (in the state
    /// directory) or with `--create-store`; an empty or damaged file is an
    /// error, and so is a URL Rollway would misread (see `StoreLocation::parse`).
    pub fn store(&self) -> anyhow::Result<Box<dyn Store>> {
        let arg = self.global.store.as_deref().filter(|s| !s.trim().is_empty());
        let loc = StoreLocation::parse(arg, &self.state_dir()).map_err(|e| coded(Code::Invalid, e))?;
        let default = arg.is_none();
        let may_create = default || self.global.create_store;
        rollway_store::check_before_open(&loc, may_create, default).map_err(|e| {
            let code = match e {
                PreOpenError::Missing { .. } | PreOpenError::NoDirectory { .. } => Code::Invalid,
                _ => Code::Failed,
            };
            coded(code, e)
        })?;
        rollway_store::open(&loc, Arc::new(SystemClock)).with_context(|| format!("cannot open the store at {loc}"))
    }

    /// The config's environments, synced into the store (created when first seen).
    pub fn synced_store(&self) -> anyhow::Result<(Config, Box<dyn Store>)> {
        let config = self.config()?;
        let store = self.store()?;
        for spec in config.environment_specs() {
            store
                .sync_environment(&spec)
                .with_context(|| format!("cannot record environment {}", spec.name))?;
        }
        Ok((config, store))
    }

    /// Who is acting: --operator, $ROLLWAY_OPERATOR, the git user email, user@hostname.
    pub fn operator(&self) -> String {
        if let Some(op) = self.global.operator.clone().filter(|s| !s.trim().is_empty()) {
            return op;
        }
        if let Ok(op) = std::env::var("ROLLWAY_OPERATOR")
            && !op.trim().is_empty()
        {
            return op;
        }
        let git = Command::new("git").args(["config", "user.email"]).output();
        if let Ok(out) = git {
            let email = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if out.status.success() && !email.is_empty() {
                return email;
            }
        }
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into());
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "localhost".into());
        format!("{user}@{host}")
    }

    /// An environment's variables for commands that run on this machine
    /// (build and pipeline jobs): the vault's values when there is an
    /// identity, then the environment's plain `vars`. Arms both masking
    /// doors (this printer and the store's event log) with its secrets.
    pub fn env_values(&self, config: &Config, store: &dyn Store, env: &str) -> anyhow::Result<Vec<(String, String)>> {
        let env_ref = self.env_ref(config, env)?;
        let mut values: Vec<(String, String)> = Vec::new();
        let vault = match self.vault(config, store) {
            Ok(v) => Some(v),
            Err(e) if self.has_stored_values(config, store, env)? => return Err(e),
            Err(_) => None,
        };
        if let Some(vault) = vault {
            let mut secrets = Vec::new();
            for (k, v) in vault.values(&env_ref.name)? {
                if vault.is_secret(&env_ref.name, &k)? {
                    secrets.push(v.clone());
                }
                values.push((k, v));
            }
            self.printer.add_secrets(secrets);
            store.set_masker(self.printer.masker());
        }
        if let Some(e) = config.environments.get(env) {
            values.extend(e.vars.clone());
        }
        Ok(values)
    }
}

/// Secrets: the identity, the vault and environment references.
impl Session {
    /// The directory rollway.toml is in; relative paths in it start here.
    pub fn config_dir(&self) -> PathBuf {
        match self.global.config.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(p) => p.to_owned(),
            None => PathBuf::from("."),
        }
    }

    /// Where the local age identity lives (ROLLWAY_IDENTITY, XDG, HOME).
    pub fn identity_path(&self) -> anyhow::Result<PathBuf> {
        rollway_secrets::identity_path(&|k| std::env::var(k).ok()).map_err(|e| coded(Code::Invalid, e))
    }

    /// A configured environment by name, or exit 2 listing the known ones.
    pub fn env_ref(&self, config: &Config, name: &str) -> anyhow::Result<EnvRef> {
        match config.environments.get(name) {
            Some(e) => Ok(EnvRef {
                name: name.to_owned(),
                kind: e.kind,
            }),
            None => {
                let known: Vec<_> = config.environments.keys().cloned().collect();
                Err(coded(
                    Code::Invalid,
                    anyhow::anyhow!(
                        "no environment '{}' in {}: known environments are {}",
                        rollway_model::names::shown(name),
                        self.config_path().display(),
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ),
                ))
            }
        }
    }

    /// Whether `env` holds values only an identity can read: records in the
    /// store or a secrets file. Without either, a command may go on with the
    /// plain `vars` of rollway.toml; with one, a missing identity is an error.
    pub fn has_stored_values(&self, config: &Config, store: &dyn Store, env: &str) -> anyhow::Result<bool> {
        let file = self.config_dir().join(&config.secrets.dir).join(format!("{env}.age"));
        if file.exists() {
            return Ok(true);
        }
        let records = store
            .variables(env)
            .with_context(|| format!("cannot read the variables of {env} from the store"))?;
        Ok(!records.is_empty())
    }

    /// The vault of this project, opened with the local identity.
    pub fn vault<'s>(&self, config: &Config, store: &'s dyn Store) -> anyhow::Result<Vault<'s>> {
        let mut recipients = Vec::new();
        for r in &config.secrets.recipients {
            let parsed: Recipient = r.parse().map_err(|e| {
                coded(
                    Code::Invalid,
                    anyhow::anyhow!("[secrets] recipients in {}: {e}", self.config_path().display()),
                )
            })?;
            recipients.push(parsed);
        }
        let decls = config
            .variables
            .iter()
            .map(|(key, v)| VariableDecl {
                key: key.clone(),
                ty: v.var_type,
                scheme: v.scheme.clone(),
                format: v.format.as_ref().map(format_spec),
                secret: v.secret,
                required_for: v.required_for.clone(),
            })
            .collect();
        let cfg = VaultConfig {
            dir: self.config_dir().join(&config.secrets.dir),
            recipients,
            decls,
        };
        let identity = self.identity_path()?;
        let vault = Vault::open(cfg, &identity, store).map_err(|e| match e {
            VaultError::NoIdentity { .. } => coded(Code::Invalid, e),
            other => anyhow::Error::new(other),
        })?;
        // Tests shorten the wait for another writer with ROLLWAY_SECRETS_LOCK_WAIT.
        let wait = std::env::var("ROLLWAY_SECRETS_LOCK_WAIT")
            .ok()
            .and_then(|v| rollway_model::time::parse_duration(&v).ok());
        Ok(match wait {
            Some(w) => vault.with_lock_wait(w),
            None => vault,
        })
    }
}

fn format_spec(f: &VariableFormat) -> String {
    match f {
        VariableFormat::Uuid => "uuid".to_owned(),
        VariableFormat::Hex(n) => format!("hex:{n}"),
        VariableFormat::Base64(n) => format!("base64:{n}"),
        VariableFormat::Regex(r) => r.clone(),
    }
}
