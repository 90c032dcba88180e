//! The token-exchange endpoint: `POST /auth/token` turns a registered client's secret into a
//! short-lived role token.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use tower_auth_core::sha256_digest;
//! use tower_auth_hmac::{ExchangeEndpoint, HmacConfig, TokenClients};
//! use http_body_util::{BodyExt, Full};
//! use tower::ServiceExt;
//!
//! let digest = hex::encode(sha256_digest(b"registration-secret-of-the-metrics-agent"));
//! let clients = TokenClients::parse(
//!     "AUTH_TOKEN_CLIENTS",
//!     &format!(r#"[{{"client_id":"agent","secret_sha256":"sha256:{digest}","roles":["runtime.metrics:read"]}}]"#),
//! ).unwrap();
//! let config = HmacConfig::builder("9c4e1a7f3b8d2e6a0c5f9b3d7e1a4c8f-role-tokens").build().unwrap();
//! let exchange = ExchangeEndpoint::builder(config.clone(), clients).build().unwrap();
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
//! let claims = config.decode(body["access_token"].as_str().unwrap()).unwrap();
//! assert_eq!(claims.roles, ["runtime.metrics:read"]);
//!
//! let response = exchange.oneshot(request("a wrong secret")).await.unwrap();
//! assert_eq!(response.status(), 401);
//! # }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::Full;
use serde::Deserialize;
use tower_auth_core::{Cidr, ConfigError, Secret};

use crate::{HmacConfig, RevocationList};

/// Makes `$endpoint`, whose `async fn handle(&self, Request<B>) -> Response<Full<Bytes>>`
/// answers every request, a tower `Service`, and with `axum` gives it a `router` serving it
/// at `$path` for every method (documented by `$router_doc`).
macro_rules! endpoint_service {
    ($endpoint:ident, $path:ident, $router_doc:literal) => {
        impl<B> tower_service::Service<http::Request<B>> for $endpoint
        where
            B: http_body::Body + Send + 'static,
            B::Data: Send,
            B::Error: Into<$crate::exchange::BoxError>,
        {
            type Response = http::Response<http_body_util::Full<bytes::Bytes>>;
            type Error = std::convert::Infallible;
            type Future = std::pin::Pin<
                Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
            >;

            fn poll_ready(
                &mut self,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), Self::Error>> {
                std::task::Poll::Ready(Ok(()))
            }

            fn call(&mut self, request: http::Request<B>) -> Self::Future {
                let this = self.clone();
                Box::pin(async move { Ok(this.handle(request).await) })
            }
        }

        #[cfg(feature = "axum")]
        impl $endpoint {
            #[doc = $router_doc]
            pub fn router<S>(self) -> axum::Router<S>
            where
                S: Clone + Send + Sync + 'static,
            {
                axum::Router::new().route_service($path, self)
            }
        }
    };
}

mod audit;
mod clients;
mod introspect;
mod limiter;
mod peer;
mod request;
mod revoke;

pub use clients::TokenClients;
pub use introspect::{IntrospectFuture, Introspector};
use limiter::FailureLimiter;
use request::{ClientAuth, Endpoint, Refusal, invalid_request, read_body, respond};
pub use revoke::{REVOKE_PATH, RevocationEndpoint};
pub use tower_auth_core::ForwardedHeader;

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

/// How long a client may take to send the request body before it gets 408.
pub const BODY_DEADLINE: Duration = Duration::from_secs(10);

/// The token-exchange endpoint as a tower service over `http::Request<B>`.
///
/// `POST` a JSON body `{"client_id": "...", "credential": "..."}` with content type
/// `application/json`:
///
/// | case | answer |
/// |---|---|
/// | known client, credential's SHA-256 equals its `secret_sha256` | 200 `{"access_token","token_type":"Bearer","expires_in"}`, the client's roles, subject = `client_id` |
/// | client registered with `introspect`: credential an access token its issuer says is active, whose `sub` or `client_id` is the `client_id` | the same 200 |
/// | such a client's issuer unreachable | 503 `{"error":"temporarily_unavailable"}` + `Retry-After` (not counted as a failure) |
/// | unknown client or wrong credential (one answer, near-same timing) | 401 `{"error":"invalid_client"}` |
/// | malformed JSON, missing fields, wrong content type, body over 4 KiB | 400 `{"error":"invalid_request"}` |
/// | 5 failures for one `client_id` from one source address within a minute, or 20 from one source with ids nobody registered (configurable) | 429 `{"error":"too_many_requests"}` + `Retry-After`, even with the right credential |
/// | a body not complete within [`BODY_DEADLINE`] | 408 `{"error":"invalid_request"}` |
/// | any method but `POST` | 405 + `Allow: POST` |
///
/// Every answer carries `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749
/// section 5.1). It runs on a Tokio runtime with its timer enabled (as `#[tokio::main]` and
/// every Tokio server set-up have it), for the body deadline.
///
/// The source address is the connection's peer, which the server must put in the request's
/// extensions: serve with axum's `into_make_service_with_connect_info::<SocketAddr>()`, or
/// insert the peer's `SocketAddr` yourself. Behind proxies, list them in
/// [`trusted_proxies`](ExchangeEndpointBuilder::trusted_proxies) (`AUTH_TRUSTED_PROXIES`):
/// only from those peers is the forwarding header believed, and only the one they write
/// ([`forwarded_header`](ExchangeEndpointBuilder::forwarded_header), `X-Forwarded-For` by
/// default). Without a peer address, failures count per client id alone, and the endpoint
/// warns once. Mount it at [`TOKEN_PATH`] and exempt that path from the auth layer.
/// Time (token timestamps and the failure windows) comes from the [`HmacConfig`]'s clock.
///
/// Built with [`ExchangeEndpoint::builder`] or read from the environment with
/// [`ExchangeEndpoint::from_env`]. Served as this tower `Service`, or with the `axum`
/// feature as a `Router` from `ExchangeEndpoint::router`.
#[derive(Clone)]
pub struct ExchangeEndpoint {
    /// The clients, their authentication and its limiter, shared with the
    /// [`RevocationEndpoint`]s made from this endpoint.
    auth: Arc<ClientAuth>,
    lifetime: Duration,
    audience: Option<Arc<str>>,
    /// Judges the tokens of clients registered with `introspect`.
    introspector: Option<Arc<dyn Introspector>>,
}

impl fmt::Debug for ExchangeEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExchangeEndpoint")
            .field("config", &self.auth.config)
            .field("clients", &self.auth.clients)
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

/// Builds an [`ExchangeEndpoint`]; see [`ExchangeEndpoint::builder`]. Setters only record
/// values; [`build`](Self::build) checks them all.
#[derive(Clone, Debug)]
#[must_use]
pub struct ExchangeEndpointBuilder {
    config: HmacConfig,
    clients: TokenClients,
    lifetime: Duration,
    audience: Option<Arc<str>>,
    max_failures: u32,
    failure_window: Duration,
    trusted_proxies: Vec<String>,
    forwarded_header: ForwardedHeader,
    introspector: Option<IntrospectorSlot>,
}

/// An introspector held by a builder, which is `Debug`.
#[derive(Clone)]
struct IntrospectorSlot(Arc<dyn Introspector>);

impl fmt::Debug for IntrospectorSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Introspector")
    }
}

/// What [`ConfigError`]s about settings made in code name, as `OidcConfig`'s builder does.
const BUILDER: &str = "ExchangeEndpoint";

impl ExchangeEndpointBuilder {
    /// Sets the lifetime of issued tokens (whole seconds, from 1 s to
    /// [`MAX_TOKEN_LIFETIME`](crate::MAX_TOKEN_LIFETIME); default
    /// [`DEFAULT_TOKEN_LIFETIME`]).
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Sets the audience issued tokens carry (by default the configuration's audience).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into().into());
        self
    }

    /// Allows `max_failures` failed attempts per client id and source address within
    /// `window` (at least 1 and 1 s), and four times as many from one source address over
    /// all client ids; past either, that pair or source gets 429 until the window ends.
    pub fn rate_limit(mut self, max_failures: u32, window: Duration) -> Self {
        self.max_failures = max_failures;
        self.failure_window = window;
        self
    }

    /// The proxies (addresses or CIDR blocks: `10.0.0.0/8`, `::1`) whose `X-Forwarded-For`
    /// or `Forwarded` header names the source address; from any other peer, the peer is the
    /// source. Replaces what was set before.
    pub fn trusted_proxies<I, S>(mut self, proxies: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.trusted_proxies = proxies.into_iter().map(Into::into).collect();
        self
    }

    /// The one header the trusted proxies write the client's address into (default
    /// `X-Forwarded-For`); the other is never read.
    pub fn forwarded_header(mut self, header: ForwardedHeader) -> Self {
        self.forwarded_header = header;
        self
    }

    /// Judges the credentials of clients registered with `"introspect": "<issuer>"`: an
    /// upstream access token, accepted when `introspector` says it is active and its subject
    /// or `client_id` is the registration's `client_id`. The `tower-auth` facade gives the
    /// OIDC authenticator's introspection; without one, such clients get 503.
    pub fn introspector(mut self, introspector: impl Introspector) -> Self {
        self.introspector = Some(IntrospectorSlot(Arc::new(introspector)));
        self
    }

    /// Checks everything and returns the endpoint.
    ///
    /// # Errors
    /// A [`ConfigError`] naming `ExchangeEndpoint`: a lifetime under one second or over
    /// [`MAX_TOKEN_LIFETIME`](crate::MAX_TOKEN_LIFETIME), no failures allowed, or a failure
    /// window under one second, or an audience that is empty or holds a control character
    /// (as [`HmacConfigBuilder::build`](crate::HmacConfigBuilder::build) refuses for its own).
    pub fn build(self) -> Result<ExchangeEndpoint, ConfigError> {
        if let Some(audience) = &self.audience {
            crate::config::non_empty(BUILDER, audience.to_string())?;
        }
        if self.lifetime < Duration::from_secs(1) || self.lifetime > crate::MAX_TOKEN_LIFETIME {
            return Err(ConfigError::new(
                BUILDER,
                "the token lifetime must be from one second to 366 days",
            ));
        }
        if self.max_failures == 0 || self.failure_window < Duration::from_secs(1) {
            return Err(ConfigError::new(
                BUILDER,
                "the rate limit must allow at least one failure in a window of at least one second",
            ));
        }
        let trusted_proxies: Arc<[Cidr]> = Cidr::parse_all(&self.trusted_proxies)
            .map_err(|i| {
                ConfigError::new(
                    BUILDER,
                    format!("trusted proxy #{} is not an address or CIDR block", i + 1),
                )
            })?
            .into();
        Ok(ExchangeEndpoint {
            auth: Arc::new(ClientAuth::new(
                self.config,
                self.clients,
                FailureLimiter::new(self.max_failures, self.failure_window),
                trusted_proxies,
                self.forwarded_header,
            )),
            lifetime: Duration::from_secs(self.lifetime.as_secs()),
            audience: self.audience,
            introspector: self.introspector.map(|slot| slot.0),
        })
    }
}

impl ExchangeEndpoint {
    /// Shares the failure counts of this endpoint (and of the revocation endpoints made from
    /// it) with every replica using the same Redis and `namespace`, so that the lock-out
    /// holds for the sum of their failures (see [`SharedCounts`](crate::SharedCounts)).
    /// Never waits for Redis; while it is unreachable, failures count locally.
    ///
    /// # Errors
    /// [`ShareError`](crate::ShareError): shared already, or no Tokio runtime.
    #[cfg(feature = "redis")]
    pub fn share_limits(
        &self,
        settings: &crate::RedisSettings,
        namespace: &str,
    ) -> Result<crate::SharedCounts, crate::ShareError> {
        let limiter = &self.auth.limiter;
        if limiter.shared.get().is_some() {
            return Err(crate::ShareError::AlreadyShared);
        }
        let counts = crate::SharedCounts::start(
            settings,
            namespace,
            "exchange",
            limiter.window(),
            self.auth.config.clock.clone(),
        )?;
        limiter
            .shared
            .set(counts.clone())
            .map_err(|_| crate::ShareError::AlreadyShared)?;
        Ok(counts)
    }

    /// Starts an endpoint minting with `config` for `clients`: by default tokens live
    /// [`DEFAULT_TOKEN_LIFETIME`] and carry `config`'s audience, if any; 5 failures per
    /// client id per minute lock it out for the rest of that minute.
    pub fn builder(config: HmacConfig, clients: TokenClients) -> ExchangeEndpointBuilder {
        ExchangeEndpointBuilder {
            audience: config.audience.clone(),
            config,
            clients,
            lifetime: DEFAULT_TOKEN_LIFETIME,
            max_failures: DEFAULT_MAX_FAILURES,
            failure_window: DEFAULT_FAILURE_WINDOW,
            trusted_proxies: Vec::new(),
            forwarded_header: ForwardedHeader::default(),
            introspector: None,
        }
    }

    /// This endpoint with `introspector` for the clients registered with `introspect` (as
    /// [`ExchangeEndpointBuilder::introspector`], for an endpoint read from the environment).
    #[must_use]
    pub fn with_introspector(mut self, introspector: impl Introspector) -> Self {
        self.introspector = Some(Arc::new(introspector));
        self
    }

    /// The registered clients.
    pub fn clients(&self) -> &TokenClients {
        &self.auth.clients
    }

    /// Reads the process environment: the [`HmacConfig::from_env`] variables that sign the
    /// tokens, `AUTH_TOKEN_CLIENTS` (see [`TokenClients::parse`]) and the optional
    /// `AUTH_TOKEN_TTL_SECS` (token lifetime in seconds, 60 to 31 622 400; default 86 400),
    /// `AUTH_TRUSTED_PROXIES` (comma-separated addresses or CIDR blocks of the proxies
    /// whose forwarding header names the source address; see
    /// [`trusted_proxies`](ExchangeEndpointBuilder::trusted_proxies)) and
    /// `AUTH_TRUSTED_PROXY_HEADER` (`x-forwarded-for`, the default, or `forwarded`).
    /// `Ok(None)` when `AUTH_TOKEN_CLIENTS` is unset.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the variable: any of [`HmacConfig::from_env`]'s, bad
    /// clients, a lifetime out of range, or `AUTH_TOKEN_CLIENTS` without `HMAC_SECRET`.
    pub fn from_env() -> Result<Option<Self>, ConfigError> {
        Self::from_env_prefixed("")
    }

    /// As [`ExchangeEndpoint::from_env`], every name prefixed with `prefix`.
    ///
    /// # Errors
    /// As [`ExchangeEndpoint::from_env`], naming the prefixed variable.
    pub fn from_env_prefixed(prefix: &str) -> Result<Option<Self>, ConfigError> {
        Self::from_lookup(prefix, |name| std::env::var(name).ok())
    }

    /// As [`ExchangeEndpoint::from_env_prefixed`], reading variables through `get`, which
    /// is called with full (prefixed) names.
    ///
    /// # Errors
    /// As [`ExchangeEndpoint::from_env`], naming the prefixed variable.
    pub fn from_lookup(
        prefix: &str,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, ConfigError> {
        let config = HmacConfig::from_lookup(prefix, &get)?;
        let Some(clients) = TokenClients::from_lookup(prefix, &get)? else {
            return Ok(None);
        };
        let Some(config) = config else {
            return Err(ConfigError::new(
                format!("{prefix}AUTH_TOKEN_CLIENTS"),
                format!("needs {prefix}HMAC_SECRET to sign the tokens it issues"),
            ));
        };
        let mut builder = Self::builder(config, clients);
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
            builder = builder.lifetime(Duration::from_secs(secs));
        }
        let variable = format!("{prefix}AUTH_TRUSTED_PROXIES");
        if let Some(proxies) = get(&variable) {
            let proxies: Vec<&str> = proxies
                .split(',')
                .filter(|p| !p.trim().is_empty())
                .collect();
            if let Err(i) = Cidr::parse_all(&proxies) {
                return Err(ConfigError::new(
                    &variable,
                    format!("entry #{} is not an address or CIDR block", i + 1),
                ));
            }
            builder = builder.trusted_proxies(proxies);
        }
        let variable = format!("{prefix}AUTH_TRUSTED_PROXY_HEADER");
        if let Some(name) = get(&variable) {
            let header = ForwardedHeader::parse(&name).ok_or_else(|| {
                ConfigError::new(&variable, "must be `x-forwarded-for` or `forwarded`")
            })?;
            builder = builder.forwarded_header(header);
        }
        builder.build().map(Some)
    }

    /// The lifetime of issued tokens.
    pub fn token_lifetime(&self) -> Duration {
        self.lifetime
    }

    /// The revocation endpoint (`POST /auth/revoke`) for the tokens this endpoint issues:
    /// the same clients authenticate there, and their failures count in this endpoint's
    /// limiter; what they revoke goes into `revocations`, which should be the list the
    /// [`HmacAuthenticator`](crate::HmacAuthenticator) checks
    /// ([`revocation_list`](crate::HmacAuthenticator::revocation_list)).
    pub fn revocation_endpoint(&self, revocations: RevocationList) -> RevocationEndpoint {
        RevocationEndpoint::new(Arc::clone(&self.auth), revocations)
    }

    /// Answers one request and counts the answer; the service's `call` is this.
    async fn handle<B>(&self, request: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let response = self.exchange(request).await;
        crate::metrics::exchange(response.status());
        response
    }

    /// Answers one request.
    async fn exchange<B>(&self, request: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let source = self.auth.source(&request);
        let body = match read_body(request, "application/json").await {
            Ok((_, body)) => body,
            Err(answer) => return answer,
        };
        let Ok(ExchangeRequest {
            client_id,
            credential,
        }) = serde_json::from_slice(&body)
        else {
            return invalid_request();
        };
        let credential = Secret::from(credential);
        let introspected = self
            .auth
            .clients
            .clients
            .get(&client_id)
            .is_some_and(|c| c.introspect.is_some());
        let authenticated = if introspected {
            self.auth
                .authenticate_introspected(
                    &client_id,
                    credential,
                    source,
                    self.introspector.as_deref(),
                )
                .await
        } else {
            self.auth
                .authenticate(Endpoint::Token, &client_id, credential, source)
                .map(|client| (client, None))
        };
        let (client, upstream_end) = match authenticated {
            Ok(authenticated) => authenticated,
            Err(refusal) => return refusal.answer(),
        };
        // A role token for an upstream token lives no longer than it: revoking or letting
        // the upstream token expire must not leave a longer-lived bearer token behind.
        // SECURITY.md N16.
        let lifetime = match upstream_end {
            None => self.lifetime,
            Some(end) => {
                let left = end
                    .duration_since(self.auth.config.clock.now())
                    .unwrap_or_default();
                if left < Duration::from_secs(1) {
                    return Refusal::InvalidClient.answer();
                }
                self.lifetime.min(Duration::from_secs(left.as_secs()))
            }
        };
        let (token, jti) = match self.auth.config.mint_with_jti(
            &client_id,
            &client.roles,
            lifetime,
            self.audience.as_deref(),
            Some(&client_id),
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
        tracing::info!(target: "auth::audit", event = "token_issued", client_id = ?client_id, jti = ?jti, roles = ?client.roles, expires_in = lifetime.as_secs(), "role token issued by exchange");
        let body = serde_json::json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": lifetime.as_secs(),
        });
        respond(StatusCode::OK, body.to_string())
    }
}

// One axum entry point, a `Router` rather than a handler: the router mounts the endpoint
// at `TOKEN_PATH`, the path the facade exempts, and hands every method to the service, so
// a GET is answered by the endpoint's own 405 with `Allow: POST` and `Cache-Control:
// no-store`, where a `post(handler)` route would answer it with axum's.
endpoint_service!(
    ExchangeEndpoint,
    TOKEN_PATH,
    "A router serving this endpoint at [`TOKEN_PATH`]; merge it into the app's router \
     (`app.merge(exchange.router())`) and exempt the path from the auth layer."
);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "9c4e1a7f3b8d2e6a0c5f9b3d7e1a4c8f-role-tokens";

    fn clients() -> TokenClients {
        let digest = "ab".repeat(32);
        TokenClients::parse(
            "AUTH_TOKEN_CLIENTS",
            &format!(r#"[{{"client_id":"a","secret_sha256":"{digest}"}}]"#),
        )
        .unwrap()
    }

    #[test]
    fn endpoint_from_lookup() {
        let digest = "ab".repeat(32);
        let value = format!(r#"[{{"client_id":"a","secret_sha256":"{digest}"}}]"#);
        let with_ttl = |prefix: &'static str, ttl: Option<&'static str>| {
            let value = value.clone();
            move |name: &str| match name.strip_prefix(prefix)? {
                "HMAC_SECRET" => Some(SECRET.to_owned()),
                "AUTH_TOKEN_CLIENTS" => Some(value.clone()),
                "AUTH_TOKEN_TTL_SECS" => ttl.map(str::to_owned),
                _ => None,
            }
        };
        let exchange = ExchangeEndpoint::from_lookup("", with_ttl("", Some("3600")))
            .unwrap()
            .unwrap();
        assert_eq!(exchange.token_lifetime(), Duration::from_secs(3600));
        let exchange = ExchangeEndpoint::from_lookup("P_", with_ttl("P_", None))
            .unwrap()
            .unwrap();
        assert_eq!(exchange.token_lifetime(), DEFAULT_TOKEN_LIFETIME);
        assert_eq!(exchange.auth.clients.len(), 1);
        assert!(
            ExchangeEndpoint::from_lookup("", with_ttl("P_", None))
                .unwrap()
                .is_none(),
            "the prefix applies to every name"
        );
        for bad in ["0", "59", "1h", "-5", "99999999999"] {
            let err = ExchangeEndpoint::from_lookup("", with_ttl("", Some(bad))).unwrap_err();
            assert_eq!(err.variable(), "AUTH_TOKEN_TTL_SECS");
        }
        assert!(
            ExchangeEndpoint::from_lookup("", |_| None)
                .unwrap()
                .is_none()
        );
        let no_secret = ExchangeEndpoint::from_lookup("P_", |name| {
            (name == "P_AUTH_TOKEN_CLIENTS").then(|| value.clone())
        })
        .unwrap_err();
        assert_eq!(no_secret.variable(), "P_AUTH_TOKEN_CLIENTS");
        assert!(
            no_secret.to_string().contains("P_HMAC_SECRET"),
            "{no_secret}"
        );
    }

    #[test]
    fn builder_refuses_out_of_range_settings_never_clamps() {
        let config = HmacConfig::builder(SECRET).build().unwrap();
        let builder = ExchangeEndpoint::builder(config, clients());
        for lifetime in [
            Duration::ZERO,
            Duration::from_millis(999),
            crate::MAX_TOKEN_LIFETIME + Duration::from_secs(1),
        ] {
            let err = builder.clone().lifetime(lifetime).build().unwrap_err();
            assert_eq!(err.variable(), "ExchangeEndpoint", "{lifetime:?}");
        }
        for (max, window) in [
            (0, Duration::from_secs(60)),
            (5, Duration::from_millis(500)),
        ] {
            let err = builder.clone().rate_limit(max, window).build().unwrap_err();
            assert_eq!(err.variable(), "ExchangeEndpoint", "{max} {window:?}");
        }
        for audience in ["", "metrics\nagent"] {
            let err = builder.clone().audience(audience).build().unwrap_err();
            assert_eq!(err.variable(), "ExchangeEndpoint", "{audience:?}");
        }
        let endpoint = builder
            .lifetime(crate::MAX_TOKEN_LIFETIME)
            .rate_limit(1, Duration::from_secs(1))
            .build()
            .unwrap();
        assert_eq!(endpoint.token_lifetime(), crate::MAX_TOKEN_LIFETIME);
    }

    #[test]
    fn debug_of_the_endpoint_and_its_builder_shows_no_secret() {
        let config = HmacConfig::builder(SECRET).build().unwrap();
        let builder = ExchangeEndpoint::builder(config, clients());
        let shown = format!("{builder:?}");
        assert!(
            !shown.contains(SECRET) && shown.contains("[redacted]"),
            "{shown}"
        );
        let shown = format!("{:?}", builder.build().unwrap());
        assert!(
            !shown.contains(SECRET) && shown.contains("[redacted]"),
            "{shown}"
        );
    }
}
