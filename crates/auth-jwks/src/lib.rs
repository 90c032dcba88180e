//! OpenID Connect for the auth middleware: discovery, JWKS fetching and caching,
//! multi-issuer JWT validation and a validated-token cache.
//!
//! ```
//! use tower_auth_core::{Admins, Authenticator, Check, Credential, Outcome};
//! use tower_auth_oidc::{OidcAuthenticator, OidcConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // An issuer whose IdP is down (nothing listens on 127.0.0.1:9). In production: https URLs.
//! let config = OidcConfig::from_json("OIDC_CONFIG", r#"{"issuers": [
//!     {"issuer": "http://127.0.0.1:9", "audience": "api://orders", "roles_claim": "scope"}
//! ]}"#)?;
//! // Loads every issuer's keys at once, waiting 5 s at most; an issuer that cannot be reached
//! // does not stop start-up: its tokens answer 503 while it is retried in the background.
//! let oidc = OidcAuthenticator::start(config, Admins::default()).await?;
//! let check = |token: &'static str| async {
//!     match oidc.authenticate(Credential::Bearer(token)) {
//!         Check::Ready(outcome) => outcome,          // cache hit, keys loaded, or decided at once
//!         Check::Pending(fetching) => fetching.await, // an unknown kid or a first load
//!     }
//! };
//!
//! // Claims another issuer: not ours, decided with no network and no cryptography.
//! let foreign = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJodHRwczovL2Vsc2V3aGVyZS5leGFtcGxlIiwiYXVkIjoiYXBpOi8vb3JkZXJzIiwic3ViIjoiYWxpY2UiLCJleHAiOjQxMDI0NDQ4MDB9.c2lnbmF0dXJl";
//! assert!(matches!(check(foreign).await, Outcome::NotMine));
//! // Ours, with `alg: none`: refused as an invalid token (401), keys or not.
//! let unsigned = "eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwOi8vMTI3LjAuMC4xOjkiLCJhdWQiOiJhcGk6Ly9vcmRlcnMiLCJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMH0.";
//! let Outcome::Rejected(error) = check(unsigned).await else { panic!() };
//! assert_eq!(error.http_status(), 401);
//! // Ours and well formed, but the keys could not be loaded: 503 with Retry-After.
//! let signed = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJodHRwOi8vMTI3LjAuMC4xOjkiLCJhdWQiOiJhcGk6Ly9vcmRlcnMiLCJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMH0.c2lnbmF0dXJl";
//! let Outcome::Rejected(error) = check(signed).await else { panic!() };
//! assert_eq!(error.http_status(), 503);
//! assert!(error.retry_after().is_some());
//! # Ok(())
//! # }
//! ```
//!
//! The `dev_issuer` module (feature `dev-issuer`) shows a token accepted end to end.
//!
//! Synchronous set-up code (such as `AuthLayer::from_env()`) uses
//! [`OidcAuthenticator::start_blocking`] instead.
//!
//! # Policy
//!
//! - A token is routed by its unverified `iss` to exactly one configured issuer; any other
//!   token is [`NotMine`](tower_auth_core::Outcome::NotMine), decided without network or cryptography.
//! - Header and claims are parsed strictly (no duplicate names, objects only, integer times).
//!   `alg` must be on the issuer's allow-list (never `none` or HS*) and agree with the key's
//!   `kty`, curve and `alg`; `crit` and `b64` are refused; `jku`, `x5u`, `jwk` and `x5c` are
//!   never used. `sub` and `exp` are required; `nbf` and `iat` are checked with the leeway;
//!   `aud` must contain a configured audience.
//! - Keys come only from the issuer's JWKS (discovered, or configured). Reads are lock-free
//!   snapshots; fetches are single-flight tasks that survive cancelled requests. An unknown
//!   `kid` causes at most one fetch per issuer per cooldown (30 s from the last fetch of any
//!   kind); a known `kid` with a bad signature never does. Last-known-good keys are kept
//!   through failures up to ten refresh intervals, then the issuer answers 503.
//! - Accepted tokens are cached by SHA-256, confirmed by full equality, bounded by size, TTL
//!   and the token's own `exp`, and dropped when their key leaves the JWKS.
//!
//! # Features
//!
//! `aws_lc_rs` (default) or `rust_crypto` selects the crypto backend of jsonwebtoken and of
//! rustls (in `tower-auth-http`, whose client fetches the keys); select exactly one. Without either, [`OidcAuthenticator::start`] fails.
//!
//! `dev-issuer` adds `dev_issuer::DevIssuer`, an in-process issuer for demos and tests that
//! signs whatever it is asked to; never enable it in production.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod authenticator;
mod cache;
mod config;
// The writer hands out an inline client secret as plain text: only for the round-trip tests
// and the fuzz targets, not a public API (SECURITY.md Y3).
#[cfg(any(test, feature = "fuzzing"))]
mod config_text;
#[cfg(feature = "dev-issuer")]
pub mod dev_issuer;
mod dpop;
mod dpop_nonce;
mod fetch;
/// Doors for the fuzz targets in `fuzz/`; not an API, never enabled in production.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod introspect;
mod keys;
pub mod metrics;
mod source;
mod validate;

pub use authenticator::OidcAuthenticator;
pub use config::{IntrospectionConfig, IssuerConfig, OidcConfig, OidcConfigBuilder};
pub use dpop::{
    DPOP_HEADER, DpopPolicy, DpopVerifier, DpopVerifierBuilder, confirmation_jkt, jwk_thumbprint,
};
pub use dpop::{ProofCheck, RememberFuture, Remembered, ReplayId, ReplayStore};
pub use dpop_nonce::{asks_for_nonce, is_nonce_round_trip};
pub use source::{IssuerState, IssuerStatus};
/// Which IdP connections go through which proxy ([`OidcConfigBuilder::proxies`]).
pub use tower_auth_http::Proxies;
