//! `rollway exec ENV [--host H] -- COMMAND…`: a one-off command in the
//! current release on each host (like `kamal app exec` or `dokku run`),
//! started the way the service is — the release directory, its env file,
//! `PORT` — through the host's agent. Output is masked, the exit code passes
//! through, and every run is an audit event.

use std::ffi::OsString;
use std::time::Duration;

use rollway_model::{EventKind, Level, NewEvent};

use crate::commands::service::{HostService, sessions};
use crate::exit::{Code, coded, coded_with};
use crate::output::Tone;
use crate::session::Session;

/// The exit code when the command ran past `--timeout` (as timeout(1) says).
const TIMED_OUT: i32 = 124;

pub fn run(s: &Session, env: &str, only: Option<&str>, timeout: Duration, command: &[OsString]) -> anyhow::Result<()> {
    let words: Vec<String> = command.iter().map(|w| w.to_string_lossy().into_owned()).collect();
    if words.is_empty() {
        return Err(coded(
            Code::Invalid,
            anyhow::anyhow!("nothing to run: give the command after `--`, e.g. `rollway exec {env} -- ls`"),
        ));
    }
    // One word is a shell line as typed; several are quoted so that each
    // reaches the program as it was given.
    let line = if words.len() == 1 {
        words[0].clone()
    } else {
        words.iter().map(|w| shell_quote(w)).collect::<Vec<_>>().join(" ")
    };
    let (prepared, hosts, store) = sessions(s, env, only)?;
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
            return Err(coded(
                Code::Invalid,
                anyhow::anyhow!("{name}: {env} has no current release there: deploy it first"),
            ));
        };
        let result = session.run(&release, None, &line, spec.port, timeout)?;
        let output = masker.mask(&result.output);
        for l in output.lines() {
            s.printer.line(Tone::Plain, format!("{name} │ {l}"));
        }
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
        let level = if code == 0 { Level::Info } else { Level::Warn };
        store.append_event(
            NewEvent::new(
                EventKind::CommandExecuted,
                level,
                format!("{} ran `{shown}` in release {release} on {name}: {how}", s.operator()),
            )
            .environment(env.to_owned())
            .operator(s.operator())
            .data(serde_json::json!({
                "host": name, "release": release, "command": shown,
                "code": result.code, "timed_out": result.timed_out,
            })),
        )?;
        if code != 0 && first_failure.is_none() {
            first_failure = Some((code, format!("{name}: `{shown}` {how}")));
        }
        answers.push(serde_json::json!({
            "host": name, "release": release, "code": result.code,
            "timed_out": result.timed_out, "truncated": result.truncated, "output": output,
        }));
    }
    match first_failure {
        // One JSON document either way: the hosts' answers go with the error.
        Some((code, message)) => Err(coded_with(
            Code::Exited(code),
            anyhow::anyhow!("{message}"),
            serde_json::json!({ "hosts": answers }),
        )),
        None => {
            s.printer.json(&answers);
            Ok(())
        }
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
    use super::shell_quote;

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
