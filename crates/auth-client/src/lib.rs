//! The client side of the auth middleware: acquire access tokens, cache and refresh them,
//! and attach them to outgoing HTTP and gRPC calls.
//!
//! ```
//! use std::time::Duration;
//! use tower_auth_client::{BearerLayer, FnSource, Token, TokenCache, TokenError};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! // Any source: ClientCredentials, TokenExchange, StaticToken, or an async closure.
//! let source = FnSource::new(|| async {
//!     Ok::<_, TokenError>(Token::new("eyJhbGciOiJFUzI1NiJ9.e30.c2ln", Some(Duration::from_secs(3600))))
//! });
//! let tokens = TokenCache::start(source).await?; // the first token, or the error, now
//!
//! // In front of a tonic Channel or a hyper client alike; here, a stand-in service.
//! let client = ServiceBuilder::new()
//!     .layer(BearerLayer::new(tokens))
//!     .service(service_fn(|request: http::Request<()>| async move {
//!         Ok::<_, std::convert::Infallible>(request.headers()["authorization"].clone())
//!     }));
//! let sent = client.oneshot(http::Request::new(())).await?;
//! assert_eq!(sent, "Bearer eyJhbGciOiJFUzI1NiJ9.e30.c2ln");
//! # Ok(()) }
//! ```
//!
//! - Sources ([`TokenSource`]): [`ClientCredentials`] (OAuth 2.0 client credentials against a
//!   token endpoint or an issuer's OpenID Connect or RFC 8414 metadata), [`TokenExchange`] (our own
//!   `POST /auth/token`), [`SubjectTokenExchange`] (RFC 8693 at an IdP),
//!   [`RefreshTokenGrant`] (a person's session in a [`TokenFile`]), [`StaticToken`] and
//!   [`FnSource`].
//! - [`TokenCache`] wraps every source: refresh ahead of expiry with jitter, one fetch at a
//!   time, the current token kept while refreshes fail, backoff, and a typed [`TokenError`]
//!   that tells rejected credentials ([`TokenErrorKind::InvalidClient`]) from an
//!   unreachable endpoint ([`TokenErrorKind::Unavailable`]). [`TokenCache::start`] fails
//!   fast; [`TokenCache::from_env`] (or `from_env_prefixed(prefix)`, `from_lookup(prefix, get)`,
//!   as the server side's `AuthConfig`) reads `AUTH_CLIENT_ID`, `AUTH_CLIENT_SECRET`,
//!   `AUTH_TOKEN_URL` or `AUTH_ISSUER`, `AUTH_SCOPE`, `AUTH_AUDIENCE` or `AUTH_STATIC_TOKEN`.
//! - [`BearerLayer`] sets `Authorization: Bearer <token>` on outgoing requests (hyper
//!   clients, tonic `Channel`s, any `Service<http::Request<B>>`), optionally retrying once
//!   with a fresh token on 401 / UNAUTHENTICATED ([`BearerLayer::retry_unauthorized`] with a
//!   mode from the [`bearer`] module: [`CloneBody`](bearer::CloneBody) or
//!   [`BufferBody`](bearer::BufferBody)).
//!
//! With the feature `tonic`, a [`TokenError`] names the gRPC status it stands for
//! (`TokenError::grpc_code`, `From<TokenError> for tonic::Status`), and a tonic client behind
//! [`BearerLayer`] fails with `INTERNAL` or `UNAVAILABLE` (never `UNAUTHENTICATED`, which would blame the caller) instead of `UNKNOWN`.
//!
//! Tokens and secrets never appear in `Debug` output, errors or logs.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod bearer;
mod cache;
mod device;
pub mod dpop;
mod env;
mod error;
mod exchange;
#[cfg(feature = "oidc")]
mod id_token;
mod login;
mod logout;
mod oauth;
mod policy;
mod refresh;
mod response;
mod source;
pub mod sts;
#[cfg(test)]
mod test_support;
mod token;
mod token_file;
mod transport;

pub use bearer::{Bearer, BearerLayer};
pub use cache::TokenCache;
pub use device::{DeviceLogin, PendingDeviceLogin};
pub use dpop::{DpopKey, DpopLayer};
pub use env::ENV_VARIABLES;
pub use error::{BoxError, TokenError, TokenErrorKind};
pub use exchange::TokenExchange;
pub use login::{
    AuthorizationCodeLogin, DEFAULT_CALLBACK_PATH, DEFAULT_REDIRECT_PORT, LoginError, PendingLogin,
    open_browser,
};
pub use logout::{Logout, Revocation};
pub use oauth::{ClientAuth, ClientCredentials};
pub use policy::RefreshPolicy;
pub use refresh::RefreshTokenGrant;
pub use source::{BoxFuture, FnSource, StaticToken, TokenSource};
pub use sts::SubjectTokenExchange;
pub use token::Token;
pub use token_file::{Session, TokenFile, TokenFileLock};
/// Mutual TLS (RFC 8705): a client certificate for the token request and the calls, and the
/// CA bundles of a private authorization server.
pub use tower_auth_http::{CaBundle, ClientCertError, ClientCertificate};
