//! Build and artifacts: run the build command with the environment's
//! variables (its output masked and kept), pack the output into a
//! checksummed, content-addressed artifact, and look after the artifacts the
//! state directory holds (list, show, verify, prune).

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context as _;
use rollway_artifact::{AliasSpec, Expected, PackOptions, Secrets};
use rollway_config::Config;
use rollway_model::{Artifact, EventKind, Level, Lock, NewEvent};
use rollway_store::Store;

use crate::error::{Code, Error, Result};
use crate::project::Project;

/// Where a build tells people how it goes.
pub trait BuildProgress: Sync {
    /// Another build of the project holds the build lease: this one waits.
    fn waiting(&self, holder: &Lock);
    /// The build command starts.
    fn command(&self, command: &str);
    /// A line of the build command's output, masked.
    fn output(&self, line: &str);
    /// Packing of `output` starts.
    fn packing(&self, output: &Path);
    /// Files and bytes packed out of their totals (0: unknown).
    fn packed(&self, files: (u64, u64), bytes: (u64, u64));
    /// Packing ended (or failed).
    fn pack_done(&self);
    /// The artifact: a new one, or an unchanged one already recorded.
    fn built(&self, artifact: &Artifact, unchanged: bool);
}

/// Builds (running `[build] command` unless `run_command` is false) and
/// records an artifact, with `env`'s variables when one is named.
pub fn build(p: &Project, env: Option<&str>, run_command: bool, progress: &dyn BuildProgress) -> Result<Artifact> {
    let (config, store) = p.open()?;
    build_inner(p, &config, &*store, env, run_command, progress)
}

/// Builds (running the command) and records an artifact for a deployment.
pub(crate) fn build_for(
    p: &Project,
    config: &Config,
    store: &dyn Store,
    env: Option<&str>,
    progress: &dyn BuildProgress,
) -> Result<Artifact> {
    build_inner(p, config, store, env, true, progress)
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let v = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !v.is_empty()).then_some(v)
}

/// How long a build waits for another build of the project to finish. A
/// holder that dies frees the lease within one lease period anyway.
const BUILD_WAIT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Builds under the project's build lease: two deploys of different
/// environments, or a `rollway build` beside a deploy, never run the build
/// command into the same output directory at once; the later one waits.
fn build_inner(
    p: &Project,
    config: &Config,
    store: &dyn Store,
    env: Option<&str>,
    run_command: bool,
    progress: &dyn BuildProgress,
) -> Result<Artifact> {
    let lease_len = crate::deploy::lease();
    let req = rollway_store::LockRequest {
        name: rollway_engine::build_lock_name(),
        owner: p.operator(),
        reason: format!("build of {}", config.project),
        deployment_id: None,
        lease: lease_len,
    };
    let lock = rollway_engine::acquire_lease(store, &req, BUILD_WAIT, &mut |held| progress.waiting(held))
        .map_err(|e| Error::new(Code::Conflict, e))?;
    let (lock, built) = rollway_engine::renewing_lease(store, lock, lease_len, || {
        build_unleased(p, config, store, env, run_command, progress)
    });
    store
        .release_lock(&lock)
        .with_context(|| format!("cannot release the build lease of {}", config.project))?;
    built
}

fn build_unleased(
    p: &Project,
    config: &Config,
    store: &dyn Store,
    env: Option<&str>,
    run_command: bool,
    progress: &dyn BuildProgress,
) -> Result<Artifact> {
    let build = config.build.as_ref().ok_or_else(|| {
        Error::invalid(format_args!(
            "{} has no [build]: set `output` (and `command`) so there is something to pack",
            p.config_path().display()
        ))
    })?;
    let dir = p.config_dir();
    // Before any work: a commit that is no git hash refuses the build.
    let source = source_info(&dir)?;
    let values = match env {
        Some(env) => p.env_values(config, store, env)?,
        None => Vec::new(),
    };
    let state = p.state_dir();
    let log_path = state
        .join("logs")
        .join(format!("build-{}.log", store.clock().now().as_millis()));
    if let (true, Some(cmd)) = (run_command, &build.command) {
        run_build_command(p, &dir, cmd, &values, &log_path, progress)?;
    }
    let output = dir.join(&build.output);
    if !output.exists() {
        return Err(Error::invalid(format_args!(
            "the build output {} does not exist: check [build] output, or the build command",
            output.display()
        )));
    }
    // Only secrets are scanned for: declared secret, else recorded secret
    // (a `--plain` value is not), never a plain `vars` entry.
    let mut secret_values = Vec::new();
    for (k, v) in &values {
        let secret = match (config.variables.get(k), env) {
            (Some(decl), _) => decl.secret,
            (None, Some(env)) => store.variable(env, k)?.is_none_or(|rec| rec.secret),
            (None, None) => true,
        };
        if secret && !config.environments.values().any(|e| e.vars.contains_key(k)) {
            secret_values.push((k.clone(), v.clone()));
        }
    }
    let secrets = Secrets::new(secret_values);
    let aliases = AliasSpec::discover(&dir, build.aliases.as_deref()).map_err(|e| Error::new(Code::Invalid, e))?;
    let mut opts = PackOptions::new(state.join("artifacts"));
    opts.cache_dir = Some(state.join("cache"));
    opts.exclude = vec![state.clone()];
    opts.secrets = secrets;
    opts.aliases = aliases;
    progress.packing(&output);
    let packed = rollway_artifact::pack_with_progress(&output, &opts, &mut |pr| {
        progress.packed((pr.files_done, pr.files_total), (pr.bytes_done, pr.bytes_total));
    });
    progress.pack_done();
    let packed = packed.map_err(|e| Error::new(Code::Invalid, e))?;
    // The deployer reads a manifest from this cache instead of the archive's
    // tail; a missing entry only costs one read later, so failure is no error.
    let _ = rollway_engine::remember_manifest(&state.join("cache").join("manifests"), &packed.sha256, &packed.manifest);
    let now = store.clock().now();
    if let Some(existing) = store.artifact_by_content_digest(&packed.content_digest)?
        && existing.sha256 == packed.sha256
        && Path::new(&existing.location).exists()
    {
        // Seed 001 expiresAt: a build never hands back an expired record.
        let existing = if existing.is_expired(now) {
            let until = now.plus(build.expire_after);
            let ev = NewEvent::new(
                EventKind::ArtifactBuilt,
                Level::Info,
                format!(
                    "renewed artifact {} ({}) until {until}",
                    existing.id,
                    existing.short_digest()
                ),
            )
            .operator(p.operator())
            .data(serde_json::json!({ "id": existing.id, "renewed": true, "expires_at": until }));
            store.renew_artifact(existing.id, until, ev)?
        } else {
            existing
        };
        progress.built(&existing, true);
        return Ok(existing);
    }
    let artifact = packed.record(build.kind, &source, now, build.expire_after, None);
    // Seed 000 sizeBytes > 0: an archive always has bytes, so "empty" is no files.
    if artifact.contents.is_empty() {
        return Err(Error::invalid(format_args!(
            "the build output {} holds no files: an empty artifact cannot be deployed; check [build] output and the build command",
            output.display()
        )));
    }
    let ev = NewEvent::new(
        EventKind::ArtifactBuilt,
        Level::Info,
        format!("built artifact {} ({})", artifact.id, artifact.short_digest()),
    )
    .operator(p.operator())
    .data(serde_json::json!({
        "id": artifact.id, "sha256": artifact.sha256, "content_digest": artifact.content_digest,
        "size_bytes": artifact.size_bytes, "aliases_resolved": artifact.aliases_resolved,
        "log": log_path.exists().then(|| log_path.display().to_string()),
    }));
    let artifact = store.insert_artifact(&artifact, ev)?;
    progress.built(&artifact, false);
    Ok(artifact)
}

/// Runs `sh -c CMD` in `dir` with the values added to the environment; its
/// output goes through the masks to the progress and to `log`.
fn run_build_command(
    p: &Project,
    dir: &Path,
    cmd: &str,
    values: &[(String, String)],
    log: &Path,
    progress: &dyn BuildProgress,
) -> Result<()> {
    progress.command(cmd);
    if let Some(parent) = log.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("exec 2>&1; {cmd}"))
        .current_dir(dir)
        .envs(values.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start the build command in {}: sh -c {cmd}", dir.display()))?;
    let masker = p.masks().masker();
    let mut kept = String::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = masker.mask(&line.context("cannot read the build output")?);
            progress.output(&line);
            kept.push_str(&line);
            kept.push('\n');
        }
    }
    std::fs::write(log, &kept).with_context(|| format!("cannot write {}", log.display()))?;
    let status = child.wait().context("the build command did not finish")?;
    if !status.success() {
        return Err(Error::failed(format_args!(
            "the build command failed ({status}); its output is in {}",
            log.display()
        )));
    }
    Ok(())
}

/// Every artifact, newest first.
pub fn artifacts(p: &Project) -> Result<Vec<Artifact>> {
    Ok(p.store()?.artifacts()?)
}

/// One artifact by id, digest or a unique prefix of either.
pub fn artifact(p: &Project, wanted: &str) -> Result<Artifact> {
    let store = p.store()?;
    crate::deploy::find_artifact(&*store, wanted)
}

/// An artifact whose archive matches its record.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Intact {
    /// The artifact's id, or the archive's path when it has no record.
    pub artifact: String,
    pub intact: bool,
    pub sha256: rollway_model::Sha256Digest,
    pub content_digest: rollway_model::Sha256Digest,
    pub files: u64,
}

/// Re-hashes an artifact (id, digest, prefix or archive path) against its record.
pub fn verify_artifact(p: &Project, wanted: &str) -> Result<Intact> {
    let store = p.store()?;
    let (path, record) = if Path::new(wanted).is_file() {
        let path = PathBuf::from(wanted);
        let rec = store
            .artifacts()?
            .into_iter()
            .find(|a| Path::new(&a.location) == path.as_path());
        (path, rec)
    } else if wanted.contains('/') || wanted.ends_with(".zst") || wanted.ends_with(".tar") {
        return Err(Error::invalid(format_args!(
            "no such file {wanted}: give the path of an archive, or an artifact id from `rollway artifact list`"
        )));
    } else {
        let a = crate::deploy::find_artifact(&*store, wanted)?;
        (PathBuf::from(&a.location), Some(a))
    };
    if let Some(a) = record.as_ref().filter(|_| !path.exists()) {
        return Err(Error::failed(format_args!(
            "artifact {} is missing: its archive {} is gone; rebuild it with `rollway build`",
            a.id,
            path.display()
        ))
        .with_details(serde_json::json!({ "artifact": a.id, "intact": false, "problem": "missing" })));
    }
    let expected = record.as_ref().map(|a| Expected {
        sha256: Some(a.sha256.clone()),
        size_bytes: Some(a.size_bytes),
        content_digest: Some(a.content_digest.clone()),
    });
    let name = record
        .as_ref()
        .map_or_else(|| path.display().to_string(), |a| a.id.to_string());
    match rollway_artifact::verify(&path, expected.as_ref()) {
        Ok(report) => Ok(Intact {
            artifact: name,
            intact: true,
            sha256: report.sha256,
            content_digest: report.content_digest,
            files: report.file_count,
        }),
        Err(e) => Err(Error::failed(format_args!("artifact {name} is damaged: {e}"))
            .with_details(serde_json::json!({ "artifact": name, "intact": false, "problem": e.to_string() }))),
    }
}

/// What `artifact prune` removed (or would remove).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pruned {
    pub dry_run: bool,
    pub removed: Vec<Artifact>,
}

/// Removes expired artifacts that no environment runs or could roll back to.
pub fn prune(p: &Project, dry_run: bool) -> Result<Pruned> {
    let store = p.store()?;
    let config = p.config()?;
    let now = store.clock().now();
    // What runs or could be returned to never expires: anything in progress,
    // and each environment's `keep_releases` newest succeeded releases.
    let deployments = store.deployments(None, usize::MAX)?;
    let artifacts = store.artifacts()?;
    let expired: Vec<Artifact> = rollway_model::may_expire(
        &artifacts,
        &deployments,
        |env| crate::deploy::keep_releases(&config, env),
        now,
    )
    .into_iter()
    .cloned()
    .collect();
    let mut removed = Vec::new();
    for a in expired {
        if !dry_run {
            let _ = std::fs::remove_file(&a.location);
            let ev = NewEvent::new(
                EventKind::ArtifactPruned,
                Level::Info,
                format!("pruned artifact {} ({})", a.id, a.short_digest()),
            )
            .operator(p.operator())
            .data(serde_json::json!({ "id": a.id, "sha256": a.sha256, "expired_at": a.expires_at }));
            store.delete_artifact(a.id, ev)?;
        }
        removed.push(a);
    }
    Ok(Pruned { dry_run, removed })
}

/// The git commit, branch and dirty flag of `dir` (none outside git).
/// Seed 001 "commitHash must be a valid git hash format": what git names as
/// HEAD goes through the model's rule, and a value that is no git hash is
/// refused (exit 2) rather than recorded as "outside git".
pub(crate) fn source_info(dir: &Path) -> Result<rollway_artifact::SourceInfo> {
    let head = git(dir, &["rev-parse", "HEAD"]).unwrap_or_default();
    let commit = rollway_model::rules::fields::commit_hash("commit", &head).map_err(|v| {
        Error::invalid(format_args!(
            "`git rev-parse HEAD` in {} answered {}; Rollway records the commit of every build and run, so fix the repository (or run outside git)",
            dir.display(),
            v.message
        ))
    })?;
    Ok(rollway_artifact::SourceInfo {
        branch: commit
            .as_ref()
            .and_then(|_| git(dir, &["rev-parse", "--abbrev-ref", "HEAD"])),
        dirty: commit.is_some() && git(dir, &["status", "--porcelain"]).is_some(),
        commit,
    })
}
