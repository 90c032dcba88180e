//! `RequireRoles`: a route layer that asks the authenticated identity for roles.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_auth_core::{AuthError, DEFAULT_REALM, Identity, is_grpc};
use tower_layer::Layer;
use tower_service::Service;

use crate::response::{ResponseBody, rejection};
use crate::rules::RoleRequirement;
use crate::service::ResponseFuture;

/// Requires roles of the identity that [`AuthLayer`](crate::AuthLayer) authenticated.
///
/// Use it with axum's `route_layer` so that an unknown path stays a 404. A missing role is
/// 403 `insufficient_scope` with the roles that would do in `scope` (PERMISSION_DENIED over
/// gRPC); no identity at all is 401.
///
/// ```
/// use tower_auth::RequireRoles;
/// use axum::{Router, routing::get};
///
/// let app: Router = Router::new()
///     .route("/metrics", get(|| async { "..." }))
///     .route_layer(RequireRoles::all(["runtime.health:read", "runtime.metrics:read"]));
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct RequireRoles {
    pub(crate) requirement: Arc<RoleRequirement>,
    realm: Arc<str>,
}

impl RequireRoles {
    /// Passes identities holding at least one of `roles`.
    ///
    /// # Panics
    /// If `roles` is empty or a role is empty or has a space, quote, backslash or non-ASCII
    /// character (it could not be named in the `scope` of a challenge).
    pub fn any<I, R>(roles: I) -> Self
    where
        I: IntoIterator<Item = R>,
        R: Into<String>,
    {
        Self::new(false, roles)
    }

    /// Passes identities holding every one of `roles`.
    ///
    /// # Panics
    /// As [`RequireRoles::any`].
    pub fn all<I, R>(roles: I) -> Self
    where
        I: IntoIterator<Item = R>,
        R: Into<String>,
    {
        Self::new(true, roles)
    }

    fn new<I, R>(all: bool, roles: I) -> Self
    where
        I: IntoIterator<Item = R>,
        R: Into<String>,
    {
        let requirement = RoleRequirement::new(all, roles.into_iter().map(Into::into).collect())
            .unwrap_or_else(|e| panic!("RequireRoles: {e}"));
        Self {
            requirement: Arc::new(requirement),
            realm: DEFAULT_REALM.into(),
        }
    }

    /// The realm in challenges (default `api`); set it to the [`AuthLayer`](crate::AuthLayer)'s.
    ///
    /// # Panics
    /// If `realm` has a quote, a backslash or a control character.
    pub fn realm(mut self, realm: &str) -> Self {
        if let Err(e) = crate::layer::check_realm(realm) {
            panic!("{e}");
        }
        self.realm = realm.into();
        self
    }
}

impl<S> Layer<S> for RequireRoles {
    type Service = RequireRolesService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireRolesService {
            inner,
            roles: self.clone(),
        }
    }
}

/// The service built by [`RequireRoles`].
#[derive(Clone, Debug)]
pub struct RequireRolesService<S> {
    inner: S,
    roles: RequireRoles,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireRolesService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let verdict = match request.extensions().get::<Identity>() {
            Some(identity) => self.roles.requirement.check(identity).inspect_err(|error| {
                tracing::info!(
                    target: "auth",
                    outcome = "rejected",
                    path = request.uri().path(),
                    reason = error.reason(),
                    status = 403,
                    subject = identity.subject(),
                    required = error.scope(),
                );
            }),
            None => Err(AuthError::missing_credential()),
        };
        match verdict {
            Ok(()) => ResponseFuture::inner(self.inner.call(request)),
            Err(error) => ResponseFuture::reject(rejection(
                &error,
                &self.roles.realm,
                is_grpc(request.headers()),
            )),
        }
    }
}
