//! Resource: seed 004 Resource, something a stack created (an AWS resource,
//! a database, a bucket), as the stack's tool reported it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::entities::{StatusChangeError, atomically};
use crate::ids::{ResourceId, StackId};
use crate::status::ResourceStatus;
use crate::time::Timestamp;
use crate::transitions::Lifecycle;

/// One resource of one stack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    /// Seed 004 `id`.
    pub id: ResourceId,
    /// Seed 004 `stack_id`.
    pub stack_id: StackId,
    /// Seed 004 `resource_type`, e.g. `AWS::RDS::DBInstance`.
    pub resource_type: String,
    /// Seed 004 `resource_id`: the physical id, known once created.
    pub resource_id: Option<String>,
    /// Seed 004 `logical_id`.
    pub logical_id: String,
    /// Seed 004 `status` with its timed history.
    pub lifecycle: Lifecycle<ResourceStatus>,
    /// Seed 004 `properties`.
    pub properties: Map<String, Value>,
    /// Seed 004 `tags`.
    pub tags: BTreeMap<String, String>,
}

/// What a resource's properties must hold (seed 004 "Properties must match
/// contract specifications"): each key, with the value it must have or
/// `None` when any value will do.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceContract {
    /// The type the resource must be, if the contract names one.
    pub resource_type: Option<String>,
    /// Property keys with the value each must have, `None` for any value.
    pub required: BTreeMap<String, Option<Value>>,
}

impl Resource {
    pub fn new(
        stack_id: StackId,
        resource_type: impl Into<String>,
        logical_id: impl Into<String>,
        at: Timestamp,
    ) -> Self {
        Self {
            id: ResourceId::generate(at),
            stack_id,
            resource_type: resource_type.into(),
            resource_id: None,
            logical_id: logical_id.into(),
            lifecycle: Lifecycle::new(at),
            properties: Map::new(),
            tags: BTreeMap::new(),
        }
    }

    pub fn status(&self) -> ResourceStatus {
        self.lifecycle.status()
    }

    /// Moves the resource through its table, or changes nothing and says why.
    pub fn transition(&mut self, to: ResourceStatus, at: Timestamp) -> Result<(), StatusChangeError> {
        let id = self.id;
        atomically(self, |next| {
            next.lifecycle
                .transition(to, at)
                .map_err(|e| StatusChangeError::refused("resource", id, to, e))
        })
    }
}
