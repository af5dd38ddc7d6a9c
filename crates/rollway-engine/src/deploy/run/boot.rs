//! The boot check of one host: the expected status from a port held by the
//! new service's own process tree, within `retries` probes, with no restart
//! beyond the one Rollway made.

use std::time::Duration;

use serde_json::json;

use super::{Record, Run, describe};
use crate::deploy::HostPlan;
use crate::host::{HostSession, ServiceCheck};
use crate::supervisor::{PortOwner, ServiceSpec};

/// How often the boot check looks at the service's start count between
/// attempts, so a crash loop is caught within a restart or two whatever
/// `interval` is.
const BOOT_WATCH: Duration = Duration::from_millis(100);

/// Lines of the service's output a boot-check failure carries.
const BOOT_OUTPUT_LINES: usize = 10;

impl Run<'_, '_> {
    /// Up to `retries` probes spaced by `interval`. A pass needs the
    /// expected status from a port held by the service's own process tree;
    /// a port held by anyone else, or any start beyond `baseline` (the
    /// count right after Rollway's restart), fails at once. The start count
    /// is watched every [`BOOT_WATCH`] between attempts.
    pub(super) fn boot_check(
        &self,
        session: &mut dyn HostSession,
        plan: &HostPlan,
        spec: &ServiceSpec,
        record: &Record<'_>,
        baseline: u64,
    ) -> Result<(), String> {
        let health = &self.job.health;
        let retries = health.retries.max(1);
        let mut last = String::new();
        for attempt in 1..=retries {
            let c = session
                .check(spec, Some((&health.path, health.timeout)))
                .map_err(|e| e.to_string())?;
            self.boot_guard(session, plan, spec, record, baseline, &c)?;
            let Some(p) = &c.probe else {
                return Err(format!("{}: the host answered a boot check without a probe", plan.name));
            };
            record(&mut |h| {
                h.http_status = p.status;
                h.latency_ms = Some(p.latency_ms);
            })
            .map_err(|e| e.to_string())?;
            match (&c.owner, p.status == Some(health.expect_status)) {
                (PortOwner::Service { pid }, true) => {
                    self.step(
                        Some(&plan.name),
                        format!(
                            "boot check passed on attempt {attempt} ({} in {} ms from pid {pid})",
                            health.expect_status, p.latency_ms
                        ),
                        json!({ "attempt": attempt, "status": p.status, "latency_ms": p.latency_ms, "pid": pid }),
                    )
                    .map_err(|e| e.to_string())?;
                    return Ok(());
                }
                // Answered, yet no socket of the service listens: whoever
                // answered is gone (or was never the service); not a pass.
                (_, true) => {
                    last = format!(
                        "{} answered, but the service holds no socket on port {}",
                        health.expect_status, plan.port
                    );
                }
                (_, false) => last = describe(p),
            }
            if attempt < retries {
                self.boot_pause(session, plan, spec, record, baseline)?;
            }
        }
        let why = format!(
            "boot check failed on {} after {retries} attempt{} (last: {last}; expected {})",
            plan.name,
            if retries == 1 { "" } else { "s" },
            health.expect_status
        );
        Err(self.with_output(session, spec, why))
    }

    /// Waits `interval`, looking at the start count and the port's owner
    /// every [`BOOT_WATCH`].
    fn boot_pause(
        &self,
        session: &mut dyn HostSession,
        plan: &HostPlan,
        spec: &ServiceSpec,
        record: &Record<'_>,
        baseline: u64,
    ) -> Result<(), String> {
        let end = self.clock().now().plus(self.job.health.interval);
        loop {
            let now = self.clock().now();
            if now >= end {
                return Ok(());
            }
            self.clock().sleep(BOOT_WATCH.min(end.since(now)));
            let c = session.check(spec, None).map_err(|e| e.to_string())?;
            self.boot_guard(session, plan, spec, record, baseline, &c)?;
        }
    }

    /// Fails the boot check at once on a foreign port owner or a restart.
    fn boot_guard(
        &self,
        session: &mut dyn HostSession,
        plan: &HostPlan,
        spec: &ServiceSpec,
        record: &Record<'_>,
        baseline: u64,
        c: &ServiceCheck,
    ) -> Result<(), String> {
        // A foreign owner first: it is the cause when the new service
        // also crash-loops (it cannot bind the port).
        if let PortOwner::Other { pid, command } = &c.owner {
            let why = format!(
                "boot check failed on {}: port {} is held by {}, not by the service rollway just started; stop that process or give this environment another port, then deploy again",
                plan.name,
                plan.port,
                PortOwner::describe_other(*pid, command)
            );
            return Err(self.with_output(session, spec, self.job.masker.mask(&why)));
        }
        let restarts = c.starts.saturating_sub(baseline);
        if restarts > 0 {
            record(&mut |h| h.restarts_observed = restarts).map_err(|e| e.to_string())?;
            let why = format!(
                "boot check failed on {}: the service restarted {restarts} time{} before it answered (starts {baseline} → {}); it is crashing",
                plan.name,
                if restarts == 1 { "" } else { "s" },
                c.starts
            );
            return Err(self.with_output(session, spec, why));
        }
        Ok(())
    }

    /// `why` with the service's last output lines, masked.
    fn with_output(&self, session: &mut dyn HostSession, spec: &ServiceSpec, why: String) -> String {
        match session.log_tail(spec, BOOT_OUTPUT_LINES) {
            Ok(lines) if !lines.is_empty() => {
                let shown: Vec<String> = lines.iter().map(|l| format!("  {}", self.job.masker.mask(l))).collect();
                format!("{why}; its last output:\n{}", shown.join("\n"))
            }
            _ => why,
        }
    }
}
