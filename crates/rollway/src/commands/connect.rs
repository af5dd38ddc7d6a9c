//! How the CLI reaches an environment's hosts: one [`Targets`] per command,
//! told which artifact the hosts run now (so a redeploy ships deltas), and
//! `deploy --dry-run`, which asks every host what a deploy would send.

use rollway_config::Config;
use rollway_engine::deploy::{HostPlan, ReleaseSource};
use rollway_engine::host::HostSession as _;
use rollway_engine::supervisor::ServiceSpec;
use rollway_engine::target::{SessionOptions, SshTiming, Targets};
use rollway_store::Store;

use crate::output::{Tone, cell};
use crate::session::Session;

/// The connectors for `env`: ssh control sockets under the state
/// directory, `[service] shared` linked into every release, manifests
/// cached by digest, and the artifact of the environment's last succeeded
/// deployment as the base for deltas.
pub fn connector(s: &Session, config: &Config, store: &dyn Store, env: &str) -> anyhow::Result<Targets> {
    let state = s.state_dir();
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
    manifest_cache: Option<std::path::PathBuf>,
) -> anyhow::Result<SessionOptions> {
    let previous_archive = store
        .last_succeeded(env)?
        .and_then(|d| d.artifact_id)
        .and_then(|id| store.artifact(id).ok().flatten())
        .map(|a| std::path::PathBuf::from(a.location))
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
    })
}

/// The connectors of a dry run: like [`connector`], but nothing is written
/// under the state directory — ssh control sockets go to `scratch` (a
/// temporary directory) and archive manifests are read, not cached.
pub fn dry_run_connector(
    config: &Config,
    store: &dyn Store,
    env: &str,
    scratch: &std::path::Path,
) -> anyhow::Result<Targets> {
    let options = session_options(config, store, env, None)?;
    Ok(Targets::new(scratch, options))
}

/// What a dry run plans for the hosts.
pub struct DryRun<'a> {
    /// The artifact that would be shipped; none when nothing is built yet.
    pub release: Option<&'a ReleaseSource>,
    /// The size of every file of that artifact (for the bytes linked).
    pub total_bytes: u64,
    /// A rollback: release directories (newest first) that, when a host
    /// still has one, make the rollback a switch with nothing shipped.
    pub reuse: &'a [String],
    /// The env file the deployment would write, as people see it (masked).
    pub env_file: &'a str,
    /// List every file, not only counts and bytes.
    pub verbose: bool,
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in UNITS.iter().skip(1) {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// `deploy --dry-run` and `rollback --dry-run`: per host, what would travel
/// (counts and bytes; every file with `verbose`) and which commands would
/// run. Nothing on a host changes (the agent only reads). Returns the
/// per-host answers for the command's JSON document.
pub fn dry_run(
    s: &Session,
    targets: &Targets,
    hosts: &[HostPlan],
    service: &ServiceSpec,
    plan: &DryRun<'_>,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut answers = Vec::new();
    let mut rows = Vec::new();
    for host in hosts {
        let mut session = targets.open(host)?;
        let state = session.state()?;
        let reuse = plan.reuse.iter().find(|r| state.releases.contains(r)).cloned();
        let current = state.current.as_deref().unwrap_or("none");
        s.printer.line(Tone::Plain, format!("{} ({})", host.name, host.root));
        let (mode, linked, delta, full, base) = match (&reuse, plan.release) {
            (Some(r), _) => {
                s.printer.line(
                    Tone::Dim,
                    format!("  current {current}; switch: release {r} is still on the host, 0 bytes shipped"),
                );
                ("switch", 0, Vec::new(), Vec::new(), None)
            }
            (None, Some(release)) => {
                let ship = session.plan_ship("dry-run", &release.archive, &release.sha256)?;
                let delta_bytes: u64 = ship.delta.iter().map(|(_, n)| n).sum();
                let full_bytes: u64 = ship.full.iter().map(|(_, n)| n).sum();
                let linked_bytes = plan.total_bytes.saturating_sub(delta_bytes + full_bytes);
                s.printer.line(
                    Tone::Dim,
                    format!(
                        "  current {current}; ship: {} file(s) linked ({}), {} patched ({}) against {}, {} sent whole ({})",
                        ship.files_linked,
                        bytes(linked_bytes),
                        ship.delta.len(),
                        bytes(delta_bytes),
                        ship.base.as_deref().unwrap_or("-"),
                        ship.full.len(),
                        bytes(full_bytes),
                    ),
                );
                ("ship", ship.files_linked, ship.delta, ship.full, ship.base)
            }
            (None, None) => {
                s.printer.line(
                    Tone::Dim,
                    format!("  current {current}; no artifact built yet: the files are known once it is built"),
                );
                ("build first", 0, Vec::new(), Vec::new(), None)
            }
        };
        if plan.verbose {
            for (what, (path, size)) in delta
                .iter()
                .map(|d| ("patch", d))
                .chain(full.iter().map(|f| ("send", f)))
            {
                s.printer.line(Tone::Dim, format!("  {what:<5} {path} ({size} B)"));
            }
        }
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
        for c in &commands {
            s.printer.line(Tone::Dim, format!("  run   {c}"));
        }
        let delta_bytes: u64 = delta.iter().map(|(_, n)| n).sum();
        let full_bytes: u64 = full.iter().map(|(_, n)| n).sum();
        rows.push(vec![
            cell(host.name.clone(), Tone::Plain),
            cell(mode, Tone::Plain),
            cell(linked.to_string(), Tone::Plain),
            cell(delta.len().to_string(), Tone::Plain),
            cell(full.len().to_string(), Tone::Plain),
            cell(bytes(delta_bytes + full_bytes), Tone::Plain),
        ]);
        let list = |v: &[(String, u64)]| -> serde_json::Value {
            v.iter()
                .map(|(p, n)| serde_json::json!({"path": p, "bytes": n}))
                .collect()
        };
        let mut answer = serde_json::json!({
            "host": host.name,
            "root": host.root,
            "current": state.current,
            "mode": mode,
            "switch_to": reuse,
            "files_linked": linked,
            "bytes_linked": if mode == "ship" { plan.total_bytes.saturating_sub(delta_bytes + full_bytes) } else { 0 },
            "files_patched": delta.len(),
            "bytes_patched": delta_bytes,
            "files_sent": full.len(),
            "bytes_sent": full_bytes,
            "base": base,
            "commands": commands,
        });
        if plan.verbose {
            answer["patches"] = list(&delta);
            answer["whole"] = list(&full);
        }
        answers.push(answer);
    }
    // The scratch directory holding the control sockets goes with the
    // dry run: end the multiplexed connections now rather than leave
    // masters waiting out ControlPersist.
    for host in hosts {
        let _ = targets.ssh.disconnect(host);
    }
    s.printer
        .table(&["HOST", "MODE", "LINKED", "PATCHED", "WHOLE", "BYTES"], &rows);
    if !plan.env_file.is_empty() {
        s.printer.line(Tone::Plain, "env file (masked):");
        for l in plan.env_file.lines() {
            s.printer.line(Tone::Dim, format!("  {l}"));
        }
    }
    Ok(answers)
}
