//! The response body of the auth services: the inner body, or a fixed rejection.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower_auth_core::ConfigError;

pin_project! {
    /// The response body of [`Auth`](crate::Auth) and
    /// [`RequireRoles`](crate::RequireRoles): the inner service's body, or a
    /// short fixed rejection. Its error type is the inner body's.
    pub struct ResponseBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Fixed { data: Option<Bytes> },
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn inner(body: B) -> Self {
        Self {
            kind: Kind::Inner { body },
        }
    }

    pub(crate) fn fixed(data: Option<Bytes>) -> Self {
        Self {
            kind: Kind::Fixed {
                data: data.filter(|d| !d.is_empty()),
            },
        }
    }
}

impl ResponseBody<()> {
    /// A fixed body carries no inner body, so it can take any inner body type.
    pub(crate) fn retype<B>(self) -> ResponseBody<B> {
        match self.kind {
            Kind::Fixed { data } => ResponseBody::fixed(data),
            Kind::Inner { body: () } => ResponseBody::fixed(None),
        }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx),
            KindProj::Fixed { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Fixed { data } => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Fixed { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}

/// Checks a realm for the `WWW-Authenticate` challenge, where it sits inside a quoted string.
pub(crate) fn check_realm(setting: &str, realm: &str) -> Result<(), ConfigError> {
    if realm
        .bytes()
        .all(|b| (b == b' ' || b.is_ascii_graphic()) && b != b'"' && b != b'\\')
    {
        Ok(())
    } else {
        Err(ConfigError::new(
            setting,
            "must be printable ASCII without quotes or backslashes",
        ))
    }
}
