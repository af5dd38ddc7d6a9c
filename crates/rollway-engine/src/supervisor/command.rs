//! `supervisor = "command"`: the host's own tooling restarts the service
//! (`[service] restart`, run with `sh -c` in ROOT) and counts its starts
//! (`[service] restarts`, which prints one number). The commands get
//! `ROLLWAY_EXEC`, the exec wrapper command line to start the service with,
//! so their starts can be counted the same way as everywhere else, and
//! `ROLLWAY_SERVICE` (the service's name on the host, which holds the
//! environment), `ROLLWAY_PROJECT` and `ROLLWAY_ENVIRONMENT`, so one pair of
//! commands can serve several environments on a host.

use std::fs;

use super::log::tail_lines;
use super::{ServicePaths, ServiceSpec, Supervisor, SupervisorError, run_sh};

#[derive(Debug, Clone)]
pub struct CommandSupervisor {
    spec: ServiceSpec,
}

impl CommandSupervisor {
    pub fn new(spec: ServiceSpec) -> Self {
        Self { spec }
    }

    fn resolved(&self) -> Result<ServiceSpec, SupervisorError> {
        self.spec.check_name()?;
        self.spec.absolute()
    }

    fn command<'a>(spec: &ServiceSpec, cmd: Option<&'a String>, key: &str) -> Result<&'a str, SupervisorError> {
        cmd.map(String::as_str)
            .filter(|c| !c.trim().is_empty())
            .ok_or_else(|| SupervisorError::Config {
                service: spec.name.clone(),
                message: format!("supervisor = \"command\" needs [service] {key} in rollway.toml"),
            })
    }

    /// Runs one of the configured commands in ROOT with the service's facts
    /// in its environment; returns its output, or an error naming it.
    fn run(spec: &ServiceSpec, command: &str, key: &str) -> Result<String, SupervisorError> {
        let paths = ServicePaths::of(spec);
        let wrapper = format!(
            "'{}' exec --spec '{}'",
            spec.rollway_exe.to_string_lossy().replace('\'', "'\\''"),
            paths.spec.to_string_lossy().replace('\'', "'\\''")
        );
        let (text, status) = run_sh(spec, command, |cmd| {
            cmd.current_dir(&spec.root)
                .env("ROLLWAY_SERVICE", &spec.name)
                .env("ROLLWAY_PROJECT", &spec.project)
                .env("ROLLWAY_ENVIRONMENT", &spec.environment)
                .env("ROLLWAY_ROOT", &spec.root)
                .env("ROLLWAY_PORT", spec.port.to_string())
                .env("ROLLWAY_ENV_FILE", &spec.env_file)
                .env("ROLLWAY_SPEC", &paths.spec)
                .env("ROLLWAY_EXEC", wrapper);
        })?;
        if status.success() {
            return Ok(text);
        }
        let shown: Vec<&str> = text
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        Err(SupervisorError::Command {
            service: spec.name.clone(),
            command: command.to_owned(),
            status: status.to_string(),
            output: shown.join("\n"),
            hint: format!("fix [service] {key} in rollway.toml or the host"),
        })
    }

    fn restart_spec(spec: &ServiceSpec) -> Result<(), SupervisorError> {
        let command = Self::command(spec, spec.restart_cmd.as_ref(), "restart")?;
        let paths = ServicePaths::of(spec);
        fs::create_dir_all(&paths.dir).map_err(|e| spec.io("create", &paths.dir, e))?;
        spec.save(&paths.spec)?;
        Self::run(spec, command, "restart").map(drop)
    }
}

/// The number a `restarts` command printed (surrounding blanks allowed).
pub(crate) fn parse_count(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

impl Supervisor for CommandSupervisor {
    /// A command pair cannot tell whether the service runs, so starting
    /// runs the restart command.
    fn start(&self) -> Result<(), SupervisorError> {
        Self::restart_spec(&self.resolved()?)
    }

    fn stop(&self) -> Result<(), SupervisorError> {
        Err(SupervisorError::Unsupported {
            service: self.spec.name.clone(),
            kind: "command",
            op: "stop the service",
            hint: "stop it with the host's own tooling, or use supervisor = \"rollway\"",
        })
    }

    fn restart(&self) -> Result<(), SupervisorError> {
        Self::restart_spec(&self.resolved()?)
    }

    fn restarts(&self) -> Result<u64, SupervisorError> {
        let spec = self.resolved()?;
        let command = Self::command(&spec, spec.restarts_cmd.as_ref(), "restarts")?;
        let text = Self::run(&spec, command, "restarts")?;
        parse_count(&text).ok_or_else(|| SupervisorError::Parse {
            service: spec.name.clone(),
            command: command.to_owned(),
            output: text.trim().chars().take(200).collect(),
            hint: String::from("[service] restarts must print only the number of times the service has started"),
        })
    }

    fn pid(&self) -> Result<Option<u32>, SupervisorError> {
        Ok(None)
    }

    fn log_tail(&self, lines: usize) -> Result<Vec<String>, SupervisorError> {
        let spec = self.resolved()?;
        let log = ServicePaths::of(&spec).log;
        tail_lines(&log, lines).map_err(|e| spec.io("read", &log, e))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use rollway_model::SupervisorKind;

    fn spec(root: &std::path::Path, restart: Option<&str>, restarts: Option<&str>) -> ServiceSpec {
        let mut s = crate::supervisor::tests::spec(root, SupervisorKind::Command);
        s.restart_cmd = restart.map(str::to_owned);
        s.restarts_cmd = restarts.map(str::to_owned);
        s
    }

    #[test]
    fn restart_and_count_through_the_commands() {
        let d = tempfile::tempdir().unwrap();
        let s = spec(
            d.path(),
            Some("echo \"$ROLLWAY_SERVICE $ROLLWAY_PORT $ROLLWAY_EXEC\" >> restarted.txt"),
            Some("wc -l < restarted.txt"),
        );
        let sup = super::super::supervisor(s.clone());
        sup.restart().unwrap();
        sup.start().unwrap();
        assert_eq!(sup.restarts().unwrap(), 2);
        let text = fs::read_to_string(d.path().join("restarted.txt")).unwrap();
        let spec_path = d.path().join(".rollway/svc/hello/spec.json");
        assert!(
            text.starts_with(&format!(
                "hello 3000 '/usr/local/bin/rollway' exec --spec '{}'\n",
                spec_path.display()
            )),
            "{text}"
        );
        // The spec the wrapper would run was written for it.
        assert_eq!(ServiceSpec::load(&spec_path).unwrap().command, s.command);
        assert!(sup.stop().unwrap_err().to_string().contains("cannot stop the service"));
        assert_eq!(sup.pid().unwrap(), None);
    }

    #[test]
    fn commands_see_the_environment() {
        let d = tempfile::tempdir().unwrap();
        let mut s = spec(
            d.path(),
            Some("echo \"$ROLLWAY_SERVICE $ROLLWAY_PROJECT $ROLLWAY_ENVIRONMENT\" > who.txt"),
            None,
        );
        s.project = String::from("hello");
        s.environment = String::from("staging");
        let s = s.identified();
        super::super::supervisor(s.clone()).restart().unwrap();
        let text = fs::read_to_string(d.path().join("who.txt")).unwrap();
        assert_eq!(text, format!("{} hello staging\n", s.name));
        assert!(s.name.starts_with("hello-staging-"), "{}", s.name);
    }

    #[test]
    fn errors_are_clear() {
        let d = tempfile::tempdir().unwrap();
        let check = |restart: Option<&str>, restarts: Option<&str>, op: &str, want: &str| {
            let sup = super::super::supervisor(spec(d.path(), restart, restarts));
            let e = match op {
                "restart" => sup.restart().unwrap_err(),
                _ => sup.restarts().unwrap_err(),
            }
            .to_string();
            assert!(e.contains(want), "{e:?} lacks {want:?}");
            assert!(e.starts_with("service hello: "), "{e}");
        };
        check(None, None, "restart", "needs [service] restart");
        check(Some("  "), None, "restart", "needs [service] restart");
        check(None, None, "restarts", "needs [service] restarts");
        check(
            Some("echo boom >&2; exit 3"),
            None,
            "restart",
            "failed (exit status: 3): boom",
        );
        check(
            None,
            Some("echo three"),
            "restarts",
            "printed \"three\", expected a number",
        );
        check(None, Some("echo 1; echo 2"), "restarts", "expected a number");
        check(None, Some("exit 1"), "restarts", "`exit 1` failed");
        assert_eq!(parse_count(" 7\n"), Some(7));
        assert_eq!(parse_count("-1"), None);
    }
}
