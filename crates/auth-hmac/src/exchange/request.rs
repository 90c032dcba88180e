//! What the token endpoint (`POST /auth/token`) and the revocation endpoint (`POST
//! /auth/revoke`) share: the registered clients and their authentication, whose failures
//! count in one limiter; the source address; the request body, read with a size cap and a
//! deadline; and the JSON answers with `Cache-Control: no-store`.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, PRAGMA, RETRY_AFTER};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full, Limited};
use subtle::ConstantTimeEq;
use tower_auth_core::{Capped, LogPermit, RejectionLog, Secret, sha256_digest};

use super::clients::Client;
use super::introspect::{Introspector, belongs_to};
use super::limiter::FailureLimiter;
use tower_auth_core::AuthErrorKind;
use tower_auth_core::{Cidr, ForwardedHeader};

use super::peer;
use super::{BODY_DEADLINE, BoxError, MAX_BODY_BYTES, MAX_CLIENT_ID_LEN, TokenClients};
use crate::HmacConfig;

/// A digest no credential is known to hash to, compared against for unknown clients so
/// that they cost the same as known ones.
const UNKNOWN_CLIENT_DIGEST: [u8; 32] = [0; 32];

/// An answer of the endpoints.
pub(super) type Answer = Response<Full<Bytes>>;

/// Why a request is refused before anything is done for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// 400 `invalid_request`.
    InvalidRequest,
    /// 429 `too_many_requests`, with `Retry-After` in seconds.
    TooManyFailures(u64),
    /// 401 `invalid_client`.
    InvalidClient,
    /// 503 `temporarily_unavailable`, with `Retry-After` in seconds: the issuer that judges
    /// an introspected client's token cannot be asked.
    Unavailable(u64),
}

impl Refusal {
    /// The answer that says so.
    pub(super) fn answer(self) -> Answer {
        match self {
            Self::InvalidRequest => invalid_request(),
            Self::TooManyFailures(wait) => {
                let mut response = respond(
                    StatusCode::TOO_MANY_REQUESTS,
                    r#"{"error":"too_many_requests"}"#,
                );
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(wait));
                response
            }
            Self::InvalidClient => {
                respond(StatusCode::UNAUTHORIZED, r#"{"error":"invalid_client"}"#)
            }
            Self::Unavailable(wait) => {
                let mut response = respond(
                    StatusCode::SERVICE_UNAVAILABLE,
                    r#"{"error":"temporarily_unavailable"}"#,
                );
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(wait));
                response
            }
        }
    }
}

/// Which endpoint is asking, for the names of its events.
#[derive(Clone, Copy)]
pub(super) enum Endpoint {
    Token,
    Revoke,
}

impl Endpoint {
    fn failed(self) -> &'static str {
        match self {
            Self::Token => "token_exchange_failed",
            Self::Revoke => "token_revocation_failed",
        }
    }

    /// The `endpoint` label of its 429s.
    fn metric(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Revoke => "revoke",
        }
    }

    fn limited(self) -> &'static str {
        match self {
            Self::Token => "token_exchange_limited",
            Self::Revoke => "token_revocation_limited",
        }
    }
}

/// The registered clients and everything that authenticates them, shared (behind one
/// `Arc`) by the token endpoint and the revocation endpoint made from it: a wrong secret
/// at either counts against the same (client, source) pair.
pub(super) struct ClientAuth {
    pub(super) config: Arc<HmacConfig>,
    pub(super) clients: TokenClients,
    pub(super) limiter: FailureLimiter,
    pub(super) trusted_proxies: Arc<[Cidr]>,
    pub(super) forwarded_header: ForwardedHeader,
    /// Set once an endpoint has warned that it sees no peer addresses.
    warned_no_peer: AtomicBool,
    /// Refusal events per source, limited (SECURITY.md E9): a locked-out source posting
    /// again and again writes one line, not one per post.
    logged: RejectionLog,
    /// The `auth::audit` events of refusals: one per kind, source and window.
    audited: super::audit::AuditFlood,
}

impl ClientAuth {
    pub(super) fn new(
        config: HmacConfig,
        clients: TokenClients,
        limiter: FailureLimiter,
        trusted_proxies: Arc<[Cidr]>,
        forwarded_header: ForwardedHeader,
    ) -> Self {
        Self {
            config: Arc::new(config),
            clients,
            limiter,
            trusted_proxies,
            forwarded_header,
            warned_no_peer: AtomicBool::new(false),
            logged: RejectionLog::default(),
            audited: super::audit::AuditFlood::default(),
        }
    }

    /// Whether a refusal of a request from `source` is logged.
    pub(super) fn may_log(&self, source: Option<IpAddr>) -> bool {
        self.logged.permit(source, self.config.clock.now_unix()) != LogPermit::Quiet
    }

    /// The source address failures are counted by; warns once when there is none.
    pub(super) fn source<B>(&self, request: &Request<B>) -> Option<IpAddr> {
        let source = tower_auth_core::source_address(
            peer::peer(request),
            request.headers(),
            &self.trusted_proxies,
            self.forwarded_header,
        );
        if source.is_none() && !self.warned_no_peer.swap(true, Ordering::Relaxed) {
            tracing::warn!(target: "auth", event = "token_exchange_no_peer_address",
                "the token exchange sees no peer address: failures count per client id alone, \
                 so wrong secrets from anywhere can lock a client out; serve it with \
                 into_make_service_with_connect_info::<SocketAddr>()");
        }
        source
    }

    /// Authenticates `client_id` by `secret` from `source`: the client, or why not: an
    /// empty or over-long id or an empty secret, the pair (or, for ids nobody registered,
    /// the source) locked out, or an unknown id or a wrong secret, alike and in near-same
    /// time.
    pub(super) fn authenticate(
        &self,
        endpoint: Endpoint,
        client_id: &str,
        secret: Secret,
        source: Option<IpAddr>,
    ) -> Result<&Client, Refusal> {
        if client_id.is_empty() || client_id.len() > MAX_CLIENT_ID_LEN || secret.is_empty() {
            return Err(Refusal::InvalidRequest);
        }
        let now = self.config.clock.now_unix();
        let client = self.clients.clients.get(client_id);
        let attempt = match self
            .limiter
            .attempt(client_id, client.is_some(), source, now)
        {
            Ok(attempt) => attempt,
            Err(wait) => {
                crate::metrics::rate_limited(endpoint.metric());
                if let Some(unlogged) = self.audited.permit(endpoint.limited(), source, now) {
                    tracing::warn!(target: "auth::audit", event = endpoint.limited(), client_id = %Capped(client_id), source = ?source, retry_after = wait, unlogged_before = unlogged, "client authentication refused: too many failures; this source's next ones are counted until the next window");
                }
                return Err(Refusal::TooManyFailures(wait));
            }
        };
        let expected = client.map_or(&UNKNOWN_CLIENT_DIGEST, |c| &c.digest);
        let matches = expected.ct_eq(&sha256_digest(secret.expose_secret()));
        drop(secret);
        match client {
            // A client authenticated by introspection has no secret to match here.
            Some(client) if bool::from(matches) && client.introspect.is_none() => {
                self.limiter.succeeded(attempt);
                Ok(client)
            }
            _ => {
                let reason = if client.is_some() {
                    "bad_credential"
                } else {
                    "unknown_client"
                };
                if let Some(unlogged) = self.audited.permit(endpoint.failed(), source, now) {
                    tracing::info!(target: "auth::audit", event = endpoint.failed(), client_id = %Capped(client_id), source = ?source, reason, unlogged_before = unlogged, "client authentication refused; this source's next ones are counted until the next window");
                }
                Err(Refusal::InvalidClient)
            }
        }
    }
}

impl ClientAuth {
    /// Authenticates `client_id`, registered with `introspect`, by an upstream access
    /// `token` that `introspector` judges: active, and its subject or `client_id` is this
    /// client. A refusal counts in the limiter as a wrong secret does; an issuer that cannot
    /// be asked is 503 and counts against nobody.
    pub(super) async fn authenticate_introspected(
        &self,
        client_id: &str,
        token: Secret,
        source: Option<IpAddr>,
        introspector: Option<&dyn Introspector>,
    ) -> Result<(&Client, Option<SystemTime>), Refusal> {
        if client_id.is_empty() || client_id.len() > MAX_CLIENT_ID_LEN || token.is_empty() {
            return Err(Refusal::InvalidRequest);
        }
        let Some(client) = self.clients.clients.get(client_id) else {
            return Err(Refusal::InvalidClient);
        };
        let Some(issuer) = client.introspect.as_deref() else {
            return Err(Refusal::InvalidClient);
        };
        let now = self.config.clock.now_unix();
        let attempt = match self.limiter.attempt(client_id, true, source, now) {
            Ok(attempt) => attempt,
            Err(wait) => {
                if self.may_log(source) {
                    tracing::warn!(target: "auth", event = Endpoint::Token.limited(), client_id = %Capped(client_id), source = ?source, retry_after = wait, "client authentication refused: too many failures");
                }
                return Err(Refusal::TooManyFailures(wait));
            }
        };
        let Some(introspector) = introspector else {
            self.limiter.succeeded(attempt);
            tracing::error!(target: "auth", event = "token_exchange_error", client_id = %Capped(client_id),
                "a client is registered with introspect but the endpoint has no introspector");
            return Err(Refusal::Unavailable(DEFAULT_UNAVAILABLE_WAIT));
        };
        // The secret's text: it came from a JSON string, so it is UTF-8.
        let text = std::str::from_utf8(token.expose_secret()).unwrap_or_default();
        let verdict = introspector.introspect(issuer, text).await;
        drop(token);
        let reason = match verdict {
            Ok(identity) => match belongs_to(&identity, client_id) {
                Ok(()) => {
                    self.limiter.succeeded(attempt);
                    return Ok((client, identity.expires_at()));
                }
                Err(reason) => reason,
            },
            Err(error) if error.kind() == AuthErrorKind::Unavailable => {
                // Not the client's fault: it does not count as a failure.
                self.limiter.succeeded(attempt);
                let wait = error
                    .retry_after()
                    .map_or(DEFAULT_UNAVAILABLE_WAIT, |d| d.as_secs().max(1));
                tracing::warn!(target: "auth", event = Endpoint::Token.failed(), client_id = %Capped(client_id), reason = error.reason(), "introspection unavailable");
                return Err(Refusal::Unavailable(wait));
            }
            Err(error) => error.reason(),
        };
        if self.may_log(source) {
            tracing::info!(target: "auth", event = Endpoint::Token.failed(), client_id = %Capped(client_id), source = ?source, reason, "client authentication refused");
        }
        Err(Refusal::InvalidClient)
    }
}

/// `Retry-After` when the introspecting issuer gave none.
const DEFAULT_UNAVAILABLE_WAIT: u64 = 5;

/// The body of `request`, which must be `POST` with content type `media_type`: 405 with
/// `Allow: POST` for another method; 400 for another content type, an unparseable or too
/// large `Content-Length`, or a body over [`MAX_BODY_BYTES`]; 408 for a body not complete
/// within [`BODY_DEADLINE`]. The request's head is handed back with the body.
pub(super) async fn read_body<B>(
    request: Request<B>,
    media_type: &str,
) -> Result<(http::request::Parts, Bytes), Answer>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    if request.method() != Method::POST {
        let mut response = respond(
            StatusCode::METHOD_NOT_ALLOWED,
            r#"{"error":"invalid_request"}"#,
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return Err(response);
    }
    let typed = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(media_type));
    let declared_len = request
        .headers()
        .get(CONTENT_LENGTH)
        .map(|v| v.to_str().ok().and_then(|v| v.parse::<u64>().ok()));
    if !typed
        || matches!(declared_len, Some(None))
        || declared_len
            .flatten()
            .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(invalid_request());
    }
    let (parts, body) = request.into_parts();
    // A client that sends its body slowly holds a connection and a task: it gets a
    // deadline, as it gets a size cap.
    let collected =
        tokio::time::timeout(BODY_DEADLINE, Limited::new(body, MAX_BODY_BYTES).collect()).await;
    match collected {
        Err(_) => Err(respond(
            StatusCode::REQUEST_TIMEOUT,
            r#"{"error":"invalid_request"}"#,
        )),
        Ok(Err(_)) => Err(invalid_request()),
        Ok(Ok(body)) => Ok((parts, body.to_bytes())),
    }
}

/// 400 `{"error":"invalid_request"}`.
pub(super) fn invalid_request() -> Answer {
    respond(StatusCode::BAD_REQUEST, r#"{"error":"invalid_request"}"#)
}

/// A JSON answer that no cache keeps (RFC 6749 section 5.1).
pub(super) fn respond(status: StatusCode, body: impl Into<Bytes>) -> Answer {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
