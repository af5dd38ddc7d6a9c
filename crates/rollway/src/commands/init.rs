//! `rollway init`: writes the commented template that `config check` passes.

use std::fs;

use anyhow::Context as _;
use clap::Args;

use crate::exit::{Code, coded};
use crate::output::Tone;
use crate::session::Session;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Overwrite an existing config.
    #[arg(long)]
    pub force: bool,
    /// Declare the variables of a known app: strapi (seed 002) or rag-app (seed 001).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(rollway_config::PRESETS))]
    pub preset: Option<String>,
}

pub fn run(s: &Session, args: InitArgs) -> anyhow::Result<()> {
    let path = s.config_path();
    if path.exists() && !args.force {
        return Err(coded(
            Code::Invalid,
            anyhow::anyhow!("{} already exists: pass --force to overwrite it", path.display()),
        ));
    }
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let text =
        rollway_config::template_for(args.preset.as_deref()).map_err(|e| coded(Code::Invalid, anyhow::anyhow!(e)))?;
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    s.printer.json(&serde_json::json!({ "written": path }));
    s.printer.line(Tone::Good, format!("wrote {}", path.display()));
    s.printer
        .line(Tone::Dim, "next: edit it, then run `rollway config check`");
    Ok(())
}
