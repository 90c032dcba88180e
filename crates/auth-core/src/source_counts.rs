//! [`SourceCounts`]: exact counts per source address in fixed windows, bounded, for a limit
//! that must never refuse one source for what others did.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Shards of the table, so that concurrent requests rarely wait for one lock.
const SHARDS: usize = 32;

/// Exact counts per source in fixed windows: a count belongs to its source alone (no
/// collisions, unlike [`WindowCounters`](crate::WindowCounters)), so no traffic from other
/// sources can make a source read high.
///
/// At most `capacity` sources are held. An entry leaves when its window has ended, and
/// entries are purged when a shard is full (at most once a second per shard, so that a
/// flood cannot make every insertion scan). A source that finds its shard full of sources
/// still inside their windows is not counted: it reads zero. Under a flood of more sources
/// than the capacity, sources beyond it are not limited; a source already counted stays
/// counted until its window ends, whatever the flood.
pub struct SourceCounts {
    window_secs: u64,
    per_shard: usize,
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
}

#[derive(Default)]
struct Shard {
    /// (window start, count) per source; the map's own hasher is keyed per process.
    entries: HashMap<IpAddr, (u64, u32)>,
    /// No purge before this second.
    next_purge: u64,
}

impl std::fmt::Debug for SourceCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceCounts")
            .field("window_secs", &self.window_secs)
            .field("capacity", &(self.per_shard * SHARDS))
            .finish_non_exhaustive()
    }
}

impl SourceCounts {
    /// At most `capacity` sources (at least one per shard), counting in windows of `window`
    /// (at least one second).
    pub fn new(capacity: usize, window: Duration) -> Self {
        Self {
            window_secs: window.as_secs().max(1),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, source: IpAddr) -> std::sync::MutexGuard<'_, Shard> {
        let index = (self.hasher.hash_one(source) % SHARDS as u64) as usize;
        // A panic while holding the lock leaves the counts as they were: still usable.
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// `source`'s count at `now` and the seconds until its window ends (0 and 0 when it has
    /// none).
    pub fn peek(&self, source: IpAddr, now: u64) -> (u32, u64) {
        let end = |start: u64| start.saturating_add(self.window_secs);
        match self.shard(source).entries.get(&source) {
            Some(&(start, count)) if now < end(start) => (count, end(start) - now),
            _ => (0, 0),
        }
    }

    /// Adds one to `source`'s count at `now` (a new window starts when its last has ended);
    /// the count it makes, or `None` when the source could not be held (see the type).
    pub fn add(&self, source: IpAddr, now: u64) -> Option<u32> {
        let window = self.window_secs;
        let live = |start: u64| now < start.saturating_add(window);
        let mut shard = self.shard(source);
        if let Some((start, count)) = shard.entries.get_mut(&source) {
            if live(*start) {
                *count = count.saturating_add(1);
            } else {
                (*start, *count) = (now, 1);
            }
            return Some(*count);
        }
        if shard.entries.len() >= self.per_shard && now >= shard.next_purge {
            shard.entries.retain(|_, (start, _)| live(*start));
            shard.next_purge = now.saturating_add(1);
        }
        if shard.entries.len() >= self.per_shard {
            return None;
        }
        shard.entries.insert(source, (now, 1));
        Some(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(i: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(0x0A00_0000 + i))
    }

    #[test]
    fn counts_are_exact_per_source_in_fixed_windows() {
        let counts = SourceCounts::new(1_000, Duration::from_secs(60));
        assert_eq!(counts.add(ip(1), 1_000), Some(1));
        assert_eq!(counts.add(ip(1), 1_010), Some(2));
        assert_eq!(counts.peek(ip(1), 1_010), (2, 50));
        assert_eq!(counts.peek(ip(2), 1_010), (0, 0));
        assert_eq!(counts.peek(ip(1), 1_060), (0, 0), "the window ended");
        assert_eq!(counts.add(ip(1), 1_060), Some(1), "a new one starts");
    }

    #[test]
    fn a_flood_never_makes_another_source_read_high_nor_frees_a_counted_one() {
        let counts = SourceCounts::new(SHARDS * 4, Duration::from_secs(60));
        for _ in 0..5 {
            counts.add(ip(0), 1_000);
        }
        let mut untracked = 0;
        for i in 1..100_000 {
            if counts.add(ip(i), 1_001).is_none() {
                untracked += 1;
            }
        }
        assert!(untracked > 99_000, "{untracked}");
        assert_eq!(counts.peek(ip(0), 1_002), (5, 58), "still counted");
        for i in 100_000..100_100 {
            assert_eq!(counts.peek(ip(i), 1_002), (0, 0));
        }
        // Once the flood's windows end, its entries make room again.
        assert_eq!(counts.add(ip(200_000), 1_061), Some(1));
    }
}
