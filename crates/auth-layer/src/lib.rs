//! A tower layer that puts API keys, OIDC tokens and HMAC role tokens in front of any axum,
//! hyper or tonic service.
//!
//! ```
//! use axum::{Router, body::Body, routing::get};
//! use http::{Request, StatusCode};
//! use tower::ServiceExt as _;
//! use tower_auth::{Admins, ApiKeyAuthenticator, ApiKeySet, AuthLayer, Identity, RequireRolesLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // In production: `AuthLayer::from_env()?`, which reads the variables below.
//! let keys = ApiKeySet::parse("API_KEYS", "k7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA", &Admins::default())?;
//! let app = Router::new()
//!     .route("/admin", get(|| async { "admin" }).route_layer(RequireRolesLayer::any(["admin"])?))
//!     .route("/whoami", get(|id: Identity| async move { id.subject().to_owned() }))
//!     .layer(AuthLayer::new(ApiKeyAuthenticator::new(keys)));
//!
//! let call = |path: &str, key: Option<&str>| {
//!     let mut request = Request::get(path);
//!     if let Some(key) = key {
//!         request = request.header("x-api-key", key);
//!     }
//!     app.clone().oneshot(request.body(Body::empty()).unwrap())
//! };
//! let key = Some("k7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA");
//! assert_eq!(call("/whoami", key).await?.status(), StatusCode::OK);
//! assert_eq!(call("/whoami", None).await?.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(call("/admin", key).await?.status(), StatusCode::FORBIDDEN);
//! # Ok(())
//! # }
//! ```
//!
//! # The request path
//! 1. Identity headers sent by the client ([`STRIPPED_IDENTITY_HEADERS`]) are removed.
//! 2. An exempt path (exact match; `/health` and `/grpc.health.v1.Health/Check` by default)
//!    is never rejected, but still gets an identity if it carries a valid credential.
//! 3. The credential is read from `Authorization: Bearer` or the API-key header and offered
//!    to each authenticator in order; the first that claims it decides. With the built-in
//!    methods, a bearer JWT is not offered in turn but routed by structure
//!    ([`Chain`](tower_auth_core::Chain)): the OIDC token cache is asked, then the token is
//!    read once and handed to the one method that validates its issuer, so the order of the
//!    methods costs nothing. A custom authenticator makes the chain ask in order.
//! 4. Role rules ([`AuthLayerBuilder::require_any`], `AUTH_METHOD_ROLES`, [`RequireRolesLayer`])
//!    turn a missing role into 403. A rule for `/admin` also holds for `/admin/`, `//admin`
//!    and `/%61dmin`, which a router may serve as the same path (every escape but `%2F` is
//!    decoded, as axum decodes route parameters); `/admin/*` covers `/admin` and what axum's
//!    `nest_service("/admin", ..)` serves below it. Exemptions stay exact.
//!
//! Inside `Router::nest("/api", inner)`, a layer on `inner` sees paths without `/api` (axum
//! strips the prefix and keeps the whole URI in `OriginalUri`), so its rules and exemptions
//! name `/admin`, not `/api/admin`; a layer on the outer router sees the whole path.
//!
//! # Building
//! Setters never fail; one step checks everything and returns a [`ConfigError`] naming what
//! is wrong: [`AuthLayerBuilder::build`] for a layer made in code, [`AuthConfig::build`]
//! (async, never blocking) or [`AuthConfig::build_blocking`] for one read from the
//! environment, [`RequireRolesLayer::any`] / [`RequireRolesLayer::all`] for a route layer.
//!
//! # Environment variables ([`AuthLayer::from_env`])
//! | Variable | Meaning |
//! |---|---|
//! | `AUTH_MODE` | Chain order from `api_key`, `oidc`, `hmac` ([`AuthenticatorKind`]), or `none`. Unset: the ones whose variables are set. |
//! | `API_KEYS` | Comma list, JSON `[{"name","key","roles"?}]`, entries may be `sha256:<hex>`. |
//! | `API_KEYS_FILE` | The same from a file, reloaded when it changes; emptied or deleted, no key is accepted; malformed, the current keys stay. |
//! | `API_KEY_HEADER` | Header for API keys, default `X-API-Key`. |
//! | `API_KEY_BASIC` | `true`: an API key may be the password of `Authorization: Basic` ([`AuthLayerBuilder::api_key_basic`]). |
//! | `AUTH_COOKIE` | A cookie that may carry the bearer token when no header does ([`AuthLayerBuilder::token_cookie`]). |
//! | `AUTH_RESOURCE` | RFC 9728 resource identifier: the layer serves [`RESOURCE_METADATA_PATH`] and adds `resource_metadata` to challenges ([`AuthLayerBuilder::resource`]). |
//! | `AUTH_PROBLEM_JSON` | `true`: RFC 9457 `application/problem+json` refusals ([`AuthLayerBuilder::problem_json`]). |
//! | `AUTH_STRIP_HEADERS` | Comma list of more identity headers to remove from every request, beside [`STRIPPED_IDENTITY_HEADERS`] ([`AuthLayerBuilder::strip_header`] in code). |
//! | `AUTH_ADMINS` | JSON array or comma list given role `admin`: `api_key:NAME`, `hmac:SUBJECT`, `email:ADDRESS` (verified only), `ISSUER_URL#SUBJECT`, or an unqualified name, which any method can match (see [`Admins`]; warned about when more than one method or issuer is configured). |
//! | `AUTH_PUBLIC_PATHS` | Exact exempt paths; replaces the default list. |
//! | `AUTH_METHOD_ROLES` | `/pkg.Svc/Method=r1+r2;/pkg.Admin/*=admin;/ops=admin|ops`. |
//! | `OIDC_CONFIG` | JSON: `{"issuers":[{"issuer","audience","jwks_uri"?,"roles_claim"?,"roles_prefix"?,"algorithms"?,"required_typ"?,"ca_file"?,"dpop"?,"dpop_nonce"?}], "jwks_refresh_interval_secs"?, "token_cache_size"?, "token_cache_ttl_secs"?, "leeway_secs"?}` (feature `oidc`). Discovery and `jwks_uri` must be `https`, or plain `http` to a loopback host. |
//! | `AUTH_DPOP_ORIGIN` | The public `https://host` DPoP proofs name in `htu`, behind a proxy ([`oidc::DpopVerifier`]). |
//! | `AUTH_DPOP_NONCE_KEY` | The key of the DPoP nonces issued for issuers with `"dpop_nonce": true`, the same on every replica (random per process when unset). |
//! | `OIDC_CA_FILE` | PEM file of CA certificates trusted for every issuer, besides the platform's store and the webpki roots (`ca_file` per issuer alike). |
//! | `HMAC_SECRET` | Secret of HS256 role tokens, at least 32 bytes and not guessable (the API key entropy rules); `HMAC_SECRET_PREVIOUS` also verifies during rotation; `HMAC_ISSUER` (default `auth-hmac`), `HMAC_AUDIENCE` optional (feature `hmac`). |
//! | `AUTH_LEEWAY_SECS` | Clock leeway for role tokens' `exp` / `nbf`, default 60 (OIDC has `leeway_secs`). |
//! | `AUTH_TOKEN_CLIENTS` | Registered clients of the `POST /auth/token` exchange and of `POST /auth/revoke` (feature `hmac`). |
//! | `AUTH_REVOCATION_FILE` | A file that keeps revoked role tokens and subject cut-offs across restarts (feature `hmac`). |
//! | `AUTH_REDIS_URL` | `redis://` or `rediss://` (TLS) URL of a Redis through which replicas share revoked role tokens, subject cut-offs and the failure counts of the exchange and `AUTH_FAILURE_LIMIT` (feature `redis`; needs `HMAC_SECRET` or `OIDC_CONFIG`), and, with `OIDC_CONFIG`, the DPoP proofs they accepted; refused, naming the feature, in a build without it. |
//! | `AUTH_REDIS_FAILURE` | `closed` (default: 503 for role tokens once the local copy is older than the max staleness) or `open` (keep serving, with an error event every minute). |
//! | `AUTH_REDIS_MAX_STALE_SECS` | How long the local copy is trusted while Redis is unreachable, 1 to 86400, default 60. |
//! | `AUTH_REDIS_CA_FILE` | PEM file of CAs trusted for a `rediss://` (TLS) `AUTH_REDIS_URL`, besides the platform's certificate store. |
//! | `AUTH_FAILURE_LIMIT` | `N/SECONDS`: a source that presents N invalid credentials within the window gets 429 until it ends, before any lookup ([`AuthLayerBuilder::failure_limit`]). |
//! | `AUTH_TRUSTED_PROXIES` | Addresses or CIDR blocks of the proxies whose forwarding header names the source address the exchange and `AUTH_FAILURE_LIMIT` count failures by; `AUTH_TRUSTED_PROXY_HEADER` says which header they write, `x-forwarded-for` (default) or `forwarded`. |
//! | `AUTH_CLIENT_CERT_HEADER` | Header in which the `AUTH_TRUSTED_PROXIES` forward the client certificate, for certificate-bound tokens (RFC 8705): `x-forwarded-client-cert` as Envoy writes it, any other name a url-encoded PEM as nginx's `$ssl_client_escaped_cert`; ignored from any other peer ([`AuthLayerBuilder::client_cert_header`]). Without a proxy, serve with `tls::TlsListener` (feature `tls`). |
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod answer;
mod client_cert;
mod config;
#[cfg(feature = "oidc")]
mod dpop;
#[cfg(all(feature = "redis", feature = "oidc"))]
mod dpop_replay_redis;
mod env;
mod future;
/// Doors for the fuzz targets in `fuzz/`; not an API, never enabled in production.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "tonic")]
pub mod grpc;
#[cfg(feature = "axum")]
mod health;
mod identity_headers;
#[cfg(feature = "hmac")]
mod introspection;
mod layer;
mod limits;
pub mod metrics;
mod readiness;
mod reload;
mod require_roles;
mod resource;
mod response;
mod rules;
mod service;
#[cfg(feature = "redis")]
mod shared_limits;
mod sources;

pub use answer::{AnswerHook, AuthRejection, problem_details};
#[cfg(feature = "tls")]
pub mod tls;

pub use client_cert::TlsPeer;
pub use config::{AuthConfig, AuthenticatorKind, DEFAULT_KEY_FILE_POLL};
pub use future::AuthFuture;
pub use identity_headers::STRIPPED_IDENTITY_HEADERS;
pub use layer::{AuthLayer, AuthLayerBuilder};
pub use limits::PeerAddress;
pub use require_roles::{RequireRoles, RequireRolesLayer};
pub use resource::RESOURCE_METADATA_PATH;
pub use response::ResponseBody;
pub use service::Auth;
// The facade: an application names these from here alone, as axum re-exports axum-core.
pub use tower_auth_core::{
    ADMIN_ROLE, Admins, ApiKeyAuthenticator, ApiKeySet, AuthError, AuthErrorKind, AuthMethod,
    Authenticator, Check, Clock, ConfigError, Credential, Identity, IdentityBuilder, LOG_WINDOW,
    LOGGED_REJECTIONS_PER_SOURCE, LOGGED_REJECTIONS_WITHOUT_PEER, Outcome, OutcomeFuture, Secret,
};
pub use tower_auth_core::{ClientCertHeader, PeerCertificate};
/// HS256 role tokens and the token-exchange endpoint: the `tower-auth-hmac` crate.
#[cfg(feature = "hmac")]
#[doc(inline)]
pub use tower_auth_hmac as hmac;
/// OIDC discovery, JWKS and multi-issuer JWT validation: the `tower-auth-oidc` crate.
#[cfg(feature = "oidc")]
#[doc(inline)]
pub use tower_auth_oidc as oidc;
