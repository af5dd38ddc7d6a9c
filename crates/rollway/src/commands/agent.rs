//! Hidden command `rollway agent --root ROOT`: the host agent, speaking the
//! framed protocol on stdin/stdout for a deployer (a local child or over
//! ssh). Stdout carries only protocol frames; stderr is for diagnostics.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use crate::session::Session;

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The host's root: releases/, envs/, shared/, current.
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
}

pub fn run(_s: &Session, args: AgentArgs) -> anyhow::Result<()> {
    let stdin = std::io::stdin().lock();
    let stdout = std::io::stdout().lock();
    rollway_engine::agent::serve(&args.root, stdin, stdout)
        .with_context(|| format!("rollway agent --root {}", args.root.display()))
}
