//! Reading the layer's environment variables, one reader per concern. Each error names the
//! full (prefixed) variable and never quotes a secret.

use std::path::PathBuf;
use std::time::Duration;

use http::HeaderName;
use http::header::AUTHORIZATION;
use tower_auth_core::{
    Admins, ApiKeySet, Cidr, ConfigError, DEFAULT_API_KEY_HEADER, ForwardedHeader,
};

use crate::config::AuthenticatorKind;
use crate::limits::LimitConfig;
use crate::reload::KeyFile;
use crate::rules::{Rules, parse_method_roles};

/// The variables, read through one function with every name prefixed.
pub(crate) struct Vars<'a> {
    pub(crate) prefix: &'a str,
    pub(crate) get: &'a dyn Fn(&str) -> Option<String>,
}

impl Vars<'_> {
    /// The full name of `name`, and its value.
    pub(crate) fn read(&self, name: &str) -> (String, Option<String>) {
        let full = format!("{}{name}", self.prefix);
        let value = (self.get)(&full);
        (full, value)
    }

    pub(crate) fn is_set(&self, name: &str) -> bool {
        self.read(name).1.is_some()
    }

    pub(crate) fn name(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

/// `API_KEYS` inline, or `API_KEYS_FILE` with what it held when read.
#[derive(Debug)]
pub(crate) enum Keys {
    Inline(ApiKeySet),
    File {
        file: KeyFile,
        set: ApiKeySet,
        digest: [u8; 32],
    },
}

/// `AUTH_ADMINS`: a JSON array or comma list of entries (see [`Admins`]), and the full name
/// of the variable.
pub(crate) fn admins(vars: &Vars<'_>) -> Result<(String, Admins), ConfigError> {
    match vars.read("AUTH_ADMINS") {
        (name, Some(value)) => {
            let admins = Admins::parse(&name, parse_list(&name, &value)?)?;
            Ok((name, admins))
        }
        (name, None) => Ok((name, Admins::default())),
    }
}

/// An `ISSUER_URL#SUBJECT` entry of `AUTH_ADMINS` must name a configured OIDC issuer exactly:
/// one with a trailing slash too many would never match, silently.
pub(crate) fn check_admin_issuers(
    vars: &Vars<'_>,
    admins: &Admins,
    oidc_issuers: &[&str],
) -> Result<(), ConfigError> {
    match admins
        .issuers()
        .into_iter()
        .find(|issuer| !oidc_issuers.contains(issuer))
    {
        Some(issuer) => Err(ConfigError::new(
            vars.name("AUTH_ADMINS"),
            format!(
                "names issuer {issuer:?}, which {} does not configure (issuers match exactly)",
                vars.name("OIDC_CONFIG")
            ),
        )),
        None => Ok(()),
    }
}

/// `API_KEY_HEADER`, default `X-API-Key`; never `Authorization`.
pub(crate) fn api_key_header(vars: &Vars<'_>) -> Result<HeaderName, ConfigError> {
    let (name, value) = vars.read("API_KEY_HEADER");
    let Some(value) = value else {
        return Ok(HeaderName::from_static(DEFAULT_API_KEY_HEADER));
    };
    match HeaderName::try_from(value.trim()) {
        Ok(header) if header != AUTHORIZATION => Ok(header),
        Ok(_) => Err(ConfigError::new(
            name,
            "cannot be Authorization, which always carries bearer tokens",
        )),
        Err(_) => Err(ConfigError::new(name, "is not a valid header name")),
    }
}

/// `AUTH_STRIP_HEADERS`: more client-sent identity headers to remove, comma-separated (empty
/// entries are ignored). Never `Authorization` or the API-key header.
pub(crate) fn strip_headers(
    vars: &Vars<'_>,
    api_key_header: &HeaderName,
) -> Result<Vec<HeaderName>, ConfigError> {
    let (name, value) = vars.read("AUTH_STRIP_HEADERS");
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    value
        .split(',')
        .map(str::trim)
        .enumerate()
        .filter(|(_, entry)| !entry.is_empty())
        .map(|(i, entry)| match HeaderName::try_from(entry) {
            Ok(header) if header == AUTHORIZATION || header == *api_key_header => {
                Err(ConfigError::new(
                    &name,
                    format!(
                        "entry {}: {header} carries credentials and cannot be stripped",
                        i + 1
                    ),
                ))
            }
            Ok(header) => Ok(header),
            Err(_) => Err(ConfigError::new(
                &name,
                format!("entry {} is not a valid header name", i + 1),
            )),
        })
        .collect()
}

/// `API_KEYS` or `API_KEYS_FILE` (not both); the file is read now.
pub(crate) fn api_keys(vars: &Vars<'_>, admins: &Admins) -> Result<Option<Keys>, ConfigError> {
    let (keys_var, inline) = vars.read("API_KEYS");
    let (file_var, file) = vars.read("API_KEYS_FILE");
    match (inline, file) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            &keys_var,
            format!("set only one of {keys_var} and {file_var}"),
        )),
        (Some(value), None) => Ok(Some(Keys::Inline(ApiKeySet::parse(
            &keys_var, &value, admins,
        )?))),
        (None, Some(path)) => {
            let file = KeyFile {
                path: PathBuf::from(path),
                variable: file_var,
            };
            let (set, digest) = file.load(admins)?;
            Ok(Some(Keys::File { file, set, digest }))
        }
        (None, None) => Ok(None),
    }
}

/// `OIDC_CONFIG` and `OIDC_CA_FILE`, parsed and the CA files read (the issuers are contacted
/// only when the layer is built).
#[cfg(feature = "oidc")]
pub(crate) fn oidc(vars: &Vars<'_>) -> Result<Option<tower_auth_oidc::OidcConfig>, ConfigError> {
    tower_auth_oidc::OidcConfig::from_lookup(vars.prefix, vars.get)
}

/// `AUTH_DPOP_ORIGIN`: the externally visible scheme and host DPoP proofs name in `htu`,
/// checked against the OIDC configuration it applies to.
#[cfg(feature = "oidc")]
pub(crate) fn dpop_origin(
    vars: &Vars<'_>,
    oidc: Option<&tower_auth_oidc::OidcConfig>,
) -> Result<Option<String>, ConfigError> {
    let (name, Some(origin)) = vars.read("AUTH_DPOP_ORIGIN") else {
        return Ok(None);
    };
    let Some(oidc) = oidc else {
        return Err(ConfigError::new(
            name,
            format!("is set but {} is not", vars.name("OIDC_CONFIG")),
        ));
    };
    dpop_verifier(oidc, Some(&origin), &name)?;
    Ok(Some(origin))
}

/// The DPoP verifier for `oidc`'s issuers; errors name `variable`.
#[cfg(feature = "oidc")]
pub(crate) fn dpop_verifier(
    oidc: &tower_auth_oidc::OidcConfig,
    origin: Option<&str>,
    variable: &str,
) -> Result<tower_auth_oidc::DpopVerifier, ConfigError> {
    dpop_verifier_with(oidc, origin, variable, None)
}

/// [`dpop_verifier`] with the key of its nonces (`AUTH_DPOP_NONCE_KEY`).
#[cfg(feature = "oidc")]
pub(crate) fn dpop_verifier_with(
    oidc: &tower_auth_oidc::OidcConfig,
    origin: Option<&str>,
    variable: &str,
    nonce_key: Option<&(String, tower_auth_core::Secret)>,
) -> Result<tower_auth_oidc::DpopVerifier, ConfigError> {
    let mut builder = tower_auth_oidc::DpopVerifier::builder(oidc);
    if let Some(origin) = origin {
        builder = builder.origin(origin);
    }
    if let Some((_, key)) = nonce_key {
        builder = builder.nonce_key(key.clone());
    }
    builder.build().map_err(|e| {
        let variable = match nonce_key {
            Some((name, _)) if e.variable() == "AUTH_DPOP_NONCE_KEY" => name.as_str(),
            _ => variable,
        };
        ConfigError::new(variable, e.message())
    })
}

/// `AUTH_DPOP_NONCE_KEY`: the key of the DPoP nonces this service issues, shared by its
/// replicas (at least 32 characters, checked for strength). Only with `OIDC_CONFIG`.
#[cfg(feature = "oidc")]
pub(crate) fn dpop_nonce_key(
    vars: &Vars<'_>,
    oidc: Option<&tower_auth_oidc::OidcConfig>,
) -> Result<Option<(String, tower_auth_core::Secret)>, ConfigError> {
    let (name, Some(value)) = vars.read("AUTH_DPOP_NONCE_KEY") else {
        return Ok(None);
    };
    let key = tower_auth_core::Secret::from(value);
    let Some(oidc) = oidc else {
        return Err(ConfigError::new(
            name,
            format!("is set but {} is not", vars.name("OIDC_CONFIG")),
        ));
    };
    let key = (name, key);
    dpop_verifier_with(oidc, None, "OIDC_CONFIG", Some(&key))?;
    Ok(Some(key))
}

/// What an operator should know of the DPoP settings at start: proofs name the host the
/// client chose without `AUTH_DPOP_ORIGIN`, and nonces without `AUTH_DPOP_NONCE_KEY` are
/// good on this process only.
#[cfg(feature = "oidc")]
pub(crate) fn warn_dpop(verifier: &tower_auth_oidc::DpopVerifier, origin_set: bool, prefix: &str) {
    if !origin_set && verifier.configured() {
        tracing::warn!(
            target: "auth::config",
            variable = format!("{prefix}AUTH_DPOP_ORIGIN"),
            "DPoP proofs are checked against the Host each request names: set AUTH_DPOP_ORIGIN to the public origin so that a proof made for another service is refused here",
        );
    }
    if verifier.nonce().is_some() && !verifier.nonces_shared() {
        tracing::warn!(
            target: "auth::config",
            variable = format!("{prefix}AUTH_DPOP_NONCE_KEY"),
            "DPoP nonces are signed with a random key of this process: other replicas and this one after a restart refuse them, and clients are asked for a new nonce each time; set AUTH_DPOP_NONCE_KEY on every replica",
        );
    }
}

/// The HMAC parts: the authenticator's configuration, its revocation list and, with
/// `AUTH_TOKEN_CLIENTS`, the exchange.
#[cfg(feature = "hmac")]
#[derive(Debug)]
pub(crate) struct Hmac {
    pub(crate) config: tower_auth_hmac::HmacConfig,
    pub(crate) exchange: Option<tower_auth_hmac::ExchangeEndpoint>,
    /// Kept in `AUTH_REVOCATION_FILE` when that is set.
    pub(crate) revocations: tower_auth_hmac::RevocationList,
}

/// `HMAC_SECRET` and friends, `AUTH_TOKEN_CLIENTS` and `AUTH_REVOCATION_FILE`, which need
/// them (the endpoint's reader refuses the clients without `HMAC_SECRET`). The revocation
/// file is read here, at start: unreadable or malformed, it refuses start-up.
#[cfg(feature = "hmac")]
pub(crate) fn hmac(vars: &Vars<'_>) -> Result<Option<Hmac>, ConfigError> {
    let config = tower_auth_hmac::HmacConfig::from_lookup(vars.prefix, vars.get)?;
    let exchange = tower_auth_hmac::ExchangeEndpoint::from_lookup(vars.prefix, vars.get)?;
    let (name, file) = vars.read("AUTH_REVOCATION_FILE");
    let Some(config) = config else {
        return match file {
            Some(_) => Err(ConfigError::new(
                name,
                format!(
                    "needs {} (revocations are of role tokens)",
                    vars.name("HMAC_SECRET")
                ),
            )),
            None => Ok(None),
        };
    };
    let clock = config.clock().clone();
    let revocations = match file {
        None => tower_auth_hmac::RevocationList::new(clock),
        Some(path) if path.trim().is_empty() => {
            return Err(ConfigError::new(name, "is empty: give a file path"));
        }
        Some(path) => tower_auth_hmac::RevocationList::open(&path, clock).map_err(|e| {
            ConfigError::new(&name, format!("cannot use revocation file {path}: {e}"))
        })?,
    };
    Ok(Some(Hmac {
        config,
        exchange,
        revocations,
    }))
}

/// `AUTH_REDIS_URL`, `AUTH_REDIS_FAILURE` and `AUTH_REDIS_MAX_STALE_SECS`: shared
/// revocations of role tokens, so `HMAC_SECRET` is needed.
#[cfg(feature = "redis")]
pub(crate) fn redis(
    vars: &Vars<'_>,
    hmac: Option<&Hmac>,
) -> Result<Option<tower_auth_hmac::RedisSettings>, ConfigError> {
    let settings = tower_auth_hmac::RedisSettings::from_lookup(vars.prefix, vars.get)?;
    // With `oidc`, replicas share the memory of DPoP proofs too (`dpop_replay_redis`).
    let shares_proofs = cfg!(feature = "oidc") && vars.is_set("OIDC_CONFIG");
    if settings.is_some() && hmac.is_none() && !shares_proofs {
        return Err(ConfigError::new(
            vars.name("AUTH_REDIS_URL"),
            format!(
                "needs {} (what replicas share is the revocation list of role tokens)",
                vars.name("HMAC_SECRET")
            ),
        ));
    }
    Ok(settings)
}

/// Without the `redis` feature, its variables refuse start-up rather than being ignored:
/// replicas would silently stop sharing revocations.
#[cfg(not(feature = "redis"))]
pub(crate) fn redis(vars: &Vars<'_>) -> Result<(), ConfigError> {
    for var in [
        "AUTH_REDIS_URL",
        "AUTH_REDIS_FAILURE",
        "AUTH_REDIS_MAX_STALE_SECS",
        "AUTH_REDIS_CA_FILE",
    ] {
        if vars.is_set(var) {
            return Err(ConfigError::new(
                vars.name(var),
                "is set, but this build of tower-auth leaves out its `redis` cargo feature (revocations shared between replicas): enable the feature or unset the variable",
            ));
        }
    }
    Ok(())
}

/// Role tokens and OIDC tokens must never be confused: `HMAC_ISSUER` is no OIDC issuer.
#[cfg(all(feature = "oidc", feature = "hmac"))]
pub(crate) fn check_issuers_apart(
    vars: &Vars<'_>,
    oidc: Option<&tower_auth_oidc::OidcConfig>,
    hmac: Option<&Hmac>,
) -> Result<(), ConfigError> {
    if let (Some(oidc), Some(hmac)) = (oidc, hmac) {
        let issuer = hmac.config.issuer_name();
        if oidc.issuers().any(|i| i == issuer) {
            return Err(ConfigError::new(
                vars.name("HMAC_ISSUER"),
                format!(
                    "equals an issuer of {}: role tokens and OIDC tokens must never be confused",
                    vars.name("OIDC_CONFIG")
                ),
            ));
        }
    }
    Ok(())
}

/// Which authenticators the variables configure, each with whether it can be built.
pub(crate) struct Available {
    pub(crate) api_key: bool,
    pub(crate) oidc: bool,
    pub(crate) hmac: bool,
}

/// `AUTH_MODE`: the chain in order, or `None` when authentication is off. Unset: the
/// authenticators whose variables are set, in the order api_key, oidc, hmac.
pub(crate) fn mode(
    vars: &Vars<'_>,
    available: &Available,
) -> Result<Option<Vec<AuthenticatorKind>>, ConfigError> {
    let (mode_var, mode) = vars.read("AUTH_MODE");
    let kinds = match mode.as_deref().map(str::trim) {
        Some("none") => return Ok(None),
        Some(words) => {
            let mut kinds = Vec::new();
            for word in words.split(',').map(str::trim) {
                let kind = AuthenticatorKind::parse(word).ok_or_else(|| {
                    ConfigError::new(
                        &mode_var,
                        format!("`{word}` is not one of api_key, oidc, hmac, none"),
                    )
                })?;
                if kinds.contains(&kind) {
                    return Err(ConfigError::new(
                        &mode_var,
                        format!("`{word}` is named twice"),
                    ));
                }
                kinds.push(kind);
            }
            kinds
        }
        None => [
            (AuthenticatorKind::ApiKey, available.api_key),
            (AuthenticatorKind::Oidc, vars.is_set("OIDC_CONFIG")),
            (AuthenticatorKind::Hmac, vars.is_set("HMAC_SECRET")),
        ]
        .into_iter()
        .filter_map(|(kind, on)| on.then_some(kind))
        .collect(),
    };
    for kind in &kinds {
        check_available(vars, &mode_var, *kind, available)?;
    }
    Ok((!kinds.is_empty()).then_some(kinds))
}

/// An error unless `kind`, named in the chain, has its variables and its crate feature.
fn check_available(
    vars: &Vars<'_>,
    mode_var: &str,
    kind: AuthenticatorKind,
    available: &Available,
) -> Result<(), ConfigError> {
    let missing = |what: &str| {
        Err(ConfigError::new(
            mode_var,
            format!("names {} but {what} is not set", kind.name()),
        ))
    };
    match kind {
        AuthenticatorKind::ApiKey if !available.api_key => missing(&format!(
            "neither {} nor API_KEYS_FILE",
            vars.name("API_KEYS")
        )),
        AuthenticatorKind::Oidc if !cfg!(feature = "oidc") => Err(ConfigError::new(
            vars.name("OIDC_CONFIG"),
            "OIDC needs tower-auth's `oidc` feature, which this build leaves out",
        )),
        AuthenticatorKind::Oidc if !available.oidc => missing(&vars.name("OIDC_CONFIG")),
        AuthenticatorKind::Hmac if !cfg!(feature = "hmac") => Err(ConfigError::new(
            vars.name("HMAC_SECRET"),
            "role tokens need tower-auth's `hmac` feature, which this build leaves out",
        )),
        AuthenticatorKind::Hmac if !available.hmac => missing(&vars.name("HMAC_SECRET")),
        _ => Ok(()),
    }
}

/// `AUTH_PUBLIC_PATHS` (replacing the default exemptions) and `AUTH_METHOD_ROLES`.
pub(crate) fn rules(vars: &Vars<'_>) -> Result<Rules, ConfigError> {
    let mut rules = Rules::default();
    if let (name, Some(paths)) = vars.read("AUTH_PUBLIC_PATHS") {
        rules.clear_exemptions();
        for (i, path) in paths
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .enumerate()
        {
            rules
                .exempt(path)
                .map_err(|e| ConfigError::new(&name, format!("entry #{}: {e}", i + 1)))?;
        }
    }
    if let (name, Some(roles)) = vars.read("AUTH_METHOD_ROLES") {
        parse_method_roles(&name, &roles, &mut rules)?;
    }
    Ok(rules)
}

/// Where the failure limit can go up to: counts are 24 bits, windows at most a day.
pub(crate) const MAX_FAILURE_LIMIT: u32 = 1_000_000;
pub(crate) const MAX_FAILURE_WINDOW_SECS: u64 = 86_400;

/// `AUTH_FAILURE_LIMIT` (`N/SECONDS`), and the source of a request: `AUTH_TRUSTED_PROXIES`
/// and `AUTH_TRUSTED_PROXY_HEADER` (which the token exchange reads too).
pub(crate) fn source_limits(vars: &Vars<'_>) -> Result<LimitConfig, ConfigError> {
    let mut config = LimitConfig::default();
    if let (name, Some(value)) = vars.read("AUTH_FAILURE_LIMIT") {
        let parsed = value.trim().split_once('/').and_then(|(n, secs)| {
            let n = n.trim().parse::<u32>().ok()?;
            let secs = secs.trim().parse::<u64>().ok()?;
            ((1..=MAX_FAILURE_LIMIT).contains(&n) && (1..=MAX_FAILURE_WINDOW_SECS).contains(&secs))
                .then(|| (n, Duration::from_secs(secs)))
        });
        config.failure_limit = Some(parsed.ok_or_else(|| {
            ConfigError::new(
                &name,
                format!(
                    "must be FAILURES/SECONDS, e.g. 20/60: 1 to {MAX_FAILURE_LIMIT} failures in 1 to {MAX_FAILURE_WINDOW_SECS} seconds"
                ),
            )
        })?);
    }
    if let (name, Some(value)) = vars.read("AUTH_TRUSTED_PROXIES") {
        config.trusted_proxies = Cidr::parse_all(value.split(','))
            .map_err(|i| {
                ConfigError::new(
                    &name,
                    format!("entry #{} is not an address or CIDR block", i + 1),
                )
            })?
            .into();
    }
    if let (name, Some(value)) = vars.read("AUTH_TRUSTED_PROXY_HEADER") {
        config.forwarded_header = ForwardedHeader::parse(&value)
            .ok_or_else(|| ConfigError::new(&name, "must be `x-forwarded-for` or `forwarded`"))?;
    }
    if let (name, Some(value)) = vars.read("AUTH_CLIENT_CERT_HEADER") {
        // Read only from trusted proxies: without any, the header could never count.
        if config.trusted_proxies.is_empty() {
            return Err(ConfigError::new(&name, "needs AUTH_TRUSTED_PROXIES"));
        }
        config.client_cert_header = Some(
            tower_auth_core::ClientCertHeader::parse(&value)
                .ok_or_else(|| ConfigError::new(&name, "is not a header name"))?,
        );
    }
    Ok(config)
}

/// A switch: `true` or `false`, in any case.
pub(crate) fn flag(variable: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim() {
        v if v.eq_ignore_ascii_case("true") => Ok(true),
        v if v.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(ConfigError::new(variable, "must be true or false")),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AuthConfig;
    use std::collections::HashMap;

    const K1: &str = "k7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA";

    #[cfg(feature = "hmac")]
    const SECRET: &str = "Zx8Qm2VtP9rK4LwN8bYc3HdF6sJg5KeA-hmac";

    fn error_variable(vars: &[(&str, &str)]) -> String {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        AuthConfig::from_lookup("", |name| vars.get(name).cloned())
            .unwrap_err()
            .variable()
            .to_owned()
    }

    #[test]
    fn admins_from_json_or_list() {
        assert_eq!(parse_list("V", r#"["a","b"]"#).unwrap(), ["a", "b"]);
        assert_eq!(parse_list("V", " a, ,b ").unwrap(), ["a", "b"]);
    }

    /// SECURITY.md G10.
    #[test]
    fn failure_limit_and_proxies_from_the_environment() {
        let config = |vars: &[(&str, &str)]| {
            let vars: HashMap<&str, &str> = vars.iter().copied().collect();
            let get = |name: &str| vars.get(name).map(|v| (*v).to_owned());
            source_limits(&Vars {
                prefix: "",
                get: &get,
            })
        };
        let limits = config(&[
            ("AUTH_FAILURE_LIMIT", " 20/60 "),
            ("AUTH_TRUSTED_PROXIES", "10.0.0.0/8, ::1,"),
            ("AUTH_TRUSTED_PROXY_HEADER", "Forwarded"),
        ])
        .unwrap();
        assert_eq!(limits.failure_limit, Some((20, Duration::from_secs(60))));
        assert_eq!(limits.trusted_proxies.len(), 2);
        assert_eq!(limits.forwarded_header, ForwardedHeader::Forwarded);
        assert_eq!(config(&[]).unwrap().failure_limit, None);
        for bad in [
            "20",
            "0/60",
            "20/0",
            "20/86401",
            "1000001/60",
            "-1/60",
            "20/60/1",
            "x/y",
            "",
        ] {
            let error = config(&[("AUTH_FAILURE_LIMIT", bad)]).unwrap_err();
            assert_eq!(error.variable(), "AUTH_FAILURE_LIMIT", "{bad:?}");
        }
        let error = config(&[("AUTH_TRUSTED_PROXIES", "10.0.0.0/8,proxy.internal")]).unwrap_err();
        assert_eq!(error.variable(), "AUTH_TRUSTED_PROXIES");
        assert!(error.message().contains("#2"), "{error}");
        let error = config(&[("AUTH_TRUSTED_PROXY_HEADER", "x-real-ip")]).unwrap_err();
        assert_eq!(error.variable(), "AUTH_TRUSTED_PROXY_HEADER");
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
        // SECURITY.md G1: a qualified entry with an empty name; an issuer nobody configures.
        assert_eq!(
            error_variable(&[("API_KEYS", K1), ("AUTH_ADMINS", "ops,api_key:")]),
            "AUTH_ADMINS"
        );
        assert_eq!(
            error_variable(&[("API_KEYS", K1), ("AUTH_ADMINS", "https://idp.example#u-1")]),
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

    /// SECURITY.md G3.
    #[test]
    fn strip_headers_are_header_names_that_carry_no_credential() {
        let read = |value: &str, api_key_header: &str| {
            let vars = HashMap::from([("P_AUTH_STRIP_HEADERS".to_owned(), value.to_owned())]);
            let get = |name: &str| vars.get(name).cloned();
            strip_headers(
                &Vars {
                    prefix: "P_",
                    get: &get,
                },
                &HeaderName::try_from(api_key_header).unwrap(),
            )
        };
        let names = read(" X-Proxy-User, ,x-team ,", "x-api-key").unwrap();
        assert_eq!(names, ["x-proxy-user", "x-team"]);
        for (value, api_key_header, shown) in [
            (
                "x-ok,bad header",
                "x-api-key",
                "entry 2 is not a valid header name",
            ),
            (
                "x-ok,x-é",
                "x-api-key",
                "entry 2 is not a valid header name",
            ),
            (
                "Authorization",
                "x-api-key",
                "entry 1: authorization carries",
            ),
            ("x-ok,X-Key", "x-key", "entry 2: x-key carries"),
        ] {
            let error = read(value, api_key_header).unwrap_err();
            assert_eq!(error.variable(), "P_AUTH_STRIP_HEADERS");
            assert!(error.to_string().contains(shown), "{error}");
        }
        assert_eq!(
            error_variable(&[("API_KEYS", K1), ("AUTH_STRIP_HEADERS", "a b")]),
            "AUTH_STRIP_HEADERS"
        );
        assert_eq!(
            error_variable(&[
                ("API_KEYS", K1),
                ("API_KEY_HEADER", "x-key"),
                ("AUTH_STRIP_HEADERS", "x-key")
            ]),
            "AUTH_STRIP_HEADERS"
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

    #[test]
    fn authenticator_kinds_are_named_as_in_auth_mode() {
        for kind in [
            AuthenticatorKind::ApiKey,
            AuthenticatorKind::Oidc,
            AuthenticatorKind::Hmac,
        ] {
            assert_eq!(AuthenticatorKind::parse(kind.name()), Some(kind));
        }
    }

    #[test]
    fn errors_never_quote_a_key() {
        let weak = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let vars = HashMap::from([("API_KEYS".to_owned(), format!("{K1},{weak}"))]);
        let e = AuthConfig::from_lookup("", |name| vars.get(name).cloned()).unwrap_err();
        assert!(
            !e.to_string().contains(weak) && !e.to_string().contains(K1),
            "{e}"
        );
    }
}
