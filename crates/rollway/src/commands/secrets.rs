//! `rollway secrets …`: the local identity, and each environment's values —
//! set, read (masked unless `--reveal`), listed, removed, imported,
//! generated, checked, re-encrypted and synced to a platform.

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use rollway_config::Config;
use rollway_secrets::{EnvRef, Identity, SetOptions, Vault, VaultError};
use rollway_store::Store;

use crate::exit::{Code, coded, coded_with};
use crate::output::{Cell, Tone, cell};
use crate::session::Session;

#[derive(Debug, Subcommand)]
pub enum SecretsCmd {
    /// Create the local age identity (0600) and print its recipient.
    Init,
    /// Set a value, read from stdin (one trailing newline stripped) or a hidden prompt.
    Set {
        env: String,
        key: String,
        /// Refused: a value on the command line stays in shell history.
        #[arg(hide = true)]
        value: Option<String>,
        #[command(flatten)]
        opts: SetFlags,
    },
    /// Print a value, masked unless --reveal (an audited event).
    Get {
        env: String,
        key: String,
        /// Print the value in clear; recorded in the event log.
        #[arg(long)]
        reveal: bool,
    },
    /// List names, types, secret or not, created, rotated and synced — never values.
    List { env: String },
    /// Remove a variable.
    Rm { env: String, key: String },
    /// Import an age-encrypted file or a dotenv file.
    Import {
        env: String,
        file: PathBuf,
        #[command(flatten)]
        opts: SetFlags,
    },
    /// Generate strong random values: a preset (strapi) or one KEY.
    Generate {
        env: String,
        /// The variable to generate (or use --preset).
        key: Option<String>,
        /// A set of values for a framework: strapi.
        #[arg(long, conflicts_with = "key")]
        preset: Option<String>,
        /// Random bytes per value (16 to 4096).
        #[arg(long, default_value_t = 32, value_parser = parse_bytes)]
        bytes: usize,
    },
    /// Redeploy ENV with a new value of KEY (stdin, a prompt or --generate);
    /// it is stored only if that deployment succeeds.
    Rotate {
        env: String,
        key: String,
        /// A strong random value instead of reading one.
        #[arg(long)]
        generate: bool,
        /// Random bytes for --generate (16 to 4096).
        #[arg(long, default_value_t = 32, value_parser = parse_bytes)]
        bytes: usize,
        /// The artifact to deploy (default: the current release's).
        #[arg(long)]
        artifact: Option<String>,
        #[arg(long, value_parser = parse_duration, default_value = "0s")]
        lock_wait: std::time::Duration,
    },
    /// Check values: required present, types, schemes, formats, strength (exit 2 on problems).
    Check { env: String },
    /// Re-encrypt to the current recipients (one environment, or all).
    Rekey { env: Option<String> },
    /// Push every value to the platform with the environment's `sync` command.
    Sync { env: String },
}

#[derive(Debug, Clone, Args)]
pub struct SetFlags {
    /// Not a secret: never masked.
    #[arg(long)]
    plain: bool,
    /// Accept a value below the strength bar (recorded).
    #[arg(long)]
    allow_weak: bool,
}

pub fn run(s: &Session, cmd: SecretsCmd) -> anyhow::Result<()> {
    if let SecretsCmd::Init = cmd {
        return init(s);
    }
    let key = match &cmd {
        SecretsCmd::Set { key, .. }
        | SecretsCmd::Get { key, .. }
        | SecretsCmd::Rm { key, .. }
        | SecretsCmd::Rotate { key, .. } => Some(key.as_str()),
        SecretsCmd::Generate { key, .. } => key.as_deref(),
        _ => None,
    };
    if let Some((name, _)) = key.and_then(|k| k.split_once('=')) {
        // `KEY=VALUE` as the name: never echo what follows the '='.
        return Err(coded(
            Code::Invalid,
            anyhow::anyhow!(
                "'{}=****' gives a value with the name: give the name alone and the value on stdin (`printf %s \"$VALUE\" | rollway secrets set ENV {}`)",
                rollway_model::names::shown(name),
                rollway_model::names::shown(name)
            ),
        ));
    }
    if let SecretsCmd::Set {
        value: Some(_),
        env,
        key,
        ..
    } = &cmd
    {
        return Err(coded(
            Code::Invalid,
            anyhow::anyhow!(
                "refusing a value on the command line: it would stay in your shell history and the process list; \
                 pipe it instead (`printf %s \"$VALUE\" | rollway secrets set {env} {key}`) or run without it to be prompted"
            ),
        ));
    }
    let (config, store) = s.open()?;
    let vault = s.vault(&config, &*store)?;
    let operator = s.operator();
    match cmd {
        SecretsCmd::Init => Ok(()),
        SecretsCmd::Set { env, key, opts, .. } => {
            let env = prepare(s, &config, &*store, &vault, &env)?;
            let value = read_value(&key)?;
            set(s, &vault, &env, vec![(key, value)], &opts, "set", &operator)
        }
        SecretsCmd::Get { env, key, reveal } => {
            let env = prepare(s, &config, &*store, &vault, &env)?;
            let values = vault.values(&env.name)?;
            let Some(value) = values.get(&key) else {
                return Err(coded(
                    Code::Invalid,
                    anyhow::anyhow!(
                        "{key} is not set in {}: set it with `rollway secrets set {} {key}`",
                        env.name,
                        env.name
                    ),
                ));
            };
            let secret = vault.is_secret(&env.name, &key)?;
            let answer =
                |v: &str| serde_json::json!({ "environment": env.name, "key": key, "secret": secret, "value": v });
            if reveal && secret {
                vault.record_reveal(&env, &key, &operator)?;
                s.printer.reveal(value, &answer(value));
            } else {
                // Masked by the printer when secret; a plain value prints as is.
                s.printer.json(&answer(value));
                s.printer.line(Tone::Plain, value);
            }
            Ok(())
        }
        SecretsCmd::List { env } => {
            let env = prepare(s, &config, &*store, &vault, &env)?;
            let records = vault.records(&env, &operator)?;
            s.printer.json(&records);
            let opt = |t: Option<rollway_model::Timestamp>| t.map_or_else(|| "-".to_owned(), |t| t.to_string());
            let rows: Vec<Vec<Cell>> = records
                .iter()
                .map(|v| {
                    vec![
                        Cell::from(v.key.clone()),
                        Cell::from(v.value_type.as_str()),
                        if v.secret {
                            cell("secret", Tone::Warn)
                        } else {
                            cell("plain", Tone::Dim)
                        },
                        Cell::from(v.created_at.to_string()),
                        Cell::from(opt(v.rotated_at)),
                        if v.platform_synced {
                            cell(opt(v.synced_at), Tone::Good)
                        } else {
                            Cell::from("no")
                        },
                    ]
                })
                .collect();
            s.printer
                .table(&["KEY", "TYPE", "SECRET", "CREATED", "ROTATED", "SYNCED"], &rows);
            Ok(())
        }
        SecretsCmd::Rm { env, key } => {
            let env = prepare(s, &config, &*store, &vault, &env)?;
            if !vault.remove(&env, &key, &operator)? {
                return Err(coded(
                    Code::Invalid,
                    anyhow::anyhow!("{key} is not set in {}", env.name),
                ));
            }
            s.printer
                .json(&serde_json::json!({ "environment": env.name, "removed": key }));
            s.printer.line(Tone::Good, format!("removed {key} from {}", env.name));
            Ok(())
        }
        SecretsCmd::Import { env, file, opts } => {
            let env = prepare(s, &config, &*store, &vault, &env)?;
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let entries = import_entries(s, &bytes, &file)?;
            s.printer.add_secrets(entries.iter().map(|(_, v)| v.clone()));
            store.set_masker(s.printer.masker());
            set(s, &vault, &env, entries, &opts, "imported", &operator)
        }
        SecretsCmd::Generate {
            env,
            key,
            preset,
            bytes,
        } => {
            let env = prepare(s, &config, &*store, &vault, &env)?;
            let entries = match (preset, key) {
                (Some(p), _) => rollway_secrets::preset(&p).map_err(|e| coded(Code::Invalid, e))?,
                (None, Some(k)) => {
                    if bytes < 16 {
                        return Err(coded(
                            Code::Invalid,
                            anyhow::anyhow!("--bytes {bytes} is too few: use at least 16 (32 gives 256 bits)"),
                        ));
                    }
                    vec![(k, rollway_secrets::random_secret(bytes)?)]
                }
                (None, None) => {
                    return Err(coded(
                        Code::Invalid,
                        anyhow::anyhow!("name a KEY to generate, or a --preset (one of: strapi)"),
                    ));
                }
            };
            s.printer.add_secrets(entries.iter().map(|(_, v)| v.clone()));
            store.set_masker(s.printer.masker());
            let flags = SetFlags {
                plain: false,
                allow_weak: false,
            };
            set(s, &vault, &env, entries, &flags, "generated", &operator)
        }
        SecretsCmd::Rotate {
            env,
            key,
            generate,
            bytes,
            artifact,
            lock_wait,
        } => {
            let env = prepare(s, &config, &*store, &vault, &env)?;
            let value = if generate {
                rollway_secrets::random_secret(bytes.max(16))?
            } else {
                read_value(&key)?
            };
            rotate(s, &config, &*store, &vault, &env, key, value, artifact, lock_wait)
        }
        SecretsCmd::Check { env } => {
            let env = prepare(s, &config, &*store, &vault, &env)?;
            // A value in the file with no record (written with `age`, or
            // pulled through git) is recorded now, as `list` does; a record
            // with no value in the file is a problem.
            let before: std::collections::BTreeSet<String> =
                store.variables(&env.name)?.into_iter().map(|v| v.key).collect();
            for v in vault.records(&env, &operator)? {
                if !before.contains(&v.key) {
                    s.printer.stderr_line(
                        Tone::Warn,
                        &format!(
                            "note: recorded {} of {} now: it has a value in {} but had no record in the store",
                            v.key,
                            env.name,
                            vault.path(&env.name).display()
                        ),
                    );
                }
            }
            let mut problems = vault.check(&env)?;
            problems.extend(vault.disagreements(&env)?);
            if problems.is_empty() {
                s.printer
                    .json(&serde_json::json!({ "environment": env.name, "ok": true, "problems": [] }));
                s.printer
                    .line(Tone::Good, format!("{}: every variable checks out", env.name));
                return Ok(());
            }
            for p in &problems {
                s.printer.stderr_line(Tone::Plain, &format!("{}: {p}", env.name));
            }
            Err(coded_with(
                Code::Invalid,
                anyhow::anyhow!(
                    "{} problem{} with the variables of {}; fix them with `rollway secrets set {} KEY`",
                    problems.len(),
                    if problems.len() == 1 { "" } else { "s" },
                    env.name,
                    env.name
                ),
                serde_json::to_value(&problems)?,
            ))
        }
        SecretsCmd::Rekey { env } => {
            let names: Vec<String> = match env {
                Some(e) => vec![s.env_ref(&config, &e)?.name],
                None => config.environments.keys().cloned().collect(),
            };
            let mut done = Vec::new();
            for name in names {
                let env = prepare(s, &config, &*store, &vault, &name)?;
                if vault.rekey(&env, &operator)? {
                    done.push(env.name);
                }
            }
            let recipients: Vec<String> = vault.recipients().iter().map(ToString::to_string).collect();
            s.printer
                .json(&serde_json::json!({ "rekeyed": done, "recipients": recipients }));
            s.printer.line(
                Tone::Good,
                format!("re-encrypted {} to {}", list_or_none(&done), recipients.join(", ")),
            );
            Ok(())
        }
        SecretsCmd::Sync { env } => {
            let env = prepare(s, &config, &*store, &vault, &env)?;
            sync(s, &config, &vault, &env, &operator)
        }
    }
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "nothing".to_owned()
    } else {
        v.join(", ")
    }
}

/// Resolves the environment and arms both masking doors with its secrets.
fn prepare(s: &Session, config: &Config, store: &dyn Store, vault: &Vault<'_>, env: &str) -> anyhow::Result<EnvRef> {
    let env = s.env_ref(config, env)?;
    let values = vault.values(&env.name)?;
    let mut secret = Vec::new();
    for (k, v) in values {
        if vault.is_secret(&env.name, &k)? {
            secret.push(v);
        }
    }
    s.printer.add_secrets(secret);
    store.set_masker(s.printer.masker());
    Ok(env)
}

fn set(
    s: &Session,
    vault: &Vault<'_>,
    env: &EnvRef,
    entries: Vec<(String, String)>,
    flags: &SetFlags,
    action: &str,
    operator: &str,
) -> anyhow::Result<()> {
    if !flags.plain {
        s.printer.add_secrets(entries.iter().map(|(_, v)| v.clone()));
    }
    let opts = SetOptions {
        plain: flags.plain,
        allow_weak: flags.allow_weak,
        action: action.to_owned(),
        operator: operator.to_owned(),
    };
    let records = vault.set(env, &entries, &opts).map_err(|e| match e {
        VaultError::Invalid { ref problems, .. } => {
            let details = serde_json::to_value(problems).unwrap_or_default();
            coded_with(
                Code::Invalid,
                anyhow::Error::new(e).context("nothing was stored"),
                details,
            )
        }
        VaultError::BadKey { .. } | VaultError::PlainButDeclaredSecret { .. } => coded(Code::Invalid, e),
        other => anyhow::Error::new(other),
    })?;
    if !vault.can_read_own_writes() {
        s.printer.stderr_line(
            Tone::Warn,
            &format!(
                "warning: your identity is not among [secrets] recipients; you cannot read {} back",
                vault.path(&env.name).display()
            ),
        );
    }
    s.printer.json(&records);
    for v in &records {
        let what = if v.rotated_at == Some(v.updated_at) {
            "rotated"
        } else {
            action
        };
        s.printer.line(Tone::Good, format!("{what} {} in {}", v.key, env.name));
    }
    s.printer
        .line(Tone::Dim, format!("encrypted in {}", vault.path(&env.name).display()));
    Ok(())
}

/// A value from stdin (one trailing newline stripped) or a hidden prompt.
fn read_value(key: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let v = rpassword::prompt_password(format!("value for {key} (hidden): "))
            .context("cannot read the value from the terminal")?;
        return Ok(v);
    }
    // Read a little more than any value may hold, never without limit.
    let limit = rollway_secrets::MAX_ENV_ENTRY + 2;
    let mut bytes = Vec::new();
    stdin
        .lock()
        .take(limit as u64)
        .read_to_end(&mut bytes)
        .context("cannot read the value from stdin")?;
    if bytes.len() >= limit {
        return Err(coded(
            Code::Invalid,
            anyhow::anyhow!(
                "the value of {key} on stdin is longer than 128 KiB; a process environment takes at most 128 KiB per variable, so the service could not start: keep large data in a file and put its path in the variable"
            ),
        ));
    }
    let mut buf =
        String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("the value of {key} on stdin is not UTF-8 text"))?;
    if let Some(stripped) = buf.strip_suffix('\n') {
        buf = stripped.strip_suffix('\r').unwrap_or(stripped).to_owned();
    }
    Ok(buf)
}

/// The entries of an age-encrypted or plain dotenv file.
fn import_entries(s: &Session, bytes: &[u8], file: &std::path::Path) -> anyhow::Result<Vec<(String, String)>> {
    let trimmed = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map_or(&bytes[..0], |i| &bytes[i..]);
    let encrypted =
        trimmed.starts_with(b"age-encryption.org/") || trimmed.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----");
    let text = if encrypted {
        let ids = rollway_secrets::load_identities(&s.identity_path()?)?;
        let plain =
            rollway_secrets::decrypt(bytes, &ids).with_context(|| format!("cannot decrypt {}", file.display()))?;
        String::from_utf8(plain).map_err(|_| anyhow::anyhow!("{} does not decrypt to UTF-8 text", file.display()))?
    } else {
        String::from_utf8(bytes.to_vec()).map_err(|_| anyhow::anyhow!("{} is not UTF-8 text", file.display()))?
    };
    rollway_secrets::parse_dotenv(&text).map_err(|e| {
        coded(
            Code::Invalid,
            anyhow::Error::new(e.with_origin(file.display().to_string())),
        )
    })
}

fn init(s: &Session) -> anyhow::Result<()> {
    let path = s.identity_path()?;
    let (identity, created) = if path.exists() {
        (Identity::from_file(&path)?, false)
    } else {
        let id = Identity::generate();
        let now = rollway_store::SystemClock;
        rollway_secrets::write_identity_file(&path, &id, rollway_model::Clock::now(&now))?;
        (id, true)
    };
    let recipient = identity.recipient().to_string();
    s.printer
        .json(&serde_json::json!({ "identity": path, "recipient": recipient, "created": created }));
    if created {
        s.printer
            .line(Tone::Good, format!("created {} (mode 0600)", path.display()));
    } else {
        s.printer.line(
            Tone::Plain,
            format!("{} already exists; its recipient:", path.display()),
        );
    }
    s.printer.line(Tone::Plain, &recipient);
    s.printer.line(
        Tone::Dim,
        "add it to [secrets] recipients so teammates can encrypt to you",
    );
    Ok(())
}

fn sync(s: &Session, config: &Config, vault: &Vault<'_>, env: &EnvRef, operator: &str) -> anyhow::Result<()> {
    let Some(template) = config.environments.get(&env.name).and_then(|e| e.sync.clone()) else {
        return Err(coded(
            Code::Invalid,
            anyhow::anyhow!(
                "environment {} has no `sync` command in {}: add one, e.g. sync = \"vercel env add {{key}} production\"",
                env.name,
                s.config_path().display()
            ),
        ));
    };
    let values = vault.values(&env.name)?;
    let mut synced = Vec::new();
    for (key, value) in &values {
        let cmd = template.replace("{key}", key).replace("{environment}", &env.name);
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .current_dir(s.config_dir())
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
            return Err(coded_with(
                Code::Failed,
                anyhow::anyhow!(
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
                ),
                serde_json::json!({ "key": key, "synced": synced, "output": output }),
            ));
        }
        vault.mark_synced(env, key, operator)?;
        s.printer.line(Tone::Good, format!("synced {key}"));
        synced.push(key.clone());
    }
    s.printer
        .json(&serde_json::json!({ "environment": env.name, "synced": synced }));
    Ok(())
}

/// `--bytes`: 16 (128 bits) to [`rollway_secrets::MAX_SECRET_BYTES`].
fn parse_bytes(s: &str) -> Result<usize, String> {
    let max = rollway_secrets::MAX_SECRET_BYTES;
    let hint = format!("use 16 to {max} random bytes per value (32 gives 256 bits)");
    match s.trim().parse::<usize>() {
        Ok(n) if (16..=max).contains(&n) => Ok(n),
        Ok(_) => Err(format!("out of range: {hint}")),
        Err(_) => Err(format!("not a whole number: {hint}")),
    }
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    rollway_model::time::parse_duration(s)
}

/// `secrets rotate`: deploy with the new value in the env file; store it
/// only when the deployment succeeded. A failed deployment is rolled back
/// by the engine and the old value stays current.
#[allow(clippy::too_many_arguments)]
fn rotate(
    s: &Session,
    config: &rollway_config::Config,
    store: &dyn rollway_store::Store,
    vault: &Vault<'_>,
    env: &EnvRef,
    key: String,
    value: String,
    artifact: Option<String>,
    lock_wait: std::time::Duration,
) -> anyhow::Result<()> {
    let operator = s.operator();
    let plain = !vault.is_secret(&env.name, &key)? && config.variables.get(&key).is_some_and(|v| !v.secret);
    let opts = SetOptions {
        plain,
        allow_weak: false,
        action: "rotated".into(),
        operator: operator.clone(),
    };
    let entries = vec![(key.clone(), value.clone())];
    let problems = vault.problems_of(env, &entries, &opts);
    if !problems.is_empty() {
        for p in &problems {
            s.printer.stderr_line(Tone::Plain, &format!("{}: {p}", env.name));
        }
        return Err(coded_with(
            Code::Invalid,
            anyhow::anyhow!("the new value of {key} was refused; nothing was deployed or stored"),
            serde_json::to_value(&problems)?,
        ));
    }
    if !plain {
        s.printer.add_secrets([value.clone()]);
        store.set_masker(s.printer.masker());
    }
    // Deploy what runs now unless told otherwise: a rotation changes a value, not the code.
    let artifact = match artifact {
        Some(a) => Some(a),
        None => store
            .last_succeeded(&env.name)?
            .and_then(|d| d.artifact_id)
            .map(|id| id.to_string()),
    };
    let args = crate::commands::deploy::DeployArgs {
        env: env.name.clone(),
        artifact,
        dry_run: false,
        verbose: false,
        note: Some(format!("rotate {key}")),
        version_tag: None,
        lock_wait,
        detach: false,
        overrides: [(key.clone(), value.clone())].into_iter().collect(),
    };
    crate::commands::deploy::deploy(s, args)
        .with_context(|| format!("{key} was not rotated: {} keeps its old value", env.name))?;
    let flags = SetFlags {
        plain,
        allow_weak: false,
    };
    set(s, vault, env, entries, &flags, "rotated", &operator)
}
