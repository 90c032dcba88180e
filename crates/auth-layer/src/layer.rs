//! `AuthLayer`, the configuration of authentication shared by every service it builds, and
//! `AuthLayerBuilder`, which validates that configuration once.

use std::sync::Arc;

use http::HeaderName;
use http::header::AUTHORIZATION;
use std::time::Duration;

use tower_auth_core::{
    Authenticator, Chain, Cidr, ClientCertHeader, Clock, ConfigError, CredentialExtractor,
    DEFAULT_REALM, ForwardedHeader,
};
use tower_layer::Layer;

use crate::answer::{Answers, AuthRejection};
use crate::identity_headers::StrippedHeaders;
use crate::limits::{LimitConfig, PeerAddress, SourceLimits};
use crate::resource::Resource;
use crate::response::check_realm;
use crate::rules::{RoleRequirement, Rules};
use crate::service::{Auth, Settings};
use crate::sources::CredentialSources;

/// A tower layer that authenticates every request.
///
/// It reads the credential (`Authorization: Bearer` or the API-key header), offers it to
/// each authenticator in order (with the built-in authenticators, a bearer JWT goes straight
/// to the one that validates its issuer; see [`Chain`](tower_auth_core::Chain)), puts the [`Identity`](crate::Identity) into the request extensions
/// and answers 401 / 400 / 403 / 503 (or the gRPC status) itself. The inner service is never
/// called for a rejected request and its error type is never changed.
///
/// Build one with [`AuthLayer::new`] (one authenticator, the defaults),
/// [`AuthLayer::builder`] (a chain, exemptions and role rules), or from the environment with
/// [`AuthLayer::from_env`] / [`AuthConfig`](crate::AuthConfig).
///
/// ```
/// use tower_auth_core::{Admins, ApiKeyAuthenticator, ApiKeySet};
/// use tower_auth::{AuthLayer, RequireRolesLayer};
/// use axum::{Router, routing::get};
/// use tower::ServiceExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let keys = ApiKeySet::parse("API_KEYS", r#"[{"name":"ci","key":"k7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA"}]"#, &Admins::default())?;
/// let app = Router::new()
///     .route("/admin", get(|| async { "admin" }).route_layer(RequireRolesLayer::any(["admin"])?))
///     .route("/whoami", get(|id: tower_auth_core::Identity| async move { id.subject().to_owned() }))
///     .layer(AuthLayer::new(ApiKeyAuthenticator::new(keys)));
///
/// let request = |path: &str, key: Option<&str>| {
///     let mut r = http::Request::builder().uri(path);
///     if let Some(key) = key {
///         r = r.header("x-api-key", key);
///     }
///     r.body(axum::body::Body::empty()).unwrap()
/// };
/// let key = Some("k7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA");
/// assert_eq!(app.clone().oneshot(request("/whoami", key)).await?.status(), 200);
/// assert_eq!(app.clone().oneshot(request("/whoami", None)).await?.status(), 401);
/// assert_eq!(app.clone().oneshot(request("/admin", key)).await?.status(), 403);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
#[must_use]
pub struct AuthLayer {
    pub(crate) settings: Arc<Settings>,
}

impl std::fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthLayer")
            .field("mode", &self.mode())
            .field("api_key_header", self.settings.extractor.api_key_header())
            .field("rules", &self.settings.rules)
            .field("realm", &self.settings.realm)
            .field("strip_headers", &self.settings.stripped.added())
            .finish_non_exhaustive()
    }
}

impl AuthLayer {
    /// A layer with one authenticator and the defaults: `/health` and
    /// `/grpc.health.v1.Health/Check` exempt, API keys in `X-API-Key`, realm `api`.
    pub fn new<A: Authenticator>(authenticator: A) -> Self {
        Self::from_settings(Self::builder(authenticator).settings)
    }

    /// A builder whose chain starts with `authenticator`.
    pub fn builder<A: Authenticator>(authenticator: A) -> AuthLayerBuilder {
        let mut settings = default_settings();
        settings.watch_readiness(&authenticator);
        settings.chain.push(Arc::new(authenticator));
        AuthLayerBuilder::from_settings(settings)
    }

    /// A layer that authenticates nothing and lets every request through without an
    /// identity (`AUTH_MODE=none`). `/health` reports `auth_mode: none`.
    pub fn disabled() -> Self {
        Self::from_settings(default_settings())
    }

    pub(crate) fn from_settings(mut settings: Settings) -> Self {
        crate::answer::settle(&mut settings);
        #[cfg(feature = "oidc")]
        if settings.dpop.is_some() {
            settings.extractor = std::mem::take(&mut settings.extractor).accept_dpop();
        }
        Self {
            settings: Arc::new(settings),
        }
    }

    /// A builder that starts from this layer's authenticators and rules, to add more (a layer
    /// from the environment plus rules in code). The authenticators, and the background work
    /// they need, are shared with this layer, not copied.
    pub fn into_builder(self) -> AuthLayerBuilder {
        let settings = Arc::try_unwrap(self.settings).unwrap_or_else(|shared| (*shared).clone());
        AuthLayerBuilder::from_settings(settings)
    }

    /// The methods in order (`api_key,oidc`), or `none` for a disabled layer.
    pub fn mode(&self) -> String {
        if self.settings.chain.is_empty() {
            "none".into()
        } else {
            self.settings.chain.methods()
        }
    }

    /// The token-exchange endpoint configured from `AUTH_TOKEN_CLIENTS`, to be served at
    /// [`tower_auth_hmac::TOKEN_PATH`]. `None` without it.
    ///
    /// Taking it is saying it is served: from this call on the layer exempts its path (its
    /// clients authenticate with their own credentials). A layer whose application never
    /// takes it keeps whatever is routed at that path protected.
    #[cfg(feature = "hmac")]
    pub fn exchange_endpoint(&self) -> Option<&tower_auth_hmac::ExchangeEndpoint> {
        let endpoint = self.settings.token_exchange.as_ref()?;
        self.settings
            .served
            .token
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Some(endpoint)
    }

    /// The revocation endpoint (RFC 7009) beside the [exchange](Self::exchange_endpoint),
    /// to be served at [`tower_auth_hmac::REVOKE_PATH`]; taking it makes the layer exempt
    /// that path from then on, so that clients authenticating with Basic or form credentials
    /// reach it (as for the exchange). It revokes into the
    /// list this layer's HMAC authenticator checks (kept in `AUTH_REVOCATION_FILE` when that
    /// is set), so a revoked token is refused from the next request on. Serve it inside this
    /// layer (`Router::new().merge(endpoint.router()).layer(auth)`): an identity with role
    /// `admin` that the layer authenticated may then revoke any role token. `None` without
    /// `AUTH_TOKEN_CLIENTS`.
    #[cfg(feature = "hmac")]
    pub fn revocation_endpoint(&self) -> Option<&tower_auth_hmac::RevocationEndpoint> {
        let endpoint = self.settings.token_revocation.as_ref()?;
        self.settings
            .served
            .revoke
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Some(endpoint)
    }

    /// The sharing of revocations through Redis (`AUTH_REDIS_URL`, feature `redis`): whether
    /// Redis answers, how stale the local copy is, how many revocations wait to be written.
    #[cfg(feature = "redis")]
    pub fn redis_sync(&self) -> Option<&tower_auth_hmac::RedisSync> {
        self.settings.redis.as_deref()
    }

    /// The list whose subject cut-offs this layer checks after authenticating a request
    /// (`AUTH_MODE` with `hmac`: the HMAC revocation list, kept in `AUTH_REVOCATION_FILE` and
    /// shared through `AUTH_REDIS_URL` when set), or the one given to
    /// [`AuthLayerBuilder::subject_cutoffs`]. An admin API:
    /// [`RevocationList::revoke_subject`](tower_auth_hmac::RevocationList::revoke_subject)
    /// cuts off every token of a subject issued up to now, for OIDC and HMAC alike.
    #[cfg(feature = "hmac")]
    pub fn revocations(&self) -> Option<&tower_auth_hmac::RevocationList> {
        self.settings.cutoffs.as_ref()
    }

    /// The exempt paths, in no particular order: the configured ones, and the exchange and
    /// revocation endpoints once taken to be served.
    pub fn exemptions(&self) -> Vec<String> {
        let exemptions = self.settings.rules.exemptions();
        #[cfg(feature = "hmac")]
        let exemptions = exemptions.chain(self.settings.served.paths().map(String::from));
        exemptions.collect()
    }

    /// The realm of this layer's challenges.
    pub(crate) fn realm(&self) -> &Arc<str> {
        &self.settings.realm
    }
}

pub(crate) fn default_settings() -> Settings {
    Settings {
        chain: Chain::default(),
        extractor: CredentialExtractor::default(),
        rules: Rules::default(),
        realm: DEFAULT_REALM.into(),
        stripped: StrippedHeaders::default(),
        tasks: Vec::new(),
        limits: Arc::new(SourceLimits::new(LimitConfig::default())),
        #[cfg(feature = "hmac")]
        token_exchange: None,
        #[cfg(feature = "hmac")]
        token_revocation: None,
        #[cfg(feature = "hmac")]
        served: Arc::default(),
        #[cfg(feature = "redis")]
        redis: None,
        sources: CredentialSources::default(),
        answers: Answers::default(),
        resource: None,
        #[cfg(feature = "oidc")]
        dpop: None,
        #[cfg(feature = "hmac")]
        cutoffs: None,
        #[cfg(feature = "oidc")]
        issuers: Vec::new(),
        recorders: Arc::default(),
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth::new(inner, Arc::clone(&self.settings))
    }
}

/// Builds an [`AuthLayer`]: setters take values and never fail; [`build`](Self::build)
/// checks them all and names the first setting that is wrong.
///
/// ```
/// use tower_auth_core::{Admins, ApiKeyAuthenticator, ApiKeySet};
/// use tower_auth::AuthLayer;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let keys = ApiKeySet::parse("API_KEYS", "k7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA", &Admins::default())?;
/// let auth = AuthLayer::builder(ApiKeyAuthenticator::new(keys))
///     .exempt("/version")
///     .require_any("/pkg.Admin/*", ["admin"])
///     .build()?;
/// assert_eq!(auth.mode(), "api_key");
///
/// let keys = ApiKeySet::parse("API_KEYS", "k7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA", &Admins::default())?;
/// let error = AuthLayer::builder(ApiKeyAuthenticator::new(keys)).exempt("version").build().unwrap_err();
/// assert_eq!(error.variable(), "AuthLayerBuilder::exempt");
/// # Ok(())
/// # }
/// ```
#[must_use]
pub struct AuthLayerBuilder {
    settings: Settings,
    /// The first setting that was wrong, reported by `build`.
    error: Option<ConfigError>,
}

impl std::fmt::Debug for AuthLayerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthLayerBuilder")
            .field("methods", &self.settings.chain.methods())
            .field("rules", &self.settings.rules)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl AuthLayerBuilder {
    fn from_settings(settings: Settings) -> Self {
        Self {
            settings,
            error: None,
        }
    }

    /// Remembers the first error for `build`.
    fn check(&mut self, result: Result<(), ConfigError>) {
        if let (Err(error), None) = (result, &self.error) {
            self.error = Some(error);
        }
    }

    /// Tries `authenticator` after the ones already configured. While every authenticator
    /// says which tokens it takes ([`Authenticator::routing`]; the built-in ones do), a
    /// bearer JWT goes to the one that validates its issuer, whatever the order; a custom
    /// authenticator that does not makes the chain ask in order. Two authenticators that
    /// validate the same issuer make [`build`](Self::build) fail.
    pub fn or<A: Authenticator>(mut self, authenticator: A) -> Self {
        self.settings.watch_readiness(&authenticator);
        self.settings.chain.push(Arc::new(authenticator));
        self
    }

    /// Exempts an exact path, a full gRPC method (`/pkg.Service/Method`), or every method of a
    /// gRPC service (`/grpc.reflection.v1.ServerReflection/*`, for gRPC requests only). An
    /// exempt request is never rejected, and still gets an identity when it carries a valid
    /// credential. A path that does not start with `/`, or has a `*` other than as
    /// `/package.Service/*`, makes [`build`](Self::build) fail.
    pub fn exempt(mut self, path: impl AsRef<str>) -> Self {
        let result = self.settings.rules.exempt(path.as_ref());
        self.check(result.map_err(|e| ConfigError::new("AuthLayerBuilder::exempt", e)));
        self
    }

    /// Removes every exemption, the defaults included.
    pub fn without_exemptions(mut self) -> Self {
        self.settings.rules.clear_exemptions();
        self
    }

    /// Requires at least one of `roles` on an exact path, or on every method of a gRPC service
    /// (`/pkg.Service/*`). An exemption wins over a role rule. A pattern that does not start
    /// with `/` or has a `*` other than as its last segment, no roles, or a role that could
    /// not be named in a challenge (empty, or with a space, quote, backslash or non-ASCII
    /// character) makes [`build`](Self::build) fail.
    pub fn require_any<I, R>(self, pattern: impl AsRef<str>, roles: I) -> Self
    where
        I: IntoIterator<Item = R>,
        R: Into<String>,
    {
        self.require(
            "AuthLayerBuilder::require_any",
            false,
            pattern.as_ref(),
            roles,
        )
    }

    /// Requires every one of `roles`; otherwise as [`require_any`](Self::require_any).
    pub fn require_all<I, R>(self, pattern: impl AsRef<str>, roles: I) -> Self
    where
        I: IntoIterator<Item = R>,
        R: Into<String>,
    {
        self.require(
            "AuthLayerBuilder::require_all",
            true,
            pattern.as_ref(),
            roles,
        )
    }

    fn require<I, R>(mut self, setting: &str, all: bool, pattern: &str, roles: I) -> Self
    where
        I: IntoIterator<Item = R>,
        R: Into<String>,
    {
        let roles = roles.into_iter().map(Into::into).collect();
        let result = RoleRequirement::new(all, roles)
            .and_then(|requirement| self.settings.rules.require(pattern, Arc::new(requirement)));
        self.check(result.map_err(|e| ConfigError::new(setting, e)));
        self
    }

    /// The header API keys are read from (default `X-API-Key`). `Authorization`, which always
    /// carries bearer tokens, makes [`build`](Self::build) fail.
    pub fn api_key_header(mut self, header: HeaderName) -> Self {
        if header == AUTHORIZATION {
            self.check(Err(ConfigError::new(
                "AuthLayerBuilder::api_key_header",
                "cannot be Authorization, which always carries bearer tokens",
            )));
        } else {
            self.settings.extractor = CredentialExtractor::new(header);
        }
        self
    }

    /// The realm in `WWW-Authenticate` challenges (default `api`). A quote, a backslash or a
    /// control character makes [`build`](Self::build) fail.
    pub fn realm(mut self, realm: &str) -> Self {
        let result = check_realm("AuthLayerBuilder::realm", realm);
        if result.is_ok() {
            self.settings.realm = realm.into();
        }
        self.check(result);
        self
    }

    /// Also removes `header` from every request before anything else sees it, as the
    /// identity headers in [`STRIPPED_IDENTITY_HEADERS`](crate::STRIPPED_IDENTITY_HEADERS)
    /// are: for the header a proxy of yours sets (the environment's `AUTH_STRIP_HEADERS`).
    /// `Authorization` or the API-key header, which carry credentials, make
    /// [`build`](Self::build) fail.
    pub fn strip_header(mut self, header: HeaderName) -> Self {
        self.settings.stripped.add(header);
        self
    }

    /// Refuses, with 429 and `Retry-After`, every request from a source that has failed
    /// `max_failures` times within `window`, until that window ends, before its credential is
    /// looked at (`AUTH_FAILURE_LIMIT=N/SECONDS`). A failure is a credential that is invalid,
    /// expired, unknown or malformed; a missing credential, a missing role or an unavailable
    /// issuer is not; one sent to an exempt path is. Exempt paths stay open to a blocked source,
    /// unauthenticated. The block is logged once per source and window. Blocks are decided on
    /// exact counts per source, so failures of other sources never block one that did not fail.
    ///
    /// A source is the connection's peer address (an IPv6 address as its /64), which the
    /// server must put in the request: axum's `into_make_service_with_connect_info`, tonic's
    /// server, or a `SocketAddr` extension; behind proxies, see
    /// [`trusted_proxies`](Self::trusted_proxies). Concurrent requests of one source may each
    /// pass the check before their failures are counted, so a source can exceed the limit by
    /// as many requests as it has in flight. No limit, zero failures, or a window under one
    /// second makes [`build`](Self::build) fail.
    pub fn failure_limit(self, max_failures: u32, window: Duration) -> Self {
        if !(1..=crate::env::MAX_FAILURE_LIMIT).contains(&max_failures)
            || !(1..=crate::env::MAX_FAILURE_WINDOW_SECS).contains(&window.as_secs())
        {
            let error = ConfigError::new(
                "AuthLayerBuilder::failure_limit",
                format!(
                    "must allow 1 to {} failures in a window of 1 to {} seconds",
                    crate::env::MAX_FAILURE_LIMIT,
                    crate::env::MAX_FAILURE_WINDOW_SECS
                ),
            );
            let mut builder = self;
            builder.check(Err(error));
            return builder;
        }
        self.with_limits(|c| c.failure_limit = Some((max_failures, window)))
    }

    /// Checks every authenticated identity against `list`'s subject cut-offs
    /// ([`RevocationList::revoke_subject`](tower_auth_hmac::RevocationList::revoke_subject)):
    /// a token of a cut-off subject issued up to the cut-off is refused with 401
    /// `invalid_token`, whatever method accepted it, cached or not. One atomic load per
    /// request while no subject is cut off. A layer from the environment with HMAC checks its
    /// revocation list already.
    #[cfg(feature = "hmac")]
    pub fn subject_cutoffs(mut self, list: tower_auth_hmac::RevocationList) -> Self {
        self.settings.cutoffs = Some(list);
        self
    }

    /// The proxies (addresses or CIDR blocks) whose forwarding header names a request's source
    /// (`AUTH_TRUSTED_PROXIES`); from any other peer the header is ignored. An entry that is not
    /// an address or block makes [`build`](Self::build) fail.
    pub fn trusted_proxies<I, S>(self, proxies: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        match Cidr::parse_all(proxies) {
            Ok(cidrs) => self.with_limits(|c| c.trusted_proxies = cidrs.into()),
            Err(i) => {
                let mut builder = self;
                builder.check(Err(ConfigError::new(
                    "AuthLayerBuilder::trusted_proxies",
                    format!("entry #{} is not an address or CIDR block", i + 1),
                )));
                builder
            }
        }
    }

    /// Reads the peer address from a request's extensions where the layer does not know the
    /// server's connection info: tonic's TLS server inserts
    /// `TlsConnectInfo<TcpConnectInfo>`, not the `TcpConnectInfo` the layer reads.
    /// Asked first; the built-in readers (axum's `ConnectInfo<SocketAddr>`, tonic's
    /// `TcpConnectInfo`, a `SocketAddr`) answer when it gives `None`.
    ///
    /// ```ignore
    /// use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    /// let layer = layer.into_builder().peer_address(|extensions| {
    ///     extensions
    ///         .get::<TlsConnectInfo<TcpConnectInfo>>()
    ///         .and_then(|info| info.get_ref().remote_addr())
    ///         .map(|addr| addr.ip())
    /// });
    /// ```
    pub fn peer_address(self, read: PeerAddress) -> Self {
        self.with_limits(|c| c.peer_address = Some(read))
    }

    /// The one header trusted proxies write the source into (`AUTH_TRUSTED_PROXY_HEADER`):
    /// `X-Forwarded-For` by default.
    pub fn forwarded_header(self, header: ForwardedHeader) -> Self {
        self.with_limits(|c| c.forwarded_header = header)
    }

    /// The header a TLS-terminating proxy forwards the client's certificate in
    /// (`AUTH_CLIENT_CERT_HEADER`), for certificate-bound tokens (RFC 8705):
    /// `x-forwarded-client-cert` as Envoy writes it, any other name a url-encoded PEM as
    /// nginx's `$ssl_client_escaped_cert`. Read only from peers in
    /// [`trusted_proxies`](Self::trusted_proxies); from any other peer it is ignored. A name
    /// that is not a header name makes [`build`](Self::build) fail.
    pub fn client_cert_header(self, name: &str) -> Self {
        match ClientCertHeader::parse(name) {
            Some(header) => self.with_limits(|c| c.client_cert_header = Some(header)),
            None => {
                let mut builder = self;
                builder.check(Err(ConfigError::new(
                    "AuthLayerBuilder::client_cert_header",
                    "is not a header name",
                )));
                builder
            }
        }
    }

    /// The clock of the failure and log windows (tests use [`Clock::manual`]).
    pub fn clock(self, clock: Clock) -> Self {
        self.with_limits(|c| c.clock = clock)
    }

    fn with_limits(mut self, change: impl FnOnce(&mut LimitConfig)) -> Self {
        let mut config = self.settings.limits.config().clone();
        change(&mut config);
        self.settings.limits = Arc::new(SourceLimits::new(config));
        self
    }

    /// Serves RFC 9728 protected resource metadata for `resource` (its identifier: an
    /// `https` URL, or `http` to a loopback host, without query or fragment), as
    /// `AUTH_RESOURCE` does: `GET /.well-known/oauth-protected-resource` (and the
    /// path-suffixed form of RFC 9728 section 3.1 when `resource` has a path) is answered by
    /// the layer, without a credential, and every challenge carries
    /// `resource_metadata="<its URL>"`. The document names `resource`, the
    /// [authorization servers](Self::authorization_server), the roles the rules name as
    /// `scopes_supported` (or [those given](Self::scopes_supported)), and
    /// `bearer_methods_supported: ["header"]`. Put the layer where it sees the whole path
    /// (not inside `Router::nest`). Another URL makes [`build`](Self::build) fail.
    pub fn resource(mut self, resource: &str) -> Self {
        match Resource::parse("AuthLayerBuilder::resource", resource) {
            Ok(parsed) => self.settings.resource = Some(parsed),
            Err(error) => self.check(Err(error)),
        }
        self
    }

    /// Names an authorization server (an OAuth / OIDC issuer identifier) in the
    /// [resource metadata](Self::resource). From the environment: every `OIDC_CONFIG` issuer.
    pub fn authorization_server(mut self, issuer: &str) -> Self {
        match &mut self.settings.resource {
            Some(resource) => resource.authorization_server(issuer),
            None => self.check(Err(ConfigError::new(
                "AuthLayerBuilder::authorization_server",
                "needs AuthLayerBuilder::resource first",
            ))),
        }
        self
    }

    /// The `scopes_supported` of the [resource metadata](Self::resource), instead of the
    /// roles the rules name.
    pub fn scopes_supported<I, R>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = R>,
        R: Into<String>,
    {
        match &mut self.settings.resource {
            Some(resource) => resource.scopes(scopes.into_iter().map(Into::into).collect()),
            None => self.check(Err(ConfigError::new(
                "AuthLayerBuilder::scopes_supported",
                "needs AuthLayerBuilder::resource first",
            ))),
        }
        self
    }

    /// Also reads an API key from the password of `Authorization: Basic` (the user name is
    /// ignored and never logged), as `API_KEY_BASIC=true` does, for clients that can only
    /// send Basic credentials (Arrow Flight SQL and JDBC drivers, Prometheus, Grafana). A
    /// 401 then offers `Basic realm=".."` beside the Bearer challenge. Off by default: a
    /// Basic credential is no credential of ours.
    pub fn api_key_basic(mut self, on: bool) -> Self {
        self.settings.sources.basic = on;
        self
    }

    /// Reads the bearer token from the cookie `name` when the request has no
    /// `Authorization` or API-key header, as `AUTH_COOKIE` does (browser applications). A
    /// request with the cookie and such a header, or with the cookie twice, is 400
    /// `invalid_request`. Cookies are sent by the browser on cross-site requests unless the
    /// cookie says otherwise: set it `SameSite=Strict` (or `Lax`), `HttpOnly` and `Secure`,
    /// and protect state-changing requests against CSRF. A name that is not a cookie name
    /// makes [`build`](Self::build) fail.
    pub fn token_cookie(mut self, name: &str) -> Self {
        if crate::sources::is_cookie_name(name) {
            self.settings.sources.cookie = Some(name.into());
        } else {
            self.check(Err(ConfigError::new(
                "AuthLayerBuilder::token_cookie",
                "is not a cookie name (an RFC 9110 token)",
            )));
        }
        self
    }

    /// Answers refused HTTP requests with `answer` instead of the fixed JSON: it sees the
    /// refusal's kind, status, gRPC code and challenges ([`AuthRejection`]), never the
    /// credential. The layer keeps `Cache-Control: no-store` on the answer, and adds the
    /// challenges and `Retry-After` unless `answer` set them. gRPC requests are always
    /// answered in gRPC's form. [`problem_json`](Self::problem_json) is a ready one.
    pub fn answer_with<F>(mut self, answer: F) -> Self
    where
        F: Fn(&AuthRejection<'_>) -> http::Response<bytes::Bytes> + Send + Sync + 'static,
    {
        self.settings.answers.hook = Some(Arc::new(answer));
        self
    }

    /// Answers refused HTTP requests with RFC 9457 `application/problem+json`
    /// ([`problem_details`](crate::problem_details)).
    pub fn problem_json(self) -> Self {
        self.answer_with(crate::answer::problem_details)
    }

    /// Accepts DPoP-bound tokens (`Authorization: DPoP`, RFC 9449) with proofs checked by
    /// `verifier`, and offers the scheme in 401 challenges. Without a verifier, a token bound
    /// by `cnf.jkt` is refused whichever scheme it comes with.
    #[cfg(feature = "oidc")]
    pub fn dpop(mut self, verifier: tower_auth_oidc::DpopVerifier) -> Self {
        self.settings.dpop = Some(Arc::new(verifier));
        self
    }

    /// The layer, or the first setting that was wrong.
    pub fn build(self) -> Result<AuthLayer, ConfigError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        if let Some(header) = self
            .settings
            .stripped
            .added()
            .iter()
            .find(|h| **h == AUTHORIZATION || *h == self.settings.extractor.api_key_header())
        {
            return Err(ConfigError::new(
                "AuthLayerBuilder::strip_header",
                format!("{header} carries credentials and cannot be stripped"),
            ));
        }
        if let Some(issuer) = self.settings.chain.shared_issuer() {
            return Err(ConfigError::new(
                "AuthLayerBuilder::or",
                format!("two authenticators both validate tokens of issuer {issuer:?}"),
            ));
        }
        Ok(AuthLayer::from_settings(self.settings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_auth_core::{Check, Credential, Outcome};

    /// Claims nothing: these tests are about configuration.
    struct Never;

    impl Authenticator for Never {
        fn method(&self) -> &'static str {
            "never"
        }

        fn authenticate(&self, _: Credential<'_>) -> Check {
            Outcome::NotMine.into()
        }
    }

    /// Claims nothing either, but says it validates the tokens of one issuer.
    struct OwnsIssuer(&'static str);

    impl Authenticator for OwnsIssuer {
        fn method(&self) -> &'static str {
            "owns"
        }

        fn authenticate(&self, _: Credential<'_>) -> Check {
            Outcome::NotMine.into()
        }

        fn routing(&self) -> tower_auth_core::Routing {
            tower_auth_core::Routing::Issuers(vec![self.0.into()])
        }
    }

    /// SECURITY.md K4.
    #[test]
    fn two_owners_of_one_issuer_fail_the_build() {
        let two = AuthLayer::builder(OwnsIssuer("https://a.example"))
            .or(Never)
            .or(OwnsIssuer("https://a.example"));
        let error = two.build().unwrap_err();
        assert_eq!(error.variable(), "AuthLayerBuilder::or");
        assert!(error.to_string().contains("https://a.example"), "{error}");
        assert!(
            AuthLayer::builder(OwnsIssuer("https://a.example"))
                .or(OwnsIssuer("https://b.example"))
                .build()
                .is_ok()
        );
    }

    fn setting_at_fault(builder: AuthLayerBuilder) -> String {
        builder.build().unwrap_err().variable().to_owned()
    }

    #[test]
    fn every_bad_setting_is_a_config_error_naming_the_setter() {
        let b = || AuthLayer::builder(Never);
        for path in ["health", "/static/*", "/a b", "*"] {
            assert_eq!(
                setting_at_fault(b().exempt(path)),
                "AuthLayerBuilder::exempt",
                "{path}"
            );
        }
        assert_eq!(
            setting_at_fault(b().require_any("admin", ["admin"])),
            "AuthLayerBuilder::require_any"
        );
        assert_eq!(
            setting_at_fault(b().require_any("/x*", ["admin"])),
            "AuthLayerBuilder::require_any"
        );
        assert_eq!(
            setting_at_fault(b().require_all("/admin", Vec::<String>::new())),
            "AuthLayerBuilder::require_all"
        );
        assert_eq!(
            setting_at_fault(b().require_all("/admin", ["a b"])),
            "AuthLayerBuilder::require_all"
        );
        assert_eq!(
            setting_at_fault(b().realm("a\"b")),
            "AuthLayerBuilder::realm"
        );
        assert_eq!(
            setting_at_fault(b().realm("line\nbreak")),
            "AuthLayerBuilder::realm"
        );
        assert_eq!(
            setting_at_fault(b().api_key_header(AUTHORIZATION)),
            "AuthLayerBuilder::api_key_header"
        );
        assert_eq!(
            setting_at_fault(b().strip_header(AUTHORIZATION)),
            "AuthLayerBuilder::strip_header"
        );
        // SECURITY.md G10.
        for (max, secs) in [(0, 60), (5, 0)] {
            assert_eq!(
                setting_at_fault(b().failure_limit(max, Duration::from_secs(secs))),
                "AuthLayerBuilder::failure_limit"
            );
        }
        assert_eq!(
            setting_at_fault(b().trusted_proxies(["10.0.0.0/8", "proxy.internal"])),
            "AuthLayerBuilder::trusted_proxies"
        );
        // The API-key header is checked at build, whichever setter came first.
        let key = HeaderName::from_static("x-key");
        assert_eq!(
            setting_at_fault(b().strip_header(key.clone()).api_key_header(key.clone())),
            "AuthLayerBuilder::strip_header"
        );
        assert_eq!(
            setting_at_fault(b().strip_header(HeaderName::from_static("x-api-key"))),
            "AuthLayerBuilder::strip_header"
        );
        assert!(b().strip_header(key).build().is_ok());
    }

    #[test]
    fn the_first_bad_setting_is_reported_and_later_good_ones_do_not_hide_it() {
        let error = AuthLayer::builder(Never)
            .realm("bad\"")
            .exempt("nope")
            .exempt("/fine")
            .build()
            .unwrap_err();
        assert_eq!(error.variable(), "AuthLayerBuilder::realm");
    }

    #[test]
    fn good_settings_build_the_layer_they_describe() {
        let layer = AuthLayer::builder(Never)
            .or(Never)
            .without_exemptions()
            .exempt("/version")
            .require_all("/pkg.Admin/*", ["admin"])
            .realm("orders")
            .api_key_header(HeaderName::from_static("x-key"))
            .build()
            .unwrap();
        assert_eq!(layer.mode(), "never,never");
        assert_eq!(layer.exemptions(), ["/version"]);
        assert_eq!(&**layer.realm(), "orders");
        assert_eq!(layer.settings.extractor.api_key_header(), "x-key");
    }

    #[test]
    fn into_builder_adds_to_a_layer_and_leaves_the_original_alone() {
        let original = AuthLayer::new(Never);
        let extended = original
            .clone()
            .into_builder()
            .exempt("/grpc.reflection.v1.ServerReflection/*")
            .build()
            .unwrap();
        assert_eq!(extended.mode(), "never");
        let mut exempt = extended.exemptions();
        exempt.sort();
        assert_eq!(
            exempt,
            [
                "/grpc.health.v1.Health/Check",
                "/grpc.reflection.v1.ServerReflection/*",
                "/health"
            ]
        );
        assert_eq!(original.exemptions().len(), 2);
        assert_eq!(
            AuthLayer::disabled().into_builder().build().unwrap().mode(),
            "none"
        );
    }
}
