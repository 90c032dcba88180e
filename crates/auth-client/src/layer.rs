//! `BearerLayer`: `Authorization: Bearer <token>` on every outgoing request.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::replay::{BufferedRetryBearerLayer, Rebuild};
use crate::{BoxError, BoxFuture, Token, TokenCache, TokenError, TokenErrorKind};

/// Adds `Authorization: Bearer <token>` to every request, with tokens from a [`TokenCache`].
///
/// It works for any service over `http::Request<B>`: hyper clients, tonic `Channel`s (gRPC
/// metadata are HTTP/2 headers), tower stacks. An `Authorization` header already on a request
/// is replaced. The header value is marked sensitive, so HTTP/2 never indexes it.
///
/// When no token can be had, the call fails with the [`TokenError`] (boxed, as the
/// service's error is [`BoxError`]) and the inner service is not called. On a tonic client
/// that surfaces as a `Status` whose source is the `TokenError`, with code `Unknown`, or with
/// the feature `tonic` the code the error stands for (`TokenError::grpc_code`:
/// `Unauthenticated`, or `Unavailable` when the token endpoint is down).
///
/// ```no_run
/// use tower_auth_client::{Bearer, BearerLayer, ClientCredentials, TokenCache};
/// use tower::ServiceBuilder;
///
/// # async fn run<Channel>(channel: Channel) -> Result<Bearer<Channel>, Box<dyn std::error::Error>> {
/// let source = ClientCredentials::new("https://login.example.com/oauth/token", "reporting", "s3cr3t")?;
/// let tokens = TokenCache::start(source).await?; // fail fast at start-up
/// // `channel`: a `tonic::transport::Channel`, a hyper client, any `Service<http::Request<B>>`.
/// let channel = ServiceBuilder::new().layer(BearerLayer::new(tokens)).service(channel);
/// // DemoClient::new(channel).who_am_i(..)
/// # Ok(channel) }
/// ```
///
/// [`BearerLayer::retry_unauthorized`] (for `Clone` bodies) and
/// [`BearerLayer::retry_unauthorized_buffered`] (for tonic's) add one retry with a fresh
/// token when the server answers 401 or gRPC UNAUTHENTICATED.
#[derive(Clone)]
pub struct BearerLayer {
    tokens: TokenCache,
}

impl BearerLayer {
    /// A layer taking tokens from `tokens`: a [`TokenCache`], or any
    /// [`TokenSource`](crate::TokenSource), which gets a cache with the default policy.
    pub fn new(tokens: impl Into<TokenCache>) -> Self {
        Self {
            tokens: tokens.into(),
        }
    }

    /// The same layer, retrying a request once with a freshly fetched token when the server
    /// answers HTTP 401 or a gRPC trailers-only UNAUTHENTICATED (`grpc-status: 16`).
    ///
    /// The request is sent twice, so its body must be `Clone` (`Full<Bytes>`, `String`,
    /// `Empty`...); for tonic's `tonic::body::Body` and other bodies that are not, use
    /// [`BearerLayer::retry_unauthorized_buffered`]. A request is retried at most once, and a
    /// refresh is forced at most once per
    /// [`RefreshPolicy::forced_refresh_interval`](crate::RefreshPolicy::forced_refresh_interval);
    /// when the fresh token has the same value (a static token), there is no retry.
    #[must_use]
    pub fn retry_unauthorized(self) -> RetryBearerLayer {
        RetryBearerLayer {
            tokens: self.tokens,
        }
    }

    /// As [`BearerLayer::retry_unauthorized`], for request bodies that are not `Clone`,
    /// such as tonic's: a body whose frames are all ready when the call is made (a unary
    /// call's, or any body up to 64 KiB that is complete) is kept and sent again; any other
    /// goes on unchanged, without a retry. `rebuild` turns the kept body back into the inner
    /// service's body type:
    ///
    /// ```
    /// use tower_auth_client::{BearerLayer, BoxError, ReplayBody, StaticToken};
    /// use bytes::Bytes;
    /// use http_body_util::BodyExt;
    /// use http_body_util::combinators::UnsyncBoxBody;
    ///
    /// // On a tonic `Channel`: `.retry_unauthorized_buffered(tonic::body::Body::new)`.
    /// type Erased = UnsyncBoxBody<Bytes, BoxError>;
    /// let layer = BearerLayer::new(StaticToken::new("abc").unwrap())
    ///     .retry_unauthorized_buffered(|body: ReplayBody<Erased>| body.boxed_unsync());
    /// ```
    #[must_use]
    pub fn retry_unauthorized_buffered<B>(
        self,
        rebuild: Rebuild<B>,
    ) -> BufferedRetryBearerLayer<B> {
        BufferedRetryBearerLayer::new(self.tokens, rebuild)
    }

    /// The token cache.
    pub fn tokens(&self) -> &TokenCache {
        &self.tokens
    }
}

impl<S> Layer<S> for BearerLayer {
    type Service = Bearer<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Bearer {
            inner,
            tokens: self.tokens.clone(),
        }
    }
}

impl fmt::Debug for BearerLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerLayer")
            .field("tokens", &self.tokens)
            .finish()
    }
}

/// The service of [`BearerLayer`].
#[derive(Clone)]
pub struct Bearer<S> {
    inner: S,
    tokens: TokenCache,
}

impl<S> Bearer<S> {
    /// `inner` with tokens from `tokens`, without a layer (as `BearerLayer::new(tokens).layer(inner)`).
    pub fn new(inner: S, tokens: impl Into<TokenCache>) -> Self {
        Self {
            inner,
            tokens: tokens.into(),
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The token cache.
    pub fn tokens(&self) -> &TokenCache {
        &self.tokens
    }
}

impl<S: fmt::Debug> fmt::Debug for Bearer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bearer")
            .field("inner", &self.inner)
            .field("tokens", &self.tokens)
            .finish()
    }
}

pub(crate) fn authorization(token: &Token) -> Result<HeaderValue, TokenError> {
    token
        .authorization()
        .cloned()
        .ok_or_else(|| TokenError::new(TokenErrorKind::InvalidResponse, "token_not_b64token"))
}

impl<S, B> Service<Request<B>> for Bearer<S>
where
    S: Service<Request<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        if let Some(token) = self.tokens.try_token()
            && let Some(value) = token.authorization()
        {
            request.headers_mut().insert(AUTHORIZATION, value.clone());
            return ResponseFuture {
                kind: Kind::Inner {
                    future: self.inner.call(request),
                },
            };
        }
        // The ready service goes with the request; a clone takes its place (tower's advice
        // for services called from a future).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let tokens = self.tokens.clone();
        ResponseFuture {
            kind: Kind::Acquire {
                future: Box::pin(async move {
                    let token = tokens.token().await?;
                    request
                        .headers_mut()
                        .insert(AUTHORIZATION, authorization(&token)?);
                    inner.call(request).await.map_err(Into::into)
                }),
            },
        }
    }
}

pin_project! {
    /// The response future of [`Bearer`].
    pub struct ResponseFuture<F, R> {
        #[pin]
        kind: Kind<F, R>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, R> {
        Inner { #[pin] future: F },
        Acquire { future: BoxFuture<'static, Result<R, BoxError>> },
    }
}

impl<F, R, E> Future for ResponseFuture<F, R>
where
    F: Future<Output = Result<R, E>>,
    E: Into<BoxError>,
{
    type Output = Result<R, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future } => future.poll(cx).map_err(Into::into),
            KindProj::Acquire { future } => future.as_mut().poll(cx),
        }
    }
}

impl<F, R> fmt::Debug for ResponseFuture<F, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture")
    }
}

/// [`BearerLayer`] with one retry on 401 / UNAUTHENTICATED; see
/// [`BearerLayer::retry_unauthorized`].
#[derive(Clone)]
pub struct RetryBearerLayer {
    tokens: TokenCache,
}

impl<S> Layer<S> for RetryBearerLayer {
    type Service = RetryBearer<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RetryBearer {
            inner,
            tokens: self.tokens.clone(),
        }
    }
}

impl fmt::Debug for RetryBearerLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBearerLayer")
            .field("tokens", &self.tokens)
            .finish()
    }
}

/// The service of [`RetryBearerLayer`].
#[derive(Clone)]
pub struct RetryBearer<S> {
    inner: S,
    tokens: TokenCache,
}

impl<S> RetryBearer<S> {
    /// `inner` with tokens from `tokens` and one retry on 401 / UNAUTHENTICATED, without a
    /// layer (as `BearerLayer::new(tokens).retry_unauthorized().layer(inner)`).
    pub fn new(inner: S, tokens: impl Into<TokenCache>) -> Self {
        Self {
            inner,
            tokens: tokens.into(),
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The token cache.
    pub fn tokens(&self) -> &TokenCache {
        &self.tokens
    }
}

impl<S: fmt::Debug> fmt::Debug for RetryBearer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBearer")
            .field("inner", &self.inner)
            .field("tokens", &self.tokens)
            .finish()
    }
}

/// Whether the server refused the token: HTTP 401, or gRPC UNAUTHENTICATED in a
/// trailers-only response (the status in the headers, as servers send an early refusal).
pub(crate) fn unauthorized<T>(response: &Response<T>) -> bool {
    response.status() == StatusCode::UNAUTHORIZED
        || response
            .headers()
            .get("grpc-status")
            .is_some_and(|code| code.as_bytes() == b"16")
}

impl<S, B, RB> Service<Request<B>> for RetryBearer<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Clone + Send + 'static,
    RB: Send + 'static,
{
    type Response = Response<RB>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<RB>, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let tokens = self.tokens.clone();
        Box::pin(async move {
            let token = tokens.token().await?;
            request
                .headers_mut()
                .insert(AUTHORIZATION, authorization(&token)?);
            let mut again = request.clone();
            let response = inner.call(request).await.map_err(Into::into)?;
            if !unauthorized(&response) {
                return Ok(response);
            }
            let Some(fresh) = tokens.refresh_rejected(&token).await else {
                return Ok(response);
            };
            drop(response);
            again
                .headers_mut()
                .insert(AUTHORIZATION, authorization(&fresh)?);
            std::future::poll_fn(|cx| inner.poll_ready(cx))
                .await
                .map_err(Into::into)?;
            inner.call(again).await.map_err(Into::into)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tower::{ServiceBuilder, ServiceExt, service_fn};

    use super::*;
    use crate::FnSource;

    fn numbered() -> (FnSource, Arc<AtomicU32>) {
        let calls = Arc::new(AtomicU32::new(0));
        let counter = calls.clone();
        let source = FnSource::new(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move { Ok(Token::new(format!("t{n}"), Some(Duration::from_secs(3600)))) }
        });
        (source, calls)
    }

    /// Echoes the Authorization header it saw; answers `status` (with `grpc_status`) to `rejected`.
    fn server(
        rejected: &'static str,
        grpc_status: Option<&'static str>,
        seen: Arc<Mutex<Vec<String>>>,
    ) -> impl Service<Request<String>, Response = Response<String>, Error = Infallible, Future: Send>
    + Clone
    + Send
    + 'static {
        service_fn(move |request: Request<String>| {
            let seen = seen.clone();
            async move {
                let auth = request.headers()[AUTHORIZATION]
                    .to_str()
                    .unwrap()
                    .to_owned();
                assert!(request.headers()[AUTHORIZATION].is_sensitive());
                seen.lock().unwrap().push(auth.clone());
                let mut response = Response::new(request.into_body());
                if auth == rejected {
                    match grpc_status {
                        Some(code) => {
                            response
                                .headers_mut()
                                .insert("grpc-status", HeaderValue::from_static(code));
                        }
                        None => *response.status_mut() = StatusCode::UNAUTHORIZED,
                    }
                }
                Ok::<_, Infallible>(response)
            }
        })
    }

    #[tokio::test]
    async fn sets_the_header_and_replaces_a_present_one() {
        let (source, calls) = numbered();
        let seen = Arc::default();
        let service = ServiceBuilder::new()
            .layer(BearerLayer::new(source))
            .service(server("none", None, Arc::clone(&seen)));
        for _ in 0..3 {
            let request = Request::builder()
                .header(AUTHORIZATION, "Basic old")
                .body(String::new())
                .unwrap();
            let response = service.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), 200);
        }
        assert_eq!(
            *seen.lock().unwrap(),
            ["Bearer t0", "Bearer t0", "Bearer t0"]
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_token_error_is_the_service_error_and_the_inner_service_is_not_called() {
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let source = FnSource::new(|| async {
            Err(TokenError::new(
                TokenErrorKind::InvalidClient,
                "oauth_error",
            ))
        });
        let service = BearerLayer::new(source).layer(server("none", None, Arc::clone(&seen)));
        let err = service
            .oneshot(Request::new(String::new()))
            .await
            .unwrap_err();
        let err = err.downcast::<TokenError>().unwrap();
        assert!(err.is_invalid_client());
        assert!(seen.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn retries_once_with_a_fresh_token_on_401_and_unauthenticated() {
        for grpc in [None, Some("16")] {
            let (source, calls) = numbered();
            let seen = Arc::default();
            let service = BearerLayer::new(source).retry_unauthorized().layer(server(
                "Bearer t0",
                grpc,
                Arc::clone(&seen),
            ));
            let response = service
                .clone()
                .oneshot(Request::new("body".to_owned()))
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            assert!(response.headers().get("grpc-status").is_none());
            assert_eq!(response.into_body(), "body", "the body was replayed");
            assert_eq!(*seen.lock().unwrap(), ["Bearer t0", "Bearer t1"]);
            assert_eq!(calls.load(Ordering::SeqCst), 2);
        }
    }

    #[tokio::test]
    async fn retries_at_most_once() {
        let (source, calls) = numbered();
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let always = service_fn({
            let seen = Arc::clone(&seen);
            move |request: Request<String>| {
                seen.lock().unwrap().push(
                    request.headers()[AUTHORIZATION]
                        .to_str()
                        .unwrap()
                        .to_owned(),
                );
                async {
                    let mut response = Response::new(String::new());
                    *response.status_mut() = StatusCode::UNAUTHORIZED;
                    Ok::<_, Infallible>(response)
                }
            }
        });
        let service = BearerLayer::new(source).retry_unauthorized().layer(always);
        let response = service
            .clone()
            .oneshot(Request::new(String::new()))
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        // Within the forced-refresh interval, the next request is not retried.
        let response = service.oneshot(Request::new(String::new())).await.unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(
            *seen.lock().unwrap(),
            ["Bearer t0", "Bearer t1", "Bearer t1"]
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_static_token_is_not_retried() {
        let seen = Arc::default();
        let service = BearerLayer::new(crate::StaticToken::new("fixed").unwrap())
            .retry_unauthorized()
            .layer(server("Bearer fixed", None, Arc::clone(&seen)));
        let response = service.oneshot(Request::new(String::new())).await.unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(
            seen.lock().unwrap().len(),
            1,
            "the same value again would be pointless"
        );
    }

    #[test]
    fn debug_is_redacted() {
        let layer = BearerLayer::new(crate::StaticToken::new("do-not-print-me").unwrap());
        assert!(!format!("{layer:?}").contains("do-not-print"));
    }
}
