//! OpenID Connect for the auth middleware: discovery, JWKS fetching and caching,
//! multi-issuer JWT validation and a validated-token cache.
//!
//! ```no_run
//! use tower_auth_core::{Admins, Authenticator, Check, Clock, Credential, Outcome};
//! use tower_auth_oidc::{OidcAuthenticator, OidcConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = OidcConfig::from_json("OIDC_CONFIG", r#"{"issuers": [
//!     {"issuer": "https://login.example.com", "audience": "api://orders", "roles_claim": "scope"}
//! ]}"#)?;
//! // Loads every issuer's keys at once, waiting 5 s at most; a slow issuer answers 503 meanwhile.
//! let oidc = OidcAuthenticator::start(config, Admins::default(), Clock::system()).await?;
//!
//! let outcome = match oidc.authenticate(Credential::Bearer("eyJhbGciOi...")) {
//!     Check::Ready(outcome) => outcome,          // cache hit, or keys already loaded
//!     Check::Pending(fetching) => fetching.await, // an unknown kid or first load
//! };
//! match outcome {
//!     Outcome::Authenticated(identity) => println!("hello {}", identity.subject()),
//!     Outcome::NotMine => println!("not a token of a configured issuer"),
//!     Outcome::Rejected(error) => println!("{}", error.http_status()),
//! }
//! # Ok(())
//! # }
//! ```
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
#[cfg(feature = "dev-issuer")]
pub mod dev_issuer;
mod fetch;
mod keys;
mod source;
mod validate;

pub use authenticator::OidcAuthenticator;
pub use config::{IssuerConfig, OidcConfig, OidcConfigBuilder};
pub use source::IssuerStatus;
