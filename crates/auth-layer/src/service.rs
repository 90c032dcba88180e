//! `AuthService` and the future it returns.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_auth_core::{AuthError, Identity, Outcome, OutcomeFuture, is_grpc};
use tower_service::Service;

use crate::chain::{Step, settle};
use crate::layer::{Decision, Shared, strip_identity_headers};
use crate::response::{ResponseBody, rejection};

/// The service built by [`AuthLayer`](crate::AuthLayer).
pub struct AuthService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> AuthService<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        Self { inner, shared }
    }
}

impl<S: Clone> Clone for AuthService<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for AuthService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AuthService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    ReqBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        strip_identity_headers(request.headers_mut());
        if !self.shared.enabled {
            return ResponseFuture::inner(self.inner.call(request));
        }
        match self.shared.authenticate(request.headers()) {
            Step::Done(result) => {
                match self
                    .shared
                    .decide(request.uri().path(), request.headers(), result)
                {
                    Decision::Pass(identity) => {
                        if let Some(identity) = identity {
                            request.extensions_mut().insert(identity);
                        }
                        ResponseFuture::inner(self.inner.call(request))
                    }
                    Decision::Reject(error) => ResponseFuture::reject(rejection(
                        &error,
                        &self.shared.realm,
                        is_grpc(request.headers()),
                    )),
                }
            }
            Step::Waiting(check, index) => {
                // The service that was polled ready goes with the request; a clone stays
                // behind and is driven to readiness by the next poll_ready (tower's advice).
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                let shared = Arc::clone(&self.shared);
                ResponseFuture {
                    kind: Kind::Waiting {
                        check: Box::pin(wait(Arc::clone(&self.shared), request, check, index)),
                        inner: Some(inner),
                        shared,
                    },
                }
            }
        }
    }
}

type Checked<B> = (Request<B>, Result<Identity, AuthError>);

/// Awaits an authenticator that had to wait, and resumes the chain if it said `NotMine`.
async fn wait<B>(
    shared: Arc<Shared>,
    request: Request<B>,
    mut check: OutcomeFuture,
    mut index: usize,
) -> Checked<B> {
    loop {
        match check.await {
            Outcome::NotMine => match shared.resume(request.headers(), index) {
                Step::Done(result) => return (request, result),
                Step::Waiting(next, at) => (check, index) = (next, at),
            },
            outcome => return (request, settle(outcome)),
        }
    }
}

pin_project! {
    /// The response future of [`AuthService`] and [`RequireRolesService`](crate::RequireRolesService).
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        kind: Kind<S, B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<S, B>
    where
        S: Service<Request<B>>,
    {
        Inner { #[pin] future: S::Future },
        Reject { response: Option<Response<ResponseBody<()>>> },
        Waiting {
            check: Pin<Box<dyn Future<Output = Checked<B>> + Send>>,
            inner: Option<S>,
            shared: Arc<Shared>,
        },
    }
}

impl<S: Service<Request<B>>, B> ResponseFuture<S, B> {
    pub(crate) fn inner(future: S::Future) -> Self {
        Self {
            kind: Kind::Inner { future },
        }
    }

    pub(crate) fn reject(response: Response<ResponseBody<()>>) -> Self {
        Self {
            kind: Kind::Reject {
                response: Some(response),
            },
        }
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            let next = match this.kind.as_mut().project() {
                KindProj::Inner { future } => {
                    return future.poll(cx).map_ok(|r| r.map(ResponseBody::inner));
                }
                KindProj::Reject { response } => {
                    let response = response
                        .take()
                        .expect("ResponseFuture polled after completion");
                    return Poll::Ready(Ok(response.map(ResponseBody::retype)));
                }
                KindProj::Waiting {
                    check,
                    inner,
                    shared,
                } => {
                    let (mut request, result) = ready!(check.as_mut().poll(cx));
                    match shared.decide(request.uri().path(), request.headers(), result) {
                        Decision::Pass(identity) => {
                            if let Some(identity) = identity {
                                request.extensions_mut().insert(identity);
                            }
                            let mut service = inner
                                .take()
                                .expect("ResponseFuture polled after completion");
                            Kind::Inner {
                                future: service.call(request),
                            }
                        }
                        Decision::Reject(error) => Kind::Reject {
                            response: Some(rejection(
                                &error,
                                &shared.realm,
                                is_grpc(request.headers()),
                            )),
                        },
                    }
                }
            };
            this.kind.set(next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuthLayer, RequireRoles};
    use http_body_util::BodyExt;
    use std::convert::Infallible;
    use tower::{ServiceBuilder, ServiceExt, service_fn};
    use tower_auth_core::{AuthMethod, Authenticator, Check, Credential};

    /// Claims bearer tokens starting with `slow-`, deciding only after a yield, as an OIDC
    /// validator does on a key fetch; `slow-pass` asks the next authenticator.
    struct Slow;

    impl Authenticator for Slow {
        fn method(&self) -> &'static str {
            "slow"
        }

        fn authenticate(&self, credential: Credential<'_>) -> Check {
            let Some(rest) = credential.expose().strip_prefix("slow-") else {
                return Outcome::NotMine.into();
            };
            let rest = rest.to_owned();
            Check::Pending(Box::pin(async move {
                tokio::task::yield_now().await;
                match rest.as_str() {
                    "pass" => Outcome::NotMine,
                    "ok" | "admin" => Outcome::Authenticated(
                        Identity::builder(rest.clone(), AuthMethod::Hmac { issuer: "t".into() })
                            .role(rest)
                            .build(),
                    ),
                    _ => Outcome::Rejected(AuthError::invalid_token("bad")),
                }
            }))
        }
    }

    /// Accepts the bearer `slow-pass` immediately.
    struct Fast;

    impl Authenticator for Fast {
        fn method(&self) -> &'static str {
            "fast"
        }

        fn authenticate(&self, credential: Credential<'_>) -> Check {
            match credential.expose() {
                "slow-pass" => Outcome::Authenticated(
                    Identity::builder("fast", AuthMethod::Hmac { issuer: "f".into() }).build(),
                ),
                _ => Outcome::NotMine,
            }
            .into()
        }
    }

    async fn echo(request: Request<String>) -> Result<Response<String>, Infallible> {
        let subject = request
            .extensions()
            .get::<Identity>()
            .map_or("-".to_owned(), |i| i.subject().to_owned());
        let spoofed = request.headers().contains_key("x-auth-subject");
        Ok(Response::new(format!("{subject} spoofed={spoofed}")))
    }

    async fn call(path: &str, headers: &[(&str, &str)]) -> (u16, String, http::HeaderMap) {
        let service = ServiceBuilder::new()
            .layer(
                AuthLayer::new(Slow)
                    .or(Fast)
                    .require("/admin", RequireRoles::any(["admin"])),
            )
            .service(service_fn(echo));
        let mut request = Request::builder().uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = service
            .oneshot(request.body(String::new()).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap(), headers)
    }

    #[tokio::test]
    async fn an_authenticator_that_waits_decides() {
        assert_eq!(
            call("/x", &[("authorization", "Bearer slow-ok")]).await.1,
            "ok spoofed=false"
        );
        let (status, body, _) = call("/x", &[("authorization", "Bearer slow-bad")]).await;
        assert_eq!(
            (status, body.as_str()),
            (401, r#"{"error":"invalid_token"}"#)
        );
    }

    #[tokio::test]
    async fn not_mine_after_waiting_resumes_the_chain() {
        assert_eq!(
            call("/x", &[("authorization", "Bearer slow-pass")]).await.1,
            "fast spoofed=false"
        );
    }

    #[tokio::test]
    async fn role_rules_apply_after_waiting() {
        assert_eq!(
            call("/admin", &[("authorization", "Bearer slow-ok")])
                .await
                .0,
            403
        );
        assert_eq!(
            call("/admin", &[("authorization", "Bearer slow-admin")])
                .await
                .0,
            200
        );
    }

    #[tokio::test]
    async fn exempt_paths_are_never_rejected_but_still_identify() {
        assert_eq!(
            call("/health", &[]).await,
            (200, "- spoofed=false".into(), call("/health", &[]).await.2)
        );
        assert_eq!(
            call("/health", &[("authorization", "Bearer slow-bad")])
                .await
                .1,
            "- spoofed=false"
        );
        assert_eq!(
            call("/health", &[("authorization", "Bearer slow-ok")])
                .await
                .1,
            "ok spoofed=false"
        );
        assert_eq!(
            call(
                "/health",
                &[("authorization", "Bearer a"), ("authorization", "Bearer b")]
            )
            .await
            .0,
            200
        );
    }

    #[tokio::test]
    async fn identity_headers_from_the_client_are_stripped() {
        let (_, body, _) = call("/health", &[("x-auth-subject", "root")]).await;
        assert_eq!(body, "- spoofed=false");
        let (_, body, _) = call(
            "/x",
            &[
                ("x-auth-subject", "root"),
                ("authorization", "Bearer slow-ok"),
            ],
        )
        .await;
        assert_eq!(body, "ok spoofed=false");
    }

    #[tokio::test]
    async fn grpc_requests_get_grpc_status() {
        let (status, body, headers) =
            call("/pkg.Svc/M", &[("content-type", "application/grpc")]).await;
        assert_eq!((status, body.as_str()), (200, ""));
        assert_eq!(headers["grpc-status"], "16");
        let (_, _, headers) = call(
            "/admin",
            &[
                ("content-type", "application/grpc"),
                ("authorization", "Bearer slow-ok"),
            ],
        )
        .await;
        assert_eq!(headers["grpc-status"], "7");
    }

    #[tokio::test]
    async fn disabled_layer_passes_everything() {
        let service = ServiceBuilder::new()
            .layer(AuthLayer::disabled())
            .service(service_fn(echo));
        let request = Request::builder()
            .uri("/x")
            .header("x-auth-subject", "root")
            .body(String::new())
            .unwrap();
        let response = service.oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"- spoofed=false");
    }

    #[tokio::test]
    async fn grpc_service_exemptions_pass_grpc_requests_only() {
        let service = ServiceBuilder::new()
            .layer(AuthLayer::new(Fast).exempt("/grpc.reflection.v1.ServerReflection/*"))
            .service(service_fn(echo));
        let request = |path: &str, content_type: &str| {
            Request::post(path)
                .header("content-type", content_type)
                .body(String::new())
                .unwrap()
        };
        let reflection = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
        let passed = service
            .clone()
            .oneshot(request(reflection, "application/grpc"))
            .await
            .unwrap();
        assert_eq!(passed.status(), 200);
        assert!(!passed.headers().contains_key("grpc-status"));
        // The same path over plain HTTP, and another gRPC service: no credential, refused.
        let http = service
            .clone()
            .oneshot(request(reflection, "application/json"))
            .await
            .unwrap();
        assert_eq!(http.status(), 401);
        let other = service
            .oneshot(request("/pkg.Orders/List", "application/grpc"))
            .await
            .unwrap();
        assert_eq!(other.headers()["grpc-status"], "16");
    }
}
