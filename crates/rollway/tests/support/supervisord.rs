//! Debian's real supervisord for tests: its own socket, pid file, log and
//! `conf.d/` include directory in a temporary directory, killed on drop.
//! Use it with `#[path = "support/supervisord.rs"] mod supervisord;`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use rollway_engine::is_alive;

#[track_caller]
fn eventually(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A supervisord of the test's own (unix socket, pid file and log in a temp
/// directory, program sections included from `conf.d/`), killed on drop.
pub struct Supervisord {
    pub dir: tempfile::TempDir,
}

impl Supervisord {
    pub fn start() -> Self {
        ensure_supervisord();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        fs::create_dir_all(dir.path().join("conf.d")).unwrap();
        fs::write(
            dir.path().join("supervisord.conf"),
            format!(
                "[unix_http_server]\nfile={d}/supervisor.sock\n\n\
                 [supervisord]\nlogfile={d}/supervisord.log\npidfile={d}/supervisord.pid\nchildlogdir={d}\n\n\
                 [rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n\
                 [supervisorctl]\nserverurl=unix://{d}/supervisor.sock\n\n\
                 [include]\nfiles={d}/conf.d/*.conf\n"
            ),
        )
        .unwrap();
        let st = Command::new("supervisord")
            .arg("-c")
            .arg(dir.path().join("supervisord.conf"))
            .status()
            .unwrap();
        assert!(st.success(), "supervisord did not start");
        let s = Self { dir };
        eventually("supervisord answers", || {
            Command::new("sh")
                .arg("-c")
                .arg(format!("{} status >/dev/null", s.ctl()))
                .status()
                .is_ok_and(|st| st.success())
        });
        s
    }

    /// The supervisorctl command line for this supervisord.
    pub fn ctl(&self) -> String {
        format!(
            "supervisorctl -c {}",
            self.dir.path().join("supervisord.conf").display()
        )
    }

    /// The include directory where program sections go.
    pub fn conf_d(&self) -> PathBuf {
        self.dir.path().join("conf.d")
    }

    pub fn pid(&self) -> Option<u32> {
        fs::read_to_string(self.dir.path().join("supervisord.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Supervisord {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while is_alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if is_alive(pid) {
                let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
            }
        }
    }
}

/// Installs Debian's supervisor package when it is missing; the test fails
/// (never skips) when that is impossible.
pub fn ensure_supervisord() {
    let have = || {
        Command::new("sh")
            .args(["-c", "command -v supervisord && command -v supervisorctl"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if have() {
        return;
    }
    let st = Command::new("sh")
        .args([
            "-c",
            "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq supervisor >/dev/null 2>&1 || \
             (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq supervisor >/dev/null)",
        ])
        .status()
        .unwrap();
    assert!(
        st.success() && have(),
        "supervisord is needed: apt-get install -y supervisor failed"
    );
}
