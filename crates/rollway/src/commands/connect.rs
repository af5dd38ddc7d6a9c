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
    let previous_archive = store
        .last_succeeded(env)?
        .and_then(|d| d.artifact_id)
        .and_then(|id| store.artifact(id).ok().flatten())
        .map(|a| std::path::PathBuf::from(a.location))
        .filter(|p| p.is_file());
    let options = SessionOptions {
        previous_archive,
        shared: config
            .service
            .as_ref()
            .map(|svc| svc.shared.clone())
            .unwrap_or_default(),
        manifest_cache: Some(state.join("cache").join("manifests")),
        ssh: SshTiming {
            connect_timeout: config.ssh.connect_timeout,
            alive_interval: config.ssh.alive_interval,
            alive_count_max: config.ssh.alive_count_max,
            ..SshTiming::default()
        },
    };
    Ok(Targets::new(&state, options))
}

/// `deploy --dry-run`: per host, what would travel and which commands
/// would run. Nothing on a host changes (the agent only reads).
pub fn dry_run(
    s: &Session,
    targets: &Targets,
    hosts: &[HostPlan],
    release: &ReleaseSource,
    service: &ServiceSpec,
) -> anyhow::Result<()> {
    let mut answers = Vec::new();
    let mut rows = Vec::new();
    for plan in hosts {
        let mut session = targets.open(plan)?;
        let state = session.state()?;
        let ship = session.plan_ship("dry-run", &release.archive, &release.sha256)?;
        let delta_bytes: u64 = ship.delta.iter().map(|(_, n)| n).sum();
        let full_bytes: u64 = ship.full.iter().map(|(_, n)| n).sum();
        let commands = vec![
            format!("write {}/envs/<deployment>.env (mode 0600)", plan.root),
            format!("point {}/current at releases/<deployment>", plan.root),
            format!("restart {} via {}", service.name, service.kind.as_str()),
            format!("probe http://127.0.0.1:{}", plan.port),
        ];
        s.printer.line(Tone::Plain, format!("{} ({})", plan.name, plan.root));
        s.printer.line(
            Tone::Dim,
            format!(
                "  current {}; {} file(s) linked, {} as patches ({} B) against {}, {} whole ({} B)",
                state.current.as_deref().unwrap_or("none"),
                ship.files_linked,
                ship.delta.len(),
                delta_bytes,
                ship.base.as_deref().unwrap_or("-"),
                ship.full.len(),
                full_bytes,
            ),
        );
        for (path, size) in ship
            .delta
            .iter()
            .map(|d| ("patch", d))
            .chain(ship.full.iter().map(|f| ("send", f)))
        {
            s.printer
                .line(Tone::Dim, format!("  {:<5} {} ({} B)", path, size.0, size.1));
        }
        for c in &commands {
            s.printer.line(Tone::Dim, format!("  run   {c}"));
        }
        rows.push(vec![
            cell(plan.name.clone(), Tone::Plain),
            cell(ship.files_linked.to_string(), Tone::Plain),
            cell(ship.delta.len().to_string(), Tone::Plain),
            cell(ship.full.len().to_string(), Tone::Plain),
            cell((delta_bytes + full_bytes).to_string(), Tone::Plain),
        ]);
        answers.push(serde_json::json!({
            "host": plan.name,
            "root": plan.root,
            "current": state.current,
            "files_linked": ship.files_linked,
            "patches": ship.delta.iter().map(|(p, n)| serde_json::json!({"path": p, "bytes": n})).collect::<Vec<_>>(),
            "whole": ship.full.iter().map(|(p, n)| serde_json::json!({"path": p, "bytes": n})).collect::<Vec<_>>(),
            "base": ship.base,
            "commands": commands,
        }));
    }
    s.printer.table(&["HOST", "LINKED", "PATCHED", "WHOLE", "BYTES"], &rows);
    s.printer.line(Tone::Good, "dry run: nothing was changed");
    s.printer
        .json(&serde_json::json!({ "dry_run": true, "artifact": release.artifact_id, "hosts": answers }));
    Ok(())
}
