//! Rollback: return an environment to an earlier release as it ran — its
//! artifact and the env file it was deployed with, kept encrypted on this
//! machine — as a new deployment of kind rollback; and its dry run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use rollway_engine::{HostPlan, Progress};
use rollway_model::{ArtifactId, DeploymentId, DeploymentKind, DeploymentStatus};
use rollway_store::Store;

use crate::connect::{self, HostDryRun};
use crate::deploy::{self, Deployed, Runtime};
use crate::error::{Error, Result};
use crate::project::Project;

/// A rollback, as asked.
#[derive(Debug, Clone, Default)]
pub struct RollbackRequest {
    pub env: String,
    /// Why (kept as the rollback reason); not needed for a dry run.
    pub reason: Option<String>,
    /// The deployment to return to (default: the previous succeeded one).
    pub to: Option<String>,
    pub lock_wait: Duration,
    /// Render today's variables and secrets instead of the env file the
    /// release ran with.
    pub current_config: bool,
    /// With a dry run: list every file that would be shipped.
    pub verbose: bool,
    /// Also return the database to the pre-migration backup taken before
    /// the first deployment after the one returned to (`--restore-db`).
    pub restore_db: bool,
}

/// The backup `rollback --restore-db` restores when returning `env` to
/// `target`: the earliest completed pre-migration backup taken for a
/// deployment of `env` newer than `target` — the database as it was
/// before anything after `target` migrated it.
fn restore_point(store: &dyn Store, env: &str, target: &rollway_model::Deployment) -> Result<rollway_model::Backup> {
    let newer: std::collections::BTreeSet<DeploymentId> = store
        .deployments(Some(env), usize::MAX)?
        .into_iter()
        .filter(|d| d.started_at > target.started_at)
        .map(|d| d.id)
        .collect();
    store
        .backups(Some(env))?
        .into_iter()
        .filter(|b| {
            b.status() == rollway_model::BackupStatus::Completed && b.deployment_id.is_some_and(|d| newer.contains(&d))
        })
        .min_by_key(|b| b.created_at)
        .ok_or_else(|| {
            Error::invalid(format_args!(
                "no pre-migration backup of {env} was taken after deployment {}: there is nothing to return the database to; roll back without --restore-db, or restore a backup by hand (`rollway backup list --env {env}`, then `rollway restore ID`); set [deploy] pre_migration_backup for the next deployments",
                target.id
            ))
        })
}

/// The backup `rollback --restore-db` would restore (to confirm it first).
pub fn restore_db_backup(p: &Project, req: &RollbackRequest) -> Result<rollway_model::Backup> {
    let (config, store) = p.open()?;
    let c = choose(p, &*store, config, req, true)?;
    restore_point(&*store, &req.env, &c.target)
}

/// What `rollback --dry-run` found: nothing changed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RollbackPlan {
    /// The environment rolled back.
    #[serde(skip)]
    pub environment: String,
    pub dry_run: bool,
    pub kind: &'static str,
    /// The deployment running now.
    pub from: DeploymentId,
    /// The deployment it would return to.
    pub to: DeploymentId,
    /// The version tag of `to`.
    #[serde(skip)]
    pub version_tag: Option<String>,
    pub artifact: ArtifactId,
    /// Which env file: `current-config`, `as-it-ran` or `as-it-ran-on-hosts`.
    pub env_file: &'static str,
    /// The env file as people may see it (secrets masked), or where it is.
    pub env: String,
    pub hosts: Vec<HostDryRun>,
}

/// The env file a rollback uses.
enum RollbackEnv {
    /// Today's configuration (`--current-config`).
    Current,
    /// The text the release ran with, kept on this machine.
    Kept(String),
    /// The hosts' own copy, `ROOT/envs/<id>.env` (nothing kept here).
    OnHosts(String),
}

/// What both a rollback and its dry run work out first.
struct Chosen {
    config: rollway_config::Config,
    prepared: deploy::Prepared,
    current: rollway_model::Deployment,
    target: rollway_model::Deployment,
    artifact: rollway_model::Artifact,
    release: rollway_engine::ReleaseSource,
    env: RollbackEnv,
    plain: BTreeMap<String, String>,
    dirs: Vec<String>,
}

fn choose(
    p: &Project,
    store: &dyn Store,
    config: rollway_config::Config,
    req: &RollbackRequest,
    dry_run: bool,
) -> Result<Chosen> {
    p.env_ref(&config, &req.env)?;
    if !dry_run {
        deploy::refuse_deprecated(store, &req.env)?;
    }
    // Today's values are checked only when they are what gets deployed.
    let mut prepared = deploy::prepare_checked(p, &config, store, &req.env, &BTreeMap::new(), req.current_config)?;
    let current = store
        .last_succeeded(&req.env)?
        .ok_or_else(|| Error::invalid(format_args!("{} has no succeeded deployment to roll back", req.env)))?;
    let target = match &req.to {
        Some(id) => {
            let id: DeploymentId = id
                .parse()
                .map_err(|_| Error::invalid(format_args!("--to {id} is not a deployment id")))?;
            let d = store
                .deployment(id)?
                .ok_or_else(|| Error::invalid(format_args!("no deployment {id}: see `rollway history {}`", req.env)))?;
            if d.environment != req.env {
                return Err(Error::invalid(format_args!(
                    "deployment {id} is a release of {}, not {}: pick one from `rollway history {}`",
                    d.environment, req.env, req.env
                )));
            }
            if d.id == current.id {
                return Err(Error::invalid(format_args!(
                    "deployment {id} is the current release of {}: pick an earlier one from `rollway history {}`",
                    req.env, req.env
                )));
            }
            if d.status() != DeploymentStatus::Succeeded {
                return Err(Error::invalid(format_args!(
                    "deployment {id} did not succeed (it is {}): only a succeeded release can be returned to; see `rollway history {}`",
                    d.status(),
                    req.env
                )));
            }
            d
        }
        // The newest earlier release, never the one the current release
        // already returned to (a second rollback goes further back).
        None => store
            .deployments(Some(&req.env), 100)?
            .into_iter()
            .filter(|d| d.id != current.id && d.status() == DeploymentStatus::Succeeded)
            .filter(|d| current.rollback_to != Some(d.id))
            .find(|d| d.started_at <= current.started_at)
            .ok_or_else(|| {
                Error::invalid(format_args!(
                    "{} has no earlier succeeded deployment to return to",
                    req.env
                ))
            })?,
    };
    let artifact = target
        .artifact_id
        .and_then(|id| store.artifact(id).ok().flatten())
        .ok_or_else(|| {
            Error::invalid(format_args!(
                "deployment {} cannot be returned to: its artifact is no longer recorded (pruned); build and deploy that version instead",
                target.id
            ))
        })?;
    let release = deploy::release_of(&artifact)?;
    // The release as it ran: its env file, unless --current-config.
    let env = if req.current_config {
        RollbackEnv::Current
    } else {
        match kept_env(p, target.id)? {
            Some(text) => RollbackEnv::Kept(text),
            None => RollbackEnv::OnHosts(target.id.to_string()),
        }
    };
    let plain = config.environments[&req.env].vars.clone();
    if let RollbackEnv::Kept(text) = &env {
        // Its secrets may differ from today's: mask them too.
        let secret = match p.vault(&config, store) {
            Ok(vault) => rollway_secrets::dotenv::parse(text)
                .unwrap_or_default()
                .into_iter()
                .filter(|(k, v)| plain.get(k) != Some(v) && vault.is_secret(&req.env, k).unwrap_or(true))
                .map(|(_, v)| v)
                .collect(),
            Err(_) => Vec::new(),
        };
        p.mask_secrets(store, secret);
        prepared.masker = p.masks().masker();
    }
    let dirs = release_dirs(store, &target);
    Ok(Chosen {
        config,
        prepared,
        current,
        target,
        artifact,
        release,
        env,
        plain,
        dirs,
    })
}

/// Which release a rollback would return to, per host whether that is a
/// switch or a ship, and the env file (masked); changes nothing.
pub fn plan(p: &Project, req: &RollbackRequest) -> Result<RollbackPlan> {
    let (config, store) = p.open()?;
    let c = choose(p, &*store, config, req, true)?;
    let (env_shown, env_json) = match &c.env {
        RollbackEnv::Current => (masked_env(&c.prepared.env_text, &c.plain), "current-config"),
        RollbackEnv::Kept(text) => (masked_env(text, &c.plain), "as-it-ran"),
        RollbackEnv::OnHosts(id) => (
            format!("(ROOT/envs/{id}.env on each host, as it ran; this machine kept no copy)"),
            "as-it-ran-on-hosts",
        ),
    };
    let scratch = tempfile::tempdir()
        .context("cannot make a scratch directory for the dry run; check that TMPDIR (or /tmp) is writable")?;
    let targets = connect::dry_run_connector(&c.config, &*store, &req.env, scratch.path())?;
    let hosts = connect::dry_run(
        &targets,
        &c.prepared.hosts,
        &c.prepared.service,
        &connect::DryRun {
            release: Some(&c.release),
            total_bytes: c.artifact.contents.iter().map(|x| x.bytes).sum(),
            reuse: &c.dirs,
            verbose: req.verbose,
        },
    )?;
    drop(targets);
    Ok(RollbackPlan {
        environment: req.env.clone(),
        dry_run: true,
        kind: "rollback",
        from: c.current.id,
        to: c.target.id,
        version_tag: c.target.version_tag.clone(),
        artifact: c.artifact.id,
        env_file: env_json,
        env: p.masks().mask(&env_shown),
        hosts,
    })
}

/// Returns `req.env` to an earlier release as it ran: a switch when every
/// host still holds it, else a ship; a new deployment of kind rollback.
pub fn rollback(p: &Project, req: RollbackRequest, progress: &dyn Progress) -> Result<Deployed> {
    let (config, store) = p.open()?;
    let c = choose(p, &*store, config, &req, false)?;
    let Some(reason) = req.reason.clone() else {
        return Err(Error::invalid(format_args!(
            "rollback of {} needs --reason TEXT (kept as the rollback reason)",
            req.env
        )));
    };
    let Chosen {
        config,
        mut prepared,
        current,
        target,
        release,
        env,
        dirs,
        artifact,
        ..
    } = c;
    let rt = Runtime::new(p, &config, &*store, &req.env, progress)?;
    let switch_to = on_every_host(&rt, &prepared.hosts, &dirs)?;
    if switch_to.is_none() && !Path::new(&artifact.location).is_file() {
        return Err(Error::invalid(format_args!(
            "deployment {} cannot be returned to: its release is no longer on every host of {} and its artifact {} is gone from {}: build and deploy that version instead",
            target.id, req.env, artifact.id, artifact.location
        )));
    }
    let mut env_from_host = None;
    match env {
        RollbackEnv::Current => {}
        RollbackEnv::Kept(text) => prepared.env_text = text,
        RollbackEnv::OnHosts(id) => {
            if switch_to.is_none() {
                return Err(Error::failed(format_args!(
                    "release {} is no longer on every host of {} and its env file was not kept on this machine (no identity when it ran), so it cannot be restored as it ran: run `rollway rollback {} --to {} --current-config` to use today's configuration",
                    target.id, req.env, req.env, target.id
                )));
            }
            env_from_host = Some(id);
        }
    }
    let recipients = p.vault(&config, &*store).ok().map(|v| v.recipients());
    let keep_env = |dep: DeploymentId, text: &str| -> Result<(), String> {
        match &recipients {
            Some(r) => keep_env_file(p, dep, text, r),
            None => Ok(()),
        }
    };
    if req.restore_db {
        // The database first: when it cannot be restored, the release
        // stays as it is (the app and its schema still match).
        let b = restore_point(&*store, &req.env, &target)?;
        let job = crate::backup::restore(p, &b.id.to_string(), None, None, true)?;
        progress.step(
            None,
            &format!(
                "database restored from pre-migration backup {} ({}, taken {}) by restore {}",
                b.id, b.name, b.created_at, job.id
            ),
        );
    }
    let mut job = rt.job(p, &*store, &req.env, prepared, release);
    job.kind = DeploymentKind::Rollback;
    job.rollback_to = Some(target.id);
    job.notes = Some(reason.clone());
    job.version_tag = target.version_tag.clone();
    job.lock_wait = req.lock_wait;
    job.supersedes = Some((current.id, reason));
    job.switch_to = switch_to;
    job.env_from_host = env_from_host;
    job.keep_env = Some(&keep_env);
    let outcome = job.run();
    deploy::report(p, &*store, outcome)
}

/// Where the deployer keeps the env file each deployment wrote:
/// `<state dir>/envs/<deployment id>.env.age`, encrypted with age to the
/// vault's recipients (like stack secret outputs under `outputs/`).
///
/// Why here rather than only the 0600 copy on the hosts
/// (`ROOT/envs/<id>.env`): a host's copy goes when its release is pruned or
/// the host is rebuilt, yet a rollback must restore the release *as it ran*
/// even when it has to be shipped again; and `rollback --dry-run` shows the
/// env file (masked) without asking any host to read secrets back. The
/// hosts' copies remain the fallback for a release deployed without an
/// identity (then nothing could be encrypted here, so nothing is kept): a
/// rollback that switches back uses `ROOT/envs/<id>.env` as it is.
fn kept_env_path(p: &Project, id: DeploymentId) -> PathBuf {
    p.state_dir().join("envs").join(format!("{id}.env.age"))
}

/// Keeps a deployment's env file text, encrypted to `recipients`.
pub(crate) fn keep_env_file(
    p: &Project,
    id: DeploymentId,
    text: &str,
    recipients: &[rollway_secrets::Recipient],
) -> Result<(), String> {
    let path = kept_env_path(p, id);
    rollway_secrets::age_file::write_armored_file(&path, text.as_bytes(), recipients).map_err(|e| {
        format!(
            "cannot keep the env file at {}: {e}; make the state directory writable (nothing was deployed)",
            path.display()
        )
    })
}

/// The env file deployment `id` wrote, decrypted, when this machine kept it.
fn kept_env(p: &Project, id: DeploymentId) -> Result<Option<String>> {
    let path = kept_env_path(p, id);
    if !path.exists() {
        return Ok(None);
    }
    let identities = rollway_secrets::age_file::load_identities(&p.identity_path()?).with_context(|| {
        format!(
            "cannot read the env file kept at {}: no usable identity; run `rollway secrets init` or set ROLLWAY_IDENTITY",
            path.display()
        )
    })?;
    let bytes = rollway_secrets::age_file::decrypt_file(&path, &identities).with_context(|| {
        format!(
            "cannot decrypt the env file kept at {}: your identity is not one of its recipients; use --current-config",
            path.display()
        )
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        Error::from(anyhow::anyhow!(
            "the env file kept at {} is not UTF-8; use --current-config",
            path.display()
        ))
    })?;
    Ok(Some(text))
}

/// An env file for people: `KEY=****` for every secret (or unknown) key,
/// plain values of the environment's `vars` as they are; then the masks
/// run over it too.
fn masked_env(text: &str, plain: &BTreeMap<String, String>) -> String {
    let Ok(entries) = rollway_secrets::dotenv::parse(text) else {
        return "(the env file does not parse; not shown)".to_owned();
    };
    entries
        .iter()
        .map(|(k, v)| {
            if plain.get(k) == Some(v) {
                format!("{k}={v}")
            } else {
                format!("{k}={}", rollway_model::mask::MASK)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The release directories a deployment's release lives in on the hosts,
/// newest first: its own, and for a rollback that switched back (it shipped
/// nothing, so it has no directory of its own) the one it returned to.
pub(crate) fn release_dirs(store: &dyn Store, target: &rollway_model::Deployment) -> Vec<String> {
    let mut dirs = vec![target.id.to_string()];
    let mut d = target.clone();
    while d.kind == DeploymentKind::Rollback && dirs.len() < 20 {
        let Some(next) = d.rollback_to.and_then(|id| store.deployment(id).ok().flatten()) else {
            break;
        };
        dirs.push(next.id.to_string());
        d = next;
    }
    dirs
}

/// The release directory every host still holds, if any: then the
/// rollback is a switch.
fn on_every_host(rt: &Runtime<'_>, hosts: &[HostPlan], dirs: &[String]) -> Result<Option<String>> {
    let mut common: Option<Vec<String>> = None;
    for plan in hosts {
        let mut session = rt.connector.open(plan).with_context(|| {
            format!(
                "cannot reach {} to see which releases it holds; check the host answers over ssh, then run the rollback again",
                plan.name
            )
        })?;
        let state = rollway_engine::HostSession::state(&mut session)?;
        let here: Vec<String> = dirs.iter().filter(|d| state.releases.contains(d)).cloned().collect();
        common = Some(match common {
            None => here,
            Some(c) => c.into_iter().filter(|d| here.contains(d)).collect(),
        });
    }
    Ok(common.and_then(|c| c.into_iter().next()))
}
