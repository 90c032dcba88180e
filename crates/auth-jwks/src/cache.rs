//! The validated-token cache: a repeated token costs a keyed hash of its last characters, a
//! lookup and a full comparison instead of a signature verification.
//!
//! The key is SipHash with a per-process random key (std's `RandomState`) over the last
//! [`KEY_CHARS`] characters of the token, which are its signature's (the shortest signature
//! we accept, ES256 or EdDSA, has 86), not a SHA-256 of the whole token: what makes a hit safe
//! is the comparison of the whole token stored with the entry, so the key only has to spread
//! entries. Only verified tokens are ever inserted, and the signatures of tokens an issuer
//! signed cannot be chosen, so their last 188 or more bits spread them as well as all of
//! them would, at a tenth of the hashing and without looking for where the signature starts.
//! A key collision can only turn a hit into a miss.

use std::cell::RefCell;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant as StdInstant};

use moka::Expiry;
use tokio::time::Instant;
use tower_auth_core::{Clock, DigestBuildHasher, Identity};

use crate::keys::Key;
use crate::source::Source;

/// One accepted token and what it proved.
pub(crate) struct Entry {
    /// The whole token: a hit must be the same token, not merely the same key.
    token: Box<str>,
    pub(crate) identity: Identity,
    exp: u64,
    key: Arc<Key>,
    pub(crate) source: Arc<Source>,
    inserted: Instant,
}

struct ExpireAtExp {
    clock: Clock,
    ttl: Duration,
    leeway: u64,
}

impl Expiry<u64, Arc<Entry>> for ExpireAtExp {
    fn expire_after_create(&self, _: &u64, entry: &Arc<Entry>, _: StdInstant) -> Option<Duration> {
        let left = entry
            .exp
            .saturating_add(self.leeway)
            .saturating_sub(self.clock.now_unix());
        Some(self.ttl.min(Duration::from_secs(left)))
    }
}

/// How much of the token the cache key hashes: its last 32 characters, at least 188 bits of
/// signature (the last base64url character of a signature carries only 2 or 4 of its 6 bits).
const KEY_CHARS: usize = 32;

/// Tells one cache's entries from another's in the per-thread front.
static NEXT_CACHE_ID: AtomicU64 = AtomicU64::new(1);

/// The entry a thread served last.
struct Recent {
    cache: u64,
    key: u64,
    entry: Arc<Entry>,
    /// This thread's own copy of the entry's identity ([`Identity::unshared`]), made when the
    /// entry is served a second time in a row.
    identity: Option<Identity>,
}

thread_local! {
    /// The entry this thread served last, with its cache's id and key: a repeated token is
    /// answered without touching moka, whose bookkeeping of every read (for its eviction
    /// policy) is most of what a hit costs under load. Every check of a moka hit runs on it
    /// too, so an entry that went stale, or whose key left the JWKS, is never served from here.
    /// A token served twice in a row gets a copy of its identity for this thread, so that the
    /// clones handed to its requests write a reference count of this thread's, not one that
    /// every core serving the token writes to; a token served once is not copied.
    static RECENT: RefCell<Option<Recent>> = const { RefCell::new(None) };
}

pub(crate) struct TokenCache {
    id: u64,
    /// Keyed by [`TokenCache::key`], already a keyed hash, so moka need not hash it again.
    cache: Option<moka::sync::Cache<u64, Arc<Entry>, DigestBuildHasher>>,
    hasher: RandomState,
    ttl: Duration,
    leeway: u64,
}

/// A cache hit that is no longer good, and why; the token is then validated afresh.
pub(crate) enum Miss {
    Absent,
    Stale,
}

impl TokenCache {
    pub(crate) fn new(size: u64, ttl: Duration, leeway: u64, clock: Clock) -> Self {
        let cache = (size > 0 && !ttl.is_zero()).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(size)
                .expire_after(ExpireAtExp { clock, ttl, leeway })
                .build_with_hasher(DigestBuildHasher::default())
        });
        Self {
            id: NEXT_CACHE_ID.fetch_add(1, Ordering::Relaxed),
            cache,
            hasher: RandomState::new(),
            ttl,
            leeway,
        }
    }

    /// The cache key of `token`, or `None` when the cache is off.
    pub(crate) fn key(&self, token: &str) -> Option<u64> {
        let token = token.as_bytes();
        let tail = &token[token.len().saturating_sub(KEY_CHARS)..];
        self.cache.as_ref().map(|_| self.hasher.hash_one(tail))
    }

    /// `hit` applied to the entry for `token` and the identity to hand out, if it is the same
    /// token and still good: not expired by the wall clock at `now_unix` (rechecked on every
    /// hit), younger than the TTL on the monotonic clock at `now`, and verified by a key the
    /// issuer still publishes.
    ///
    /// This thread's last entry is used in place, without cloning it: its reference count
    /// would otherwise be written by every thread serving the same token. `hit` runs while
    /// that entry is borrowed, so it must not call back into the cache (or log: a subscriber
    /// is foreign code).
    pub(crate) fn get<R>(
        &self,
        key: u64,
        token: &str,
        now_unix: u64,
        now: Instant,
        hit: impl FnOnce(&Entry, &Identity) -> R,
    ) -> Result<R, Miss> {
        let Some(cache) = &self.cache else {
            return Err(Miss::Absent);
        };
        let mut hit = Some(hit);
        let front = RECENT.with(|r| {
            let mut recent = r.borrow_mut();
            let front = recent
                .as_mut()
                .filter(|f| f.cache == self.id && f.key == key)?;
            Some(self.check(&front.entry, token, now_unix, now).map(|()| {
                let identity = front
                    .identity
                    .get_or_insert_with(|| front.entry.identity.unshared());
                hit.take().expect("one entry is applied")(&front.entry, identity)
            }))
        });
        let result = match front {
            Some(result) => result,
            None => {
                // A chain asks this cache about every bearer JWT, other methods' tokens too,
                // and moka's `get` records every miss for its admission policy (most of a
                // miss's cost): look first, and let `insert` record the miss of a token that
                // turned out to be ours.
                if !cache.contains_key(&key) {
                    return Err(Miss::Absent);
                }
                let entry = cache.get(&key).ok_or(Miss::Absent)?;
                let result = self
                    .check(&entry, token, now_unix, now)
                    .map(|()| hit.take().expect("one entry is applied")(&entry, &entry.identity));
                if result.is_ok() {
                    RECENT.with(|r| {
                        *r.borrow_mut() = Some(Recent {
                            cache: self.id,
                            key,
                            entry,
                            identity: None,
                        });
                    });
                }
                result
            }
        };
        if let Err(Miss::Stale) = result {
            cache.invalidate(&key);
            RECENT.with(|r| {
                let mut recent = r.borrow_mut();
                if recent
                    .as_ref()
                    .is_some_and(|f| f.cache == self.id && f.key == key)
                {
                    *recent = None;
                }
            });
        }
        result
    }

    /// Whether `entry` stands for `token` and is still good (see [`get`](Self::get)).
    fn check(&self, entry: &Entry, token: &str, now_unix: u64, now: Instant) -> Result<(), Miss> {
        if *entry.token != *token {
            return Err(Miss::Absent);
        }
        if now_unix >= entry.exp.saturating_add(self.leeway)
            || now.saturating_duration_since(entry.inserted) >= self.ttl
            || entry.key.is_revoked()
        {
            return Err(Miss::Stale);
        }
        Ok(())
    }

    pub(crate) fn insert(
        &self,
        cache_key: u64,
        token: &str,
        identity: Identity,
        exp: u64,
        key: Arc<Key>,
        source: Arc<Source>,
    ) {
        if let Some(cache) = &self.cache {
            // The read `get` left unrecorded: TinyLFU admits a new entry by how often its key
            // was asked for, as it did when every miss was recorded.
            let _ = cache.get(&cache_key);
            cache.insert(
                cache_key,
                Arc::new(Entry {
                    token: token.into(),
                    identity,
                    exp,
                    key,
                    source,
                    inserted: Instant::now(),
                }),
            );
        }
    }

    /// Entries held, after pending evictions have run.
    pub(crate) fn len(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| {
            c.run_pending_tasks();
            c.entry_count()
        })
    }
}
