//! `Identity` and `Option<Identity>` as axum extractors (feature `axum`).

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;

use crate::{AuthError, DEFAULT_REALM, Identity};

/// Takes the identity that the auth layer put into the request. Without one (the route is
/// exempt and the request carried no valid credential, or no auth layer runs in front of it)
/// the handler is not called and the answer is 401.
impl<S: Send + Sync> FromRequestParts<S> for Identity {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Identity>()
            .cloned()
            .ok_or_else(AuthError::missing_credential)
    }
}

/// `Option<Identity>`: `None` on a public route called without a credential.
impl<S: Send + Sync> OptionalFromRequestParts<S> for Identity {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Identity>().cloned())
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        self.to_response(DEFAULT_REALM, &crate::Protocol::Http)
            .map(axum_core::body::Body::from)
    }
}
