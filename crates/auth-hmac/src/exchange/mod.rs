//! The token-exchange endpoint: `POST /auth/token` turns a registered client's secret into a
//! short-lived role token.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use tower_auth_core::sha256_digest;
//! use tower_auth_hmac::{HmacConfig, TokenClients, TokenExchange};
//! use http_body_util::{BodyExt, Full};
//! use tower::ServiceExt;
//!
//! let digest = hex::encode(sha256_digest(b"registration-secret-of-the-metrics-agent"));
//! let clients = TokenClients::parse(
//!     "AUTH_TOKEN_CLIENTS",
//!     &format!(r#"[{{"client_id":"agent","secret_sha256":"sha256:{digest}","roles":["runtime.metrics:read"]}}]"#),
//! ).unwrap();
//! let config = HmacConfig::new("0123456789abcdef0123456789abcdef-secret").unwrap();
//! let exchange = TokenExchange::new(config.clone(), clients);
//!
//! let request = |credential: &str| {
//!     http::Request::post("/auth/token")
//!         .header("content-type", "application/json")
//!         .body(Full::new(bytes::Bytes::from(format!(
//!             r#"{{"client_id":"agent","credential":"{credential}"}}"#
//!         ))))
//!         .unwrap()
//! };
//! let response = exchange.clone().oneshot(request("registration-secret-of-the-metrics-agent")).await.unwrap();
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.headers()["cache-control"], "no-store");
//! let body: serde_json::Value = serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
//! assert_eq!(body["token_type"], "Bearer");
//! let claims = config.decode_access_token(body["access_token"].as_str().unwrap()).unwrap();
//! assert_eq!(claims.roles, ["runtime.metrics:read"]);
//!
//! let response = exchange.oneshot(request("a wrong secret")).await.unwrap();
//! assert_eq!(response.status(), 401);
//! # }
//! ```

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, PRAGMA, RETRY_AFTER};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full, Limited};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tower_auth_core::{ConfigError, Secret, sha256_digest};

use crate::HmacConfig;

mod clients;
mod limiter;

pub use clients::TokenClients;
use limiter::FailureLimiter;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The path the endpoint is conventionally mounted at (exempt it from the auth layer).
pub const TOKEN_PATH: &str = "/auth/token";

/// The lifetime of issued tokens unless configured otherwise.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Request bodies larger than this are refused with 400 before being parsed.
pub const MAX_BODY_BYTES: usize = 4 * 1024;

/// Client ids longer than this are refused (they would only bloat the failure limiter).
const MAX_CLIENT_ID_LEN: usize = 256;

/// Failed attempts per client id allowed within [`DEFAULT_FAILURE_WINDOW`].
pub const DEFAULT_MAX_FAILURES: u32 = 5;

/// The window in which [`DEFAULT_MAX_FAILURES`] failures lock a client id out.
pub const DEFAULT_FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// How many client ids the failure limiter tracks at most.
const LIMITER_CAPACITY: usize = 10_000;

/// The token-exchange endpoint as a tower service over `http::Request<B>`.
///
/// `POST` a JSON body `{"client_id": "...", "credential": "..."}` with content type
/// `application/json`:
///
/// | case | answer |
/// |---|---|
/// | known client, credential's SHA-256 equals its `secret_sha256` | 200 `{"access_token","token_type":"Bearer","expires_in"}`, the client's roles, subject = `client_id` |
/// | unknown client or wrong credential (one answer, near-same timing) | 401 `{"error":"invalid_client"}` |
/// | malformed JSON, missing fields, wrong content type, body over 4 KiB | 400 `{"error":"invalid_request"}` |
/// | 5 failures for one `client_id` within a minute (configurable) | 429 `{"error":"too_many_requests"}` + `Retry-After` |
/// | any method but `POST` | 405 + `Allow: POST` |
///
/// Every answer carries `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749
/// section 5.1). Mount it at [`TOKEN_PATH`] and exempt that path from the auth layer.
/// Time (token timestamps and the failure windows) comes from the [`HmacConfig`]'s clock.
#[derive(Clone)]
pub struct TokenExchange {
    config: Arc<HmacConfig>,
    clients: TokenClients,
    lifetime: Duration,
    audience: Option<Arc<str>>,
    limiter: Arc<FailureLimiter>,
}

impl fmt::Debug for TokenExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenExchange")
            .field("config", &self.config)
            .field("clients", &self.clients)
            .field("lifetime", &self.lifetime)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct ExchangeRequest {
    client_id: String,
    credential: String,
}

/// A digest no credential is known to hash to, compared against for unknown clients so
/// that they cost the same as known ones.
const UNKNOWN_CLIENT_DIGEST: [u8; 32] = [0; 32];

impl TokenExchange {
    /// An endpoint minting with `config` for `clients`: tokens live
    /// [`DEFAULT_TOKEN_LIFETIME`] and carry `config`'s audience, if any; 5 failures per
    /// client id per minute lock it out for the rest of that minute.
    pub fn new(config: HmacConfig, clients: TokenClients) -> Self {
        let audience = config.audience.clone();
        Self {
            config: Arc::new(config),
            clients,
            lifetime: DEFAULT_TOKEN_LIFETIME,
            audience,
            limiter: Arc::new(FailureLimiter::new(
                DEFAULT_MAX_FAILURES,
                DEFAULT_FAILURE_WINDOW,
                LIMITER_CAPACITY,
            )),
        }
    }

    /// Reads `{prefix}AUTH_TOKEN_CLIENTS` (see [`TokenClients::parse`]) and the optional
    /// `{prefix}AUTH_TOKEN_TTL_SECS` (token lifetime in seconds, 60 to 31 622 400; default
    /// 86 400) through `get`; `Ok(None)` when `AUTH_TOKEN_CLIENTS` is unset.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the variable.
    pub fn from_vars(
        prefix: &str,
        get: &dyn Fn(&str) -> Option<String>,
        config: HmacConfig,
    ) -> Result<Option<Self>, ConfigError> {
        let Some(clients) = TokenClients::from_vars(prefix, get)? else {
            return Ok(None);
        };
        let mut exchange = Self::new(config, clients);
        let variable = format!("{prefix}AUTH_TOKEN_TTL_SECS");
        if let Some(ttl) = get(&variable) {
            let max = crate::MAX_TOKEN_LIFETIME.as_secs();
            let secs = ttl
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|secs| (60..=max).contains(secs))
                .ok_or_else(|| {
                    ConfigError::new(
                        &variable,
                        format!("must be a whole number of seconds from 60 to {max}"),
                    )
                })?;
            exchange.lifetime = Duration::from_secs(secs);
        }
        Ok(Some(exchange))
    }

    /// Sets the lifetime of issued tokens (whole seconds, 1 s to 366 days; clamped).
    #[must_use]
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime.clamp(Duration::from_secs(1), crate::MAX_TOKEN_LIFETIME);
        self
    }

    /// Sets the audience issued tokens carry (by default the configuration's audience).
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into().into());
        self
    }

    /// Allows `max_failures` failed attempts per client id within `window` (at least 1
    /// and 1 s), after which the id gets 429 until the window ends.
    #[must_use]
    pub fn rate_limit(mut self, max_failures: u32, window: Duration) -> Self {
        self.limiter = Arc::new(FailureLimiter::new(max_failures, window, LIMITER_CAPACITY));
        self
    }

    /// The lifetime of issued tokens.
    pub fn token_lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Answers one request; the service's `call` is this.
    pub async fn handle<B>(&self, request: Request<B>) -> Response<Full<Bytes>>
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
            return response;
        }
        let Some(ExchangeRequest {
            client_id,
            credential,
        }) = read_request(request).await
        else {
            return respond(StatusCode::BAD_REQUEST, r#"{"error":"invalid_request"}"#);
        };
        let credential = Secret::from(credential);
        if client_id.is_empty() || client_id.len() > MAX_CLIENT_ID_LEN || credential.is_empty() {
            return respond(StatusCode::BAD_REQUEST, r#"{"error":"invalid_request"}"#);
        }
        let now = self.config.clock.now_unix();
        if let Err(wait) = self.limiter.attempt(&client_id, now) {
            tracing::warn!(target: "auth", event = "token_exchange_limited", client_id = ?client_id, retry_after = wait, "token exchange refused: too many failures");
            let mut response = respond(
                StatusCode::TOO_MANY_REQUESTS,
                r#"{"error":"too_many_requests"}"#,
            );
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(wait));
            return response;
        }
        let client = self.clients.clients.get(&client_id);
        let expected = client.map_or(&UNKNOWN_CLIENT_DIGEST, |c| &c.digest);
        let matches = expected.ct_eq(&sha256_digest(credential.expose_secret()));
        drop(credential);
        let client = match client {
            Some(client) if bool::from(matches) => client,
            _ => {
                let reason = if client.is_some() {
                    "bad_credential"
                } else {
                    "unknown_client"
                };
                tracing::info!(target: "auth", event = "token_exchange_failed", client_id = ?client_id, reason, "token exchange refused");
                return respond(StatusCode::UNAUTHORIZED, r#"{"error":"invalid_client"}"#);
            }
        };
        self.limiter.succeeded(&client_id);
        let (token, jti) = match self.config.mint(
            &client_id,
            &client.roles,
            self.lifetime,
            self.audience.as_deref(),
        ) {
            Ok(token) => token,
            Err(e) => {
                tracing::error!(target: "auth", event = "token_exchange_error", client_id = ?client_id, error = %e, "cannot mint a token");
                return respond(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    r#"{"error":"server_error"}"#,
                );
            }
        };
        tracing::info!(target: "auth", event = "token_issued", client_id = ?client_id, jti = ?jti, roles = ?client.roles, expires_in = self.lifetime.as_secs(), "role token issued by exchange");
        let body = serde_json::json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.lifetime.as_secs(),
        });
        respond(StatusCode::OK, body.to_string())
    }
}

/// The parsed body, or `None` for anything that makes the request malformed.
async fn read_request<B>(request: Request<B>) -> Option<ExchangeRequest>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let json = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
    let declared_len = request
        .headers()
        .get(CONTENT_LENGTH)
        .map(|v| v.to_str().ok().and_then(|v| v.parse::<u64>().ok()));
    if !json
        || matches!(declared_len, Some(None))
        || declared_len
            .flatten()
            .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return None;
    }
    let body = Limited::new(request.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .ok()?
        .to_bytes();
    serde_json::from_slice(&body).ok()
}

fn respond(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

impl<B> tower_service::Service<Request<B>> for TokenExchange
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle(request).await) })
    }
}

#[cfg(feature = "axum")]
mod axum_glue {
    use axum::Router;
    use axum::extract::{Request, State};
    use axum::response::{IntoResponse, Response};

    use super::{TOKEN_PATH, TokenExchange};

    impl TokenExchange {
        /// A router serving this endpoint at [`TOKEN_PATH`]; merge it into the app's
        /// router (`app.merge(exchange.router())`) and exempt the path from the auth layer.
        pub fn router<S>(self) -> Router<S>
        where
            S: Clone + Send + Sync + 'static,
        {
            Router::new().route_service(TOKEN_PATH, self)
        }
    }

    /// An axum handler for the endpoint, with the [`TokenExchange`] as state:
    /// `Router::new().route("/auth/token", post(token_handler)).with_state(exchange)`.
    pub async fn token_handler(
        State(exchange): State<TokenExchange>,
        request: Request,
    ) -> Response {
        exchange.handle(request).await.into_response()
    }
}

#[cfg(feature = "axum")]
pub use axum_glue::token_handler;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_from_vars() {
        let digest = "ab".repeat(32);
        let value = format!(r#"[{{"client_id":"a","secret_sha256":"{digest}"}}]"#);
        let get = |name: &str| (name == "P_AUTH_TOKEN_CLIENTS").then(|| value.clone());
        assert_eq!(
            TokenClients::from_vars("P_", &get).unwrap().unwrap().len(),
            1
        );
        assert!(TokenClients::from_vars("", &get).unwrap().is_none());

        let config = HmacConfig::new("0123456789abcdef0123456789abcdef-secret").unwrap();
        let with_ttl = |ttl: &'static str| {
            let value = value.clone();
            move |name: &str| match name {
                "AUTH_TOKEN_CLIENTS" => Some(value.clone()),
                "AUTH_TOKEN_TTL_SECS" => Some(ttl.to_owned()),
                _ => None,
            }
        };
        let exchange = TokenExchange::from_vars("", &with_ttl("3600"), config.clone())
            .unwrap()
            .unwrap();
        assert_eq!(exchange.token_lifetime(), Duration::from_secs(3600));
        for bad in ["0", "1h", "-5", "99999999999"] {
            let err = TokenExchange::from_vars("", &with_ttl(bad), config.clone()).unwrap_err();
            assert_eq!(err.variable(), "AUTH_TOKEN_TTL_SECS");
        }
        assert!(
            TokenExchange::from_vars("", &|_| None, config)
                .unwrap()
                .is_none()
        );
    }
}
