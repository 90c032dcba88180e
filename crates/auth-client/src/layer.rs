//! `BearerLayer`: `Authorization: Bearer <token>` on every outgoing request.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Request;
use http::header::AUTHORIZATION;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::header::authorization;
use crate::replay::{BufferedRetryBearerLayer, Rebuild};
use crate::retry::RetryBearerLayer;
use crate::{BoxError, BoxFuture, TokenCache};

/// Adds `Authorization: Bearer <token>` to every request, with tokens from a [`TokenCache`].
///
/// It works for any service over `http::Request<B>`: hyper clients, tonic `Channel`s (gRPC
/// metadata are HTTP/2 headers), tower stacks. An `Authorization` header already on a request
/// is replaced. The header value is marked sensitive, so HTTP/2 never indexes it.
///
/// When no token can be had, the call fails with the [`TokenError`](crate::TokenError) (boxed, as the
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
        RetryBearerLayer::new(self.tokens)
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::sync::{Arc, Mutex};

    use tower::{ServiceBuilder, ServiceExt};

    use super::*;
    use crate::test_support::{numbered, server};
    use crate::{FnSource, TokenError, TokenErrorKind};

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

    #[test]
    fn debug_is_redacted() {
        let layer = BearerLayer::new(crate::StaticToken::new("do-not-print-me").unwrap());
        assert!(!format!("{layer:?}").contains("do-not-print"));
    }
}
