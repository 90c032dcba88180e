//! [`Bearer`], the service of [`BearerLayer`](super::BearerLayer), and its request path
//! without a retry.

use std::fmt;
use std::task::{Context, Poll};

use http::Request;
use http::header::AUTHORIZATION;
use tower_service::Service;

use super::future::ResponseFuture;
use super::header::authorization;
use super::mode::{NoRetry, RetryMode};
use super::origin::{Destinations, Verdict};
use crate::{BoxError, TokenCache};

/// The service of [`BearerLayer`](super::BearerLayer): `inner` with `Authorization: Bearer`
/// set on each request, retrying a refused token as the mode `R` says (by default
/// [`NoRetry`]).
#[derive(Clone)]
pub struct Bearer<S, R = NoRetry> {
    pub(super) inner: S,
    pub(super) tokens: TokenCache,
    pub(super) retry: R,
    pub(super) destinations: Destinations,
}

impl<S> Bearer<S> {
    /// `inner` with tokens from `tokens`, without a layer (as
    /// `BearerLayer::new(tokens).layer(inner)`): the token goes with relative URIs only; see
    /// [`BearerLayer`](super::BearerLayer) for origins.
    pub fn new(inner: S, tokens: impl Into<TokenCache>) -> Self {
        Self::with_mode(inner, tokens.into(), NoRetry, Destinations::default())
    }
}

impl<S, R> Bearer<S, R> {
    pub(super) fn with_mode(
        inner: S,
        tokens: TokenCache,
        retry: R,
        destinations: Destinations,
    ) -> Self {
        Self {
            inner,
            tokens,
            retry,
            destinations,
        }
    }

    /// The same service, retrying a refused token by `mode`; see
    /// [`BearerLayer::retry_unauthorized`](super::BearerLayer::retry_unauthorized).
    #[must_use]
    pub fn retry_unauthorized<M: RetryMode>(self, mode: M) -> Bearer<S, M> {
        Bearer::with_mode(self.inner, self.tokens, mode, self.destinations)
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The token cache.
    pub fn tokens(&self) -> &TokenCache {
        &self.tokens
    }

    /// The ready inner service, for a future to call; a clone takes its place (tower's
    /// advice for services called from a future).
    pub(super) fn take_inner(&mut self) -> S
    where
        S: Clone,
    {
        let clone = self.inner.clone();
        std::mem::replace(&mut self.inner, clone)
    }
}

impl<S, R> Bearer<S, R> {
    /// The request back when it gets the token; otherwise the answer for it: the inner call
    /// with the request as it is, or the refusal.
    pub(super) fn for_us<B>(
        &mut self,
        request: Request<B>,
    ) -> Result<Request<B>, ResponseFuture<S::Future, S::Response>>
    where
        S: Service<Request<B>>,
    {
        match self.destinations.judge(request.uri()) {
            Verdict::Send => Ok(request),
            Verdict::Withhold => Err(ResponseFuture::inner(self.inner.call(request))),
            Verdict::Refuse(error) => Err(ResponseFuture::failed(error.into())),
        }
    }
}

impl<S: fmt::Debug, R: fmt::Debug> fmt::Debug for Bearer<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bearer")
            .field("inner", &self.inner)
            .field("tokens", &self.tokens)
            .field("retry", &self.retry)
            .finish()
    }
}

impl<S, B> Service<Request<B>> for Bearer<S, NoRetry>
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

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let mut request = match self.for_us(request) {
            Ok(request) => request,
            Err(answer) => return answer,
        };
        if let Some(token) = self.tokens.try_token()
            && let Some(value) = token.authorization()
        {
            request.headers_mut().insert(AUTHORIZATION, value.clone());
            return ResponseFuture::inner(self.inner.call(request));
        }
        let mut inner = self.take_inner();
        let tokens = self.tokens.clone();
        ResponseFuture::boxed(Box::pin(async move {
            let token = tokens.token().await?;
            request
                .headers_mut()
                .insert(AUTHORIZATION, authorization(&token)?);
            inner.call(request).await.map_err(Into::into)
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::sync::{Arc, Mutex};

    use tower::{ServiceBuilder, ServiceExt};

    use tower_layer::Layer;

    use super::*;
    use crate::BearerLayer;
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
