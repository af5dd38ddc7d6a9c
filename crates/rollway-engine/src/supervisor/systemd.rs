//! `supervisor = "systemd"`: renders `NAME.service` (Type=simple,
//! Restart=always, ExecStart = the exec wrapper with the service's
//! `spec.json`), reloads and drives it with `systemctl`, and counts starts
//! from `systemctl show`'s `NRestarts` (restarts systemd did by itself)
//! plus one for the start that began the current run.
//!
//! No `EnvironmentFile=`: the exec wrapper loads the release's env file
//! itself, as under every other supervisor, so the file is parsed by one
//! parser (refused when malformed), the environment is cleared the same way,
//! and the unit does not change from one release to the next.
//!
//! systemd cannot run on the machines this is built and tested on, so the
//! tests check the rendered unit and the parsing of `systemctl show`.

use std::fs;
use std::path::{Path, PathBuf};

use super::log::tail_lines;
use super::{ServicePaths, ServiceSpec, Supervisor, SupervisorError, run_sh};

/// Where units are written unless told otherwise.
pub const SYSTEMD_UNIT_DIR: &str = "/etc/systemd/system";

#[derive(Debug, Clone)]
pub struct SystemdSupervisor {
    spec: ServiceSpec,
    unit_dir: PathBuf,
    systemctl: String,
}

/// The unit file for a service (its spec made absolute).
pub fn render_unit(spec: &ServiceSpec) -> Result<String, SupervisorError> {
    let paths = ServicePaths::of(spec);
    let exec_start = format!(
        "{} exec --spec {}",
        exec_word(spec, &spec.rollway_exe.to_string_lossy())?,
        exec_word(spec, &paths.spec.to_string_lossy())?
    );
    Ok(format!(
        "# Rendered by rollway for service {name}: rewritten on every start and restart, do not edit.\n\
         [Unit]\n\
         Description={name} (deployed by rollway)\n\
         After=network.target\n\
         \n\
         [Service]\n\
         Type=simple\n\
         ExecStart={exec_start}\n\
         WorkingDirectory={root}\n\
         Restart=always\n\
         RestartSec=1\n\
         KillMode=control-group\n\
         TimeoutStopSec=5\n\
         StandardOutput=append:{log}\n\
         StandardError=inherit\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        name = spec.name,
        root = setting(spec, &spec.root.to_string_lossy())?,
        log = setting(spec, &paths.log.to_string_lossy())?,
    ))
}

/// A unit setting value: one line, `%` specifiers escaped.
fn setting(spec: &ServiceSpec, s: &str) -> Result<String, SupervisorError> {
    if s.contains(['\n', '\r']) {
        return Err(SupervisorError::Config {
            service: spec.name.clone(),
            message: format!("{s:?} cannot go into a systemd unit; use paths without line breaks"),
        });
    }
    Ok(s.replace('%', "%%"))
}

/// A word of `ExecStart=`: specifiers and `$` escaped, quoted when it has
/// blanks, quotes or backslashes.
fn exec_word(spec: &ServiceSpec, s: &str) -> Result<String, SupervisorError> {
    let s = setting(spec, s)?.replace('$', "$$");
    let plain = !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || "\"'\\;".contains(c));
    Ok(if plain {
        s
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    })
}

/// What `systemctl show -p NRestarts -p MainPID -p ActiveState -p
/// ExecMainStartTimestampMonotonic UNIT` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemdShow {
    pub n_restarts: u64,
    pub main_pid: Option<u32>,
    pub active_state: String,
    /// Whether the main process started since the unit was last (re)started by hand.
    pub started: bool,
}

impl SystemdShow {
    /// The starts contract: automatic restarts plus the run that began them.
    /// systemd zeroes `NRestarts` on a manual (re)start, so this counts from
    /// Rollway's last restart, which is where the deployer takes its baseline.
    pub fn starts(&self) -> u64 {
        self.n_restarts + u64::from(self.started)
    }
}

/// Parses `KEY=VALUE` lines of `systemctl show`; `NRestarts` is required
/// (systemd 235 and later print it).
pub fn parse_show(text: &str) -> Result<SystemdShow, String> {
    let mut n_restarts = None;
    let mut main_pid = None;
    let mut active_state = String::new();
    let mut started = false;
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{key}={value:?} is not a number"))
        };
        match key.trim() {
            "NRestarts" => n_restarts = Some(number()?),
            "MainPID" => main_pid = u32::try_from(number()?).ok().filter(|p| *p > 0),
            "ActiveState" => value.clone_into(&mut active_state),
            "ExecMainStartTimestampMonotonic" => started = number()? > 0,
            _ => {}
        }
    }
    let n_restarts = n_restarts.ok_or_else(|| String::from("no NRestarts= line (systemd 235 or later prints it)"))?;
    Ok(SystemdShow {
        n_restarts,
        main_pid,
        active_state,
        started,
    })
}

impl SystemdSupervisor {
    pub fn new(spec: ServiceSpec) -> Self {
        Self::with_paths(spec, PathBuf::from(SYSTEMD_UNIT_DIR), "systemctl")
    }

    /// Units in `unit_dir`, driven by `systemctl` (e.g. `systemctl --user`).
    pub fn with_paths(spec: ServiceSpec, unit_dir: PathBuf, systemctl: impl Into<String>) -> Self {
        Self {
            spec,
            unit_dir,
            systemctl: systemctl.into(),
        }
    }

    fn resolved(&self) -> Result<ServiceSpec, SupervisorError> {
        self.spec.check_name()?;
        self.spec.absolute()
    }

    fn unit(spec: &ServiceSpec) -> String {
        format!("{}.service", spec.name)
    }

    fn unit_file(&self, spec: &ServiceSpec) -> PathBuf {
        self.unit_dir.join(Self::unit(spec))
    }

    fn ctl(&self, spec: &ServiceSpec, args: &str) -> Result<String, SupervisorError> {
        let command = format!("{} {args}", self.systemctl);
        let (text, status) = run_sh(spec, &command, |_| {})?;
        if status.success() {
            return Ok(text);
        }
        Err(SupervisorError::Command {
            service: spec.name.clone(),
            command,
            status: status.to_string(),
            output: text,
            hint: format!("see `journalctl -u {}` on the host", Self::unit(spec)),
        })
    }

    /// Writes spec.json and the unit; reloads systemd when the unit changed.
    fn sync(&self, spec: &ServiceSpec) -> Result<(), SupervisorError> {
        let paths = ServicePaths::of(spec);
        fs::create_dir_all(&paths.dir).map_err(|e| spec.io("create", &paths.dir, e))?;
        spec.save(&paths.spec)?;
        let file = self.unit_file(spec);
        let text = render_unit(spec)?;
        if fs::read_to_string(&file).ok().as_deref() != Some(text.as_str()) {
            rollway_fs::write_atomic(&file, text.as_bytes(), None).map_err(|e| spec.io("write", &file, e))?;
            self.ctl(spec, "daemon-reload")?;
        }
        Ok(())
    }

    fn show(&self, spec: &ServiceSpec) -> Result<SystemdShow, SupervisorError> {
        let args = format!(
            "show -p NRestarts -p MainPID -p ActiveState -p ExecMainStartTimestampMonotonic {}",
            Self::unit(spec)
        );
        let text = self.ctl(spec, &args)?;
        parse_show(&text).map_err(|e| SupervisorError::Parse {
            service: spec.name.clone(),
            command: format!("{} {args}", self.systemctl),
            output: text.trim().to_owned(),
            hint: e,
        })
    }

    fn unit_exists(&self, spec: &ServiceSpec) -> bool {
        Path::new(&self.unit_file(spec)).exists()
    }
}

impl Supervisor for SystemdSupervisor {
    fn start(&self) -> Result<(), SupervisorError> {
        let spec = self.resolved()?;
        if self.unit_exists(&spec) && self.show(&spec)?.main_pid.is_some() {
            return Ok(());
        }
        self.sync(&spec)?;
        self.ctl(&spec, &format!("enable --now {}", Self::unit(&spec)))?;
        Ok(())
    }

    fn stop(&self) -> Result<(), SupervisorError> {
        let spec = self.resolved()?;
        if !self.unit_exists(&spec) {
            return Ok(());
        }
        self.ctl(&spec, &format!("stop {}", Self::unit(&spec)))?;
        Ok(())
    }

    fn restart(&self) -> Result<(), SupervisorError> {
        let spec = self.resolved()?;
        self.sync(&spec)?;
        self.ctl(&spec, &format!("restart {}", Self::unit(&spec)))?;
        Ok(())
    }

    fn restarts(&self) -> Result<u64, SupervisorError> {
        let spec = self.resolved()?;
        if !self.unit_exists(&spec) {
            return Ok(0);
        }
        Ok(self.show(&spec)?.starts())
    }

    fn pid(&self) -> Result<Option<u32>, SupervisorError> {
        let spec = self.resolved()?;
        if !self.unit_exists(&spec) {
            return Ok(None);
        }
        Ok(self.show(&spec)?.main_pid)
    }

    fn log_tail(&self, lines: usize) -> Result<Vec<String>, SupervisorError> {
        let spec = self.resolved()?;
        let log = ServicePaths::of(&spec).log;
        tail_lines(&log, lines).map_err(|e| spec.io("read", &log, e))
    }

    /// Stops and disables the unit and removes its file, unless the unit
    /// runs another root's spec (the same name deployed from elsewhere).
    fn retire(&self) -> Result<(), SupervisorError> {
        let spec = self.resolved()?;
        let file = self.unit_file(&spec);
        let Ok(text) = fs::read_to_string(&file) else {
            return Ok(());
        };
        if !text.contains(&*ServicePaths::of(&spec).spec.to_string_lossy()) {
            return Ok(());
        }
        let unit = Self::unit(&spec);
        self.ctl(&spec, &format!("disable --now {unit}"))?;
        fs::remove_file(&file).map_err(|e| spec.io("remove", &file, e))?;
        self.ctl(&spec, "daemon-reload")?;
        Ok(())
    }
}

// systemd cannot run on these machines (no systemd as PID 1), so these tests
// check the rendered unit and the parsing of `systemctl show`; nothing here
// starts a unit.
#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use rollway_model::SupervisorKind;

    #[test]
    fn unit_text() {
        let mut spec = crate::supervisor::tests::spec(Path::new("/srv/hello"), SupervisorKind::Systemd);
        spec.rollway_exe = PathBuf::from("/srv/hello/.rollway/bin/rollway-ab12");
        let expected = "# Rendered by rollway for service hello: rewritten on every start and restart, do not edit.
[Unit]
Description=hello (deployed by rollway)
After=network.target

[Service]
Type=simple
ExecStart=/srv/hello/.rollway/bin/rollway-ab12 exec --spec /srv/hello/.rollway/svc/hello/spec.json
WorkingDirectory=/srv/hello
Restart=always
RestartSec=1
KillMode=control-group
TimeoutStopSec=5
StandardOutput=append:/srv/hello/.rollway/svc/hello/output.log
StandardError=inherit

[Install]
WantedBy=multi-user.target
";
        assert_eq!(render_unit(&spec).unwrap(), expected);
        spec.root = PathBuf::from("/srv/my app/$HOME%i");
        let text = render_unit(&spec).unwrap();
        assert!(
            text.contains("--spec \"/srv/my app/$$HOME%%i/.rollway/svc/hello/spec.json\"\n"),
            "{text}"
        );
        assert!(text.contains("WorkingDirectory=/srv/my app/$HOME%%i\n"), "{text}");
        spec.root = PathBuf::from("/srv/a\nb");
        assert!(render_unit(&spec).is_err());
    }

    /// systemd cannot run on the test machines (no systemd as PID 1), so
    /// this checks what Rollway renders for it: two environments of one
    /// project on one host get two units, each running its own root's spec.
    #[test]
    fn unit_names_differ_per_environment() {
        let mut units = Vec::new();
        for env in ["staging", "remote", "production"] {
            let root = Path::new("/srv/identity").join(env);
            let mut spec = crate::supervisor::tests::spec(&root, SupervisorKind::Systemd);
            spec.name = "identity".into();
            spec.project = "identity".into();
            spec.environment = env.into();
            let spec = spec.identified();
            assert_eq!(spec.name, crate::supervisor::service_name("identity", env, &root));
            assert!(spec.name.starts_with(&format!("identity-{env}-")), "{}", spec.name);
            let unit = render_unit(&spec).unwrap();
            let spec_path = root.join(".rollway/svc").join(&spec.name).join("spec.json");
            assert!(
                unit.contains(&format!("--spec {}\n", spec_path.display())),
                "{env}: {unit}"
            );
            units.push(format!("{}.service", spec.name));
        }
        let n = units.len();
        units.sort();
        units.dedup();
        assert_eq!(units.len(), n, "{units:?}");
    }

    fn check(text: &str, expected: Result<(u64, Option<u32>, &str, u64), &str>) {
        match (parse_show(text), expected) {
            (Ok(show), Ok((n, pid, state, starts))) => {
                assert_eq!(
                    (
                        show.n_restarts,
                        show.main_pid,
                        show.active_state.as_str(),
                        show.starts()
                    ),
                    (n, pid, state, starts),
                    "{text:?}"
                );
            }
            (Err(e), Err(want)) => assert!(e.contains(want), "{e:?} lacks {want:?}"),
            (got, want) => panic!("{text:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn show_output() {
        // Running, never restarted by systemd: the one start that began the run.
        check(
            "NRestarts=0\nMainPID=4242\nActiveState=active\nExecMainStartTimestampMonotonic=81234567\n",
            Ok((0, Some(4242), "active", 1)),
        );
        // Crashed twice since Rollway's restart; order of lines does not matter.
        check(
            "ActiveState=activating\nExecMainStartTimestampMonotonic=99\nMainPID=0\nNRestarts=2\n",
            Ok((2, None, "activating", 3)),
        );
        // Never started.
        check(
            "NRestarts=0\nMainPID=0\nActiveState=inactive\nExecMainStartTimestampMonotonic=0\n",
            Ok((0, None, "inactive", 0)),
        );
        check("MainPID=1\nActiveState=active\n", Err("no NRestarts"));
        check("NRestarts=many\n", Err("NRestarts=\"many\" is not a number"));
    }
}
