//! Stack: seed 004 Stack, a unit of a deployment taken in dependency order —
//! the built-in release stack or an external tool run by commands.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::entities::{StatusChangeError, atomically};
use crate::ids::{DeploymentId, StackId};
use crate::status::StackStatus;
use crate::time::Timestamp;
use crate::transitions::Lifecycle;

/// One stack of one deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stack {
    /// Seed 004 `id`.
    pub id: StackId,
    /// Seed 004 `deployment_id`.
    pub deployment_id: DeploymentId,
    /// Seed 004 `name`: the `[stacks.NAME]` key.
    pub name: String,
    /// Seed 004 `status` with DESIGN.md's synthesized, skipped, rolled_back.
    pub lifecycle: Lifecycle<StackStatus>,
    /// Seed 004 `template_path`: what `synth` produced, if anything.
    pub template_path: Option<String>,
    /// Seed 004 `outputs`, passed on to the stacks that depend on this one.
    /// Outputs declared secret are not here: see `secret_outputs`.
    pub outputs: BTreeMap<String, String>,
    /// Names of outputs whose values are secret; they are kept encrypted
    /// with the environment's variables, never in this map.
    pub secret_outputs: Vec<String>,
    /// Seed 004 `dependencies`: stack names that must be deployed first.
    pub dependencies: Vec<String>,
    /// Seed 004 `error_message`.
    pub error_message: Option<String>,
}

impl Stack {
    pub fn new(deployment_id: DeploymentId, name: impl Into<String>, at: Timestamp) -> Self {
        Self {
            id: StackId::generate(at),
            deployment_id,
            name: name.into(),
            lifecycle: Lifecycle::new(at),
            template_path: None,
            outputs: BTreeMap::new(),
            secret_outputs: Vec::new(),
            dependencies: Vec::new(),
            error_message: None,
        }
    }

    pub fn status(&self) -> StackStatus {
        self.lifecycle.status()
    }

    /// Moves the stack through its table, or changes nothing and says why.
    pub fn transition(&mut self, to: StackStatus, at: Timestamp) -> Result<(), StatusChangeError> {
        let id = self.id;
        atomically(self, |next| {
            next.lifecycle
                .transition(to, at)
                .map_err(|e| StatusChangeError::refused("stack", id, to, e))
        })
    }

    /// Records `message` and moves to failed, or changes nothing.
    pub fn fail(&mut self, message: impl Into<String>, at: Timestamp) -> Result<(), StatusChangeError> {
        let message = message.into();
        atomically(self, |next| {
            next.error_message = Some(message);
            next.transition(StackStatus::Failed, at)
        })
    }
}
