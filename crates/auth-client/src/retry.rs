//! [`RetryBearerLayer`]: [`BearerLayer`](crate::BearerLayer) with one retry, with a fresh
//! token, when the server refuses the first; for request bodies that are `Clone`.

use std::fmt;
use std::task::{Context, Poll};

use http::header::AUTHORIZATION;
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::header::{authorization, unauthorized};
use crate::{BoxError, BoxFuture, TokenCache};

/// [`BearerLayer`](crate::BearerLayer) with one retry on 401 / UNAUTHENTICATED; see
/// [`BearerLayer::retry_unauthorized`](crate::BearerLayer::retry_unauthorized).
#[derive(Clone)]
pub struct RetryBearerLayer {
    tokens: TokenCache,
}

impl RetryBearerLayer {
    pub(crate) fn new(tokens: TokenCache) -> Self {
        Self { tokens }
    }
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
    use std::sync::atomic::Ordering;
    use std::sync::{Arc, Mutex};

    use http::StatusCode;
    use tower::{ServiceExt, service_fn};

    use super::*;
    use crate::BearerLayer;
    use crate::test_support::{numbered, server};

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
}
