//! `supervisor = "supervisord"`: renders a `[program:NAME]` section into the
//! include directory `supervisord_conf` and drives it with `supervisorctl`
//! (`reread`, `update`, `start`, `stop`, `restart`, `pid`). The program runs
//! the exec wrapper with the service's `spec.json`, so the section does not
//! change between releases and a restart picks up the spec written just before.

use std::fs;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use super::log::tail_lines;
use super::{ServicePaths, ServiceSpec, Supervisor, SupervisorError, read_starts, run_sh, wait_counted};

/// How long a (re)start may take to be counted by the exec wrapper.
const LAUNCH_LIMIT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone)]
pub struct SupervisordSupervisor {
    spec: ServiceSpec,
}

/// The `[program:NAME]` section for a service (its spec made absolute).
pub fn render_program(spec: &ServiceSpec) -> Result<String, SupervisorError> {
    let paths = ServicePaths::of(spec);
    let command = format!(
        "{} exec --spec {}",
        value(spec, &shell_word(&spec.rollway_exe.to_string_lossy()))?,
        value(spec, &shell_word(&paths.spec.to_string_lossy()))?
    );
    Ok(format!(
        "; Rendered by rollway for service {name}: rewritten on every start and restart, do not edit.\n\
         [program:{name}]\n\
         command={command}\n\
         directory={directory}\n\
         autostart=true\n\
         autorestart=true\n\
         startsecs=0\n\
         stopsignal=TERM\n\
         stopwaitsecs=5\n\
         stopasgroup=true\n\
         killasgroup=true\n\
         redirect_stderr=true\n\
         stdout_logfile={log}\n\
         stdout_logfile_maxbytes=4MB\n\
         stdout_logfile_backups=1\n",
        name = spec.name,
        directory = value(spec, &spec.root.to_string_lossy())?,
        log = value(spec, &paths.log.to_string_lossy())?,
    ))
}

/// A config value: `%` is supervisord's expansion character, and a value
/// cannot span lines.
fn value(spec: &ServiceSpec, s: &str) -> Result<String, SupervisorError> {
    if s.contains(['\n', '\r']) || s.trim() != s {
        return Err(SupervisorError::Config {
            service: spec.name.clone(),
            message: format!(
                "{s:?} cannot go into a supervisord program section; use paths without line breaks or edge blanks"
            ),
        });
    }
    Ok(s.replace('%', "%%"))
}

/// A word for supervisord's shlex-style command splitting.
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+:,=@%".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\"'\"'"))
    }
}

impl SupervisordSupervisor {
    pub fn new(spec: ServiceSpec) -> Self {
        Self { spec }
    }

    fn resolved(&self) -> Result<ServiceSpec, SupervisorError> {
        self.spec.check_name()?;
        self.spec.absolute()
    }

    fn conf_file(spec: &ServiceSpec) -> Result<PathBuf, SupervisorError> {
        let dir = spec.supervisord_conf.as_ref().ok_or_else(|| SupervisorError::Config {
            service: spec.name.clone(),
            message: String::from(
                "supervisor = \"supervisord\" needs [service] supervisord_conf, the directory supervisord includes program sections from",
            ),
        })?;
        if !dir.is_dir() {
            return Err(SupervisorError::Config {
                service: spec.name.clone(),
                message: format!(
                    "supervisord_conf {} is not a directory; create it and list it under [include] files= in supervisord.conf",
                    dir.display()
                ),
            });
        }
        Ok(dir.join(format!("{}.conf", spec.name)))
    }

    /// Runs `SUPERVISORCTL ARGS` with `sh -c` (the configured command may
    /// carry options such as `-c FILE`); returns the command, its output and status.
    fn ctl(spec: &ServiceSpec, args: &str) -> Result<(String, String, ExitStatus), SupervisorError> {
        let ctl = spec.supervisorctl.as_deref().unwrap_or("supervisorctl");
        let command = format!("{ctl} {args}");
        let (text, status) = run_sh(spec, &command, |_| {})?;
        Ok((command, text, status))
    }

    /// Runs a supervisorctl command whose output must show `accept` for
    /// every word (its exit status does not tell "already started" apart).
    fn ctl_expect(spec: &ServiceSpec, args: &str, accept: &[&str]) -> Result<String, SupervisorError> {
        let (command, text, status) = Self::ctl(spec, args)?;
        if accept.iter().any(|a| text.contains(a)) || (accept.is_empty() && status.success()) {
            return Ok(text);
        }
        Err(SupervisorError::Command {
            service: spec.name.clone(),
            command,
            status: status.to_string(),
            output: text,
            hint: String::from(
                "check that supervisord runs, that [service] supervisorctl reaches it and that supervisord_conf is in its [include] files",
            ),
        })
    }

    /// Writes the program section when it changed, then `reread` + `update
    /// NAME`. Returns whether supervisord (re)started the program doing so.
    fn sync_config(spec: &ServiceSpec) -> Result<bool, SupervisorError> {
        let file = Self::conf_file(spec)?;
        let text = render_program(spec)?;
        if fs::read_to_string(&file).ok().as_deref() != Some(text.as_str()) {
            rollway_fs::write_atomic(&file, text.as_bytes(), None).map_err(|e| spec.io("write", &file, e))?;
        }
        Self::ctl_expect(spec, "reread", &[])?;
        let out = Self::ctl_expect(spec, &format!("update {}", spec.name), &[])?;
        let name = &spec.name;
        Ok(out.contains(&format!("{name}: added process group"))
            || out.contains(&format!("{name}: updated process group")))
    }

    fn prepare(spec: &ServiceSpec) -> Result<(), SupervisorError> {
        let paths = ServicePaths::of(spec);
        fs::create_dir_all(&paths.dir).map_err(|e| spec.io("create", &paths.dir, e))?;
        spec.save(&paths.spec)
    }

    fn pid_of(spec: &ServiceSpec) -> Result<Option<u32>, SupervisorError> {
        let (command, text, _) = Self::ctl(spec, &format!("pid {}", spec.name))?;
        parse_pid(&text).map_err(|()| SupervisorError::Parse {
            service: spec.name.clone(),
            command,
            output: text.trim().to_owned(),
            hint: String::from("check that supervisord runs and that [service] supervisorctl reaches it"),
        })
    }
}

/// `supervisorctl pid NAME`: a pid, `0` when stopped, or "No such process"
/// before the program is added.
fn parse_pid(text: &str) -> Result<Option<u32>, ()> {
    let t = text.trim();
    if t.starts_with("No such process") || t.contains("ERROR (no such process)") {
        return Ok(None);
    }
    t.parse::<u32>().map(|p| (p > 0).then_some(p)).map_err(|_| ())
}

impl Supervisor for SupervisordSupervisor {
    fn start(&self) -> Result<(), SupervisorError> {
        let spec = self.resolved()?;
        let conf = Self::conf_file(&spec)?;
        if conf.exists() && Self::pid_of(&spec)?.is_some() {
            return Ok(());
        }
        Self::prepare(&spec)?;
        let before = read_starts(&spec)?;
        if !Self::sync_config(&spec)? {
            Self::ctl_expect(
                &spec,
                &format!("start {}", spec.name),
                &[": started", "already started"],
            )?;
        }
        wait_counted(&spec, before, LAUNCH_LIMIT)
    }

    fn stop(&self) -> Result<(), SupervisorError> {
        let spec = self.resolved()?;
        if !Self::conf_file(&spec)?.exists() {
            return Ok(());
        }
        Self::ctl_expect(
            &spec,
            &format!("stop {}", spec.name),
            &[": stopped", "not running", "no such process"],
        )?;
        Ok(())
    }

    fn restart(&self) -> Result<(), SupervisorError> {
        let spec = self.resolved()?;
        Self::prepare(&spec)?;
        let before = read_starts(&spec)?;
        if !Self::sync_config(&spec)? {
            Self::ctl_expect(&spec, &format!("restart {}", spec.name), &[": started"])?;
        }
        wait_counted(&spec, before, LAUNCH_LIMIT)
    }

    fn restarts(&self) -> Result<u64, SupervisorError> {
        read_starts(&self.resolved()?)
    }

    fn pid(&self) -> Result<Option<u32>, SupervisorError> {
        let spec = self.resolved()?;
        if !Self::conf_file(&spec)?.exists() {
            return Ok(None);
        }
        Self::pid_of(&spec)
    }

    fn log_tail(&self, lines: usize) -> Result<Vec<String>, SupervisorError> {
        let spec = self.resolved()?;
        let log = ServicePaths::of(&spec).log;
        tail_lines(&log, lines).map_err(|e| spec.io("read", &log, e))
    }

    /// Stops the program and removes its section, then `reread` + `update
    /// NAME` so supervisord drops it. A section that runs another root's
    /// spec (the same name deployed from elsewhere) is not this service's
    /// and is left alone.
    fn retire(&self) -> Result<(), SupervisorError> {
        let spec = self.resolved()?;
        let Some(dir) = spec.supervisord_conf.as_ref() else {
            return Ok(());
        };
        let file = dir.join(format!("{}.conf", spec.name));
        let Ok(text) = fs::read_to_string(&file) else {
            return Ok(());
        };
        if !text.contains(&*ServicePaths::of(&spec).spec.to_string_lossy()) {
            return Ok(());
        }
        self.stop()?;
        fs::remove_file(&file).map_err(|e| spec.io("remove", &file, e))?;
        Self::ctl_expect(&spec, "reread", &[])?;
        Self::ctl_expect(&spec, &format!("update {}", spec.name), &[])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use rollway_model::SupervisorKind;
    use std::path::Path;

    #[test]
    fn program_section() {
        let mut spec = crate::supervisor::tests::spec(Path::new("/srv/hello"), SupervisorKind::Supervisord);
        spec.rollway_exe = PathBuf::from("/srv/hello/.rollway/bin/rollway-ab12");
        let text = render_program(&spec).unwrap();
        let expected = "; Rendered by rollway for service hello: rewritten on every start and restart, do not edit.
[program:hello]
command=/srv/hello/.rollway/bin/rollway-ab12 exec --spec /srv/hello/.rollway/svc/hello/spec.json
directory=/srv/hello
autostart=true
autorestart=true
startsecs=0
stopsignal=TERM
stopwaitsecs=5
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile=/srv/hello/.rollway/svc/hello/output.log
stdout_logfile_maxbytes=4MB
stdout_logfile_backups=1
";
        assert_eq!(text, expected);
        spec.root = PathBuf::from("/srv/my app/100%");
        let text = render_program(&spec).unwrap();
        assert!(
            text.contains("--spec '/srv/my app/100%%/.rollway/svc/hello/spec.json'\n"),
            "{text}"
        );
        assert!(text.contains("directory=/srv/my app/100%%\n"), "{text}");
        spec.root = PathBuf::from("/srv/a\nb");
        assert!(render_program(&spec).is_err());
    }

    #[test]
    fn pid_output() {
        for (text, expected) in [
            ("1234\n", Ok(Some(1234))),
            ("0\n", Ok(None)),
            ("No such process hello\n", Ok(None)),
            ("hello: ERROR (no such process)\n", Ok(None)),
            ("unix:///tmp/x.sock no such file\n", Err(())),
        ] {
            assert_eq!(parse_pid(text), expected, "{text:?}");
        }
    }
}
