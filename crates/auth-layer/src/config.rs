//! `AuthConfig`: the layer's configuration read from environment variables.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use http::header::AUTHORIZATION;
use tower_auth_core::{
    Admins, ApiKeyAuthenticator, ApiKeySet, ConfigError, DEFAULT_API_KEY_HEADER,
};

use crate::AuthLayer;
use crate::reload::KeyFile;
use crate::rules::{Rules, parse_method_roles};

/// How often `API_KEYS_FILE` is checked for changes unless configured otherwise.
pub const DEFAULT_KEY_FILE_POLL: Duration = Duration::from_secs(5);

/// An authentication method, as named in `AUTH_MODE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Method {
    /// `api_key`: `API_KEYS` or `API_KEYS_FILE`.
    ApiKey,
    /// `oidc`: `OIDC_CONFIG`.
    Oidc,
    /// `hmac`: `HMAC_SECRET`.
    Hmac,
}

impl Method {
    fn parse(word: &str) -> Option<Self> {
        match word {
            "api_key" => Some(Self::ApiKey),
            "oidc" => Some(Self::Oidc),
            "hmac" => Some(Self::Hmac),
            _ => None,
        }
    }
}

/// The HMAC parts: the authenticator's configuration and, with `AUTH_TOKEN_CLIENTS`, the exchange.
#[cfg(feature = "hmac")]
#[derive(Debug)]
struct Hmac {
    config: tower_auth_hmac::HmacConfig,
    exchange: Option<tower_auth_hmac::TokenExchange>,
}

#[derive(Debug)]
enum Keys {
    Inline(ApiKeySet),
    File {
        file: KeyFile,
        set: ApiKeySet,
        digest: [u8; 32],
    },
}

/// The layer's configuration, from environment variables (see the crate docs for the list).
///
/// [`AuthConfig::from_env`] reads the process environment; [`AuthConfig::from_env_prefixed`]
/// reads the same names with a prefix (`MYAPP_API_KEYS`); [`AuthConfig::from_lookup`] reads
/// from any function, which is how tests avoid touching the process environment. Every
/// problem is a [`ConfigError`] naming the variable; secret values are never quoted.
#[derive(Debug)]
pub struct AuthConfig {
    /// `None` when authentication is off (`AUTH_MODE=none`, or nothing configured).
    methods: Option<Vec<Method>>,
    keys: Option<Keys>,
    #[cfg(feature = "hmac")]
    hmac: Option<Hmac>,
    #[cfg(feature = "oidc")]
    oidc: Option<tower_auth_oidc::OidcConfig>,
    api_key_header: HeaderName,
    admins: Admins,
    rules: Rules,
    key_file_poll: Duration,
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
        let var = |name: &str| {
            let full = format!("{prefix}{name}");
            let value = get(&full);
            (full, value)
        };

        let (admins_var, admins) = var("AUTH_ADMINS");
        let admins = match admins {
            Some(v) => parse_list(&admins_var, &v).map(Admins::new)?,
            None => Admins::default(),
        };

        let (header_var, header) = var("API_KEY_HEADER");
        let api_key_header = match header {
            None => HeaderName::from_static(DEFAULT_API_KEY_HEADER),
            Some(h) => match HeaderName::try_from(h.trim()) {
                Ok(name) if name != AUTHORIZATION => name,
                Ok(_) => {
                    return Err(ConfigError::new(
                        header_var,
                        "cannot be Authorization, which always carries bearer tokens",
                    ));
                }
                Err(_) => return Err(ConfigError::new(header_var, "is not a valid header name")),
            },
        };

        let (keys_var, inline) = var("API_KEYS");
        let (file_var, file) = var("API_KEYS_FILE");
        let keys = match (inline, file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    &keys_var,
                    format!("set only one of {keys_var} and {file_var}"),
                ));
            }
            (Some(v), None) => Some(Keys::Inline(ApiKeySet::parse(&keys_var, &v, &admins)?)),
            (None, Some(path)) => {
                let file = KeyFile {
                    path: PathBuf::from(path),
                    variable: file_var,
                };
                let (set, digest) = file.load(&admins)?;
                Some(Keys::File { file, set, digest })
            }
            (None, None) => None,
        };

        let (oidc_var, oidc) = var("OIDC_CONFIG");
        let (hmac_var, hmac_secret) = var("HMAC_SECRET");
        #[cfg(feature = "hmac")]
        let hmac = read_hmac(prefix, &get)?;
        #[cfg(feature = "oidc")]
        let oidc = oidc
            .as_deref()
            .map(|json| tower_auth_oidc::OidcConfig::from_json(&oidc_var, json))
            .transpose()?;
        #[cfg(all(feature = "oidc", feature = "hmac"))]
        if let (Some(oidc), Some(hmac)) = (&oidc, &hmac) {
            let issuer = hmac.config.issuer_name();
            if oidc.issuers().any(|i| i == issuer) {
                return Err(ConfigError::new(
                    format!("{prefix}HMAC_ISSUER"),
                    format!(
                        "equals an issuer of {oidc_var}: role tokens and OIDC tokens must never be confused"
                    ),
                ));
            }
        }
        let (mode_var, mode) = var("AUTH_MODE");
        let methods = match mode.as_deref().map(str::trim) {
            Some("none") => None,
            Some(words) => {
                let mut methods = Vec::new();
                for word in words.split(',').map(str::trim) {
                    let method = Method::parse(word).ok_or_else(|| {
                        ConfigError::new(
                            &mode_var,
                            format!("`{word}` is not one of api_key, oidc, hmac, none"),
                        )
                    })?;
                    if methods.contains(&method) {
                        return Err(ConfigError::new(
                            &mode_var,
                            format!("`{word}` is named twice"),
                        ));
                    }
                    methods.push(method);
                }
                Some(methods)
            }
            None => {
                let set = [
                    (Method::ApiKey, keys.is_some()),
                    (Method::Oidc, oidc.is_some()),
                    (Method::Hmac, hmac_secret.is_some()),
                ];
                let methods: Vec<_> = set
                    .into_iter()
                    .filter(|&(_, on)| on)
                    .map(|(m, _)| m)
                    .collect();
                (!methods.is_empty()).then_some(methods)
            }
        };
        for method in methods.iter().flatten() {
            match method {
                Method::ApiKey if keys.is_none() => {
                    return Err(ConfigError::new(
                        &mode_var,
                        format!("names api_key but neither {keys_var} nor API_KEYS_FILE is set"),
                    ));
                }
                #[cfg(feature = "oidc")]
                Method::Oidc if oidc.is_none() => {
                    return Err(ConfigError::new(
                        &mode_var,
                        format!("names oidc but {oidc_var} is not set"),
                    ));
                }
                #[cfg(not(feature = "oidc"))]
                Method::Oidc => {
                    return Err(ConfigError::new(
                        &oidc_var,
                        "OIDC needs tower-auth's `oidc` feature, which this build leaves out",
                    ));
                }
                #[cfg(feature = "hmac")]
                Method::Hmac if hmac.is_none() => {
                    return Err(ConfigError::new(
                        &mode_var,
                        format!("names hmac but {hmac_var} is not set"),
                    ));
                }
                #[cfg(not(feature = "hmac"))]
                Method::Hmac => {
                    return Err(ConfigError::new(
                        &hmac_var,
                        "role tokens need tower-auth's `hmac` feature, which this build leaves out",
                    ));
                }
                _ => {}
            }
        }

        let mut rules = Rules::default();
        let (public_var, public) = var("AUTH_PUBLIC_PATHS");
        if let Some(paths) = public {
            rules.clear_exemptions();
            for (i, path) in paths
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .enumerate()
            {
                rules
                    .exempt(path)
                    .map_err(|e| ConfigError::new(&public_var, format!("entry #{}: {e}", i + 1)))?;
            }
        }
        let (roles_var, roles) = var("AUTH_METHOD_ROLES");
        if let Some(roles) = roles {
            parse_method_roles(&roles_var, &roles, &mut rules)?;
        }

        // The exchange issues the tokens this layer checks: it must not need one itself.
        #[cfg(feature = "hmac")]
        if hmac.as_ref().is_some_and(|h| h.exchange.is_some()) {
            rules
                .exempt(tower_auth_hmac::TOKEN_PATH)
                .expect("a valid path");
        }

        Ok(Self {
            methods,
            keys,
            #[cfg(feature = "hmac")]
            hmac,
            #[cfg(feature = "oidc")]
            oidc,
            api_key_header,
            admins,
            rules,
            key_file_poll: DEFAULT_KEY_FILE_POLL,
        })
    }

    /// How often `API_KEYS_FILE` is checked for changes (default 5 s).
    #[must_use]
    pub fn key_file_poll_interval(mut self, every: Duration) -> Self {
        self.key_file_poll = every;
        self
    }

    /// The methods in chain order, or an empty list when authentication is off.
    pub fn methods(&self) -> &[Method] {
        self.methods.as_deref().unwrap_or_default()
    }

    /// Builds the layer.
    ///
    /// With `API_KEYS_FILE` this must run inside a Tokio runtime, which polls the file for
    /// changes for as long as the layer lives. With `OIDC_CONFIG` it waits (at most 5 s) for
    /// the first key fetch of every issuer: an issuer that does not answer does not stop
    /// start-up (its tokens get 503 while it is retried), but a discovery document naming
    /// another issuer does. Inside a multi-threaded runtime the wait blocks this worker;
    /// prefer [`AuthConfig::build`] in async code.
    #[cfg_attr(not(feature = "oidc"), allow(unused_mut))]
    pub fn into_layer(mut self) -> Result<AuthLayer, ConfigError> {
        #[cfg(feature = "oidc")]
        let oidc = match self.oidc.take() {
            Some(config) if self.methods().contains(&Method::Oidc) => {
                Some(tower_auth_oidc::OidcAuthenticator::start_blocking(
                    config,
                    self.admins.clone(),
                    tower_auth_core::Clock::system(),
                )?)
            }
            _ => None,
        };
        self.assemble(
            #[cfg(feature = "oidc")]
            oidc,
        )
    }

    /// Builds the layer, awaiting the OIDC issuers' first key fetches (at most 5 s) on the
    /// current runtime, which then runs their background refreshes. See [`AuthConfig::into_layer`].
    #[cfg_attr(not(feature = "oidc"), allow(unused_mut))]
    pub async fn build(mut self) -> Result<AuthLayer, ConfigError> {
        #[cfg(feature = "oidc")]
        let oidc = match self.oidc.take() {
            Some(config) if self.methods().contains(&Method::Oidc) => Some(
                tower_auth_oidc::OidcAuthenticator::start(
                    config,
                    self.admins.clone(),
                    tower_auth_core::Clock::system(),
                )
                .await?,
            ),
            _ => None,
        };
        self.assemble(
            #[cfg(feature = "oidc")]
            oidc,
        )
    }

    fn assemble(
        self,
        #[cfg(feature = "oidc")] mut oidc: Option<tower_auth_oidc::OidcAuthenticator>,
    ) -> Result<AuthLayer, ConfigError> {
        let Some(methods) = self.methods else {
            tracing::warn!(
                target: "auth",
                "AUTHENTICATION IS OFF: no AUTH_MODE, API_KEYS, OIDC_CONFIG or HMAC_SECRET is set; every request is let through"
            );
            let mut layer = AuthLayer::disabled();
            layer.shared_mut().rules = self.rules;
            return Ok(layer);
        };
        let mut layer = AuthLayer::disabled();
        let shared = layer.shared_mut();
        shared.extractor = tower_auth_core::CredentialExtractor::new(self.api_key_header);
        shared.rules = self.rules;
        shared.enabled = true;
        let mut keys = self.keys;
        #[cfg(feature = "hmac")]
        let mut hmac = self.hmac;
        for method in methods {
            match method {
                Method::ApiKey => match keys.take() {
                    Some(Keys::Inline(set)) => {
                        shared.chain.push(Arc::new(ApiKeyAuthenticator::new(set)))
                    }
                    Some(Keys::File { file, set, digest }) => {
                        let authenticator = Arc::new(ApiKeyAuthenticator::new(set));
                        let guard = file.watch(
                            self.admins.clone(),
                            Arc::clone(&authenticator),
                            digest,
                            self.key_file_poll,
                        )?;
                        shared.tasks.push(Arc::new(guard));
                        shared.chain.push(authenticator);
                    }
                    None => unreachable!("checked in from_lookup"),
                },
                #[cfg(feature = "hmac")]
                Method::Hmac => {
                    let Hmac { config, exchange } = hmac.take().expect("checked in from_lookup");
                    let authenticator =
                        tower_auth_hmac::HmacAuthenticator::new(config).admins(self.admins.clone());
                    shared.chain.push(Arc::new(authenticator));
                    shared.token_exchange = exchange;
                }
                #[cfg(feature = "oidc")]
                Method::Oidc => {
                    let authenticator = oidc.take().expect("started in into_layer or build");
                    shared.chain.push(Arc::new(authenticator));
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
        Ok(layer)
    }
}

/// `HMAC_SECRET` and friends, and `AUTH_TOKEN_CLIENTS`, which needs them.
#[cfg(feature = "hmac")]
fn read_hmac(
    prefix: &str,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Hmac>, ConfigError> {
    let Some(config) = tower_auth_hmac::HmacConfig::from_vars(prefix, get)? else {
        let clients = format!("{prefix}AUTH_TOKEN_CLIENTS");
        if get(&clients).is_some() {
            return Err(ConfigError::new(
                clients,
                format!("needs {prefix}HMAC_SECRET to sign the tokens it issues"),
            ));
        }
        return Ok(None);
    };
    let exchange = tower_auth_hmac::TokenExchange::from_vars(prefix, get, config.clone())?;
    Ok(Some(Hmac { config, exchange }))
}

/// A JSON array of strings, or a comma-separated list.
fn parse_list(variable: &str, value: &str) -> Result<Vec<String>, ConfigError> {
    let value = value.trim();
    if value.starts_with('[') {
        serde_json::from_str::<Vec<String>>(value).map_err(|e| {
            ConfigError::new(
                variable,
                format!("not a JSON array of strings (column {})", e.column()),
            )
        })
    } else {
        Ok(value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect())
    }
}

impl AuthLayer {
    /// The layer configured by the process environment: `AuthConfig::from_env()?.into_layer()`.
    pub fn from_env() -> Result<Self, ConfigError> {
        AuthConfig::from_env()?.into_layer()
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
        assert!(c.methods().is_empty());
        assert_eq!(c.into_layer().unwrap().mode(), "none");
        assert_eq!(
            config(&[("AUTH_MODE", "none"), ("API_KEYS", K1)])
                .unwrap()
                .methods(),
            []
        );
    }

    #[test]
    fn api_keys_alone_enable_api_key_mode() {
        let c = config(&[("API_KEYS", K1)]).unwrap();
        assert_eq!(c.methods(), [Method::ApiKey]);
        assert_eq!(c.into_layer().unwrap().mode(), "api_key");
    }

    #[test]
    fn misconfiguration_names_the_variable() {
        assert_eq!(error_variable(&[("AUTH_MODE", "api_key")]), "AUTH_MODE");
        assert_eq!(
            error_variable(&[("AUTH_MODE", "api_key"), ("API_KEYS", "")]),
            "API_KEYS"
        );
        assert_eq!(error_variable(&[("AUTH_MODE", "kerberos")]), "AUTH_MODE");
        assert_eq!(
            error_variable(&[("AUTH_MODE", "api_key,api_key"), ("API_KEYS", K1)]),
            "AUTH_MODE"
        );
        assert_eq!(error_variable(&[("API_KEYS", "short")]), "API_KEYS");
        assert_eq!(error_variable(&[("API_KEYS", "[{bad json")]), "API_KEYS");
        assert_eq!(
            error_variable(&[("API_KEYS", K1), ("API_KEYS_FILE", "/x")]),
            "API_KEYS"
        );
        assert_eq!(
            error_variable(&[("API_KEYS_FILE", "/nonexistent/keys")]),
            "API_KEYS_FILE"
        );
        assert_eq!(
            error_variable(&[("API_KEYS", K1), ("API_KEY_HEADER", "authorization")]),
            "API_KEY_HEADER"
        );
        assert_eq!(
            error_variable(&[("API_KEYS", K1), ("API_KEY_HEADER", "bad header")]),
            "API_KEY_HEADER"
        );
        assert_eq!(
            error_variable(&[("API_KEYS", K1), ("AUTH_ADMINS", "[1,2]")]),
            "AUTH_ADMINS"
        );
        assert_eq!(
            error_variable(&[("API_KEYS", K1), ("AUTH_PUBLIC_PATHS", "health")]),
            "AUTH_PUBLIC_PATHS"
        );
        assert_eq!(
            error_variable(&[("API_KEYS", K1), ("AUTH_METHOD_ROLES", "/x")]),
            "AUTH_METHOD_ROLES"
        );
    }

    #[cfg(feature = "oidc")]
    #[test]
    fn oidc_configuration_errors_name_the_variable() {
        assert_eq!(error_variable(&[("AUTH_MODE", "oidc")]), "AUTH_MODE");
        assert_eq!(
            error_variable(&[("OIDC_CONFIG", "{not json")]),
            "OIDC_CONFIG"
        );
        assert_eq!(
            error_variable(&[("OIDC_CONFIG", r#"{"issuers":[]}"#)]),
            "OIDC_CONFIG"
        );
    }

    #[cfg(all(feature = "oidc", feature = "hmac"))]
    #[test]
    fn the_hmac_issuer_may_not_be_an_oidc_issuer() {
        let oidc = r#"{"issuers":[{"issuer":"https://idp.example","audience":"api","jwks_uri":"http://127.0.0.1:9/jwks"}]}"#;
        let vars = [
            ("OIDC_CONFIG", oidc),
            ("HMAC_SECRET", SECRET),
            ("HMAC_ISSUER", "https://idp.example"),
        ];
        assert_eq!(error_variable(&vars), "HMAC_ISSUER");
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
            .into_layer()
            .unwrap();
        assert_eq!(layer.mode(), "api_key,hmac");
        assert!(layer.token_exchange().is_none());
        let layer = config(&[
            ("AUTH_MODE", "hmac,api_key"),
            ("API_KEYS", K1),
            ("HMAC_SECRET", SECRET),
        ])
        .unwrap()
        .into_layer()
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
        .into_layer()
        .unwrap();
        assert!(layer.token_exchange().is_some());
        let mut exempt = layer.exemptions();
        exempt.sort();
        assert_eq!(exempt, [tower_auth_hmac::TOKEN_PATH, "/ping"]);
    }

    #[test]
    fn errors_never_quote_a_key() {
        let weak = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let e = config(&[("API_KEYS", &format!("{K1},{weak}"))]).unwrap_err();
        assert!(
            !e.to_string().contains(weak) && !e.to_string().contains(K1),
            "{e}"
        );
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
            .into_layer()
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
            .into_layer()
            .unwrap();
        let mut paths = layer.exemptions();
        paths.sort();
        assert_eq!(paths, ["/ping", "/version"]);
        assert!(
            config(&[("API_KEYS", K1), ("AUTH_PUBLIC_PATHS", "")])
                .unwrap()
                .into_layer()
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
            .into_layer()
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

    #[test]
    fn admins_from_json_or_list() {
        assert_eq!(parse_list("V", r#"["a","b"]"#).unwrap(), ["a", "b"]);
        assert_eq!(parse_list("V", " a, ,b ").unwrap(), ["a", "b"]);
    }
}
