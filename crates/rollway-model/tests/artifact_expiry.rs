#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Which artifacts may expire (seed 001 `expiresAt`): an expired one may be
//! pruned unless a deployment runs it or could return to it — in progress,
//! the current release of its environment, or one of the `keep_releases`
//! newest succeeded ones.

use std::time::Duration;

use rollway_model::*;

/// 2026-01-01T00:00:00Z.
const T0: Timestamp = Timestamp::from_millis(1_767_225_600_000);

fn at(secs: u64) -> Timestamp {
    T0.plus(Duration::from_secs(secs))
}

fn digest(c: char) -> Sha256Digest {
    Sha256Digest::try_from(c.to_string().repeat(64)).unwrap()
}

/// An artifact created at T0 that expires `expires` seconds later.
fn artifact(expires: u64) -> Artifact {
    Artifact {
        id: ArtifactId::generate(T0),
        kind: ArtifactKind::App,
        sha256: digest('a'),
        content_digest: digest('b'),
        size_bytes: 1,
        source_version: None,
        branch: None,
        dirty: false,
        built_at: T0,
        aliases_resolved: true,
        unresolved_aliases: Vec::new(),
        contents: Vec::new(),
        location: "a.tar.zst".into(),
        job_id: None,
        expires_at: at(expires),
        created_at: T0,
    }
}

/// A deployment of `artifact` in `env` walked to `to`, finishing at `finished` seconds.
fn deployment(env: &str, artifact: &Artifact, to: DeploymentStatus, finished: u64) -> Deployment {
    use DeploymentStatus as S;
    let mut d = Deployment::new(DeploymentKind::Deploy, env, "ops", T0);
    d.artifact_id = Some(artifact.id);
    let path: &[S] = match to {
        S::Pending => &[],
        S::Deploying => &[S::Building, S::Synthesizing, S::Deploying],
        S::Succeeded => &[S::Building, S::Synthesizing, S::Deploying, S::Verifying, S::Succeeded],
        S::Failed => &[S::Building, S::Failed],
        other => panic!("no path to {other}"),
    };
    for (i, &s) in path.iter().enumerate() {
        let t = if i + 1 == path.len() {
            at(finished)
        } else {
            at(u64::try_from(i).unwrap() + 1)
        };
        if s == S::Failed {
            d.fail("boom", t).unwrap();
        } else {
            d.transition(s, t).unwrap();
        }
    }
    d
}

/// `artifacts` (index, expires after seconds), `deployments` (env, index of
/// its artifact, status, finished at), `keep` per environment, `now`:
/// the indexes that may expire, in order.
fn check(
    artifacts: &[u64],
    deployments: &[(&str, usize, DeploymentStatus, u64)],
    keep: usize,
    now: u64,
    expected: &[usize],
) {
    let arts: Vec<Artifact> = artifacts.iter().map(|&e| artifact(e)).collect();
    let deps: Vec<Deployment> = deployments
        .iter()
        .map(|&(env, i, s, f)| deployment(env, &arts[i], s, f))
        .collect();
    let got: Vec<usize> = may_expire(&arts, &deps, |_| keep, at(now))
        .into_iter()
        .map(|a| arts.iter().position(|x| x.id == a.id).unwrap())
        .collect();
    assert_eq!(
        got, expected,
        "artifacts {artifacts:?} deployments {deployments:?} keep {keep} now {now}"
    );
}

#[test]
fn expired_artifacts_may_expire_unless_a_deployment_needs_them() {
    use DeploymentStatus as S;
    // Not expired yet: kept; expired and unused: may go.
    check(&[100, 10], &[], 5, 50, &[1]);
    // The expiry instant itself counts as expired.
    check(&[50], &[], 5, 50, &[0]);
    // The current release is kept, even with keep_releases 0.
    check(&[10, 10], &[("production", 0, S::Succeeded, 20)], 0, 50, &[1]);
    // keep_releases: the newest succeeded ones of each environment.
    let history = [
        ("production", 0, S::Succeeded, 20),
        ("production", 1, S::Succeeded, 30),
        ("production", 2, S::Succeeded, 40),
        ("staging", 3, S::Succeeded, 10),
    ];
    check(&[10, 10, 10, 10], &history, 2, 50, &[0]);
    check(&[10, 10, 10, 10], &history, 1, 50, &[0, 1]);
    check(&[10, 10, 10, 10], &history, 3, 50, &[]);
    // Failed deployments are nothing to return to; one in progress runs its artifact.
    check(
        &[10, 10, 10],
        &[
            ("staging", 0, S::Failed, 20),
            ("staging", 1, S::Deploying, 20),
            ("staging", 2, S::Pending, 0),
        ],
        5,
        50,
        &[0],
    );
}

#[test]
fn in_use_is_per_environment() {
    use DeploymentStatus as S;
    let a = artifact(10);
    let b = artifact(10);
    let deps = [
        deployment("production", &a, S::Succeeded, 20),
        deployment("production", &b, S::Succeeded, 30),
        deployment("staging", &a, S::Succeeded, 40),
    ];
    let keep = |env: &str| if env == "production" { 1 } else { 5 };
    let in_use = artifacts_in_use(&deps, keep);
    assert_eq!(in_use, [a.id, b.id].into_iter().collect());
    let only_prod: Vec<Deployment> = deps[..2].to_vec();
    assert_eq!(artifacts_in_use(&only_prod, keep), [b.id].into_iter().collect());
}
