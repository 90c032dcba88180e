//! The HMAC settings: secrets (current and previous), issuer, audience, leeway and clock.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tower_auth_core::{Clock, ConfigError, Secret, check_secret_strength};

use crate::mac::MacKey;

/// The issuer (`iss`) of role tokens unless `HMAC_ISSUER` says otherwise.
pub const DEFAULT_ISSUER: &str = "auth-hmac";

/// The clock leeway for `exp`, `nbf` and `iat` unless `AUTH_LEEWAY_SECS` says otherwise.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);

/// The shortest HMAC secret accepted, in bytes (RFC 7518 section 3.2: a key at least as
/// long as the SHA-256 output).
pub const MIN_SECRET_LEN: usize = 32;

/// The largest leeway accepted. `AUTH_LEEWAY_SECS` has documented 0 to 3600 since it was
/// introduced, so this bound stays (a deployment that starts today still starts); past it,
/// expiry would mean little. A larger value is a [`ConfigError`], never clamped.
pub const MAX_LEEWAY: Duration = Duration::from_secs(3600);

/// How role tokens are signed and checked.
///
/// Built in code with [`HmacConfig::builder`], or from the environment with
/// [`HmacConfig::from_env`] (and [`from_env_prefixed`](HmacConfig::from_env_prefixed),
/// [`from_lookup`](HmacConfig::from_lookup)). `Debug` never shows a secret.
///
/// ```
/// use std::time::Duration;
/// use tower_auth_hmac::HmacConfig;
///
/// let config = HmacConfig::builder("9c4e1a7f3b8d2e6a0c5f9b3d7e1a4c8f-current")
///     .previous("2b7f5d1e9a3c8e4f0a6d2c9b5e1f7a3d-previous")
///     .issuer("ops-tokens")
///     .audience("metrics")
///     .leeway(Duration::from_secs(30))
///     .build()?;
/// assert_eq!(config.issuer_name(), "ops-tokens");
/// assert!(!format!("{config:?}").contains("current"));
///
/// let refused = HmacConfig::builder("too short").build().unwrap_err();
/// assert_eq!(refused.variable(), "HMAC_SECRET");
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
    // The rules API keys follow: a repeated pattern, a run such as `abcdef` or a common word
    // makes a secret guessable however long it is. Random bytes of any kind pass.
    check_secret_strength(secret.expose_secret())
        .map_err(|weakness| ConfigError::new(variable, weakness.describe()))?;
    Ok(MacKey::new(secret.expose_secret()))
}

/// Builds an [`HmacConfig`]; see [`HmacConfig::builder`]. Setters only record values;
/// [`build`](Self::build) checks them all. `Debug` never shows a secret: both are
/// [`Secret`]s, whose own `Debug` is redacted.
#[derive(Clone, Debug)]
#[must_use]
pub struct HmacConfigBuilder {
    secret: Secret,
    previous: Option<Secret>,
    issuer: String,
    audience: Option<String>,
    leeway: Duration,
    clock: Clock,
}

impl HmacConfig {
    /// Starts a configuration signing with `secret`, with issuer [`DEFAULT_ISSUER`], no
    /// audience, [`DEFAULT_LEEWAY`] and the system clock.
    pub fn builder(secret: impl Into<Secret>) -> HmacConfigBuilder {
        HmacConfigBuilder {
            secret: secret.into(),
            previous: None,
            issuer: DEFAULT_ISSUER.into(),
            audience: None,
            leeway: DEFAULT_LEEWAY,
            clock: Clock::system(),
        }
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

    /// The clock tokens are minted and checked with.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// This configuration with `clock` (a [`Clock::manual`] in tests), for one read by
    /// [`from_env`](Self::from_env); in code, [`HmacConfigBuilder::clock`].
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Reads the process environment:
    ///
    /// | variable | meaning |
    /// |---|---|
    /// | `HMAC_SECRET` | the signing secret, at least 32 bytes and not guessable (for example `openssl rand -hex 32`); unset = HMAC tokens are off (`Ok(None)`) |
    /// | `HMAC_SECRET_PREVIOUS` | optional: a secret being rotated out, still accepted |
    /// | `HMAC_ISSUER` | optional issuer, default [`DEFAULT_ISSUER`] |
    /// | `HMAC_AUDIENCE` | optional audience that tokens must carry |
    /// | `AUTH_LEEWAY_SECS` | optional clock leeway in seconds (0 to 3600, [`MAX_LEEWAY`]), default 60 |
    ///
    /// # Errors
    /// A [`ConfigError`] naming the variable and never its value: a secret under 32 bytes
    /// (an empty one included) or of low entropy (a repeated pattern, a run such as
    /// `abcdef`, a common word such as `secret`: the rules of
    /// [`check_secret_strength`]), an empty issuer or audience, a leeway that is not a whole
    /// number of seconds up to 3600, or `HMAC_SECRET_PREVIOUS` without `HMAC_SECRET`.
    pub fn from_env() -> Result<Option<Self>, ConfigError> {
        Self::from_env_prefixed("")
    }

    /// As [`HmacConfig::from_env`], every name prefixed with `prefix` (`MYAPP_HMAC_SECRET`
    /// for `"MYAPP_"`).
    ///
    /// # Errors
    /// As [`HmacConfig::from_env`], naming the prefixed variable.
    pub fn from_env_prefixed(prefix: &str) -> Result<Option<Self>, ConfigError> {
        Self::from_lookup(prefix, |name| std::env::var(name).ok())
    }

    /// As [`HmacConfig::from_env_prefixed`], reading variables through `get`, which is
    /// called with full (prefixed) names (for tests, or another configuration store).
    ///
    /// # Errors
    /// As [`HmacConfig::from_env`], naming the prefixed variable.
    pub fn from_lookup(
        prefix: &str,
        get: impl Fn(&str) -> Option<String>,
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
        let mut builder = Self::builder(secret);
        builder.previous = get(&name("HMAC_SECRET_PREVIOUS")).map(Secret::from);
        if let Some(issuer) = get(&name("HMAC_ISSUER")) {
            builder.issuer = issuer.trim().to_owned();
        }
        if let Some(audience) = get(&name("HMAC_AUDIENCE")) {
            builder.audience = Some(audience.trim().to_owned());
        }
        if let Some(leeway) = get(&name("AUTH_LEEWAY_SECS")) {
            let secs = leeway
                .trim()
                .parse::<u64>()
                .map_err(|_| leeway_error(&name("AUTH_LEEWAY_SECS")))?;
            builder.leeway = Duration::from_secs(secs);
        }
        builder.build_named(prefix).map(Some)
    }
}

fn leeway_error(variable: &str) -> ConfigError {
    ConfigError::new(
        variable,
        format!(
            "must be a whole number of seconds from 0 to {}",
            MAX_LEEWAY.as_secs()
        ),
    )
}

impl HmacConfigBuilder {
    /// Also accepts tokens signed with `secret`, the one being rotated out. New tokens are
    /// always signed with the current secret.
    pub fn previous(mut self, secret: impl Into<Secret>) -> Self {
        self.previous = Some(secret.into());
        self
    }

    /// Sets the issuer (`iss`) that tokens carry and that decides which tokens are ours.
    /// It must differ from every OIDC issuer in the same chain.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self
    }

    /// Requires tokens to carry this audience (`aud`, a string or an array containing it).
    /// Without an audience, tokens that carry any `aud` are refused, as in PyJWT and
    /// jsonwebtoken: they were meant for a service that knows its own name.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Sets the clock leeway for `exp`, `nbf` and `iat` (whole seconds, at most
    /// [`MAX_LEEWAY`]; [`build`](Self::build) refuses more).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Sets the clock used for `iat`, `exp` and `nbf` (a [`Clock::manual`] in tests).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Checks everything and returns the configuration.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the variable that sets the value at fault: `HMAC_SECRET` or
    /// `HMAC_SECRET_PREVIOUS` shorter than [`MIN_SECRET_LEN`] bytes or of low entropy
    /// ([`check_secret_strength`]), `HMAC_ISSUER` or
    /// `HMAC_AUDIENCE` empty or with control characters, `AUTH_LEEWAY_SECS` over
    /// [`MAX_LEEWAY`].
    pub fn build(self) -> Result<HmacConfig, ConfigError> {
        self.build_named("")
    }

    fn build_named(self, prefix: &str) -> Result<HmacConfig, ConfigError> {
        let name = |suffix: &str| format!("{prefix}{suffix}");
        let current = key(&name("HMAC_SECRET"), &self.secret)?;
        let previous = self
            .previous
            .map(|secret| key(&name("HMAC_SECRET_PREVIOUS"), &secret))
            .transpose()?;
        let issuer = non_empty(&name("HMAC_ISSUER"), self.issuer)?;
        let audience = self
            .audience
            .map(|audience| non_empty(&name("HMAC_AUDIENCE"), audience))
            .transpose()?;
        if self.leeway > MAX_LEEWAY {
            return Err(leeway_error(&name("AUTH_LEEWAY_SECS")));
        }
        Ok(HmacConfig {
            current,
            previous,
            issuer: issuer.into(),
            audience: audience.map(Into::into),
            leeway_secs: self.leeway.as_secs(),
            clock: self.clock,
        })
    }
}

/// An issuer or audience: a token's `iss` must name someone, and a control character in it
/// is a configuration slip, never a name.
pub(crate) fn non_empty(variable: &str, value: String) -> Result<String, ConfigError> {
    if value.is_empty() || value.chars().any(char::is_control) {
        return Err(ConfigError::new(
            variable,
            "must be a non-empty value without control characters",
        ));
    }
    Ok(value)
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

    const SECRET: &str = "x3Vq9Lm2Kt7Rz4Pw8Nb1Yc6Hd5Fs0Jg-v4lue";
    const OLD: &str = "Gz7Yp2Lk9Wm4Rx8Tb3Nq6Vc1Jh5Dg0Fs-old";

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn unset_secret_means_off() {
        assert!(HmacConfig::from_lookup("", vars(&[])).unwrap().is_none());
        assert!(
            HmacConfig::from_lookup("APP_", vars(&[("HMAC_SECRET", SECRET)]))
                .unwrap()
                .is_none(),
            "the prefix applies to every name"
        );
    }

    #[test]
    fn reads_every_variable_with_the_prefix() {
        let config = HmacConfig::from_lookup(
            "APP_",
            vars(&[
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

        let defaults = HmacConfig::from_lookup("", vars(&[("HMAC_SECRET", SECRET)]))
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
            let err = HmacConfig::from_lookup("APP_", vars(pairs)).unwrap_err();
            assert_eq!(err.variable(), *variable, "{err}");
            assert!(!err.to_string().contains(hidden), "{err}");
        }
    }

    #[test]
    fn builder_checks_secret_length_and_debug_is_redacted() {
        let err = HmacConfig::builder("x".repeat(MIN_SECRET_LEN - 1))
            .build()
            .unwrap_err();
        assert_eq!(err.variable(), "HMAC_SECRET");
        let builder = HmacConfig::builder(SECRET).previous(OLD);
        let shown = format!("{builder:?}");
        assert!(!shown.contains(SECRET) && !shown.contains(OLD), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
        let config = builder.build().unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains(SECRET) && !shown.contains(OLD), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
        let err = HmacConfig::builder(SECRET)
            .previous("short")
            .build()
            .unwrap_err();
        assert_eq!(err.variable(), "HMAC_SECRET_PREVIOUS");
        assert!(!err.to_string().contains("short\""), "{err}");
    }

    /// SECURITY.md G2.
    #[test]
    fn guessable_secrets_refuse_to_start_naming_the_variable_never_the_value() {
        // Long enough, but a repeated pattern, a run, a common word, or few distinct bytes.
        let weak = [
            "x".repeat(32),
            "hunter2-".repeat(5),
            "abcdefghijklmnopqrstuvwxyz0123456789".to_owned(),
            "Xk9Lm2Vt8Rp4Nw6Bc1Hj5Fd0Gs-password".to_owned(),
            "my-company-hmac-secret-for-role-tokens".to_owned(),
            "1212343412123434121234341212343412123434".to_owned(),
        ];
        for secret in &weak {
            for (pairs, variable) in [
                (
                    vec![("APP_HMAC_SECRET", secret.as_str())],
                    "APP_HMAC_SECRET",
                ),
                (
                    vec![
                        ("APP_HMAC_SECRET", SECRET),
                        ("APP_HMAC_SECRET_PREVIOUS", secret.as_str()),
                    ],
                    "APP_HMAC_SECRET_PREVIOUS",
                ),
            ] {
                let err = HmacConfig::from_lookup("APP_", vars(&pairs)).unwrap_err();
                assert_eq!(err.variable(), variable, "{secret}");
                let shown = err.to_string();
                assert!(shown.contains("low entropy"), "{shown}");
                assert!(!shown.contains(secret.as_str()), "{shown}");
            }
            let err = HmacConfig::builder(secret.as_str()).build().unwrap_err();
            assert_eq!(err.variable(), "HMAC_SECRET");
            let err = HmacConfig::builder(SECRET)
                .previous(secret.as_str())
                .build()
                .unwrap_err();
            assert_eq!(err.variable(), "HMAC_SECRET_PREVIOUS");
            assert!(!err.to_string().contains(secret.as_str()), "{err}");
        }
    }

    #[test]
    fn random_secrets_pass_in_any_form() {
        let binary: Vec<u8> = (0u8..32)
            .map(|i| i.wrapping_mul(149).wrapping_add(71))
            .collect();
        for secret in [
            // `openssl rand -hex 32`, `openssl rand -base64 32`, and raw bytes in code.
            Secret::from("3f9a1c7e5b2d8f4a6c0e9b3d7f1a5c8e2b6d0f4a8c1e7b3d9f5a2c6e0b4d8f1a"),
            Secret::from("q9VtX2mB7kR4nZ8wL1cF6hJ3pD5sG0yA+/eU3T1xWk8="),
            Secret::new(binary),
        ] {
            assert!(HmacConfig::builder(secret).build().is_ok());
        }
    }

    #[test]
    fn issuer_and_audience_are_checked_in_code_as_in_the_environment() {
        for (builder, variable) in [
            (HmacConfig::builder(SECRET).issuer(""), "HMAC_ISSUER"),
            (HmacConfig::builder(SECRET).issuer("ops\n"), "HMAC_ISSUER"),
            (HmacConfig::builder(SECRET).audience(""), "HMAC_AUDIENCE"),
            (
                HmacConfig::builder(SECRET).audience("a\tb"),
                "HMAC_AUDIENCE",
            ),
        ] {
            assert_eq!(builder.build().unwrap_err().variable(), variable);
        }
        let trimmed = HmacConfig::from_lookup(
            "",
            vars(&[("HMAC_SECRET", SECRET), ("HMAC_ISSUER", " ops ")]),
        );
        assert_eq!(trimmed.unwrap().unwrap().issuer_name(), "ops");
    }

    #[test]
    fn leeway_past_the_bound_is_refused_never_clamped() {
        let at_bound = HmacConfig::builder(SECRET).leeway(MAX_LEEWAY).build();
        assert_eq!(at_bound.unwrap().leeway_duration(), MAX_LEEWAY);
        let err = HmacConfig::builder(SECRET)
            .leeway(MAX_LEEWAY + Duration::from_secs(1))
            .build()
            .unwrap_err();
        assert_eq!(err.variable(), "AUTH_LEEWAY_SECS");
        assert!(err.to_string().contains("0 to 3600"), "{err}");
        // The variable and the setter hold one rule.
        let from_env = HmacConfig::from_lookup(
            "APP_",
            vars(&[
                ("APP_HMAC_SECRET", SECRET),
                ("APP_AUTH_LEEWAY_SECS", "3601"),
            ]),
        )
        .unwrap_err();
        assert_eq!(from_env.variable(), "APP_AUTH_LEEWAY_SECS");
        let at_bound = HmacConfig::from_lookup(
            "",
            vars(&[("HMAC_SECRET", SECRET), ("AUTH_LEEWAY_SECS", "3600")]),
        );
        assert_eq!(at_bound.unwrap().unwrap().leeway_duration(), MAX_LEEWAY);
    }
}
