//! JSON Schema pieces the derive cannot produce: the model's string enums
//! (with their aliases), durations written as strings, and the two forms of a host.

use rollway_model::status::{
    AlertType, ArtifactKind, BackupKind, EnvironmentKind, JobType, Platform, Severity, SupervisorKind, VariableType,
};
use schemars::{Schema, SchemaGenerator, json_schema};

use crate::alerting::WebhookFormat;
use crate::backups::RunOn;
use crate::monitor::{DnsRecordType, HttpMethod, OnSilence};
use crate::types::Config;

/// The JSON Schema of rollway.toml, for editors (`rollway config schema`).
pub fn json_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(Config).to_value();
    drop_null(&mut schema);
    schema
}

/// TOML has no null: an optional key is one that is left out, so the
/// `"null"` the derive adds for `Option` fields is taken out again.
fn drop_null(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(options)) = map.get_mut("anyOf") {
                options.retain(|o| o.get("type").is_none_or(|t| t != "null"));
                if options.len() == 1
                    && let Value::Object(only) = options.remove(0)
                {
                    map.remove("anyOf");
                    map.extend(only);
                }
            }
            for (_, child) in map.iter_mut() {
                drop_null(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(drop_null),
        _ => {}
    }
}

fn names(names: &[&str], aliases: &[&str]) -> Schema {
    let all: Vec<&str> = names.iter().chain(aliases).copied().collect();
    json_schema!({ "type": "string", "enum": all })
}

pub(crate) fn environment_kind(_: &mut SchemaGenerator) -> Schema {
    names(EnvironmentKind::NAMES, &["dev", "prod"])
}

pub(crate) fn environment_kinds(g: &mut SchemaGenerator) -> Schema {
    let item = environment_kind(g).to_value();
    json_schema!({ "type": "array", "items": item })
}

pub(crate) fn platform(_: &mut SchemaGenerator) -> Schema {
    names(Platform::NAMES, &[])
}

pub(crate) fn artifact_kind(_: &mut SchemaGenerator) -> Schema {
    names(ArtifactKind::NAMES, &[])
}

pub(crate) fn supervisor(_: &mut SchemaGenerator) -> Schema {
    names(SupervisorKind::NAMES, &[])
}

pub(crate) fn variable_type(_: &mut SchemaGenerator) -> Schema {
    names(VariableType::NAMES, &[])
}

pub(crate) fn job_type(_: &mut SchemaGenerator) -> Schema {
    names(JobType::NAMES, &[])
}

pub(crate) fn http_method(_: &mut SchemaGenerator) -> Schema {
    names(HttpMethod::NAMES, &[])
}

pub(crate) fn dns_record_type(_: &mut SchemaGenerator) -> Schema {
    names(DnsRecordType::NAMES, &[])
}

pub(crate) fn on_silence(_: &mut SchemaGenerator) -> Schema {
    names(OnSilence::NAMES, &[])
}

pub(crate) fn webhook_format(_: &mut SchemaGenerator) -> Schema {
    names(WebhookFormat::NAMES, &[])
}

pub(crate) fn alert_type(_: &mut SchemaGenerator) -> Schema {
    names(AlertType::NAMES, &[])
}

pub(crate) fn backup_kind(_: &mut SchemaGenerator) -> Schema {
    names(BackupKind::NAMES, &[])
}

pub(crate) fn run_on(_: &mut SchemaGenerator) -> Schema {
    names(RunOn::NAMES, &[])
}

pub(crate) fn severity(_: &mut SchemaGenerator) -> Schema {
    names(Severity::NAMES, &[])
}

/// Any TOML value (`equals` of an HTTP monitor).
pub(crate) fn any(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": ["string", "integer", "number", "boolean", "array", "object"] })
}

pub(crate) fn object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "object" })
}

pub(crate) fn duration(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": "^([0-9]+(ms|s|m|h|d|w))+$",
        "examples": ["500ms", "5s", "30m", "1h30m", "90d"]
    })
}

pub(crate) fn host() -> Schema {
    json_schema!({
        "description": "\"local\" (this machine), an ssh destination \"user@host:port\", or a table that overrides root and port for this host.",
        "anyOf": [
            { "type": "string", "examples": ["local", "deploy@app1.example.com", "deploy@app2.example.com:2222"] },
            {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "ssh": { "type": "string", "description": "ssh destination user@host:port" },
                    "local": { "type": "boolean", "description": "true: this machine, without ssh" },
                    "root": { "type": "string", "description": "release root on this host" },
                    "port": { "type": "integer", "minimum": 1, "maximum": 65535, "description": "service port on this host" }
                }
            }
        ]
    })
}
