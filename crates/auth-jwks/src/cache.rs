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
    /// The last eight bytes of recently inserted tokens, one per slot ([`may_hold`](Self::may_hold)).
    seen: Box<[AtomicU64]>,
    /// How far a multiplied tail is shifted to index `seen`.
    shift: u32,
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
        // Four slots per entry keep collisions rare; 2^16 slots (512 KiB) at most.
        let slots = size.saturating_mul(4).clamp(2, 1 << 16).next_power_of_two();
        Self {
            id: NEXT_CACHE_ID.fetch_add(1, Ordering::Relaxed),
            cache,
            seen: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            shift: 64 - slots.trailing_zeros(),
            hasher: RandomState::new(),
            ttl,
            leeway,
        }
    }

    /// Whether the cache may hold `token`: `false` means it surely does not, `true` only that
    /// [`get`](Self::get) should be asked.
    ///
    /// A chain asks the cache about every bearer JWT, other methods' tokens too, before it
    /// reads the token; a miss in moka costs what a hit does (its `get` records misses for
    /// its admission policy). So each insertion leaves the token's last eight bytes in a
    /// slot picked by those bytes, and a token whose slot holds other bytes is not looked
    /// up: a load instead of a hash and a lookup. Two tokens sharing a slot only cost a
    /// lookup: the validator asks [`get`](Self::get) itself before verifying a signature.
    /// The bytes need not be secret or unpredictable: a forger who matches them reaches the
    /// lookup, which compares the whole token, as every token did before.
    pub(crate) fn may_hold(&self, token: &str) -> bool {
        let tail = tail(token);
        self.cache.is_some() && self.slot(tail).load(Ordering::Relaxed) == tail
    }

    fn slot(&self, tail: u64) -> &AtomicU64 {
        // Fibonacci hashing: the top bits of the product depend on every byte of the tail.
        let index = tail.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift;
        &self.seen[usize::try_from(index).unwrap_or_default()]
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
            let tail = tail(token);
            self.slot(tail).store(tail, Ordering::Relaxed);
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

/// The last eight bytes of `token` (fewer, zero-padded, for a shorter one).
fn tail(token: &str) -> u64 {
    let bytes = token.as_bytes();
    let last = &bytes[bytes.len().saturating_sub(8)..];
    let mut tail = [0u8; 8];
    tail[8 - last.len()..].copy_from_slice(last);
    u64::from_le_bytes(tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(size: u64) -> TokenCache {
        TokenCache::new(size, Duration::from_secs(60), 0, Clock::manual(0))
    }

    #[test]
    fn may_hold_only_what_was_inserted_in_its_slot() {
        let c = cache(1000);
        assert_eq!(c.seen.len(), 4096);
        let (a, b) = ("eyJ.one.signature-aaaaaaaa", "eyJ.two.signature-bbbbbbbb");
        assert!(!c.may_hold(a) && !c.may_hold(b));
        let store = |t: &str| c.slot(tail(t)).store(tail(t), Ordering::Relaxed);
        store(a);
        assert!(c.may_hold(a));
        assert!(!c.may_hold(b));
        // Only the last eight bytes count: a forger who copies them reaches the lookup,
        // which compares the whole token.
        assert!(c.may_hold("x-aaaaaaaa"));
        // A token that takes the slot pushes the other out: `get` is then the validator's
        // to ask (OidcAuthenticator::authenticate_jws does).
        let same_slot = (0u32..)
            .map(|i| format!("eyJ.{i}.sig-{i:08}"))
            .find(|t| tail(t) != tail(a) && std::ptr::eq(c.slot(tail(t)), c.slot(tail(a))))
            .unwrap();
        store(&same_slot);
        assert!(c.may_hold(&same_slot) && !c.may_hold(a));
    }

    /// A hit is the whole token: another token with the same cache key (the same last 32
    /// characters, all of its signature that the key reads) is a miss, wherever it differs.
    #[tokio::test]
    async fn a_hit_needs_the_whole_token() {
        let c = cache(10);
        let sig = "S".repeat(86);
        let token = format!("eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhIn0.{sig}");
        let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        let key = Arc::new(crate::keys::usable_key(&jwk).unwrap());
        let source = crate::source::tests::source_for("https://idp.example", 300);
        let identity = Identity::builder(
            "a",
            tower_auth_core::AuthMethod::Hmac { issuer: "i".into() },
        )
        .build();
        let k = c.key(&token).unwrap();
        c.insert(k, &token, identity, u64::MAX, key, source);
        let now = Instant::now();
        let get = |t: &str| {
            c.get(c.key(t).unwrap(), t, 0, now, |_, id| {
                id.subject().to_owned()
            })
        };
        assert!(matches!(get(&token), Ok(s) if s == "a"));
        let mut others = vec![
            token.replace(".eyJzdWIiOiJhIn0.", ".eyJzdWIiOiJiIn0."),
            token.replacen("eyJhbGciOiJFZERTQSJ9", "eyJhbGciOiJFUzI1NiJ9", 1),
            format!("x{token}"),
            token[1..].to_owned(),
        ];
        let mut early = token.clone().into_bytes();
        early[40] = b'T';
        others.push(String::from_utf8(early).unwrap());
        for other in &others {
            assert_eq!(c.key(other), Some(k), "{other}");
            assert!(matches!(get(other), Err(Miss::Absent)), "{other}");
        }
        // And the token itself is still served (the misses did not evict it).
        assert!(get(&token).is_ok());
    }

    #[test]
    fn a_cache_that_is_off_holds_nothing() {
        let c = cache(0);
        c.slot(tail("token"))
            .store(tail("token"), Ordering::Relaxed);
        assert!(!c.may_hold("token"));
    }

    #[test]
    fn the_tail_of_a_short_token_is_padded() {
        assert_eq!(
            tail("ab"),
            u64::from_le_bytes([0, 0, 0, 0, 0, 0, b'a', b'b'])
        );
        assert_eq!(tail(""), 0);
    }
}
