//! Hidden command `rollway agent --root ROOT`: the host agent, speaking the
//! framed protocol on stdin/stdout for a deployer (a local child or over
//! ssh). Stdout carries only protocol frames; stderr is for diagnostics.

use std::path::PathBuf;

use clap::Args;
use rollway_app::Result;

use crate::session::Session;

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The host's root: releases/, envs/, shared/, current.
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
}

pub fn run(_s: &Session, args: AgentArgs) -> Result<()> {
    rollway_app::agent::serve(&args.root)
}
