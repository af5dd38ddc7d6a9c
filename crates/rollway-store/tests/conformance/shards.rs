//! Conformance cases for shard leases (OPERATIONS.md "`rollway serve`":
//! instances on one store share the monitors' shards by leases). Each case
//! runs on both backends through the `conformance!` list in
//! `conformance.rs`, with the `ManualClock` standing in for time passing.

use std::sync::Arc;
use std::time::Duration;

use rollway_model::shards::excess;
use rollway_model::{Clock as _, ManualClock, Timestamp};
use rollway_store::{Claimed, Previous, Store, StoreError, Taken};

const SHARDS: u32 = 64;
const LEASE: Duration = Duration::from_secs(15);

fn before(t: Timestamp, ms: i64) -> Timestamp {
    Timestamp::from_millis(t.as_millis() - ms)
}

fn held(c: &Claimed) -> Vec<u32> {
    c.held.iter().map(|l| l.shard).collect()
}

fn taken(c: &Claimed) -> Vec<u32> {
    c.taken.iter().map(|t| t.shard).collect()
}

/// A heartbeat as `serve` does it: claim, then give back what is over the
/// fair share. Returns the claim and what it gave back.
fn beat(store: &dyn Store, owner: &str) -> (Claimed, Vec<u32>) {
    let c = store.claim_shards(owner, SHARDS, LEASE).unwrap();
    let over = excess(&held(&c), c.fair_share).to_vec();
    assert_eq!(store.release_shards(owner, &over).unwrap(), over.len());
    (c, over)
}

/// Who holds each shard now, from `shard_leases` (None: free).
fn holders(store: &dyn Store, now: Timestamp) -> Vec<Option<String>> {
    let mut out = vec![None; SHARDS as usize];
    for l in store.shard_leases().unwrap() {
        if l.released_at.is_none() && l.expires_at > now {
            out[l.shard as usize] = Some(l.owner);
        }
    }
    out
}

fn count(holders: &[Option<String>], owner: &str) -> usize {
    holders.iter().filter(|h| h.as_deref() == Some(owner)).count()
}

pub(crate) fn two_owners_split_the_shards_evenly(store: &dyn Store, clock: &ManualClock) {
    // The first owner alone takes every shard, all never leased before.
    let (a, gave) = beat(store, "a");
    assert_eq!(
        (a.owners, a.fair_share, held(&a), gave),
        (1, 64, (0..64).collect(), vec![])
    );
    assert!(a.taken.iter().all(|t| t.previous == Previous::Free));
    assert_eq!(a.held[0].acquired_at, clock.now());
    assert_eq!(a.held[0].expires_at, clock.now().plus(LEASE));
    // The second one counts, but finds nothing free.
    clock.advance(Duration::from_secs(1));
    let (b, _) = beat(store, "b");
    assert_eq!((b.owners, b.fair_share, held(&b), taken(&b)), (2, 32, vec![], vec![]));
    // The first renews, sees its share is 32 and gives back the top half,
    // which the second takes at its next heartbeat.
    clock.advance(Duration::from_secs(4));
    let (a, gave) = beat(store, "a");
    assert_eq!((a.fair_share, gave), (32, (32..64).collect::<Vec<u32>>()));
    assert_eq!(a.held[0].renewed_at, clock.now());
    assert_eq!(a.held[0].acquired_at, before(clock.now(), 5_000));
    let at = clock.now();
    clock.advance(Duration::from_secs(1));
    let (b, _) = beat(store, "b");
    assert_eq!(taken(&b), (32..64).collect::<Vec<u32>>());
    assert!(
        b.taken
            .iter()
            .all(|t| t.previous == Previous::Released { owner: "a".into(), at }),
        "{:?}",
        b.taken[0]
    );
    let now = holders(store, clock.now());
    assert_eq!((count(&now, "a"), count(&now, "b")), (32, 32));
    // Steady: more heartbeats move nothing.
    for _ in 0..3 {
        clock.advance(Duration::from_secs(5));
        for owner in ["a", "b"] {
            let (c, gave) = beat(store, owner);
            assert_eq!((c.held.len(), c.taken.len(), gave.len()), (32, 0, 0), "{owner}");
        }
    }
    assert_eq!(holders(store, clock.now()), now);
}

pub(crate) fn a_silent_owners_shards_are_taken_once_its_lease_expired(store: &dyn Store, clock: &ManualClock) {
    beat(store, "a");
    beat(store, "b");
    beat(store, "a");
    clock.advance(Duration::from_secs(1));
    let (b, _) = beat(store, "b");
    assert_eq!(held(&b), (32..64).collect::<Vec<u32>>());
    let b_expires = b.held[0].expires_at;
    // b goes silent (killed). Until its lease ends, a takes none of it,
    // however often it claims.
    while clock.now().plus(Duration::from_secs(5)) < b_expires {
        clock.advance(Duration::from_secs(5));
        let (a, gave) = beat(store, "a");
        assert_eq!((a.owners, a.held.len(), taken(&a), gave), (2, 32, vec![], vec![]));
    }
    clock.set(before(b_expires, 1));
    let (a, _) = beat(store, "a");
    assert_eq!(
        (a.owners, a.held.len()),
        (2, 32),
        "a lease that has a millisecond left is live"
    );
    // Expired: b no longer counts, a's share is everything, and it takes
    // b's shards, naming b and when its lease ended.
    clock.set(b_expires);
    let (a, gave) = beat(store, "a");
    assert_eq!(
        (a.owners, a.fair_share, held(&a), gave),
        (1, 64, (0..64).collect(), vec![])
    );
    assert_eq!(
        a.taken,
        (32..64)
            .map(|shard| Taken {
                shard,
                previous: Previous::Expired {
                    owner: "b".into(),
                    at: b_expires
                }
            })
            .collect::<Vec<_>>()
    );
    assert!(a.held[32..].iter().all(|l| l.acquired_at == b_expires));
    // b comes back: it holds nothing, counts again, and the split follows.
    clock.advance(Duration::from_secs(1));
    let (b, _) = beat(store, "b");
    assert_eq!((b.owners, b.held.len()), (2, 0));
    beat(store, "a");
    let (b, _) = beat(store, "b");
    assert_eq!(held(&b), (32..64).collect::<Vec<u32>>());
}

pub(crate) fn released_shards_are_taken_at_once(store: &dyn Store, clock: &ManualClock) {
    beat(store, "a");
    beat(store, "b");
    beat(store, "a");
    beat(store, "b");
    // a stops gracefully: everything it held is free now, and b's share is
    // all of them, without waiting for a lease to run out.
    assert_eq!(store.leave_shards("a").unwrap(), 32);
    let at = clock.now();
    let (b, gave) = beat(store, "b");
    assert_eq!((b.owners, held(&b), gave), (1, (0..64).collect(), vec![]));
    assert_eq!(
        b.taken,
        (0..32)
            .map(|shard| Taken {
                shard,
                previous: Previous::Released { owner: "a".into(), at }
            })
            .collect::<Vec<_>>()
    );
    // Leaving twice, or releasing what is no longer yours, gives back nothing.
    assert_eq!(store.leave_shards("a").unwrap(), 0);
    assert_eq!(store.release_shards("a", &[0, 1, 40]).unwrap(), 0);
    assert_eq!(count(&holders(store, clock.now()), "b"), 64);
}

pub(crate) fn an_owner_never_takes_a_live_lease(store: &dyn Store, clock: &ManualClock) {
    // a holds everything; b claims without ever being given anything.
    let a = store.claim_shards("a", SHARDS, LEASE).unwrap();
    assert_eq!(a.held.len(), 64);
    for _ in 0..5 {
        clock.advance(Duration::from_secs(2));
        let b = store.claim_shards("b", SHARDS, LEASE).unwrap();
        assert_eq!((b.fair_share, b.held.len(), b.taken.len()), (32, 0, 0));
    }
    assert_eq!(count(&holders(store, clock.now()), "a"), 64);

    // Four owners on two connections heartbeating at once: no error (on
    // PostgreSQL none waits on another's rows), every shard held by one
    // owner, and after the dust settles each holds its share of 16.
    let other = rollway_store::open(store.location(), Arc::new(clock.clone())).unwrap();
    let stores: [&dyn Store; 2] = [store, &*other];
    store.leave_shards("a").unwrap();
    store.leave_shards("b").unwrap();
    let owners = ["w", "x", "y", "z"];
    std::thread::scope(|s| {
        for (i, owner) in owners.into_iter().enumerate() {
            let target = stores[i % 2];
            s.spawn(move || {
                for _ in 0..10 {
                    beat(target, owner);
                }
            });
        }
    });
    for _ in 0..2 {
        for owner in owners {
            beat(store, owner);
        }
    }
    let now = holders(store, clock.now());
    assert!(now.iter().all(Option::is_some), "{now:?}");
    for owner in owners {
        assert_eq!(count(&now, owner), 16, "{owner}: {now:?}");
    }
}

pub(crate) fn shard_claims_refuse_nonsense(store: &dyn Store, _clock: &ManualClock) {
    let invalid = |r: Result<Claimed, StoreError>| match r {
        Err(StoreError::Invalid { violations, .. }) => violations.iter().map(|v| v.rule).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(invalid(store.claim_shards("", SHARDS, LEASE)), ["shards.owner"]);
    assert_eq!(
        invalid(store.claim_shards("a", 0, Duration::ZERO)),
        ["shards.count", "shards.lease"]
    );
    assert_eq!(store.shard_leases().unwrap(), vec![]);
}
