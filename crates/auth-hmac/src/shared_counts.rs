//! Failure counts shared by replicas through Redis (feature `redis`): the exchange's
//! lock-out and the layer's `AUTH_FAILURE_LIMIT` hold for the sum over every replica.
//!
//! No request waits for Redis. A failure is counted locally (as without Redis) and queued as
//! a delta; a background task adds the deltas to Redis (`INCRBY` on
//! `<namespace>:fail:<scope>:<window>:<key>`, which expires two windows later) and keeps the
//! sums Redis answers, refreshing those of the current window every [`REFRESH`]. A check
//! looks at the local count and at the last shared sum (plus what is queued here), so a
//! replica learns what the others counted within one refresh, or at its own first failure
//! for a key it never saw. A check that finds nothing here for a key asks for its sum in the
//! next refresh (at most [`ASKED`] keys a round, one per slot), so a key over its limit on
//! other replicas is refused here too within a round of its first check here (that first
//! check passes), unless the round was full or another key of its slot was asked for.
//! Windows are fixed and aligned on the Unix epoch (`now / window`), the same on every
//! replica whatever its start.
//!
//! A check takes no lock for a key without a count here: a table of [`SLOTS`] atomics, by a
//! keyed hash of the key, says in which window a key of that slot was last counted, and only
//! a slot counted in the current window sends the check to the locked tables. Asking for a
//! key's sum takes a lock once a round per slot.
//!
//! Redis down: the deltas of the current window wait (written when Redis is back, those of a
//! past window dropped) and the sums last read stay in force for their window; limits then
//! count locally, as without Redis. `AUTH_REDIS_FAILURE` does not apply to limits: an outage
//! never refuses a request that local counting lets through.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
/// Sums read back for keys never counted here are kept only while the table holds fewer than
/// this: whatever other replicas counted, half of [`MAX_KEYS`] stays for this replica's own
/// keys (SECURITY.md S18).
const MAX_FOREIGN: usize = MAX_KEYS / 2;
/// Keys written or read in one round trip.
const BATCH: usize = 1_000;
/// Keys without a count here whose sums one round reads (on top of the [`BATCH`]es): past
/// it, a key is asked for in a later round, at its next check.
const ASKED: usize = 1_000;
/// Slots of the table that tells a check, without a lock, whether a key may have a count
/// here: 16 bytes each (128 KiB).
const SLOTS: usize = 1 << 13;

/// A key's count in one window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Count {
    window: u64,
    value: i64,
}

/// What a check knows, without a lock, of the keys whose hash picks this slot.
#[derive(Default)]
struct Slot {
    /// One more than the latest window in which one of them was counted here (a delta queued,
    /// or a sum read back); 0 while none was.
    counted: AtomicU64,
    /// The round whose read-back one of them was last asked for.
    asked: AtomicU64,
}

struct Inner {
    window_secs: u64,
    clock: Clock,
    /// `<namespace>:fail:<scope>:`
    prefix: String,
    /// Deltas counted here, not yet in Redis.
    pending: Mutex<HashMap<Box<[u8]>, Count>>,
    /// The last window in which a full `pending` was pruned: pruning is a scan of the whole
    /// table under the lock every addition takes, so it runs at most once a window (a table
    /// full of the current window's keys has nothing to prune until the window ends).
    pruned: AtomicU64,
    /// The sums Redis last answered.
    sums: Mutex<HashMap<Box<[u8]>, Count>>,
    /// Which slot a key has (a keyed hash: which keys share one is not for a client to pick).
    hasher: RandomState,
    slots: Box<[Slot]>,
    /// The read-back rounds started, from 1: a slot's keys are asked for once a round.
    rounds: AtomicU64,
    /// Keys checked without a count here since the last round began: their sums are read
    /// with the next one.
    asked: Mutex<Vec<Box<[u8]>>>,
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

impl Inner {
    fn slot(&self, key: &[u8]) -> &Slot {
        // The low bits of a keyed SipHash are as good as any.
        let hash = self.hasher.hash_one(key) as usize;
        &self.slots[hash % SLOTS]
    }

    /// Notes that a key of `slot` has a count in `window`.
    fn mark(slot: &Slot, window: u64) {
        slot.counted
            .fetch_max(window.saturating_add(1), Ordering::AcqRel);
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
            hasher: RandomState::new(),
            slots: (0..SLOTS).map(|_| Slot::default()).collect(),
            rounds: AtomicU64::new(1),
            asked: Mutex::new(Vec::new()),
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
        // Before the count itself: a check that sees the count sees the mark (one that sees
        // only the mark looks in the tables and finds nothing, as it would have a moment
        // earlier).
        Inner::mark(self.inner.slot(key), window);
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
    /// window; `None` while nothing is known, and then the next round reads its sum.
    ///
    /// Takes no lock for a key without a count here (a keyed hash and three atomic loads;
    /// once a round per slot, a short lock to ask for its sum), unless a key sharing its
    /// slot has one.
    pub fn count(&self, key: &[u8], now: u64) -> Option<(u64, u64)> {
        let (window, left) = self.window(now);
        let slot = self.inner.slot(key);
        if slot.counted.load(Ordering::Acquire) > window
            && let Some(sum) = self.known(key, window)
        {
            return Some((sum, left));
        }
        self.ask(key, slot);
        None
    }

    /// `key`'s count in `window` from the tables, if they have one.
    fn known(&self, key: &[u8], window: u64) -> Option<u64> {
        let in_window = |c: Option<&Count>| c.filter(|c| c.window == window).map(|c| c.value);
        let shared = in_window(
            self.inner
                .sums
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(key),
        );
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
        Some(u64::try_from(sum).unwrap_or(0))
    }

    /// Asks for `key`'s sum in the next round, unless a key of its slot was asked for in
    /// this one or the round has all it reads.
    fn ask(&self, key: &[u8], slot: &Slot) {
        let round = self.inner.rounds.load(Ordering::Acquire);
        if slot.asked.load(Ordering::Relaxed) == round
            || slot.asked.swap(round, Ordering::Relaxed) == round
        {
            return;
        }
        let mut asked = self
            .inner
            .asked
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if asked.len() < ASKED {
            asked.push(key.into());
        }
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
    // A round woken early by new deltas only writes: reading sums back (held ones and keys
    // asked for) happens once per REFRESH, so a trickle of failures cannot make rounds of
    // up to 2 x 1,000 GETs run back to back.
    let mut last_read: Option<tokio::time::Instant> = None;
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        if Arc::strong_count(&strong) == 1 {
            return;
        }
        let read = last_read.is_none_or(|at| at.elapsed() >= REFRESH);
        if read {
            last_read = Some(tokio::time::Instant::now());
        }
        if round(&strong, &mut conn, read).await {
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

/// What one round writes and reads.
struct Plan {
    /// The current window.
    window: u64,
    /// Up to [`BATCH`] deltas to add (their sums come back from `INCRBY`).
    deltas: Vec<(Box<[u8]>, Count)>,
    /// Up to [`BATCH`] sums held of the current window, the highest first.
    reads: Vec<Box<[u8]>>,
    /// Up to [`ASKED`] keys checked without a count here.
    asked: Vec<Box<[u8]>>,
}

impl Plan {
    /// Takes a round's work from the tables; with `read`, also the sums to read back, and
    /// starts a new round of asking (a round without it only writes deltas).
    fn take(inner: &Inner, read: bool) -> Self {
        let window = inner.clock.now_unix() / inner.window_secs;
        let deltas: Vec<(Box<[u8]>, Count)> = {
            let mut pending = inner.pending.lock().unwrap_or_else(PoisonError::into_inner);
            // A past window's deltas count for nothing any more.
            pending.retain(|_, c| c.window >= window);
            let keys: Vec<Box<[u8]>> = pending.keys().take(BATCH).cloned().collect();
            keys.into_iter()
                .filter_map(|k| pending.remove_entry(&k))
                .collect()
        };
        if !read {
            return Self {
                window,
                deltas,
                reads: Vec::new(),
                asked: Vec::new(),
            };
        }
        let asked = {
            let mut asked = inner.asked.lock().unwrap_or_else(PoisonError::into_inner);
            inner.rounds.fetch_add(1, Ordering::AcqRel);
            std::mem::take(&mut *asked)
        };
        // Their sums come back from the writes.
        let mut known: HashSet<&[u8]> = deltas.iter().map(|(key, _)| &**key).collect();
        let reads: Vec<Box<[u8]>> = {
            let sums = inner.sums.lock().unwrap_or_else(PoisonError::into_inner);
            let mut current: Vec<(&Box<[u8]>, i64)> = sums
                .iter()
                .filter(|(k, c)| c.window == window && !known.contains(&***k))
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
        known.extend(reads.iter().map(|key| &**key));
        // Asked for twice (a round began between a check and its asking), or counted since.
        let mut fresh = HashSet::new();
        let asked = asked
            .into_iter()
            .filter(|key| !known.contains(&**key) && fresh.insert(key.clone()))
            .collect();
        Self {
            window,
            deltas,
            reads,
            asked,
        }
    }

    fn is_empty(&self) -> bool {
        self.deltas.is_empty() && self.reads.is_empty() && self.asked.is_empty()
    }

    /// The pipeline of the round: `INCRBY` (and `EXPIRE`) per delta, `GET` per read and per
    /// key asked for, answering one value each in that order.
    fn pipeline(&self, inner: &Inner) -> redis::Pipeline {
        let expiry = inner.window_secs.saturating_mul(2);
        let mut pipe = redis::pipe();
        for (key, count) in &self.deltas {
            let name = SharedCounts::redis_key(&inner.prefix, count.window, key);
            pipe.cmd("INCRBY").arg(&name).arg(count.value);
            pipe.cmd("EXPIRE").arg(&name).arg(expiry).ignore();
        }
        for key in self.reads.iter().chain(&self.asked) {
            pipe.cmd("GET")
                .arg(SharedCounts::redis_key(&inner.prefix, self.window, key));
        }
        pipe
    }

    /// Keeps the sums Redis answered: every one written or read, and those of the keys
    /// asked for that other replicas counted (a key counted nowhere stays unknown here, its
    /// checks lock-free).
    fn absorb(&self, inner: &Inner, values: Vec<Option<i64>>) {
        let mut sums = inner.sums.lock().unwrap_or_else(PoisonError::into_inner);
        if sums.len() >= MAX_KEYS {
            sums.retain(|_, c| c.window >= self.window);
        }
        let written = self.deltas.iter().map(|(k, c)| (k, c.window, true));
        let read = self.reads.iter().map(|k| (k, self.window, true));
        let asked = self.asked.iter().map(|k| (k, self.window, false));
        for ((key, at, kept), value) in written.chain(read).chain(asked).zip(values) {
            let value = value.unwrap_or(0);
            if !kept && value <= 0 {
                continue;
            }
            let count = Count { window: at, value };
            let room = if kept { MAX_KEYS } else { MAX_FOREIGN };
            if let Some(held) = sums.get_mut(key) {
                *held = count;
            } else if sums.len() < room {
                sums.insert(key.clone(), count);
            } else {
                continue;
            }
            Inner::mark(inner.slot(key), at);
        }
    }
}

/// One round trip: writes up to [`BATCH`] deltas, reads the current window's other sums and
/// those asked for; whether Redis answered.
async fn round(inner: &Arc<Inner>, conn: &mut ConnectionManager, read: bool) -> bool {
    let plan = Plan::take(inner, read);
    if plan.is_empty() {
        inner.connected.store(true, Ordering::Release);
        return true;
    }
    let reply: redis::RedisResult<Vec<Option<i64>>> = plan.pipeline(inner).query_async(conn).await;
    match reply {
        Ok(values) => {
            let was = inner.connected.swap(true, Ordering::AcqRel);
            if !was {
                tracing::info!(target: "auth", event = "redis_limits_connected", scope = %inner.prefix, "failure counts shared through Redis");
            }
            plan.absorb(inner, values);
            true
        }
        Err(e) => {
            if inner.connected.swap(false, Ordering::AcqRel) {
                tracing::warn!(target: "auth", event = "redis_limits_disconnected", error = ?e.kind(), "lost Redis: failure limits count on this replica alone until it is back");
            }
            // The deltas wait for Redis (merged with those counted since); the keys asked
            // for are asked again at their next check.
            let mut pending = inner.pending.lock().unwrap_or_else(PoisonError::into_inner);
            for (key, count) in plan.deltas {
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

    fn key(key: &[u8]) -> Box<[u8]> {
        key.into()
    }

    /// Counts whose Redis never answers (a port nothing listens on). The tests never await,
    /// so the background task never runs a round.
    fn offline(clock: Clock) -> SharedCounts {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let settings = RedisSettings::new(&format!("redis://127.0.0.1:{port}")).unwrap();
        SharedCounts::start(&settings, "t", "source", Duration::from_secs(60), clock).unwrap()
    }

    /// SECURITY.md S18: with Redis unreachable, the counts are what this replica counted,
    /// in epoch-aligned windows; the deltas wait (a past window's are dropped), and an undo
    /// of a past window's failure changes nothing.
    #[tokio::test]
    async fn without_redis_counts_are_local_in_aligned_windows() {
        let counts = offline(Clock::manual(1_000));
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

    /// SECURITY.md S18: sums read back for keys never counted here stop being kept once the
    /// table is half full, so that other replicas' failures leave room for this one's own.
    #[tokio::test]
    async fn sums_counted_elsewhere_take_at_most_half_the_table() {
        let counts = offline(Clock::manual(1_000));
        {
            let mut sums = counts.inner.sums.lock().unwrap();
            for i in 0..MAX_FOREIGN as u32 {
                sums.insert(
                    key(&i.to_be_bytes()),
                    Count {
                        window: 16,
                        value: 1,
                    },
                );
            }
        }
        counts.add(b"own", 1_000, 1);
        assert_eq!(counts.count(b"foreign", 1_000), None);
        let plan = Plan::take(&counts.inner, true);
        assert_eq!(plan.asked, [key(b"foreign")]);
        assert_eq!(plan.deltas.len(), 1);
        // INCRBY's sum for the own key, then the held sums' GETs, then the foreign key's.
        let values = std::iter::once(Some(1))
            .chain(plan.reads.iter().map(|_| Some(1)))
            .chain(std::iter::once(Some(9)))
            .collect();
        plan.absorb(&counts.inner, values);
        assert_eq!(
            counts.count(b"own", 1_000),
            Some((1, 20)),
            "own keys still fit"
        );
        assert_eq!(counts.count(b"foreign", 1_000), None, "not kept past half");
    }

    /// A round woken early by new failures writes them without reading sums back.
    #[tokio::test]
    async fn a_round_without_reading_only_writes() {
        let counts = offline(Clock::manual(1_000));
        counts.add(b"counted", 1_000, 1);
        assert_eq!(counts.count(b"new", 1_000), None);
        let plan = Plan::take(&counts.inner, false);
        assert_eq!(plan.deltas.len(), 1);
        assert!(plan.reads.is_empty() && plan.asked.is_empty());
        let plan = Plan::take(&counts.inner, true);
        assert_eq!(
            plan.asked,
            [key(b"new")],
            "still asked for at the next read"
        );
    }

    /// SECURITY.md S17: a table full of one window's keys (Redis away, a flood of sources)
    /// drops new keys without a scan per failure, and is pruned once the window has ended.
    #[tokio::test]
    async fn a_full_table_is_pruned_once_a_window() {
        let counts = offline(Clock::manual(1_000));
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

    /// The check of a key without a count here (the common request) takes no lock: it
    /// answers while another thread holds both tables, for a key never counted and for one
    /// counted in a past window only; a key counted in the current window is found.
    #[tokio::test]
    async fn a_check_of_a_key_without_a_count_here_takes_no_lock() {
        let counts = offline(Clock::manual(1_000));
        counts.add(b"counted", 1_000, 1);
        let counted_slot = counts.inner.slot(b"counted");
        let other = (0u32..)
            .map(u32::to_be_bytes)
            .find(|key| !std::ptr::eq(counts.inner.slot(key), counted_slot))
            .unwrap();
        let pending = counts.inner.pending.lock().unwrap();
        let sums = counts.inner.sums.lock().unwrap();
        let (sent, received) = std::sync::mpsc::channel();
        let checker = counts.clone();
        std::thread::spawn(move || {
            let answers = (
                checker.count(&other, 1_000),
                checker.count(b"counted", 1_020),
            );
            sent.send(answers).unwrap();
        });
        let answers = received
            .recv_timeout(Duration::from_secs(30))
            .expect("the check waited for a lock");
        assert_eq!(answers, (None, None));
        drop((pending, sums));
        assert_eq!(counts.count(b"counted", 1_000), Some((1, 20)));
        assert_eq!(counts.count(b"counted", 1_020), None, "a new window");
    }

    /// SECURITY.md S17: a check that finds no count here asks for the key's sum in the next
    /// round, once a round, and a round reads at most `ASKED` of them whatever the number
    /// of sources checked.
    #[tokio::test]
    async fn keys_without_a_count_are_asked_for_once_a_round_and_boundedly() {
        let counts = offline(Clock::manual(1_000));
        let asked = || counts.inner.asked.lock().unwrap().clone();
        counts.add(b"counted", 1_000, 1);
        assert_eq!(counts.count(b"counted", 1_000), Some((1, 20)));
        assert!(asked().is_empty(), "a counted key is known here");
        assert_eq!(counts.count(b"new", 1_000), None);
        assert_eq!(counts.count(b"new", 1_000), None);
        assert_eq!(asked(), [key(b"new")], "once a round");
        let plan = Plan::take(&counts.inner, true);
        assert_eq!(plan.asked, [key(b"new")]);
        assert_eq!(plan.deltas.len(), 1, "written, its sum comes back");
        assert!(asked().is_empty());
        assert_eq!(counts.count(b"new", 1_000), None);
        assert_eq!(asked().len(), 1, "asked again in the next round");
        for i in 0..3 * ASKED as u32 {
            assert_eq!(counts.count(&i.to_be_bytes(), 1_000), None);
        }
        assert_eq!(asked().len(), ASKED, "a flood of sources fills one round");
        let plan = Plan::take(&counts.inner, true);
        assert_eq!(plan.asked.len(), ASKED);
        assert!(plan.reads.is_empty() && plan.deltas.is_empty());
    }

    /// SECURITY.md S17: a key checked here without a count, which other replicas counted,
    /// is known here with their sum after one round (so over its limit, it is refused);
    /// one counted nowhere stays unknown, its checks lock-free, and is asked for again.
    #[tokio::test]
    async fn a_key_asked_for_is_known_after_one_round() {
        let counts = offline(Clock::manual(1_000));
        counts.add(b"counted", 1_000, 1);
        // Keys of one slot are asked for once a round for all: these three need their own
        // (the hasher is random per process).
        let slot = |key: &[u8]| std::ptr::from_ref(counts.inner.slot(key));
        assert!(slot(b"elsewhere") != slot(b"nowhere"), "one slot: rerun");
        assert!(slot(b"elsewhere") != slot(b"counted") && slot(b"nowhere") != slot(b"counted"));
        assert_eq!(counts.count(b"elsewhere", 1_000), None);
        assert_eq!(counts.count(b"nowhere", 1_000), None);
        let plan = Plan::take(&counts.inner, true);
        assert_eq!(plan.asked.len(), 2);
        // Redis's answer, in the pipeline's order: the sum after `INCRBY`, then one `GET`
        // per key asked for (nil for a key no replica counted).
        let answers = plan
            .asked
            .iter()
            .map(|key| (**key == *b"elsewhere").then_some(5));
        let values = std::iter::once(Some(3)).chain(answers).collect();
        plan.absorb(&counts.inner, values);
        assert_eq!(counts.count(b"elsewhere", 1_000), Some((5, 20)));
        assert_eq!(counts.count(b"counted", 1_000), Some((3, 20)));
        assert_eq!(counts.count(b"nowhere", 1_000), None);
        let plan = Plan::take(&counts.inner, true);
        assert_eq!(
            plan.reads,
            [key(b"elsewhere"), key(b"counted")],
            "held sums are refreshed every round, the highest first"
        );
        assert_eq!(plan.asked, [key(b"nowhere")]);
        assert_eq!(counts.count(b"elsewhere", 1_020), None, "a new window");
    }

    #[test]
    fn keys_in_redis_are_prefixed_hex() {
        assert_eq!(
            SharedCounts::redis_key("ns:fail:source:", 28, b"\x00\xff:a"),
            "ns:fail:source:28:00ff3a61"
        );
    }
}
