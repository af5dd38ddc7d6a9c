//! `rollway build` and `rollway artifact list|show|verify|prune`: run the
//! build command with the environment's variables (its output masked and
//! kept), pack the output into a checksummed, content-addressed artifact,
//! and look after the artifacts the state directory holds.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use rollway_artifact::{AliasSpec, Expected, PackOptions, Secrets};
use rollway_config::Config;
use rollway_model::{Artifact, ArtifactId, DeploymentStatus, EventKind, Level, NewEvent};
use rollway_store::Store;

use crate::commands::deploy::find_artifact;
use crate::exit::{Code, coded, coded_with};
use crate::output::{Cell, Tone};
use crate::session::Session;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Run the build with this environment's variables (and refuse files holding its secrets).
    #[arg(long = "env", value_name = "ENV")]
    pub env: Option<String>,
    /// Pack `build.output` as it is, without running `build.command`.
    #[arg(long)]
    pub skip_command: bool,
}

#[derive(Debug, Subcommand)]
pub enum ArtifactCmd {
    /// Every artifact, newest first.
    List,
    /// One artifact's record (id, digest or a unique prefix).
    Show { id: String },
    /// Re-hash an artifact (id, digest, prefix or archive path) against its record.
    Verify { artifact: String },
    /// Remove expired artifacts, never a current release or a rollback target.
    Prune {
        /// Say what would go; remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub fn build(s: &Session, args: BuildArgs) -> anyhow::Result<()> {
    let (config, store) = s.open()?;
    let artifact = build_inner(s, &config, &*store, args.env.as_deref(), !args.skip_command)?;
    s.printer.json(&artifact);
    Ok(())
}

/// Builds (running the command) and records an artifact for a deployment.
pub fn build_for(s: &Session, config: &Config, store: &dyn Store, env: Option<&str>) -> anyhow::Result<Artifact> {
    build_inner(s, config, store, env, true)
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
    s: &Session,
    config: &Config,
    store: &dyn Store,
    env: Option<&str>,
    run_command: bool,
) -> anyhow::Result<Artifact> {
    use rollway_engine::deploy::lease;
    let lease_len = crate::commands::deploy::lease();
    let req = rollway_store::LockRequest {
        name: lease::build_lock_name(),
        owner: s.operator(),
        reason: format!("build of {}", config.project),
        deployment_id: None,
        lease: lease_len,
    };
    let lock = lease::acquire(store, &req, BUILD_WAIT, &mut |held| {
        s.printer.line(
            Tone::Dim,
            format!("waiting for the build {} started at {}", held.owner, held.acquired_at),
        );
    })
    .map_err(|e| coded(Code::Conflict, e))?;
    let (lock, built) = lease::renewing(store, lock, lease_len, || {
        build_unleased(s, config, store, env, run_command)
    });
    store
        .release_lock(&lock)
        .with_context(|| format!("cannot release the build lease of {}", config.project))?;
    built
}

fn build_unleased(
    s: &Session,
    config: &Config,
    store: &dyn Store,
    env: Option<&str>,
    run_command: bool,
) -> anyhow::Result<Artifact> {
    let build = config.build.as_ref().ok_or_else(|| {
        coded(
            Code::Invalid,
            anyhow::anyhow!(
                "{} has no [build]: set `output` (and `command`) so there is something to pack",
                s.config_path().display()
            ),
        )
    })?;
    let dir = s.config_dir();
    // Before any work: a commit that is no git hash refuses the build.
    let source = source_info(&dir)?;
    let values = match env {
        Some(env) => s.env_values(config, store, env)?,
        None => Vec::new(),
    };
    let state = s.state_dir();
    let log_path = state
        .join("logs")
        .join(format!("build-{}.log", store.clock().now().as_millis()));
    if let (true, Some(cmd)) = (run_command, &build.command) {
        run_build_command(s, &dir, cmd, &values, &log_path)?;
    }
    let output = dir.join(&build.output);
    if !output.exists() {
        return Err(coded(
            Code::Invalid,
            anyhow::anyhow!(
                "the build output {} does not exist: check [build] output, or the build command",
                output.display()
            ),
        ));
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
    let aliases =
        AliasSpec::discover(&dir, build.aliases.as_deref()).map_err(|e| coded(Code::Invalid, anyhow::Error::new(e)))?;
    let mut opts = PackOptions::new(state.join("artifacts"));
    opts.cache_dir = Some(state.join("cache"));
    opts.exclude = vec![state.clone()];
    opts.secrets = secrets;
    opts.aliases = aliases;
    s.printer.line(Tone::Dim, format!("packing {}", output.display()));
    let mut bar = s.printer.bar("packing");
    let packed = rollway_artifact::pack_with_progress(&output, &opts, &mut |p| {
        if let Some(b) = bar.as_mut() {
            b.update((p.files_done, p.files_total), (p.bytes_done, p.bytes_total));
        }
    });
    if let Some(b) = bar {
        b.finish();
    }
    let packed = packed.map_err(|e| coded(Code::Invalid, anyhow::Error::new(e)))?;
    // The deployer reads a manifest from this cache instead of the archive's
    // tail; a missing entry only costs one read later, so failure is no error.
    let _ = rollway_engine::target::archive::remember_manifest(
        &state.join("cache").join("manifests"),
        &packed.sha256,
        &packed.manifest,
    );
    if let Some(existing) = store.artifact_by_content_digest(&packed.content_digest)?
        && existing.sha256 == packed.sha256
        && Path::new(&existing.location).exists()
    {
        s.printer.line(
            Tone::Good,
            format!("unchanged: artifact {} ({})", existing.id, existing.short_digest()),
        );
        return Ok(existing);
    }
    let now = store.clock().now();
    let artifact = packed.record(build.kind, &source, now, build.expire_after, None);
    let ev = NewEvent::new(
        EventKind::ArtifactBuilt,
        Level::Info,
        format!("built artifact {} ({})", artifact.id, artifact.short_digest()),
    )
    .operator(s.operator())
    .data(serde_json::json!({
        "id": artifact.id, "sha256": artifact.sha256, "content_digest": artifact.content_digest,
        "size_bytes": artifact.size_bytes, "aliases_resolved": artifact.aliases_resolved,
        "log": log_path.exists().then(|| log_path.display().to_string()),
    }));
    let artifact = store.insert_artifact(&artifact, ev)?;
    s.printer.line(Tone::Good, format!("artifact {}", artifact.id));
    s.printer
        .line(Tone::Plain, format!("  sha256          {}", artifact.sha256));
    s.printer
        .line(Tone::Plain, format!("  content digest  {}", artifact.content_digest));
    s.printer.line(
        Tone::Plain,
        format!(
            "  size            {} bytes, {} files",
            artifact.size_bytes,
            artifact.file_count()
        ),
    );
    if !artifact.aliases_resolved {
        s.printer
            .line(Tone::Warn, "  aliases unresolved (a deploy will refuse it):");
        for l in &artifact.unresolved_aliases {
            s.printer.line(Tone::Warn, format!("    {l}"));
        }
    }
    Ok(artifact)
}

/// Runs `sh -c CMD` in `dir` with the values added to the environment; its
/// output goes through the masking filter to the terminal and to `log`.
fn run_build_command(
    s: &Session,
    dir: &Path,
    cmd: &str,
    values: &[(String, String)],
    log: &Path,
) -> anyhow::Result<()> {
    s.printer.line(Tone::Dim, format!("running build: {cmd}"));
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
    let masker = s.printer.masker();
    let mut kept = String::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = masker.mask(&line.context("cannot read the build output")?);
            s.printer.line(Tone::Plain, format!("  │ {line}"));
            kept.push_str(&line);
            kept.push('\n');
        }
    }
    std::fs::write(log, &kept).with_context(|| format!("cannot write {}", log.display()))?;
    let status = child.wait().context("the build command did not finish")?;
    if !status.success() {
        return Err(coded(
            Code::Failed,
            anyhow::anyhow!(
                "the build command failed ({status}); its output is in {}",
                log.display()
            ),
        ));
    }
    Ok(())
}

pub fn artifact(s: &Session, cmd: ArtifactCmd) -> anyhow::Result<()> {
    let store = s.store()?;
    match cmd {
        ArtifactCmd::List => {
            let all = store.artifacts()?;
            s.printer.json(&all);
            let rows: Vec<Vec<Cell>> = all
                .iter()
                .map(|a| {
                    vec![
                        Cell::from(a.id.to_string()),
                        Cell::from(a.short_digest().to_owned()),
                        Cell::from(a.kind.as_str()),
                        Cell::from(a.size_bytes.to_string()),
                        Cell::from(a.built_at.to_string()),
                        Cell::from(a.expires_at.to_string()),
                    ]
                })
                .collect();
            s.printer
                .table(&["ID", "SHA256", "KIND", "BYTES", "BUILT", "EXPIRES"], &rows);
        }
        ArtifactCmd::Show { id } => {
            let a = find_artifact(&*store, &id)?;
            s.printer.json(&a);
            s.printer.line(Tone::Plain, serde_json::to_string_pretty(&a)?);
        }
        ArtifactCmd::Verify { artifact } => {
            let (path, record) = if Path::new(&artifact).is_file() {
                let p = PathBuf::from(&artifact);
                let rec = store
                    .artifacts()?
                    .into_iter()
                    .find(|a| Path::new(&a.location) == p.as_path());
                (p, rec)
            } else if artifact.contains('/') || artifact.ends_with(".zst") || artifact.ends_with(".tar") {
                return Err(coded(
                    Code::Invalid,
                    anyhow::anyhow!(
                        "no such file {artifact}: give the path of an archive, or an artifact id from `rollway artifact list`"
                    ),
                ));
            } else {
                let a = find_artifact(&*store, &artifact)?;
                (PathBuf::from(&a.location), Some(a))
            };
            if let Some(a) = record.as_ref().filter(|_| !path.exists()) {
                return Err(coded_with(
                    Code::Failed,
                    anyhow::anyhow!(
                        "artifact {} is missing: its archive {} is gone; rebuild it with `rollway build`",
                        a.id,
                        path.display()
                    ),
                    serde_json::json!({ "artifact": a.id, "intact": false, "problem": "missing" }),
                ));
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
                Ok(report) => {
                    s.printer.json(&serde_json::json!({
                        "artifact": name, "intact": true, "sha256": report.sha256,
                        "content_digest": report.content_digest, "files": report.file_count,
                    }));
                    s.printer.line(
                        Tone::Good,
                        format!(
                            "artifact {name} is intact: {} files, sha256 {}",
                            report.file_count, report.sha256
                        ),
                    );
                }
                Err(e) => {
                    return Err(coded_with(
                        Code::Failed,
                        anyhow::anyhow!("artifact {name} is damaged: {e}"),
                        serde_json::json!({ "artifact": name, "intact": false, "problem": e.to_string() }),
                    ));
                }
            }
        }
        ArtifactCmd::Prune { dry_run } => prune(s, &*store, dry_run)?,
    }
    Ok(())
}

/// Expired artifacts that no environment runs or could roll back to.
fn prune(s: &Session, store: &dyn Store, dry_run: bool) -> anyhow::Result<()> {
    let now = store.clock().now();
    // What runs or could be returned to: every succeeded deployment (the
    // current release and the rollback targets), and anything in progress.
    let active: Vec<_> = store.active_deployments(None)?.into_iter().map(|d| d.id).collect();
    let keep: std::collections::BTreeSet<ArtifactId> = store
        .deployments(None, usize::MAX)?
        .into_iter()
        .filter(|d| d.status() == DeploymentStatus::Succeeded || d.rollback_target || active.contains(&d.id))
        .filter_map(|d| d.artifact_id)
        .collect();
    let mut removed = Vec::new();
    for a in store.artifacts()? {
        if a.expires_at > now || keep.contains(&a.id) {
            continue;
        }
        if !dry_run {
            let _ = std::fs::remove_file(&a.location);
            let ev = NewEvent::new(
                EventKind::ArtifactPruned,
                Level::Info,
                format!("pruned artifact {} ({})", a.id, a.short_digest()),
            )
            .operator(s.operator())
            .data(serde_json::json!({ "id": a.id, "sha256": a.sha256, "expired_at": a.expires_at }));
            store.delete_artifact(a.id, ev)?;
        }
        removed.push(a);
    }
    s.printer
        .json(&serde_json::json!({ "dry_run": dry_run, "removed": removed }));
    for a in &removed {
        s.printer.line(
            Tone::Plain,
            format!(
                "{} {} (expired {})",
                if dry_run { "would remove" } else { "removed" },
                a.id,
                a.expires_at
            ),
        );
    }
    if removed.is_empty() {
        s.printer.line(Tone::Dim, "nothing to prune");
    }
    Ok(())
}

/// The git commit, branch and dirty flag of `dir` (none outside git).
/// Seed 001 "commitHash must be a valid git hash format": what git names as
/// HEAD goes through the model's rule, and a value that is no git hash is
/// refused (exit 2) rather than recorded as "outside git".
pub fn source_info(dir: &Path) -> anyhow::Result<rollway_artifact::SourceInfo> {
    let head = git(dir, &["rev-parse", "HEAD"]).unwrap_or_default();
    let commit = rollway_model::rules::fields::commit_hash("commit", &head).map_err(|v| {
        coded(
            Code::Invalid,
            anyhow::anyhow!(
                "`git rev-parse HEAD` in {} answered {}; Rollway records the commit of every build and run, so fix the repository (or run outside git)",
                dir.display(),
                v.message
            ),
        )
    })?;
    Ok(rollway_artifact::SourceInfo {
        branch: commit
            .as_ref()
            .and_then(|_| git(dir, &["rev-parse", "--abbrev-ref", "HEAD"])),
        dirty: commit.is_some() && git(dir, &["status", "--porcelain"]).is_some(),
        commit,
    })
}
