//! Environments: the ones rollway.toml defines, with the lifecycle the
//! store keeps for them (list, show, activate, deprecate).

use anyhow::Context as _;
use rollway_config::EnvironmentConfig;
use rollway_model::{Environment, EnvironmentStatus};

use crate::error::{Error, Result};
use crate::project::Project;

/// Every environment rollway.toml defines, as the store knows it.
pub fn list(p: &Project) -> Result<Vec<Environment>> {
    let (config, store) = p.open()?;
    Ok(store
        .environments()?
        .into_iter()
        .filter(|e| config.environments.contains_key(&e.name))
        .collect())
}

/// One environment: its record and its section of rollway.toml.
#[derive(Debug, serde::Serialize)]
pub struct Shown {
    pub environment: Environment,
    pub config: Option<EnvironmentConfig>,
}

pub fn show(p: &Project, name: &str) -> Result<Shown> {
    let (config, store) = p.open()?;
    let environment = find(p, &config, &*store, name)?;
    Ok(Shown {
        environment,
        config: config.environments.get(name).cloned(),
    })
}

/// Moves an environment to `to` (created → active → deprecated).
pub fn transition(p: &Project, name: &str, to: EnvironmentStatus) -> Result<Environment> {
    let (config, store) = p.open()?;
    find(p, &config, &*store, name)?;
    let operator = p.operator();
    Ok(store
        .transition_environment(name, to, &operator)
        .with_context(|| format!("cannot make environment {name} {to}"))?)
}

fn find(
    p: &Project,
    config: &rollway_config::Config,
    store: &dyn rollway_store::Store,
    name: &str,
) -> Result<Environment> {
    store.environment(name)?.ok_or_else(|| {
        let known: Vec<_> = config.environments.keys().cloned().collect();
        Error::invalid(format_args!(
            "no environment '{name}' in {}: known environments are {}",
            p.config_path().display(),
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ))
    })
}
