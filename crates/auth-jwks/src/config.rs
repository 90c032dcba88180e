//! Configuration: the issuers we trust and the cache and fetch settings (`OIDC_CONFIG`).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::Uri;
use jsonwebtoken::{Algorithm, AlgorithmFamily};
use serde::Deserialize;
use tower_auth_core::{Clock, ConfigError, Secret};
use tower_auth_http::{CaBundle, Proxies, require_tls_off_loopback};

/// The variable named in errors when the configuration was built in code.
const BUILDER: &str = "OidcConfig";

/// Algorithms allowed when an issuer names none.
pub(crate) const DEFAULT_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// A CA bundle as configured, read and checked when the configuration is built.
#[derive(Clone)]
pub(crate) enum CaSource {
    File(PathBuf),
    Pem(Arc<[u8]>),
}

impl fmt::Debug for CaSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Pem(pem) => write!(f, "Pem({} bytes)", pem.len()),
        }
    }
}

impl CaSource {
    /// The bundle, or why not, after `field` (`ca_file "/etc/idp-ca.pem": holds no PEM
    /// certificate`); never what the file holds.
    fn load(&self, field: &str) -> Result<CaBundle, String> {
        match self {
            Self::File(path) => CaBundle::read(path)
                .map_err(|e| format!("{field}{}{:?}: {e}", sep(field), path.display())),
            Self::Pem(pem) => {
                CaBundle::from_pem(pem).map_err(|e| format!("{field}{}{e}", sep(field)))
            }
        }
    }
}

fn sep(field: &str) -> &'static str {
    if field.is_empty() { "" } else { " " }
}

/// One trusted issuer, as configured; checked when [`OidcConfigBuilder::build`] runs.
///
/// ```
/// use tower_auth_oidc::IssuerConfig;
///
/// let issuer = IssuerConfig::new("https://login.example.com", "api://orders")
///     .audience("api://orders-v2")
///     .roles_claim("realm_access.roles")
///     .algorithms(["RS256", "ES256"])
///     .required_typ("at+jwt")
///     .ca_file("/etc/ssl/private-idp-ca.pem");
/// assert_eq!(issuer.issuer(), "https://login.example.com");
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct IssuerConfig {
    issuer: String,
    audiences: Vec<String>,
    jwks_uri: Option<String>,
    roles_claim: Option<String>,
    roles_prefix: Option<String>,
    algorithms: Option<Vec<String>>,
    required_typ: Option<String>,
    ca: Option<CaSource>,
    dpop: crate::dpop::DpopPolicy,
    dpop_nonce: bool,
    introspection: Option<IntrospectionConfig>,
}

/// RFC 7662 introspection of an issuer's opaque access tokens, as configured: the client we
/// authenticate as (`client_secret_basic`), and the endpoint when discovery should not be asked.
#[derive(Clone, Debug)]
#[must_use]
pub struct IntrospectionConfig {
    endpoint: Option<String>,
    client_id: String,
    secret: SecretSource,
}

#[derive(Clone, Debug)]
enum SecretSource {
    Value(Secret),
    File(PathBuf),
}

impl IntrospectionConfig {
    /// Introspects as `client_id` with `client_secret`, at the issuer's discovered
    /// `introspection_endpoint`.
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> Self {
        Self {
            endpoint: None,
            client_id: client_id.into(),
            secret: SecretSource::Value(client_secret.into()),
        }
    }

    /// As [`new`](Self::new), the secret read from a file (its trailing line break ignored)
    /// when the configuration is built.
    pub fn secret_file(client_id: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self {
            endpoint: None,
            client_id: client_id.into(),
            secret: SecretSource::File(path.into()),
        }
    }

    /// Asks this endpoint instead of the discovered one. It must be `https`, or plain `http`
    /// to a loopback host.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }
}

/// Checked introspection settings of an issuer.
#[derive(Debug)]
pub(crate) struct Introspection {
    /// `None`: discovered at the first introspection.
    pub(crate) endpoint: Option<Uri>,
    pub(crate) client_id: String,
    pub(crate) secret: Secret,
    /// The file `secret` was read from, if it was (`client_secret_file`). Read only by the
    /// writer of `config_text.rs`, compiled for tests and the `fuzzing` feature.
    #[cfg_attr(not(any(test, feature = "fuzzing")), allow(dead_code))]
    pub(crate) secret_file: Option<PathBuf>,
}

impl IssuerConfig {
    /// An issuer whose tokens must carry `audience` in `aud`.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audiences: vec![audience.into()],
            jwks_uri: None,
            roles_claim: None,
            roles_prefix: None,
            algorithms: None,
            required_typ: None,
            ca: None,
            dpop: crate::dpop::DpopPolicy::Allowed,
            dpop_nonce: false,
            introspection: None,
        }
    }

    /// Whether this issuer's tokens may be bearer tokens (`Allowed`, the default: a token
    /// bound to a key by `cnf.jkt` still needs a DPoP proof) or must all be DPoP-bound
    /// (`Required`): see [`DpopVerifier`](crate::DpopVerifier).
    pub fn dpop(mut self, policy: crate::dpop::DpopPolicy) -> Self {
        self.dpop = policy;
        self
    }

    /// Whether this issuer's DPoP proofs must carry a nonce this server issued (RFC 9449
    /// section 9; `"dpop_nonce": true`): a proof without a current one is answered with
    /// `use_dpop_nonce` and a fresh `DPoP-Nonce`.
    pub fn dpop_nonce(mut self, required: bool) -> Self {
        self.dpop_nonce = required;
        self
    }

    /// Validates this issuer's opaque (non-JWT) access tokens by RFC 7662 introspection.
    /// At most one issuer may: an opaque token does not say whose it is.
    pub fn introspection(mut self, introspection: IntrospectionConfig) -> Self {
        self.introspection = Some(introspection);
        self
    }

    /// Accepts another audience as well.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Fetches keys from `uri` instead of discovering the JWKS URI. It must be `https`, or
    /// plain `http` to a loopback host; the issuer identifier itself may then be any URL.
    pub fn jwks_uri(mut self, uri: impl Into<String>) -> Self {
        self.jwks_uri = Some(uri.into());
        self
    }

    /// Reads roles from this claim: a dotted path such as `groups` or `realm_access.roles`
    /// (default `roles`). A string value is one role, except for `scope`, which is split on spaces.
    pub fn roles_claim(mut self, path: impl Into<String>) -> Self {
        self.roles_claim = Some(path.into());
        self
    }

    /// Puts `prefix` before every role read from this issuer's tokens (`partner:` turns
    /// `orders:write` into `partner:orders:write`), so that they cannot satisfy rules written
    /// for another issuer's roles. Must not be empty.
    pub fn roles_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.roles_prefix = Some(prefix.into());
        self
    }

    /// Replaces the algorithm allow-list (default RS256-512, PS256-512, ES256, ES384, EdDSA).
    pub fn algorithms<I, S>(mut self, algorithms: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.algorithms = Some(algorithms.into_iter().map(Into::into).collect());
        self
    }

    /// Requires the header `typ` to be this media type (`at+jwt` for RFC 9068 access tokens).
    pub fn required_typ(mut self, typ: impl Into<String>) -> Self {
        self.required_typ = Some(typ.into());
        self
    }

    /// Trusts the certificate authorities of this PEM file (one or more certificates) for this
    /// issuer's discovery and key fetches, besides the platform's and the public roots (and
    /// any [`OidcConfigBuilder::ca_file`]). Read when the configuration is built: an
    /// unreadable file, or one without a well-formed certificate, refuses it.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca = Some(CaSource::File(path.into()));
        self
    }

    /// [`ca_file`](Self::ca_file) with the PEM text itself.
    pub fn ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca = Some(CaSource::Pem(pem.into().into()));
        self
    }

    /// The issuer URL as configured.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
}

/// A checked issuer.
#[derive(Debug)]
pub(crate) struct Issuer {
    pub(crate) issuer: Arc<str>,
    pub(crate) audiences: Vec<String>,
    pub(crate) jwks_uri: Option<Uri>,
    pub(crate) discovery_uri: Uri,
    pub(crate) roles_claim: String,
    /// Put before every role read from a token; empty for none.
    pub(crate) roles_prefix: String,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) required_typ: Option<String>,
    /// This issuer's own CA bundle (`ca_file`), trusted besides the configuration-wide one.
    pub(crate) ca: Option<CaBundle>,
    /// Where `ca` was read from, to write the configuration back (`config_text.rs`, compiled
    /// for tests and the `fuzzing` feature).
    #[cfg_attr(not(any(test, feature = "fuzzing")), allow(dead_code))]
    pub(crate) ca_source: Option<CaSource>,
    pub(crate) dpop: crate::dpop::DpopPolicy,
    pub(crate) dpop_nonce: bool,
    pub(crate) introspection: Option<Introspection>,
}

/// How to reach, cache and judge the configured issuers.
///
/// Parse `OIDC_CONFIG` with [`OidcConfig::from_json`], or build one in code with
/// [`OidcConfig::builder`].
///
/// ```
/// use tower_auth_oidc::OidcConfig;
///
/// let config = OidcConfig::from_json("OIDC_CONFIG", r#"{
///     "issuers": [{"issuer": "https://login.example.com", "audience": ["api", "api-v2"],
///                  "roles_claim": "scope", "algorithms": ["RS256"]}],
///     "jwks_refresh_interval_secs": 3600, "token_cache_size": 1000,
///     "token_cache_ttl_secs": 300, "leeway_secs": 60
/// }"#).unwrap();
/// assert_eq!(config.issuers().collect::<Vec<_>>(), ["https://login.example.com"]);
///
/// let refused = OidcConfig::from_json("OIDC_CONFIG", r#"{"issuers": [{"issuer": "https://a.example",
///     "audience": "api", "algorithms": ["HS256"]}]}"#).unwrap_err();
/// assert_eq!(refused.variable(), "OIDC_CONFIG");
/// ```
#[derive(Clone, Debug)]
pub struct OidcConfig {
    pub(crate) variable: Arc<str>,
    pub(crate) issuers: Vec<Arc<Issuer>>,
    pub(crate) refresh_interval: Duration,
    pub(crate) token_cache_size: u64,
    pub(crate) token_cache_ttl: Duration,
    pub(crate) leeway_secs: u64,
    pub(crate) connect_timeout: Duration,
    pub(crate) read_timeout: Duration,
    pub(crate) startup_timeout: Duration,
    pub(crate) unknown_kid_cooldown: Duration,
    pub(crate) clock: Clock,
    /// Trusted for every issuer (`OIDC_CA_FILE`).
    pub(crate) ca: Option<CaBundle>,
    pub(crate) proxies: Proxies,
}

impl OidcConfig {
    /// Starts a configuration in code; errors from [`OidcConfigBuilder::build`] name `OidcConfig`.
    pub fn builder() -> OidcConfigBuilder {
        OidcConfigBuilder {
            variable: BUILDER.into(),
            issuers: Vec::new(),
            refresh_interval: Duration::from_secs(3600),
            token_cache_size: 1000,
            token_cache_ttl: Duration::from_secs(300),
            leeway: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(5),
            startup_timeout: Duration::from_secs(5),
            unknown_kid_cooldown: Duration::from_secs(30),
            clock: Clock::system(),
            ca: None,
            ca_variable: None,
            proxies: Proxies::from_env(),
        }
    }

    /// Reads `{prefix}OIDC_CONFIG` (JSON, as [`from_json`](Self::from_json)) and
    /// `{prefix}OIDC_CA_FILE` (a PEM bundle of CAs trusted for every issuer, besides the
    /// platform's and the public roots) through `get`; `None` when `OIDC_CONFIG` is not set.
    ///
    /// ```
    /// use tower_auth_oidc::OidcConfig;
    ///
    /// let refused = OidcConfig::from_lookup("", |name| match name {
    ///     "OIDC_CONFIG" => Some(r#"{"issuers":[{"issuer":"https://a.example","audience":"api"}]}"#.into()),
    ///     "OIDC_CA_FILE" => Some("/nonexistent/ca.pem".into()),
    ///     _ => None,
    /// }).unwrap_err();
    /// assert_eq!(refused.variable(), "OIDC_CA_FILE");
    /// assert!(refused.message().contains("/nonexistent/ca.pem"));
    /// ```
    ///
    /// Proxies come from `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` (or their
    /// lower-case forms), read through `get` without the prefix.
    ///
    /// # Errors
    /// As [`from_json`](Self::from_json), naming `OIDC_CONFIG`; a CA file that cannot be read
    /// or holds no well-formed certificate, or `OIDC_CA_FILE` without `OIDC_CONFIG`, naming
    /// `OIDC_CA_FILE`.
    pub fn from_lookup(
        prefix: &str,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, ConfigError> {
        let name = |suffix: &str| format!("{prefix}{suffix}");
        let ca_file = get(&name("OIDC_CA_FILE"));
        let Some(json) = get(&name("OIDC_CONFIG")) else {
            return match ca_file {
                Some(_) => Err(ConfigError::new(
                    name("OIDC_CA_FILE"),
                    format!("is set but {} is not", name("OIDC_CONFIG")),
                )),
                None => Ok(None),
            };
        };
        let mut builder = Self::builder_from_json(&name("OIDC_CONFIG"), &json)?;
        if let Some(path) = ca_file {
            let path = path.trim();
            if path.is_empty() {
                return Err(ConfigError::new(name("OIDC_CA_FILE"), "is empty"));
            }
            builder = builder.ca_file(path);
            builder.ca_variable = Some(name("OIDC_CA_FILE").into());
        }
        builder = builder.proxies(Proxies::from_lookup(&get));
        builder.build().map(Some)
    }

    /// Parses the `OIDC_CONFIG` JSON; errors name `variable`.
    ///
    /// Unknown fields are refused (a misspelt `audiance` must not silently disable a check),
    /// as are HS* algorithms, which an OpenID provider's public keys can never verify.
    pub fn from_json(variable: &str, json: &str) -> Result<Self, ConfigError> {
        Self::builder_from_json(variable, json)?.build()
    }

    fn builder_from_json(variable: &str, json: &str) -> Result<OidcConfigBuilder, ConfigError> {
        let raw: RawConfig = serde_json::from_str(json).map_err(|e| {
            ConfigError::new(
                variable,
                format!("is not valid OIDC configuration JSON: {e}"),
            )
        })?;
        let mut builder = Self::builder();
        builder.variable = variable.into();
        for (i, raw_issuer) in raw.issuers.into_iter().enumerate() {
            let (first, rest) = match raw_issuer.audience {
                OneOrMany::One(a) => (a, Vec::new()),
                OneOrMany::Many(mut list) => {
                    if list.is_empty() {
                        (String::new(), list)
                    } else {
                        let first = list.remove(0);
                        (first, list)
                    }
                }
            };
            let mut issuer = IssuerConfig::new(raw_issuer.issuer, first);
            issuer.audiences.extend(rest);
            issuer.jwks_uri = raw_issuer.jwks_uri;
            issuer.roles_claim = raw_issuer.roles_claim;
            issuer.roles_prefix = raw_issuer.roles_prefix;
            issuer.algorithms = raw_issuer.algorithms;
            issuer.required_typ = raw_issuer.required_typ;
            issuer.ca = raw_issuer.ca_file.map(|path| CaSource::File(path.into()));
            issuer.dpop = raw_issuer.dpop.unwrap_or_default();
            issuer.dpop_nonce = raw_issuer.dpop_nonce.unwrap_or_default();
            issuer.introspection = raw_issuer
                .introspection
                .map(RawIntrospection::into_config)
                .transpose()
                .map_err(|m| ConfigError::new(variable, format!("issuers[{i}]: {m}")))?;
            builder = builder.issuer(issuer);
        }
        if let Some(secs) = raw.jwks_refresh_interval_secs {
            builder = builder.jwks_refresh_interval(Duration::from_secs(secs));
        }
        if let Some(size) = raw.token_cache_size {
            builder = builder.token_cache_size(size);
        }
        if let Some(secs) = raw.token_cache_ttl_secs {
            builder = builder.token_cache_ttl(Duration::from_secs(secs));
        }
        if let Some(secs) = raw.leeway_secs {
            builder = builder.leeway(Duration::from_secs(secs));
        }
        Ok(builder)
    }

    /// The configured issuer URLs, exactly as written (to keep other token kinds from claiming them).
    pub fn issuers(&self) -> impl Iterator<Item = &str> + '_ {
        self.issuers.iter().map(|i| &*i.issuer)
    }

    /// The issuer whose opaque tokens are introspected (RFC 7662), if one is: every bearer
    /// value that is not a JWT and that no earlier method in the chain owns is sent to it.
    pub fn introspecting_issuer(&self) -> Option<&str> {
        self.issuers
            .iter()
            .find(|i| i.introspection.is_some())
            .map(|i| &*i.issuer)
    }

    /// The clock leeway for `exp`, `nbf` and `iat`.
    pub fn leeway(&self) -> Duration {
        Duration::from_secs(self.leeway_secs)
    }

    /// How often keys are refreshed; they are kept on failure for ten times this long.
    pub fn jwks_refresh_interval(&self) -> Duration {
        self.refresh_interval
    }

    /// How long keys may go without a successful refresh before the issuer fails closed.
    pub fn max_stale(&self) -> Duration {
        self.refresh_interval.saturating_mul(10)
    }

    /// The clock `exp`, `nbf` and `iat` are checked against.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// This configuration with `clock` (a [`Clock::manual`] in tests), for one read by
    /// [`from_json`](Self::from_json); in code, [`OidcConfigBuilder::clock`].
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }
}

/// Builds an [`OidcConfig`] in code; see [`OidcConfig::builder`].
#[derive(Clone, Debug)]
#[must_use]
pub struct OidcConfigBuilder {
    variable: Arc<str>,
    issuers: Vec<IssuerConfig>,
    refresh_interval: Duration,
    token_cache_size: u64,
    token_cache_ttl: Duration,
    leeway: Duration,
    connect_timeout: Duration,
    read_timeout: Duration,
    startup_timeout: Duration,
    unknown_kid_cooldown: Duration,
    clock: Clock,
    ca: Option<CaSource>,
    /// The variable a CA error names (`OIDC_CA_FILE`) when not the configuration's own.
    ca_variable: Option<Arc<str>>,
    proxies: Proxies,
}

impl OidcConfigBuilder {
    /// Trusts another issuer.
    pub fn issuer(mut self, issuer: IssuerConfig) -> Self {
        self.issuers.push(issuer);
        self
    }

    /// Key refresh interval (default 1 hour; at least 1 second).
    pub fn jwks_refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    /// Validated tokens kept (default 1000; 0 turns the cache off).
    pub fn token_cache_size(mut self, size: u64) -> Self {
        self.token_cache_size = size;
        self
    }

    /// How long a validated token is kept at most (default 5 minutes; 0 turns the cache off).
    pub fn token_cache_ttl(mut self, ttl: Duration) -> Self {
        self.token_cache_ttl = ttl;
        self
    }

    /// Clock leeway for `exp`, `nbf` and `iat` (default 60 s, at most 10 minutes).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// TCP connect timeout for discovery and JWKS fetches (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Timeout for a whole discovery or JWKS response, headers and body (default 5 s).
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// How long start-up waits for the first key load of all issuers together (default 5 s).
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// The least time between two fetches that an unknown `kid` may cause (default 30 s).
    /// A `kid` a fetch did not bring is refused without asking for this long, then forgotten.
    pub fn unknown_kid_cooldown(mut self, cooldown: Duration) -> Self {
        self.unknown_kid_cooldown = cooldown;
        self
    }

    /// The clock `exp`, `nbf` and `iat` are checked against (default the system clock; a
    /// [`Clock::manual`] in tests).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Trusts the certificate authorities of this PEM file (one or more certificates) for every
    /// issuer's discovery and key fetches, besides the platform's and the public roots (what
    /// `OIDC_CA_FILE` sets). Read by [`build`](Self::build): an unreadable file, or one
    /// without a well-formed certificate, refuses the configuration.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca = Some(CaSource::File(path.into()));
        self.ca_variable = None;
        self
    }

    /// [`ca_file`](Self::ca_file) with the PEM text itself.
    pub fn ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca = Some(CaSource::Pem(pem.into().into()));
        self.ca_variable = None;
        self
    }

    /// The proxies every connection to the issuers goes through (default: the process
    /// environment's `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY`, [`Proxies::from_env`]);
    /// [`Proxies::none`] for none. Loopback hosts are always reached directly.
    pub fn proxies(mut self, proxies: Proxies) -> Self {
        self.proxies = proxies;
        self
    }

    /// Checks everything and returns the configuration.
    ///
    /// Every URL the issuers are reached at must be `https`, or plain `http` to a loopback
    /// host: a `jwks_uri`, and the discovery document (the issuer's
    /// `/.well-known/openid-configuration`) when no `jwks_uri` is given. The issuer
    /// identifier itself may be any URL.
    pub fn build(self) -> Result<OidcConfig, ConfigError> {
        let variable = self.variable.clone();
        let err = |message: String| ConfigError::new(&*variable, message);
        if self.issuers.is_empty() {
            return Err(err("names no issuers".into()));
        }
        if self.refresh_interval < Duration::from_secs(1) {
            return Err(err("jwks_refresh_interval_secs must be at least 1".into()));
        }
        if self.leeway > Duration::from_secs(600) {
            return Err(err("leeway_secs must be at most 600".into()));
        }
        for (name, timeout) in [
            ("connect timeout", self.connect_timeout),
            ("read timeout", self.read_timeout),
            ("startup timeout", self.startup_timeout),
        ] {
            if timeout.is_zero() {
                return Err(err(format!("the {name} must not be zero")));
            }
        }
        let ca = match (&self.ca, &self.ca_variable) {
            (None, _) => None,
            (Some(source), Some(name)) => {
                Some(source.load("").map_err(|m| ConfigError::new(&**name, m))?)
            }
            (Some(source), None) => Some(source.load("ca_file").map_err(err)?),
        };
        let mut issuers: Vec<Arc<Issuer>> = Vec::with_capacity(self.issuers.len());
        for (i, raw) in self.issuers.into_iter().enumerate() {
            let checked = check_issuer(raw).map_err(|m| err(format!("issuers[{i}]: {m}")))?;
            if issuers.iter().any(|other| other.issuer == checked.issuer) {
                return Err(err(format!("issuers[{i}]: issuer is listed twice")));
            }
            // An opaque token names no issuer: asking each in turn would hand one issuer's
            // tokens to another. SECURITY.md N3.
            if checked.introspection.is_some() && issuers.iter().any(|o| o.introspection.is_some())
            {
                return Err(err(format!(
                    "issuers[{i}]: introspection is enabled for another issuer already; \
                     at most one issuer may introspect opaque tokens"
                )));
            }
            issuers.push(Arc::new(checked));
        }
        Ok(OidcConfig {
            variable,
            issuers,
            refresh_interval: self.refresh_interval,
            token_cache_size: self.token_cache_size,
            token_cache_ttl: self.token_cache_ttl,
            leeway_secs: self.leeway.as_secs(),
            connect_timeout: self.connect_timeout,
            read_timeout: self.read_timeout,
            startup_timeout: self.startup_timeout,
            unknown_kid_cooldown: self.unknown_kid_cooldown,
            clock: self.clock,
            ca,
            proxies: self.proxies,
        })
    }
}

fn check_issuer(raw: IssuerConfig) -> Result<Issuer, String> {
    let issuer_uri = http_uri(&raw.issuer).map_err(|m| format!("issuer {m}"))?;
    if issuer_uri.query().is_some() || raw.issuer.contains('#') {
        // OpenID Connect Discovery 1.0 section 2: the issuer has no query or fragment.
        return Err("issuer must not have a query or fragment".into());
    }
    if raw.audiences.iter().any(String::is_empty) || raw.audiences.is_empty() {
        return Err("audience must be a non-empty string or a non-empty array of them".into());
    }
    let jwks_uri = raw
        .jwks_uri
        .as_deref()
        .map(|u| idp_url(u).map_err(|m| format!("jwks_uri {m}")))
        .transpose()?;
    // OpenID Connect Discovery 1.0 section 4: the path is appended to the issuer without its trailing slash.
    let discovery = format!(
        "{}/.well-known/openid-configuration",
        raw.issuer.trim_end_matches('/')
    );
    let discovery_uri = http_uri(&discovery).map_err(|m| format!("issuer {m}"))?;
    // The issuer is only an identifier, but without a jwks_uri it also says where the
    // discovery document is fetched from, and that document says where the keys are.
    if jwks_uri.is_none() && require_tls_off_loopback(&discovery_uri).is_err() {
        return Err(format!(
            "issuer {:?} is plain http to a host that is not loopback, so its discovery document \
             would be fetched without TLS: use an https issuer, or set an https jwks_uri",
            raw.issuer
        ));
    }
    let ca = raw.ca.as_ref().map(|ca| ca.load("ca_file")).transpose()?;
    let roles_claim = raw.roles_claim.unwrap_or_else(|| "roles".into());
    if roles_claim.is_empty() || roles_claim.split('.').any(str::is_empty) {
        return Err(
            "roles_claim must be a claim name or a dotted path such as realm_access.roles".into(),
        );
    }
    if raw.roles_prefix.as_deref() == Some("") {
        return Err("roles_prefix must not be empty".into());
    }
    let algorithms = match raw.algorithms {
        None => DEFAULT_ALGORITHMS.to_vec(),
        Some(names) => {
            if names.is_empty() {
                return Err("algorithms must not be empty".into());
            }
            let mut algorithms = Vec::with_capacity(names.len());
            for name in names {
                let alg: Algorithm = name
                    .parse()
                    .map_err(|_| format!("algorithm {name:?} is not supported"))?;
                if alg.family() == AlgorithmFamily::Hmac {
                    return Err(format!(
                        "algorithm {name} is refused: an OpenID provider's public keys cannot verify HMAC"
                    ));
                }
                if !algorithms.contains(&alg) {
                    algorithms.push(alg);
                }
            }
            algorithms
        }
    };
    if raw.required_typ.as_deref() == Some("") {
        return Err("required_typ must not be empty".into());
    }
    let introspection = raw
        .introspection
        .map(|i| check_introspection(i, jwks_uri.is_some(), &discovery_uri))
        .transpose()?;
    Ok(Issuer {
        issuer: raw.issuer.into(),
        audiences: raw.audiences,
        jwks_uri,
        discovery_uri,
        roles_claim,
        roles_prefix: raw.roles_prefix.unwrap_or_default(),
        algorithms,
        required_typ: raw.required_typ,
        ca,
        ca_source: raw.ca,
        dpop: raw.dpop,
        dpop_nonce: raw.dpop_nonce,
        introspection,
    })
}

fn check_introspection(
    raw: IntrospectionConfig,
    has_jwks_uri: bool,
    discovery_uri: &Uri,
) -> Result<Introspection, String> {
    let endpoint = raw
        .endpoint
        .as_deref()
        .map(|u| idp_url(u).map_err(|m| format!("introspection endpoint {m}")))
        .transpose()?;
    if endpoint.is_none() && has_jwks_uri && require_tls_off_loopback(discovery_uri).is_err() {
        return Err(
            "introspection needs an endpoint: the issuer is plain http off loopback, \
             so its discovery document is not fetched"
                .into(),
        );
    }
    if raw.client_id.is_empty() {
        return Err("introspection client_id must not be empty".into());
    }
    let secret_file = match &raw.secret {
        SecretSource::File(path) => Some(path.clone()),
        SecretSource::Value(_) => None,
    };
    let secret = match raw.secret {
        SecretSource::Value(secret) => secret,
        SecretSource::File(path) => {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                format!(
                    "introspection client_secret_file {:?}: {}",
                    path.display(),
                    e.kind()
                )
            })?;
            let mut text = text;
            text.truncate(text.trim_end_matches(['\r', '\n']).len());
            // `From<String>` zeroizes the string it takes.
            Secret::from(text)
        }
    };
    if secret.is_empty() {
        return Err("introspection client secret must not be empty".into());
    }
    Ok(Introspection {
        endpoint,
        client_id: raw.client_id,
        secret,
        secret_file,
    })
}

/// Parses a URL the identity provider is reached at: an absolute `http(s)` URL, and `https`
/// unless its host is loopback ([`require_tls_off_loopback`]). Over plain http anyone on the
/// path could replace the keys (and so mint tokens) or read a client secret.
///
/// Every such URL goes through here: a configured `jwks_uri` and, when introspection is
/// added, its endpoint. A discovered `jwks_uri` gets the same rule when it is fetched
/// (a failed refresh, not a refused start).
pub(crate) fn idp_url(value: &str) -> Result<Uri, String> {
    let uri = http_uri(value)?;
    require_tls_off_loopback(&uri).map_err(|_| {
        format!(
            "{value:?} must use https: plain http is allowed only to loopback hosts \
             (127.0.0.0/8, [::1], localhost)"
        )
    })?;
    Ok(uri)
}

fn http_uri(value: &str) -> Result<Uri, String> {
    let uri: Uri = value
        .parse()
        .map_err(|_| format!("{value:?} is not a valid URL"))?;
    match uri.scheme_str() {
        Some("https" | "http") if uri.host().is_some_and(|h| !h.is_empty()) => Ok(uri),
        _ => Err(format!("{value:?} must be an absolute http(s) URL")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    issuers: Vec<RawIssuer>,
    jwks_refresh_interval_secs: Option<u64>,
    token_cache_size: Option<u64>,
    token_cache_ttl_secs: Option<u64>,
    leeway_secs: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIssuer {
    issuer: String,
    audience: OneOrMany,
    jwks_uri: Option<String>,
    roles_claim: Option<String>,
    roles_prefix: Option<String>,
    algorithms: Option<Vec<String>>,
    required_typ: Option<String>,
    ca_file: Option<String>,
    dpop: Option<crate::dpop::DpopPolicy>,
    dpop_nonce: Option<bool>,
    introspection: Option<RawIntrospection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntrospection {
    endpoint: Option<String>,
    client_id: String,
    client_secret: Option<String>,
    client_secret_file: Option<String>,
}

impl RawIntrospection {
    fn into_config(self) -> Result<IntrospectionConfig, String> {
        let secret = match (self.client_secret, self.client_secret_file) {
            (Some(value), None) => SecretSource::Value(value.into()),
            (None, Some(path)) => SecretSource::File(path.into()),
            _ => {
                return Err(
                    "introspection needs exactly one of client_secret and client_secret_file"
                        .into(),
                );
            }
        };
        Ok(IntrospectionConfig {
            endpoint: self.endpoint,
            client_id: self.client_id,
            secret,
        })
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<OidcConfig, String> {
        OidcConfig::from_json("OIDC_CONFIG", json).map_err(|e| e.to_string())
    }

    #[test]
    fn full_config() {
        let c = parse(
            r#"{"issuers":[
                {"issuer":"https://a.example","audience":"api"},
                {"issuer":"https://b.example/realms/x/","audience":["one","two"],"jwks_uri":"http://127.0.0.1:9/jwks",
                 "roles_claim":"realm_access.roles","roles_prefix":"partner:","algorithms":["ES256","EdDSA"],"required_typ":"at+jwt"}],
               "jwks_refresh_interval_secs":600,"token_cache_size":10,"token_cache_ttl_secs":30,"leeway_secs":5}"#,
        )
        .unwrap();
        assert_eq!(
            c.issuers().collect::<Vec<_>>(),
            ["https://a.example", "https://b.example/realms/x/"]
        );
        let a = &c.issuers[0];
        assert_eq!(a.algorithms, DEFAULT_ALGORITHMS);
        assert_eq!(a.roles_claim, "roles");
        assert_eq!(a.roles_prefix, "");
        assert_eq!(
            a.discovery_uri,
            "https://a.example/.well-known/openid-configuration"
        );
        let b = &c.issuers[1];
        assert_eq!(b.audiences, ["one", "two"]);
        assert_eq!(b.algorithms, [Algorithm::ES256, Algorithm::EdDSA]);
        assert_eq!(
            b.discovery_uri,
            "https://b.example/realms/x/.well-known/openid-configuration"
        );
        assert_eq!(b.required_typ.as_deref(), Some("at+jwt"));
        assert_eq!(b.roles_prefix, "partner:");
        assert_eq!(c.max_stale(), Duration::from_secs(6000));
        assert_eq!(
            (
                c.token_cache_size,
                c.token_cache_ttl.as_secs(),
                c.leeway_secs
            ),
            (10, 30, 5)
        );
    }

    #[test]
    fn refusals_name_the_variable() {
        for (json, needle) in [
            ("{", "not valid"),
            (r#"{"issuers":[]}"#, "no issuers"),
            (
                r#"{"issuers":[{"issuer":"https://a","audience":"x"}],"extra":1}"#,
                "unknown field",
            ),
            (
                r#"{"issuers":[{"issuer":"https://a","audiance":"x"}]}"#,
                "unknown field",
            ),
            (
                r#"{"issuers":[{"issuer":"https://a","audience":"x","algorithms":["HS256"]}]}"#,
                "HMAC",
            ),
            (
                r#"{"issuers":[{"issuer":"https://a","audience":"x","algorithms":["none"]}]}"#,
                "not supported",
            ),
            (
                r#"{"issuers":[{"issuer":"https://a","audience":"x","algorithms":[]}]}"#,
                "empty",
            ),
            (
                r#"{"issuers":[{"issuer":"https://a","audience":""}]}"#,
                "audience",
            ),
            (
                r#"{"issuers":[{"issuer":"https://a","audience":[]}]}"#,
                "audience",
            ),
            (
                r#"{"issuers":[{"issuer":"a.example","audience":"x"}]}"#,
                "absolute",
            ),
            (
                r#"{"issuers":[{"issuer":"ftp://a","audience":"x"}]}"#,
                "absolute",
            ),
            (
                r#"{"issuers":[{"issuer":"https://a?x=1","audience":"x"}]}"#,
                "query",
            ),
            (
                r#"{"issuers":[{"issuer":"https://a","audience":"x","jwks_uri":"/keys"}]}"#,
                "jwks_uri",
            ),
            (
                r#"{"issuers":[{"issuer":"https://a","audience":"x","roles_claim":"a..b"}]}"#,
                "roles_claim",
            ),
            (
                r#"{"issuers":[{"issuer":"https://a","audience":"x","roles_prefix":""}]}"#,
                "roles_prefix",
            ),
            (
                r#"{"issuers":[{"issuer":"https://a","audience":"x"},{"issuer":"https://a","audience":"y"}]}"#,
                "twice",
            ),
            (
                r#"{"issuers":[{"issuer":"https://a","audience":"x"}],"jwks_refresh_interval_secs":0}"#,
                "at least",
            ),
            (
                r#"{"issuers":[{"issuer":"https://a","audience":"x"}],"leeway_secs":-1}"#,
                "not valid",
            ),
        ] {
            let e = parse(json).unwrap_err();
            assert!(e.starts_with("OIDC_CONFIG: "), "{json}: {e}");
            assert!(e.contains(needle), "{json}: {e}");
        }
    }

    /// SECURITY.md G4.
    #[test]
    fn plain_http_to_the_idp_is_refused_off_loopback() {
        let issuer = |issuer: &str, jwks_uri: Option<&str>| {
            let jwks = jwks_uri.map_or(String::new(), |u| format!(r#","jwks_uri":"{u}""#));
            parse(&format!(
                r#"{{"issuers":[{{"issuer":"https://ok.example","audience":"x"}},{{"issuer":"{issuer}","audience":"x"{jwks}}}]}}"#
            ))
        };
        for (iss, jwks, needle) in [
            // The discovery document would come over plain http.
            (
                "http://idp.example",
                None,
                r#"issuers[1]: issuer "http://idp.example" is plain http"#,
            ),
            ("http://localhost.", None, "not loopback"),
            ("http://10.0.0.1:8080/realms/x", None, "not loopback"),
            // A configured jwks_uri, whatever the issuer.
            (
                "https://idp.example",
                Some("http://keys.example/jwks"),
                r#"issuers[1]: jwks_uri "http://keys.example/jwks" must use https"#,
            ),
            (
                "http://idp.example",
                Some("http://keys.example/jwks"),
                "jwks_uri",
            ),
            (
                "http://127.0.0.1:9",
                Some("http://[::ffff:127.0.0.1]/jwks"),
                "must use https",
            ),
        ] {
            let e = issuer(iss, jwks).unwrap_err();
            assert!(
                e.starts_with("OIDC_CONFIG: ") && e.contains(needle),
                "{iss} {jwks:?}: {e}"
            );
        }
        for (iss, jwks) in [
            // The identifier may be any URL when the keys come over TLS or from this machine.
            ("http://idp.example", Some("https://keys.example/jwks")),
            ("http://idp.example", Some("http://127.0.0.1:9/jwks")),
            ("https://idp.example", None),
            ("http://127.0.0.1:9", None),
            ("http://LOCALHOST:9/realms/x", None),
            ("http://[::1]:9", Some("http://localhost:9/jwks")),
        ] {
            issuer(iss, jwks).unwrap_or_else(|e| panic!("{iss} {jwks:?}: {e}"));
        }
        let e = OidcConfig::builder()
            .issuer(IssuerConfig::new("http://idp.example", "api"))
            .build()
            .unwrap_err();
        assert_eq!(e.variable(), "OidcConfig");
        assert!(
            idp_url("http://keys.example/x").is_err() && idp_url("https://keys.example/x").is_ok()
        );
    }

    /// SECURITY.md G5.
    #[test]
    fn ca_bundles_are_read_at_build_and_refusals_name_the_setting_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path.to_str().unwrap().to_owned()
        };
        let empty = write("empty.pem", "");
        let key = write(
            "key.pem",
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n",
        );
        let broken = write("broken.pem", "-----BEGIN CERTIFICATE-----\nc2VjcmV0\n");
        let missing = dir.path().join("missing.pem").to_str().unwrap().to_owned();
        let json = |ca: &str| {
            format!(
                r#"{{"issuers":[{{"issuer":"https://a.example","audience":"x","ca_file":"{ca}"}}]}}"#
            )
        };
        let lookup = |config: Option<String>, ca: Option<&str>| {
            OidcConfig::from_lookup("APP_", |name| match name {
                "APP_OIDC_CONFIG" => config.clone(),
                "APP_OIDC_CA_FILE" => ca.map(str::to_owned),
                _ => None,
            })
        };
        let plain = r#"{"issuers":[{"issuer":"https://a.example","audience":"x"}]}"#.to_owned();
        for (path, why) in [
            (&missing, "cannot be read"),
            (&empty, "holds no PEM certificate"),
            (&key, "holds no PEM certificate"),
            (&broken, "not a well-formed PEM"),
        ] {
            let e = parse(&json(path)).unwrap_err();
            assert!(e.starts_with("OIDC_CONFIG: issuers[0]: ca_file "), "{e}");
            assert!(e.contains(path.as_str()) && e.contains(why), "{e}");
            let e = lookup(Some(plain.clone()), Some(path)).unwrap_err();
            assert_eq!(e.variable(), "APP_OIDC_CA_FILE");
            assert!(
                e.message().contains(path.as_str()) && e.message().contains(why),
                "{e}"
            );
            assert!(!e.to_string().contains("c2VjcmV0"), "{e}");
            let e = OidcConfig::builder()
                .issuer(IssuerConfig::new("https://a.example", "x"))
                .ca_file(path)
                .build()
                .unwrap_err();
            assert_eq!(e.variable(), "OidcConfig");
            assert!(
                e.message().starts_with("ca_file ") && e.message().contains(why),
                "{e}"
            );
        }
        let e = lookup(None, Some(&missing)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "APP_OIDC_CA_FILE: is set but APP_OIDC_CONFIG is not"
        );
        assert_eq!(
            lookup(Some(plain.clone()), Some(" "))
                .unwrap_err()
                .message(),
            "is empty"
        );
        assert!(lookup(None, None).unwrap().is_none());
        let e = OidcConfig::builder()
            .issuer(IssuerConfig::new("https://a.example", "x").ca_pem("nothing"))
            .build()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "OidcConfig: issuers[0]: ca_file holds no PEM certificate"
        );
    }

    /// SECURITY.md N3, N4.
    #[test]
    fn introspection_settings_are_checked() {
        let with = |issuer: &str, introspection: &str| {
            parse(&format!(
                r#"{{"issuers":[{{"issuer":"{issuer}","audience":"x","jwks_uri":"https://k.example/jwks","introspection":{introspection}}}]}}"#
            ))
        };
        let ok = with(
            "https://a.example",
            r#"{"client_id":"rs","client_secret":"s3cret"}"#,
        )
        .unwrap();
        let i = ok.issuers[0].introspection.as_ref().unwrap();
        assert_eq!((i.endpoint.as_ref(), i.client_id.as_str()), (None, "rs"));
        assert_eq!(ok.introspecting_issuer(), Some("https://a.example"));
        assert_eq!(
            parse(r#"{"issuers":[{"issuer":"https://a.example","audience":"x"}]}"#)
                .unwrap()
                .introspecting_issuer(),
            None
        );
        assert_eq!(i.secret.expose_secret(), b"s3cret");
        assert!(
            !format!("{ok:?}").contains("s3cret"),
            "the secret never in Debug"
        );
        let given = with(
            "http://idp.example",
            r#"{"endpoint":"https://idp.example/introspect","client_id":"rs","client_secret":"s"}"#,
        )
        .unwrap();
        let endpoint = given.issuers[0]
            .introspection
            .as_ref()
            .unwrap()
            .endpoint
            .clone();
        assert_eq!(endpoint.unwrap(), "https://idp.example/introspect");
        for (issuer, introspection, needle) in [
            (
                "https://a.example",
                r#"{"endpoint":"http://idp.example/introspect","client_id":"rs","client_secret":"s"}"#,
                r#"issuers[0]: introspection endpoint "http://idp.example/introspect" must use https"#,
            ),
            // Discovery would be plain http: the endpoint must be given.
            (
                "http://idp.example",
                r#"{"client_id":"rs","client_secret":"s"}"#,
                "introspection needs an endpoint",
            ),
            (
                "https://a.example",
                r#"{"client_id":"rs"}"#,
                "exactly one of client_secret and client_secret_file",
            ),
            (
                "https://a.example",
                r#"{"client_id":"rs","client_secret":"s","client_secret_file":"/f"}"#,
                "exactly one of client_secret and client_secret_file",
            ),
            (
                "https://a.example",
                r#"{"client_id":"","client_secret":"s"}"#,
                "client_id must not be empty",
            ),
            (
                "https://a.example",
                r#"{"client_id":"rs","client_secret":""}"#,
                "secret must not be empty",
            ),
            (
                "https://a.example",
                r#"{"client_id":"rs","client_secret_file":"/nonexistent/secret"}"#,
                r#"client_secret_file "/nonexistent/secret""#,
            ),
            (
                "https://a.example",
                r#"{"client_id":"rs","secret":"s"}"#,
                "unknown field",
            ),
        ] {
            let error = with(issuer, introspection).unwrap_err();
            assert!(error.contains(needle), "{introspection}: {error}");
            assert!(!error.contains("s3cret"));
        }
        // Two introspecting issuers: an opaque token would not say whose it is.
        let two = parse(
            r#"{"issuers":[
                {"issuer":"https://a.example","audience":"x","introspection":{"client_id":"a","client_secret":"s"}},
                {"issuer":"https://b.example","audience":"x","introspection":{"client_id":"b","client_secret":"s"}}]}"#,
        )
        .unwrap_err();
        assert!(
            two.contains("issuers[1]: introspection is enabled for another issuer"),
            "{two}"
        );
        // A secret file: its trailing line break is not part of the secret.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "from-file\r\n").unwrap();
        let introspection = format!(
            r#"{{"client_id":"rs","client_secret_file":"{}"}}"#,
            path.display()
        );
        let c = with("https://a.example", &introspection).unwrap();
        let secret = &c.issuers[0].introspection.as_ref().unwrap().secret;
        assert_eq!(secret.expose_secret(), b"from-file");
    }

    #[test]
    fn builder_errors_name_the_builder() {
        let e = OidcConfig::builder().build().unwrap_err();
        assert_eq!(e.variable(), "OidcConfig");
        let ok = OidcConfig::builder()
            .issuer(IssuerConfig::new("https://a.example", "api").algorithms(["RS256", "RS256"]))
            .build()
            .unwrap();
        assert_eq!(ok.issuers[0].algorithms, [Algorithm::RS256]);
    }
}
