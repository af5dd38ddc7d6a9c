//! Property tests of `Lifecycle` over every state machine: arbitrary edges and
//! times go through the public API; allowed ones apply, the rest change nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;

use proptest::collection::vec;
use proptest::prelude::*;
use rollway_model::status::*;
use rollway_model::time::Timestamp;
use rollway_model::transitions::{Lifecycle, StateMachine, TransitionError, TransitionRecord};

/// Enough to cover every edge of the largest table many times over while the
/// eleven machines together stay within a few seconds in a debug build.
const CASES: u32 = 256;

/// `StateMachine` does not carry the status list, so the tests reach the
/// inherent `ALL` of each status enum through this trait.
trait Machine: StateMachine {
    fn all() -> &'static [Self];
}

/// One drawn attempt. `follow` picks among the edges the table allows from the
/// current status instead of among all statuses: purely arbitrary picks rarely
/// walk deep chains (e.g. deployment pending → … → succeeded → rolled_back),
/// so without it the last statuses of long machines would seldom be a `from`.
#[derive(Debug, Clone)]
struct Step {
    follow: bool,
    index: usize,
    delta: i64,
}

/// A time offset from the last recorded time: often equal, usually later,
/// sometimes earlier.
fn delta() -> impl Strategy<Value = i64> {
    prop_oneof![Just(0i64), Just(-1i64), 1i64..5_000, -5_000i64..0]
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    vec(
        (any::<bool>(), any::<usize>(), delta()).prop_map(|(follow, index, delta)| Step { follow, index, delta }),
        0..48,
    )
}

fn t0() -> impl Strategy<Value = i64> {
    -1_000_000_000i64..1_000_000_000
}

fn allowed_from<S: Machine>(from: S) -> Vec<S> {
    S::EDGES.iter().filter(|(f, _)| *f == from).map(|&(_, t)| t).collect()
}

fn pick<S: Machine>(from: S, step: &Step) -> S {
    let next = allowed_from(from);
    if step.follow && !next.is_empty() {
        next[step.index % next.len()]
    } else {
        S::all()[step.index % S::all().len()]
    }
}

/// The shortest way through the table from the initial status to `target`.
fn path_to<S: Machine>(target: S) -> Option<Vec<S>> {
    let mut queue = VecDeque::from([vec![S::INITIAL]]);
    let mut seen = vec![S::INITIAL];
    while let Some(path) = queue.pop_front() {
        let last = *path.last()?;
        if last == target {
            return Some(path);
        }
        for next in allowed_from(last) {
            if !seen.contains(&next) {
                seen.push(next);
                let mut longer = path.clone();
                longer.push(next);
                queue.push_back(longer);
            }
        }
    }
    None
}

/// Tries one transition and checks its outcome against the table: applied in
/// full when the edge is allowed and the time is not earlier, otherwise
/// refused with the right reason and the lifecycle left exactly as it was.
fn attempt<S: Machine>(lc: &mut Lifecycle<S>, to: S, at: Timestamp) -> Result<(), TestCaseError> {
    let before = lc.clone();
    let from = lc.status();
    let allowed = S::EDGES.contains(&(from, to));
    let in_time = at >= before.since();
    match lc.transition(to, at) {
        Ok(()) => {
            prop_assert!(
                allowed && in_time,
                "{} {from} → {to} at {at:?} after {:?} was accepted (edge allowed: {allowed})",
                S::NAME,
                before.since()
            );
            prop_assert_eq!(lc.status(), to);
            prop_assert_eq!(lc.since(), at);
            prop_assert_eq!(lc.history().len(), before.history().len() + 1);
            prop_assert_eq!(&lc.history()[..before.history().len()], before.history());
            prop_assert_eq!(
                lc.history().last(),
                Some(&TransitionRecord {
                    from: Some(from),
                    to,
                    at
                })
            );
        }
        Err(err) => {
            prop_assert!(
                !(allowed && in_time),
                "{} {from} → {to} at {at:?} after {:?} was refused: {err}",
                S::NAME,
                before.since()
            );
            prop_assert_eq!(&*lc, &before, "a refused transition changed the lifecycle: {}", err);
            match err {
                TransitionError::Forbidden {
                    machine,
                    from: f,
                    to: t,
                    allowed: next,
                } => {
                    prop_assert!(!allowed, "allowed edge {from} → {to} reported forbidden");
                    prop_assert_eq!(machine, S::NAME);
                    prop_assert_eq!(f, from.to_string());
                    prop_assert_eq!(t, to.to_string());
                    let expected: Vec<String> = allowed_from(from).iter().map(ToString::to_string).collect();
                    prop_assert_eq!(next, expected);
                }
                TransitionError::TimeWentBackwards {
                    machine,
                    from: f,
                    to: t,
                    last,
                    at: a,
                } => {
                    prop_assert!(
                        allowed && !in_time,
                        "{from} → {to} at {at:?} reported as going back in time"
                    );
                    prop_assert_eq!(machine, S::NAME);
                    prop_assert_eq!(f, from.to_string());
                    prop_assert_eq!(t, to.to_string());
                    prop_assert_eq!(last, before.since());
                    prop_assert_eq!(a, at);
                }
                other @ TransitionError::BadHistory { .. } => {
                    prop_assert!(false, "transition() never reports a bad history: {}", other);
                }
            }
        }
    }
    Ok(())
}

/// What must hold of any lifecycle built through the API: it starts in the
/// initial status at `t0`, its records chain through allowed edges with times
/// that never go backwards, and its history rebuilds it — while a history with
/// one record moved earlier or onto a forbidden edge does not.
fn check_history<S: Machine>(lc: &Lifecycle<S>, t0: i64) -> Result<(), TestCaseError> {
    let h = lc.history();
    prop_assert_eq!(
        h.first(),
        Some(&TransitionRecord {
            from: None,
            to: S::INITIAL,
            at: Timestamp(t0),
        })
    );
    prop_assert_eq!(h.last().map(|r| r.to), Some(lc.status()));
    for w in h.windows(2) {
        prop_assert!(
            w[1].at >= w[0].at,
            "time went backwards in {} history: {:?}",
            S::NAME,
            h
        );
        prop_assert_eq!(w[1].from, Some(w[0].to));
        prop_assert!(
            S::EDGES.contains(&(w[0].to, w[1].to)),
            "{} history holds forbidden edge {} → {}",
            S::NAME,
            w[0].to,
            w[1].to
        );
    }
    prop_assert_eq!(Lifecycle::from_history(h.to_vec()), Ok(lc.clone()));

    for i in 1..h.len() {
        let mut earlier = h.to_vec();
        earlier[i].at = Timestamp(h[i - 1].at.0 - 1);
        let rebuilt = Lifecycle::from_history(earlier);
        prop_assert!(
            matches!(rebuilt, Err(TransitionError::TimeWentBackwards { .. })),
            "{} history with record {i} moved before its predecessor rebuilt as {:?}",
            S::NAME,
            rebuilt
        );

        let prev = h[i - 1].to;
        if let Some(&wrong) = S::all().iter().find(|&&s| !S::EDGES.contains(&(prev, s))) {
            let mut forbidden = h.to_vec();
            forbidden[i].to = wrong;
            let rebuilt = Lifecycle::from_history(forbidden);
            prop_assert!(
                matches!(rebuilt, Err(TransitionError::Forbidden { .. })),
                "{} history with forbidden edge {prev} → {wrong} rebuilt as {:?}",
                S::NAME,
                rebuilt
            );
        }
    }
    Ok(())
}

/// A random walk: each step an arbitrary (or table-following) status at a
/// time offset from the last recorded time.
fn walk<S: Machine>(t0: i64, steps: &[Step]) -> Result<(), TestCaseError> {
    let mut lc = Lifecycle::<S>::new(Timestamp(t0));
    prop_assert_eq!(lc.status(), S::INITIAL);
    for step in steps {
        let to = pick(lc.status(), step);
        let at = Timestamp(lc.since().0 + step.delta);
        attempt(&mut lc, to, at)?;
    }
    check_history(&lc, t0)
}

/// An arbitrary (from, to) pair: reach `from` along the table through the
/// API, then try `to` at an arbitrary offset.
fn pair<S: Machine>(from: usize, to: usize, t0: i64, gaps: &[i64], delta: i64) -> Result<(), TestCaseError> {
    let all = S::all();
    let (from, to) = (all[from % all.len()], all[to % all.len()]);
    let path = path_to(from);
    prop_assert!(
        path.is_some(),
        "{} status {from} cannot be reached from {}",
        S::NAME,
        S::INITIAL
    );
    let mut lc = Lifecycle::<S>::new(Timestamp(t0));
    for (i, &next) in path.unwrap_or_default().iter().skip(1).enumerate() {
        let at = Timestamp(lc.since().0 + gaps[i % gaps.len()]);
        lc.transition(next, at)
            .map_err(|e| TestCaseError::fail(format!("walking to {from}: {e}")))?;
    }
    prop_assert_eq!(lc.status(), from);
    let at = Timestamp(lc.since().0 + delta);
    attempt(&mut lc, to, at)?;
    check_history(&lc, t0)
}

macro_rules! properties {
    ($($module:ident: $ty:ty),* $(,)?) => {$(
        impl Machine for $ty {
            fn all() -> &'static [Self] {
                <$ty>::ALL
            }
        }

        mod $module {
            use super::*;

            /// Every (from, to) pair once, at an earlier, the same and a later
            /// time, so no edge depends on what the random draws happen to hit.
            #[test]
            fn every_pair() {
                let n = <$ty>::ALL.len();
                for from in 0..n {
                    for to in 0..n {
                        for delta in [-1, 0, 1] {
                            if let Err(err) = pair::<$ty>(from, to, 1_000, &[0, 7], delta) {
                                panic!("{} pair at time offset {delta}: {err}", <$ty as StateMachine>::NAME);
                            }
                        }
                    }
                }
            }

            proptest! {
                #![proptest_config(ProptestConfig::with_cases(CASES))]

                #[test]
                fn random_walk(t0 in t0(), steps in steps()) {
                    walk::<$ty>(t0, &steps)?;
                }

                #[test]
                fn any_pair(
                    from in any::<usize>(),
                    to in any::<usize>(),
                    t0 in t0(),
                    gaps in vec(0i64..5_000, 1..8),
                    delta in delta(),
                ) {
                    pair::<$ty>(from, to, t0, &gaps, delta)?;
                }
            }
        }
    )*};
}

properties!(
    deployment: DeploymentStatus,
    job: JobStatus,
    pipeline_run: PipelineStatus,
    stack: StackStatus,
    resource: ResourceStatus,
    alert: AlertStatus,
    restore_job: RestoreStatus,
    backup: BackupStatus,
    certificate: CertificateStatus,
    domain: DnsStatus,
    environment: EnvironmentStatus,
);
