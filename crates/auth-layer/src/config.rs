//! `AuthConfig`: the layer configured by environment variables, and how it is built.

use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use tower_auth_core::{Admins, ApiKeyAuthenticator, ConfigError, CredentialExtractor};

use crate::AuthLayer;
use crate::env::{self, Available, Keys, Vars};
use crate::layer::default_settings;
use crate::limits::{LimitConfig, SourceLimits};
use crate::rules::Rules;

/// How often `API_KEYS_FILE` is checked for changes unless configured otherwise.
pub const DEFAULT_KEY_FILE_POLL: Duration = Duration::from_secs(5);

/// A kind of authenticator in the chain, as named in `AUTH_MODE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthenticatorKind {
    /// `api_key`: `API_KEYS` or `API_KEYS_FILE`.
    ApiKey,
    /// `oidc`: `OIDC_CONFIG`.
    Oidc,
    /// `hmac`: `HMAC_SECRET`.
    Hmac,
}

impl AuthenticatorKind {
    pub(crate) fn parse(word: &str) -> Option<Self> {
        match word {
            "api_key" => Some(Self::ApiKey),
            "oidc" => Some(Self::Oidc),
            "hmac" => Some(Self::Hmac),
            _ => None,
        }
    }

    /// The word in `AUTH_MODE`.
    pub fn name(self) -> &'static str {
        match self {
            Self::ApiKey => "api_key",
            Self::Oidc => "oidc",
            Self::Hmac => "hmac",
        }
    }
}

/// The layer's configuration, from environment variables (see the crate docs for the list).
///
/// Three readers, one shape: [`AuthConfig::from_env`] reads the process environment;
/// [`AuthConfig::from_env_prefixed`] the same names with a prefix (`MYAPP_API_KEYS`);
/// [`AuthConfig::from_lookup`] reads through any function, which is how tests avoid touching
/// the process environment. Every variable is checked while reading, and every problem is a
/// [`ConfigError`] naming the variable; secret values are never quoted.
///
/// Then [`build`](AuthConfig::build) the layer in async code, or
/// [`build_blocking`](AuthConfig::build_blocking) outside it. To add rules in code, continue
/// with [`AuthLayer::into_builder`].
#[derive(Debug)]
pub struct AuthConfig {
    /// `None` when authentication is off (`AUTH_MODE=none`, or nothing configured).
    chain: Option<Vec<AuthenticatorKind>>,
    keys: Option<Keys>,
    #[cfg(feature = "hmac")]
    hmac: Option<env::Hmac>,
    #[cfg(feature = "oidc")]
    oidc: Option<tower_auth_oidc::OidcConfig>,
    /// `AUTH_DPOP_ORIGIN`, checked, and its full name.
    #[cfg(feature = "oidc")]
    dpop_origin: (String, Option<String>),
    /// `AUTH_DPOP_NONCE_KEY`, checked, and its full name.
    #[cfg(feature = "oidc")]
    dpop_nonce_key: Option<(String, tower_auth_core::Secret)>,
    api_key_header: HeaderName,
    strip_headers: Vec<HeaderName>,
    admins: Admins,
    /// `AUTH_ADMINS` with its prefix, for the start-up warning.
    admins_var: String,
    rules: Rules,
    limits: LimitConfig,
    key_file_poll: Duration,
    /// `AUTH_REDIS_URL` and friends, with the full name of `AUTH_REDIS_URL`.
    #[cfg(feature = "redis")]
    redis: Option<(String, tower_auth_hmac::RedisSettings)>,
    /// The same, for the memory of DPoP proofs the replicas share.
    #[cfg(all(feature = "redis", feature = "oidc"))]
    dpop_redis: Option<(String, tower_auth_hmac::RedisSettings)>,
    /// `API_KEY_BASIC` and `AUTH_COOKIE`.
    sources: crate::sources::CredentialSources,
    /// `AUTH_PROBLEM_JSON`.
    answers: crate::answer::Answers,
    /// `AUTH_RESOURCE`.
    resource: Option<crate::resource::Resource>,
}

impl AuthConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_prefixed("")
    }

    /// Reads the process environment, every name prefixed with `prefix`.
    pub fn from_env_prefixed(prefix: &str) -> Result<Self, ConfigError> {
        Self::from_lookup(prefix, |name| std::env::var(name).ok())
    }

    /// Reads variables through `get`, which is called with full (prefixed) names.
    pub fn from_lookup(
        prefix: &str,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let vars = Vars { prefix, get: &get };
        let (admins_var, admins) = env::admins(&vars)?;
        let api_key_header = env::api_key_header(&vars)?;
        let strip_headers = env::strip_headers(&vars, &api_key_header)?;
        let keys = env::api_keys(&vars, &admins)?;
        #[cfg(feature = "hmac")]
        let hmac = env::hmac(&vars)?;
        #[cfg(feature = "redis")]
        let redis = env::redis(&vars, hmac.as_ref())?
            .map(|settings| (vars.name("AUTH_REDIS_URL"), settings));
        #[cfg(not(feature = "redis"))]
        env::redis(&vars)?;
        #[cfg(feature = "oidc")]
        let oidc = env::oidc(&vars)?;
        #[cfg(feature = "oidc")]
        let dpop_origin = (
            vars.name("AUTH_DPOP_ORIGIN"),
            env::dpop_origin(&vars, oidc.as_ref())?,
        );
        #[cfg(feature = "oidc")]
        let dpop_nonce_key = env::dpop_nonce_key(&vars, oidc.as_ref())?;
        #[cfg(all(feature = "oidc", feature = "hmac"))]
        env::check_issuers_apart(&vars, oidc.as_ref(), hmac.as_ref())?;
        #[cfg(feature = "oidc")]
        let oidc_issuers: Vec<&str> = oidc.iter().flat_map(|c| c.issuers()).collect();
        #[cfg(not(feature = "oidc"))]
        let oidc_issuers: Vec<&str> = Vec::new();
        env::check_admin_issuers(&vars, &admins, &oidc_issuers)?;
        let available = Available {
            api_key: keys.is_some(),
            #[cfg(feature = "oidc")]
            oidc: oidc.is_some(),
            #[cfg(not(feature = "oidc"))]
            oidc: false,
            #[cfg(feature = "hmac")]
            hmac: hmac.is_some(),
            #[cfg(not(feature = "hmac"))]
            hmac: false,
        };
        let chain = env::mode(&vars, &available)?;
        let checks_api_keys = chain
            .as_ref()
            .is_some_and(|c| c.contains(&AuthenticatorKind::ApiKey));
        let sources = crate::sources::from_env(&vars, checks_api_keys)?;
        let answers = crate::answer::from_env(&vars)?;
        // The issuers of `OIDC_CONFIG`, when the chain validates their tokens.
        let checks_oidc = chain
            .as_ref()
            .is_some_and(|c| c.contains(&AuthenticatorKind::Oidc));
        let issuers = oidc_issuers.iter().copied().filter(|_| checks_oidc);
        let resource = crate::resource::from_env(&vars, issuers)?;
        let limits = env::source_limits(&vars)?;
        // A cut-off allows for issuers' clocks running ahead by the largest verifier leeway.
        #[cfg(feature = "hmac")]
        if let Some(hmac) = &hmac {
            let leeway = hmac.config.leeway_duration();
            #[cfg(feature = "oidc")]
            let leeway = leeway.max(oidc.as_ref().map_or(Duration::ZERO, |c| c.leeway()));
            hmac.revocations.set_cutoff_leeway(leeway);
        }
        #[allow(unused_mut)]
        let mut rules = env::rules(&vars)?;
        // The exchange and revocation endpoints are exempt only once the application takes
        // them to serve (`AuthLayer::exchange_endpoint`, `revocation_endpoint`): see
        // `ServedEndpoints`.
        Ok(Self {
            chain,
            keys,
            #[cfg(feature = "hmac")]
            hmac,
            #[cfg(feature = "oidc")]
            oidc,
            #[cfg(feature = "oidc")]
            dpop_origin,
            #[cfg(feature = "oidc")]
            dpop_nonce_key,
            api_key_header,
            strip_headers,
            admins,
            admins_var,
            rules,
            limits,
            key_file_poll: DEFAULT_KEY_FILE_POLL,
            #[cfg(all(feature = "redis", feature = "oidc"))]
            dpop_redis: redis.clone(),
            #[cfg(feature = "redis")]
            redis,
            sources,
            answers,
            resource,
        })
    }

    /// How often `API_KEYS_FILE` is checked for changes (default 5 s). Zero makes the build fail.
    #[must_use]
    pub fn key_file_poll_interval(mut self, every: Duration) -> Self {
        self.key_file_poll = every;
        self
    }

    /// The authenticators in chain order, or an empty list when authentication is off.
    pub fn authenticators(&self) -> &[AuthenticatorKind] {
        self.chain.as_deref().unwrap_or_default()
    }

    /// Builds the layer without blocking: awaits the OIDC issuers' first key fetches (at most
    /// 5 s, all at once) on the current runtime, which then runs their background refreshes
    /// and, with `API_KEYS_FILE`, polls the file for as long as the layer lives.
    ///
    /// An issuer that does not answer does not stop start-up (its tokens get 503 while it is
    /// retried); a discovery document naming another issuer does.
    ///
    /// With `AUTH_REDIS_URL`, also waits (at most 2 s) for the revocations held in Redis,
    /// then keeps them current in the background on this runtime; a Redis that does not
    /// answer does not stop start-up (see `RevocationList::share_through_redis`).
    #[cfg_attr(not(any(feature = "oidc", feature = "redis")), allow(unused_mut))]
    pub async fn build(mut self) -> Result<AuthLayer, ConfigError> {
        self.check()?;
        self.warn_unqualified_admins();
        self.warn_keys_to_introspection();
        #[cfg(feature = "redis")]
        let redis = {
            let redis = self.take_redis();
            self.share_revocations(redis).await?
        };
        #[cfg(feature = "oidc")]
        let oidc = match self.take_oidc() {
            Some(config) => {
                let dpop = self.dpop_verifier(&config)?;
                let authenticator =
                    tower_auth_oidc::OidcAuthenticator::start(config, self.admins.clone()).await?;
                Some((authenticator, dpop))
            }
            None => None,
        };
        self.assemble(
            #[cfg(feature = "oidc")]
            oidc,
            #[cfg(feature = "redis")]
            redis,
        )
    }

    /// Builds the layer from synchronous code, as [`build`](AuthConfig::build) does, blocking
    /// the calling thread for the OIDC issuers' first key fetches (at most 5 s). Inside a
    /// multi-threaded runtime that wait blocks a worker; async code should await
    /// [`build`](AuthConfig::build) instead. With `API_KEYS_FILE` it must run inside a
    /// Tokio runtime, which polls the file. With `AUTH_REDIS_URL` it must run inside a
    /// multi-threaded Tokio runtime, which keeps the revocations current.
    #[cfg_attr(not(any(feature = "oidc", feature = "redis")), allow(unused_mut))]
    pub fn build_blocking(mut self) -> Result<AuthLayer, ConfigError> {
        self.check()?;
        self.warn_unqualified_admins();
        self.warn_keys_to_introspection();
        #[cfg(feature = "redis")]
        let redis = match (self.take_redis(), tokio::runtime::Handle::try_current()) {
            (None, _) => None,
            (Some(redis), Ok(handle))
                if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread =>
            {
                tokio::task::block_in_place(|| {
                    handle.block_on(self.share_revocations(Some(redis)))
                })?
            }
            (Some((variable, _)), _) => {
                return Err(ConfigError::new(
                    variable,
                    "needs a multi-threaded Tokio runtime to keep revocations current: call build_blocking inside one, or await AuthConfig::build",
                ));
            }
        };
        #[cfg(feature = "oidc")]
        let oidc = match self.take_oidc() {
            Some(config) => {
                let dpop = self.dpop_verifier(&config)?;
                let authenticator = tower_auth_oidc::OidcAuthenticator::start_blocking(
                    config,
                    self.admins.clone(),
                )?;
                Some((authenticator, dpop))
            }
            None => None,
        };
        self.assemble(
            #[cfg(feature = "oidc")]
            oidc,
            #[cfg(feature = "redis")]
            redis,
        )
    }

    /// `AUTH_REDIS_URL` and friends, when the chain checks role tokens.
    #[cfg(feature = "redis")]
    fn take_redis(&mut self) -> Option<(String, tower_auth_hmac::RedisSettings)> {
        let (variable, settings) = self.redis.take()?;
        if !self.authenticators().contains(&AuthenticatorKind::Hmac) {
            tracing::warn!(
                target: "auth",
                "{variable} is set but AUTH_MODE leaves out hmac: neither revocations nor the failure limits are shared through Redis (each replica counts AUTH_FAILURE_LIMIT on its own); only DPoP proofs are, with OIDC"
            );
            return None;
        }
        Some((variable, settings))
    }

    /// Shares the HMAC revocation list through Redis; the keys are named after the HMAC
    /// issuer.
    #[cfg(feature = "redis")]
    async fn share_revocations(
        &mut self,
        redis: Option<(String, tower_auth_hmac::RedisSettings)>,
    ) -> Result<Option<std::sync::Arc<tower_auth_hmac::RedisSync>>, ConfigError> {
        let Some((variable, settings)) = redis else {
            return Ok(None);
        };
        let hmac = self.hmac.as_ref().expect("checked in from_lookup");
        let namespace = format!("tower-auth:{}", hmac.config.issuer_name());
        let sync = hmac
            .revocations
            .share_through_redis(settings.clone(), &namespace)
            .await
            .map_err(|e| ConfigError::new(&variable, e.to_string()))?;
        // The failure limits hold for the sum over replicas too (crate::shared_limits).
        self.limits.shared = crate::shared_limits::share(
            &settings,
            &namespace,
            hmac.exchange.as_ref(),
            &self.limits,
        )
        .map_err(|e| ConfigError::new(&variable, e.to_string()))?;
        Ok(Some(Arc::new(sync)))
    }

    /// The settings made after reading, checked before anything starts.
    fn check(&self) -> Result<(), ConfigError> {
        if self.key_file_poll.is_zero() {
            return Err(ConfigError::new(
                "AuthConfig::key_file_poll_interval",
                "must be longer than zero",
            ));
        }
        Ok(())
    }

    /// With more than one method or OIDC issuer in the chain, an unqualified `AUTH_ADMINS`
    /// entry is matched by a name of that text from any of them: one warning per entry.
    fn warn_unqualified_admins(&self) {
        let sources: usize = self
            .authenticators()
            .iter()
            .map(|kind| match kind {
                #[cfg(feature = "oidc")]
                AuthenticatorKind::Oidc => self.oidc.as_ref().map_or(1, |c| c.issuers().count()),
                _ => 1,
            })
            .sum();
        if sources < 2 {
            return;
        }
        for entry in self.admins.unqualified() {
            tracing::warn!(
                target: "auth",
                "{} entry {entry:?} is unqualified: a subject, key name or verified email of that text from any of the {sources} configured methods and issuers is admin; write api_key:NAME, hmac:SUBJECT, email:ADDRESS or ISSUER_URL#SUBJECT",
                self.admins_var
            );
        }
    }

    /// With `oidc` before `api_key` in the chain and an issuer introspecting opaque tokens,
    /// an API key sent as `Authorization: Bearer` is sent to that issuer's introspection
    /// endpoint before the key set sees it: the key leaves the service.
    fn warn_keys_to_introspection(&self) {
        #[cfg(feature = "oidc")]
        {
            let chain = self.authenticators();
            let position = |kind| chain.iter().position(|k| *k == kind);
            let (Some(oidc), Some(api_key)) = (
                position(AuthenticatorKind::Oidc),
                position(AuthenticatorKind::ApiKey),
            ) else {
                return;
            };
            let introspecting = self.oidc.as_ref().and_then(|c| c.introspecting_issuer());
            if let (true, Some(issuer)) = (oidc < api_key, introspecting) {
                tracing::warn!(
                    target: "auth",
                    "AUTH_MODE puts oidc before api_key and {issuer} introspects opaque tokens: an API key sent as a bearer token is sent to that issuer before the key set sees it; put api_key first (even then, a bearer value the key set does not hold, such as a revoked or mistyped key, goes on to introspection)"
                );
            }
        }
    }

    /// The OIDC configuration, when the chain uses it.
    #[cfg(feature = "oidc")]
    fn take_oidc(&mut self) -> Option<tower_auth_oidc::OidcConfig> {
        let config = self.oidc.take()?;
        self.authenticators()
            .contains(&AuthenticatorKind::Oidc)
            .then_some(config)
    }

    /// The verifier of DPoP proofs for the OIDC issuers (`AUTH_DPOP_ORIGIN`).
    #[cfg(feature = "oidc")]
    fn dpop_verifier(
        &self,
        config: &tower_auth_oidc::OidcConfig,
    ) -> Result<tower_auth_oidc::DpopVerifier, ConfigError> {
        let (variable, origin) = &self.dpop_origin;
        let verifier = env::dpop_verifier_with(
            config,
            origin.as_deref(),
            variable,
            self.dpop_nonce_key.as_ref(),
        )?;
        let prefix = variable
            .strip_suffix("AUTH_DPOP_ORIGIN")
            .unwrap_or_default();
        env::warn_dpop(&verifier, origin.is_some(), prefix);
        #[cfg(feature = "redis")]
        if let Some((variable, settings)) = &self.dpop_redis {
            let store = crate::dpop_replay_redis::RedisReplay::new(settings, variable)?;
            return Ok(verifier.with_replay_store(Arc::new(store)));
        }
        Ok(verifier)
    }

    fn assemble(
        self,
        #[cfg(feature = "oidc")] mut oidc: Option<(
            tower_auth_oidc::OidcAuthenticator,
            tower_auth_oidc::DpopVerifier,
        )>,
        #[cfg(feature = "redis")] redis: Option<Arc<tower_auth_hmac::RedisSync>>,
    ) -> Result<AuthLayer, ConfigError> {
        let mut settings = default_settings();
        #[cfg(feature = "redis")]
        {
            settings.redis = redis;
        }
        settings.rules = self.rules;
        settings.sources = self.sources;
        settings.answers = self.answers;
        settings.resource = self.resource;
        settings.limits = Arc::new(SourceLimits::new(self.limits));
        for header in self.strip_headers {
            settings.stripped.add(header);
        }
        let Some(chain) = self.chain else {
            tracing::warn!(
                target: "auth",
                "AUTHENTICATION IS OFF: no AUTH_MODE, API_KEYS, OIDC_CONFIG or HMAC_SECRET is set; every request is let through"
            );
            return Ok(AuthLayer::from_settings(settings));
        };
        settings.extractor = CredentialExtractor::new(self.api_key_header);
        let mut keys = self.keys;
        #[cfg(feature = "hmac")]
        let mut hmac = self.hmac;
        // The exchange's introspected clients are judged by the OIDC authenticator,
        // whichever comes first in the chain.
        #[cfg(all(feature = "hmac", feature = "oidc"))]
        let introspecting = oidc
            .as_ref()
            .map(|(authenticator, _)| authenticator.clone());
        #[cfg(feature = "hmac")]
        let clients_var = format!(
            "{}AUTH_TOKEN_CLIENTS",
            self.admins_var.trim_end_matches("AUTH_ADMINS")
        );
        for kind in chain {
            match kind {
                AuthenticatorKind::ApiKey => match keys.take() {
                    Some(Keys::Inline(set)) => {
                        settings.chain.push(Arc::new(ApiKeyAuthenticator::new(set)))
                    }
                    Some(Keys::File { file, set, digest }) => {
                        let authenticator = Arc::new(ApiKeyAuthenticator::new(set));
                        let guard = file.watch(
                            self.admins.clone(),
                            Arc::clone(&authenticator),
                            digest,
                            self.key_file_poll,
                        )?;
                        settings.tasks.push(Arc::new(guard));
                        settings.chain.push(authenticator);
                    }
                    None => unreachable!("checked in from_lookup"),
                },
                #[cfg(feature = "hmac")]
                AuthenticatorKind::Hmac => {
                    let env::Hmac {
                        config,
                        exchange,
                        revocations,
                    } = hmac.take().expect("checked in from_lookup");
                    let exchange = exchange
                        .map(|exchange| {
                            crate::introspection::wire(
                                exchange,
                                #[cfg(feature = "oidc")]
                                introspecting.as_ref(),
                                &revocations,
                                &clients_var,
                            )
                        })
                        .transpose()?;
                    // One list: what the revocation endpoint writes, the authenticator refuses
                    // from the next request on.
                    let authenticator =
                        tower_auth_hmac::HmacAuthenticator::new(config, self.admins.clone())
                            .revocation_list(revocations.clone());
                    settings.chain.push(Arc::new(authenticator));
                    settings.cutoffs = Some(revocations.clone());
                    settings.token_revocation = exchange
                        .as_ref()
                        .map(|exchange| exchange.revocation_endpoint(revocations));
                    settings.token_exchange = exchange;
                }
                #[cfg(feature = "oidc")]
                AuthenticatorKind::Oidc => {
                    let (authenticator, dpop) =
                        oidc.take().expect("started in build or build_blocking");
                    settings.watch_readiness(&authenticator);
                    settings.chain.push(Arc::new(authenticator));
                    settings.dpop = Some(Arc::new(dpop));
                }
                #[allow(unreachable_patterns)]
                _ => unreachable!("refused in from_lookup"),
            }
        }
        #[cfg(feature = "hmac")]
        if hmac.is_some_and(|h| h.exchange.is_some()) {
            tracing::warn!(
                target: "auth",
                "AUTH_TOKEN_CLIENTS is set but AUTH_MODE leaves out hmac: the token exchange is not served"
            );
        }
        Ok(AuthLayer::from_settings(settings))
    }
}

impl AuthLayer {
    /// The layer configured by the process environment:
    /// `AuthConfig::from_env()?.build_blocking()`.
    ///
    /// With `OIDC_CONFIG` this waits (at most 5 s) for the issuers' first key fetches,
    /// blocking the calling thread; async code that must not block a worker can use
    /// `AuthConfig::from_env()?.build().await` instead.
    pub fn from_env() -> Result<Self, ConfigError> {
        AuthConfig::from_env()?.build_blocking()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const K1: &str = "k7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA";

    fn config(vars: &[(&str, &str)]) -> Result<AuthConfig, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        AuthConfig::from_lookup("", |name| vars.get(name).cloned())
    }

    fn error_variable(vars: &[(&str, &str)]) -> String {
        config(vars).unwrap_err().variable().to_owned()
    }

    #[test]
    fn nothing_set_is_off() {
        let c = config(&[]).unwrap();
        assert!(c.authenticators().is_empty());
        assert_eq!(c.build_blocking().unwrap().mode(), "none");
        assert_eq!(
            config(&[("AUTH_MODE", "none"), ("API_KEYS", K1)])
                .unwrap()
                .authenticators(),
            []
        );
    }

    #[test]
    fn api_keys_alone_enable_api_key_mode() {
        let c = config(&[("API_KEYS", K1)]).unwrap();
        assert_eq!(c.authenticators(), [AuthenticatorKind::ApiKey]);
        assert_eq!(c.build_blocking().unwrap().mode(), "api_key");
    }

    /// An issuer that refuses connections does not stop start-up: its tokens get 503 later.
    #[cfg(feature = "oidc")]
    #[tokio::test]
    async fn a_down_issuer_does_not_stop_start_up() {
        let oidc = r#"{"issuers":[{"issuer":"http://127.0.0.1:9","audience":"api"}]}"#;
        let layer = config(&[("OIDC_CONFIG", oidc), ("API_KEYS", K1)])
            .unwrap()
            .build()
            .await
            .unwrap();
        assert_eq!(layer.mode(), "api_key,oidc");
    }

    #[cfg(feature = "hmac")]
    const SECRET: &str = "Zx8Qm2VtP9rK4LwN8bYc3HdF6sJg5KeA-hmac";

    #[cfg(feature = "hmac")]
    #[test]
    fn hmac_secret_enables_hmac_after_api_keys() {
        let layer = config(&[("API_KEYS", K1), ("HMAC_SECRET", SECRET)])
            .unwrap()
            .build_blocking()
            .unwrap();
        assert_eq!(layer.mode(), "api_key,hmac");
        assert!(layer.exchange_endpoint().is_none());
        let layer = config(&[
            ("AUTH_MODE", "hmac,api_key"),
            ("API_KEYS", K1),
            ("HMAC_SECRET", SECRET),
        ])
        .unwrap()
        .build_blocking()
        .unwrap();
        assert_eq!(layer.mode(), "hmac,api_key");
        assert_eq!(error_variable(&[("AUTH_MODE", "hmac")]), "AUTH_MODE");
    }

    #[cfg(feature = "hmac")]
    #[test]
    fn token_clients_need_the_secret_and_are_exempt() {
        let clients = format!(
            r#"[{{"client_id":"ci","secret_sha256":"{}","roles":["deploy"]}}]"#,
            "ab".repeat(32)
        );
        assert_eq!(
            error_variable(&[("AUTH_TOKEN_CLIENTS", &clients)]),
            "AUTH_TOKEN_CLIENTS"
        );
        let layer = config(&[
            ("HMAC_SECRET", SECRET),
            ("AUTH_TOKEN_CLIENTS", &clients),
            ("AUTH_PUBLIC_PATHS", "/ping"),
        ])
        .unwrap()
        .build_blocking()
        .unwrap();
        assert!(layer.exchange_endpoint().is_some());
        assert!(layer.revocation_endpoint().is_some());
        let mut exempt = layer.exemptions();
        exempt.sort();
        assert_eq!(
            exempt,
            [
                tower_auth_hmac::REVOKE_PATH,
                tower_auth_hmac::TOKEN_PATH,
                "/ping"
            ]
        );

        // With hmac left out of AUTH_MODE the exchange is not served, and its path is not
        // exempt: an application route there stays protected.
        let layer = config(&[
            ("AUTH_MODE", "api_key"),
            ("API_KEYS", K1),
            ("HMAC_SECRET", SECRET),
            ("AUTH_TOKEN_CLIENTS", &clients),
            ("AUTH_PUBLIC_PATHS", "/ping"),
        ])
        .unwrap()
        .build_blocking()
        .unwrap();
        assert!(layer.exchange_endpoint().is_none());
        assert!(layer.revocation_endpoint().is_none());
        assert_eq!(layer.exemptions(), ["/ping"]);
    }

    /// SECURITY.md R8.
    #[cfg(feature = "hmac")]
    #[test]
    fn a_revocation_file_that_cannot_be_used_refuses_start_up_naming_variable_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let malformed = dir.path().join("malformed.json");
        std::fs::write(&malformed, "{not json").unwrap();
        let nowhere = dir.path().join("no-such-dir").join("revoked.json");
        let fresh = dir.path().join("revoked.json");
        let fresh_path = fresh.to_str().unwrap();
        for path in [&malformed, &nowhere] {
            let path = path.to_str().unwrap();
            let error =
                config(&[("HMAC_SECRET", SECRET), ("AUTH_REVOCATION_FILE", path)]).unwrap_err();
            assert_eq!(error.variable(), "AUTH_REVOCATION_FILE");
            assert!(error.to_string().contains(path), "{error}");
        }
        // Without HMAC_SECRET there is nothing to revoke.
        assert_eq!(
            error_variable(&[("AUTH_REVOCATION_FILE", fresh_path)]),
            "AUTH_REVOCATION_FILE"
        );
        // A missing file in an existing directory is an empty list.
        assert!(
            config(&[
                ("HMAC_SECRET", SECRET),
                ("AUTH_REVOCATION_FILE", fresh_path)
            ])
            .is_ok()
        );
    }

    /// SECURITY.md G11: without the `redis` feature the Redis variables refuse start-up,
    /// naming the variable and the feature, rather than leaving replicas unshared.
    #[cfg(not(feature = "redis"))]
    #[test]
    fn redis_variables_without_the_feature_refuse_start_up() {
        for var in [
            "AUTH_REDIS_URL",
            "AUTH_REDIS_FAILURE",
            "AUTH_REDIS_MAX_STALE_SECS",
        ] {
            let error =
                config(&[("API_KEYS", K1), (var, "redis://:pass-w0rd@cache:6379")]).unwrap_err();
            assert_eq!(error.variable(), var);
            let message = error.to_string();
            assert!(message.contains("`redis` cargo feature"), "{message}");
            assert!(!message.contains("pass-w0rd"), "{message}");
        }
    }

    /// SECURITY.md G11: what replicas share is the revocation list of role tokens, so the
    /// URL needs `HMAC_SECRET`; `build_blocking` needs a runtime to keep it current.
    #[cfg(feature = "redis")]
    #[test]
    fn a_redis_url_needs_hmac_and_a_runtime() {
        let url = ("AUTH_REDIS_URL", "redis://:pass-w0rd@127.0.0.1:9");
        let error = config(&[("API_KEYS", K1), url]).unwrap_err();
        assert_eq!(error.variable(), "AUTH_REDIS_URL");
        assert!(error.to_string().contains("HMAC_SECRET"), "{error}");
        // With OIDC_CONFIG alone the replicas share their DPoP proofs (SECURITY.md P24).
        #[cfg(feature = "oidc")]
        {
            let oidc = r#"{"issuers":[{"issuer":"https://login.example.com","audience":"api"}]}"#;
            let config = config(&[("OIDC_CONFIG", oidc), url]).unwrap();
            assert!(config.dpop_redis.is_some());
        }
        let error = config(&[("HMAC_SECRET", SECRET), url])
            .unwrap()
            .build_blocking()
            .unwrap_err();
        assert_eq!(error.variable(), "AUTH_REDIS_URL");
        assert!(!error.to_string().contains("pass-w0rd"), "{error}");
        // Left out of the chain, hmac shares nothing: no connection is tried.
        let layer = config(&[
            ("AUTH_MODE", "api_key"),
            ("API_KEYS", K1),
            ("HMAC_SECRET", SECRET),
            url,
        ])
        .unwrap()
        .build_blocking()
        .unwrap();
        assert!(layer.redis_sync().is_none());
    }

    #[test]
    fn a_zero_key_file_poll_interval_is_refused_not_clamped() {
        let error = config(&[("API_KEYS", K1)])
            .unwrap()
            .key_file_poll_interval(Duration::ZERO)
            .build_blocking()
            .unwrap_err();
        assert_eq!(error.variable(), "AuthConfig::key_file_poll_interval");
    }

    #[test]
    fn prefix_applies_to_every_name() {
        let vars: HashMap<String, String> =
            [("MYAPP_API_KEYS", K1), ("MYAPP_AUTH_PUBLIC_PATHS", "/ping")]
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect();
        let layer = AuthConfig::from_lookup("MYAPP_", |n| vars.get(n).cloned())
            .unwrap()
            .build_blocking()
            .unwrap();
        assert_eq!(layer.mode(), "api_key");
        assert_eq!(layer.exemptions(), ["/ping"]);
        let e = AuthConfig::from_lookup("MYAPP_", |n| {
            (n == "MYAPP_AUTH_MODE").then(|| "x".to_owned())
        })
        .unwrap_err();
        assert_eq!(e.variable(), "MYAPP_AUTH_MODE");
    }

    #[test]
    fn public_paths_replace_the_defaults() {
        let layer = config(&[("API_KEYS", K1), ("AUTH_PUBLIC_PATHS", "/ping, /version")])
            .unwrap()
            .build_blocking()
            .unwrap();
        let mut paths = layer.exemptions();
        paths.sort();
        assert_eq!(paths, ["/ping", "/version"]);
        assert!(
            config(&[("API_KEYS", K1), ("AUTH_PUBLIC_PATHS", "")])
                .unwrap()
                .build_blocking()
                .unwrap()
                .exemptions()
                .is_empty()
        );
    }

    #[test]
    fn public_paths_may_name_a_whole_grpc_service() {
        let paths = "/health,/grpc.reflection.v1.ServerReflection/*";
        let layer = config(&[("API_KEYS", K1), ("AUTH_PUBLIC_PATHS", paths)])
            .unwrap()
            .build_blocking()
            .unwrap();
        let mut exempt = layer.exemptions();
        exempt.sort();
        assert_eq!(
            exempt,
            ["/grpc.reflection.v1.ServerReflection/*", "/health"]
        );
        // A prefix for HTTP paths is refused: exemptions are exact.
        let e = config(&[("API_KEYS", K1), ("AUTH_PUBLIC_PATHS", "/static/*")]).unwrap_err();
        assert_eq!(e.variable(), "AUTH_PUBLIC_PATHS");
    }
}
