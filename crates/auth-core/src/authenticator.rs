//! The `Authenticator` trait: one way of checking a credential.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::jose::CompactJws;
use crate::{AuthError, Credential, Identity};

/// What an authenticator says of a credential.
#[derive(Debug)]
pub enum Outcome {
    /// The credential is mine and valid.
    Authenticated(Identity),
    /// The credential is not of my kind (not a known API key, a JWT of another issuer):
    /// the next authenticator in the chain may take it.
    NotMine,
    /// The credential is mine and bad. The chain stops here: a present but invalid
    /// credential never falls through to another method or to anonymous access.
    Rejected(AuthError),
}

/// A boxed check that has to wait (an OIDC key fetch on a cache miss).
pub type OutcomeFuture = Pin<Box<dyn Future<Output = Outcome> + Send + 'static>>;

/// The result of [`Authenticator::authenticate`]: decided now, or after awaiting.
///
/// Synchronous checks (API keys, HMAC tokens, a cached OIDC token) answer `Ready` and pay
/// for no boxing or future; only a check that needs I/O allocates a future.
pub enum Check {
    /// Decided without waiting.
    Ready(Outcome),
    /// Decided once the future completes. The future owns everything it needs.
    Pending(OutcomeFuture),
}

impl From<Outcome> for Check {
    fn from(outcome: Outcome) -> Self {
        Self::Ready(outcome)
    }
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ready(outcome) => f.debug_tuple("Ready").field(outcome).finish(),
            Self::Pending(_) => f.write_str("Pending(..)"),
        }
    }
}

/// Which bearer values an authenticator takes, so that a [`Chain`](crate::Chain) can hand a
/// JWT to its one owner instead of asking every authenticator in turn.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Routing {
    /// Asked in chain order for every credential: the default, for an authenticator that
    /// says nothing about its tokens. One such authenticator in a chain makes the whole
    /// chain ask in order.
    InOrder,
    /// Takes the bearer JWTs ([`looks_like_jws`](crate::jose::looks_like_jws)) whose
    /// unverified `iss` is exactly one of these, and no other JWT. The chain reads such a
    /// token once and hands it to the owner's [`Authenticator::authenticate_jws`].
    Issuers(Vec<Arc<str>>),
    /// Never takes a bearer value that looks like a JWT (API keys).
    NotJws,
}

/// One method of authentication.
///
/// Routing is by structure, not by trial: an implementation answers [`Outcome::NotMine`]
/// quickly, without cryptography or I/O, for credentials that are not of its kind, and
/// never answers `NotMine` for a credential that is its kind but invalid.
///
/// Only [`method`](Self::method) and [`authenticate`](Self::authenticate) must be written.
/// A JWT validator also says which issuers it owns ([`routing`](Self::routing)) and takes a
/// token already read ([`authenticate_jws`](Self::authenticate_jws)), so that a chain
/// parses each token once whatever its order.
///
/// [`recall`](Self::recall) and [`authenticate_jws`](Self::authenticate_jws) must answer
/// exactly as [`authenticate`](Self::authenticate) would: a chain calls them instead of it.
/// A wrapper (audit, deny-list, rate limit) that forwards [`routing`](Self::routing) must
/// therefore put its policy in all three, or forward none of them and be asked in order.
pub trait Authenticator: Send + Sync + 'static {
    /// The method's name for logs and `/health`: `api_key`, `oidc`, `hmac`.
    fn method(&self) -> &'static str;

    /// Checks `credential`.
    fn authenticate(&self, credential: Credential<'_>) -> Check;

    /// Which bearer values this authenticator takes. Read once, when it joins a chain.
    fn routing(&self) -> Routing {
        Routing::InOrder
    }

    /// A bearer token this authenticator has already validated and still vouches for (a
    /// validated-token cache), answered before the token is parsed at all; `None` when it
    /// does not remember the token. Never [`Outcome::NotMine`].
    ///
    /// A chain asks this of [`Routing::Issuers`] authenticators only, for tokens that look
    /// like a JWT, before reading the token's `iss`: a hit must be cheap.
    fn recall(&self, token: &str) -> Option<Outcome> {
        let _ = token;
        None
    }

    /// Checks a bearer JWT that a chain has split and routed here by its unverified `iss`
    /// (one of [`Routing::Issuers`]), after [`recall`](Self::recall) missed. The default
    /// checks [`jws.token()`](CompactJws::token) with [`authenticate`](Self::authenticate).
    fn authenticate_jws(&self, jws: &CompactJws<'_>) -> Check {
        self.authenticate(Credential::Bearer(jws.token()))
    }
}

impl<T: Authenticator + ?Sized> Authenticator for Arc<T> {
    fn method(&self) -> &'static str {
        (**self).method()
    }

    fn authenticate(&self, credential: Credential<'_>) -> Check {
        (**self).authenticate(credential)
    }

    fn routing(&self) -> Routing {
        (**self).routing()
    }

    fn recall(&self, token: &str) -> Option<Outcome> {
        (**self).recall(token)
    }

    fn authenticate_jws(&self, jws: &CompactJws<'_>) -> Check {
        (**self).authenticate_jws(jws)
    }
}
