//! The exchange's second backend: a client registered with `"introspect": "<issuer>"`
//! presents an upstream access token of that issuer, which an [`Introspector`] judges.
//!
//! This crate does not depend on `tower-auth-oidc`; the `tower-auth` facade wires its RFC 7662
//! introspection in (`OidcAuthenticator::introspect`), and code that builds the endpoint by
//! hand gives any closure of the same shape.

use std::future::Future;
use std::pin::Pin;

use tower_auth_core::{AuthError, Identity};

/// What an [`Introspector`] returns: the identity of an active access token, or the error a
/// request with it would get (`invalid_token`, or `unavailable` when the issuer cannot be asked).
pub type IntrospectFuture = Pin<Box<dyn Future<Output = Result<Identity, AuthError>> + Send>>;

/// Asks an issuer whether an access token is active (RFC 7662), for token clients registered
/// with `"introspect"`.
///
/// Any `Fn(&str, &str) -> IntrospectFuture` (issuer, token) is one:
///
/// ```
/// use tower_auth_core::{AuthError, AuthMethod, Identity};
/// use tower_auth_hmac::{IntrospectFuture, Introspector};
///
/// let introspector = |issuer: &str, token: &str| -> IntrospectFuture {
///     let answer = (token == "upstream-token")
///         .then(|| Identity::builder("agent", AuthMethod::Oidc { issuer: issuer.into() }).build())
///         .ok_or(AuthError::invalid_token("inactive"));
///     Box::pin(async move { answer })
/// };
/// fn takes(_: impl Introspector) {}
/// takes(introspector);
/// ```
pub trait Introspector: Send + Sync + 'static {
    /// Judges `token` by `issuer`'s introspection.
    fn introspect(&self, issuer: &str, token: &str) -> IntrospectFuture;
}

impl<F> Introspector for F
where
    F: Fn(&str, &str) -> IntrospectFuture + Send + Sync + 'static,
{
    fn introspect(&self, issuer: &str, token: &str) -> IntrospectFuture {
        self(issuer, token)
    }
}

/// Whether an introspected token is the registered client's own, and may be exchanged for a
/// bearer role token: issued to it (`client_id`), about no one else (its subject, `sub` when
/// sent, is the client too: a person's token issued to the client is not the client's), and
/// bound to no key or certificate (exchanging a sender-constrained token for a bearer one
/// would let a thief of it go without the key). The reason code of a refusal.
/// SECURITY.md N10, N16.
pub(super) fn belongs_to(identity: &Identity, client_id: &str) -> Result<(), &'static str> {
    let claims = identity.claims();
    if identity.bound_certificate().is_some() || claims.is_some_and(|c| c.contains_key("cnf")) {
        return Err("introspected_token_is_bound");
    }
    let issued_to = claims
        .and_then(|c| c.get("client_id"))
        .and_then(|v| v.as_str());
    if issued_to == Some(client_id) && identity.subject() == client_id {
        Ok(())
    } else {
        Err("introspected_token_of_another_client")
    }
}
