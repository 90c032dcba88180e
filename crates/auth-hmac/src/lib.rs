//! HS256 role tokens for the auth middleware: mint them, verify them as an
//! [`tower_auth_core::Authenticator`], revoke them by `jti`, and exchange a registered client's
//! secret for one at `POST /auth/token`, and revoke it at `POST /auth/revoke` (RFC 7009,
//! [`RevocationEndpoint`]).
//!
//! Tokens carry `sub`, `roles`, `exp`, `iat`, `jti`, `iss` (the HMAC issuer, `auth-hmac` by
//! default) and optionally `aud`. A token is claimed by [`HmacAuthenticator`] only when its
//! `iss` is the HMAC issuer, so role tokens and OIDC tokens can share one chain.
//!
//! ```
//! use std::time::Duration;
//! use tower_auth_core::{Admins, Authenticator, Check, Clock, Credential, Outcome};
//! use tower_auth_hmac::{HmacAuthenticator, HmacConfig};
//!
//! let clock = Clock::manual(1_700_000_000);
//! let config = HmacConfig::builder("k7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA-role-tokens")
//!     .audience("metrics")
//!     .clock(clock.clone())
//!     .build()?;
//! let token = config.mint("ops", ["runtime.metrics:read"], Duration::from_secs(3600), Some("metrics")).unwrap();
//! let auth = HmacAuthenticator::new(config, Admins::default());
//!
//! let Check::Ready(Outcome::Authenticated(identity)) = auth.authenticate(Credential::Bearer(&token)) else {
//!     panic!("a fresh token is accepted");
//! };
//! assert_eq!(identity.subject(), "ops");
//! assert!(identity.has_role("runtime.metrics:read"));
//!
//! // An hour and a leeway minute later, the same token is refused.
//! clock.advance(Duration::from_secs(3600 + 60));
//! let Check::Ready(Outcome::Rejected(error)) = auth.authenticate(Credential::Bearer(&token)) else {
//!     panic!("an expired token is refused");
//! };
//! assert_eq!(error.reason(), "token_expired");
//!
//! // Other issuers' tokens and API keys are left to the next authenticator.
//! assert!(matches!(auth.authenticate(Credential::Bearer("an-api-key")), Check::Ready(Outcome::NotMine)));
//! # Ok::<(), tower_auth_core::ConfigError>(())
//! ```
//!
//! One way to do each thing: [`HmacConfig::mint`] mints, [`HmacConfig::decode`] verifies
//! (the authenticator adds revocation), [`ExchangeEndpoint`] serves the exchange as a tower
//! `Service` (and, with `axum`, as a `Router`).
//!
//! Configuration from the environment: [`HmacConfig::from_env`] (`HMAC_SECRET`,
//! `HMAC_SECRET_PREVIOUS`, `HMAC_ISSUER`, `HMAC_AUDIENCE`, `AUTH_LEEWAY_SECS`) and
//! [`ExchangeEndpoint::from_env`] (those, `AUTH_TOKEN_CLIENTS`, `AUTH_TOKEN_TTL_SECS`); each
//! has `from_env_prefixed(prefix)` and `from_lookup(prefix, get)` beside it.
//!
//! Features: `axum` adds `ExchangeEndpoint::router`, to serve the exchange from an axum
//! `Router`. `aws_lc_rs` (default) or `rust_crypto` selects the
//! implementation of HMAC-SHA256 (aws-lc-rs, or RustCrypto's `hmac` over `sha2`), as
//! `tower-auth-oidc` selects jsonwebtoken's; a build with neither does not compile. `redis`
//! adds `RevocationList::share_through_redis`: replicas share their revocations through
//! Redis while each checks only its local copy.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod authenticator;
mod config;
mod cutoff;
mod exchange;
mod mac;
pub mod metrics;
mod revocation;
#[cfg(feature = "redis")]
mod shared;
#[cfg(feature = "redis")]
mod shared_counts;
mod token;

pub use authenticator::HmacAuthenticator;
pub use config::{
    DEFAULT_ISSUER, DEFAULT_LEEWAY, HmacConfig, HmacConfigBuilder, MAX_LEEWAY, MIN_SECRET_LEN,
};
pub use cutoff::{MAX_SUBJECT_CUTOFFS, SUBJECT_CUTOFF_KEEP};
pub use exchange::{
    BODY_DEADLINE, DEFAULT_FAILURE_WINDOW, DEFAULT_MAX_FAILURES, DEFAULT_TOKEN_LIFETIME,
    ExchangeEndpoint, ExchangeEndpointBuilder, ForwardedHeader, IntrospectFuture, Introspector,
    MAX_BODY_BYTES, REVOKE_PATH, RevocationEndpoint, TOKEN_PATH, TokenClients,
};
pub use revocation::{
    CLIENT_SHARE_PERCENT, DEFAULT_REVOCATION_CAPACITY, RevocationError, RevocationList,
};
#[cfg(feature = "redis")]
pub use shared::{
    DEFAULT_REDIS_MAX_STALE, MAX_REDIS_MAX_STALE, REDIS_START_TIMEOUT, RedisFailure, RedisSettings,
    RedisSync, ShareError,
};
#[cfg(feature = "redis")]
pub use shared_counts::SharedCounts;
pub use token::{
    AccessTokenClaims, MAX_TOKEN_LIFETIME, MintError, RoleTokenError, RoleTokenErrorKind,
};
