//! An environment's variables as Rollway keeps them: values age-encrypted in
//! `secrets/ENV.age` (dotenv inside, meant to be committed), names and
//! metadata in the store with an event for every change. Values are checked
//! before anything is written, so a refused `set` changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rollway_model::rules::variable::validate_key;
use rollway_model::{EnvironmentKind, EventKind, Level, Masker, NewEvent, Platform, Variable, VariableType};
use rollway_store::{Store, StoreError};
use serde_json::json;

use crate::age_file::{Identity, Recipient, load_identities, read_secrets_file, write_secrets_file};
use crate::lock::{DEFAULT_LOCK_WAIT, LockError, SecretsLock};
use crate::validate::{Problem, VariableDecl, check_environment};

/// Why a vault operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(transparent)]
    Secrets(#[from] crate::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no identity at {}: run `rollway secrets init` to create one, or set ROLLWAY_IDENTITY to an age or ssh-ed25519 key file", path.display())]
    NoIdentity { path: PathBuf },
    #[error("{} problem{} with {environment}:\n{}", problems.len(), if problems.len() == 1 { "" } else { "s" }, problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        environment: String,
        problems: Vec<Problem>,
    },
    #[error("'{}' {why}", shown_key(key))]
    BadKey { key: String, why: String },
    #[error("{key} is declared secret in rollway.toml; --plain cannot make it plain (set `secret = false` there)")]
    PlainButDeclaredSecret { key: String },
    #[error(transparent)]
    Locked(#[from] LockError),
}

/// The most one variable may take in a process environment: Linux refuses
/// to start a process with a `KEY=VALUE` string longer than 128 KiB
/// (`MAX_ARG_STRLEN`, counting the terminating NUL).
pub const MAX_ENV_ENTRY: usize = 128 * 1024;

/// Why `key=value` cannot reach a process environment, or None.
pub fn too_large(key: &str, value: &str) -> Option<String> {
    let size = key.len() + 1 + value.len() + 1;
    (size > MAX_ENV_ENTRY).then(|| {
        format!(
            "value is {} bytes; a process environment takes at most 128 KiB per variable ({MAX_ENV_ENTRY} bytes for KEY=VALUE), so the service could not start: keep large data in a file and put its path in the variable",
            value.len()
        )
    })
}

/// A variable name for a message: escaped and shortened, and anything after
/// an '=' (a value typed with the name) hidden.
fn shown_key(key: &str) -> String {
    match key.split_once('=') {
        Some((name, _)) => format!("{}=****", rollway_model::names::shown(name)),
        None => rollway_model::names::shown(key),
    }
}

/// What the vault needs from rollway.toml.
#[derive(Debug, Clone)]
pub struct VaultConfig {
    /// The secrets directory (absolute, or relative to the working directory).
    pub dir: PathBuf,
    /// `[secrets] recipients`; empty means the local identity's own recipient.
    pub recipients: Vec<Recipient>,
    pub decls: Vec<VariableDecl>,
}

/// Which environment an operation is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvRef {
    pub name: String,
    pub kind: EnvironmentKind,
}

/// How values are set.
#[derive(Debug, Clone, Default)]
pub struct SetOptions {
    /// Not secret: never masked (`--plain`).
    pub plain: bool,
    /// Accept values below the strength bar (`--allow-weak`); recorded.
    pub allow_weak: bool,
    /// Why, for the event: "set", "generated", "imported", "rotated".
    pub action: String,
    pub operator: String,
}

/// Values and records of every environment of one project.
#[derive(Debug)]
pub struct Vault<'s> {
    cfg: VaultConfig,
    identities: Vec<Identity>,
    store: &'s dyn Store,
    lock_wait: std::time::Duration,
}

impl<'s> Vault<'s> {
    /// Opens the vault with the identity at `identity_path`.
    pub fn open(cfg: VaultConfig, identity_path: &Path, store: &'s dyn Store) -> Result<Self, VaultError> {
        if !identity_path.exists() {
            return Err(VaultError::NoIdentity {
                path: identity_path.to_owned(),
            });
        }
        let identities = load_identities(identity_path)?;
        Ok(Self {
            cfg,
            identities,
            store,
            lock_wait: DEFAULT_LOCK_WAIT,
        })
    }

    /// How long a change waits for another one to the same file (default 10 s).
    #[must_use]
    pub fn with_lock_wait(mut self, wait: std::time::Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// Holds the lock of an environment's file for a read-modify-write.
    fn lock(&self, env: &str, operator: &str) -> Result<SecretsLock, VaultError> {
        let holder = if operator.is_empty() { "rollway" } else { operator };
        Ok(crate::lock::lock(&self.path(env), holder, self.lock_wait)?)
    }

    /// Who files are encrypted to: the configured recipients, else ourselves.
    pub fn recipients(&self) -> Vec<Recipient> {
        if self.cfg.recipients.is_empty() {
            self.identities.iter().map(Identity::recipient).collect()
        } else {
            self.cfg.recipients.clone()
        }
    }

    /// The local identities, which open what is encrypted to the vault's recipients.
    pub fn identities(&self) -> &[Identity] {
        &self.identities
    }

    /// Whether the local identity can read what the vault writes.
    pub fn can_read_own_writes(&self) -> bool {
        let mine: Vec<Recipient> = self.identities.iter().map(Identity::recipient).collect();
        self.recipients().iter().any(|r| mine.contains(r))
    }

    /// The encrypted file of an environment.
    pub fn path(&self, env: &str) -> PathBuf {
        self.cfg.dir.join(format!("{env}.age"))
    }

    /// The clear values of an environment (none when it has no file yet).
    pub fn values(&self, env: &str) -> Result<BTreeMap<String, String>, VaultError> {
        let path = self.path(env);
        if !path.exists() {
            return Ok(BTreeMap::new());
        }
        Ok(read_secrets_file(&path, &self.identities)?.into_iter().collect())
    }

    fn decl(&self, key: &str) -> Option<&VariableDecl> {
        self.cfg.decls.iter().find(|d| d.key == key)
    }

    /// Whether a key's value is masked: its declaration, else its record, else yes.
    pub fn is_secret(&self, env: &str, key: &str) -> Result<bool, VaultError> {
        if let Some(d) = self.decl(key) {
            return Ok(d.secret);
        }
        Ok(self.store.variable(env, key)?.is_none_or(|v| v.secret))
    }

    /// The records of an environment, in key order. A key found in the file
    /// with no record yet (the file was written with `age` directly, or came
    /// through git) is recorded now, with an event.
    pub fn records(&self, env: &EnvRef, operator: &str) -> Result<Vec<Variable>, VaultError> {
        let mut values = self.values(&env.name)?;
        let mut records: BTreeMap<String, Variable> = self
            .store
            .variables(&env.name)?
            .into_iter()
            .map(|v| (v.key.clone(), v))
            .collect();
        let _lock = if values.keys().any(|k| !records.contains_key(k)) {
            // Record what was found under the lock, against the file as it is then.
            let lock = self.lock(&env.name, operator)?;
            values = self.values(&env.name)?;
            Some(lock)
        } else {
            None
        };
        for key in values.keys() {
            if !records.contains_key(key) {
                let var = self.new_record(&env.name, key, false)?;
                let ev = self.event(env, key, "found", operator, &[]);
                records.insert(key.clone(), self.store.record_variable(&var, ev)?);
            }
        }
        Ok(records.into_values().collect())
    }

    fn new_record(&self, env: &str, key: &str, plain: bool) -> Result<Variable, VaultError> {
        let mut var = Variable::new(env, key, self.store.clock().now());
        match self.decl(key) {
            Some(d) => {
                var.value_type = d.ty;
                var.scheme.clone_from(&d.scheme);
                var.secret = d.secret;
            }
            None => {
                var.value_type = VariableType::String;
                var.secret = !plain;
            }
        }
        Ok(var)
    }

    fn event(&self, env: &EnvRef, key: &str, action: &str, operator: &str, extra: &[(&str, bool)]) -> NewEvent {
        let mut data = json!({ "key": key, "action": action, "file": self.path(&env.name) });
        for (k, v) in extra {
            data[*k] = json!(v);
        }
        NewEvent::new(
            EventKind::SecretChanged,
            Level::Info,
            format!("{action} {key} in {}", env.name),
        )
        .environment(env.name.clone())
        .operator(operator)
        .data(data)
    }

    /// The platform of an environment as the store records it (synced from
    /// rollway.toml); self-hosted for one not recorded yet.
    fn platform(&self, env: &str) -> Result<Platform, VaultError> {
        Ok(self
            .store
            .environment(env)?
            .map_or(Platform::SelfHosted, |e| e.platform))
    }

    /// The problems `entries` would have in `env`, each key against the
    /// platform's naming rule and each value checked as declared (or as a
    /// plain string when undeclared).
    pub fn problems_of(&self, env: &EnvRef, entries: &[(String, String)], opts: &SetOptions) -> Vec<Problem> {
        // A store that cannot say the platform is reported by `set`, which
        // asks again before it writes; here the default platform's rule applies.
        let platform = self.platform(&env.name).unwrap_or(Platform::SelfHosted);
        let mut problems = Vec::new();
        let mut decls = Vec::new();
        for (key, _) in entries {
            match self.decl(key) {
                Some(d) => decls.push(VariableDecl {
                    required_for: Vec::new(),
                    ..d.clone()
                }),
                None => decls.push(VariableDecl {
                    key: key.clone(),
                    ty: VariableType::String,
                    scheme: None,
                    format: None,
                    secret: !opts.plain,
                    required_for: Vec::new(),
                }),
            }
        }
        for (key, value) in entries {
            if let Some(message) = too_large(key, value) {
                problems.push(Problem {
                    key: key.clone(),
                    message,
                });
            }
        }
        let values: BTreeMap<String, String> = entries.iter().cloned().collect();
        let allow: BTreeSet<String> = if opts.allow_weak {
            values.keys().cloned().collect()
        } else {
            BTreeSet::new()
        };
        problems.extend(check_environment(env.kind, platform, &decls, &values, &allow));
        problems
    }

    /// Sets values: every one is checked first (all problems at once, nothing
    /// written on any), then the file is rewritten and each record updated
    /// with a `secret-changed` event. A replaced value counts as rotated.
    pub fn set(
        &self,
        env: &EnvRef,
        entries: &[(String, String)],
        opts: &SetOptions,
    ) -> Result<Vec<Variable>, VaultError> {
        let platform = self.platform(&env.name)?;
        for (key, _) in entries {
            if let Some(why) = rollway_model::names::name_too_long(key) {
                return Err(VaultError::BadKey {
                    key: key.clone(),
                    why: format!("{why}: use a shorter variable name"),
                });
            }
            // Seed 003: the platform's naming rule, the model's one copy.
            if let Some(v) = validate_key(key, platform).into_iter().next() {
                return Err(VaultError::BadKey {
                    key: key.clone(),
                    why: v.message,
                });
            }
            if opts.plain && self.decl(key).is_some_and(|d| d.secret) {
                return Err(VaultError::PlainButDeclaredSecret { key: key.clone() });
            }
        }
        let problems = self.problems_of(env, entries, opts);
        if !problems.is_empty() {
            return Err(VaultError::Invalid {
                environment: env.name.clone(),
                problems,
            });
        }
        let _lock = self.lock(&env.name, &opts.operator)?;
        let mut values = self.values(&env.name)?;
        let previous = values.clone();
        for (k, v) in entries {
            values.insert(k.clone(), v.clone());
        }
        let ordered: Vec<(String, String)> = values.into_iter().collect();
        write_secrets_file(&self.path(&env.name), &ordered, &self.recipients())?;
        let now = self.store.clock().now();
        let mut out = Vec::new();
        for (key, value) in entries {
            let existing = self.store.variable(&env.name, key)?;
            let mut var = match existing {
                Some(v) => v,
                None => self.new_record(&env.name, key, opts.plain)?,
            };
            let rotated = previous.get(key).is_some_and(|old| old != value);
            if rotated {
                var.rotated(now);
            }
            var.updated_at = var.updated_at.max(now);
            if self.decl(key).is_none() {
                var.secret = !opts.plain;
            }
            var.allow_weak = opts.allow_weak && var.secret;
            let ev = self.event(
                env,
                key,
                &opts.action,
                &opts.operator,
                &[
                    ("rotated", rotated),
                    ("allow_weak", var.allow_weak),
                    ("secret", var.secret),
                ],
            );
            out.push(self.store.record_variable(&var, ev)?);
        }
        Ok(out)
    }

    /// Removes a variable from the file and the store; false when it was in neither.
    pub fn remove(&self, env: &EnvRef, key: &str, operator: &str) -> Result<bool, VaultError> {
        let _lock = self.lock(&env.name, operator)?;
        let mut values = self.values(&env.name)?;
        let in_file = values.remove(key).is_some();
        if in_file {
            let ordered: Vec<(String, String)> = values.into_iter().collect();
            write_secrets_file(&self.path(&env.name), &ordered, &self.recipients())?;
        }
        let ev = self.event(env, key, "removed", operator, &[]);
        let in_store = self.store.remove_variable(&env.name, key, ev.clone())?;
        if in_file && !in_store {
            self.store.append_event(ev)?;
        }
        Ok(in_file || in_store)
    }

    /// Re-encrypts an environment's file to the current recipients.
    pub fn rekey(&self, env: &EnvRef, operator: &str) -> Result<bool, VaultError> {
        let path = self.path(&env.name);
        if !path.exists() {
            return Ok(false);
        }
        let _lock = self.lock(&env.name, operator)?;
        let ordered: Vec<(String, String)> = self.values(&env.name)?.into_iter().collect();
        write_secrets_file(&path, &ordered, &self.recipients())?;
        let recipients: Vec<String> = self.recipients().iter().map(|r| r.key_text()).collect();
        let ev = NewEvent::new(EventKind::SecretChanged, Level::Info, format!("rekeyed {}", env.name))
            .environment(env.name.clone())
            .operator(operator)
            .data(json!({ "action": "rekeyed", "recipients": recipients }));
        self.store.append_event(ev)?;
        Ok(true)
    }

    /// Every problem of an environment's values against the declarations.
    pub fn check(&self, env: &EnvRef) -> Result<Vec<Problem>, VaultError> {
        let values = self.values(&env.name)?;
        let allow: BTreeSet<String> = self
            .store
            .variables(&env.name)?
            .into_iter()
            .filter(|v| v.allow_weak)
            .map(|v| v.key)
            .collect();
        Ok(check_environment(
            env.kind,
            self.platform(&env.name)?,
            &self.cfg.decls,
            &values,
            &allow,
        ))
    }

    /// Where the store and the file disagree: a name recorded in the store
    /// with no value in the file, or a value in the file with no record.
    pub fn disagreements(&self, env: &EnvRef) -> Result<Vec<Problem>, VaultError> {
        let values = self.values(&env.name)?;
        let recorded: BTreeSet<String> = self.store.variables(&env.name)?.into_iter().map(|v| v.key).collect();
        let file = self.path(&env.name);
        let mut problems = Vec::new();
        for key in recorded.iter().filter(|k| !values.contains_key(*k)) {
            problems.push(Problem {
                key: key.clone(),
                message: format!(
                    "is recorded in the store but has no value in {}: set it again with `rollway secrets set {} {key}` or remove it with `rollway secrets rm {} {key}`",
                    file.display(),
                    env.name,
                    env.name
                ),
            });
        }
        for key in values.keys().filter(|k| !recorded.contains(*k)) {
            problems.push(Problem {
                key: key.clone(),
                message: format!(
                    "has a value in {} but no record in the store: `rollway secrets list {}` records it",
                    file.display(),
                    env.name
                ),
            });
        }
        Ok(problems)
    }

    /// A masker for the secret values of an environment.
    pub fn masker(&self, env: &str) -> Result<Masker, VaultError> {
        let values = self.values(env)?;
        let mut secret = Vec::new();
        for (k, v) in &values {
            if self.is_secret(env, k)? {
                secret.push(v.clone());
            }
        }
        Ok(Masker::new(secret))
    }

    /// The release env file of an environment: `vars` (plain values from
    /// rollway.toml) overlaid with its stored values, which win — a value set
    /// for one environment is more specific than the config's default.
    /// systemd `EnvironmentFile` syntax; the caller writes it with mode 0600.
    pub fn env_file(&self, env: &str, vars: &BTreeMap<String, String>) -> Result<String, VaultError> {
        self.env_file_with(env, vars, &BTreeMap::new())
    }

    /// [`Vault::env_file`] with `overrides` in place of stored values (a
    /// rotation deploys a value before it is stored).
    pub fn env_file_with(
        &self,
        env: &str,
        vars: &BTreeMap<String, String>,
        overrides: &BTreeMap<String, String>,
    ) -> Result<String, VaultError> {
        let mut all = vars.clone();
        all.extend(self.values(env)?);
        all.extend(overrides.clone());
        let entries: Vec<(String, String)> = all.into_iter().collect();
        Ok(crate::dotenv::render_env_file(&entries))
    }

    /// Records that a value was pushed to the environment's platform.
    pub fn mark_synced(&self, env: &EnvRef, key: &str, operator: &str) -> Result<Variable, VaultError> {
        let mut var = match self.store.variable(&env.name, key)? {
            Some(v) => v,
            None => self.new_record(&env.name, key, false)?,
        };
        var.synced(self.store.clock().now());
        let ev = self.event(env, key, "synced", operator, &[]);
        Ok(self.store.record_variable(&var, ev)?)
    }

    /// The audited bypass of masking: records who revealed what.
    pub fn record_reveal(&self, env: &EnvRef, key: &str, operator: &str) -> Result<(), VaultError> {
        let ev = NewEvent::new(
            EventKind::SecretRevealed,
            Level::Warn,
            format!("revealed {key} of {}", env.name),
        )
        .environment(env.name.clone())
        .operator(operator)
        .data(json!({ "key": key }));
        self.store.append_event(ev)?;
        Ok(())
    }
}
