//! A project whose `staging` environment is one SSH host (a real sshd on
//! loopback, see `sshd.rs`), with a plain variable `GREETING=hello` and a
//! secret `TOKEN`, for end-to-end tests of what runs on hosts. Include it
//! beside `common` and `sshd` (`#[path = "support/ssh_project.rs"]`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use crate::common::{Backend, Project, free_port};
use crate::sshd::Sshd;

/// The project, its host and what its rollway.toml says.
pub struct SshProject {
    pub p: Project,
    pub sshd: Sshd,
    /// The host's release root.
    pub root: PathBuf,
    /// The service's port.
    pub port: u16,
    /// rollway.toml as written; tests append sections to it.
    pub config: String,
}

impl SshProject {
    /// `project` serving `app` (written as `app/server.py`, run with
    /// `/usr/bin/python3`; the build copies `app/` whole), an identity and
    /// `TOKEN=secret` stored for staging.
    pub fn new(project: &str, app: &str, secret: &str) -> Self {
        let sshd = Sshd::start();
        let p = Project::new(Backend::Sqlite);
        let root = p.path().join("host");
        let port = free_port();
        let config = format!(
            r#"project = "{project}"

[build]
command = "rm -rf dist && mkdir dist && cp app/* dist/"
output = "dist"

[service]
start = "exec /usr/bin/python3 server.py"
port = {port}

[health]
interval = "100ms"
retries = 50
stability_window = "0s"

[ssh]
config = "{config}"

[environments.staging]
kind = "staging"
hosts = [{{ ssh = "{host}", root = "{root}" }}]
vars = {{ GREETING = "hello" }}
"#,
            config = sshd.client_config.display(),
            host = sshd.host_name(),
            root = root.display(),
        );
        std::fs::create_dir(p.path().join("app")).unwrap();
        p.write("app/server.py", app);
        p.write("rollway.toml", &config);
        p.run(&["secrets", "init"]).ok();
        p.run_with_stdin(&["secrets", "set", "staging", "TOKEN"], secret).ok();
        Self {
            p,
            sshd,
            root,
            port,
            config,
        }
    }

    /// The release `ROOT/current` points at.
    pub fn current(&self) -> String {
        let link = std::fs::read_link(self.root.join("current")).unwrap();
        link.file_name().unwrap().to_str().unwrap().to_owned()
    }
}
