//! The response future of [`Auth`](crate::Auth) and [`RequireRoles`](crate::RequireRoles).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::response::ResponseBody;

/// What a verdict comes to: the request to pass on (with its identity), or the rejection.
pub(crate) enum Answer<B> {
    Pass(Request<B>),
    Reject(Response<ResponseBody<()>>),
}

/// Waiting for an authenticator, boxed: it owns the request while the authenticator fetches keys.
pub(crate) type Waiting<B> = Pin<Box<dyn Future<Output = Answer<B>> + Send>>;

pin_project! {
    /// The response future of [`Auth`](crate::Auth) and [`RequireRoles`](crate::RequireRoles).
    pub struct AuthFuture<S, B>
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
        Waiting { waiting: Waiting<B>, inner: Option<S> },
    }
}

impl<S: Service<Request<B>>, B> AuthFuture<S, B> {
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

    /// Calls `inner` with the request once `waiting` lets it through.
    pub(crate) fn waiting(waiting: Waiting<B>, inner: S) -> Self {
        Self {
            kind: Kind::Waiting {
                waiting,
                inner: Some(inner),
            },
        }
    }
}

impl<S, B, ResBody> Future for AuthFuture<S, B>
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
                    let response = response.take().expect("AuthFuture polled after completion");
                    return Poll::Ready(Ok(response.map(ResponseBody::retype)));
                }
                KindProj::Waiting { waiting, inner } => match ready!(waiting.as_mut().poll(cx)) {
                    Answer::Pass(request) => {
                        let mut service = inner.take().expect("AuthFuture polled after completion");
                        Kind::Inner {
                            future: service.call(request),
                        }
                    }
                    Answer::Reject(response) => Kind::Reject {
                        response: Some(response),
                    },
                },
            };
            this.kind.set(next);
        }
    }
}
