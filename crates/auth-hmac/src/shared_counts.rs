//! Failure counts shared by replicas through Redis (feature `redis`): the exchange's
//! lock-out and the layer's `AUTH_FAILURE_LIMIT` hold for the sum over every replica.
//!
//! No request waits for Redis. A failure is counted locally (as without Redis) and queued as
//! a delta; a background task adds the deltas to Redis (`INCRBY` on
//! `<namespace>:fail:<scope>:<window>:<key>`, which expires two windows later) and keeps the
//! sums Redis answers, refreshing those of the current window every [`REFRESH`]. A check
//! looks at the local count and at the last shared sum (plus what is queued here), so a
//! replica learns what the others counted within one refresh, or at its own first failure
//! for a key it never saw. Windows are fixed and aligned on the Unix epoch (`now / window`),
//! the same on every replica whatever its start.
//!
//! Redis down: the deltas of the current window wait (written when Redis is back, those of a
//! past window dropped) and the sums last read stay in force for their window; limits then
//! count locally, as without Redis. `AUTH_REDIS_FAILURE` does not apply to limits: an outage
//! never refuses a request that local counting lets through.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tower_auth_core::Clock;

use crate::{RedisSettings, ShareError};

/// How often the sums of the current window are read back from Redis.
pub(crate) const REFRESH: Duration = Duration::from_millis(250);
/// Keys counted at once (queued deltas, and shared sums held): past it, a new key counts
/// locally only.
const MAX_KEYS: usize = 65_536;
/// Keys written or read in one round trip.
const BATCH: usize = 1_000;

/// A key's count in one window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Count {
    window: u64,
    value: i64,
}

struct Inner {
    window_secs: u64,
    clock: Clock,
    /// `<namespace>:fail:<scope>:`
    prefix: String,
    /// Deltas counted here, not yet in Redis.
    pending: Mutex<HashMap<Box<[u8]>, Count>>,
    /// The last window in which a full `pending` was pruned: pruning is a scan of the whole
    /// table under the lock every check takes, so it runs at most once a window (a table
    /// full of the current window's keys has nothing to prune until the window ends).
    pruned: AtomicU64,
    /// The sums Redis last answered.
    sums: Mutex<HashMap<Box<[u8]>, Count>>,
    /// How many entries `sums` holds: a check skips the lock while none.
    held: AtomicUsize,
    queued: Notify,
    connected: AtomicBool,
    task: Mutex<Option<AbortHandle>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self
            .task
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }
}

/// Counts of failures per key in fixed windows, summed over every replica sharing a Redis
/// namespace and scope. Cheap to clone; the background task ends with the last clone.
#[derive(Clone)]
pub struct SharedCounts {
    inner: Arc<Inner>,
}

impl fmt::Debug for SharedCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedCounts")
            .field("window_secs", &self.inner.window_secs)
            .field("connected", &self.is_connected())
            .field("pending", &self.pending())
            .finish()
    }
}

impl SharedCounts {
    /// Counts shared through the Redis of `settings`, under `namespace` and `scope` (what is
    /// counted: replicas count the same thing under the same pair), in windows of `window`
    /// (whole seconds, at least one), by `clock` (which the callers' `now` comes from).
    /// Never waits for Redis.
    ///
    /// # Errors
    /// [`ShareError::NoRuntime`] outside a Tokio runtime.
    pub fn start(
        settings: &RedisSettings,
        namespace: &str,
        scope: &str,
        window: Duration,
        clock: Clock,
    ) -> Result<Self, ShareError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ShareError::NoRuntime)?;
        let inner = Arc::new(Inner {
            window_secs: window.as_secs().max(1),
            clock,
            prefix: format!("{namespace}:fail:{scope}:"),
            pending: Mutex::new(HashMap::new()),
            pruned: AtomicU64::new(u64::MAX),
            sums: Mutex::new(HashMap::new()),
            held: AtomicUsize::new(0),
            queued: Notify::new(),
            connected: AtomicBool::new(false),
            task: Mutex::new(None),
        });
        let conn = settings
            .connect()
            .unwrap_or_else(|e| unreachable!("a checked client is usable: {:?}", e.kind()));
        let task = runtime.spawn(flush(Arc::downgrade(&inner), conn));
        *inner.task.lock().unwrap_or_else(PoisonError::into_inner) = Some(task.abort_handle());
        Ok(Self { inner })
    }

    /// The window `now` (Unix seconds) falls in, and the seconds left in it.
    fn window(&self, now: u64) -> (u64, u64) {
        let secs = self.inner.window_secs;
        (now / secs, secs - now % secs)
    }

    /// Adds `delta` (negative to undo) to `key`'s count of the current window, in Redis soon.
    pub fn add(&self, key: &[u8], now: u64, delta: i64) {
        let (window, _) = self.window(now);
        let mut pending = self
            .inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if pending.len() >= MAX_KEYS && self.inner.pruned.swap(window, Ordering::AcqRel) != window {
            pending.retain(|_, c| c.window == window);
        }
        let full = pending.len() >= MAX_KEYS;
        match pending.get_mut(key) {
            Some(count) if count.window == window => count.value += delta,
            // An undo of a past window's failure: nothing to undo any more.
            Some(count) if count.window > window => return,
            Some(count) => {
                *count = Count {
                    window,
                    value: delta,
                }
            }
            None if full => return,
            None => {
                pending.insert(
                    key.into(),
                    Count {
                        window,
                        value: delta,
                    },
                );
            }
        }
        drop(pending);
        self.inner.queued.notify_one();
    }

    /// `key`'s count of the current window over every replica as last known here (the sum
    /// Redis last answered plus what waits to be written), and the seconds left in the
    /// window; `None` while nothing is known.
    pub fn count(&self, key: &[u8], now: u64) -> Option<(u64, u64)> {
        let (window, left) = self.window(now);
        let in_window = |c: Option<&Count>| c.filter(|c| c.window == window).map(|c| c.value);
        let shared = if self.inner.held.load(Ordering::Acquire) == 0 {
            None
        } else {
            in_window(
                self.inner
                    .sums
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(key),
            )
        };
        let queued = in_window(
            self.inner
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(key),
        );
        if shared.is_none() && queued.is_none() {
            return None;
        }
        let sum = shared.unwrap_or(0) + queued.unwrap_or(0);
        Some((u64::try_from(sum).unwrap_or(0), left))
    }

    /// Whether the last exchange with Redis worked.
    pub fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::Acquire)
    }

    /// How many keys have deltas waiting to be written to Redis.
    pub fn pending(&self) -> usize {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// The Redis key of `key` in `window`: the prefix, the window and the key in hex (keys
    /// are client ids and addresses: hex keeps any byte out of the key's syntax).
    fn redis_key(prefix: &str, window: u64, key: &[u8]) -> String {
        let mut name = format!("{prefix}{window}:");
        for byte in key {
            name.push_str(&format!("{byte:02x}"));
        }
        name
    }
}

/// The background task: writes deltas as they come, reads back the current window's sums
/// every [`REFRESH`], until the counts are dropped (noticed within a refresh or a backoff).
async fn flush(inner: Weak<Inner>, mut conn: ConnectionManager) {
    let mut failures = 0u32;
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        if Arc::strong_count(&strong) == 1 {
            return;
        }
        if round(&strong, &mut conn).await {
            failures = 0;
            if strong
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_empty()
            {
                // A delta queued meanwhile left a permit: it is written at once.
                let _ = tokio::time::timeout(REFRESH, strong.queued.notified()).await;
            }
        } else {
            failures = failures.saturating_add(1);
            // Not woken by new deltas: they wait with the others.
            tokio::time::sleep(crate::shared::backoff(failures)).await;
        }
    }
}

/// One round trip: writes up to [`BATCH`] deltas and reads the current window's other sums;
/// whether Redis answered.
async fn round(inner: &Arc<Inner>, conn: &mut ConnectionManager) -> bool {
    let now = inner.clock.now_unix();
    let window = now / inner.window_secs;
    let deltas: Vec<(Box<[u8]>, Count)> = {
        let mut pending = inner.pending.lock().unwrap_or_else(PoisonError::into_inner);
        // A past window's deltas count for nothing any more.
        pending.retain(|_, c| c.window >= window);
        let keys: Vec<Box<[u8]>> = pending.keys().take(BATCH).cloned().collect();
        keys.into_iter()
            .filter_map(|k| pending.remove_entry(&k))
            .collect()
    };
    let reads: Vec<Box<[u8]>> = {
        // Their sums come back from the writes.
        let written: std::collections::HashSet<&[u8]> =
            deltas.iter().map(|(key, _)| &**key).collect();
        let sums = inner.sums.lock().unwrap_or_else(PoisonError::into_inner);
        let mut current: Vec<(&Box<[u8]>, i64)> = sums
            .iter()
            .filter(|(k, c)| c.window == window && !written.contains(&***k))
            .map(|(k, c)| (k, c.value))
            .collect();
        // The highest counts first: those nearest their limit.
        current.sort_unstable_by_key(|(_, value)| std::cmp::Reverse(*value));
        current
            .into_iter()
            .take(BATCH)
            .map(|(k, _)| k.clone())
            .collect()
    };
    if deltas.is_empty() && reads.is_empty() {
        inner.connected.store(true, Ordering::Release);
        return true;
    }
    let expiry = inner.window_secs.saturating_mul(2);
    let mut pipe = redis::pipe();
    for (key, count) in &deltas {
        let name = SharedCounts::redis_key(&inner.prefix, count.window, key);
        pipe.cmd("INCRBY").arg(&name).arg(count.value);
        pipe.cmd("EXPIRE").arg(&name).arg(expiry).ignore();
    }
    for key in &reads {
        pipe.cmd("GET")
            .arg(SharedCounts::redis_key(&inner.prefix, window, key));
    }
    let reply: redis::RedisResult<Vec<Option<i64>>> = pipe.query_async(conn).await;
    match reply {
        Ok(values) => {
            let was = inner.connected.swap(true, Ordering::AcqRel);
            if !was {
                tracing::info!(target: "auth", event = "redis_limits_connected", scope = %inner.prefix, "failure counts shared through Redis");
            }
            let mut sums = inner.sums.lock().unwrap_or_else(PoisonError::into_inner);
            if sums.len() >= MAX_KEYS {
                sums.retain(|_, c| c.window >= window);
            }
            let written = deltas.iter().map(|(k, c)| (k, c.window));
            let read = reads.iter().map(|k| (k, window));
            for ((key, at), value) in written.chain(read).zip(values) {
                let count = Count {
                    window: at,
                    value: value.unwrap_or(0),
                };
                if let Some(held) = sums.get_mut(key) {
                    *held = count;
                } else if sums.len() < MAX_KEYS {
                    sums.insert(key.clone(), count);
                }
            }
            inner.held.store(sums.len(), Ordering::Release);
            true
        }
        Err(e) => {
            if inner.connected.swap(false, Ordering::AcqRel) {
                tracing::warn!(target: "auth", event = "redis_limits_disconnected", error = ?e.kind(), "lost Redis: failure limits count on this replica alone until it is back");
            }
            // The deltas wait for Redis (merged with those counted since).
            let mut pending = inner.pending.lock().unwrap_or_else(PoisonError::into_inner);
            for (key, count) in deltas {
                match pending.get_mut(&key) {
                    Some(now) if now.window == count.window => now.value += count.value,
                    Some(_) => {}
                    None => {
                        pending.insert(key, count);
                    }
                }
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SECURITY.md S18: with Redis unreachable, the counts are what this replica counted,
    /// in epoch-aligned windows; the deltas wait (a past window's are dropped), and an undo
    /// of a past window's failure changes nothing.
    #[tokio::test]
    async fn without_redis_counts_are_local_in_aligned_windows() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let settings = RedisSettings::new(&format!("redis://127.0.0.1:{port}")).unwrap();
        let clock = Clock::manual(1_000);
        let counts =
            SharedCounts::start(&settings, "t", "source", Duration::from_secs(60), clock).unwrap();
        assert_eq!(counts.count(b"a", 1_000), None, "nothing known");
        counts.add(b"a", 1_000, 1);
        counts.add(b"a", 1_010, 1);
        counts.add(b"b", 1_010, 1);
        // 1_000 is in the window 960..1_020: 20 s left, whenever the count started.
        assert_eq!(counts.count(b"a", 1_010), Some((2, 10)));
        counts.add(b"a", 1_010, -1);
        assert_eq!(counts.count(b"a", 1_010), Some((1, 10)));
        assert_eq!(counts.count(b"a", 1_020), None, "a new window");
        counts.add(b"a", 1_020, 1);
        counts.add(b"a", 1_000, -1);
        assert_eq!(
            counts.count(b"a", 1_020),
            Some((1, 60)),
            "a past undo is ignored"
        );
        assert!(!counts.is_connected());
        assert_eq!(counts.pending(), 2, "waiting for Redis");
    }

    /// SECURITY.md S17: a table full of one window's keys (Redis away, a flood of sources)
    /// drops new keys without a scan per failure, and is pruned once the window has ended.
    #[tokio::test]
    async fn a_full_table_is_pruned_once_a_window() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let settings = RedisSettings::new(&format!("redis://127.0.0.1:{port}")).unwrap();
        let counts = SharedCounts::start(
            &settings,
            "t",
            "source",
            Duration::from_secs(60),
            Clock::manual(1_000),
        )
        .unwrap();
        for i in 0..MAX_KEYS as u32 {
            counts.add(&i.to_be_bytes(), 1_000, 1);
        }
        counts.add(b"new", 1_000, 1);
        counts.add(b"new", 1_010, 1);
        assert_eq!(counts.count(b"new", 1_010), None, "no room in this window");
        assert_eq!(
            counts.inner.pruned.load(Ordering::Acquire),
            16,
            "pruned once"
        );
        assert_eq!(counts.pending(), MAX_KEYS);
        counts.add(b"new", 1_020, 1);
        assert_eq!(
            counts.count(b"new", 1_020),
            Some((1, 60)),
            "the next window"
        );
        assert_eq!(counts.pending(), 1);
    }

    #[test]
    fn keys_in_redis_are_prefixed_hex() {
        assert_eq!(
            SharedCounts::redis_key("ns:fail:source:", 28, b"\x00\xff:a"),
            "ns:fail:source:28:00ff3a61"
        );
    }
}
