//! The validated-token cache: a repeated token costs a SHA-256, a map lookup and a few
//! comparisons instead of a signature verification.

use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use auth_core::{Clock, DigestBuildHasher, Identity};
use moka::Expiry;
use tokio::time::Instant;

use crate::keys::Key;
use crate::source::Source;

/// One accepted token and what it proved.
pub(crate) struct Entry {
    /// The whole token: a hit must be the same token, not merely the same digest.
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

impl Expiry<[u8; 32], Arc<Entry>> for ExpireAtExp {
    fn expire_after_create(
        &self,
        _: &[u8; 32],
        entry: &Arc<Entry>,
        _: StdInstant,
    ) -> Option<Duration> {
        let left = entry
            .exp
            .saturating_add(self.leeway)
            .saturating_sub(self.clock.now_unix());
        Some(self.ttl.min(Duration::from_secs(left)))
    }
}

pub(crate) struct TokenCache {
    cache: Option<moka::sync::Cache<[u8; 32], Arc<Entry>, DigestBuildHasher>>,
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
        Self { cache, ttl, leeway }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.cache.is_some()
    }

    /// The entry for `token`, if it is the same token and still good: not expired by the
    /// wall clock (rechecked on every hit), younger than the TTL on the monotonic clock,
    /// and verified by a key the issuer still publishes.
    pub(crate) fn get(
        &self,
        digest: &[u8; 32],
        token: &str,
        now_unix: u64,
    ) -> Result<Arc<Entry>, Miss> {
        let Some(cache) = &self.cache else {
            return Err(Miss::Absent);
        };
        let entry = cache.get(digest).ok_or(Miss::Absent)?;
        if *entry.token != *token {
            return Err(Miss::Absent);
        }
        if now_unix >= entry.exp.saturating_add(self.leeway)
            || entry.inserted.elapsed() >= self.ttl
            || entry.key.is_revoked()
        {
            cache.invalidate(digest);
            return Err(Miss::Stale);
        }
        Ok(entry)
    }

    pub(crate) fn insert(
        &self,
        digest: [u8; 32],
        token: &str,
        identity: Identity,
        exp: u64,
        key: Arc<Key>,
        source: Arc<Source>,
    ) {
        if let Some(cache) = &self.cache {
            cache.insert(
                digest,
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
