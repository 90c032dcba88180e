//! The exchange's lock-out: failed attempts per (client id, source address), and per source
//! address for client ids nobody registered, in fixed windows, over tables of fixed size.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counters per table: 2^16 of 8 bytes, 512 KiB each, whatever the traffic.
const SLOTS: usize = 1 << 16;

/// How many times the per-pair limit one source address may fail with client ids nobody
/// registered.
const PER_SOURCE_FACTOR: u32 = 4;

/// The tables: what one kind of key counts in, so that keys of one kind cannot crowd out
/// another's. Registered clients' pairs have a table of their own: only guesses at a
/// registered id (few, and from a limited number of networks) can fill it, never a flood of
/// made-up ids.
#[derive(Clone, Copy)]
enum Table {
    /// (registered client, source): the lock-out that protects a client's secret.
    Registered = 0,
    /// (unregistered id, source): answered like a registered one, so that 429 does not tell
    /// which ids exist; its false positives refuse ids that could never succeed anyway.
    Unregistered = 1,
    /// A source's failures with unregistered ids: guessing ids, not secrets.
    Source = 2,
}

/// Failed attempts in fixed windows, counted in count-min sketches: each key adds to two
/// counters of its [`Table`] picked by a keyed hash, and its count is the smaller of the two.
///
/// The tables never grow and nothing is ever evicted, so no flood of other ids can free a
/// blocked key; a collision can only count more, and which keys collide depends on a
/// per-process random hash key. Sources are IPv6 /64 networks (one host commonly holds a
/// whole /64) and single IPv4 addresses. Each attempt touches four counters with one atomic
/// update each: constant time, no lock. A counter holds the second its window started in its
/// top 40 bits and the count in the low 24: a window starts at the first failure it counts,
/// and a counter whose window has ended reads as zero.
pub(super) struct FailureLimiter {
    max_failures: u32,
    max_per_source: u32,
    window_secs: u64,
    slots: [Box<[AtomicU64]>; 3],
    hasher: RandomState,
}

/// Which counters an attempt added to, and the windows they were in, to undo them when it
/// succeeds: at most four, kept inline (an attempt allocates nothing).
pub(super) struct Attempt {
    added: [(usize, u64); 4],
    len: usize,
}

impl Attempt {
    fn push(&mut self, slot: (usize, u64)) {
        self.added[self.len] = slot;
        self.len += 1;
    }
}

impl FailureLimiter {
    pub(super) fn new(max_failures: u32, window: Duration) -> Self {
        let max_failures = max_failures.max(1);
        Self {
            max_failures,
            max_per_source: max_failures.saturating_mul(PER_SOURCE_FACTOR),
            window_secs: window.as_secs().max(1),
            slots: [(); 3].map(|()| (0..SLOTS).map(|_| AtomicU64::new(0)).collect()),
            hasher: RandomState::new(),
        }
    }

    /// Counts an attempt by `client_id` (`registered` or not) from `source` (when the peer
    /// address is known) as a failure until [`succeeded`](Self::succeeded) undoes it, or
    /// refuses it with the seconds to wait when the pair, or for an unregistered id the
    /// source, has used up its failures in the current window. Counting before the check
    /// keeps concurrent guesses from slipping past the limit together.
    ///
    /// A registered client's failures count against its pair only, never against the
    /// source: a shared address (a NAT, a proxy nobody listed as trusted) is not locked out
    /// for everyone by one person's wrong secret.
    pub(super) fn attempt(
        &self,
        client_id: &str,
        registered: bool,
        source: Option<IpAddr>,
        now: u64,
    ) -> Result<Attempt, u64> {
        let mut attempt = Attempt {
            added: [(0, 0); 4],
            len: 0,
        };
        let source = source.map(network);
        let table = if registered {
            Table::Registered
        } else {
            Table::Unregistered
        };
        let pair = self.pick(table, &(client_id, source));
        self.count(pair, now, self.max_failures, &mut attempt)?;
        if let (false, Some(source)) = (registered, source) {
            let alone = self.pick(Table::Source, &source);
            if let Err(wait) = self.count(alone, now, self.max_per_source, &mut attempt) {
                self.succeeded(attempt);
                return Err(wait);
            }
        }
        Ok(attempt)
    }

    /// The attempt succeeded: it is not a failure.
    pub(super) fn succeeded(&self, attempt: Attempt) {
        for &(slot, start) in &attempt.added[..attempt.len] {
            // Only within the window the attempt counted in: a counter that has moved on to
            // a new window has forgotten the attempt anyway.
            let _ = self
                .slot(slot)
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                    (start_of(v) == start && count_of(v) > 0).then(|| v - 1)
                });
        }
    }

    /// The two slots of `key` in `table`, as indexes over all tables.
    fn pick(&self, table: Table, key: &impl std::hash::Hash) -> [usize; 2] {
        let hash = self.hasher.hash_one((table as u8, key));
        // Two indexes from the two halves of one 64-bit hash (SLOTS is 2^16).
        let mask = (SLOTS - 1) as u64;
        let base = table as usize * SLOTS;
        [
            base + (hash & mask) as usize,
            base + ((hash >> 32) & mask) as usize,
        ]
    }

    fn slot(&self, index: usize) -> &AtomicU64 {
        &self.slots[index / SLOTS][index % SLOTS]
    }

    /// Adds one to both counters of a key; keeps the additions (in `attempt`) when the key's
    /// count, the smaller of the two, is then at most `max`, and takes them back otherwise,
    /// answering how long until the key's count falls to zero (its earlier window ends).
    /// Each addition is one atomic update that returns the value it made, so concurrent
    /// attempts on one key see distinct counts and exactly `max` of them pass.
    fn count(
        &self,
        slots: [usize; 2],
        now: u64,
        max: u32,
        attempt: &mut Attempt,
    ) -> Result<(), u64> {
        let window = self.window_secs;
        let made = slots.map(|slot| {
            let mut made = 0;
            let _ = self
                .slot(slot)
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                    made = if now < start_of(v).saturating_add(window) && count_of(v) > 0 {
                        pack(start_of(v), count_of(v).saturating_add(1).min(MAX_COUNT))
                    } else {
                        pack(now, 1)
                    };
                    Some(made)
                });
            made
        });
        let mut added = Attempt {
            added: [(0, 0); 4],
            len: 0,
        };
        for (slot, value) in slots.into_iter().zip(made) {
            added.push((slot, start_of(value)));
        }
        if made.iter().map(|v| count_of(*v)).min().unwrap_or_default() > max {
            let wait = made
                .iter()
                .map(|v| start_of(*v).saturating_add(window).saturating_sub(now))
                .min()
                .unwrap_or(window);
            self.succeeded(added);
            return Err(wait.max(1));
        }
        for &slot in &added.added[..added.len] {
            attempt.push(slot);
        }
        Ok(())
    }
}

/// The network a source address stands for: an IPv6 address's /64 (what one host or one
/// subscriber is usually given), an IPv4 address itself (an IPv4-mapped one as IPv4).
fn network(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & (!0u128 << 64)).into()),
        },
        v4 => v4,
    }
}

/// Counts are 24 bits (and saturate there); the window's start takes the other 40.
const COUNT_BITS: u32 = 24;
const MAX_COUNT: u32 = (1 << COUNT_BITS) - 1;

fn pack(start: u64, count: u32) -> u64 {
    (start & ((1 << (64 - COUNT_BITS)) - 1)) << COUNT_BITS | u64::from(count.min(MAX_COUNT))
}

/// The second a counter's window started (Unix time, 40 bits: good for 34,000 years).
fn start_of(value: u64) -> u64 {
    value >> COUNT_BITS
}

fn count_of(value: u64) -> u32 {
    (value as u32) & MAX_COUNT
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2)));
    const B: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 3)));

    #[test]
    fn failures_count_per_client_and_source_in_fixed_windows() {
        let limiter = FailureLimiter::new(2, Duration::from_secs(60));
        assert!(limiter.attempt("c", true, A, 1_020).is_ok());
        assert!(limiter.attempt("c", true, A, 1_030).is_ok());
        // The window started with the first failure: 1_020..1_080.
        assert_eq!(limiter.attempt("c", true, A, 1_030).err(), Some(50));
        assert!(
            limiter.attempt("c", true, B, 1_030).is_ok(),
            "another source"
        );
        assert!(
            limiter.attempt("d", true, A, 1_030).is_ok(),
            "another client"
        );
        assert!(limiter.attempt("c", true, A, 1_080).is_ok(), "a new window");
    }

    #[test]
    fn a_success_is_not_a_failure() {
        let limiter = FailureLimiter::new(2, Duration::from_secs(60));
        for _ in 0..10 {
            let attempt = limiter.attempt("c", true, A, 1_020).unwrap();
            limiter.succeeded(attempt);
        }
        assert!(limiter.attempt("c", true, A, 1_020).is_ok());
    }

    #[test]
    fn a_source_guessing_ids_is_limited_but_not_for_registered_clients() {
        let limiter = FailureLimiter::new(2, Duration::from_secs(60));
        let refused = (0..100)
            .filter(|i| {
                limiter
                    .attempt(&format!("id-{i}"), false, A, 1_020)
                    .is_err()
            })
            .count();
        assert_eq!(refused, 100 - 2 * PER_SOURCE_FACTOR as usize);
        assert!(
            limiter.attempt("id-0", false, B, 1_020).is_ok(),
            "other sources are not"
        );
        // A registered client behind the same address (a NAT) still has its own two tries.
        assert!(limiter.attempt("agent", true, A, 1_020).is_ok());
        assert!(limiter.attempt("agent", true, A, 1_020).is_ok());
        assert!(limiter.attempt("agent", true, A, 1_020).is_err());
    }

    /// SECURITY.md X2.
    #[test]
    fn a_flood_of_made_up_ids_neither_frees_nor_locks_a_registered_pair() {
        let limiter = FailureLimiter::new(5, Duration::from_secs(60));
        for _ in 0..5 {
            limiter.attempt("target", true, A, 1_020).unwrap();
        }
        assert!(limiter.attempt("target", true, A, 1_020).is_err());
        // 200,000 made-up ids, 5 failures each, from sources of their own.
        for i in 0u32..200_000 {
            let source = Some(IpAddr::V4(std::net::Ipv4Addr::from(0x0A00_0000 + i)));
            for _ in 0..5 {
                let _ = limiter.attempt(&format!("other-{i}"), false, source, 1_021);
            }
        }
        assert!(
            limiter.attempt("target", true, A, 1_022).is_err(),
            "still locked"
        );
        assert!(
            limiter.attempt("agent", true, B, 1_022).is_ok(),
            "not locked by the flood"
        );
    }

    #[test]
    fn an_ipv6_source_is_its_64() {
        let limiter = FailureLimiter::new(1, Duration::from_secs(60));
        let one: Option<IpAddr> = Some("2001:db8:1:2::1".parse().unwrap());
        let same: Option<IpAddr> = Some("2001:db8:1:2:ffff::9".parse().unwrap());
        let other: Option<IpAddr> = Some("2001:db8:1:3::1".parse().unwrap());
        assert!(limiter.attempt("c", true, one, 1_020).is_ok());
        assert!(limiter.attempt("c", true, same, 1_020).is_err());
        assert!(limiter.attempt("c", true, other, 1_020).is_ok());
        let mapped: Option<IpAddr> = Some("::ffff:127.0.0.2".parse().unwrap());
        assert!(limiter.attempt("d", true, A, 1_020).is_ok());
        assert!(
            limiter.attempt("d", true, mapped, 1_020).is_err(),
            "IPv4-mapped is IPv4"
        );
    }

    #[test]
    fn concurrent_guesses_do_not_slip_past_the_limit() {
        let limiter = FailureLimiter::new(5, Duration::from_secs(60));
        let allowed: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        (0..10)
                            .filter(|_| limiter.attempt("a", true, A, 1_000).is_ok())
                            .count()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(allowed, 5);
        assert!(limiter.attempt("a", true, A, 1_000).is_err());
    }

    #[test]
    fn windows_after_2106_still_count() {
        let limiter = FailureLimiter::new(1, Duration::from_secs(60));
        let later = 1u64 << 33;
        assert!(limiter.attempt("c", true, A, later).is_ok());
        assert_eq!(limiter.attempt("c", true, A, later + 1).err(), Some(59));
    }

    #[test]
    fn without_a_source_the_client_id_alone_counts() {
        let limiter = FailureLimiter::new(1, Duration::from_secs(60));
        assert!(limiter.attempt("c", true, None, 1_020).is_ok());
        assert!(limiter.attempt("c", true, None, 1_020).is_err());
        assert!(limiter.attempt("d", true, None, 1_020).is_ok());
    }
}
