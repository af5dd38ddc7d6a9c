//! `rollway secrets …`: the local identity, and each environment's values —
//! set, read (masked unless `--reveal`), listed, removed, imported,
//! generated, checked, re-encrypted and synced to a platform — through the
//! app layer; this reads values from stdin or a prompt and prints.

use std::io::{IsTerminal as _, Read as _};
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use rollway_app::secrets::{Generate, RotateRequest, Stored};
use rollway_app::{Error, Result};

use crate::output::{Cell, Tone, cell};
use crate::progress::CliProgress;
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

impl From<SetFlags> for rollway_app::secrets::SetFlags {
    fn from(f: SetFlags) -> Self {
        Self {
            plain: f.plain,
            allow_weak: f.allow_weak,
        }
    }
}

pub fn run(s: &Session, cmd: SecretsCmd) -> Result<()> {
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
        let shown = rollway_app::model::names::shown(name);
        return Err(Error::invalid(format_args!(
            "'{shown}=****' gives a value with the name: give the name alone and the value on stdin (`printf %s \"$VALUE\" | rollway secrets set ENV {shown}`)"
        )));
    }
    if let SecretsCmd::Set {
        value: Some(_),
        env,
        key,
        ..
    } = &cmd
    {
        return Err(Error::invalid(format_args!(
            "refusing a value on the command line: it would stay in your shell history and the process list; \
             pipe it instead (`printf %s \"$VALUE\" | rollway secrets set {env} {key}`) or run without it to be prompted"
        )));
    }
    match cmd {
        SecretsCmd::Init => Ok(()),
        SecretsCmd::Set { env, key, opts, .. } => {
            let stored = rollway_app::secrets::set(s, &env, &key, &mut || read_value(&key), opts.into())?;
            print_stored(s, &stored);
            Ok(())
        }
        SecretsCmd::Get { env, key, reveal } => {
            let got = rollway_app::secrets::get(s, &env, &key, reveal)?;
            if got.revealed {
                s.printer.reveal(&got.value, &serde_json::to_value(&got)?);
            } else {
                // Masked by the printer when secret; a plain value prints as is.
                s.printer.answer(&got);
                s.printer.line(Tone::Plain, &got.value);
            }
            Ok(())
        }
        SecretsCmd::List { env } => {
            let records = rollway_app::secrets::list(s, &env)?;
            s.printer.json(&records);
            let opt = |t: Option<rollway_app::model::Timestamp>| t.map_or_else(|| "-".to_owned(), |t| t.to_string());
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
            let env = rollway_app::secrets::remove(s, &env, &key)?;
            s.printer
                .json(&serde_json::json!({ "environment": env, "removed": key }));
            s.printer.line(Tone::Good, format!("removed {key} from {env}"));
            Ok(())
        }
        SecretsCmd::Import { env, file, opts } => {
            let stored = rollway_app::secrets::import(s, &env, &file, opts.into())?;
            print_stored(s, &stored);
            Ok(())
        }
        SecretsCmd::Generate {
            env,
            key,
            preset,
            bytes,
        } => {
            let what = match (preset, key) {
                (Some(p), _) => Generate::Preset(p),
                (None, Some(k)) => Generate::Key(k, bytes),
                (None, None) => Generate::Nothing,
            };
            let stored = rollway_app::secrets::generate(s, &env, what)?;
            print_stored(s, &stored);
            Ok(())
        }
        SecretsCmd::Rotate {
            env,
            key,
            generate,
            bytes,
            artifact,
            lock_wait,
        } => {
            let req = RotateRequest {
                env,
                key: key.clone(),
                generate: generate.then_some(bytes),
                artifact,
                lock_wait,
            };
            let progress = CliProgress::new(&s.printer);
            let (deployed, stored) = rollway_app::secrets::rotate(s, req, &mut || read_value(&key), &progress)?;
            crate::commands::deploy::print_deployed(s, &deployed);
            print_stored(s, &stored);
            Ok(())
        }
        SecretsCmd::Check { env } => {
            let checked = rollway_app::secrets::check(s, &env)?;
            crate::cli::print_notes(&s.printer, &checked.notes);
            s.printer
                .json(&serde_json::json!({ "environment": checked.environment, "ok": true, "problems": [] }));
            s.printer.line(
                Tone::Good,
                format!("{}: every variable checks out", checked.environment),
            );
            Ok(())
        }
        SecretsCmd::Rekey { env } => {
            let done = rollway_app::secrets::rekey(s, env.as_deref())?;
            s.printer.answer(&done);
            s.printer.line(
                Tone::Good,
                format!(
                    "re-encrypted {} to {}",
                    list_or_none(&done.rekeyed),
                    done.recipients.join(", ")
                ),
            );
            Ok(())
        }
        SecretsCmd::Sync { env } => {
            let synced = rollway_app::secrets::sync(s, &env, &mut |key| {
                s.printer.line(Tone::Good, format!("synced {key}"));
            })?;
            s.printer
                .json(&serde_json::json!({ "environment": env, "synced": synced }));
            Ok(())
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

/// What `set`, `import`, `generate` and `rotate` stored.
fn print_stored(s: &Session, stored: &Stored) {
    if let Some(w) = &stored.warning {
        s.printer.stderr_line(Tone::Warn, w);
    }
    s.printer.json(&stored.records);
    for v in &stored.records {
        let what = if v.rotated_at == Some(v.updated_at) {
            "rotated"
        } else {
            stored.action.as_str()
        };
        s.printer
            .line(Tone::Good, format!("{what} {} in {}", v.key, stored.environment));
    }
    s.printer
        .line(Tone::Dim, format!("encrypted in {}", stored.path.display()));
}

/// A value from stdin (one trailing newline stripped) or a hidden prompt.
fn read_value(key: &str) -> Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let v = rpassword::prompt_password(format!("value for {key} (hidden): "))
            .context("cannot read the value from the terminal")?;
        return Ok(v);
    }
    // Read a little more than any value may hold, never without limit.
    let limit = rollway_app::secrets::MAX_ENV_ENTRY + 2;
    let mut bytes = Vec::new();
    stdin
        .lock()
        .take(limit as u64)
        .read_to_end(&mut bytes)
        .context("cannot read the value from stdin")?;
    if bytes.len() >= limit {
        return Err(Error::invalid(format_args!(
            "the value of {key} on stdin is longer than 128 KiB; a process environment takes at most 128 KiB per variable, so the service could not start: keep large data in a file and put its path in the variable"
        )));
    }
    let mut buf = String::from_utf8(bytes)
        .map_err(|_| Error::from(anyhow::anyhow!("the value of {key} on stdin is not UTF-8 text")))?;
    if let Some(stripped) = buf.strip_suffix('\n') {
        buf = stripped.strip_suffix('\r').unwrap_or(stripped).to_owned();
    }
    Ok(buf)
}

fn init(s: &Session) -> Result<()> {
    let info = rollway_app::secrets::init(s)?;
    s.printer.answer(&info);
    if info.created {
        s.printer
            .line(Tone::Good, format!("created {} (mode 0600)", info.identity.display()));
    } else {
        s.printer.line(
            Tone::Plain,
            format!("{} already exists; its recipient:", info.identity.display()),
        );
    }
    s.printer.line(Tone::Plain, &info.recipient);
    s.printer.line(
        Tone::Dim,
        "add it to [secrets] recipients so teammates can encrypt to you",
    );
    Ok(())
}

/// `--bytes`: 16 (128 bits) to [`rollway_app::secrets::MAX_SECRET_BYTES`].
fn parse_bytes(s: &str) -> Result<usize, String> {
    let max = rollway_app::secrets::MAX_SECRET_BYTES;
    let hint = format!("use 16 to {max} random bytes per value (32 gives 256 bits)");
    match s.trim().parse::<usize>() {
        Ok(n) if (16..=max).contains(&n) => Ok(n),
        Ok(_) => Err(format!("out of range: {hint}")),
        Err(_) => Err(format!("not a whole number: {hint}")),
    }
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    rollway_app::model::time::parse_duration(s)
}
