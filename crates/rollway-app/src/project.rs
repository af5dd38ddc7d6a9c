//! Opening a project: where its config and state are, the store, the
//! vault, who the operator is, the secrets every output door masks, and how
//! a long run learns it was interrupted. Every use case starts here.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use anyhow::Context as _;
use rollway_config::{Config, ConfigError, VariableFormat};
use rollway_model::Masker;
use rollway_secrets::{EnvRef, Recipient, VariableDecl, Vault, VaultConfig, VaultError};
use rollway_store::{PreOpenError, Store, StoreLocation, SystemClock};

use crate::error::{Code, Error, Result};

/// Where a project is and who acts on it: what the CLI's global options
/// (or a server's configuration) say.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The project file, rollway.toml.
    pub config: PathBuf,
    /// Where Rollway keeps its state (default: `.rollway/` beside the config).
    pub state_dir: Option<PathBuf>,
    /// The store: a SQLite path or `postgres://…` (default: SQLite in the state directory).
    pub store: Option<String>,
    /// Create a new SQLite store at `store` when none exists there.
    pub create_store: bool,
    /// Who is acting (default: $ROLLWAY_OPERATOR, the git user email, user@hostname).
    pub operator: Option<String>,
}

/// The values that must never leave in clear: every output door (the
/// CLI's printer, the store's event log, a server's answers) masks with the
/// same set, which grows as a use case reads secrets.
#[derive(Debug, Clone, Default)]
pub struct Masks {
    inner: Arc<RwLock<(Vec<String>, Masker)>>,
}

impl Masks {
    /// Adds values that must never be shown in clear.
    pub fn add(&self, values: impl IntoIterator<Item = String>) {
        let mut guard = self.inner.write().unwrap_or_else(|p| p.into_inner());
        guard.0.extend(values);
        guard.1 = Masker::new(&guard.0);
    }

    /// The masking filter as it stands.
    pub fn masker(&self) -> Masker {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).1.clone()
    }

    /// `text` with every known secret masked.
    pub fn mask(&self, text: &str) -> String {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).1.mask(text)
    }
}

/// What a flag is for: the host changes of a deployment, or one pipeline
/// run (which the CLI stops on Ctrl-C alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Deploy,
    Pipeline,
}

/// How a long run learns it should stop. The CLI arms signal handlers on
/// first use (so commands that never ask keep the default Ctrl-C); a
/// server hands in its own flag.
pub trait Interrupt: Send + Sync {
    /// The flag a run of `scope` watches; arms it when needed.
    fn flag(&self, scope: Scope) -> Arc<AtomicBool>;
    /// Whether a deployment's flag was set (arms nothing).
    fn interrupted(&self) -> bool;
}

/// A plain flag, set by whoever holds it (a server's shutdown, a test).
#[derive(Debug, Clone, Default)]
pub struct Flag(pub Arc<AtomicBool>);

impl Interrupt for Flag {
    fn flag(&self, _scope: Scope) -> Arc<AtomicBool> {
        Arc::clone(&self.0)
    }

    fn interrupted(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A project: rollway.toml, its state directory and store, the operator.
/// Opening is lazy: each use case reads what it needs, in the same order
/// every time, so the same input fails with the same error.
#[derive(Clone)]
pub struct Project {
    options: Options,
    masks: Masks,
    interrupt: Arc<dyn Interrupt>,
    /// The bytes this run's backups and restores moved through storage.
    backup_meter: rollway_ops::backup::Meter,
}

impl std::fmt::Debug for Project {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Project")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Project {
    pub fn new(options: Options, masks: Masks, interrupt: Arc<dyn Interrupt>) -> Self {
        Self {
            options,
            masks,
            interrupt,
            backup_meter: rollway_ops::backup::Meter::default(),
        }
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The secrets every output door masks.
    pub fn masks(&self) -> &Masks {
        &self.masks
    }

    /// The bytes this run's backups and restores have moved through their
    /// storage so far: what a progress bar shows, read from another thread.
    pub fn backup_meter(&self) -> &rollway_ops::backup::Meter {
        &self.backup_meter
    }

    /// The same project whose long runs watch `interrupt` instead (a
    /// server stopping the windows it watches).
    pub fn with_interrupt(&self, interrupt: Arc<dyn Interrupt>) -> Self {
        Self {
            options: self.options.clone(),
            masks: self.masks.clone(),
            interrupt,
            backup_meter: self.backup_meter.clone(),
        }
    }

    pub fn interrupt(&self) -> &dyn Interrupt {
        &*self.interrupt
    }

    pub fn config_path(&self) -> &Path {
        &self.options.config
    }

    /// The state directory: `--state-dir`, else `.rollway/` beside the config.
    pub fn state_dir(&self) -> PathBuf {
        match &self.options.state_dir {
            Some(d) => d.clone(),
            None => {
                let parent = self.options.config.parent().filter(|p| !p.as_os_str().is_empty());
                parent.unwrap_or_else(|| Path::new(".")).join(".rollway")
            }
        }
    }

    /// The directory rollway.toml is in; relative paths in it start here.
    pub fn config_dir(&self) -> PathBuf {
        match self.options.config.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(p) => p.to_owned(),
            None => PathBuf::from("."),
        }
    }

    /// Loads and checks rollway.toml; every problem at once (exit 2).
    pub fn config(&self) -> Result<Config> {
        let path = self.config_path();
        match rollway_config::load(path) {
            Err(ConfigError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Err(Error::invalid(format_args!(
                    "no config at {}: run `rollway init` to write one, or pass --config PATH",
                    path.display()
                )))
            }
            other => Ok(other?),
        }
    }

    /// Opens the store (migrating it), creating the state directory for SQLite.
    /// A new SQLite store is created only at the default path (in the state
    /// directory) or with `create_store`; an empty or damaged file is an
    /// error, and so is a URL Rollway would misread (see `StoreLocation::parse`).
    pub fn store(&self) -> Result<Box<dyn Store>> {
        let arg = self.options.store.as_deref().filter(|s| !s.trim().is_empty());
        let loc = StoreLocation::parse(arg, &self.state_dir()).map_err(|e| Error::new(Code::Invalid, e))?;
        let default = arg.is_none();
        let may_create = default || self.options.create_store;
        rollway_store::check_before_open(&loc, may_create, default).map_err(|e| {
            let code = match e {
                PreOpenError::Missing { .. } | PreOpenError::NoDirectory { .. } => Code::Invalid,
                _ => Code::Failed,
            };
            Error::new(code, e)
        })?;
        Ok(rollway_store::open(&loc, Arc::new(SystemClock))
            .with_context(|| format!("cannot open the store at {loc}"))?)
    }

    /// The config's environments, synced into the store (created when first seen).
    pub fn open(&self) -> Result<(Config, Box<dyn Store>)> {
        let config = self.config()?;
        let store = self.store()?;
        for spec in config.environment_specs() {
            store
                .sync_environment(&spec)
                .with_context(|| format!("cannot record environment {}", spec.name))?;
        }
        Ok((config, store))
    }

    /// Who is acting: the option, $ROLLWAY_OPERATOR, the git user email, user@hostname.
    pub fn operator(&self) -> String {
        if let Some(op) = self.options.operator.clone().filter(|s| !s.trim().is_empty()) {
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
        format!("{user}@{}", hostname())
    }

    /// Adds `values` to the masks and arms the store's event log with them.
    pub(crate) fn mask_secrets(&self, store: &dyn Store, values: impl IntoIterator<Item = String>) {
        self.masks.add(values);
        store.set_masker(self.masks.masker());
    }

    /// An environment's variables for commands that run on this machine
    /// (build and pipeline jobs): the vault's values when there is an
    /// identity, then the environment's plain `vars`. Arms both masking
    /// doors (the masks and the store's event log) with its secrets.
    pub fn env_values(&self, config: &Config, store: &dyn Store, env: &str) -> Result<Vec<(String, String)>> {
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
            self.mask_secrets(store, secrets);
        }
        if let Some(e) = config.environments.get(env) {
            values.extend(e.vars.clone());
        }
        Ok(values)
    }

    /// Where the local age identity lives (ROLLWAY_IDENTITY, XDG, HOME).
    pub fn identity_path(&self) -> Result<PathBuf> {
        rollway_secrets::identity_path(&|k| std::env::var(k).ok()).map_err(|e| Error::new(Code::Invalid, e))
    }

    /// A configured environment by name, or exit 2 listing the known ones.
    pub fn env_ref(&self, config: &Config, name: &str) -> Result<EnvRef> {
        match config.environments.get(name) {
            Some(e) => Ok(EnvRef {
                name: name.to_owned(),
                kind: e.kind,
            }),
            None => {
                let known: Vec<_> = config.environments.keys().cloned().collect();
                Err(Error::invalid(format_args!(
                    "no environment '{}' in {}: known environments are {}",
                    rollway_model::names::shown(name),
                    self.config_path().display(),
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                )))
            }
        }
    }

    /// Whether `env` holds values only an identity can read: records in the
    /// store or a secrets file. Without either, a command may go on with the
    /// plain `vars` of rollway.toml; with one, a missing identity is an error.
    pub fn has_stored_values(&self, config: &Config, store: &dyn Store, env: &str) -> Result<bool> {
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
    pub fn vault<'s>(&self, config: &Config, store: &'s dyn Store) -> Result<Vault<'s>> {
        let mut recipients = Vec::new();
        for r in &config.secrets.recipients {
            let parsed: Recipient = r.parse().map_err(|e| {
                Error::invalid(format_args!(
                    "[secrets] recipients in {}: {e}",
                    self.config_path().display()
                ))
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
            VaultError::NoIdentity { .. } => Error::new(Code::Invalid, e),
            other => Error::from(other),
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

/// This machine's name (`localhost` when the kernel does not say).
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
