//! Stack: seed 004 Stack, a unit of a deployment taken in dependency order —
//! the built-in release stack or an external tool run by commands.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::entities::{ResourceContract, StatusChangeError, atomically};
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
    /// What the stack must deliver, from the configuration; the store
    /// checks its outputs and resources against it.
    #[serde(default, skip_serializing_if = "StackContract::is_empty")]
    pub contract: StackContract,
}

/// What a stack must deliver (seed 004 "Outputs must match expected
/// contract", "Properties must match contract specifications", "Tags must
/// include required governance tags"), recorded with the stack so the rules
/// hold wherever it is stored: `rules::stack::validate_outputs` once it is
/// deployed, `rules::resource::validate_properties` and `validate_tags` for
/// each of its resources that is available.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackContract {
    /// `[stacks.X] outputs`: reported, non-empty, in `outputs`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<String>,
    /// `[stacks.X] secret_outputs`: reported, never in `outputs`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_outputs: Vec<String>,
    /// What every resource of the stack must hold.
    #[serde(default, skip_serializing_if = "ResourceContract::is_empty")]
    pub resources: ResourceContract,
    /// The environment's `required_tags`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_tags: Vec<String>,
}

impl StackContract {
    /// True when the contract asks nothing.
    pub fn is_empty(&self) -> bool {
        self.outputs.is_empty()
            && self.secret_outputs.is_empty()
            && self.resources.is_empty()
            && self.required_tags.is_empty()
    }
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
            contract: StackContract::default(),
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
