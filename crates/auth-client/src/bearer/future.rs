//! [`ResponseFuture`], the future of every [`Bearer`](super::Bearer) mode.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::{BoxError, BoxFuture};

pin_project! {
    /// The response future of [`Bearer`](super::Bearer).
    pub struct ResponseFuture<F, R> {
        #[pin]
        kind: Kind<F, R>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, R> {
        // The held token was set: the inner call, polled in place.
        Inner { #[pin] future: F },
        // A token to wait for, or a retry to be ready for: the whole exchange.
        Boxed { future: BoxFuture<'static, Result<R, BoxError>> },
        // Refused before the inner service was called.
        Failed { error: Option<BoxError> },
    }
}

impl<F, R> ResponseFuture<F, R> {
    pub(super) fn inner(future: F) -> Self {
        Self {
            kind: Kind::Inner { future },
        }
    }

    pub(super) fn failed(error: BoxError) -> Self {
        Self {
            kind: Kind::Failed { error: Some(error) },
        }
    }

    pub(super) fn boxed(future: BoxFuture<'static, Result<R, BoxError>>) -> Self {
        Self {
            kind: Kind::Boxed { future },
        }
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
            KindProj::Boxed { future } => future.as_mut().poll(cx),
            KindProj::Failed { error } => Poll::Ready(Err(error
                .take()
                .expect("ResponseFuture polled after completion"))),
        }
    }
}

impl<F, R> fmt::Debug for ResponseFuture<F, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture")
    }
}
