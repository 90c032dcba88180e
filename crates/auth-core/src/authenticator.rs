//! The `Authenticator` trait: one way of checking a credential.

use std::future::Future;
use std::pin::Pin;

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

/// One method of authentication.
///
/// Routing is by structure, not by trial: an implementation answers [`Outcome::NotMine`]
/// quickly, without cryptography or I/O, for credentials that are not of its kind, and
/// never answers `NotMine` for a credential that is its kind but invalid.
pub trait Authenticator: Send + Sync + 'static {
    /// The method's name for logs and `/health`: `api_key`, `oidc`, `hmac`.
    fn method(&self) -> &'static str;

    /// Checks `credential`.
    fn authenticate(&self, credential: Credential<'_>) -> Check;
}

impl<T: Authenticator + ?Sized> Authenticator for std::sync::Arc<T> {
    fn method(&self) -> &'static str {
        (**self).method()
    }

    fn authenticate(&self, credential: Credential<'_>) -> Check {
        (**self).authenticate(credential)
    }
}
