//! The core model of the auth middleware: who is calling ([`Identity`]), what they presented
//! ([`Credential`]), how a credential is checked ([`Authenticator`]) and how a failure is
//! answered ([`AuthError`], with its HTTP and gRPC mapping).
//!
//! [`jose`] holds the rules every JWT validator shares (compact JWS, header parameters,
//! NumericDate and the registered claims), so that HMAC role tokens and OIDC tokens are read
//! the same way.
//!
//! This crate has no runtime, framework or network dependency: it is the vocabulary that
//! `tower-auth` (tower, axum, tonic), `tower-auth-hmac` and `tower-auth-oidc` share. The one exception is
//! opt-in: the `axum` feature (off by default; `tower-auth`'s `axum` feature turns it on)
//! adds `axum-core`'s extractor traits so that `Identity` can be a handler argument, which
//! Rust's orphan rule allows only in this crate or in axum.
//!
//! ```
//! use tower_auth_core::{
//!     Admins, ApiKeyAuthenticator, ApiKeySet, AuthError, Authenticator, Check,
//!     CredentialExtractor, Outcome,
//! };
//!
//! let keys = ApiKeySet::parse("API_KEYS", "k7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA", &Admins::default()).unwrap();
//! let auth = ApiKeyAuthenticator::new(keys);
//! let check = |key: &str| {
//!     let request = http::Request::builder().header("x-api-key", key).body(()).unwrap();
//!     let credential = CredentialExtractor::default().extract(request.headers()).unwrap().unwrap();
//!     match auth.authenticate(credential) {
//!         Check::Ready(outcome) => outcome,
//!         Check::Pending(_) => unreachable!("API keys are checked synchronously"),
//!     }
//! };
//!
//! // The configured key: the caller is identified, and a handler may run (200).
//! let Outcome::Authenticated(identity) = check("k7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA") else { panic!() };
//! assert_eq!(identity.subject(), "key-1");
//!
//! // Another key: refused, and the answer says only `invalid_token` (401).
//! let Outcome::Rejected(error) = check("some-other-key-of-the-right-length!") else { panic!() };
//! assert_eq!(error.http_status(), 401);
//! assert_eq!(error.body(), r#"{"error":"invalid_token"}"#);
//!
//! // Identified, but without the role a route needs (403).
//! if !identity.has_role("admin") {
//!     let error = AuthError::insufficient_scope("admin");
//!     assert_eq!(error.http_status(), 403);
//!     assert_eq!(error.grpc_code().as_i32(), 7); // PERMISSION_DENIED
//! }
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod api_key;
mod api_key_text;
mod authenticator;
mod capped;
mod chain;
mod client_cert;
mod clock;
mod credential;
mod digest;
mod error;
mod identity;
pub mod jose;
mod json;
mod per_recorder;
mod rejection_log;
mod secret;
mod source;
mod source_counts;
mod window;

#[cfg(feature = "axum")]
mod axum;

pub use api_key::{
    ApiKeyAuthenticator, ApiKeySet, KeyWeakness, check_key_strength, check_secret_strength,
};
pub use authenticator::{Authenticator, Check, Outcome, OutcomeFuture, Routing};
pub use capped::Capped;
pub use chain::{Chain, ChainStep};
pub use client_cert::{
    ClientCertFormat, ClientCertHeader, MAX_CLIENT_CERT_HEADER_LEN, PeerCertificate,
    certificate_binding, certificate_thumbprint, confirm_certificate,
};
pub use clock::Clock;
pub use credential::{
    Credential, CredentialExtractor, DEFAULT_API_KEY_HEADER, Fingerprint, MAX_CREDENTIAL_LEN,
    is_b64token, is_dpop_scheme,
};
pub use digest::{DigestBuildHasher, DigestHasher, sha256_digest};
pub use error::{AuthError, AuthErrorKind, ConfigError, DEFAULT_REALM, GrpcCode, Protocol};
pub use identity::{ADMIN_ROLE, Admins, AuthMethod, Identity, IdentityBuilder};
#[doc(hidden)]
pub use per_recorder::{PerRecorder, RegisterHandles};
pub use rejection_log::{
    LOG_WINDOW, LOGGED_REJECTIONS_PER_SOURCE, LOGGED_REJECTIONS_WITHOUT_PEER, LogPermit,
    RejectionLog,
};
pub use secret::Secret;
pub use source::{Cidr, ForwardedHeader, socket_addr_of, source_address};
pub use source_counts::SourceCounts;
pub use window::{Added, Counted, WindowCounters, source_network};
