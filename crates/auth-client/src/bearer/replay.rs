//! [`ReplayBody`]: how [`BufferBody`](super::BufferBody) keeps a body that is not `Clone`
//! (tonic's, axum's) for a retry: a body whose frames are all ready at once is kept so that
//! it can be sent again.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

use crate::BoxError;

/// Bodies larger than this are sent without keeping a copy (and so without a retry).
const MAX_REPLAY_BYTES: usize = 64 * 1024;

/// Turns a [`ReplayBody`] back into the inner service's body type, such as
/// `tonic::body::Body::new` or `axum::body::Body::new`.
pub(super) type Rebuild<B> = fn(ReplayBody<B>) -> B;

/// A request body as [`Bearer`](super::Bearer) sends it in the
/// [`BufferBody`](super::BufferBody) mode: frames read ahead (and kept for a retry), then the
/// rest of the original body, if any.
pub struct ReplayBody<B> {
    data: VecDeque<Bytes>,
    trailers: Option<HeaderMap>,
    rest: Option<Pin<Box<B>>>,
}

impl<B> Body for ReplayBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(data) = this.data.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if let Some(rest) = &mut this.rest {
            return rest
                .as_mut()
                .poll_frame(cx)
                .map(|frame| frame.map(|frame| frame.map_err(Into::into)));
        }
        Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_empty()
            && self.trailers.is_none()
            && self.rest.as_ref().is_none_or(|rest| rest.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let buffered: u64 = self.data.iter().map(|d| d.len() as u64).sum();
        match &self.rest {
            None => SizeHint::with_exact(buffered),
            Some(rest) => {
                let rest = rest.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(rest.lower().saturating_add(buffered));
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper.saturating_add(buffered));
                }
                hint
            }
        }
    }
}

impl<B> fmt::Debug for ReplayBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayBody")
            .field("buffered_frames", &self.data.len())
            .field("streaming", &self.rest.is_some())
            .finish()
    }
}

/// Reads the frames of `body` that are ready now. A body that ends within them (and within
/// [`MAX_REPLAY_BYTES`]) comes back twice; any other goes on as it is, read-ahead first,
/// with no copy. Waiting for more would stall a streaming call whose sender waits for the
/// server's answer.
pub(super) async fn split<B>(body: B, rebuild: Rebuild<B>) -> Result<(B, Option<B>), BoxError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let mut body = Box::pin(body);
    let mut data = VecDeque::new();
    let mut size = 0;
    let mut trailers = None;
    let complete = loop {
        if body.is_end_stream() {
            break true;
        }
        let next = std::future::poll_fn(|cx| match body.as_mut().poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(Some(frame)),
            Poll::Pending => Poll::Ready(None),
        })
        .await;
        match next {
            None => break false,
            Some(None) => break true,
            Some(Some(Err(e))) => return Err(e.into()),
            Some(Some(Ok(frame))) => match frame.into_data() {
                Ok(bytes) => {
                    size += bytes.len();
                    data.push_back(bytes);
                    if size > MAX_REPLAY_BYTES {
                        break false;
                    }
                }
                Err(frame) => {
                    // Trailers end a body.
                    trailers = frame.into_trailers().ok();
                    break true;
                }
            },
        }
    };
    if complete {
        let copy = ReplayBody {
            data: data.clone(),
            trailers: trailers.clone(),
            rest: None,
        };
        let first = ReplayBody {
            data,
            trailers,
            rest: None,
        };
        Ok((rebuild(first), Some(rebuild(copy))))
    } else {
        let first = ReplayBody {
            data,
            trailers: None,
            rest: Some(body),
        };
        Ok((rebuild(first), None))
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use http::header::AUTHORIZATION;
    use http::{Request, Response, StatusCode};
    use http_body_util::{BodyExt, Full};
    use tower::{ServiceExt, service_fn};
    use tower_layer::Layer;
    use tower_service::Service;

    use super::*;
    use crate::bearer::BufferBody;
    use crate::{BearerLayer, FnSource, Token};

    /// A type-erased body, as tonic's and axum's are: not `Clone`.
    type Erased = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

    fn erase(body: ReplayBody<Erased>) -> Erased {
        body.boxed_unsync()
    }

    fn numbered() -> FnSource {
        let n = Arc::new(Mutex::new(0));
        FnSource::new(move || {
            let mut n = n.lock().unwrap();
            *n += 1;
            let token = Token::new(format!("t{n}"), Some(Duration::from_secs(3600)));
            async move { Ok(token) }
        })
    }

    /// Refuses `t1` with grpc-status 16 and echoes the body to anything else.
    fn server(
        seen: Arc<Mutex<Vec<(String, Bytes)>>>,
    ) -> impl Service<Request<Erased>, Response = Response<Bytes>, Error = Infallible, Future: Send>
    + Clone
    + Send
    + 'static {
        service_fn(move |request: Request<Erased>| {
            let seen = Arc::clone(&seen);
            async move {
                let auth = request.headers()[AUTHORIZATION]
                    .to_str()
                    .unwrap()
                    .to_owned();
                let body = request.into_body().collect().await.unwrap().to_bytes();
                seen.lock().unwrap().push((auth.clone(), body.clone()));
                let mut response = Response::new(body);
                if auth == "Bearer t1" {
                    response
                        .headers_mut()
                        .insert("grpc-status", http::HeaderValue::from_static("16"));
                }
                Ok::<_, Infallible>(response)
            }
        })
    }

    #[tokio::test]
    async fn a_ready_body_is_sent_again_with_a_fresh_token() {
        let seen = Arc::default();
        let service = BearerLayer::new(numbered())
            .retry_unauthorized(BufferBody::new(erase))
            .layer(server(Arc::clone(&seen)));
        let body = Full::new(Bytes::from_static(b"\0\0\0\0\x02hi"))
            .map_err(|e: Infallible| match e {})
            .boxed_unsync();
        let response = service.oneshot(Request::new(body)).await.unwrap();
        assert!(response.headers().get("grpc-status").is_none());
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].0, "Bearer t1");
        assert_eq!(seen[1].0, "Bearer t2");
        assert_eq!(seen[0].1, seen[1].1);
        assert_eq!(&seen[1].1[..], b"\0\0\0\0\x02hi");
    }

    #[tokio::test]
    async fn a_streaming_body_is_sent_once_whole() {
        let seen = Arc::default();
        let service = BearerLayer::new(numbered())
            .retry_unauthorized(BufferBody::new(erase))
            .layer(server(Arc::clone(&seen)));
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send(Bytes::from_static(b"first ")).await.unwrap();
        let body = ChannelBody(rx).boxed_unsync();
        let call = tokio::spawn(service.oneshot(Request::new(body)));
        tokio::task::yield_now().await;
        tx.send(Bytes::from_static(b"second")).await.unwrap();
        drop(tx);
        let response = call.await.unwrap().unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["grpc-status"],
            "16",
            "no copy, so no retry"
        );
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(
            &seen[0].1[..],
            b"first second",
            "read-ahead frames come first"
        );
    }

    /// A body fed by a channel: a streaming call whose sender is still sending.
    struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

    impl Body for ChannelBody {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            self.0
                .poll_recv(cx)
                .map(|data| data.map(|d| Ok(Frame::data(d))))
        }
    }

    #[tokio::test]
    async fn a_large_body_is_not_kept() {
        let seen = Arc::default();
        let service = BearerLayer::new(numbered())
            .retry_unauthorized(BufferBody::new(erase))
            .layer(server(Arc::clone(&seen)));
        let big = Bytes::from(vec![b'x'; MAX_REPLAY_BYTES + 1]);
        let body = Full::new(big.clone())
            .map_err(|e: Infallible| match e {})
            .boxed_unsync();
        let response = service.oneshot(Request::new(body)).await.unwrap();
        assert_eq!(response.headers()["grpc-status"], "16");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].1, big);
    }
}
