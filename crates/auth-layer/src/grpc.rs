//! tonic glue (feature `tonic`).
//!
//! [`AuthLayer`](crate::AuthLayer) works unchanged in `tonic::transport::Server::builder().layer(..)`:
//! a gRPC request (a `POST` over HTTP/2 with `content-type: application/grpc*`; gRPC-Web too,
//! see [`Protocol`](tower_auth_core::Protocol)) is refused with HTTP 200 and
//! `grpc-status` 16 UNAUTHENTICATED, 7 PERMISSION_DENIED or 14 UNAVAILABLE, never with an
//! HTTP 401 that gRPC clients would turn into UNKNOWN. Credentials come from the
//! `authorization` and API-key metadata, with the same rules as HTTP headers.
//!
//! To protect a single service rather than a whole server, wrap it: an [`Auth`] or
//! [`RequireRoles`] keeps the inner service's gRPC name, and, unlike a tonic
//! interceptor, may await (a key fetch on a cache miss).
//!
//! ```
//! use tonic::server::NamedService;
//! use tower::{Layer as _, ServiceExt as _};
//! use tower_auth::{Admins, ApiKeyAuthenticator, ApiKeySet, AuthLayer, RequireRolesLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let keys = ApiKeySet::parse("API_KEYS", "k7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA", &Admins::default())?;
//! let auth = AuthLayer::new(ApiKeyAuthenticator::new(keys));
//! let (_, health) = tonic_health::server::health_reporter();
//! // `Server::builder().add_service(admin_only)` would route by the name the service keeps.
//! let admin_only = auth.layer(RequireRolesLayer::any(["admin"])?.layer(health));
//! fn name<S: NamedService>(_: &S) -> &'static str { S::NAME }
//! assert_eq!(name(&admin_only), "grpc.health.v1.Health");
//!
//! let call = |key: Option<&str>| {
//!     let mut request = http::Request::post("/grpc.health.v1.Health/Watch")
//!         .version(http::Version::HTTP_2)
//!         .header("content-type", "application/grpc");
//!     if let Some(key) = key {
//!         request = request.header("x-api-key", key);
//!     }
//!     admin_only.clone().oneshot(request.body(tonic::body::Body::empty()).unwrap())
//! };
//! // No credential: UNAUTHENTICATED, as HTTP 200 with grpc-status, which gRPC clients read.
//! let refused = call(None).await?;
//! assert_eq!(refused.status(), 200);
//! assert_eq!(refused.headers()["grpc-status"], "16");
//! // A key without the role: PERMISSION_DENIED, never UNAUTHENTICATED.
//! let refused = call(Some("k7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA")).await?;
//! assert_eq!(refused.headers()["grpc-status"], "7");
//! # Ok(())
//! # }
//! ```

use tonic::server::NamedService;
use tonic::{Code, Status};
use tower_auth_core::{AuthError, Identity};

use crate::{Auth, RequireRoles};

impl<S: NamedService> NamedService for Auth<S> {
    const NAME: &'static str = S::NAME;
}

impl<S: NamedService> NamedService for RequireRoles<S> {
    const NAME: &'static str = S::NAME;
}

/// The authenticated identity of a tonic request.
pub trait RequestIdentity {
    /// The identity, if the auth layer authenticated the call (`None` on an exempt method
    /// called without a credential).
    fn identity(&self) -> Option<&Identity>;

    /// The identity, or UNAUTHENTICATED for a handler that must not run anonymously.
    #[allow(clippy::result_large_err)]
    fn authenticated(&self) -> Result<&Identity, Status> {
        self.identity()
            .ok_or_else(|| status(&AuthError::missing_credential()))
    }
}

impl<T> RequestIdentity for tonic::Request<T> {
    fn identity(&self) -> Option<&Identity> {
        self.extensions().get::<Identity>()
    }
}

/// The `tonic::Status` for an [`AuthError`]: its gRPC code and fixed message.
pub fn status(error: &AuthError) -> Status {
    Status::new(
        Code::from_i32(error.grpc_code().as_i32()),
        error.grpc_message(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_auth_core::AuthMethod;

    #[test]
    fn statuses_follow_the_mapping() {
        assert_eq!(
            status(&AuthError::missing_credential()).code(),
            Code::Unauthenticated
        );
        assert_eq!(
            status(&AuthError::invalid_request("x")).code(),
            Code::Unauthenticated
        );
        assert_eq!(
            status(&AuthError::invalid_token("x")).code(),
            Code::Unauthenticated
        );
        // tonic: PERMISSION_DENIED "must not be used if the caller cannot be identified",
        // and a missing role is not UNAUTHENTICATED either.
        assert_eq!(
            status(&AuthError::insufficient_scope("admin")).code(),
            Code::PermissionDenied
        );
        assert_eq!(
            status(&AuthError::unavailable("x", None)).code(),
            Code::Unavailable
        );
    }

    #[test]
    fn identity_from_a_tonic_request() {
        let mut request = tonic::Request::new(());
        assert_eq!(
            request.authenticated().unwrap_err().code(),
            Code::Unauthenticated
        );
        let identity = Identity::builder("svc", AuthMethod::ApiKey { name: "svc".into() }).build();
        request.extensions_mut().insert(identity);
        assert_eq!(request.identity().map(Identity::subject), Some("svc"));
    }
}
