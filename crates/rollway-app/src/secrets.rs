//! Secrets: the local identity, and each environment's values — set, read
//! (masked unless revealed, an audited event), listed, removed, imported,
//! generated, rotated through a deploy, checked, re-encrypted and synced to
//! a platform.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use rollway_config::Config;
use rollway_model::Variable as VariableRecord;
use rollway_secrets::{EnvRef, Identity, SetOptions, Vault, VaultError};
pub use rollway_secrets::{MAX_ENV_ENTRY, MAX_SECRET_BYTES};

use rollway_store::Store;

use crate::deploy::{DeployProgress, DeployRequest, Deployed};
use crate::error::{Code, Error, Note, Result};
use crate::project::Project;

/// How a value is stored.
#[derive(Debug, Clone, Copy, Default)]
pub struct SetFlags {
    /// Not a secret: never masked.
    pub plain: bool,
    /// Accept a value below the strength bar (recorded).
    pub allow_weak: bool,
}

/// Values stored by `set`, `import`, `generate` or `rotate`.
#[derive(Debug, Clone)]
pub struct Stored {
    pub environment: String,
    /// `set`, `imported`, `generated` or `rotated`.
    pub action: String,
    pub records: Vec<VariableRecord>,
    /// The secrets file the values are encrypted in.
    pub path: PathBuf,
    /// Shown beside the answer (the identity cannot read its own writes).
    pub warning: Option<String>,
}

/// Opens the project and its vault for `env`, and arms both masking doors
/// with the environment's secrets.
fn open_env<'s>(p: &Project, config: &Config, store: &'s dyn Store, env: &str) -> Result<(Vault<'s>, EnvRef)> {
    let vault = p.vault(config, store)?;
    let env = arm(p, config, store, &vault, env)?;
    Ok((vault, env))
}

/// Resolves the environment and arms both masking doors with its secrets.
fn arm(p: &Project, config: &Config, store: &dyn Store, vault: &Vault<'_>, env: &str) -> Result<EnvRef> {
    let env = p.env_ref(config, env)?;
    let values = vault.values(&env.name)?;
    let mut secret = Vec::new();
    for (k, v) in values {
        if vault.is_secret(&env.name, &k)? {
            secret.push(v);
        }
    }
    p.mask_secrets(store, secret);
    Ok(env)
}

fn store_values(
    p: &Project,
    vault: &Vault<'_>,
    env: &EnvRef,
    entries: Vec<(String, String)>,
    flags: SetFlags,
    action: &str,
) -> Result<Stored> {
    if !flags.plain {
        p.masks().add(entries.iter().map(|(_, v)| v.clone()));
    }
    let opts = SetOptions {
        plain: flags.plain,
        allow_weak: flags.allow_weak,
        action: action.to_owned(),
        operator: p.operator(),
    };
    let records = vault.set(env, &entries, &opts).map_err(|e| match e {
        VaultError::Invalid { ref problems, .. } => {
            let details = serde_json::to_value(problems).unwrap_or_default();
            Error::new(Code::Invalid, anyhow::Error::new(e).context("nothing was stored")).with_details(details)
        }
        VaultError::BadKey { .. } | VaultError::PlainButDeclaredSecret { .. } => Error::new(Code::Invalid, e),
        other => Error::from(other),
    })?;
    let path = vault.path(&env.name);
    let warning = (!vault.can_read_own_writes()).then(|| {
        format!(
            "warning: your identity is not among [secrets] recipients; you cannot read {} back",
            path.display()
        )
    });
    Ok(Stored {
        environment: env.name.clone(),
        action: action.to_owned(),
        records,
        path,
        warning,
    })
}

/// Sets `key` in `env` to what `read` gives (read only once the
/// environment is known, so a wrong name fails before any prompt).
pub fn set(
    p: &Project,
    env: &str,
    key: &str,
    read: &mut dyn FnMut() -> Result<String>,
    flags: SetFlags,
) -> Result<Stored> {
    let (config, store) = p.open()?;
    let (vault, env) = open_env(p, &config, &*store, env)?;
    let value = read()?;
    store_values(p, &vault, &env, vec![(key.to_owned(), value)], flags, "set")
}

/// A value read back.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Got {
    pub environment: String,
    pub key: String,
    pub secret: bool,
    pub value: String,
    /// Shown in clear: the reveal was recorded as an event.
    #[serde(skip)]
    pub revealed: bool,
}

/// A value of `env`: a secret stays masked on every output door unless
/// `reveal`, which is recorded in the event log first.
pub fn get(p: &Project, env: &str, key: &str, reveal: bool) -> Result<Got> {
    let (config, store) = p.open()?;
    let (vault, env) = open_env(p, &config, &*store, env)?;
    let values = vault.values(&env.name)?;
    let Some(value) = values.get(key) else {
        return Err(Error::invalid(format_args!(
            "{key} is not set in {}: set it with `rollway secrets set {} {key}`",
            env.name, env.name
        )));
    };
    let secret = vault.is_secret(&env.name, key)?;
    let revealed = reveal && secret;
    if revealed {
        vault.record_reveal(&env, key, &p.operator())?;
    }
    Ok(Got {
        environment: env.name.clone(),
        key: key.to_owned(),
        secret,
        value: value.clone(),
        revealed,
    })
}

/// Names, types, secret or not, created, rotated and synced — never values.
pub fn list(p: &Project, env: &str) -> Result<Vec<VariableRecord>> {
    let (config, store) = p.open()?;
    let (vault, env) = open_env(p, &config, &*store, env)?;
    Ok(vault.records(&env, &p.operator())?)
}

/// Removes `key` from `env` (exit 2 when it is not set).
pub fn remove(p: &Project, env: &str, key: &str) -> Result<String> {
    let (config, store) = p.open()?;
    let (vault, env) = open_env(p, &config, &*store, env)?;
    if !vault.remove(&env, key, &p.operator())? {
        return Err(Error::invalid(format_args!("{key} is not set in {}", env.name)));
    }
    Ok(env.name)
}

/// Imports an age-encrypted file or a dotenv file.
pub fn import(p: &Project, env: &str, file: &Path, flags: SetFlags) -> Result<Stored> {
    let (config, store) = p.open()?;
    let (vault, env) = open_env(p, &config, &*store, env)?;
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let entries = import_entries(p, &bytes, file)?;
    p.mask_secrets(&*store, entries.iter().map(|(_, v)| v.clone()));
    store_values(p, &vault, &env, entries, flags, "imported")
}

/// What to generate.
#[derive(Debug, Clone)]
pub enum Generate {
    /// A set of values for a framework (strapi).
    Preset(String),
    /// One value of this many random bytes.
    Key(String, usize),
    /// Neither was named.
    Nothing,
}

/// Generates strong random values: a preset or one key.
pub fn generate(p: &Project, env: &str, what: Generate) -> Result<Stored> {
    let (config, store) = p.open()?;
    let (vault, env) = open_env(p, &config, &*store, env)?;
    let entries = match what {
        Generate::Preset(name) => rollway_secrets::preset(&name).map_err(|e| Error::new(Code::Invalid, e))?,
        Generate::Key(k, bytes) => {
            if bytes < 16 {
                return Err(Error::invalid(format_args!(
                    "--bytes {bytes} is too few: use at least 16 (32 gives 256 bits)"
                )));
            }
            vec![(k, rollway_secrets::random_secret(bytes)?)]
        }
        Generate::Nothing => {
            return Err(Error::invalid("name a KEY to generate, or a --preset (one of: strapi)"));
        }
    };
    p.mask_secrets(&*store, entries.iter().map(|(_, v)| v.clone()));
    store_values(p, &vault, &env, entries, SetFlags::default(), "generated")
}

/// A rotation, as asked.
#[derive(Debug, Clone)]
pub struct RotateRequest {
    pub env: String,
    pub key: String,
    /// A strong random value of this many bytes instead of reading one.
    pub generate: Option<usize>,
    /// The artifact to deploy (default: the current release's).
    pub artifact: Option<String>,
    pub lock_wait: Duration,
}

/// Redeploys `env` with a new value of the key (read, or generated); it is
/// stored only if that deployment succeeds. A failed deployment is rolled
/// back by the engine and the old value stays current.
pub fn rotate(
    p: &Project,
    req: RotateRequest,
    read: &mut dyn FnMut() -> Result<String>,
    progress: &dyn DeployProgress,
) -> Result<(Deployed, Stored)> {
    let (config, store) = p.open()?;
    let (vault, env) = open_env(p, &config, &*store, &req.env)?;
    let key = req.key;
    let value = match req.generate {
        Some(bytes) => rollway_secrets::random_secret(bytes.max(16))?,
        None => read()?,
    };
    let plain = !vault.is_secret(&env.name, &key)? && config.variables.get(&key).is_some_and(|v| !v.secret);
    let opts = SetOptions {
        plain,
        allow_weak: false,
        action: "rotated".into(),
        operator: p.operator(),
    };
    let entries = vec![(key.clone(), value.clone())];
    let problems = vault.problems_of(&env, &entries, &opts);
    if !problems.is_empty() {
        let notes = problems
            .iter()
            .map(|pr| Note::Problem(format!("{}: {pr}", env.name)))
            .collect();
        return Err(Error::invalid(format_args!(
            "the new value of {key} was refused; nothing was deployed or stored"
        ))
        .with_details(serde_json::to_value(&problems)?)
        .with_notes(notes));
    }
    if !plain {
        p.mask_secrets(&*store, [value.clone()]);
    }
    // Deploy what runs now unless told otherwise: a rotation changes a value, not the code.
    let artifact = match req.artifact {
        Some(a) => Some(a),
        None => store
            .last_succeeded(&env.name)?
            .and_then(|d| d.artifact_id)
            .map(|id| id.to_string()),
    };
    let deploy = DeployRequest {
        env: env.name.clone(),
        artifact,
        note: Some(format!("rotate {key}")),
        lock_wait: req.lock_wait,
        overrides: [(key.clone(), value.clone())].into_iter().collect(),
        ..DeployRequest::default()
    };
    let deployed = crate::deploy::deploy(p, deploy, progress)
        .map_err(|e| e.context(format!("{key} was not rotated: {} keeps its old value", env.name)))?;
    let flags = SetFlags {
        plain,
        allow_weak: false,
    };
    let stored = store_values(p, &vault, &env, entries, flags, "rotated")?;
    Ok((deployed, stored))
}

/// What `check` found: every variable checks out.
#[derive(Debug, Clone)]
pub struct Checked {
    pub environment: String,
    /// Records made now for values that had none, to show beside the answer.
    pub notes: Vec<Note>,
}

/// Checks values: required present, types, schemes, formats, strength
/// (exit 2 on problems, each a note before the error).
pub fn check(p: &Project, env: &str) -> Result<Checked> {
    let (config, store) = p.open()?;
    let (vault, env) = open_env(p, &config, &*store, env)?;
    // A value in the file with no record (written with `age`, or pulled
    // through git) is recorded now, as `list` does; a record with no value
    // in the file is a problem.
    let before: std::collections::BTreeSet<String> = store.variables(&env.name)?.into_iter().map(|v| v.key).collect();
    let mut notes = Vec::new();
    for v in vault.records(&env, &p.operator())? {
        if !before.contains(&v.key) {
            notes.push(Note::Warning(format!(
                "note: recorded {} of {} now: it has a value in {} but had no record in the store",
                v.key,
                env.name,
                vault.path(&env.name).display()
            )));
        }
    }
    let mut problems = vault.check(&env)?;
    problems.extend(vault.disagreements(&env)?);
    if problems.is_empty() {
        return Ok(Checked {
            environment: env.name,
            notes,
        });
    }
    notes.extend(problems.iter().map(|pr| Note::Problem(format!("{}: {pr}", env.name))));
    Err(Error::invalid(format_args!(
        "{} problem{} with the variables of {}; fix them with `rollway secrets set {} KEY`",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        env.name,
        env.name
    ))
    .with_details(serde_json::to_value(&problems)?)
    .with_notes(notes))
}

/// What `rekey` re-encrypted, and to whom.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rekeyed {
    pub rekeyed: Vec<String>,
    pub recipients: Vec<String>,
}

/// Re-encrypts to the current recipients (one environment, or all).
pub fn rekey(p: &Project, env: Option<&str>) -> Result<Rekeyed> {
    let (config, store) = p.open()?;
    let vault = p.vault(&config, &*store)?;
    let names: Vec<String> = match env {
        Some(e) => vec![p.env_ref(&config, e)?.name],
        None => config.environments.keys().cloned().collect(),
    };
    let mut done = Vec::new();
    for name in names {
        let env = arm(p, &config, &*store, &vault, &name)?;
        if vault.rekey(&env, &p.operator())? {
            done.push(env.name);
        }
    }
    let recipients: Vec<String> = vault.recipients().iter().map(ToString::to_string).collect();
    Ok(Rekeyed {
        rekeyed: done,
        recipients,
    })
}

/// Pushes every value to the platform with the environment's `sync`
/// command; `synced` is told each key as it is done. Returns the keys.
pub fn sync(p: &Project, env: &str, synced_key: &mut dyn FnMut(&str)) -> Result<Vec<String>> {
    let (config, store) = p.open()?;
    let (vault, env) = open_env(p, &config, &*store, env)?;
    let Some(template) = config.environments.get(&env.name).and_then(|e| e.sync.clone()) else {
        return Err(Error::invalid(format_args!(
            "environment {} has no `sync` command in {}: add one, e.g. sync = \"vercel env add {{key}} production\"",
            env.name,
            p.config_path().display()
        )));
    };
    let operator = p.operator();
    let values = vault.values(&env.name)?;
    let mut synced = Vec::new();
    for (key, value) in &values {
        let cmd = template.replace("{key}", key).replace("{environment}", &env.name);
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .current_dir(p.config_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start the sync command for {key}: sh -c {cmd}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            // The one place a value leaves in clear besides the env file: the
            // platform CLI's stdin (DESIGN.md "Secrets in clear text").
            stdin
                .write_all(value.as_bytes())
                .with_context(|| format!("cannot pass {key} to the sync command"))?;
        }
        let out = child
            .wait_with_output()
            .with_context(|| format!("sync command for {key} did not finish"))?;
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() {
            return Err(Error::failed(format_args!(
                "syncing {key} to {} failed ({}); {} stays unsynced{}: fix the command and run `rollway secrets sync {}` again",
                env.name,
                out.status,
                key,
                if synced.is_empty() {
                    String::new()
                } else {
                    format!(" ({} synced before it)", synced.join(", "))
                },
                env.name
            ))
            .with_details(serde_json::json!({ "key": key, "synced": synced, "output": output })));
        }
        vault.mark_synced(&env, key, &operator)?;
        synced_key(key);
        synced.push(key.clone());
    }
    Ok(synced)
}

/// The local identity and its recipient.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IdentityInfo {
    pub identity: PathBuf,
    pub recipient: String,
    /// Made now (else it already existed).
    pub created: bool,
}

/// Creates the local age identity (0600) unless there is one.
pub fn init(p: &Project) -> Result<IdentityInfo> {
    let path = p.identity_path()?;
    let (identity, created) = if path.exists() {
        (Identity::from_file(&path)?, false)
    } else {
        let id = Identity::generate();
        let now = rollway_store::SystemClock;
        rollway_secrets::write_identity_file(&path, &id, rollway_model::Clock::now(&now))?;
        (id, true)
    };
    Ok(IdentityInfo {
        identity: path,
        recipient: identity.recipient().to_string(),
        created,
    })
}

/// The entries of an age-encrypted or plain dotenv file.
fn import_entries(p: &Project, bytes: &[u8], file: &Path) -> Result<Vec<(String, String)>> {
    let trimmed = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map_or(&bytes[..0], |i| &bytes[i..]);
    let encrypted =
        trimmed.starts_with(b"age-encryption.org/") || trimmed.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----");
    let text = if encrypted {
        let ids = rollway_secrets::load_identities(&p.identity_path()?)?;
        let plain =
            rollway_secrets::decrypt(bytes, &ids).with_context(|| format!("cannot decrypt {}", file.display()))?;
        String::from_utf8(plain)
            .map_err(|_| Error::from(anyhow::anyhow!("{} does not decrypt to UTF-8 text", file.display())))?
    } else {
        String::from_utf8(bytes.to_vec())
            .map_err(|_| Error::from(anyhow::anyhow!("{} is not UTF-8 text", file.display())))?
    };
    rollway_secrets::parse_dotenv(&text)
        .map_err(|e| Error::new(Code::Invalid, e.with_origin(file.display().to_string())))
}
