//! `RequireRolesLayer` and `RequireRoles<S>`: a route layer that asks the authenticated
//! identity for roles.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_auth_core::{
    AuthError, Capped, Clock, ConfigError, DEFAULT_REALM, Identity, LogPermit, Protocol,
    RejectionLog,
};
use tower_layer::Layer;
use tower_service::Service;

use crate::AuthLayer;
use crate::answer::Answers;
use crate::future::AuthFuture;
use crate::response::ResponseBody;
use crate::rules::RoleRequirement;

/// Requires roles of the identity that [`AuthLayer`] authenticated.
///
/// Use it with axum's `route_layer` so that an unknown path stays a 404. A missing role is
/// 403 `insufficient_scope` with the roles that would do in `scope` (PERMISSION_DENIED over
/// gRPC); no identity at all is 401.
///
/// ```
/// use tower_auth::RequireRolesLayer;
/// use axum::{Router, routing::get};
///
/// # fn main() -> Result<(), tower_auth_core::ConfigError> {
/// let app: Router = Router::new()
///     .route("/metrics", get(|| async { "..." }))
///     .route_layer(RequireRolesLayer::all(["runtime.health:read", "runtime.metrics:read"])?);
///
/// // A role that could not be named in a challenge is refused, naming the constructor.
/// let error = RequireRolesLayer::any(["two words"]).unwrap_err();
/// assert_eq!(error.variable(), "RequireRolesLayer::any");
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct RequireRolesLayer {
    requirement: Arc<RoleRequirement>,
    realm: Arc<str>,
    /// The auth layer's challenges and answers, once `realm_of` copied them.
    answers: Answers,
    /// 403 events per subject, limited as the auth layer limits its rejections.
    logged: Arc<RejectionLog>,
}

impl RequireRolesLayer {
    /// Passes identities holding at least one of `roles`.
    ///
    /// Fails when `roles` is empty, or a role is empty or has a space, quote, backslash or
    /// non-ASCII character (it could not be named in the `scope` of a challenge).
    pub fn any<I, R>(roles: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = R>,
        R: Into<String>,
    {
        Self::new("RequireRolesLayer::any", false, roles)
    }

    /// Passes identities holding every one of `roles`; fails as [`RequireRolesLayer::any`].
    pub fn all<I, R>(roles: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = R>,
        R: Into<String>,
    {
        Self::new("RequireRolesLayer::all", true, roles)
    }

    fn new<I, R>(setting: &str, all: bool, roles: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = R>,
        R: Into<String>,
    {
        let requirement = RoleRequirement::new(all, roles.into_iter().map(Into::into).collect())
            .map_err(|e| ConfigError::new(setting, e))?;
        Ok(Self {
            requirement: Arc::new(requirement),
            realm: DEFAULT_REALM.into(),
            answers: Answers::default(),
            logged: Arc::default(),
        })
    }

    /// Challenges in the realm of `auth` (by default the realm is `api`, as `AuthLayer`'s),
    /// with its challenge parameters (`resource_metadata`) and its
    /// [answers](crate::AuthLayerBuilder::answer_with).
    pub fn realm_of(mut self, auth: &AuthLayer) -> Self {
        self.realm = Arc::clone(auth.realm());
        self.answers = auth.settings.answers.clone();
        self
    }
}

impl<S> Layer<S> for RequireRolesLayer {
    type Service = RequireRoles<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireRoles {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service built by [`RequireRolesLayer`].
#[derive(Clone, Debug)]
pub struct RequireRoles<S> {
    inner: S,
    layer: RequireRolesLayer,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireRoles<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = AuthFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let verdict = match request.extensions().get::<Identity>() {
            Some(identity) => self.layer.requirement.check(identity).inspect_err(|error| {
                // One identity's refusals write a bounded log (SECURITY.md E9).
                let key = (identity.method().kind(), identity.subject());
                let permit = self
                    .layer
                    .logged
                    .permit_for(&key, Clock::system().now_unix());
                if permit == LogPermit::Quiet {
                    return;
                }
                tracing::info!(
                    target: "auth",
                    outcome = "rejected",
                    path = %Capped(request.uri().path()),
                    reason = error.reason(),
                    status = 403,
                    subject = identity.subject(),
                    required = error.scope(),
                    unlogged_before = match permit {
                        LogPermit::Log { unlogged } if unlogged > 0 => Some(unlogged),
                        _ => None,
                    },
                    last_this_window = (permit == LogPermit::Last).then_some(true),
                );
            }),
            None => Err(AuthError::missing_credential()),
        };
        match verdict {
            Ok(()) => AuthFuture::inner(self.inner.call(request)),
            Err(error) => AuthFuture::reject(self.layer.answers.respond(
                &error,
                &self.layer.realm,
                &Protocol::of(&request),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tower::{ServiceBuilder, ServiceExt, service_fn};
    use tower_auth_core::AuthMethod;

    async fn call(
        layer: RequireRolesLayer,
        roles: Option<&[&str]>,
    ) -> Response<ResponseBody<String>> {
        let service =
            ServiceBuilder::new()
                .layer(layer)
                .service(service_fn(|_: Request<()>| async {
                    Ok::<_, Infallible>(Response::new(String::from("ok")))
                }));
        let mut request = Request::new(());
        if let Some(roles) = roles {
            let identity = Identity::builder("s", AuthMethod::ApiKey { name: "k".into() })
                .roles(roles.iter().copied())
                .build();
            request.extensions_mut().insert(identity);
        }
        service.oneshot(request).await.unwrap()
    }

    #[tokio::test]
    async fn a_missing_role_is_403_and_no_identity_is_401() {
        let layer = || RequireRolesLayer::all(["a", "b"]).unwrap();
        assert_eq!(call(layer(), Some(&["a", "b"])).await.status(), 200);
        let refused = call(layer(), Some(&["a"])).await;
        assert_eq!(refused.status(), 403);
        assert_eq!(
            refused.headers()["www-authenticate"],
            r#"Bearer realm="api", error="insufficient_scope", scope="a b""#
        );
        assert_eq!(call(layer(), None).await.status(), 401);
        let any = RequireRolesLayer::any(["a", "b"]).unwrap();
        assert_eq!(call(any, Some(&["b"])).await.status(), 200);
    }

    /// Claims nothing: the realm test needs a layer, not a credential.
    struct Never;

    impl tower_auth_core::Authenticator for Never {
        fn method(&self) -> &'static str {
            "never"
        }

        fn authenticate(&self, _: tower_auth_core::Credential<'_>) -> tower_auth_core::Check {
            tower_auth_core::Outcome::NotMine.into()
        }
    }

    #[tokio::test]
    async fn the_realm_follows_the_auth_layer() {
        let auth = AuthLayer::builder(Never).realm("orders").build().unwrap();
        let layer = RequireRolesLayer::any(["admin"]).unwrap().realm_of(&auth);
        let refused = call(layer, None).await;
        assert_eq!(
            refused.headers()["www-authenticate"],
            r#"Bearer realm="orders""#
        );
    }

    #[test]
    fn bad_roles_are_a_config_error_naming_the_constructor() {
        for (roles, setting) in [
            (vec![], "RequireRolesLayer::any"),
            (vec!["a b"], "RequireRolesLayer::any"),
            (vec!["é"], "RequireRolesLayer::any"),
        ] {
            assert_eq!(
                RequireRolesLayer::any(roles.clone())
                    .unwrap_err()
                    .variable(),
                setting,
                "{roles:?}"
            );
        }
        assert_eq!(
            RequireRolesLayer::all(["a\"b"]).unwrap_err().variable(),
            "RequireRolesLayer::all"
        );
    }
}
