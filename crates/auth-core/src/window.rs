//! [`WindowCounters`]: counts per key in fixed windows, in tables of fixed size that take no
//! lock, for limits an attacker must not be able to flush: the token exchange's lock-out,
//! the layer's `AUTH_FAILURE_LIMIT` and its rejection log lines.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counts in fixed windows, kept in count-min sketches: each key adds to two counters of its
/// table picked by a keyed hash, and its count is the smaller of the two.
///
/// The tables never grow and nothing is ever evicted, so no flood of other keys can free a
/// counted key; a collision can only count more, and which keys collide depends on a
/// per-process random hash key. The other side of that: a flood of many keys fills the
/// counters, and a key nobody counted can then read high. A limit that must never refuse a
/// key for what other keys did checks a high reading against exact counts
/// ([`SourceCounts`](crate::SourceCounts)). Each addition is one atomic update per counter: constant
/// time, no lock. A counter holds the second its window started in its top 40 bits and the
/// count in the low 24: a window starts at the first count it holds, and a counter whose
/// window has ended reads as zero.
pub struct WindowCounters {
    window_secs: u64,
    slots_per_table: usize,
    slots: Box<[AtomicU64]>,
    hasher: RandomState,
}

impl std::fmt::Debug for WindowCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowCounters")
            .field("window_secs", &self.window_secs)
            .field("tables", &(self.slots.len() / self.slots_per_table))
            .field("slots_per_table", &self.slots_per_table)
            .finish_non_exhaustive()
    }
}

/// Which counters additions went to, and the windows they were in, to take them back: at
/// most four (two keys), kept inline so that counting allocates nothing.
#[derive(Debug, Default)]
pub struct Added {
    added: [(usize, u64); 4],
    len: usize,
}

impl Added {
    fn push(&mut self, slot: (usize, u64)) {
        self.added[self.len] = slot;
        self.len += 1;
    }
}

/// The outcome of [`WindowCounters::add`] for one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counted {
    /// The key's count in its current window, this addition included.
    pub count: u32,
    /// The key's count in the window that had just ended when this addition started a new
    /// one (0 otherwise): what a log limiter reports as dropped.
    pub ended: u32,
}

impl WindowCounters {
    /// `tables` tables of `slots_per_table` counters each (rounded up to a power of two, at
    /// least 2), 8 bytes a counter, counting in windows of `window` (at least one second).
    pub fn new(tables: usize, slots_per_table: usize, window: Duration) -> Self {
        let slots_per_table = slots_per_table.max(2).next_power_of_two();
        Self {
            window_secs: window.as_secs().max(1),
            slots_per_table,
            slots: (0..tables.max(1) * slots_per_table)
                .map(|_| AtomicU64::new(0))
                .collect(),
            hasher: RandomState::new(),
        }
    }

    /// The length of a window, in seconds.
    pub fn window_secs(&self) -> u64 {
        self.window_secs
    }

    /// Adds one to `key`'s count in `table` at `now` (Unix seconds). When the count is then
    /// at most `max`, the addition stays (recorded in `added`, to take back with
    /// [`undo`](Self::undo)); otherwise it is taken back at once, and the answer is the
    /// seconds until the key's count falls to zero (its earlier window ends). Each counter's
    /// update returns the value it made, so concurrent additions for one key see distinct
    /// counts on each counter; only when two additions interleave across the two counters
    /// (A on the first, B on both, then A on the second) can both see the same smaller count,
    /// and one more than `max` stay.
    ///
    /// # Errors
    /// The seconds to wait, at least one, when the count would pass `max`.
    pub fn add(
        &self,
        table: usize,
        key: &impl Hash,
        now: u64,
        max: u32,
        added: &mut Added,
    ) -> Result<Counted, u64> {
        let window = self.window_secs;
        let slots = self.pick(table, key);
        let mut ended = u32::MAX;
        let made = slots.map(|slot| {
            let mut made = 0;
            let mut gone = 0;
            let _ = self.slots[slot].fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                (made, gone) = if now < start_of(v).saturating_add(window) && count_of(v) > 0 {
                    (
                        pack(start_of(v), count_of(v).saturating_add(1).min(MAX_COUNT)),
                        0,
                    )
                } else {
                    (pack(now, 1), count_of(v))
                };
                Some(made)
            });
            ended = ended.min(gone);
            made
        });
        let count = made.iter().map(|v| count_of(*v)).min().unwrap_or_default();
        if count > max {
            let wait = made
                .iter()
                .map(|v| start_of(*v).saturating_add(window).saturating_sub(now))
                .min()
                .unwrap_or(window);
            let mut these = Added::default();
            for (slot, value) in slots.into_iter().zip(made) {
                these.push((slot, start_of(value)));
            }
            self.undo(&these);
            return Err(wait.max(1));
        }
        for (slot, value) in slots.into_iter().zip(made) {
            added.push((slot, start_of(value)));
        }
        Ok(Counted { count, ended })
    }

    /// `key`'s count in `table` at `now` without adding to it, and the seconds until it falls
    /// to zero (0 when it is zero): two atomic loads. The count is the smaller of the two
    /// counters, so it falls to zero when the first of their windows ends.
    pub fn peek(&self, table: usize, key: &impl Hash, now: u64) -> (u32, u64) {
        let window = self.window_secs;
        let [a, b] = self.pick(table, key).map(|slot| {
            let v = self.slots[slot].load(Ordering::Acquire);
            let end = start_of(v).saturating_add(window);
            if now < end && count_of(v) > 0 {
                (count_of(v), end - now)
            } else {
                (0, 0)
            }
        });
        match a.0.min(b.0) {
            0 => (0, 0),
            count => (count, a.1.min(b.1)),
        }
    }

    /// Takes back additions, each only within the window it counted in: a counter that has
    /// moved on to a new window has forgotten it anyway.
    pub fn undo(&self, added: &Added) {
        for &(slot, start) in &added.added[..added.len] {
            let _ = self.slots[slot].fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                (start_of(v) == start && count_of(v) > 0).then(|| v - 1)
            });
        }
    }

    /// The two slots of `key` in `table`, as indexes over all tables.
    fn pick(&self, table: usize, key: &impl Hash) -> [usize; 2] {
        let tables = self.slots.len() / self.slots_per_table;
        let table = table.min(tables - 1);
        let hash = self.hasher.hash_one((table, key));
        // Two indexes from the two halves of one 64-bit hash (at most 2^32 slots a table).
        let mask = (self.slots_per_table - 1) as u64;
        let base = table * self.slots_per_table;
        [
            base + (hash & mask) as usize,
            base + ((hash >> 32) & mask) as usize,
        ]
    }
}

/// The network a source address stands for, as limits count it: an IPv6 address's /64 (what
/// one host or one subscriber is usually given), an IPv4 address itself (an IPv4-mapped one
/// as IPv4).
pub fn source_network(address: IpAddr) -> IpAddr {
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

    fn counters() -> WindowCounters {
        WindowCounters::new(2, 1 << 10, Duration::from_secs(60))
    }

    #[test]
    fn counts_in_fixed_windows_per_table() {
        let c = counters();
        let mut added = Added::default();
        assert_eq!(c.add(0, &"k", 1_000, 2, &mut added).unwrap().count, 1);
        assert_eq!(
            c.add(0, &"k", 1_010, 2, &mut Added::default())
                .unwrap()
                .count,
            2
        );
        assert_eq!(c.add(0, &"k", 1_010, 2, &mut Added::default()), Err(50));
        assert_eq!(c.peek(0, &"k", 1_010), (2, 50));
        assert_eq!(c.peek(1, &"k", 1_010), (0, 0), "another table");
        assert_eq!(c.peek(0, &"other", 1_010), (0, 0), "another key");
        c.undo(&added);
        assert_eq!(c.peek(0, &"k", 1_010), (1, 50));
        // The window ends; the next addition reports what the ended one held.
        let next = c.add(0, &"k", 1_060, 2, &mut Added::default()).unwrap();
        assert_eq!(next, Counted { count: 1, ended: 1 });
    }

    #[test]
    fn windows_after_2106_still_count() {
        let c = counters();
        let later = 1u64 << 33;
        assert!(c.add(0, &"k", later, 1, &mut Added::default()).is_ok());
        assert_eq!(c.add(0, &"k", later + 1, 1, &mut Added::default()), Err(59));
        assert_eq!(c.peek(0, &"k", later + 1), (1, 59));
    }

    #[test]
    fn concurrent_additions_do_not_slip_past_the_limit() {
        let c = counters();
        let allowed: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        (0..10)
                            .filter(|_| c.add(0, &"a", 1_000, 5, &mut Added::default()).is_ok())
                            .count()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(allowed, 5);
    }

    #[test]
    fn networks() {
        let n = |s: &str| source_network(s.parse().unwrap()).to_string();
        assert_eq!(n("2001:db8:1:2:ffff::9"), "2001:db8:1:2::");
        assert_eq!(n("::ffff:127.0.0.2"), "127.0.0.2");
        assert_eq!(n("10.0.0.1"), "10.0.0.1");
    }
}
