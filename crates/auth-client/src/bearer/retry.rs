//! The request path of the two modes that retry, [`CloneBody`] and [`BufferBody`].

use std::future::Future;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use super::future::ResponseFuture;
use super::header::{authorization, unauthorized};
use super::mode::{BufferBody, CloneBody};
use super::replay::split;
use super::service::Bearer;
use crate::{BoxError, TokenCache};

impl<S, B, RB> Service<Request<B>> for Bearer<S, CloneBody>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Clone + Send + 'static,
    RB: Send + 'static,
{
    type Response = Response<RB>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, Response<RB>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let request = match self.for_us(request) {
            Ok(request) => request,
            Err(answer) => return answer,
        };
        let inner = self.take_inner();
        let tokens = self.tokens.clone();
        ResponseFuture::boxed(Box::pin(send(inner, tokens, request, |body: B| {
            let again = body.clone();
            std::future::ready(Ok((body, Some(again))))
        })))
    }
}

impl<S, B, RB> Service<Request<B>> for Bearer<S, BufferBody<B>>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    RB: Send + 'static,
{
    type Response = Response<RB>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, Response<RB>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let request = match self.for_us(request) {
            Ok(request) => request,
            Err(answer) => return answer,
        };
        let inner = self.take_inner();
        let tokens = self.tokens.clone();
        let rebuild = self.retry.rebuild;
        ResponseFuture::boxed(Box::pin(send(inner, tokens, request, move |body| {
            split(body, rebuild)
        })))
    }
}

/// Sends `request` with a token, and once more with a fresh one if the server refuses it and
/// `keep` kept a copy of the body (it runs after the token is had, so that no body is read
/// for a call that fails for want of a token).
async fn send<S, B, RB, K, Fut>(
    mut inner: S,
    tokens: TokenCache,
    request: Request<B>,
    keep: K,
) -> Result<Response<RB>, BoxError>
where
    S: Service<Request<B>, Response = Response<RB>>,
    S::Error: Into<BoxError>,
    K: FnOnce(B) -> Fut,
    Fut: Future<Output = Result<(B, Option<B>), BoxError>>,
{
    let token = tokens.token().await?;
    let (mut parts, body) = request.into_parts();
    parts.headers.insert(AUTHORIZATION, authorization(&token)?);
    let (body, again) = keep(body).await?;
    let response = inner
        .call(Request::from_parts(parts.clone(), body))
        .await
        .map_err(Into::into)?;
    if !unauthorized(&response) {
        return Ok(response);
    }
    let Some(again) = again else {
        return Ok(response);
    };
    let Some(fresh) = tokens.refresh_rejected(&token).await else {
        return Ok(response);
    };
    drop(response);
    parts.headers.insert(AUTHORIZATION, authorization(&fresh)?);
    std::future::poll_fn(|cx| inner.poll_ready(cx))
        .await
        .map_err(Into::into)?;
    inner
        .call(Request::from_parts(parts, again))
        .await
        .map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::Ordering;
    use std::sync::{Arc, Mutex};

    use http::StatusCode;
    use tower::{ServiceExt, service_fn};
    use tower_layer::Layer;

    use super::*;
    use crate::BearerLayer;
    use crate::bearer::NoRetry;
    use crate::test_support::{numbered, server};

    #[tokio::test]
    async fn retries_once_with_a_fresh_token_on_401_and_unauthenticated() {
        for grpc in [None, Some("16")] {
            let (source, calls) = numbered();
            let seen = Arc::default();
            let service = BearerLayer::new(source)
                .retry_unauthorized(CloneBody)
                .layer(server("Bearer t0", grpc, Arc::clone(&seen)));
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
        let service = BearerLayer::new(source)
            .retry_unauthorized(CloneBody)
            .layer(always);
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
            .retry_unauthorized(CloneBody)
            .layer(server("Bearer fixed", None, Arc::clone(&seen)));
        let response = service.oneshot(Request::new(String::new())).await.unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(
            seen.lock().unwrap().len(),
            1,
            "the same value again would be pointless"
        );
    }

    #[tokio::test]
    async fn no_retry_turns_a_retrying_layer_back_into_the_default() {
        let seen = Arc::default();
        let layer: BearerLayer = BearerLayer::new(crate::StaticToken::new("fixed").unwrap())
            .retry_unauthorized(CloneBody)
            .retry_unauthorized(NoRetry);
        let (source, calls) = numbered();
        let service = BearerLayer::new(source)
            .retry_unauthorized(CloneBody)
            .retry_unauthorized(NoRetry)
            .layer(server("Bearer t0", None, Arc::clone(&seen)));
        let response = service.oneshot(Request::new(String::new())).await.unwrap();
        assert_eq!(
            response.status(),
            401,
            "the refusal goes back to the caller"
        );
        assert_eq!(*seen.lock().unwrap(), ["Bearer t0"]);
        assert_eq!(calls.load(Ordering::SeqCst), 1, "no forced refresh");
        assert!(format!("{layer:?}").contains("NoRetry"));
    }
}
