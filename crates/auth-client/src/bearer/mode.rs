//! The retry modes of [`BearerLayer`](super::BearerLayer): [`NoRetry`], [`CloneBody`] and
//! [`BufferBody`].

use std::fmt;

use super::replay::{Rebuild, ReplayBody};

mod sealed {
    pub trait Sealed {}
}

/// What [`Bearer`](super::Bearer) does when the server refuses a token: [`NoRetry`],
/// [`CloneBody`] or [`BufferBody`]. Sealed: the modes are this module's, as each has its own
/// request path.
pub trait RetryMode: sealed::Sealed + Clone {}

/// The default mode: a refused token goes back to the caller as the server's answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoRetry;

/// One retry with a fresh token, sending a clone of the request body (`Full<Bytes>`,
/// `String`, `Empty`...): for bodies that are `Clone`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CloneBody;

/// One retry with a fresh token, for request bodies that are not `Clone`, such as tonic's:
/// a body whose frames are all ready when the call is made (a unary call's, or any body up to
/// 64 KiB that is complete) is kept and sent again; any other goes on unchanged, without a
/// retry. The rebuild function turns the kept [`ReplayBody`] back into the inner service's
/// body type: `BufferBody::new(tonic::body::Body::new)` on a tonic `Channel`.
pub struct BufferBody<B> {
    pub(super) rebuild: Rebuild<B>,
}

impl<B> BufferBody<B> {
    /// The mode, turning kept bodies back into `B` with `rebuild`.
    pub fn new(rebuild: fn(ReplayBody<B>) -> B) -> Self {
        Self { rebuild }
    }
}

impl<B> Clone for BufferBody<B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B> Copy for BufferBody<B> {}

impl<B> fmt::Debug for BufferBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BufferBody")
    }
}

impl sealed::Sealed for NoRetry {}
impl sealed::Sealed for CloneBody {}
impl<B> sealed::Sealed for BufferBody<B> {}
impl RetryMode for NoRetry {}
impl RetryMode for CloneBody {}
impl<B> RetryMode for BufferBody<B> {}
