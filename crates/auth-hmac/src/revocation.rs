//! Revoking role tokens by `jti` before they expire.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use tower_auth_core::Clock;

/// How many revoked tokens a list holds unless told otherwise.
pub const DEFAULT_REVOCATION_CAPACITY: usize = 100_000;

/// Why a revocation was not recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RevocationError {
    /// The list holds its capacity of tokens that have not expired yet. Dropping one of them
    /// would silently un-revoke it, so nothing is dropped: rotate the secret instead.
    Full,
    /// The token to revoke did not verify (only our own valid tokens are revoked by value).
    InvalidToken,
    /// The token has no `jti`, so it cannot be told apart from others: rotate the secret.
    NoTokenId,
}

impl fmt::Display for RevocationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full => "the revocation list is full",
            Self::InvalidToken => "the token to revoke is not a valid token of this issuer",
            Self::NoTokenId => "the token has no jti and cannot be revoked alone",
        })
    }
}

impl std::error::Error for RevocationError {}

/// Revoked token ids (`jti`), each kept only until its token would have expired anyway, so
/// the list stays bounded by the number of live tokens (and by a hard capacity).
///
/// Clones share the same list: keep one to revoke while an
/// [`HmacAuthenticator`](crate::HmacAuthenticator) checks against it. The check on the
/// request path is one atomic load when the list is empty and a read lock otherwise.
#[derive(Clone)]
pub struct RevocationList {
    inner: Arc<Inner>,
}

struct Inner {
    /// jti -> Unix second after which the token is expired whatever the list says.
    entries: RwLock<HashMap<Box<str>, u64>>,
    len: AtomicUsize,
    capacity: usize,
    clock: Clock,
}

impl Default for RevocationList {
    fn default() -> Self {
        Self::new(Clock::system())
    }
}

impl fmt::Debug for RevocationList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationList")
            .field("len", &self.len())
            .field("capacity", &self.inner.capacity)
            .finish()
    }
}

impl RevocationList {
    /// An empty list with [`DEFAULT_REVOCATION_CAPACITY`], forgetting entries by `clock`.
    pub fn new(clock: Clock) -> Self {
        Self::with_capacity(clock, DEFAULT_REVOCATION_CAPACITY)
    }

    /// An empty list holding at most `capacity` unexpired revocations.
    pub fn with_capacity(clock: Clock, capacity: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                entries: RwLock::new(HashMap::new()),
                len: AtomicUsize::new(0),
                capacity,
                clock,
            }),
        }
    }

    /// Revokes the token `jti` of `subject`, keeping the entry until `keep_until` (Unix
    /// seconds: the token's `exp` plus the verifier's leeway). Records an audit event
    /// (target `auth`) that names the `jti` and subject.
    ///
    /// # Errors
    /// [`RevocationError::Full`] when the list holds its capacity of unexpired entries.
    pub fn revoke(&self, jti: &str, subject: &str, keep_until: u64) -> Result<(), RevocationError> {
        let now = self.inner.clock.now_unix();
        if keep_until <= now {
            tracing::info!(target: "auth", event = "token_revoked", jti = ?jti, subject = ?subject, already_expired = true, "role token revoked");
            return Ok(());
        }
        let mut entries = self
            .inner
            .entries
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if !entries.contains_key(jti) && entries.len() >= self.inner.capacity {
            entries.retain(|_, until| *until > now);
            if entries.len() >= self.inner.capacity {
                self.inner.len.store(entries.len(), Ordering::Release);
                tracing::error!(target: "auth", event = "revocation_list_full", jti = ?jti, subject = ?subject, capacity = self.inner.capacity, "role token NOT revoked: the revocation list is full");
                return Err(RevocationError::Full);
            }
        }
        let until = entries.entry(jti.into()).or_insert(keep_until);
        *until = (*until).max(keep_until);
        self.inner.len.store(entries.len(), Ordering::Release);
        drop(entries);
        tracing::info!(target: "auth", event = "token_revoked", jti = ?jti, subject = ?subject, keep_until, "role token revoked");
        Ok(())
    }

    /// Whether `jti` is revoked.
    pub fn is_revoked(&self, jti: &str) -> bool {
        if self.inner.len.load(Ordering::Acquire) == 0 {
            return false;
        }
        self.inner
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(jti)
    }

    /// Drops entries whose tokens have expired. [`revoke`](Self::revoke) does this itself
    /// when the list is full; call it from a timer to keep the list small.
    pub fn purge_expired(&self) {
        let now = self.inner.clock.now_unix();
        let mut entries = self
            .inner
            .entries
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        entries.retain(|_, until| *until > now);
        self.inner.len.store(entries.len(), Ordering::Release);
    }

    /// The number of entries held (expired ones not yet purged included).
    pub fn len(&self) -> usize {
        self.inner.len.load(Ordering::Acquire)
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn revoked_until_expiry_then_forgotten() {
        let clock = Clock::manual(1_000);
        let list = RevocationList::new(clock.clone());
        assert!(!list.is_revoked("a"));
        list.revoke("a", "ops", 1_100).unwrap();
        assert!(list.is_revoked("a"));
        assert!(!list.is_revoked("b"));
        clock.advance(Duration::from_secs(100));
        list.purge_expired();
        assert!(!list.is_revoked("a"));
        assert!(list.is_empty());
    }

    #[test]
    fn already_expired_tokens_take_no_room() {
        let list = RevocationList::new(Clock::manual(1_000));
        list.revoke("old", "ops", 999).unwrap();
        assert!(list.is_empty());
    }

    #[test]
    fn bounded_without_unrevoking_anything() {
        let clock = Clock::manual(1_000);
        let list = RevocationList::with_capacity(clock.clone(), 2);
        list.revoke("a", "s", 1_010).unwrap();
        list.revoke("b", "s", 1_100).unwrap();
        assert_eq!(list.revoke("c", "s", 1_100), Err(RevocationError::Full));
        assert!(list.is_revoked("a") && list.is_revoked("b") && !list.is_revoked("c"));
        // Revoking again what is already held needs no room.
        list.revoke("a", "s", 1_020).unwrap();
        clock.advance(Duration::from_secs(30));
        list.revoke("c", "s", 1_100).unwrap();
        assert!(!list.is_revoked("a") && list.is_revoked("b") && list.is_revoked("c"));
        assert_eq!(list.len(), 2);
    }

    #[test]
    fn clones_share_the_list() {
        let list = RevocationList::default();
        let other = list.clone();
        list.revoke("x", "s", u64::MAX).unwrap();
        assert!(other.is_revoked("x"));
        assert_eq!(
            format!("{other:?}"),
            "RevocationList { len: 1, capacity: 100000 }"
        );
    }
}
