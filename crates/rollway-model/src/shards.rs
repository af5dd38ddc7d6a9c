//! Shard leases, the arithmetic (OPERATIONS.md "`rollway serve`"): several
//! `serve` instances on one PostgreSQL store share the monitors by hashing
//! each into one of [`DEFAULT_SHARDS`] shards and leasing shards, each
//! instance up to its fair share. The store keeps the leases; this module
//! decides which shard a monitor is in, what a fair share is, which shards
//! an instance over its share gives back and until when a lease lets its
//! holder probe. Pure: the caller passes every time.

use std::time::Duration;

use crate::time::Timestamp;

/// Shards the monitors are hashed into.
pub const DEFAULT_SHARDS: u32 = 64;

/// How long a shard lease lasts unless renewed.
pub const DEFAULT_SHARD_LEASE: Duration = Duration::from_secs(15);

/// A hash of `text` that is the same on every run, host and release (std's
/// `DefaultHasher` promises none of that): FNV-1a, then a splitmix64 finish
/// so texts differing in one last character land far apart. Monitors'
/// slot phases and shards are both taken from it.
pub fn stable_hash(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    h
}

/// The shard monitor `name` is in, of `shards` (at least 1).
pub fn shard_of(name: &str, shards: u32) -> u32 {
    // The high bits: the phase of a slot is the hash modulo the interval,
    // so shards taken from the same low bits would bunch slot phases.
    let h = stable_hash(name) >> 32;
    u32::try_from(h % u64::from(shards.max(1))).unwrap_or(0)
}

/// The most shards one of `owners` live instances holds: `shards / owners`
/// rounded up, so the shares always cover every shard. No owner (nobody
/// registered yet) counts as one.
pub fn fair_share(shards: u32, owners: u32) -> u32 {
    shards.div_ceil(owners.max(1))
}

/// How often a holder renews its leases: a third of the lease, so two
/// renewals may fail before a lease runs out.
pub fn heartbeat(lease: Duration) -> Duration {
    lease / 3
}

/// The shards of `owned` (sorted) an owner gives back to get down to `fair`:
/// the highest ones, so the lowest stay where they are.
pub fn excess(owned: &[u32], fair: u32) -> &[u32] {
    let keep = usize::try_from(fair).unwrap_or(usize::MAX).min(owned.len());
    &owned[keep..]
}

/// The last instant (exclusive) at which a lease expiring at `expires_at`
/// lets its holder start a probe slot: a tenth of the lease before it
/// expires, so two hosts whose clocks differ by less than that never probe
/// one slot both (the next holder takes the shard only once the lease has
/// expired by its own clock).
pub fn probe_until(expires_at: Timestamp, lease: Duration) -> Timestamp {
    let guard = i64::try_from((lease / 10).as_millis()).unwrap_or(i64::MAX);
    Timestamp::from_millis(expires_at.as_millis().saturating_sub(guard))
}

/// Shard numbers as people read them: sorted, runs of three or more as
/// `FIRST-LAST`, e.g. `0-31, 40, 42`.
pub fn shard_list(shards: &[u32]) -> String {
    let mut sorted = shards.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1] == sorted[j] + 1 {
            j += 1;
        }
        match j - i {
            0 => parts.push(sorted[i].to_string()),
            1 => parts.extend([sorted[i].to_string(), sorted[j].to_string()]),
            _ => parts.push(format!("{}-{}", sorted[i], sorted[j])),
        }
        i = j + 1;
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fair_shares_round_up_so_they_cover_every_shard() {
        fn check(shards: u32, owners: u32, expected: u32) {
            assert_eq!(fair_share(shards, owners), expected, "{shards} shards, {owners} owners");
            assert!(u64::from(expected) * u64::from(owners.max(1)) >= u64::from(shards));
        }
        check(64, 0, 64);
        check(64, 1, 64);
        check(64, 2, 32);
        check(64, 3, 22);
        check(64, 5, 13);
        check(64, 64, 1);
        check(64, 100, 1);
        check(1, 2, 1);
    }

    #[test]
    fn an_owner_over_its_share_gives_back_its_highest_shards() {
        fn check(owned: &[u32], fair: u32, expected: &[u32]) {
            assert_eq!(excess(owned, fair), expected, "{owned:?} down to {fair}");
        }
        let all: Vec<u32> = (0..64).collect();
        check(&all, 32, &all[32..]);
        check(&all, 64, &[]);
        check(&[1, 5, 9], 2, &[9]);
        check(&[1, 5, 9], 0, &[1, 5, 9]);
        check(&[], 3, &[]);
    }

    #[test]
    fn the_hash_is_fixed_forever() {
        // These values are what every release computes (checked against an
        // independent FNV-1a + splitmix64 in Python): slot phases and shards
        // must not move when Rollway is upgraded.
        fn check(text: &str, expected: u64) {
            assert_eq!(stable_hash(text), expected, "{text}");
        }
        check("", 0xf52a_15e9_a9b5_e89b);
        check("web", 0xc850_f03f_92a3_75f3);
        check("staging-domain", 0x46ca_0a22_ea3e_6e3d);
    }

    #[test]
    fn monitors_spread_over_the_shards() {
        fn check(name: &str, shards: u32, expected: u32) {
            assert_eq!(shard_of(name, shards), expected, "{name} of {shards}");
        }
        check("web", 64, 63);
        check("staging-domain", 64, 0x46ca_0a22 % 64);
        check("web", 1, 0);
        check("web", 0, 0);
        // 6,400 names over 64 shards: every shard gets some, none a
        // quarter more than its even share.
        let mut counts = [0u32; 64];
        for i in 0..6_400 {
            counts[shard_of(&format!("monitor-{i}"), 64) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (60..=125).contains(&c)), "{counts:?}");
    }

    #[test]
    fn a_holder_stops_a_tenth_of_a_lease_before_it_expires() {
        fn check(expires_ms: i64, lease_ms: u64, expected_ms: i64) {
            assert_eq!(
                probe_until(Timestamp::from_millis(expires_ms), Duration::from_millis(lease_ms)),
                Timestamp::from_millis(expected_ms)
            );
        }
        check(100_000, 15_000, 98_500);
        check(100_000, 3_000, 99_700);
        check(100_000, 0, 100_000);
        assert_eq!(heartbeat(Duration::from_secs(15)), Duration::from_secs(5));
    }

    #[test]
    fn shard_lists_read_as_runs() {
        fn check(shards: &[u32], expected: &str) {
            assert_eq!(shard_list(shards), expected, "{shards:?}");
        }
        check(&[], "");
        check(&[3, 7], "3, 7");
        check(&[7, 3, 3], "3, 7");
        check(&[0, 1], "0, 1");
        check(&(0..32).collect::<Vec<_>>(), "0-31");
        check(&[0, 1, 2, 5, 9, 10, 11, 12, 63], "0-2, 5, 9-12, 63");
    }
}
