//! A tower layer that puts API keys, OIDC tokens and HMAC role tokens in front of any axum,
//! hyper or tonic service.
//!
//! ```no_run
//! use tower_auth::{AuthLayer, RequireRolesLayer};
//! use axum::{Router, routing::get};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let auth = AuthLayer::from_env()?;
//! let app = Router::new()
//!     .route("/metrics", get(|| async { "..." }).route_layer(RequireRolesLayer::all(["runtime.metrics:read"])?))
//!     .route("/whoami", get(|id: tower_auth_core::Identity| async move { id.subject().to_owned() }))
//!     .layer(auth);
//! # let _: Router = app;
//! # Ok(())
//! # }
//! ```
//!
//! # The request path
//! 1. Identity headers sent by the client ([`STRIPPED_IDENTITY_HEADERS`]) are removed.
//! 2. An exempt path (exact match; `/health` and `/grpc.health.v1.Health/Check` by default)
//!    is never rejected, but still gets an identity if it carries a valid credential.
//! 3. The credential is read from `Authorization: Bearer` or the API-key header and offered
//!    to each authenticator in order; the first that claims it decides.
//! 4. Role rules ([`AuthLayerBuilder::require_any`], `AUTH_METHOD_ROLES`, [`RequireRolesLayer`])
//!    turn a missing role into 403.
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
//! | `API_KEYS_FILE` | The same from a file, reloaded when it changes. |
//! | `API_KEY_HEADER` | Header for API keys, default `X-API-Key`. |
//! | `AUTH_ADMINS` | JSON array or comma list of subjects, emails or key names given role `admin`. |
//! | `AUTH_PUBLIC_PATHS` | Exact exempt paths; replaces the default list. |
//! | `AUTH_METHOD_ROLES` | `/pkg.Svc/Method=r1+r2;/pkg.Admin/*=admin;/ops=admin|ops`. |
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod chain;
mod config;
mod env;
mod future;
#[cfg(feature = "tonic")]
pub mod grpc;
#[cfg(feature = "axum")]
mod health;
mod identity_headers;
mod layer;
mod reload;
mod require_roles;
mod response;
mod rules;
mod service;

pub use config::{AuthConfig, AuthenticatorKind, DEFAULT_KEY_FILE_POLL};
pub use future::ResponseFuture;
pub use identity_headers::STRIPPED_IDENTITY_HEADERS;
pub use layer::{AuthLayer, AuthLayerBuilder};
pub use require_roles::{RequireRoles, RequireRolesLayer};
pub use response::ResponseBody;
pub use service::Auth;
pub use tower_auth_core::{AuthError, ConfigError, Identity};
