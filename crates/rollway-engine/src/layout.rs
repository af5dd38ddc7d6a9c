//! Where things live under a host's release root — the one place that
//! spells these paths, for the agent that writes them, the deploy engine
//! and recovery that name them in service specs, and the exec wrapper and
//! supervisors that read them.
//!
//! ```text
//! ROOT/
//!   current -> releases/<id>     the release the service runs
//!   releases/<id>/               one directory per shipped release
//!   releases/.staging-<id>/      a release being built
//!   envs/<id>.env                each release's env file (0600)
//!   shared/<dir>/                directories linked into every release
//!   .rollway/manifests/<id>.json each release's manifest
//!   .rollway/svc/<service>/      one service's supervisor files
//!   .rollway/bin/rollway-<sha>   the agent binary (SSH hosts)
//! ```

use std::path::{Path, PathBuf};

/// `ROOT/.rollway/bin`, relative to the root: the SSH target spells it into
/// the shell scripts that find or copy the agent.
pub const AGENT_BIN_DIR: &str = ".rollway/bin";

/// The paths under one host's release root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLayout {
    pub root: PathBuf,
}

impl HostLayout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `ROOT/releases`.
    pub fn releases(&self) -> PathBuf {
        self.root.join("releases")
    }

    /// `ROOT/releases/<id>`.
    pub fn release(&self, id: &str) -> PathBuf {
        self.releases().join(id)
    }

    /// Where `current` points for release `id`: relative, so the root can
    /// move (or be seen through another mount) without breaking the link.
    pub fn current_target(id: &str) -> PathBuf {
        Path::new("releases").join(id)
    }

    /// `ROOT/releases/.staging-<id>`: a release being built, hidden from
    /// the list of releases.
    pub fn staging(&self, id: &str) -> PathBuf {
        self.releases().join(format!(".staging-{id}"))
    }

    /// `ROOT/envs`.
    pub fn envs(&self) -> PathBuf {
        self.root.join("envs")
    }

    /// `ROOT/envs/<id>.env`.
    pub fn env_file(&self, id: &str) -> PathBuf {
        self.envs().join(format!("{id}.env"))
    }

    /// `ROOT/.rollway/manifests`.
    pub fn manifests(&self) -> PathBuf {
        self.state().join("manifests")
    }

    /// `ROOT/.rollway/manifests/<id>.json`.
    pub fn manifest(&self, id: &str) -> PathBuf {
        self.manifests().join(format!("{id}.json"))
    }

    /// `ROOT/current`.
    pub fn current(&self) -> PathBuf {
        self.root.join("current")
    }

    /// `ROOT/shared`.
    pub fn shared(&self) -> PathBuf {
        self.root.join("shared")
    }

    /// `ROOT/.rollway/svc`: every service's supervisor files.
    pub fn services(&self) -> PathBuf {
        self.state().join("svc")
    }

    /// `ROOT/.rollway/svc/<name>`.
    pub fn service(&self, name: &str) -> PathBuf {
        self.services().join(name)
    }

    /// `ROOT/.rollway/bin/<name>`: the agent binary on an SSH host.
    pub fn agent_bin(&self, name: &str) -> PathBuf {
        self.root.join(AGENT_BIN_DIR).join(name)
    }

    /// `ROOT/.rollway`: Rollway's own files on the host.
    fn state(&self) -> PathBuf {
        self.root.join(".rollway")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_under_the_root() {
        let l = HostLayout::new("/srv/app");
        assert_eq!(l.release("r1"), Path::new("/srv/app/releases/r1"));
        assert_eq!(l.env_file("r1"), Path::new("/srv/app/envs/r1.env"));
        assert_eq!(l.manifest("r1"), Path::new("/srv/app/.rollway/manifests/r1.json"));
        assert_eq!(l.service("hello"), Path::new("/srv/app/.rollway/svc/hello"));
        assert_eq!(l.agent_bin("rollway-ab"), Path::new("/srv/app/.rollway/bin/rollway-ab"));
        assert_eq!(l.current(), Path::new("/srv/app/current"));
        assert_eq!(l.shared(), Path::new("/srv/app/shared"));
        assert_eq!(l.staging("r1"), Path::new("/srv/app/releases/.staging-r1"));
        assert_eq!(HostLayout::current_target("r1"), Path::new("releases/r1"));
    }
}
