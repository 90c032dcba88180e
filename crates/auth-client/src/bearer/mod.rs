//! `Authorization: Bearer <token>` on outgoing requests: [`BearerLayer`], its service
//! [`Bearer`] and [`ResponseFuture`], as tower-http names a middleware's parts.
//!
//! ```
//! use std::convert::Infallible;
//! use http::{Request, Response, StatusCode};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_auth_client::bearer::{BearerLayer, CloneBody};
//! use tower_auth_client::StaticToken;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let api = service_fn(|request: Request<String>| async move {
//!     let status = match request.headers().get("authorization") {
//!         Some(value) if value == "Bearer k7Qm2VxP9rTz4LwN" => StatusCode::OK,
//!         _ => StatusCode::UNAUTHORIZED,
//!     };
//!     let mut response = Response::new(String::new());
//!     *response.status_mut() = status;
//!     Ok::<_, Infallible>(response)
//! });
//! let refused = api.clone().oneshot(Request::new(String::new())).await?;
//! assert_eq!(refused.status(), 401);
//!
//! let layer = BearerLayer::new(StaticToken::new("k7Qm2VxP9rTz4LwN")?);
//! let client = ServiceBuilder::new()
//!     .layer(layer.retry_unauthorized(CloneBody))
//!     .service(api);
//! let response = client.oneshot(Request::new("{}".to_owned())).await?;
//! assert_eq!(response.status(), 200);
//! # Ok(()) }
//! ```
//!
//! One layer, with what it does on a refused token (HTTP 401 or a gRPC trailers-only
//! `UNAUTHENTICATED`) as an option:
//!
//! | Layer | On a refused token | Request bodies |
//! |---|---|---|
//! | `BearerLayer::new(tokens)` | the caller gets the refusal | any |
//! | `.retry_unauthorized(CloneBody)` | one retry with a fresh token | `Clone` (`Full<Bytes>`, `String`, ...) |
//! | `.retry_unauthorized(BufferBody::new(rebuild))` | one retry, for bodies complete when the call is made | any `http_body::Body<Data = Bytes>` (tonic's, axum's) |
//!
//! The mode is a type parameter of the one layer type (`BearerLayer<NoRetry>` by default), as
//! tower-http's `FollowRedirectLayer<P>` takes its policy, rather than a value checked per
//! request: each mode needs different bounds on the request body (none, `Clone`, or
//! `Body` with a way to rebuild it), and only a type can carry a bound. It also keeps the
//! request path of the default mode as it was: a held token is set with no allocation and
//! the inner future is polled in place, while the retrying modes keep what they need for a
//! second attempt.
//!
//! The mode must be one of this module's: other types do not compile.
//!
//! ```compile_fail,E0277
//! use tower_auth_client::{BearerLayer, StaticToken};
//! let layer = BearerLayer::new(StaticToken::new("abc").unwrap()).retry_unauthorized(3_u8);
//! ```

use std::fmt;

use tower_layer::Layer;

use crate::TokenCache;
use origin::Destinations;

mod future;
mod header;
mod mode;
mod origin;
mod replay;
mod retry;
mod service;

pub use future::ResponseFuture;
pub use mode::{BufferBody, CloneBody, NoRetry, RetryMode};
pub use origin::{ForeignOrigin, InvalidOrigin, OtherOrigins};
pub use replay::ReplayBody;
pub use service::Bearer;

/// Adds `Authorization: Bearer <token>` to the requests it was made for, with tokens from a
/// [`TokenCache`].
///
/// It works for any service over `http::Request<B>`: hyper clients, tonic `Channel`s (gRPC
/// metadata are HTTP/2 headers), tower stacks. An `Authorization` header already on a request
/// it sends its token with is replaced. The header value is marked sensitive, so HTTP/2 never
/// indexes it.
///
/// **Where the token goes.** A request with a relative URI (`/pkg.Service/Method`: tonic's
/// generated clients through a `Channel`) goes where the inner service was built to send it,
/// and gets the token. A request with an absolute URI (`https://api.example.com/x`: a hyper
/// client) gets it only when its origin (scheme, host, port) was given to
/// [`allow_origin`](BearerLayer::allow_origin); to any other origin it goes out without the
/// token, or, with [`other_origins`](BearerLayer::other_origins)`(OtherOrigins::Refuse)`,
/// the call fails with [`ForeignOrigin`]. A link or webhook URL taken from a response, or a
/// redirect to another host, never carries the token, and only the layer's own origins get a
/// retry on 401. Plain `http` to a host that is not loopback is refused unless allowed with
/// [`allow_insecure_origin`](BearerLayer::allow_insecure_origin).
///
/// A redirect-following layer (tower-http's `FollowRedirectLayer`) goes **outside** this
/// layer, so that each hop comes through it and is judged by its own origin. Inside it, the
/// redirect would be followed with the token already set, and only the redirect policy would
/// stand between it and the next host.
///
/// When no token can be had, the call fails with the [`TokenError`](crate::TokenError) (boxed,
/// as the service's error is [`BoxError`](crate::BoxError)) and the inner service is not
/// called. On a tonic client that surfaces as a `Status` whose source is the `TokenError`,
/// with code `Unknown`, or with the feature `tonic` the code the error stands for
/// (`TokenError::grpc_code`: `Internal`, or `Unavailable` when the token endpoint is
/// down).
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
/// [`BearerLayer::retry_unauthorized`] adds one retry with a fresh token when the server
/// answers 401 or gRPC UNAUTHENTICATED; see the [module docs](self) for the modes.
#[derive(Clone)]
pub struct BearerLayer<R = NoRetry> {
    tokens: TokenCache,
    retry: R,
    destinations: Destinations,
}

impl BearerLayer {
    /// A layer taking tokens from `tokens`: a [`TokenCache`], or any
    /// [`TokenSource`](crate::TokenSource), which gets a cache with the default policy. It
    /// does not retry; see [`BearerLayer::retry_unauthorized`].
    pub fn new(tokens: impl Into<TokenCache>) -> Self {
        Self {
            tokens: tokens.into(),
            retry: NoRetry,
            destinations: Destinations::default(),
        }
    }
}

impl<R> BearerLayer<R> {
    /// The same layer, retrying a request once with a freshly fetched token when the server
    /// answers HTTP 401 or a gRPC trailers-only UNAUTHENTICATED (`grpc-status: 16`), by
    /// `mode`: [`CloneBody`] for `Clone` bodies, [`BufferBody`] for others (tonic's), or
    /// [`NoRetry`] to turn the retry off again.
    ///
    /// A request is retried at most once, and a refresh is forced at most once per
    /// [`RefreshPolicy::forced_refresh_interval`](crate::RefreshPolicy::forced_refresh_interval);
    /// when the fresh token has the same value (a static token), there is no retry.
    ///
    /// ```
    /// use tower_auth_client::bearer::{BearerLayer, BufferBody, ReplayBody};
    /// use tower_auth_client::{BoxError, StaticToken};
    /// use bytes::Bytes;
    /// use http_body_util::BodyExt;
    /// use http_body_util::combinators::UnsyncBoxBody;
    ///
    /// // On a tonic `Channel`: `BufferBody::new(tonic::body::Body::new)`.
    /// type Erased = UnsyncBoxBody<Bytes, BoxError>;
    /// let layer = BearerLayer::new(StaticToken::new("abc").unwrap())
    ///     .retry_unauthorized(BufferBody::new(|body: ReplayBody<Erased>| body.boxed_unsync()));
    /// ```
    #[must_use]
    pub fn retry_unauthorized<M: RetryMode>(self, mode: M) -> BearerLayer<M> {
        BearerLayer {
            tokens: self.tokens,
            retry: mode,
            destinations: self.destinations,
        }
    }

    /// Also sends the token to requests for `url`'s origin (its scheme, host and port; a
    /// path is ignored): the service the tokens are for, as a hyper client addresses it
    /// (`https://api.example.com`, `http://127.0.0.1:8080`).
    ///
    /// # Errors
    /// [`InvalidOrigin`]: not an absolute `http` or `https` URL, or plain `http` to a host
    /// that is not loopback (see [`allow_insecure_origin`](Self::allow_insecure_origin)).
    pub fn allow_origin(mut self, url: &str) -> Result<Self, InvalidOrigin> {
        self.destinations.allow(url, false)?;
        Ok(self)
    }

    /// As [`allow_origin`](Self::allow_origin), accepting plain `http` to any host: the token
    /// then crosses the network in the clear, readable by anyone on the path. For a private
    /// network you trust as much as the token.
    ///
    /// # Errors
    /// [`InvalidOrigin`]: not an absolute `http` or `https` URL.
    pub fn allow_insecure_origin(mut self, url: &str) -> Result<Self, InvalidOrigin> {
        self.destinations.allow(url, true)?;
        Ok(self)
    }

    /// What a request for an origin not allowed gets: sent without the token (the default),
    /// or refused with [`ForeignOrigin`].
    #[must_use]
    pub fn other_origins(mut self, others: OtherOrigins) -> Self {
        self.destinations.set_others(others);
        self
    }

    /// The token cache.
    pub fn tokens(&self) -> &TokenCache {
        &self.tokens
    }
}

impl<S, R: Clone> Layer<S> for BearerLayer<R> {
    type Service = Bearer<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        Bearer::with_mode(
            inner,
            self.tokens.clone(),
            self.retry.clone(),
            self.destinations.clone(),
        )
    }
}

impl<R: fmt::Debug> fmt::Debug for BearerLayer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerLayer")
            .field("tokens", &self.tokens)
            .field("retry", &self.retry)
            .field("destinations", &self.destinations)
            .finish()
    }
}
