//! The HMAC settings: secrets (current and previous), issuer, audience, leeway and clock.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tower_auth_core::{Clock, ConfigError, Secret};

use crate::mac::MacKey;

/// The issuer (`iss`) of role tokens unless `HMAC_ISSUER` says otherwise.
pub const DEFAULT_ISSUER: &str = "auth-hmac";

/// The clock leeway for `exp`, `nbf` and `iat` unless `AUTH_LEEWAY_SECS` says otherwise.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);

/// The shortest HMAC secret accepted, in bytes (RFC 7518 section 3.2: a key at least as
/// long as the SHA-256 output).
pub const MIN_SECRET_LEN: usize = 32;

/// The largest leeway accepted: past this, expiry would mean little.
const MAX_LEEWAY_SECS: u64 = 3600;

/// How role tokens are signed and checked.
///
/// Built in code with [`HmacConfig::new`] and its chained setters, or from the environment
/// with [`HmacConfig::from_vars`]. `Debug` never shows a secret.
///
/// ```
/// use std::time::Duration;
/// use tower_auth_hmac::HmacConfig;
///
/// let config = HmacConfig::new("0123456789abcdef0123456789abcdef-current")?
///     .previous("0123456789abcdef0123456789abcdef-previous")?
///     .issuer("ops-tokens")
///     .audience("metrics")
///     .leeway(Duration::from_secs(30));
/// assert_eq!(config.issuer_name(), "ops-tokens");
/// assert!(!format!("{config:?}").contains("current"));
/// assert!(HmacConfig::new("too short").is_err());
/// # Ok::<(), tower_auth_core::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct HmacConfig {
    pub(crate) current: MacKey,
    pub(crate) previous: Option<MacKey>,
    pub(crate) issuer: Arc<str>,
    pub(crate) audience: Option<Arc<str>>,
    pub(crate) leeway_secs: u64,
    pub(crate) clock: Clock,
}

fn key(variable: &str, secret: &Secret) -> Result<MacKey, ConfigError> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(ConfigError::new(
            variable,
            format!("must be at least {MIN_SECRET_LEN} bytes (for example `openssl rand -hex 32`)"),
        ));
    }
    Ok(MacKey::new(secret.expose_secret()))
}

impl HmacConfig {
    /// A configuration signing with `secret`, issuer [`DEFAULT_ISSUER`], no audience,
    /// [`DEFAULT_LEEWAY`] and the system clock.
    ///
    /// # Errors
    /// A secret shorter than [`MIN_SECRET_LEN`] bytes.
    pub fn new(secret: impl Into<Secret>) -> Result<Self, ConfigError> {
        Self::with_secret("HMAC_SECRET", &secret.into())
    }

    fn with_secret(variable: &str, secret: &Secret) -> Result<Self, ConfigError> {
        Ok(Self {
            current: key(variable, secret)?,
            previous: None,
            issuer: DEFAULT_ISSUER.into(),
            audience: None,
            leeway_secs: DEFAULT_LEEWAY.as_secs(),
            clock: Clock::system(),
        })
    }

    /// Also accepts tokens signed with `secret`, the one being rotated out. New tokens are
    /// always signed with the current secret.
    ///
    /// # Errors
    /// A secret shorter than [`MIN_SECRET_LEN`] bytes.
    pub fn previous(mut self, secret: impl Into<Secret>) -> Result<Self, ConfigError> {
        self.previous = Some(key("HMAC_SECRET_PREVIOUS", &secret.into())?);
        Ok(self)
    }

    /// Sets the issuer (`iss`) that tokens carry and that decides which tokens are ours.
    /// It must differ from every OIDC issuer in the same chain.
    #[must_use]
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into().into();
        self
    }

    /// Requires tokens to carry this audience (`aud`, a string or an array containing it).
    /// Without an audience, tokens that carry any `aud` are refused, as in PyJWT and
    /// jsonwebtoken: they were meant for a service that knows its own name.
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into().into());
        self
    }

    /// Sets the clock leeway for `exp`, `nbf` and `iat` (whole seconds; at most one hour).
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway_secs = leeway.as_secs().min(MAX_LEEWAY_SECS);
        self
    }

    /// Sets the clock used for `iat`, `exp` and `nbf` (a [`Clock::manual`] in tests).
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The issuer tokens carry.
    pub fn issuer_name(&self) -> &str {
        &self.issuer
    }

    /// The audience tokens must carry, if one is set.
    pub fn audience_name(&self) -> Option<&str> {
        self.audience.as_deref()
    }

    /// The clock leeway.
    pub fn leeway_duration(&self) -> Duration {
        Duration::from_secs(self.leeway_secs)
    }

    /// Whether a previous secret is accepted too.
    pub fn has_previous_secret(&self) -> bool {
        self.previous.is_some()
    }

    /// The configured clock.
    pub fn clock_source(&self) -> &Clock {
        &self.clock
    }

    /// Reads the configuration from variables named with `prefix`, through `get`
    /// (`std::env::var(name).ok()` for the process environment):
    ///
    /// | variable | meaning |
    /// |---|---|
    /// | `{prefix}HMAC_SECRET` | the signing secret, at least 32 bytes; unset = HMAC tokens are off (`Ok(None)`) |
    /// | `{prefix}HMAC_SECRET_PREVIOUS` | optional: a secret being rotated out, still accepted |
    /// | `{prefix}HMAC_ISSUER` | optional issuer, default [`DEFAULT_ISSUER`] |
    /// | `{prefix}HMAC_AUDIENCE` | optional audience that tokens must carry |
    /// | `{prefix}AUTH_LEEWAY_SECS` | optional clock leeway in seconds (0 to 3600), default 60 |
    ///
    /// # Errors
    /// A [`ConfigError`] naming the full variable (prefix included) and never its value:
    /// a secret under 32 bytes (an empty one included), an empty issuer or audience, a
    /// leeway that is not a whole number of seconds up to 3600, or `HMAC_SECRET_PREVIOUS`
    /// without `HMAC_SECRET`.
    pub fn from_vars(
        prefix: &str,
        get: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, ConfigError> {
        let name = |suffix: &str| format!("{prefix}{suffix}");
        let Some(secret) = get(&name("HMAC_SECRET")) else {
            if get(&name("HMAC_SECRET_PREVIOUS")).is_some() {
                return Err(ConfigError::new(
                    name("HMAC_SECRET_PREVIOUS"),
                    format!("is set but {} is not", name("HMAC_SECRET")),
                ));
            }
            return Ok(None);
        };
        let mut config = Self::with_secret(&name("HMAC_SECRET"), &Secret::from(secret))?;
        if let Some(previous) = get(&name("HMAC_SECRET_PREVIOUS")) {
            config.previous = Some(key(&name("HMAC_SECRET_PREVIOUS"), &Secret::from(previous))?);
        }
        if let Some(issuer) = get(&name("HMAC_ISSUER")) {
            config.issuer = non_empty(&name("HMAC_ISSUER"), issuer)?.into();
        }
        if let Some(audience) = get(&name("HMAC_AUDIENCE")) {
            config.audience = Some(non_empty(&name("HMAC_AUDIENCE"), audience)?.into());
        }
        if let Some(leeway) = get(&name("AUTH_LEEWAY_SECS")) {
            config.leeway_secs = leeway
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|&secs| secs <= MAX_LEEWAY_SECS)
                .ok_or_else(|| {
                    ConfigError::new(
                        name("AUTH_LEEWAY_SECS"),
                        format!("must be a whole number of seconds from 0 to {MAX_LEEWAY_SECS}"),
                    )
                })?;
        }
        Ok(Some(config))
    }
}

fn non_empty(variable: &str, value: String) -> Result<String, ConfigError> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.chars().any(char::is_control) {
        return Err(ConfigError::new(
            variable,
            "must be a non-empty value without control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

impl fmt::Debug for HmacConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacConfig")
            .field("secret", &"[redacted]")
            .field(
                "previous_secret",
                &self.previous.as_ref().map(|_| "[redacted]"),
            )
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_secs", &self.leeway_secs)
            .field("clock", &self.clock)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const SECRET: &str = "s3cr3t-v4lue-0123456789abcdef-0123";
    const OLD: &str = "0ld-s3cr3t-v4lue-0123456789abcdef-9";

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn unset_secret_means_off() {
        assert!(HmacConfig::from_vars("", &vars(&[])).unwrap().is_none());
        assert!(
            HmacConfig::from_vars("APP_", &vars(&[("HMAC_SECRET", SECRET)]))
                .unwrap()
                .is_none(),
            "the prefix applies to every name"
        );
    }

    #[test]
    fn reads_every_variable_with_the_prefix() {
        let config = HmacConfig::from_vars(
            "APP_",
            &vars(&[
                ("APP_HMAC_SECRET", SECRET),
                ("APP_HMAC_SECRET_PREVIOUS", OLD),
                ("APP_HMAC_ISSUER", "ops"),
                ("APP_HMAC_AUDIENCE", "metrics"),
                ("APP_AUTH_LEEWAY_SECS", "15"),
            ]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(config.issuer_name(), "ops");
        assert_eq!(config.audience_name(), Some("metrics"));
        assert_eq!(config.leeway_duration(), Duration::from_secs(15));
        assert!(config.has_previous_secret());

        let defaults = HmacConfig::from_vars("", &vars(&[("HMAC_SECRET", SECRET)]))
            .unwrap()
            .unwrap();
        assert_eq!(defaults.issuer_name(), DEFAULT_ISSUER);
        assert_eq!(defaults.audience_name(), None);
        assert_eq!(defaults.leeway_duration(), DEFAULT_LEEWAY);
        assert!(!defaults.has_previous_secret());
    }

    #[test]
    fn errors_name_the_full_variable_never_the_value() {
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
        let cases: &[Case<'_>] = &[
            (
                &[("APP_HMAC_SECRET", "short-secret")],
                "APP_HMAC_SECRET",
                "short-secret",
            ),
            (&[("APP_HMAC_SECRET", "")], "APP_HMAC_SECRET", "\u{0}"),
            (
                &[
                    ("APP_HMAC_SECRET", SECRET),
                    ("APP_HMAC_SECRET_PREVIOUS", "old-short"),
                ],
                "APP_HMAC_SECRET_PREVIOUS",
                "old-short",
            ),
            (
                &[("APP_HMAC_SECRET_PREVIOUS", OLD)],
                "APP_HMAC_SECRET_PREVIOUS",
                OLD,
            ),
            (
                &[("APP_HMAC_SECRET", SECRET), ("APP_HMAC_ISSUER", " ")],
                "APP_HMAC_ISSUER",
                SECRET,
            ),
            (
                &[("APP_HMAC_SECRET", SECRET), ("APP_HMAC_AUDIENCE", "")],
                "APP_HMAC_AUDIENCE",
                SECRET,
            ),
            (
                &[("APP_HMAC_SECRET", SECRET), ("APP_AUTH_LEEWAY_SECS", "1m")],
                "APP_AUTH_LEEWAY_SECS",
                SECRET,
            ),
            (
                &[("APP_HMAC_SECRET", SECRET), ("APP_AUTH_LEEWAY_SECS", "-1")],
                "APP_AUTH_LEEWAY_SECS",
                SECRET,
            ),
            (
                &[
                    ("APP_HMAC_SECRET", SECRET),
                    ("APP_AUTH_LEEWAY_SECS", "86400"),
                ],
                "APP_AUTH_LEEWAY_SECS",
                SECRET,
            ),
        ];
        for (pairs, variable, hidden) in cases {
            let err = HmacConfig::from_vars("APP_", &vars(pairs)).unwrap_err();
            assert_eq!(err.variable(), *variable, "{err}");
            assert!(!err.to_string().contains(hidden), "{err}");
        }
    }

    #[test]
    fn builder_checks_secret_length_and_debug_is_redacted() {
        let err = HmacConfig::new("x".repeat(MIN_SECRET_LEN - 1)).unwrap_err();
        assert_eq!(err.variable(), "HMAC_SECRET");
        let config = HmacConfig::new(SECRET)
            .unwrap()
            .previous(OLD)
            .unwrap()
            .leeway(Duration::from_secs(100_000));
        assert_eq!(
            config.leeway_duration(),
            Duration::from_secs(MAX_LEEWAY_SECS)
        );
        let shown = format!("{config:?}");
        assert!(!shown.contains(SECRET) && !shown.contains(OLD), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
        assert!(HmacConfig::new(SECRET).unwrap().previous("short").is_err());
    }
}
