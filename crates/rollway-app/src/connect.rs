//! How a use case reaches an environment's hosts: one [`Targets`] per run,
//! told which artifact the hosts run now (so a redeploy ships deltas), and
//! the dry run, which asks every host what a deploy would send.

use std::path::{Path, PathBuf};

use rollway_config::Config;
use rollway_engine::HostSession as _;
use rollway_engine::{HostPlan, ReleaseSource, ServiceSpec, SessionOptions, SshTiming, Targets};
use rollway_store::Store;

use crate::error::Result;
use crate::project::Project;

/// The connectors for `env`: ssh control sockets under the state
/// directory, `[service] shared` linked into every release, manifests
/// cached by digest, and the artifact of the environment's last succeeded
/// deployment as the base for deltas.
pub(crate) fn connector(p: &Project, config: &Config, store: &dyn Store, env: &str) -> Result<Targets> {
    let state = p.state_dir();
    let options = session_options(config, store, env, Some(state.join("cache").join("manifests")))?;
    Ok(Targets::new(&state, options))
}

/// What every session to `env`'s hosts shares: the artifact of the last
/// succeeded deployment as the base for deltas, `[service] shared`, the
/// manifest cache (none: read, not cached) and the `[ssh]` timings.
fn session_options(
    config: &Config,
    store: &dyn Store,
    env: &str,
    manifest_cache: Option<PathBuf>,
) -> Result<SessionOptions> {
    let previous_archive = store
        .last_succeeded(env)?
        .and_then(|d| d.artifact_id)
        .and_then(|id| store.artifact(id).ok().flatten())
        .map(|a| PathBuf::from(a.location))
        .filter(|p| p.is_file());
    Ok(SessionOptions {
        previous_archive,
        shared: config
            .service
            .as_ref()
            .map(|svc| svc.shared.clone())
            .unwrap_or_default(),
        manifest_cache,
        ssh: SshTiming {
            connect_timeout: config.ssh.connect_timeout,
            alive_interval: config.ssh.alive_interval,
            alive_count_max: config.ssh.alive_count_max,
            persist: config.ssh.persist,
            ..SshTiming::default()
        },
        agent_quiet: agent_quiet(),
    })
}

/// How long an agent may stay silent on a request: the engine's default,
/// or `ROLLWAY_AGENT_QUIET` (tests shorten it).
fn agent_quiet() -> Option<std::time::Duration> {
    std::env::var("ROLLWAY_AGENT_QUIET")
        .ok()
        .and_then(|v| rollway_model::time::parse_duration(&v).ok())
}

/// The connectors of a dry run: like [`connector`], but nothing is written
/// under the state directory — ssh control sockets go to `scratch` (a
/// temporary directory) and archive manifests are read, not cached.
pub(crate) fn dry_run_connector(config: &Config, store: &dyn Store, env: &str, scratch: &Path) -> Result<Targets> {
    let options = session_options(config, store, env, None)?;
    Ok(Targets::new(scratch, options))
}

/// What a dry run plans for the hosts.
pub(crate) struct DryRun<'a> {
    /// The artifact that would be shipped; none when nothing is built yet.
    pub release: Option<&'a ReleaseSource>,
    /// The size of every file of that artifact (for the bytes linked).
    pub total_bytes: u64,
    /// A rollback: release directories (newest first) that, when a host
    /// still has one, make the rollback a switch with nothing shipped.
    pub reuse: &'a [String],
    /// List every file, not only counts and bytes.
    pub verbose: bool,
}

/// A file that would travel, and its size.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileBytes {
    pub path: String,
    pub bytes: u64,
}

/// How a host would get the release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Mode {
    /// A release directory still on the host: switched back, nothing shipped.
    #[serde(rename = "switch")]
    Switch,
    /// Files linked, patched or sent.
    #[serde(rename = "ship")]
    Ship,
    /// Nothing is built yet: the files are known once it is.
    #[serde(rename = "build first")]
    BuildFirst,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Switch => "switch",
            Mode::Ship => "ship",
            Mode::BuildFirst => "build first",
        }
    }
}

/// One host of a dry run: what would travel and which commands would run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HostDryRun {
    pub host: String,
    pub root: String,
    /// The release the host runs now.
    pub current: Option<String>,
    pub mode: Mode,
    /// The release directory a switch returns to.
    pub switch_to: Option<String>,
    pub files_linked: u64,
    pub bytes_linked: u64,
    pub files_patched: usize,
    pub bytes_patched: u64,
    pub files_sent: usize,
    pub bytes_sent: u64,
    /// The release the patches are against.
    pub base: Option<String>,
    pub commands: Vec<String>,
    /// Every patched file (verbose dry runs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patches: Option<Vec<FileBytes>>,
    /// Every file sent whole (verbose dry runs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whole: Option<Vec<FileBytes>>,
}

/// `deploy --dry-run` and `rollback --dry-run`: per host, what would travel
/// (counts and bytes; every file with `verbose`) and which commands would
/// run. Nothing on a host changes (the agent only reads).
pub(crate) fn dry_run(
    targets: &Targets,
    hosts: &[HostPlan],
    service: &ServiceSpec,
    plan: &DryRun<'_>,
) -> Result<Vec<HostDryRun>> {
    let mut answers = Vec::new();
    for host in hosts {
        let mut session = targets.open(host)?;
        let state = session.state()?;
        let reuse = plan.reuse.iter().find(|r| state.releases.contains(r)).cloned();
        let (mode, linked, delta, full, base) = match (&reuse, plan.release) {
            (Some(_), _) => (Mode::Switch, 0, Vec::new(), Vec::new(), None),
            (None, Some(release)) => {
                let ship = session.plan_ship("dry-run", &release.archive, &release.sha256)?;
                (Mode::Ship, ship.files_linked, ship.delta, ship.full, ship.base)
            }
            (None, None) => (Mode::BuildFirst, 0, Vec::new(), Vec::new(), None),
        };
        let target = match &reuse {
            Some(r) => format!("releases/{r}"),
            None => "releases/<deployment>".to_owned(),
        };
        let commands = vec![
            format!("write {}/envs/<deployment>.env (mode 0600)", host.root),
            format!("point {}/current at {target}", host.root),
            format!("restart {} via {}", service.name, service.kind.as_str()),
            format!("probe http://127.0.0.1:{}", host.port),
        ];
        let delta_bytes: u64 = delta.iter().map(|(_, n)| n).sum();
        let full_bytes: u64 = full.iter().map(|(_, n)| n).sum();
        let list = |v: &[(String, u64)]| -> Vec<FileBytes> {
            v.iter()
                .map(|(path, bytes)| FileBytes {
                    path: path.clone(),
                    bytes: *bytes,
                })
                .collect()
        };
        answers.push(HostDryRun {
            host: host.name.clone(),
            root: host.root.clone(),
            current: state.current,
            mode,
            switch_to: reuse,
            files_linked: linked,
            bytes_linked: if mode == Mode::Ship {
                plan.total_bytes.saturating_sub(delta_bytes + full_bytes)
            } else {
                0
            },
            files_patched: delta.len(),
            bytes_patched: delta_bytes,
            files_sent: full.len(),
            bytes_sent: full_bytes,
            base,
            commands,
            patches: Some(list(&delta)),
            whole: Some(list(&full)),
        });
    }
    // The scratch directory holding the control sockets goes with the
    // dry run: end the multiplexed connections now rather than leave
    // masters waiting out ControlPersist.
    for host in hosts {
        let _ = targets.ssh.disconnect(host);
    }
    if !plan.verbose {
        for a in &mut answers {
            a.patches = None;
            a.whole = None;
        }
    }
    Ok(answers)
}
