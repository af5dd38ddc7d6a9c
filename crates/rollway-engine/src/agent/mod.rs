//! The host agent: `rollway agent --root ROOT` serves the deployer over a
//! framed protocol on stdin/stdout — the same code for a `local` target (a
//! child process of the deployer) and an SSH host (over one ssh channel).
//!
//! On the host it owns this layout under ROOT:
//!
//! ```text
//! releases/<id>/               read-only release files (hard links shared with earlier releases)
//! releases/.staging-<id>/      a release being received; renamed to releases/<id> when complete
//! envs/<id>.env                the release's env file, mode 0600
//! shared/<dir>                 [service] shared directories, symlinked into each release
//! current -> releases/<id>     switched atomically (symlink to a temporary name + rename)
//! .rollway/manifests/<id>.json each committed release's canonical manifest
//! .rollway/bin/rollway-<sha>   the agent binary on SSH hosts
//! .rollway/svc/<service>/      supervisor state (see `crate::supervisor`)
//! ```

pub mod database;
pub mod media;
pub mod protocol;
pub mod run;
pub mod server;

pub use database::Databases;
pub use server::{AgentError, serve};
