//! What a deployment and its recovery share: who acts on which environment,
//! the event builder, the service spec per host, and the two verdict
//! transitions (failed, rolled back) with their events. Deploy
//! (`run/`) and recovery (`recover.rs`) both go through here, so a
//! deployment's events read the same whoever wrote them.

use rollway_model::{Deployment, DeploymentId, DeploymentStatus, EventKind, Level, Masker, NewEvent};
use rollway_store::{Store, StoreError};
use serde_json::json;

use super::{DeployError, Health, HostPlan, Progress};
use crate::supervisor::ServiceSpec;

/// The environment a deployment runs in and who runs it; borrowed from a
/// `DeployJob` or a `Recovery`.
#[derive(Clone, Copy)]
pub(crate) struct Context<'a> {
    pub store: &'a dyn Store,
    pub progress: &'a dyn Progress,
    pub environment: &'a str,
    pub operator: &'a str,
    pub masker: &'a Masker,
    /// The service as every host runs it (root, port and env file per host).
    pub service: &'a ServiceSpec,
    pub health: &'a Health,
}

impl Context<'_> {
    /// An event of deployment `id`, its message masked.
    pub fn event(&self, id: DeploymentId, kind: EventKind, level: Level, msg: impl Into<String>) -> NewEvent {
        NewEvent::new(kind, level, self.masker.mask(&msg.into()))
            .environment(self.environment.to_owned())
            .deployment(id)
            .operator(self.operator.to_owned())
    }

    /// The service as `plan`'s host runs it with release `env_name`'s env file.
    pub fn spec_for(&self, plan: &HostPlan, env_name: &str) -> ServiceSpec {
        let mut spec = self.service.clone();
        spec.root = plan.root.clone().into();
        spec.port = plan.port;
        spec.env_file = crate::layout::HostLayout::new(&plan.root).env_file(env_name);
        spec
    }

    /// Records deployment `id` as failed with `reason` and its events; a
    /// deployment failed already is left as it is. Returns whether this
    /// call failed it (and then says so on the progress line: the reason
    /// itself is said once, by the error the failure ends with).
    pub fn mark_failed(&self, id: DeploymentId, reason: &str) -> Result<bool, DeployError> {
        let now = self.store.clock().now();
        let mut newly = false;
        self.store.update_deployment(id, &mut |d: &mut Deployment| {
            let from = d.status();
            if from == DeploymentStatus::Failed {
                return Ok(Vec::new());
            }
            d.fail(reason.to_owned(), now).map_err(model_err)?;
            newly = true;
            Ok(vec![
                self.event(
                    d.id,
                    EventKind::DeploymentTransition,
                    Level::Error,
                    format!("deployment {}: {from} → failed", d.id),
                )
                .data(json!({ "from": from.as_str(), "to": "failed", "reason": reason })),
                self.event(
                    d.id,
                    EventKind::DeploymentFailure,
                    Level::Error,
                    format!("deployment {} failed: {reason}", d.id),
                ),
            ])
        })?;
        if newly {
            self.progress.step(None, &format!("deployment {id} failed"));
        }
        Ok(newly)
    }

    /// Moves failed deployment `id` to rolled_back with `rollback_reason`,
    /// returned to `to` when hosts went back to a release, with the
    /// transition event and, when given, a rollback-completed message.
    pub fn mark_rolled_back(
        &self,
        id: DeploymentId,
        rollback_reason: &str,
        to: Option<DeploymentId>,
        completed: Option<String>,
    ) -> Result<(), DeployError> {
        let now = self.store.clock().now();
        self.store.update_deployment(id, &mut |d: &mut Deployment| {
            if to.is_some() {
                d.rollback_to = to;
            }
            d.roll_back(rollback_reason.to_owned(), now).map_err(model_err)?;
            let mut data = json!({ "from": "failed", "to": "rolled_back", "reason": rollback_reason });
            if let Some(to) = to {
                data["rollback_to"] = json!(to);
            }
            let mut evs = vec![
                self.event(
                    d.id,
                    EventKind::DeploymentTransition,
                    Level::Warn,
                    format!("deployment {}: failed → rolled_back", d.id),
                )
                .data(data),
            ];
            if let Some(msg) = &completed {
                let mut ev = self.event(d.id, EventKind::RollbackCompleted, Level::Info, msg.clone());
                if to.is_some() {
                    ev = ev.data(json!({ "rollback_to": to }));
                }
                evs.push(ev);
            }
            Ok(evs)
        })?;
        Ok(())
    }
}

/// A refused status change as the store reports it.
pub(crate) fn model_err(e: rollway_model::entities::StatusChangeError) -> StoreError {
    match e.transition {
        Some(t) => StoreError::Transition(*t),
        None => StoreError::Corrupt {
            what: "deployment",
            id: e.id.to_string(),
            detail: e
                .violations
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        },
    }
}
