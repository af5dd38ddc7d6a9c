//! The allowed edges of every state machine typed a second time, by hand, from
//! `docs/requirements/seeds/*.txt` and `docs/DESIGN.md`; each table in `transitions.rs` must equal its golden list.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rollway_model::status::*;
use rollway_model::transitions::StateMachine;

/// `StateMachine` does not carry the status list or its spellings, so the
/// test reaches the inherent `ALL` and `as_str` of each status enum through
/// this trait.
trait Machine: StateMachine {
    fn all() -> &'static [Self];
    fn name(self) -> &'static str;
}

macro_rules! machines {
    ($($ty:ty),* $(,)?) => {$(
        impl Machine for $ty {
            fn all() -> &'static [Self] {
                <$ty>::ALL
            }
            fn name(self) -> &'static str {
                self.as_str()
            }
        }
    )*};
}

machines!(
    DeploymentStatus,
    JobStatus,
    PipelineStatus,
    StackStatus,
    ResourceStatus,
    AlertStatus,
    RestoreStatus,
    BackupStatus,
    CertificateStatus,
    DnsStatus,
    EnvironmentStatus,
);

/// Compares `S::EDGES` with the golden edges and `S::INITIAL` with the golden
/// initial status, and checks that the table reaches every status from the
/// initial one; reports every problem at once.
fn check<S: Machine>(initial: &str, golden: &[(&str, &str)]) {
    let mut problems = Vec::new();
    let names: BTreeSet<&str> = S::all().iter().map(|s| s.name()).collect();

    // A typo in the golden list would otherwise show up as a confusing
    // missing/extra pair, so the golden list is checked first.
    let mut golden_set = BTreeSet::new();
    for &(from, to) in golden {
        for name in [from, to] {
            if !names.contains(name) {
                problems.push(format!(
                    "golden list names '{name}', which is no {} status (known: {names:?})",
                    S::NAME
                ));
            }
        }
        if !golden_set.insert((from, to)) {
            problems.push(format!("golden list repeats {from} → {to}"));
        }
    }
    if !names.contains(initial) {
        problems.push(format!("golden initial '{initial}' is no {} status", S::NAME));
    }

    let mut counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for &(from, to) in S::EDGES {
        *counts.entry((from.name(), to.name())).or_default() += 1;
    }
    for (&(from, to), &n) in &counts {
        if n > 1 {
            problems.push(format!("table lists {from} → {to} {n} times"));
        }
    }
    let table: BTreeSet<(&str, &str)> = counts.keys().copied().collect();

    for (from, to) in golden_set.difference(&table) {
        problems.push(format!(
            "missing from the table (the seeds/DESIGN.md allow it): {from} → {to}"
        ));
    }
    for (from, to) in table.difference(&golden_set) {
        problems.push(format!(
            "extra in the table (the seeds/DESIGN.md do not allow it): {from} → {to}"
        ));
    }

    if S::INITIAL.name() != initial {
        problems.push(format!(
            "table starts in {}, the seeds/DESIGN.md start in {initial}",
            S::INITIAL.name()
        ));
    }

    let mut reached = BTreeSet::from([S::INITIAL.name()]);
    let mut queue = VecDeque::from([S::INITIAL]);
    while let Some(at) = queue.pop_front() {
        for &(from, to) in S::EDGES {
            if from == at && reached.insert(to.name()) {
                queue.push_back(to);
            }
        }
    }
    for name in names.difference(&reached) {
        problems.push(format!(
            "status {name} cannot be reached from {} through the table",
            S::INITIAL.name()
        ));
    }

    assert!(
        problems.is_empty(),
        "the {} transition table disagrees with its golden list:\n  {}",
        S::NAME,
        problems.join("\n  ")
    );
}

#[test]
fn deployment() {
    check::<DeploymentStatus>(
        "pending",
        &[
            // DESIGN.md "The deployment state machine":
            // "pending → building → synthesizing → deploying → verifying → succeeded".
            // Seed 000:13/31-32 PENDING → IN_PROGRESS → SUCCESS, seed 003:75
            // pending → building → deploying → success and seed 004:72-75 land on it
            // ("IN_PROGRESS is building/synthesizing/deploying/verifying; SUCCESS and
            // completed are succeeded"). "Phases with nothing to do are passed through,
            // never skipped silently", so seed 002:56 pending → success is no edge.
            ("pending", "building"),
            ("building", "synthesizing"),
            ("synthesizing", "deploying"),
            ("deploying", "verifying"),
            ("verifying", "succeeded"),
            // DESIGN.md: "any non-final state → failed (reason required)"
            // (seed 004:76 any → failed, seed 000:33 IN_PROGRESS → FAILED, seed 002:57 pending → failed).
            ("pending", "failed"),
            ("building", "failed"),
            ("synthesizing", "failed"),
            ("deploying", "failed"),
            ("verifying", "failed"),
            // DESIGN.md: "any non-final state → cancelled".
            ("pending", "cancelled"),
            ("building", "cancelled"),
            ("synthesizing", "cancelled"),
            ("deploying", "cancelled"),
            ("verifying", "cancelled"),
            // DESIGN.md: "failed → rolled_back (previous release restored; reason kept)"
            // (seed 004:77 failed → rolled_back, seed 002:57 pending → failed → rolled_back).
            ("failed", "rolled_back"),
            // DESIGN.md: "succeeded → rolled_back (a later manual rollback)"
            // (seed 000:34 SUCCESS → ROLLED_BACK, seed 003:76 success → rolled_back).
            ("succeeded", "rolled_back"),
        ],
    );
}

#[test]
fn job() {
    check::<JobStatus>(
        "pending",
        &[
            // Seed 001:84-86 "pending → running → success ↘ failure ↘ cancelled".
            ("pending", "running"),
            ("running", "success"),
            ("running", "failure"),
            ("running", "cancelled"),
            // DESIGN.md overrides: "A job that never started may go pending → cancelled
            // (seed 001 allows cancelled only from running)".
            ("pending", "cancelled"),
        ],
    );
}

#[test]
fn pipeline_run() {
    check::<PipelineStatus>(
        "pending",
        &[
            // DESIGN.md: "those the seeds do not draw: a pipeline run is
            // pending → running → success | failure | cancelled".
            ("pending", "running"),
            ("running", "success"),
            ("running", "failure"),
            ("running", "cancelled"),
        ],
    );
}

#[test]
fn stack() {
    check::<StackStatus>(
        "pending",
        &[
            // Seed 004:82 "pending → synthesizing (CDK synth single stack)".
            ("pending", "synthesizing"),
            // Seed 004:83 "synthesizing → deploying", with DESIGN.md's override "Stacks gain
            // `synthesized`" placed between the two and passed through, never skipped
            // ("Phases with nothing to do are passed through, never skipped silently").
            ("synthesizing", "synthesized"),
            ("synthesized", "deploying"),
            // Seed 004:84 "deploying → deployed (deployment successful)".
            ("deploying", "deployed"),
            // Seed 004:85 "any → failed (deployment failed)": every status that is not an
            // end; failed, skipped and rolled_back are ends.
            ("pending", "failed"),
            ("synthesizing", "failed"),
            ("synthesized", "failed"),
            ("deploying", "failed"),
            ("deployed", "failed"),
            // DESIGN.md: "skipped (never started because a dependency failed)". Seed 004:72-73
            // synthesizes all stacks before deploying them in order, so a stack whose
            // dependency failed while deploying is synthesized yet never started.
            ("pending", "skipped"),
            ("synthesized", "skipped"),
            // DESIGN.md: stacks gain "rolled_back": a deployed stack undone when its
            // deployment rolls back (seed 004:77 failed → rolled_back for the deployment).
            ("deployed", "rolled_back"),
        ],
    );
}

#[test]
fn resource() {
    check::<ResourceStatus>(
        "creating",
        &[
            // Seed 004:90 "creating → available (resource created and accessible)".
            ("creating", "available"),
            // Seed 004:91 "creating → failed (resource creation failed)".
            ("creating", "failed"),
        ],
    );
}

#[test]
fn alert() {
    check::<AlertStatus>(
        "open",
        &[
            // Seed 002:60 "open → ack → resolved"; DESIGN.md "open → ack → resolved".
            ("open", "ack"),
            ("ack", "resolved"),
            // Seed 002:61 "open → resolved (自动恢复)"; DESIGN.md "or open → resolved on recovery".
            ("open", "resolved"),
        ],
    );
}

#[test]
fn restore_job() {
    check::<RestoreStatus>(
        "pending",
        &[
            // Seed 002:64-65 "pending → success", "pending → failed";
            // DESIGN.md "Restore jobs gain `running` between pending and
            // success / failed"; OPERATIONS.md "pending → running → success | failed".
            ("pending", "running"),
            ("running", "success"),
            ("running", "failed"),
            // A backup that does not verify fails the job before it runs.
            ("pending", "failed"),
        ],
    );
}

#[test]
fn backup() {
    check::<BackupStatus>(
        "in_progress",
        &[
            // Neither the seeds nor DESIGN.md draw these edges; seed 003:108 lists
            // "backup_status: in_progress, completed, failed, expired". A run in progress
            // ends completed or failed.
            ("in_progress", "completed"),
            ("in_progress", "failed"),
            // Seed 003:110 "expires_at: Based on retention policy" and 003:114-118 (DESIGN.md
            // "retention classes daily 30 d, weekly 6 mo, monthly 2 y, manual 1 y"): what a
            // retention class expires is a completed backup.
            ("completed", "expired"),
        ],
    );
}

#[test]
fn certificate() {
    check::<CertificateStatus>(
        "pending",
        &[
            // DESIGN.md: "a certificate is pending → active | failed, active → expired,
            // expired | failed → pending (renewal)" (seed 003:48 lists the statuses only).
            ("pending", "active"),
            ("pending", "failed"),
            ("active", "expired"),
            ("expired", "pending"),
            ("failed", "pending"),
        ],
    );
}

#[test]
fn domain() {
    check::<DnsStatus>(
        "pending",
        &[
            // DESIGN.md mapping table, Domain: "dns_status pending → configured → verified /
            // failed; certificate issuance waits for verification" (seed 003:132 lists the
            // statuses only). Unlike the certificate, DESIGN.md draws no retry edge here.
            ("pending", "configured"),
            ("configured", "verified"),
            ("configured", "failed"),
        ],
    );
}

#[test]
fn environment() {
    check::<EnvironmentStatus>(
        "created",
        &[
            // Seed 001:91 "created → active → deprecated"; DESIGN.md mapping table,
            // Environment: "lifecycle created → active → deprecated".
            ("created", "active"),
            ("active", "deprecated"),
        ],
    );
}
