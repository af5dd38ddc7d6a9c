//! The service on an environment's hosts, through each host's agent:
//! stop, start, restart, its last output lines (followed), and one-off
//! commands in its current release (`exec`, like `kamal app exec`).

use std::time::Duration;

use rollway_engine::HostSession;
pub use rollway_engine::{ServiceOp, ServiceStatus};
use rollway_model::{EventKind, Level, NewEvent};
use rollway_store::Store;

use crate::deploy::{self, Prepared};
use crate::error::{Code, Error, Result};
use crate::project::Project;

/// One host of an environment: its name, agent session, current release
/// (if any) and the service spec of that release.
pub(crate) struct HostService {
    pub name: String,
    pub session: Box<dyn HostSession>,
    pub current: Option<String>,
    pub spec: rollway_engine::ServiceSpec,
}

/// Each host of `env` (only `only`, when given), with the spec of its
/// current release; the store stays open for the caller's events.
pub(crate) fn sessions(
    p: &Project,
    env: &str,
    only: Option<&str>,
) -> Result<(Prepared, Vec<HostService>, Box<dyn Store>)> {
    let (config, store) = p.open()?;
    let (prepared, out) = sessions_in(p, &config, &*store, env, only)?;
    Ok((prepared, out, store))
}

/// [`sessions`] with the config and store already open (`serve`'s log
/// collection keeps its own).
pub(crate) fn sessions_in(
    p: &Project,
    config: &rollway_config::Config,
    store: &dyn Store,
    env: &str,
    only: Option<&str>,
) -> Result<(Prepared, Vec<HostService>)> {
    p.env_ref(config, env)?;
    // Driving or reading the service deploys no values: today's secrets
    // need not pass `secrets check` (they still arm the masker).
    let prepared = deploy::prepare_checked(p, config, store, env, &Default::default(), false)?;
    if let Some(h) = only.filter(|h| !prepared.hosts.iter().any(|plan| plan.name == *h)) {
        let names: Vec<&str> = prepared.hosts.iter().map(|plan| plan.name.as_str()).collect();
        return Err(Error::invalid(format_args!(
            "{env} has no host {h}: its hosts are {}",
            names.join(", ")
        )));
    }
    let connector = crate::connect::connector(p, config, store, env)?;
    let mut out = Vec::new();
    for plan in prepared.hosts.iter().filter(|plan| only.is_none_or(|h| plan.name == h)) {
        let mut session: Box<dyn HostSession> = Box::new(connector.open(plan)?);
        let current = session.state()?.current;
        let mut spec = prepared.service.clone();
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
    Ok((prepared, out))
}

/// A host's service after a stop, start or restart.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HostStatus {
    pub host: String,
    pub status: ServiceStatus,
}

/// Stops, starts or restarts the service on every host of `env`; `done`
/// is told of each host as it is done.
pub fn control(p: &Project, env: &str, op: ServiceOp, done: &mut dyn FnMut(&HostStatus)) -> Result<Vec<HostStatus>> {
    let (_, hosts, _) = sessions(p, env, None)?;
    let mut answers = Vec::new();
    for HostService {
        name,
        mut session,
        spec,
        ..
    } in hosts
    {
        let status = session.service(op, &spec)?;
        let answer = HostStatus { host: name, status };
        done(&answer);
        answers.push(answer);
    }
    Ok(answers)
}

/// A line of a service's output, masked.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LogLine {
    pub host: String,
    pub line: String,
}

/// The service's last `lines` output lines on every host (masked); with
/// `follow`, new lines once a second until the process ends. `line` is
/// told each line as it comes.
pub fn logs(
    p: &Project,
    env: &str,
    lines: usize,
    follow: bool,
    line: &mut dyn FnMut(&LogLine),
) -> Result<Vec<LogLine>> {
    let (prepared, mut hosts, _) = sessions(p, env, None)?;
    let masker = prepared.masker.clone();
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
            let now: Vec<String> = session.log_tail(spec, lines)?.iter().map(|l| masker.mask(l)).collect();
            for l in new_lines(&seen[i], &now) {
                let l = LogLine {
                    host: name.clone(),
                    line: l,
                };
                line(&l);
                all.push(l);
            }
            seen[i] = now;
        }
        if !follow {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    Ok(all)
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

/// The exit code when the command ran past its timeout (as timeout(1) says).
const TIMED_OUT: i32 = 124;

/// What a one-off command did on one host.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Ran {
    pub host: String,
    pub release: String,
    pub code: Option<i32>,
    pub timed_out: bool,
    pub truncated: bool,
    /// Its output (stdout and stderr), masked.
    pub output: String,
}

/// Runs `command` in the current release on each host of `env` (only
/// `only`, when given), started the way the service is — the release
/// directory, its env file, `PORT` — through the host's agent. Output is
/// masked, every run is an audit event, and the first failing host's exit
/// code becomes the error's class (`Code::Exited`), the hosts' answers its
/// details. `ran` is told each host as it is done.
pub fn exec(
    p: &Project,
    env: &str,
    only: Option<&str>,
    timeout: Duration,
    command: &[String],
    ran: &mut dyn FnMut(&Ran),
) -> Result<Vec<Ran>> {
    if command.is_empty() {
        return Err(Error::invalid(format_args!(
            "nothing to run: give the command after `--`, e.g. `rollway exec {env} -- ls`"
        )));
    }
    // One word is a shell line as typed; several are quoted so that each
    // reaches the program as it was given.
    let line = if command.len() == 1 {
        command[0].clone()
    } else {
        command.iter().map(|w| shell_quote(w)).collect::<Vec<_>>().join(" ")
    };
    let (prepared, hosts, store) = sessions(p, env, only)?;
    let masker = prepared.masker;
    let shown = masker.mask(&line);
    let mut answers = Vec::new();
    let mut first_failure: Option<(i32, String)> = None;
    for HostService {
        name,
        mut session,
        current,
        spec,
    } in hosts
    {
        let Some(release) = current else {
            return Err(Error::invalid(format_args!(
                "{name}: {env} has no current release there: deploy it first"
            )));
        };
        let result = session.run(&release, None, &line, spec.port, timeout)?;
        let output = masker.mask(&result.output);
        let code = match (result.timed_out, result.code) {
            (true, _) => TIMED_OUT,
            (false, Some(c)) => c,
            (false, None) => 1,
        };
        let how = if result.timed_out {
            format!("ran past {}s and was killed", timeout.as_secs())
        } else {
            format!("exited {}", result.code.map_or("by a signal".into(), |c| c.to_string()))
        };
        let answer = Ran {
            host: name.clone(),
            release: release.clone(),
            code: result.code,
            timed_out: result.timed_out,
            truncated: result.truncated,
            output,
        };
        ran(&answer);
        let level = if code == 0 { Level::Info } else { Level::Warn };
        store.append_event(
            NewEvent::new(
                EventKind::CommandExecuted,
                level,
                format!("{} ran `{shown}` in release {release} on {name}: {how}", p.operator()),
            )
            .environment(env.to_owned())
            .operator(p.operator())
            .data(serde_json::json!({
                "host": name, "release": release, "command": shown,
                "code": result.code, "timed_out": result.timed_out,
            })),
        )?;
        if code != 0 && first_failure.is_none() {
            first_failure = Some((code, format!("{name}: `{shown}` {how}")));
        }
        answers.push(answer);
    }
    match first_failure {
        // One machine answer either way: the hosts' answers go with the error.
        Some((code, message)) => Err(Error::new(Code::Exited(code), anyhow::anyhow!("{message}"))
            .with_details(serde_json::json!({ "hosts": answers }))),
        None => Ok(answers),
    }
}

/// `w` as one POSIX shell word.
fn shell_quote(w: &str) -> String {
    if !w.is_empty()
        && w.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b))
    {
        w.to_owned()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::{new_lines, shell_quote};

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

    #[test]
    fn words_are_quoted_only_when_the_shell_would_split_or_expand_them() {
        let check = |w: &str, expected: &str| assert_eq!(shell_quote(w), expected, "{w:?}");
        check("ls", "ls");
        check("--name=a.b/c", "--name=a.b/c");
        check("", "''");
        check("a b", "'a b'");
        check("$HOME", "'$HOME'");
        check("it's", r"'it'\''s'");
    }
}
