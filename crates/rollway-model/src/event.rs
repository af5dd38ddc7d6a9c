//! The audit event: kinds, the canonical encoding both store backends hash
//! alike, and verification of the hash chain.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{DeploymentId, EventId, JobId, PipelineRunId, Sha256Digest};
use crate::status::Level;
use crate::time::Timestamp;

macro_rules! event_kinds {
    ($($variant:ident = $s:literal : $doc:literal,)*) => {
        /// The closed list of event kinds: seed 001's eight first, then Rollway's own.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventKind { $(#[doc = $doc] $variant),* }

        impl EventKind {
            pub const ALL: &'static [EventKind] = &[$(EventKind::$variant),*];
            pub const NAMES: &'static [&'static str] = &[$($s),*];
            pub const fn as_str(self) -> &'static str {
                match self { $(EventKind::$variant => $s),* }
            }
            /// One sentence on when the kind is written.
            pub const fn doc(self) -> &'static str {
                match self { $(EventKind::$variant => $doc),* }
            }
        }

        impl std::str::FromStr for EventKind {
            type Err = crate::status::UnknownVariant;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($s => Ok(EventKind::$variant),)*
                    _ => Err(crate::status::UnknownVariant { what: "event kind", value: s.to_owned(), expected: Self::NAMES }),
                }
            }
        }
    };
}

event_kinds! {
    PipelineStarted = "pipeline-started": "a pipeline run started (seed 001)",
    JobStarted = "job-started": "a job started running (seed 001)",
    JobCompleted = "job-completed": "a job ended with success (seed 001)",
    JobFailed = "job-failed": "a job ended with failure (seed 001)",
    DeploymentSuccess = "deployment-success": "a deployment succeeded (seed 001)",
    DeploymentFailure = "deployment-failure": "a deployment failed (seed 001)",
    RollbackInitiated = "rollback-initiated": "a rollback began (seed 001)",
    RollbackCompleted = "rollback-completed": "a rollback finished (seed 001)",
    JobCancelled = "job-cancelled": "a job was cancelled, started or not",
    PipelineCompleted = "pipeline-completed": "a pipeline run reached success, failure or cancelled",
    EnvironmentCreated = "environment-created": "an environment was first seen in rollway.toml",
    EnvironmentTransition = "environment-transition": "an environment was activated or deprecated",
    DeploymentTransition = "deployment-transition": "a deployment moved to another status",
    DeployStep = "deploy-step": "a step of a deployment on a host (ship, switch, restart, probe)",
    LockAcquired = "lock-acquired": "a lease on an environment was taken",
    LockReleased = "lock-released": "a lease was given back",
    LockExpired = "lock-expired": "an expired lease was taken over by another owner",
    SecretChanged = "secret-changed": "a variable was set, generated, imported, rotated or removed",
    SecretRevealed = "secret-revealed": "a secret was printed in clear with --reveal",
    ArtifactBuilt = "artifact-built": "an artifact was packed and recorded",
    ArtifactPruned = "artifact-pruned": "an expired artifact was removed",
    CommandExecuted = "command-executed": "a one-off command ran in a release on a host (rollway exec)",
    MaintenanceChanged = "maintenance-changed": "a maintenance window was added or removed (rollway maintenance)",
    AlertChanged = "alert-changed": "an alert opened, was acknowledged or resolved (rollway serve, rollway alerts)",
    BackupChanged = "backup-changed": "a backup started, completed, failed, was verified or expired (rollway backup)",
    RestoreStep = "restore-step": "a step of a restore job: created, verified, running, success or failed (rollway restore)",
}

impl Serialize for EventKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event before it is appended: the store gives it seq, id, time and hashes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    pub kind: EventKind,
    pub level: Level,
    pub message: String,
    pub environment: Option<String>,
    pub deployment_id: Option<DeploymentId>,
    pub job_id: Option<JobId>,
    pub pipeline_run_id: Option<PipelineRunId>,
    /// Seed 002 Log Record `service`.
    pub service: Option<String>,
    /// Seed 002 Log Record `traceId`.
    pub trace_id: Option<String>,
    pub operator: Option<String>,
    /// Seed 000 `data` / seed 001 `metadata`.
    pub data: Value,
}

impl NewEvent {
    pub fn new(kind: EventKind, level: Level, message: impl Into<String>) -> Self {
        Self {
            kind,
            level,
            message: message.into(),
            environment: None,
            deployment_id: None,
            job_id: None,
            pipeline_run_id: None,
            service: None,
            trace_id: None,
            operator: None,
            data: Value::Null,
        }
    }

    pub fn environment(mut self, name: impl Into<String>) -> Self {
        self.environment = Some(name.into());
        self
    }

    pub fn deployment(mut self, id: DeploymentId) -> Self {
        self.deployment_id = Some(id);
        self
    }

    pub fn job(mut self, id: JobId) -> Self {
        self.job_id = Some(id);
        self
    }

    pub fn pipeline_run(mut self, id: PipelineRunId) -> Self {
        self.pipeline_run_id = Some(id);
        self
    }

    pub fn operator(mut self, who: impl Into<String>) -> Self {
        self.operator = Some(who.into());
        self
    }

    pub fn data(mut self, data: Value) -> Self {
        self.data = data;
        self
    }

    /// Gives the event its place in the chain and computes its hash.
    pub fn seal(self, seq: i64, id: EventId, at: Timestamp, prev_hash: Sha256Digest) -> Event {
        let mut event = Event {
            seq,
            id,
            at,
            kind: self.kind,
            level: self.level,
            message: self.message,
            environment: self.environment,
            deployment_id: self.deployment_id,
            job_id: self.job_id,
            pipeline_run_id: self.pipeline_run_id,
            service: self.service,
            trace_id: self.trace_id,
            operator: self.operator,
            data: self.data,
            prev_hash,
            hash: Sha256Digest::zero(),
        };
        event.hash = event.compute_hash();
        event
    }
}

/// An appended event. `hash` covers every other field, `prev_hash` included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub seq: i64,
    pub id: EventId,
    pub at: Timestamp,
    pub kind: EventKind,
    pub level: Level,
    pub message: String,
    pub environment: Option<String>,
    pub deployment_id: Option<DeploymentId>,
    pub job_id: Option<JobId>,
    pub pipeline_run_id: Option<PipelineRunId>,
    pub service: Option<String>,
    pub trace_id: Option<String>,
    pub operator: Option<String>,
    pub data: Value,
    pub prev_hash: Sha256Digest,
    pub hash: Sha256Digest,
}

impl Event {
    /// The canonical encoding: a JSON array of the fields in a fixed order,
    /// object keys sorted, times in milliseconds. Both backends store `data`
    /// as this same text, so they hash alike.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let opt = |v: &Option<String>| v.clone().map_or(Value::Null, Value::String);
        let fields = Value::Array(vec![
            Value::String("rollway-event-v1".into()),
            Value::from(self.seq),
            Value::String(self.id.to_string()),
            Value::from(self.at.as_millis()),
            Value::String(self.kind.as_str().into()),
            Value::String(self.level.as_str().into()),
            Value::String(self.message.clone()),
            opt(&self.environment),
            opt(&self.deployment_id.map(|i| i.to_string())),
            opt(&self.job_id.map(|i| i.to_string())),
            opt(&self.pipeline_run_id.map(|i| i.to_string())),
            opt(&self.service),
            opt(&self.trace_id),
            opt(&self.operator),
            self.data.clone(),
            Value::String(self.prev_hash.to_string()),
        ]);
        canonical_json(&fields).into_bytes()
    }

    pub fn compute_hash(&self) -> Sha256Digest {
        Sha256Digest::of(&self.canonical_bytes())
    }
}

/// JSON with object keys sorted at every depth and no insignificant space.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{}", Value::String(k.clone()));
                out.push(':');
                if let Some(val) = map.get(k) {
                    write_canonical(val, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => {
            let _ = write!(out, "{scalar}");
        }
    }
}

/// Where and why the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event log broken at event {seq}{}: {reason}", id.map(|i| format!(" ({i})")).unwrap_or_default())]
pub struct ChainBreak {
    pub seq: i64,
    pub id: Option<EventId>,
    pub reason: String,
}

/// The recorded end of the chain, kept beside it so a deleted last event shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: Sha256Digest,
}

/// Checks events in stored order (by seq): consecutive seqs from 1, each
/// `prev_hash` equal to the hash before, each hash recomputed, times never
/// going backwards, and the last event equal to the head. Returns how many
/// events were checked.
pub fn verify_chain<I>(events: I, head: Option<&ChainHead>) -> Result<i64, ChainBreak>
where
    I: IntoIterator<Item = Event>,
{
    let mut prev_hash = Sha256Digest::zero();
    let mut prev_seq = 0i64;
    let mut prev_at = Timestamp(i64::MIN);
    for ev in events {
        let brk = |reason: String| ChainBreak {
            seq: ev.seq,
            id: Some(ev.id),
            reason,
        };
        if ev.seq != prev_seq + 1 {
            return Err(ChainBreak {
                seq: prev_seq + 1,
                id: None,
                reason: format!("event {} is missing: the next stored event is {}", prev_seq + 1, ev.seq),
            });
        }
        if ev.prev_hash != prev_hash {
            return Err(brk(format!(
                "its previous hash {} does not match the hash {} of event {prev_seq}",
                short(&ev.prev_hash),
                short(&prev_hash)
            )));
        }
        let computed = ev.compute_hash();
        if computed != ev.hash {
            return Err(brk(format!(
                "its content does not match its hash (stored {}, computed {}): a column was edited",
                short(&ev.hash),
                short(&computed)
            )));
        }
        if ev.at < prev_at {
            return Err(brk(format!(
                "its time {} is before the previous event's {}",
                ev.at, prev_at
            )));
        }
        prev_hash = ev.hash.clone();
        prev_seq = ev.seq;
        prev_at = ev.at;
    }
    if let Some(head) = head
        && (head.seq != prev_seq || head.hash != prev_hash)
    {
        return Err(ChainBreak {
            seq: head.seq,
            id: None,
            reason: if head.seq > prev_seq {
                format!(
                    "the log's head records event {} but the last stored event is {prev_seq}: events were deleted from the end",
                    head.seq
                )
            } else {
                format!(
                    "the log's head (event {}, {}) does not match the last stored event {prev_seq}",
                    head.seq,
                    short(&head.hash)
                )
            },
        });
    }
    Ok(prev_seq)
}

fn short(d: &Sha256Digest) -> &str {
    &d.as_str()[..12]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> (Vec<Event>, ChainHead) {
        let mut prev = Sha256Digest::zero();
        let mut out = Vec::new();
        for seq in 1..=n {
            let ev = NewEvent::new(EventKind::DeployStep, Level::Info, format!("step {seq}"))
                .data(serde_json::json!({"b": 1, "a": [seq, "x"]}))
                .seal(seq, EventId::generate(Timestamp(seq)), Timestamp(seq * 10), prev);
            prev = ev.hash.clone();
            out.push(ev);
        }
        let head = ChainHead { seq: n, hash: prev };
        (out, head)
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let v = serde_json::json!({"z": {"b": 2, "a": 1}, "a": [1, {"d": null, "c": "é\""}]});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":[1,{"c":"é\"","d":null}],"z":{"a":1,"b":2}}"#
        );
    }

    #[test]
    fn intact_chain_verifies() {
        let (evs, head) = chain(5);
        assert_eq!(verify_chain(evs, Some(&head)), Ok(5));
    }

    #[test]
    fn each_tampering_is_found() {
        let check = |tamper: &dyn Fn(&mut Vec<Event>), seq: i64, needle: &str| {
            let (mut evs, head) = chain(5);
            tamper(&mut evs);
            let err = verify_chain(evs, Some(&head)).unwrap_err();
            assert_eq!(err.seq, seq, "{err}");
            assert!(err.to_string().contains(needle), "{err}");
        };
        check(&|e| e[2].message = "edited".into(), 3, "a column was edited");
        check(
            &|e| {
                e.remove(2);
            },
            3,
            "event 3 is missing",
        );
        check(
            &|e| {
                e.pop();
            },
            5,
            "deleted from the end",
        );
        check(
            &|e| {
                let (a, b) = (e[1].clone(), e[2].clone());
                e[1] = Event { seq: 2, ..b };
                e[2] = Event { seq: 3, ..a };
            },
            2,
            "previous hash",
        );
    }
}
