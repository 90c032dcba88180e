//! An internal building block of `tower-auth`: what `tower-auth-oidc` and `tower-auth-client`
//! both need to talk to an identity provider, written once. Applications should depend on
//! those crates (or on the `tower-auth` facade), not on this one: its API follows their needs
//! and may change in any release.
//!
//! - [`HttpClient`]: HTTP/1.1 with connect and read timeouts, responses capped at
//!   [`MAX_BODY`], redirects never followed, `Retry-After` read on 429 and 5xx, TLS through
//!   rustls trusting the platform's certificate store, the webpki roots and any [`CaBundle`]
//!   of a private CA ([`HttpClient::with_ca`]).
//! - The loopback rule ([`is_loopback`], [`parse_endpoint`], [`require_tls_off_loopback`]):
//!   plain `http` only to this machine, for every URL a secret is sent to or keys are read from.
//! - [`Proxies`]: `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` (a `CONNECT` tunnel for https,
//!   the absolute form for http, credentials as `Proxy-Authorization`), never for loopback.
//! - [`Discovery`]: an issuer's OpenID Connect metadata, or its RFC 8414 metadata when the
//!   first is not found, with the exact issuer check.
//! - [`HttpError`]: every failure of the above, with a short reason code for logs.
//!
//! ```
//! use tower_auth_http::{HttpError, is_loopback, parse_endpoint};
//!
//! assert!(is_loopback("LOCALHOST") && is_loopback("[::1]") && !is_loopback("localhost."));
//! assert!(parse_endpoint("http://127.0.0.1:8080/token").is_ok());
//! assert_eq!(parse_endpoint("http://idp.example/token"), Err(HttpError::PlainHttp));
//! ```
//!
//! # Features
//!
//! `aws_lc_rs` (default) or `rust_crypto` selects the crypto backend of rustls; the crates
//! above forward theirs here. Without either, [`HttpClient::new`] fails with
//! [`HttpError::NoCryptoBackend`].
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod client;
mod client_cert;
mod discovery;
mod error;
mod proxy;
mod retry_after;
mod roots;
#[cfg(test)]
mod test_server;
mod url;

pub use client::{DEFAULT_TIMEOUT, HttpClient, MAX_BODY, Reply, install_default_tls_provider};
pub use client_cert::{ClientCertError, ClientCertificate};
pub use discovery::{Discovery, Metadata};
pub use error::HttpError;
pub use proxy::Proxies;
pub use roots::{CaBundle, CaError, MAX_CA_FILE, trusted_certificates_pem};
pub use url::{is_loopback, parse_endpoint, parse_url, require_tls_off_loopback};
