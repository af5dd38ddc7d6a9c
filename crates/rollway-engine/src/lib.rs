//! Rollway's deploy engine: the host agent and its protocol, targets (local
//! and SSH), supervisors, probes, and the deployment itself — ship, switch,
//! restart, verify through a stability window, roll back.

pub mod agent;
pub mod deploy;
pub mod exec;
pub mod host;
pub mod layout;
pub mod pipeline;
pub mod probe;
pub mod supervisor;
pub mod target;
