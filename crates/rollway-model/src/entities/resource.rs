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
/// `None` when any value will do, and the JSON type of a value where the
/// contract names one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceContract {
    /// The type the resource must be, if the contract names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    /// Property keys with the value each must have, `None` for any value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub required: BTreeMap<String, Option<Value>>,
    /// Property keys with the JSON type each value must have; each is
    /// required too.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub types: BTreeMap<String, PropertyType>,
}

impl ResourceContract {
    /// True when the contract asks nothing.
    pub fn is_empty(&self) -> bool {
        self.resource_type.is_none() && self.required.is_empty() && self.types.is_empty()
    }
}

/// The JSON type a resource property must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PropertyType {
    String,
    /// Any number.
    Number,
    /// A number without a fractional part.
    Integer,
    Boolean,
    Array,
    Object,
}

impl PropertyType {
    /// The names `as_str` gives, in declaration order.
    pub const NAMES: &'static [&'static str] = &["string", "number", "integer", "boolean", "array", "object"];

    /// The type named `name` (one of [`PropertyType::NAMES`]).
    pub fn named(name: &str) -> Option<Self> {
        [
            Self::String,
            Self::Number,
            Self::Integer,
            Self::Boolean,
            Self::Array,
            Self::Object,
        ]
        .into_iter()
        .find(|t| t.as_str() == name)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Number => "number",
            Self::Integer => "integer",
            Self::Boolean => "boolean",
            Self::Array => "array",
            Self::Object => "object",
        }
    }

    /// Whether `v` is of this type.
    pub fn holds(self, v: &Value) -> bool {
        match self {
            Self::String => v.is_string(),
            Self::Number => v.is_number(),
            Self::Integer => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
            Self::Boolean => v.is_boolean(),
            Self::Array => v.is_array(),
            Self::Object => v.is_object(),
        }
    }

    /// The type name of any JSON value, for messages.
    pub fn name_of(v: &Value) -> &'static str {
        match v {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }
}

impl std::fmt::Display for PropertyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
