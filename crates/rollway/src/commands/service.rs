//! `rollway stop|start|restart ENV` and `rollway logs ENV [--follow]`: the
//! service on every host of an environment, through each host's agent.

use clap::Args;
use rollway_engine::host::{HostSession, ServiceOp};

use crate::commands::connect;
use crate::commands::deploy::{Prepared, prepare_checked};
use crate::output::Tone;
use crate::session::Session;

#[derive(Debug, Args)]
pub struct ServiceArgs {
    pub env: String,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    pub env: String,
    /// Lines per host.
    #[arg(long, short = 'n', default_value_t = 50)]
    pub lines: usize,
    /// Keep printing new lines until Ctrl-C.
    #[arg(long, short = 'f')]
    pub follow: bool,
}

/// One host of an environment: its name, agent session, current release
/// (if any) and the service spec of that release.
pub struct HostService {
    pub name: String,
    pub session: Box<dyn HostSession>,
    pub current: Option<String>,
    pub spec: rollway_engine::supervisor::ServiceSpec,
}

/// Each host of `env` (only `only`, when given), with the spec of its
/// current release; the store stays open for the caller's events.
pub fn sessions(
    s: &Session,
    env: &str,
    only: Option<&str>,
) -> anyhow::Result<(Prepared, Vec<HostService>, Box<dyn rollway_store::Store>)> {
    let (config, store) = s.open()?;
    s.env_ref(&config, env)?;
    // Driving or reading the service deploys no values: today's secrets
    // need not pass `secrets check` (they still arm the masker).
    let p = prepare_checked(s, &config, &*store, env, &Default::default(), false)?;
    if let Some(h) = only.filter(|h| !p.hosts.iter().any(|plan| plan.name == *h)) {
        let names: Vec<&str> = p.hosts.iter().map(|plan| plan.name.as_str()).collect();
        return Err(crate::exit::coded(
            crate::exit::Code::Invalid,
            anyhow::anyhow!("{env} has no host {h}: its hosts are {}", names.join(", ")),
        ));
    }
    let connector = connect::connector(s, &config, &*store, env)?;
    let mut out = Vec::new();
    for plan in p.hosts.iter().filter(|plan| only.is_none_or(|h| plan.name == h)) {
        let mut session: Box<dyn HostSession> = Box::new(connector.open(plan)?);
        let current = session.state()?.current;
        let mut spec = p.service.clone();
        spec.root = plan.root.clone().into();
        spec.port = plan.port;
        spec.env_file = std::path::Path::new(&plan.root)
            .join("envs")
            .join(format!("{}.env", current.as_deref().unwrap_or_default()));
        out.push(HostService {
            name: plan.name.clone(),
            session,
            current,
            spec,
        });
    }
    Ok((p, out, store))
}

pub fn control(s: &Session, args: ServiceArgs, op: ServiceOp) -> anyhow::Result<()> {
    let (_, hosts, _) = sessions(s, &args.env, None)?;
    let mut answers = Vec::new();
    for HostService {
        name,
        mut session,
        spec,
        ..
    } in hosts
    {
        let status = session.service(op, &spec)?;
        s.printer.line(
            Tone::Good,
            format!(
                "{name}: {op:?} done (pid {})",
                status.pid.map_or("-".into(), |p| p.to_string())
            ),
        );
        answers.push(serde_json::json!({ "host": name, "status": status }));
    }
    s.printer.json(&answers);
    Ok(())
}

pub fn logs(s: &Session, args: LogsArgs) -> anyhow::Result<()> {
    let (p, mut hosts, _) = sessions(s, &args.env, None)?;
    let masker = p.masker.clone();
    let mut seen: Vec<Vec<String>> = vec![Vec::new(); hosts.len()];
    let mut all = Vec::new();
    loop {
        for (
            i,
            HostService {
                name, session, spec, ..
            },
        ) in hosts.iter_mut().enumerate()
        {
            let lines: Vec<String> = session
                .log_tail(spec, args.lines)?
                .iter()
                .map(|l| masker.mask(l))
                .collect();
            let new = new_lines(&seen[i], &lines);
            for l in &new {
                s.printer.line(Tone::Plain, format!("{name} │ {l}"));
                all.push(serde_json::json!({ "host": name, "line": l }));
            }
            seen[i] = lines;
        }
        if !args.follow {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    s.printer.json(&all);
    Ok(())
}

/// The lines of `now` that come after what `before` ended with.
fn new_lines(before: &[String], now: &[String]) -> Vec<String> {
    if before.is_empty() {
        return now.to_vec();
    }
    for start in 0..now.len() {
        let overlap = now.len() - start;
        if overlap <= before.len() && before[before.len() - overlap..] == now[..overlap] {
            return now[overlap..].to_vec();
        }
    }
    now.to_vec()
}

#[cfg(test)]
mod tests {
    use super::new_lines;

    #[test]
    fn only_lines_after_the_overlap_are_new() {
        let v = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert_eq!(new_lines(&v(&[]), &v(&["a", "b"])), v(&["a", "b"]));
        assert_eq!(new_lines(&v(&["a", "b"]), &v(&["a", "b", "c"])), v(&["c"]));
        assert_eq!(
            new_lines(&v(&["a", "b", "c"]), &v(&["b", "c", "d", "e"])),
            v(&["d", "e"])
        );
        assert_eq!(new_lines(&v(&["a", "b"]), &v(&["a", "b"])), v(&[]));
        assert_eq!(new_lines(&v(&["x"]), &v(&["y"])), v(&["y"]));
    }
}
