//! Conformance cases for the document entities: artifacts, deployments,
//! verifications, pipeline runs, jobs, stacks and resources. Each case runs
//! on both backends through the `conformance!` list in `conformance.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

use rollway_model::{
    Artifact, ArtifactId, ArtifactKind, CheckResult, Clock, CommitHash, ContentFolder, Deployment, DeploymentId,
    DeploymentKind, DeploymentStatus, EventKind, HostResult, Job, JobId, JobStatus, JobType, Level, ManualClock,
    NewEvent, PipelineRun, PipelineRunId, PipelineStatus, Resource, ResourceStatus, Sha256Digest, Stack, StackId,
    StackStatus, Timestamp, TransitionError, Verification,
};
use rollway_store::{Store, StoreError};
use serde_json::{Value, json};

use super::{START, all_events, kinds, secs};

// ---- builders: every field set to something other than its default ----

fn commit(c: char) -> CommitHash {
    CommitHash::try_from(c.to_string().repeat(40)).unwrap()
}

/// A digest that starts with `prefix` (hex) and is padded with `fill`.
fn digest(prefix: &str, fill: char) -> Sha256Digest {
    let mut s = prefix.to_owned();
    while s.len() < 64 {
        s.push(fill);
    }
    Sha256Digest::try_from(s).unwrap()
}

fn full_artifact(at: Timestamp, sha: Sha256Digest, content: Sha256Digest) -> Artifact {
    Artifact {
        id: ArtifactId::generate(at),
        kind: ArtifactKind::FrontendBuild,
        sha256: sha,
        content_digest: content,
        size_bytes: 5_000_000_000,
        source_version: Some(commit('a')),
        branch: Some("feature/ünïcode".into()),
        dirty: true,
        built_at: at,
        aliases_resolved: false,
        unresolved_aliases: vec!["dist/app.js:3: unresolved alias '@/lib/x'".into()],
        contents: vec![
            ContentFolder {
                path: "assets".into(),
                files: 12,
                bytes: 34_000,
            },
            ContentFolder {
                path: ".".into(),
                files: 2,
                bytes: 700,
            },
        ],
        location: "/srv/state/artifacts/x.tar.zst".into(),
        job_id: Some(JobId::generate(at)),
        expires_at: at.plus(Duration::from_secs(90 * 86_400)),
        created_at: at,
    }
}

fn built(a: &Artifact) -> NewEvent {
    NewEvent::new(EventKind::ArtifactBuilt, Level::Info, format!("built {}", a.id))
}

fn pending(env: &str, at: Timestamp, tag: &str) -> Deployment {
    let mut d = Deployment::new(DeploymentKind::Deploy, env, "alice@example.com", at);
    d.version_tag = Some(tag.to_owned());
    d
}

fn moved(d: &Deployment, to: DeploymentStatus) -> NewEvent {
    NewEvent::new(
        EventKind::DeploymentTransition,
        Level::Info,
        format!("deployment {}: {} → {to}", d.id, d.status()),
    )
    .data(json!({ "from": d.status().as_str(), "to": to.as_str() }))
}

/// An update closure that moves the deployment to `to` at the clock's now
/// and returns one transition event.
fn step_to(
    clock: &ManualClock,
    to: DeploymentStatus,
) -> impl FnMut(&mut Deployment) -> Result<Vec<NewEvent>, StoreError> + '_ {
    move |d: &mut Deployment| {
        let ev = moved(d, to);
        d.transition(to, clock.now())?;
        Ok(vec![ev])
    }
}

const FORWARD: [DeploymentStatus; 5] = [
    DeploymentStatus::Building,
    DeploymentStatus::Synthesizing,
    DeploymentStatus::Deploying,
    DeploymentStatus::Verifying,
    DeploymentStatus::Succeeded,
];

/// Walks a recorded deployment through `path`, one second a step.
fn walk(store: &dyn Store, clock: &ManualClock, id: DeploymentId, path: &[DeploymentStatus]) -> Deployment {
    let mut d = store.deployment(id).unwrap().unwrap();
    for &to in path {
        clock.advance(Duration::from_secs(1));
        d = store.update_deployment(id, &mut step_to(clock, to)).unwrap();
    }
    d
}

/// Inserts a deployment and walks it through `path`.
fn deployment_through(store: &dyn Store, clock: &ManualClock, d: Deployment, path: &[DeploymentStatus]) -> Deployment {
    let d = store.insert_deployment(&d, vec![]).unwrap();
    walk(store, clock, d.id, path)
}

fn succeeded(store: &dyn Store, clock: &ManualClock, env: &str, tag: &str) -> Deployment {
    deployment_through(store, clock, pending(env, clock.now(), tag), &FORWARD)
}

fn full_verification(deployment_id: DeploymentId, at: Timestamp) -> Verification {
    let mut v = Verification::new(deployment_id, "/health", at);
    v.expect_status = 204;
    v.stability_window_ms = 60_000;
    v.window_ends_at = Some(at.plus(Duration::from_secs(60)));
    v.result = None;
    let mut a = HostResult::new("deploy@app1.example.com:2222", at);
    a.http_status = Some(204);
    a.latency_ms = Some(12);
    a.completed_at = Some(at.plus(Duration::from_secs(3)));
    a.restart_baseline = Some(4);
    a.restarts_observed = 1;
    a.result = Some(CheckResult::Fail);
    a.log_excerpt = Some("listening on 3000\nexit 1".into());
    a.release_before = Some("0192-previous".into());
    a.switched_at = Some(at.plus(Duration::from_secs(1)));
    a.bytes_sent = 123_456;
    a.returned_to = Some("0192-previous".into());
    let b = HostResult::new("local", at);
    v.hosts = vec![a, b];
    v
}

fn full_run(at: Timestamp) -> PipelineRun {
    let mut run = PipelineRun::new("alice@example.com", at);
    run.commit = Some(commit('b'));
    run.branch = Some("main".into());
    run.environment = Some("staging".into());
    run.jobs = vec![JobId::generate(at), JobId::generate(at)];
    run
}

fn full_job(run: PipelineRunId, name: &str, at: Timestamp) -> Job {
    let mut job = Job::new(run, name, JobType::MigrateDb, "alice@example.com", at);
    job.needs = vec!["lint".into(), "test".into()];
    job.commit_hash = Some(commit('c'));
    job.branch = Some("main".into());
    job
}

fn full_stack(deployment_id: DeploymentId, name: &str, at: Timestamp) -> Stack {
    let mut s = Stack::new(deployment_id, name, at);
    s.template_path = Some("cdk.out/db.template.json".into());
    s.outputs = BTreeMap::from([("HOST".into(), "db.internal".into()), ("PORT".into(), "5432".into())]);
    s.secret_outputs = vec!["PASSWORD".into()];
    s.dependencies = vec!["network".into()];
    s.error_message = Some("not yet".into());
    s
}

fn full_resource(stack_id: StackId, at: Timestamp) -> Resource {
    let mut r = Resource::new(stack_id, "AWS::RDS::DBInstance", "Database", at);
    r.resource_id = Some("db-7f3a".into());
    r.properties = json!({"Engine": "postgres", "Size": 1.5, "Multi": {"AZ": [true, null]}})
        .as_object()
        .unwrap()
        .clone();
    r.tags = BTreeMap::from([("owner".into(), "ops".into()), ("cost-center".into(), "42".into())]);
    r
}

/// Single quotes doubled, for SQL string literals.
fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn doc_of<T: serde::Serialize>(v: &T) -> String {
    rollway_model::event::canonical_json(&serde_json::to_value(v).unwrap())
}

fn tags(ds: &[Deployment]) -> Vec<String> {
    ds.iter().map(|d| d.version_tag.clone().unwrap_or_default()).collect()
}

// ---- artifacts ----

pub(crate) fn artifacts_round_trip_every_field(store: &dyn Store, clock: &ManualClock) {
    let a = full_artifact(clock.now(), digest("aa", '1'), digest("cc", '1'));
    let stored = store.insert_artifact(&a, built(&a)).unwrap();
    assert_eq!(stored, a);
    assert_eq!(store.artifact(a.id).unwrap(), Some(a.clone()));
    assert_eq!(store.artifacts().unwrap(), vec![a.clone()]);
    assert_eq!(store.artifact(ArtifactId::generate(START)).unwrap(), None);
    let ev = &all_events(store)[0];
    assert_eq!((ev.kind, ev.job_id), (EventKind::ArtifactBuilt, a.job_id));

    let err = store.insert_artifact(&a, built(&a)).unwrap_err();
    assert!(
        matches!(&err, StoreError::Exists { what: "artifact", id } if *id == a.id.to_string()),
        "{err}"
    );
    assert_eq!(all_events(store).len(), 1, "a refused insert writes no event");
}

pub(crate) fn find_artifacts_matches_id_and_digest_prefixes(store: &dyn Store, clock: &ManualClock) {
    // 1.5 s apart: distinct milliseconds, and (from START) the same top 32
    // bits of the UUIDv7 time, so the ids share their first 8 characters.
    let mut made = Vec::new();
    for (name, sha, content) in [
        ("a", digest("aaaa1", '0'), digest("cccc1", '0')),
        ("b", digest("aaaa2", '0'), digest("dddd", '0')),
        ("c", digest("bbbb", '0'), digest("cccc2", '0')),
    ] {
        clock.advance(Duration::from_millis(1500));
        let a = full_artifact(clock.now(), sha, content);
        store.insert_artifact(&a, built(&a)).unwrap();
        made.push((name, a));
    }
    let name_of = |found: Vec<Artifact>| -> Vec<&str> {
        found
            .iter()
            .map(|f| made.iter().find(|(_, a)| a.id == f.id).unwrap().0)
            .collect()
    };
    let id = |name: &str| made.iter().find(|(n, _)| *n == name).unwrap().1.id.to_string();
    let a_id = id("a");
    let check = |prefix: &str, expected: &[&str]| {
        assert_eq!(name_of(store.find_artifacts(prefix).unwrap()), expected, "{prefix:?}");
    };
    check(&a_id, &["a"]);
    // The first 13 characters hold the id's whole millisecond timestamp.
    check(&a_id[..13], &["a"]);
    check(&a_id[..13].to_uppercase(), &["a"]);
    check(&a_id.replace('-', "")[..16], &["a"]);
    // The first 8 hold its seconds and above: all three share them.
    check(&a_id[..8], &["c", "b", "a"]);
    check("aaaa", &["b", "a"]);
    check("sha256:aaaa1", &["a"]);
    check("cccc", &["c", "a"]);
    check("dddd0000", &["b"]);
    check(&digest("bbbb", '0').to_string(), &["c"]);
    check("eeee", &[]);
    check("", &[]);
    check("%", &[]);
    check("a_a", &[]);
}

pub(crate) fn artifacts_list_newest_first_and_are_deleted(store: &dyn Store, clock: &ManualClock) {
    let same_content = digest("cc", '7');
    let older = full_artifact(clock.now(), digest("01", '0'), same_content.clone());
    // Same millisecond: insertion order breaks the tie.
    let twin = full_artifact(clock.now(), digest("02", '0'), digest("dd", '0'));
    clock.advance(Duration::from_secs(1));
    let newer = full_artifact(clock.now(), digest("03", '0'), same_content.clone());
    for a in [&older, &twin, &newer] {
        store.insert_artifact(a, built(a)).unwrap();
    }
    let ids = |v: Vec<Artifact>| v.into_iter().map(|a| a.id).collect::<Vec<_>>();
    assert_eq!(ids(store.artifacts().unwrap()), [newer.id, twin.id, older.id]);
    assert_eq!(
        store.artifact_by_content_digest(&same_content).unwrap(),
        Some(newer.clone())
    );
    assert_eq!(store.artifact_by_content_digest(&digest("ee", '0')).unwrap(), None);

    let pruned = |a: &Artifact| NewEvent::new(EventKind::ArtifactPruned, Level::Info, format!("pruned {}", a.id));
    assert!(store.delete_artifact(newer.id, pruned(&newer)).unwrap());
    assert!(!store.delete_artifact(newer.id, pruned(&newer)).unwrap());
    assert_eq!(store.artifact(newer.id).unwrap(), None);
    assert_eq!(
        store.artifact_by_content_digest(&same_content).unwrap(),
        Some(older.clone())
    );
    assert_eq!(ids(store.artifacts().unwrap()), [twin.id, older.id]);
    let count = |k| kinds(store).iter().filter(|&&x| x == k).count();
    assert_eq!(
        (count(EventKind::ArtifactBuilt), count(EventKind::ArtifactPruned)),
        (3, 1)
    );
    assert_eq!(store.verify_events().unwrap(), Ok(4));
}

// ---- deployments ----

pub(crate) fn deployments_round_trip_every_field(store: &dyn Store, clock: &ManualClock) {
    let target = succeeded(store, clock, "staging", "v1");
    clock.advance(Duration::from_secs(1));
    let at = clock.now();
    let mut d = Deployment::new(DeploymentKind::Rollback, "staging", "bob@example.com", at);
    d.artifact_id = Some(ArtifactId::generate(at));
    d.version_tag = Some("v1.2.3".into());
    d.commit_sha = Some(commit('d'));
    d.branch = Some("release/1.2".into());
    d.dirty = true;
    d.notes = Some("back to v1 — «quoted» 'single'".into());
    d.rollback_to = Some(target.id);
    d.stacks_order = vec!["database".into(), "app".into()];
    d.waves = vec![vec!["local".into()], vec!["deploy@a".into(), "deploy@b".into()]];
    d.platform_deployment_id = Some("dpl_123".into());
    d.artifacts_url = Some("https://ci.example.com/a/1".into());
    d.logs_url = Some("https://ci.example.com/l/1".into());
    let events_before = all_events(store).len();
    let stored = store
        .insert_deployment(
            &d,
            vec![
                NewEvent::new(EventKind::RollbackInitiated, Level::Warn, "rollback to v1"),
                NewEvent::new(EventKind::DeployStep, Level::Info, "elsewhere").environment("production"),
            ],
        )
        .unwrap();
    assert_eq!(stored, d);
    assert_eq!(store.deployment(d.id).unwrap(), Some(d.clone()));
    let new = &all_events(store)[events_before..];
    let refs: Vec<(Option<&str>, Option<DeploymentId>)> = new
        .iter()
        .map(|e| (e.environment.as_deref(), e.deployment_id))
        .collect();
    assert_eq!(
        refs,
        [(Some("staging"), Some(d.id)), (Some("production"), Some(d.id))],
        "events are tied to the deployment unless they say otherwise"
    );

    // Every status-bound field: finished_at, both reasons, rollback_target.
    // (Its stacks are recorded before it deploys, as `stacks_order` wants.)
    store
        .put_stack(&Stack::new(d.id, "database", clock.now()), vec![])
        .unwrap();
    let mut app = Stack::new(d.id, "app", clock.now());
    app.dependencies = vec!["database".into()];
    store.put_stack(&app, vec![]).unwrap();
    let mut done = walk(store, clock, d.id, &FORWARD);
    done = store
        .update_deployment(done.id, &mut |d: &mut Deployment| {
            d.rollback_target = true;
            Ok(vec![])
        })
        .unwrap();
    assert!(done.rollback_target && done.finished_at.is_some());
    assert_eq!(store.deployment(done.id).unwrap(), Some(done.clone()));

    let failed = deployment_through(store, clock, pending("staging", clock.now(), "v2"), &FORWARD[..3]);
    clock.advance(Duration::from_secs(1));
    let failed = store
        .update_deployment(failed.id, &mut |d: &mut Deployment| {
            d.fail("health check failed on local: 500", clock.now())?;
            Ok(vec![])
        })
        .unwrap();
    clock.advance(Duration::from_secs(1));
    let back = store
        .update_deployment(failed.id, &mut |d: &mut Deployment| {
            d.roll_back("window failed; returned to v1", clock.now())?;
            Ok(vec![])
        })
        .unwrap();
    assert_eq!(back.status(), DeploymentStatus::RolledBack);
    assert_eq!(
        back.failure_reason.as_deref(),
        Some("health check failed on local: 500")
    );
    assert_eq!(back.rollback_reason.as_deref(), Some("window failed; returned to v1"));
    assert_eq!(store.deployment(back.id).unwrap(), Some(back));
    assert_eq!(store.deployment(DeploymentId::generate(START)).unwrap(), None);
}

pub(crate) fn update_deployment_walks_the_table_with_an_event_per_step(store: &dyn Store, clock: &ManualClock) {
    let d = store
        .insert_deployment(&pending("staging", clock.now(), "v1"), vec![])
        .unwrap();
    let mut previous = d.clone();
    for to in FORWARD {
        clock.advance(Duration::from_secs(2));
        let before = all_events(store).len();
        let got = store.update_deployment(d.id, &mut step_to(clock, to)).unwrap();
        assert_eq!(got.status(), to);
        assert_eq!(store.deployment(d.id).unwrap(), Some(got.clone()), "{to}: saved");
        assert_eq!(got.lifecycle.history().len(), previous.lifecycle.history().len() + 1);
        assert_eq!(got.lifecycle.since(), clock.now());
        assert_eq!(
            got.finished_at,
            (to == DeploymentStatus::Succeeded).then(|| clock.now())
        );
        let new = &all_events(store)[before..];
        assert_eq!(new.len(), 1, "{to}: one event");
        assert_eq!(new[0].kind, EventKind::DeploymentTransition);
        assert_eq!(new[0].deployment_id, Some(d.id));
        assert_eq!(new[0].environment.as_deref(), Some("staging"));
        assert_eq!(
            new[0].data,
            json!({"from": previous.status().as_str(), "to": to.as_str()})
        );
        assert_eq!(new[0].at, clock.now(), "{to}: the event and the record share one time");
        previous = got;
    }
    let statuses: Vec<DeploymentStatus> = previous.lifecycle.history().iter().map(|r| r.to).collect();
    assert_eq!(statuses[0], DeploymentStatus::Pending);
    assert_eq!(statuses[1..], FORWARD);
    assert_eq!(store.verify_events().unwrap(), Ok(5));
}

type Change = Box<dyn FnMut(&mut Deployment) -> Result<Vec<NewEvent>, StoreError>>;

pub(crate) fn refused_deployment_changes_write_nothing(store: &dyn Store, clock: &ManualClock) {
    let done = succeeded(store, clock, "staging", "v1");
    let fresh = store
        .insert_deployment(&pending("staging", clock.now(), "v2"), vec![])
        .unwrap();
    let failed = deployment_through(store, clock, pending("staging", clock.now(), "v3"), &[]);
    let failed = store
        .update_deployment(failed.id, &mut |d: &mut Deployment| {
            d.fail("boom", clock.now())?;
            Ok(vec![])
        })
        .unwrap();
    clock.advance(Duration::from_secs(10));
    let now = clock.now();
    let ev = || NewEvent::new(EventKind::DeploymentTransition, Level::Info, "should not be written");

    let check = |name: &str, id: DeploymentId, mut change: Change, expected: &dyn Fn(&StoreError) -> bool| {
        let before = store.deployment(id).unwrap();
        let events_before = all_events(store);
        let err = store.update_deployment(id, &mut *change).unwrap_err();
        assert!(expected(&err), "{name}: unexpected {err:?}");
        assert_eq!(store.deployment(id).unwrap(), before, "{name}: the row is unchanged");
        assert_eq!(all_events(store), events_before, "{name}: no event");
    };
    let forbidden = |e: &StoreError| matches!(e, StoreError::Transition(TransitionError::Forbidden { .. }));
    let invalid = |field: &'static str| move |e: &StoreError| matches!(e, StoreError::Invalid { what: "deployment", violations, .. } if violations.iter().any(|v| v.field == field));

    check(
        "succeeded → verifying",
        done.id,
        Box::new(move |d| {
            d.transition(DeploymentStatus::Verifying, now)?;
            Ok(vec![ev()])
        }),
        &forbidden,
    );
    check(
        "pending → succeeded",
        fresh.id,
        Box::new(move |d| {
            d.transition(DeploymentStatus::Succeeded, now)?;
            Ok(vec![ev()])
        }),
        &forbidden,
    );
    check(
        "failed without a reason",
        fresh.id,
        Box::new(move |d| {
            d.transition(DeploymentStatus::Failed, now)?;
            Ok(vec![ev()])
        }),
        &invalid("failure_reason"),
    );
    check(
        "failed with a blank reason",
        fresh.id,
        Box::new(move |d| {
            d.fail("  ", now)?;
            Ok(vec![ev()])
        }),
        &invalid("failure_reason"),
    );
    check(
        "rolled back without a reason",
        failed.id,
        Box::new(move |d| {
            d.transition(DeploymentStatus::RolledBack, now)?;
            Ok(vec![ev()])
        }),
        &invalid("rollback_reason"),
    );
    check(
        "a reason erased behind the model's back",
        failed.id,
        Box::new(move |d| {
            d.failure_reason = None;
            Ok(vec![ev()])
        }),
        &invalid("failure_reason"),
    );
    check(
        "a rollback target that has not succeeded",
        fresh.id,
        Box::new(move |d| {
            d.rollback_target = true;
            Ok(vec![ev()])
        }),
        &invalid("rollback_target"),
    );
    check(
        "the id changed",
        fresh.id,
        Box::new(move |d| {
            d.id = DeploymentId::generate(now);
            Ok(vec![ev()])
        }),
        &invalid("id"),
    );
    check(
        "time went backwards",
        fresh.id,
        Box::new(move |d| {
            d.transition(DeploymentStatus::Building, START)?;
            Ok(vec![ev()])
        }),
        &|e| matches!(e, StoreError::Transition(TransitionError::TimeWentBackwards { .. })),
    );
    check(
        "the closure's own error after editing",
        fresh.id,
        Box::new(move |d| {
            d.notes = Some("half-done".into());
            d.transition(DeploymentStatus::Building, now)?;
            Err(StoreError::NotFound {
                what: "host",
                id: "app9".into(),
            })
        }),
        &|e| matches!(e, StoreError::NotFound { what: "host", .. }),
    );
    check(
        "an unknown deployment",
        DeploymentId::generate(now),
        Box::new(move |_| Ok(vec![ev()])),
        &|e| matches!(e, StoreError::NotFound { what: "deployment", .. }),
    );

    // The messages say what was refused and why.
    let err = store
        .update_deployment(done.id, &mut step_to(clock, DeploymentStatus::Verifying))
        .unwrap_err();
    assert!(err.to_string().contains("succeeded → verifying"), "{err}");
    let err = store
        .update_deployment(fresh.id, &mut |d: &mut Deployment| {
            d.transition(DeploymentStatus::Failed, now)?;
            Ok(vec![])
        })
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&fresh.id.to_string()) && msg.contains("failure_reason"),
        "{msg}"
    );
}

pub(crate) fn deployment_history_active_and_last_succeeded(store: &dyn Store, clock: &ManualClock) {
    use DeploymentStatus::*;
    succeeded(store, clock, "staging", "s1");
    // p1 and s2 start in the same millisecond.
    store
        .insert_deployment(&pending("production", clock.now(), "p1"), vec![])
        .unwrap();
    succeeded(store, clock, "staging", "s2");
    succeeded(store, clock, "production", "p2");
    clock.advance(Duration::from_secs(1));
    let s3 = deployment_through(store, clock, pending("staging", clock.now(), "s3"), &[Building]);
    clock.advance(Duration::from_secs(1));
    store
        .update_deployment(s3.id, &mut |d: &mut Deployment| {
            d.fail("build failed", clock.now())?;
            d.roll_back("nothing shipped", clock.now())?;
            Ok(vec![])
        })
        .unwrap();
    clock.advance(Duration::from_secs(1));
    // Two in the same millisecond: insertion order decides which is newer.
    let s4 = store
        .insert_deployment(&pending("staging", clock.now(), "s4"), vec![])
        .unwrap();
    store
        .insert_deployment(&pending("staging", clock.now(), "s5"), vec![])
        .unwrap();
    walk(store, clock, s4.id, &FORWARD[..4]);

    let check = |what: &str, got: Vec<Deployment>, expected: &[&str]| {
        assert_eq!(tags(&got), expected, "{what}");
    };
    check(
        "staging history",
        store.deployments(Some("staging"), 10).unwrap(),
        &["s5", "s4", "s3", "s2", "s1"],
    );
    check("limited", store.deployments(Some("staging"), 2).unwrap(), &["s5", "s4"]);
    check("nothing asked", store.deployments(Some("staging"), 0).unwrap(), &[]);
    check(
        "every environment",
        store.deployments(None, 100).unwrap(),
        &["s5", "s4", "s3", "p2", "s2", "p1", "s1"],
    );
    check(
        "unknown environment",
        store.deployments(Some("nowhere"), 10).unwrap(),
        &[],
    );
    check(
        "active in staging",
        store.active_deployments(Some("staging")).unwrap(),
        &["s5", "s4"],
    );
    check(
        "active anywhere",
        store.active_deployments(None).unwrap(),
        &["s5", "s4", "p1"],
    );
    check(
        "active in production",
        store.active_deployments(Some("production")).unwrap(),
        &["p1"],
    );
    let last = |env: &str| store.last_succeeded(env).unwrap().and_then(|d| d.version_tag);
    assert_eq!(last("staging").as_deref(), Some("s2"));
    assert_eq!(last("production").as_deref(), Some("p2"));
    assert_eq!(last("nowhere"), None);

    // A later manual rollback of s2 leaves s1 as the last succeeded.
    let s2 = store.deployments(Some("staging"), 10).unwrap().remove(3);
    assert_eq!(s2.status(), Succeeded);
    store
        .update_deployment(s2.id, &mut |d: &mut Deployment| {
            d.roll_back("bad release", clock.now())?;
            Ok(vec![])
        })
        .unwrap();
    assert_eq!(last("staging").as_deref(), Some("s1"));
}

pub(crate) fn hand_edited_docs_are_reported_corrupt(store: &dyn Store, clock: &ManualClock) {
    let d = succeeded(store, clock, "staging", "v1");
    let other = store
        .insert_deployment(&pending("staging", clock.now(), "v2"), vec![])
        .unwrap();
    let original = doc_of(&d);
    let id = d.id.to_string();

    // The stored doc with one more, forbidden, step: succeeded → verifying.
    let mut forged = serde_json::to_value(&d).unwrap();
    let at = clock.now().as_millis();
    forged["lifecycle"]["status"] = json!("verifying");
    forged["lifecycle"]["history"]
        .as_array_mut()
        .unwrap()
        .push(json!({"from": "succeeded", "to": "verifying", "at": at}));
    let forged = rollway_model::event::canonical_json(&forged);

    let check = |name: &str, tamper: String, needle: &str| {
        store
            .execute_raw(&format!(
                "UPDATE deployments SET doc = {}, status = 'succeeded' WHERE id = '{id}'",
                quoted(&original)
            ))
            .unwrap();
        assert_eq!(
            store.deployment(d.id).unwrap(),
            Some(d.clone()),
            "{name}: intact before"
        );
        store.execute_raw(&tamper).unwrap();
        let reads: [(&str, Result<(), StoreError>); 3] = [
            ("deployment", store.deployment(d.id).map(drop)),
            ("deployments", store.deployments(Some("staging"), 10).map(drop)),
            (
                "update_deployment",
                store
                    .update_deployment(d.id, &mut |_: &mut Deployment| Ok(vec![]))
                    .map(drop),
            ),
        ];
        for (read, result) in reads {
            let err = result.expect_err(name);
            assert!(
                matches!(&err, StoreError::Corrupt { what: "deployment", id: got, .. } if *got == id),
                "{name} via {read}: {err}"
            );
            let msg = err.to_string();
            assert!(msg.contains(&id) && msg.contains(needle), "{name} via {read}: {msg}");
        }
    };
    check(
        "a forbidden lifecycle edge",
        format!("UPDATE deployments SET doc = {} WHERE id = '{id}'", quoted(&forged)),
        "forbidden deployment transition succeeded → verifying",
    );
    // Its status column still says succeeded, so this query reads it too.
    let err = store.last_succeeded("staging").unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { what: "deployment", .. }), "{err}");
    check(
        "the edge and the status column",
        format!(
            "UPDATE deployments SET doc = {}, status = 'verifying' WHERE id = '{id}'",
            quoted(&forged)
        ),
        "forbidden deployment transition succeeded → verifying",
    );
    check(
        "the status column alone",
        format!("UPDATE deployments SET status = 'failed' WHERE id = '{id}'"),
        "column status holds 'failed' but its doc says 'succeeded'",
    );
    check(
        "another deployment's doc",
        format!(
            "UPDATE deployments SET doc = {} WHERE id = '{id}'",
            quoted(&doc_of(&other))
        ),
        "its doc is the record of",
    );
    check(
        "not JSON",
        format!("UPDATE deployments SET doc = 'not json' WHERE id = '{id}'"),
        "its doc",
    );
    // Active deployments are read too: the forged one is in progress.
    store
        .execute_raw(&format!(
            "UPDATE deployments SET doc = {}, status = 'verifying' WHERE id = '{id}'",
            quoted(&forged)
        ))
        .unwrap();
    let err = store.active_deployments(None).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { what: "deployment", .. }), "{err}");
    assert!(
        all_events(store)
            .iter()
            .all(|e| e.kind == EventKind::DeploymentTransition)
    );

    // Other entities replay their own tables the same way.
    let run = store.insert_run(&full_run(clock.now()), vec![]).unwrap();
    let job = store
        .insert_job(&full_job(run.id, "lint", clock.now()), vec![])
        .unwrap();
    let mut forged_job = serde_json::to_value(&job).unwrap();
    forged_job["lifecycle"]["history"]
        .as_array_mut()
        .unwrap()
        .push(json!({"from": "pending", "to": "success", "at": at}));
    forged_job["lifecycle"]["status"] = json!("success");
    store
        .execute_raw(&format!(
            "UPDATE jobs SET doc = {}, status = 'success' WHERE id = '{}'",
            quoted(&rollway_model::event::canonical_json(&forged_job)),
            job.id
        ))
        .unwrap();
    let err = store.job(job.id).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Corrupt { what: "job", .. }), "{msg}");
    assert!(
        msg.contains(&job.id.to_string()) && msg.contains("forbidden job transition pending → success"),
        "{msg}"
    );
}

// ---- verifications ----

pub(crate) fn verifications_round_trip_and_upsert(store: &dyn Store, clock: &ManualClock) {
    let d = succeeded(store, clock, "staging", "v1");
    let v = full_verification(d.id, clock.now());
    let started = NewEvent::new(EventKind::DeployStep, Level::Info, "window started");
    assert_eq!(store.put_verification(&v, vec![started.clone()]).unwrap(), v);
    assert_eq!(store.verifications(d.id).unwrap(), vec![v.clone()]);
    let ev = all_events(store).pop().unwrap();
    assert_eq!(
        (ev.deployment_id, ev.environment.as_deref()),
        (Some(d.id), Some("staging"))
    );

    clock.advance(Duration::from_secs(60));
    let mut done = v.clone();
    done.hosts[1].result = Some(CheckResult::Pass);
    done.hosts[1].completed_at = Some(clock.now());
    done.hosts[1].http_status = Some(204);
    done.result = done.summarize();
    assert_eq!(done.result, Some(CheckResult::Fail));
    assert_eq!(store.put_verification(&done, vec![]).unwrap(), done);
    let second = full_verification(d.id, clock.now());
    store.put_verification(&second, vec![]).unwrap();
    assert_eq!(
        store.verifications(d.id).unwrap(),
        vec![done, second],
        "replaced in place, listed in the order first put"
    );
    assert_eq!(store.verifications(DeploymentId::generate(START)).unwrap(), vec![]);

    let events = all_events(store).len();
    let orphan = full_verification(DeploymentId::generate(START), clock.now());
    let err = store.put_verification(&orphan, vec![started]).unwrap_err();
    assert!(matches!(err, StoreError::NotFound { what: "deployment", .. }), "{err}");
    assert_eq!(all_events(store).len(), events);
}

// ---- pipeline runs and jobs ----

pub(crate) fn runs_and_jobs_round_trip_and_update(store: &dyn Store, clock: &ManualClock) {
    let run = full_run(clock.now());
    let started = NewEvent::new(EventKind::PipelineStarted, Level::Info, "pipeline started");
    assert_eq!(store.insert_run(&run, vec![started]).unwrap(), run);
    assert_eq!(store.run(run.id).unwrap(), Some(run.clone()));
    let ev = all_events(store).pop().unwrap();
    assert_eq!(
        (ev.pipeline_run_id, ev.environment.as_deref()),
        (Some(run.id), Some("staging"))
    );

    clock.advance(Duration::from_secs(1));
    let running = store
        .update_run(run.id, &mut |r: &mut PipelineRun| {
            r.transition(PipelineStatus::Running, clock.now())?;
            Ok(vec![])
        })
        .unwrap();
    assert_eq!(running.started_at(), Some(clock.now()));
    assert_eq!(store.run(run.id).unwrap(), Some(running.clone()));

    let lint = full_job(run.id, "lint", clock.now());
    let mut never = full_job(run.id, "deploy", clock.now());
    never.job_type = JobType::Custom;
    assert_eq!(store.insert_job(&lint, vec![]).unwrap(), lint);
    store.insert_job(&never, vec![]).unwrap();
    clock.advance(Duration::from_secs(1));
    let lint = store
        .update_job(lint.id, &mut |j: &mut Job| {
            j.transition(JobStatus::Running, clock.now())?;
            Ok(vec![NewEvent::new(EventKind::JobStarted, Level::Info, "lint started")])
        })
        .unwrap();
    clock.advance(Duration::from_secs(3));
    let lint = store
        .update_job(lint.id, &mut |j: &mut Job| {
            j.exit_code = Some(-9);
            j.transition(JobStatus::Failure, clock.now())?;
            Ok(vec![NewEvent::new(EventKind::JobFailed, Level::Error, "lint failed")])
        })
        .unwrap();
    assert_eq!((lint.start_time, lint.end_time), (Some(secs(2)), Some(secs(5))));
    let never = store
        .update_job(never.id, &mut |j: &mut Job| {
            j.transition(JobStatus::Cancelled, clock.now())?;
            Ok(vec![NewEvent::new(
                EventKind::JobCancelled,
                Level::Warn,
                "deploy cancelled",
            )])
        })
        .unwrap();
    assert_eq!((never.start_time, never.end_time), (None, Some(secs(5))));
    assert_eq!(store.job(lint.id).unwrap(), Some(lint.clone()));
    assert_eq!(
        store.jobs(run.id).unwrap(),
        vec![lint.clone(), never.clone()],
        "in insertion order"
    );
    let job_events: Vec<_> = all_events(store)
        .into_iter()
        .filter(|e| e.job_id.is_some())
        .map(|e| (e.kind, e.job_id, e.pipeline_run_id, e.environment))
        .collect();
    let staging = Some("staging".to_owned());
    assert_eq!(
        job_events,
        [
            (EventKind::JobStarted, Some(lint.id), Some(run.id), staging.clone()),
            (EventKind::JobFailed, Some(lint.id), Some(run.id), staging.clone()),
            (EventKind::JobCancelled, Some(never.id), Some(run.id), staging),
        ]
    );

    // A job's rules hold on every save: end_time only once it ended.
    let err = store
        .update_job(lint.id, &mut |j: &mut Job| {
            j.end_time = None;
            Ok(vec![])
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid { what: "job", .. }), "{err}");
    assert_eq!(store.job(lint.id).unwrap(), Some(lint.clone()));
    let err = store
        .update_job(never.id, &mut |j: &mut Job| {
            j.transition(JobStatus::Running, clock.now())?;
            Ok(vec![])
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::Transition(_)), "{err}");

    clock.advance(Duration::from_secs(1));
    let later = PipelineRun::new("bob", clock.now());
    store.insert_run(&later, vec![]).unwrap();
    let ids = |runs: Vec<PipelineRun>| runs.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(store.runs(10).unwrap()), [later.id, run.id]);
    assert_eq!(ids(store.runs(1).unwrap()), [later.id]);
    assert_eq!(store.jobs(later.id).unwrap(), vec![]);
    assert_eq!(store.job(JobId::generate(START)).unwrap(), None);
    assert_eq!(store.run(PipelineRunId::generate(START)).unwrap(), None);
    assert_eq!(store.verify_events().unwrap(), Ok(4));
}

pub(crate) fn job_logs_are_appended(store: &dyn Store, clock: &ManualClock) {
    let run = store.insert_run(&full_run(clock.now()), vec![]).unwrap();
    let mut job = full_job(run.id, "build", clock.now());
    job.logs = "$ npm run build\n".into();
    let job = store.insert_job(&job, vec![]).unwrap();
    assert_eq!(store.job(job.id).unwrap().unwrap().logs, "$ npm run build\n");
    let events = all_events(store).len();

    let big = "x".repeat(256 * 1024) + "\n";
    let mut expected = job.logs.clone();
    let check = |chunk: &str, stored_as: &str, expected: &mut String| {
        store.append_job_log(job.id, chunk).unwrap();
        expected.push_str(stored_as);
        assert_eq!(&store.job(job.id).unwrap().unwrap().logs, expected);
    };
    check("compiling…\n", "compiling…\n", &mut expected);
    check("", "", &mut expected);
    check("nul\0byte\n", "nul\u{FFFD}byte\n", &mut expected);
    for _ in 0..4 {
        check(&big, &big, &mut expected);
    }
    assert_eq!(all_events(store).len(), events, "appends write no events");

    // Updates keep the log unless they change it.
    clock.advance(Duration::from_secs(1));
    let running = store
        .update_job(job.id, &mut |j: &mut Job| {
            j.transition(JobStatus::Running, clock.now())?;
            Ok(vec![])
        })
        .unwrap();
    assert_eq!(running.logs, expected);
    store.append_job_log(job.id, "done\n").unwrap();
    expected.push_str("done\n");
    let replaced = store
        .update_job(job.id, &mut |j: &mut Job| {
            assert_eq!(j.logs, expected, "the update sees every append");
            j.logs = "truncated\n".into();
            Ok(vec![])
        })
        .unwrap();
    assert_eq!(replaced.logs, "truncated\n");
    assert_eq!(store.jobs(run.id).unwrap()[0].logs, "truncated\n");

    let err = store.append_job_log(JobId::generate(START), "x").unwrap_err();
    assert!(matches!(err, StoreError::NotFound { what: "job", .. }), "{err}");
}

// ---- stacks and resources ----

/// A pending deployment whose `stacks_order` lists `stacks`.
fn with_stacks(env: &str, at: Timestamp, stacks: &[&str]) -> Deployment {
    let mut d = pending(env, at, "v1");
    d.stacks_order = stacks.iter().map(|s| (*s).to_owned()).collect();
    d
}

/// Walks a recorded stack through `path`, one second a step; the first
/// refusal ends the walk.
fn stack_through(
    store: &dyn Store,
    clock: &ManualClock,
    id: StackId,
    path: &[StackStatus],
) -> Result<Stack, StoreError> {
    let mut last = None;
    for &to in path {
        clock.advance(Duration::from_secs(1));
        last = Some(store.update_stack(id, &mut |s: &mut Stack| {
            s.transition(to, clock.now())?;
            Ok(vec![])
        })?);
    }
    Ok(last.expect("a path of at least one step"))
}

const TO_DEPLOYED: [StackStatus; 4] = [
    StackStatus::Synthesizing,
    StackStatus::Synthesized,
    StackStatus::Deploying,
    StackStatus::Deployed,
];

pub(crate) fn stacks_and_resources_round_trip_and_update(store: &dyn Store, clock: &ManualClock) {
    use StackStatus::*;
    let d = store
        .insert_deployment(
            &with_stacks("staging", clock.now(), &["network", "database", "app"]),
            vec![],
        )
        .unwrap();
    let db = full_stack(d.id, "database", clock.now());
    assert_eq!(store.put_stack(&db, vec![]).unwrap(), db);
    let app = Stack::new(d.id, "app", clock.now());
    store.put_stack(&app, vec![]).unwrap();
    assert_eq!(store.stacks(d.id).unwrap(), vec![db.clone(), app.clone()]);
    // The database depends on the network: deployed first.
    let network = store
        .put_stack(&Stack::new(d.id, "network", clock.now()), vec![])
        .unwrap();
    let network = stack_through(store, clock, network.id, &TO_DEPLOYED).unwrap();

    let mut current = db.clone();
    for to in [Synthesizing, Synthesized, Deploying, Deployed] {
        clock.advance(Duration::from_secs(1));
        current = store
            .update_stack(db.id, &mut |s: &mut Stack| {
                s.transition(to, clock.now())?;
                Ok(vec![NewEvent::new(
                    EventKind::DeployStep,
                    Level::Info,
                    format!("database {to}"),
                )])
            })
            .unwrap();
        assert_eq!(current.status(), to);
    }
    assert_eq!(store.stacks(d.id).unwrap()[0], current);
    assert_eq!(store.stacks(d.id).unwrap()[2], network);
    let ev = all_events(store).pop().unwrap();
    assert_eq!(
        (ev.deployment_id, ev.environment.as_deref()),
        (Some(d.id), Some("staging"))
    );

    // A stale whole copy cannot undo newer steps.
    let events = all_events(store).len();
    let err = store.put_stack(&db, vec![]).unwrap_err();
    assert!(matches!(err, StoreError::Stale { what: "stack", .. }), "{err}");
    assert!(err.to_string().contains("deployed"), "{err}");
    let err = store
        .put_stack(&Stack::new(d.id, "database", clock.now()), vec![])
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Exists { what: "stack", .. }),
        "a name is unique per deployment: {err}"
    );
    let err = store
        .update_stack(app.id, &mut |s: &mut Stack| {
            s.transition(Deployed, clock.now())?;
            Ok(vec![])
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::Transition(_)), "{err}");
    assert_eq!(store.stacks(d.id).unwrap(), vec![current.clone(), app.clone(), network]);
    assert_eq!(all_events(store).len(), events, "refusals write no events");

    let r = full_resource(db.id, clock.now());
    assert_eq!(store.put_resource(&r, vec![]).unwrap(), r);
    clock.advance(Duration::from_secs(1));
    let mut available = r.clone();
    available.transition(ResourceStatus::Available, clock.now()).unwrap();
    let created = NewEvent::new(EventKind::DeployStep, Level::Info, "database available");
    assert_eq!(store.put_resource(&available, vec![created]).unwrap(), available);
    let ev = all_events(store).pop().unwrap();
    assert_eq!(
        (ev.deployment_id, ev.environment.as_deref()),
        (Some(d.id), Some("staging"))
    );
    let other = Resource::new(db.id, "AWS::S3::Bucket", "Uploads", clock.now());
    store.put_resource(&other, vec![]).unwrap();
    assert_eq!(store.resources(db.id).unwrap(), vec![available.clone(), other]);
    let err = store.put_resource(&r, vec![]).unwrap_err();
    assert!(matches!(err, StoreError::Stale { what: "resource", .. }), "{err}");
    assert_eq!(store.resources(db.id).unwrap()[0], available);
    assert_eq!(store.resources(app.id).unwrap(), vec![]);
}

pub(crate) fn parents_must_exist_and_ids_are_unique(store: &dyn Store, clock: &ManualClock) {
    let now = clock.now();
    let d = store
        .insert_deployment(&with_stacks("staging", now, &["network", "db"]), vec![])
        .unwrap();
    let run = store.insert_run(&full_run(now), vec![]).unwrap();
    let job = store.insert_job(&full_job(run.id, "lint", now), vec![]).unwrap();
    let stack = store.put_stack(&full_stack(d.id, "db", now), vec![]).unwrap();
    let events = all_events(store).len();
    let ev = || vec![NewEvent::new(EventKind::DeployStep, Level::Info, "never written")];
    let missing_d = DeploymentId::generate(now);

    let check = |name: &str, result: Result<(), StoreError>, what: &str, id: String| {
        let err = result.expect_err(name);
        let (got_what, got_id) = match &err {
            StoreError::NotFound { what, id } | StoreError::Exists { what, id } => (*what, id.clone()),
            other => panic!("{name}: {other}"),
        };
        assert_eq!(got_what, what, "{name}: {err}");
        assert!(got_id.contains(&id), "{name}: {err}");
        assert_eq!(all_events(store).len(), events, "{name}: no event");
    };
    check(
        "a verification of an unknown deployment",
        store
            .put_verification(&full_verification(missing_d, now), ev())
            .map(drop),
        "deployment",
        missing_d.to_string(),
    );
    check(
        "a stack of an unknown deployment",
        store.put_stack(&full_stack(missing_d, "db", now), ev()).map(drop),
        "deployment",
        missing_d.to_string(),
    );
    let missing_run = PipelineRunId::generate(now);
    check(
        "a job of an unknown run",
        store.insert_job(&full_job(missing_run, "lint", now), ev()).map(drop),
        "pipeline run",
        missing_run.to_string(),
    );
    let missing_stack = StackId::generate(now);
    check(
        "a resource of an unknown stack",
        store.put_resource(&full_resource(missing_stack, now), ev()).map(drop),
        "stack",
        missing_stack.to_string(),
    );
    check(
        "a deployment inserted twice",
        store.insert_deployment(&d, ev()).map(drop),
        "deployment",
        d.id.to_string(),
    );
    check(
        "a run inserted twice",
        store.insert_run(&run, ev()).map(drop),
        "pipeline run",
        run.id.to_string(),
    );
    check(
        "a job inserted twice",
        store.insert_job(&job, ev()).map(drop),
        "job",
        job.id.to_string(),
    );
    check(
        "a second job of the same name",
        store.insert_job(&full_job(run.id, "lint", now), ev()).map(drop),
        "job",
        "'lint'".into(),
    );
    check(
        "an unknown job updated",
        store
            .update_job(JobId::generate(now), &mut |_: &mut Job| Ok(vec![]))
            .map(drop),
        "job",
        String::new(),
    );
    check(
        "an unknown run updated",
        store
            .update_run(PipelineRunId::generate(now), &mut |_: &mut PipelineRun| Ok(vec![]))
            .map(drop),
        "pipeline run",
        String::new(),
    );
    check(
        "an unknown stack updated",
        store
            .update_stack(StackId::generate(now), &mut |_: &mut Stack| Ok(vec![]))
            .map(drop),
        "stack",
        String::new(),
    );
    assert_eq!(store.stacks(d.id).unwrap(), vec![stack]);
}

// ---- concurrency and masking ----

pub(crate) fn concurrent_update_deployment_serialises(store: &dyn Store, clock: &ManualClock) {
    let other = rollway_store::open(store.location(), std::sync::Arc::new(clock.clone())).unwrap();
    let stores: [&dyn Store; 2] = [store, &*other];

    // Both threads try every step: exactly one wins each.
    let d = store
        .insert_deployment(&pending("staging", clock.now(), "v1"), vec![])
        .unwrap();
    let wins: Vec<Vec<bool>> = std::thread::scope(|s| {
        let handles: Vec<_> = stores
            .iter()
            .map(|&target| {
                s.spawn(move || {
                    FORWARD
                        .iter()
                        .map(|&to| match target.update_deployment(d.id, &mut step_to(clock, to)) {
                            Ok(got) => {
                                assert_eq!(got.status(), to);
                                true
                            }
                            Err(StoreError::Transition(TransitionError::Forbidden { .. })) => false,
                            Err(e) => panic!("{to}: {e}"),
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, to) in FORWARD.iter().enumerate() {
        assert_eq!(
            wins.iter().filter(|w| w[i]).count(),
            1,
            "{to}: exactly one winner: {wins:?}"
        );
    }
    let steps: Vec<serde_json::Value> = all_events(store).iter().map(|e| e.data["to"].clone()).collect();
    let expected: Vec<serde_json::Value> = FORWARD.iter().map(|s| json!(s.as_str())).collect();
    assert_eq!(steps, expected, "one event per step, in order");
    assert_eq!(
        store.deployment(d.id).unwrap().unwrap().status(),
        DeploymentStatus::Succeeded
    );

    // Read-modify-write from four threads on two instances loses nothing.
    const EACH: usize = 15;
    let e = store
        .insert_deployment(&pending("staging", clock.now(), "v2"), vec![])
        .unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let target = stores[t % 2];
            s.spawn(move || {
                for i in 0..EACH {
                    target
                        .update_deployment(e.id, &mut |d: &mut Deployment| {
                            d.stacks_order.push(format!("t{t}-{i}"));
                            Ok(vec![NewEvent::new(
                                EventKind::DeployStep,
                                Level::Info,
                                format!("t{t}-{i}"),
                            )])
                        })
                        .unwrap();
                }
            });
        }
    });
    let order = store.deployment(e.id).unwrap().unwrap().stacks_order;
    assert_eq!(order.len(), 4 * EACH, "no lost update");
    let messages: Vec<String> = all_events(store).into_iter().skip(5).map(|e| e.message).collect();
    assert_eq!(
        messages, order,
        "each update's event was written with it, in the same order"
    );
    for t in 0..4 {
        let mine: Vec<&String> = order.iter().filter(|s| s.starts_with(&format!("t{t}-"))).collect();
        let expected: Vec<String> = (0..EACH).map(|i| format!("t{t}-{i}")).collect();
        assert_eq!(mine, expected.iter().collect::<Vec<_>>(), "thread {t} in its order");
    }
    assert_eq!(store.verify_events().unwrap(), Ok((5 + 4 * EACH) as i64));
}

pub(crate) fn stored_free_text_is_masked(store: &dyn Store, clock: &ManualClock) {
    let canary = "canary-5e1d0c7b9a";
    store.set_masker(rollway_model::Masker::new([canary]));
    let now = clock.now();

    let mut d = with_stacks("staging", now, &["network", "db"]);
    d.notes = Some(format!("note {canary}"));
    let d = store.insert_deployment(&d, vec![]).unwrap();
    let d = store
        .update_deployment(d.id, &mut |d: &mut Deployment| {
            d.fail(format!("DATABASE_URL=postgres://u:{canary}@db failed"), now)?;
            Ok(vec![])
        })
        .unwrap();
    let d = store
        .update_deployment(d.id, &mut |d: &mut Deployment| {
            d.roll_back(format!("because {canary}"), now)?;
            Ok(vec![])
        })
        .unwrap();

    let mut v = full_verification(d.id, now);
    v.hosts[0].log_excerpt = Some(format!("TOKEN={canary}\n"));
    let v = store.put_verification(&v, vec![]).unwrap();

    let mut stack = full_stack(d.id, "db", now);
    stack.outputs.insert("URL".into(), format!("postgres://u:{canary}@db"));
    stack.error_message = Some(format!("exit 1: {canary}"));
    let stack = store.put_stack(&stack, vec![]).unwrap();
    let mut r = full_resource(stack.id, now);
    r.properties.insert("Password".into(), json!({"value": canary}));
    r.tags.insert("secret".into(), canary.into());
    let r = store.put_resource(&r, vec![]).unwrap();

    let run = store.insert_run(&full_run(now), vec![]).unwrap();
    let mut job = full_job(run.id, "test", now);
    job.logs = format!("echo {canary}\n");
    store.insert_job(&job, vec![]).unwrap();
    store.append_job_log(job.id, &format!("again {canary}\n")).unwrap();

    let stored = [
        serde_json::to_string(&store.deployment(d.id).unwrap()).unwrap(),
        serde_json::to_string(&store.verifications(d.id).unwrap()).unwrap(),
        serde_json::to_string(&store.stacks(d.id).unwrap()).unwrap(),
        serde_json::to_string(&store.resources(stack.id).unwrap()).unwrap(),
        serde_json::to_string(&store.job(job.id).unwrap()).unwrap(),
        serde_json::to_string(&(&d, &v, &stack, &r)).unwrap(),
    ];
    for (i, text) in stored.iter().enumerate() {
        assert!(!text.contains(canary), "read {i} leaks the canary: {text}");
        assert!(text.contains("****"), "read {i} shows no mask: {text}");
    }
    assert_eq!(store.job(job.id).unwrap().unwrap().logs, "echo ****\nagain ****\n");
    assert_eq!(
        d.failure_reason.as_deref(),
        Some("DATABASE_URL=postgres://u:****@db failed")
    );
}

// ---- the model's rules, kept where records enter the store ----

/// `result` must be `StoreError::Invalid` about `what`, with exactly the
/// (field, rule) pairs of `expected` (in any order), and nothing written:
/// `unchanged` still holds and no event was appended.
fn refused<T: std::fmt::Debug>(
    store: &dyn Store,
    name: &str,
    result: Result<T, StoreError>,
    what: &str,
    expected: &[(&str, &str)],
    events_before: usize,
) {
    let err = result.expect_err(name);
    let StoreError::Invalid {
        what: got_what,
        violations,
        ..
    } = &err
    else {
        panic!("{name}: expected Invalid, got {err}");
    };
    assert_eq!(*got_what, what, "{name}: {err}");
    let mut got: Vec<(String, String)> = violations
        .iter()
        .map(|v| (v.field.clone(), v.rule.to_owned()))
        .collect();
    let mut want: Vec<(String, String)> = expected
        .iter()
        .map(|(f, r)| ((*f).to_owned(), (*r).to_owned()))
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "{name}: {err}");
    assert!(err.to_string().contains("nothing was written"), "{name}: {err}");
    assert_eq!(all_events(store).len(), events_before, "{name}: no event");
}

pub(crate) fn artifacts_keep_the_model_rules(store: &dyn Store, clock: &ManualClock) {
    use rollway_model::rules::artifact::{EXPIRES_IN_FUTURE, SIZE_POSITIVE};
    let now = clock.now();
    let check = |name: &str, edit: &dyn Fn(&mut Artifact), expected: &[(&str, &str)]| {
        let mut a = full_artifact(now, digest("a1", '0'), digest("c1", '0'));
        edit(&mut a);
        let before = all_events(store).len();
        if expected.is_empty() {
            assert_eq!(store.insert_artifact(&a, built(&a)).unwrap(), a, "{name}");
        } else {
            refused(
                store,
                name,
                store.insert_artifact(&a, built(&a)),
                "artifact",
                expected,
                before,
            );
            assert_eq!(store.artifact(a.id).unwrap(), None, "{name}: not recorded");
        }
    };
    check("a good artifact", &|_| {}, &[]);
    check(
        "an empty artifact",
        &|a| a.size_bytes = 0,
        &[("size_bytes", SIZE_POSITIVE)],
    );
    check(
        "an archive of no files",
        &|a| a.contents.clear(),
        &[("contents", SIZE_POSITIVE)],
    );
    check(
        "expiring as it is created",
        &|a| a.expires_at = a.created_at,
        &[("expires_at", EXPIRES_IN_FUTURE)],
    );
    check(
        "expired already",
        &|a| {
            a.created_at = Timestamp::from_millis(now.as_millis() - 10_000);
            a.expires_at = Timestamp::from_millis(now.as_millis() - 1);
        },
        &[("expires_at", EXPIRES_IN_FUTURE)],
    );
    check(
        "empty and expired",
        &|a| {
            a.size_bytes = 0;
            a.expires_at = now;
        },
        &[("size_bytes", SIZE_POSITIVE), ("expires_at", EXPIRES_IN_FUTURE)],
    );
    // The store's clock decides "now": what was valid a moment ago is refused later.
    let mut a = full_artifact(now, digest("a2", '0'), digest("c2", '0'));
    a.expires_at = now.plus(Duration::from_secs(5));
    clock.advance(Duration::from_secs(5));
    let before = all_events(store).len();
    refused(
        store,
        "expired by the clock",
        store.insert_artifact(&a, built(&a)),
        "artifact",
        &[("expires_at", EXPIRES_IN_FUTURE)],
        before,
    );
    // A renewal moves an expired artifact's expiry past now, never to it.
    let mut b = full_artifact(clock.now(), digest("a3", '0'), digest("c3", '0'));
    b.expires_at = clock.now().plus(Duration::from_secs(5));
    store.insert_artifact(&b, built(&b)).unwrap();
    clock.advance(Duration::from_secs(10));
    let before = all_events(store).len();
    refused(
        store,
        "renewed to now",
        store.renew_artifact(b.id, clock.now(), built(&b)),
        "artifact",
        &[("expires_at", EXPIRES_IN_FUTURE)],
        before,
    );
    let later = clock.now().plus(Duration::from_secs(3600));
    assert_eq!(store.renew_artifact(b.id, later, built(&b)).unwrap().expires_at, later);
    assert_eq!(store.artifact(b.id).unwrap().unwrap().expires_at, later);
    assert_eq!(all_events(store).len(), before + 1, "the renewal's event");
}

pub(crate) fn stacks_order_is_kept_as_stacks_are_recorded(store: &dyn Store, clock: &ManualClock) {
    use DeploymentStatus as D;
    use rollway_model::rules::deployment::STACKS_ORDER;
    let order = [("stacks_order", STACKS_ORDER)];
    let stack = |d: &Deployment, name: &str, deps: &[&str]| {
        let mut s = Stack::new(d.id, name, clock.now());
        s.dependencies = deps.iter().map(|x| (*x).to_owned()).collect();
        s
    };

    // A name twice is refused when the deployment is inserted.
    let before = all_events(store).len();
    let twice = with_stacks("staging", clock.now(), &["db", "db"]);
    refused(
        store,
        "a name twice",
        store.insert_deployment(&twice, vec![]),
        "deployment",
        &order,
        before,
    );
    assert_eq!(store.deployment(twice.id).unwrap(), None);

    // Stacks are recorded after their deployment, in any order; each must be
    // listed, after what it depends on.
    let d = store
        .insert_deployment(&with_stacks("staging", clock.now(), &["db", "app"]), vec![])
        .unwrap();
    store.put_stack(&stack(&d, "app", &["db"]), vec![]).unwrap();
    let before = all_events(store).len();
    refused(
        store,
        "an unlisted stack",
        store.put_stack(&stack(&d, "cache", &[]), vec![]),
        "stack",
        &order,
        before,
    );
    refused(
        store,
        "a dependency that is no stack",
        store.put_stack(&stack(&d, "db", &["network"]), vec![]),
        "stack",
        &order,
        before,
    );
    // Reordering the deployment against its recorded stacks is refused too.
    refused(
        store,
        "a dependent before its dependency",
        store.update_deployment(d.id, &mut |d: &mut Deployment| {
            d.stacks_order = vec!["app".into(), "db".into()];
            Ok(vec![NewEvent::new(EventKind::DeployStep, Level::Info, "reordered")])
        }),
        "deployment",
        &order,
        before,
    );
    assert_eq!(store.stacks(d.id).unwrap().len(), 1);

    // Deploying needs every listed stack recorded.
    walk(store, clock, d.id, &[D::Building, D::Synthesizing]);
    let before = all_events(store).len();
    refused(
        store,
        "a listed stack never recorded",
        store.update_deployment(d.id, &mut step_to(clock, D::Deploying)),
        "deployment",
        &[order[0], order[0]],
        before,
    );
    store.put_stack(&stack(&d, "db", &[]), vec![]).unwrap();
    assert_eq!(walk(store, clock, d.id, &[D::Deploying]).status(), D::Deploying);
    // A deployment that failed before deploying keeps only the stacks it got.
    let early = store
        .insert_deployment(&with_stacks("staging", clock.now(), &["db", "app"]), vec![])
        .unwrap();
    clock.advance(Duration::from_secs(1));
    let failed = store
        .update_deployment(early.id, &mut |d: &mut Deployment| {
            d.fail("interrupted before its stacks were recorded", clock.now())?;
            Ok(vec![])
        })
        .unwrap();
    assert_eq!(failed.status(), D::Failed);
}

pub(crate) fn stack_contracts_hold_for_outputs_dependencies_and_resources(store: &dyn Store, clock: &ManualClock) {
    use rollway_model::rules::resource::{PROPERTIES_CONTRACT, REQUIRED_TAGS};
    use rollway_model::rules::stack::{DEPENDENCIES_DEPLOYED, OUTPUTS_CONTRACT};
    use rollway_model::{PropertyType, ResourceContract, StackContract};
    let d = store
        .insert_deployment(&with_stacks("staging", clock.now(), &["db", "app"]), vec![])
        .unwrap();
    let mut db = Stack::new(d.id, "db", clock.now());
    db.secret_outputs = vec!["PASSWORD".into()];
    db.contract = StackContract {
        outputs: vec!["HOST".into()],
        secret_outputs: vec!["PASSWORD".into()],
        resources: ResourceContract {
            resource_type: Some("AWS::RDS::DBInstance".into()),
            required: BTreeMap::from([("Engine".to_owned(), Some(json!("postgres")))]),
            types: BTreeMap::from([("Port".to_owned(), PropertyType::Integer)]),
        },
        required_tags: vec!["owner".into()],
    };
    let db = store.put_stack(&db, vec![]).unwrap();
    assert_eq!(
        store.stacks(d.id).unwrap()[0].contract,
        db.contract,
        "the contract is stored with the stack"
    );
    let mut app = Stack::new(d.id, "app", clock.now());
    app.dependencies = vec!["db".into()];
    let app = store.put_stack(&app, vec![]).unwrap();

    // A dependent may not deploy before its dependency is deployed.
    stack_through(store, clock, app.id, &TO_DEPLOYED[..2]).unwrap();
    let before = all_events(store).len();
    refused(
        store,
        "deploying before the dependency",
        stack_through(store, clock, app.id, &[StackStatus::Deploying]),
        "stack",
        &[("dependencies", DEPENDENCIES_DEPLOYED)],
        before,
    );

    // Resources: held to the contract once available.
    let check = |name: &str, props: Value, tags: &[(&str, &str)], status: ResourceStatus, expected: &[(&str, &str)]| {
        let mut r = Resource::new(db.id, "AWS::RDS::DBInstance", name, clock.now());
        r.properties = props.as_object().unwrap().clone();
        r.tags = tags.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        if status != ResourceStatus::Creating {
            r.transition(status, clock.now()).unwrap();
        }
        let before = all_events(store).len();
        let ev = vec![NewEvent::new(
            EventKind::DeployStep,
            Level::Info,
            format!("resource {name}"),
        )];
        if expected.is_empty() {
            store.put_resource(&r, ev).unwrap();
        } else {
            refused(store, name, store.put_resource(&r, ev), "resource", expected, before);
            assert!(
                store.resources(db.id).unwrap().iter().all(|x| x.id != r.id),
                "{name}: not recorded"
            );
        }
    };
    use ResourceStatus::{Available, Creating, Failed};
    check(
        "Good",
        json!({"Engine": "postgres", "Port": 5432}),
        &[("owner", "ops")],
        Available,
        &[],
    );
    check(
        "WrongValue",
        json!({"Engine": "mysql", "Port": 5432}),
        &[("owner", "ops")],
        Available,
        &[("properties.Engine", PROPERTIES_CONTRACT)],
    );
    check(
        "WrongType",
        json!({"Engine": "postgres", "Port": "5432"}),
        &[("owner", "ops")],
        Available,
        &[("properties.Port", PROPERTIES_CONTRACT)],
    );
    check(
        "Untagged",
        json!({"Engine": "postgres"}),
        &[("owner", " ")],
        Available,
        &[("properties.Port", PROPERTIES_CONTRACT), ("tags.owner", REQUIRED_TAGS)],
    );
    check("StillCreating", json!({}), &[], Creating, &[]);
    check("FailedOne", json!({}), &[], Failed, &[]);

    // Outputs: a deployed stack has reported its contract's outputs, and no secret one in clear.
    stack_through(store, clock, db.id, &TO_DEPLOYED[..3]).unwrap();
    let before = all_events(store).len();
    refused(
        store,
        "deployed without its outputs",
        stack_through(store, clock, db.id, &[StackStatus::Deployed]),
        "stack",
        &[("outputs.HOST", OUTPUTS_CONTRACT)],
        before,
    );
    refused(
        store,
        "a secret output in clear",
        store.update_stack(db.id, &mut |s: &mut Stack| {
            s.outputs = BTreeMap::from([("HOST".into(), "db.internal".into()), ("PASSWORD".into(), "x".into())]);
            s.transition(StackStatus::Deployed, clock.now())?;
            Ok(vec![])
        }),
        "stack",
        &[("outputs.PASSWORD", OUTPUTS_CONTRACT)],
        before,
    );
    let deployed = store
        .update_stack(db.id, &mut |s: &mut Stack| {
            s.outputs = BTreeMap::from([("HOST".into(), "db.internal".into())]);
            s.transition(StackStatus::Deployed, clock.now())?;
            Ok(vec![])
        })
        .unwrap();
    assert_eq!(deployed.status(), StackStatus::Deployed);
    assert_eq!(
        stack_through(store, clock, app.id, &[StackStatus::Deploying])
            .unwrap()
            .status(),
        StackStatus::Deploying
    );
}
