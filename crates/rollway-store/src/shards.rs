//! Shard leases as the store takes and returns them (OPERATIONS.md
//! "`rollway serve`"): several `serve` instances on one store share the
//! monitors, hashed into shards (`rollway_model::shards`), each instance
//! leasing up to its fair share. The work is in `db/shards.rs`.

use rollway_model::Timestamp;

/// One shard's lease as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardLease {
    pub shard: u32,
    pub owner: String,
    /// When its owner took it: it probes the shard's slots from then on.
    pub acquired_at: Timestamp,
    pub renewed_at: Timestamp,
    pub expires_at: Timestamp,
    /// Set when the owner gave it back (it is free from then on).
    pub released_at: Option<Timestamp>,
}

/// Whose a shard was before a claim took it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Previous {
    /// Nobody's: never leased.
    Free,
    /// Given back by its owner (a graceful stop, or its share shrank).
    Released { owner: String, at: Timestamp },
    /// Its owner's lease ran out (a killed or stuck instance).
    Expired { owner: String, at: Timestamp },
}

/// A shard a claim took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    pub shard: u32,
    pub previous: Previous,
}

/// What [`crate::Store::claim_shards`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The store's time of the claim.
    pub at: Timestamp,
    /// Live instances sharing the shards, this one included.
    pub owners: u32,
    /// The most shards one of them holds (`shards / owners`, rounded up).
    pub fair_share: u32,
    /// Every lease the owner holds after the claim, by shard: the ones it
    /// renewed and the ones it took. May be more than its fair share (an
    /// instance joined): the owner stops probing the excess, then gives it
    /// back with [`crate::Store::release_shards`].
    pub held: Vec<ShardLease>,
    /// The shards this claim took, by shard.
    pub taken: Vec<Taken>,
}
