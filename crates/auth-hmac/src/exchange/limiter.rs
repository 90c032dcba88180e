//! The exchange's lock-out: failed attempts per (client id, source address), and per source
//! address for client ids nobody registered, in fixed windows, over tables of fixed size.

use std::net::IpAddr;
use std::time::Duration;

use tower_auth_core::{Added, WindowCounters, source_network};

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

/// Failed attempts per (client id, source), and per source for ids nobody registered, in
/// fixed windows, counted in [`WindowCounters`]: no flood of other ids can free a blocked
/// pair, and each attempt touches four counters with one atomic update each. Sources are
/// IPv6 /64 networks and single IPv4 addresses ([`source_network`]).
pub(super) struct FailureLimiter {
    max_failures: u32,
    max_per_source: u32,
    counters: WindowCounters,
    /// The same counts summed over every replica, once shared through Redis.
    #[cfg(feature = "redis")]
    pub(super) shared: std::sync::OnceLock<crate::SharedCounts>,
}

/// The counters an attempt added to, to undo them when it succeeds.
pub(super) struct Attempt {
    added: Added,
    /// The shared keys it added one to, with the second it did.
    #[cfg(feature = "redis")]
    shared: Vec<SharedAdded>,
}

/// A shared key an attempt added one to, with the second it did.
#[cfg(feature = "redis")]
type SharedAdded = (Box<[u8]>, u64);

/// The shared key of a table's entry: the table, the source network (16 bytes, zero when
/// unknown) and the client id.
#[cfg(feature = "redis")]
fn shared_key(table: Table, source: Option<IpAddr>, client_id: Option<&str>) -> Box<[u8]> {
    let mut key = Vec::with_capacity(18 + client_id.map_or(0, str::len));
    key.push(table as u8);
    match source {
        Some(IpAddr::V4(v4)) => key.extend_from_slice(&v4.to_ipv6_mapped().octets()),
        Some(IpAddr::V6(v6)) => key.extend_from_slice(&v6.octets()),
        None => key.extend_from_slice(&[0; 16]),
    }
    key.push(u8::from(source.is_some()));
    key.extend_from_slice(client_id.unwrap_or_default().as_bytes());
    key.into()
}

impl FailureLimiter {
    pub(super) fn new(max_failures: u32, window: Duration) -> Self {
        let max_failures = max_failures.max(1);
        Self {
            max_failures,
            max_per_source: max_failures.saturating_mul(PER_SOURCE_FACTOR),
            counters: WindowCounters::new(3, SLOTS, window),
            #[cfg(feature = "redis")]
            shared: std::sync::OnceLock::new(),
        }
    }

    /// The window's length.
    #[cfg(feature = "redis")]
    pub(super) fn window(&self) -> Duration {
        Duration::from_secs(self.counters.window_secs())
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
        let mut added = Added::default();
        let source = source.map(source_network);
        let table = if registered {
            Table::Registered
        } else {
            Table::Unregistered
        };
        let pair = (client_id, source);
        self.counters
            .add(table as usize, &pair, now, self.max_failures, &mut added)?;
        if let (false, Some(source)) = (registered, source) {
            let alone = Table::Source as usize;
            if let Err(wait) =
                self.counters
                    .add(alone, &source, now, self.max_per_source, &mut added)
            {
                self.counters.undo(&added);
                return Err(wait);
            }
        }
        #[cfg(feature = "redis")]
        let shared = match self.shared_attempt(table, client_id, registered, source, now) {
            Ok(keys) => keys,
            Err(wait) => {
                self.counters.undo(&added);
                return Err(wait);
            }
        };
        Ok(Attempt {
            added,
            #[cfg(feature = "redis")]
            shared,
        })
    }

    /// The same check against the counts of every replica (as last known here): refused
    /// when a key has used up its failures there; otherwise counted there too.
    #[cfg(feature = "redis")]
    fn shared_attempt(
        &self,
        table: Table,
        client_id: &str,
        registered: bool,
        source: Option<IpAddr>,
        now: u64,
    ) -> Result<Vec<SharedAdded>, u64> {
        let Some(shared) = self.shared.get() else {
            return Ok(Vec::new());
        };
        let mut keys = vec![(
            shared_key(table, source, Some(client_id)),
            self.max_failures,
        )];
        if let (false, Some(source)) = (registered, source) {
            keys.push((
                shared_key(Table::Source, Some(source), None),
                self.max_per_source,
            ));
        }
        for (key, max) in &keys {
            if let Some((count, wait)) = shared.count(key, now)
                && count >= u64::from(*max)
            {
                return Err(wait);
            }
        }
        Ok(keys
            .into_iter()
            .map(|(key, _)| {
                shared.add(&key, now, 1);
                (key, now)
            })
            .collect())
    }

    /// The attempt succeeded: it is not a failure.
    pub(super) fn succeeded(&self, attempt: Attempt) {
        self.counters.undo(&attempt.added);
        #[cfg(feature = "redis")]
        if let Some(shared) = self.shared.get() {
            for (key, at) in &attempt.shared {
                shared.add(key, *at, -1);
            }
        }
    }
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
    fn without_a_source_the_client_id_alone_counts() {
        let limiter = FailureLimiter::new(1, Duration::from_secs(60));
        assert!(limiter.attempt("c", true, None, 1_020).is_ok());
        assert!(limiter.attempt("c", true, None, 1_020).is_err());
        assert!(limiter.attempt("d", true, None, 1_020).is_ok());
    }
}
