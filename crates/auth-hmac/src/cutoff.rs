//! Cutting off every token of a subject: "tokens of subject S issued up to now are
//! invalid", for the methods whose tokens carry an issuer, a subject and an issue time (OIDC
//! and HMAC role tokens).
//!
//! A cut-off is kept in the [`RevocationList`], beside the revoked token ids, so that it is
//! written to the same file (`AUTH_REVOCATION_FILE`) and shared through the same Redis. It is
//! keyed by the method and issuer that vouched for the subject: `alice` of one OIDC issuer
//! is not `alice` of another, nor the HMAC subject `alice`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, UNIX_EPOCH};

use tower_auth_core::{AuthMethod, Capped, Identity};

use crate::{MAX_TOKEN_LIFETIME, RevocationError, RevocationList};

/// How many subjects a list holds cut-offs for. Past it a new cut-off is refused
/// ([`RevocationError::Full`]): dropping one would silently let its tokens back in.
pub const MAX_SUBJECT_CUTOFFS: usize = 10_000;

/// How long a cut-off is kept: past [`MAX_TOKEN_LIFETIME`] plus a day (for any clock leeway),
/// no token issued before it can still be valid.
pub const SUBJECT_CUTOFF_KEEP: Duration =
    Duration::from_secs(MAX_TOKEN_LIFETIME.as_secs() + 86_400);

/// One subject's cut-off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cutoff {
    /// Tokens issued before this Unix second are refused.
    pub(crate) before: u64,
    /// The Unix second after which the entry is dropped.
    pub(crate) until: u64,
}

impl Cutoff {
    /// When a cut-off refusing tokens issued before `before` is dropped: once no such token
    /// can still be valid. Fixed by `before`, so that Redis can hold a cut-off as one member
    /// per subject scored by this alone.
    pub(crate) fn until_of(before: u64) -> u64 {
        before.saturating_add(SUBJECT_CUTOFF_KEEP.as_secs())
    }

    /// The inverse of [`until_of`](Self::until_of).
    #[cfg(any(feature = "redis", test))]
    pub(crate) fn before_of(until: u64) -> u64 {
        until.saturating_sub(SUBJECT_CUTOFF_KEEP.as_secs())
    }
}

/// The cut-offs of one list: by method (with its issuer), then by subject, so that a lookup
/// borrows the identity's own strings.
pub(crate) struct Cutoffs {
    map: RwLock<HashMap<AuthMethod, HashMap<Box<str>, Cutoff>>>,
    len: AtomicUsize,
    /// How many seconds past the cut-off's second a token's `iat` may be and the token still
    /// be refused: how far ahead of this clock an issuer's clock may run.
    leeway_secs: AtomicU64,
}

impl Default for Cutoffs {
    fn default() -> Self {
        Self {
            map: RwLock::default(),
            len: AtomicUsize::new(0),
            leeway_secs: AtomicU64::new(crate::DEFAULT_LEEWAY.as_secs()),
        }
    }
}

impl Cutoffs {
    /// Adds or extends a cut-off; `Ok(false)` when nothing changed (held already, at least as
    /// far, or already past `until`).
    pub(crate) fn insert(
        &self,
        method: &AuthMethod,
        subject: &str,
        cutoff: Cutoff,
        now: u64,
    ) -> Result<bool, RevocationError> {
        if cutoff.until <= now {
            return Ok(false);
        }
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(held) = map.get_mut(method).and_then(|m| m.get_mut(subject)) {
            if held.before >= cutoff.before && held.until >= cutoff.until {
                return Ok(false);
            }
            held.before = held.before.max(cutoff.before);
            held.until = held.until.max(cutoff.until);
            return Ok(true);
        }
        if self.len.load(Ordering::Acquire) >= MAX_SUBJECT_CUTOFFS {
            purge(&mut map, now);
            self.len.store(count(&map), Ordering::Release);
            if self.len.load(Ordering::Acquire) >= MAX_SUBJECT_CUTOFFS {
                return Err(RevocationError::Full);
            }
        }
        map.entry(method.clone())
            .or_default()
            .insert(subject.into(), cutoff);
        self.len.fetch_add(1, Ordering::AcqRel);
        Ok(true)
    }

    /// Whether `identity`'s credential is cut off: its subject has a cut-off for its method
    /// and issuer, and the credential was issued before it or carries no issue time.
    pub(crate) fn cuts_off(&self, identity: &Identity) -> bool {
        if self.len.load(Ordering::Acquire) == 0 {
            return false;
        }
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        let Some(held) = map
            .get(identity.method())
            .and_then(|m| m.get(identity.subject()))
        else {
            return false;
        };
        let issued = identity
            .issued_at()
            .map(|at| at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()));
        issued.is_none_or(|iat| iat < held.before)
    }

    /// The cut-offs not yet past their `until`.
    pub(crate) fn unexpired(&self, now: u64) -> Vec<(AuthMethod, Box<str>, Cutoff)> {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        map.iter()
            .flat_map(|(method, subjects)| {
                subjects
                    .iter()
                    .filter(|(_, c)| c.until > now)
                    .map(|(subject, c)| (method.clone(), subject.clone(), *c))
            })
            .collect()
    }

    pub(crate) fn purge_expired(&self, now: u64) {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        purge(&mut map, now);
        self.len.store(count(&map), Ordering::Release);
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }
}

fn purge(map: &mut HashMap<AuthMethod, HashMap<Box<str>, Cutoff>>, now: u64) {
    for subjects in map.values_mut() {
        subjects.retain(|_, c| c.until > now);
    }
    map.retain(|_, subjects| !subjects.is_empty());
}

fn count(map: &HashMap<AuthMethod, HashMap<Box<str>, Cutoff>>) -> usize {
    map.values().map(HashMap::len).sum()
}

/// The method as written in a file or in Redis: `("hmac" | "oidc", issuer)`.
pub(crate) fn method_parts(method: &AuthMethod) -> Option<(&'static str, &str)> {
    match method {
        AuthMethod::Hmac { issuer } => Some(("hmac", issuer)),
        AuthMethod::Oidc { issuer } => Some(("oidc", issuer)),
        _ => None,
    }
}

/// The method a file or Redis names; `None` for a kind that has no cut-offs.
pub(crate) fn method_from(kind: &str, issuer: &str) -> Option<AuthMethod> {
    match kind {
        "hmac" => Some(AuthMethod::Hmac {
            issuer: issuer.into(),
        }),
        "oidc" => Some(AuthMethod::Oidc {
            issuer: issuer.into(),
        }),
        _ => None,
    }
}

impl RevocationList {
    /// Cuts off every token of `subject` that `method` (with its issuer) vouched for and that
    /// was issued in the current second or earlier (by the list's clock), allowing for an
    /// issuer's clock that runs up to the [cut-off leeway](Self::set_cutoff_leeway) ahead: from
    /// now on the layer refuses the tokens whose `iat` is at most this second plus that leeway
    /// (401 `invalid_token`), cached ones included, and a token stamped later works (so a
    /// client gets a working token again once the leeway has passed). A token of that subject
    /// without `iat` is refused as long as the
    /// cut-off is held. The cut-off is kept [`SUBJECT_CUTOFF_KEEP`], written to the list's
    /// file by [`persist`](Self::persist) and shared through Redis like a revocation. Records
    /// an audit event (target `auth`, `event = "subject_revoked"`).
    ///
    /// The check is made by `tower_auth`'s layer for every method, after authentication
    /// ([`is_cut_off`](Self::is_cut_off)), not by the [`HmacAuthenticator`](crate::HmacAuthenticator)
    /// alone.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use tower_auth_core::{AuthMethod, Clock, Identity};
    /// use tower_auth_hmac::RevocationList;
    ///
    /// let clock = Clock::manual(1_700_000_000);
    /// let list = RevocationList::new(clock.clone());
    /// list.set_cutoff_leeway(Duration::from_secs(30));
    /// let idp = AuthMethod::Oidc { issuer: "https://login.example.com".into() };
    /// let token_at = |secs: u64| {
    ///     Identity::builder("alice", idp.clone()).issued_at(UNIX_EPOCH + Duration::from_secs(secs)).build()
    /// };
    /// list.revoke_subject(&idp, "alice").unwrap();
    /// assert!(list.is_cut_off(&token_at(1_700_000_000)));
    /// // Stamped by an issuer up to 30 s ahead: maybe issued before the cut-off.
    /// assert!(list.is_cut_off(&token_at(1_700_000_030)));
    /// assert!(!list.is_cut_off(&token_at(1_700_000_031)));
    /// let other = AuthMethod::Oidc { issuer: "https://other.example.com".into() };
    /// assert!(!list.is_cut_off(&Identity::builder("alice", other).build()));
    /// ```
    ///
    /// # Errors
    /// [`RevocationError::NoIssueTime`] for an API key (remove the key instead),
    /// [`RevocationError::Full`] when the list holds [`MAX_SUBJECT_CUTOFFS`] subjects.
    pub fn revoke_subject(
        &self,
        method: &AuthMethod,
        subject: &str,
    ) -> Result<(), RevocationError> {
        let cutoff = self.cut_off_now(method, subject)?;
        tracing::info!(target: "auth", event = "subject_revoked", method = %method, subject = %Capped(subject), before = cutoff.before, "every token of the subject issued up to now is revoked");
        Ok(())
    }

    /// [`revoke_subject`](Self::revoke_subject) without its event, for callers that log a
    /// fuller one.
    pub(crate) fn cut_off_now(
        &self,
        method: &AuthMethod,
        subject: &str,
    ) -> Result<Cutoff, RevocationError> {
        let now = self.clock().now_unix();
        let leeway = self.cutoffs().leeway_secs.load(Ordering::Relaxed);
        let before = now.saturating_add(1).saturating_add(leeway);
        let cutoff = Cutoff {
            before,
            until: Cutoff::until_of(before),
        };
        self.insert_cutoff(method, subject, cutoff)?;
        Ok(cutoff)
    }

    /// How far ahead of this list's clock the clock of an issuer whose tokens are cut off may
    /// run (default [`DEFAULT_LEEWAY`](crate::DEFAULT_LEEWAY), 60 s; at most
    /// [`MAX_LEEWAY`](crate::MAX_LEEWAY)): a cut-off made at second T refuses the tokens whose
    /// `iat` is T plus this or earlier, since an issuer that far ahead stamps a token it
    /// issued at T that much later. The verifiers' clock leeway is the natural value
    /// (`tower_auth` sets the largest of its methods'). Cut-offs made already keep theirs.
    pub fn set_cutoff_leeway(&self, leeway: Duration) {
        let secs = leeway.min(crate::MAX_LEEWAY).as_secs();
        self.cutoffs().leeway_secs.store(secs, Ordering::Relaxed);
    }

    /// Whether `identity`'s credential was cut off by [`revoke_subject`](Self::revoke_subject):
    /// one atomic load while no subject is cut off.
    pub fn is_cut_off(&self, identity: &Identity) -> bool {
        self.cutoffs().cuts_off(identity)
    }

    /// How many subjects are cut off (expired cut-offs not yet purged included).
    pub fn cut_off_subjects(&self) -> usize {
        self.cutoffs().len()
    }

    /// Adds a cut-off here and, for a list shared through Redis, queues it for the others.
    pub(crate) fn insert_cutoff(
        &self,
        method: &AuthMethod,
        subject: &str,
        cutoff: Cutoff,
    ) -> Result<bool, RevocationError> {
        let changed = self.insert_cutoff_local(method, subject, cutoff)?;
        #[cfg(feature = "redis")]
        if changed && let Some(shared) = self.shared() {
            shared.publish_cutoff(method, subject, cutoff);
        }
        Ok(changed)
    }

    /// [`insert_cutoff`](Self::insert_cutoff) into this copy only.
    pub(crate) fn insert_cutoff_local(
        &self,
        method: &AuthMethod,
        subject: &str,
        cutoff: Cutoff,
    ) -> Result<bool, RevocationError> {
        if method_parts(method).is_none() {
            return Err(RevocationError::NoIssueTime);
        }
        let now = self.clock().now_unix();
        let changed = self
            .cutoffs()
            .insert(method, subject, cutoff, now)
            .inspect_err(|_| {
                tracing::error!(target: "auth", event = "revocation_list_full", method = %method, subject = %Capped(subject), capacity = MAX_SUBJECT_CUTOFFS, "subject NOT cut off: the list of cut-offs is full");
            })?;
        if changed {
            self.changed();
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use tower_auth_core::Clock;

    use super::*;

    fn hmac() -> AuthMethod {
        AuthMethod::Hmac {
            issuer: "tower-auth".into(),
        }
    }

    fn token(method: &AuthMethod, subject: &str, iat: Option<u64>) -> Identity {
        let mut builder = Identity::builder(subject, method.clone());
        if let Some(iat) = iat {
            builder = builder.issued_at(UNIX_EPOCH + Duration::from_secs(iat));
        }
        builder.build()
    }

    /// SECURITY.md S10, S11.
    #[test]
    fn a_cut_off_refuses_tokens_of_its_second_and_before_and_only_of_its_issuer() {
        let clock = Clock::manual(1_000);
        let list = RevocationList::new(clock.clone());
        // Issuers' clocks in step with this one (see the next test for those ahead).
        list.set_cutoff_leeway(Duration::ZERO);
        let oidc = AuthMethod::Oidc {
            issuer: "https://a.example".into(),
        };
        let other = AuthMethod::Oidc {
            issuer: "https://b.example".into(),
        };
        assert!(!list.is_cut_off(&token(&hmac(), "alice", Some(900))));
        list.revoke_subject(&hmac(), "alice").unwrap();
        assert!(list.is_cut_off(&token(&hmac(), "alice", Some(900))));
        assert!(
            list.is_cut_off(&token(&hmac(), "alice", Some(1_000))),
            "same second"
        );
        assert!(
            !list.is_cut_off(&token(&hmac(), "alice", Some(1_001))),
            "later second"
        );
        assert!(list.is_cut_off(&token(&hmac(), "alice", None)), "no iat");
        assert!(!list.is_cut_off(&token(&hmac(), "bob", Some(900))));
        assert!(!list.is_cut_off(&token(&oidc, "alice", Some(900))));
        list.revoke_subject(&oidc, "alice").unwrap();
        assert!(list.is_cut_off(&token(&oidc, "alice", Some(900))));
        assert!(!list.is_cut_off(&token(&other, "alice", Some(900))));
        let key = AuthMethod::ApiKey {
            name: "alice".into(),
        };
        assert_eq!(
            list.revoke_subject(&key, "alice"),
            Err(RevocationError::NoIssueTime)
        );
        assert!(!list.is_cut_off(&token(&key, "alice", None)));
        // A later cut-off moves the line forward.
        clock.advance(Duration::from_secs(10));
        list.revoke_subject(&hmac(), "alice").unwrap();
        assert!(list.is_cut_off(&token(&hmac(), "alice", Some(1_005))));
        assert!(!list.is_cut_off(&token(&hmac(), "alice", Some(1_011))));
        assert_eq!(list.cut_off_subjects(), 2);
        // A time before the epoch is the earliest second.
        let ancient = Identity::builder("alice", hmac())
            .issued_at(SystemTime::UNIX_EPOCH - Duration::from_secs(5))
            .build();
        assert!(list.is_cut_off(&ancient));
    }

    /// SECURITY.md S19: an issuer whose clock runs ahead stamps a token issued before the
    /// cut-off with a later `iat`: up to the leeway (60 s by default) it is refused too, and
    /// the cut-off is kept its full time after that.
    #[test]
    fn a_cut_off_allows_for_issuers_clocks_running_ahead_by_the_leeway() {
        let clock = Clock::manual(1_000);
        let list = RevocationList::new(clock.clone());
        list.revoke_subject(&hmac(), "alice").unwrap();
        for iat in [1_000, 1_030, 1_060] {
            assert!(
                list.is_cut_off(&token(&hmac(), "alice", Some(iat))),
                "{iat}"
            );
        }
        assert!(!list.is_cut_off(&token(&hmac(), "alice", Some(1_061))));
        let (_, _, held) = list.cutoffs().unexpired(1_000).pop().unwrap();
        assert_eq!(held.until, Cutoff::until_of(1_061));
        assert_eq!(Cutoff::before_of(held.until), 1_061);
        // Configured: the verifiers' leeway, never past MAX_LEEWAY.
        list.set_cutoff_leeway(Duration::from_secs(5));
        list.revoke_subject(&hmac(), "bob").unwrap();
        assert!(list.is_cut_off(&token(&hmac(), "bob", Some(1_005))));
        assert!(!list.is_cut_off(&token(&hmac(), "bob", Some(1_006))));
        list.set_cutoff_leeway(Duration::from_secs(1_000_000));
        list.revoke_subject(&hmac(), "carol").unwrap();
        let max = 1_000 + crate::MAX_LEEWAY.as_secs();
        assert!(list.is_cut_off(&token(&hmac(), "carol", Some(max))));
        assert!(!list.is_cut_off(&token(&hmac(), "carol", Some(max + 1))));
        // Alice's cut-off kept the leeway it was made with.
        assert!(!list.is_cut_off(&token(&hmac(), "alice", Some(1_061))));
    }

    /// SECURITY.md S12.
    #[test]
    fn cut_offs_are_bounded_and_expire() {
        let clock = Clock::manual(1_000);
        let cutoffs = Cutoffs::default();
        let cutoff = Cutoff {
            before: 1_001,
            until: 2_000,
        };
        for i in 0..MAX_SUBJECT_CUTOFFS {
            assert_eq!(
                cutoffs.insert(&hmac(), &format!("s{i}"), cutoff, 1_000),
                Ok(true)
            );
        }
        assert_eq!(
            cutoffs.insert(&hmac(), "one-more", cutoff, 1_000),
            Err(RevocationError::Full)
        );
        assert_eq!(
            cutoffs.insert(&hmac(), "s0", cutoff, 1_000),
            Ok(false),
            "held already: no room needed"
        );
        clock.advance(Duration::from_secs(1_000));
        assert_eq!(
            cutoffs.insert(&hmac(), "one-more", cutoff, 2_000),
            Ok(false),
            "past its until: nothing to hold"
        );
        let later = Cutoff {
            before: 2_001,
            until: 3_000,
        };
        assert_eq!(cutoffs.insert(&hmac(), "one-more", later, 2_000), Ok(true));
        assert_eq!(
            cutoffs.len(),
            1,
            "the expired ones were purged to make room"
        );
    }
}
