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

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
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

struct Client {
    digest: [u8; 32],
    roles: Vec<String>,
}

/// The registered clients (`AUTH_TOKEN_CLIENTS`): id, SHA-256 digest of the secret, roles.
///
/// Only digests are held, and `Debug` shows the number of clients, nothing more.
#[derive(Clone)]
pub struct TokenClients {
    clients: Arc<HashMap<String, Client>>,
}

impl fmt::Debug for TokenClients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenClients")
            .field("clients", &self.clients.len())
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientEntry {
    client_id: String,
    secret_sha256: String,
    #[serde(default)]
    roles: Vec<String>,
}

impl TokenClients {
    /// Parses `value`, a JSON array `[{"client_id": "...", "secret_sha256": "...", "roles": [...]}]`.
    /// `secret_sha256` is 64 hex characters, with or without a `sha256:` prefix (print one
    /// with `auth-token digest`); `roles` may be omitted.
    ///
    /// # Errors
    /// A [`ConfigError`] naming `variable` and the entry's position (never a digest): not
    /// such an array, no clients, an empty, over-long or repeated `client_id`, or a bad digest.
    pub fn parse(variable: &str, value: &str) -> Result<Self, ConfigError> {
        let entries: Vec<ClientEntry> = serde_json::from_str(value).map_err(|e| {
            ConfigError::new(
                variable,
                format!(
                    "not a JSON array of {{\"client_id\",\"secret_sha256\",\"roles\"}} objects (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        if entries.is_empty() {
            return Err(ConfigError::new(variable, "no clients given"));
        }
        let mut clients = HashMap::with_capacity(entries.len());
        for (i, entry) in entries.into_iter().enumerate() {
            let position = i + 1;
            if entry.client_id.is_empty()
                || entry.client_id.len() > MAX_CLIENT_ID_LEN
                || clients.contains_key(&entry.client_id)
            {
                return Err(ConfigError::new(
                    variable,
                    format!("client #{position} has an empty, over-long or repeated client_id"),
                ));
            }
            let hex_digest = entry
                .secret_sha256
                .strip_prefix("sha256:")
                .unwrap_or(&entry.secret_sha256);
            let mut digest = [0u8; 32];
            hex::decode_to_slice(hex_digest, &mut digest).map_err(|_| {
                ConfigError::new(
                    variable,
                    format!(
                        "client #{position}: secret_sha256 is not 64 hex characters (optionally after `sha256:`)"
                    ),
                )
            })?;
            let roles = crate::token::normalize_roles(entry.roles);
            clients.insert(entry.client_id, Client { digest, roles });
        }
        Ok(Self {
            clients: Arc::new(clients),
        })
    }

    /// Reads `{prefix}AUTH_TOKEN_CLIENTS` through `get`; `Ok(None)` when it is unset.
    ///
    /// # Errors
    /// As [`TokenClients::parse`], naming the full variable.
    pub fn from_vars(
        prefix: &str,
        get: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, ConfigError> {
        let variable = format!("{prefix}AUTH_TOKEN_CLIENTS");
        get(&variable)
            .map(|value| Self::parse(&variable, &value))
            .transpose()
    }

    /// The number of clients.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Whether there are no clients.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Whether `client_id` is registered.
    pub fn contains(&self, client_id: &str) -> bool {
        self.clients.contains_key(client_id)
    }
}

/// Failed attempts per client id in fixed windows, over a bounded table.
struct FailureLimiter {
    max_failures: u32,
    window_secs: u64,
    capacity: usize,
    windows: Mutex<HashMap<String, Window>>,
}

struct Window {
    start: u64,
    failures: u32,
}

impl FailureLimiter {
    fn new(max_failures: u32, window: Duration, capacity: usize) -> Self {
        Self {
            max_failures: max_failures.max(1),
            window_secs: window.as_secs().max(1),
            capacity: capacity.max(1),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an attempt by `client_id` as a failure until [`succeeded`](Self::succeeded)
    /// says otherwise, or refuses it with the seconds to wait when the id has used up its
    /// failures in the current window. Counting before the check, under one lock, keeps
    /// concurrent guesses from slipping past the limit together.
    fn attempt(&self, client_id: &str, now: u64) -> Result<(), u64> {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(window) = windows.get_mut(client_id) {
            let end = window.start.saturating_add(self.window_secs);
            if now >= end {
                *window = Window {
                    start: now,
                    failures: 1,
                };
            } else if window.failures >= self.max_failures {
                return Err((end - now).max(1));
            } else {
                window.failures += 1;
            }
            return Ok(());
        }
        if windows.len() >= self.capacity {
            let window_secs = self.window_secs;
            windows.retain(|_, w| now < w.start.saturating_add(window_secs));
        }
        if windows.len() >= self.capacity {
            // Still full of live windows: make room by forgetting the oldest, which at
            // worst gives one client id a fresh window; the table never grows.
            if let Some(oldest) = windows
                .iter()
                .min_by_key(|(_, w)| w.start)
                .map(|(id, _)| id.clone())
            {
                windows.remove(&oldest);
            }
        }
        windows.insert(
            client_id.to_owned(),
            Window {
                start: now,
                failures: 1,
            },
        );
        Ok(())
    }

    /// The attempt succeeded: the id starts afresh.
    fn succeeded(&self, client_id: &str) {
        self.windows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(client_id);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.windows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

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
    fn limiter_counts_per_id_in_fixed_windows() {
        let limiter = FailureLimiter::new(2, Duration::from_secs(60), 100);
        assert_eq!(limiter.attempt("a", 1_000), Ok(()));
        assert_eq!(limiter.attempt("a", 1_010), Ok(()));
        assert_eq!(limiter.attempt("a", 1_010), Err(50));
        assert_eq!(limiter.attempt("b", 1_010), Ok(()), "per client id");
        assert_eq!(limiter.attempt("a", 1_059), Err(1));
        assert_eq!(limiter.attempt("a", 1_060), Ok(()), "a new window starts");
        assert_eq!(limiter.attempt("a", 1_061), Ok(()));
        assert_eq!(limiter.attempt("a", 1_062), Err(58));
        limiter.succeeded("a");
        assert_eq!(limiter.attempt("a", 1_062), Ok(()));
        limiter.succeeded("a");
        limiter.succeeded("b");
        assert_eq!(limiter.len(), 0);
    }

    #[test]
    fn concurrent_guesses_do_not_slip_past_the_limit() {
        let limiter = FailureLimiter::new(5, Duration::from_secs(60), 100);
        let allowed: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        (0..10)
                            .filter(|_| limiter.attempt("a", 1_000).is_ok())
                            .count()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(allowed, 5);
    }

    #[test]
    fn limiter_stays_bounded() {
        let limiter = FailureLimiter::new(1, Duration::from_secs(60), 3);
        for (i, id) in ["a", "b", "c", "d", "e"].into_iter().enumerate() {
            assert_eq!(limiter.attempt(id, 1_000 + i as u64), Ok(()));
        }
        assert_eq!(limiter.len(), 3);
        assert!(limiter.attempt("e", 1_005).is_err());
        assert_eq!(
            limiter.attempt("a", 1_005),
            Ok(()),
            "the oldest was forgotten"
        );
        // Expired windows are dropped before anything live.
        assert_eq!(limiter.attempt("f", 1_070), Ok(()));
        assert_eq!(limiter.len(), 1);
    }

    #[test]
    fn clients_parse_and_errors_hide_digests() {
        let digest = "ab".repeat(32);
        let clients = TokenClients::parse(
            "AUTH_TOKEN_CLIENTS",
            &format!(
                r#"[{{"client_id":"a","secret_sha256":"{digest}","roles":["x","","x","y"]}},
                    {{"client_id":"b","secret_sha256":"sha256:{digest}"}}]"#
            ),
        )
        .unwrap();
        assert_eq!(clients.len(), 2);
        assert!(clients.contains("a") && clients.contains("b") && !clients.contains("c"));
        assert_eq!(clients.clients["a"].roles, ["x", "y"]);
        assert_eq!(format!("{clients:?}"), "TokenClients { clients: 2 }");

        let bad_digest = "cd".repeat(31);
        for bad in [
            "".to_owned(),
            "[]".to_owned(),
            "{}".to_owned(),
            format!(r#"[{{"client_id":"a","secret_sha256":"{bad_digest}"}}]"#),
            format!(r#"[{{"client_id":"a","secret_sha256":"md5:{digest}"}}]"#),
            format!(r#"[{{"client_id":"","secret_sha256":"{digest}"}}]"#),
            format!(
                r#"[{{"client_id":"a","secret_sha256":"{digest}"}},{{"client_id":"a","secret_sha256":"{digest}"}}]"#
            ),
            format!(r#"[{{"client_id":"a","secret_sha256":"{digest}","extra":1}}]"#),
            format!(r#"[{{"client_id":"a","secret_sha256":"{digest}","roles":"x"}}]"#),
        ] {
            let err = TokenClients::parse("APP_AUTH_TOKEN_CLIENTS", &bad).unwrap_err();
            assert_eq!(err.variable(), "APP_AUTH_TOKEN_CLIENTS");
            assert!(!err.to_string().contains(&digest[..20]), "{err}");
            assert!(!err.to_string().contains(&bad_digest[..20]), "{err}");
        }
    }

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
