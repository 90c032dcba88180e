//! Configuration from the environment.

use tower_auth_core::{ConfigError, Secret};

use crate::{ClientAuth, ClientCredentials, StaticToken, TokenCache};

/// The variables [`TokenCache::from_env`] and [`StaticToken::from_env`] read (with
/// [`TokenCache::from_env_prefixed`], each after the prefix).
pub const ENV_VARIABLES: [&str; 9] = [
    "AUTH_STATIC_TOKEN",
    "AUTH_CLIENT_ID",
    "AUTH_CLIENT_SECRET",
    "AUTH_TOKEN_URL",
    "AUTH_ISSUER",
    "AUTH_SCOPE",
    "AUTH_AUDIENCE",
    "AUTH_RESOURCE",
    "AUTH_CLIENT_AUTH_METHOD",
];

impl TokenCache {
    /// A cache over the source the environment describes (nothing is fetched yet; call
    /// [`TokenCache::token`] at start-up to fail fast):
    ///
    /// | Variable | Meaning |
    /// |---|---|
    /// | `AUTH_STATIC_TOKEN` | A fixed token ([`StaticToken`]); excludes the others. |
    /// | `AUTH_CLIENT_ID`, `AUTH_CLIENT_SECRET` | The client credentials grant ([`ClientCredentials`]). |
    /// | `AUTH_TOKEN_URL` or `AUTH_ISSUER` | Its token endpoint, or an issuer whose discovery document names it (exactly one). |
    /// | `AUTH_SCOPE` | Optional space-separated scopes. |
    /// | `AUTH_AUDIENCE` | Optional `audience` parameter. |
    /// | `AUTH_RESOURCE` | Optional RFC 8707 resource indicators, space-separated. |
    /// | `AUTH_CLIENT_AUTH_METHOD` | `client_secret_basic` (default) or `client_secret_post`. |
    ///
    /// # Errors
    /// A [`ConfigError`] naming the variable at fault, never a secret's value.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_prefixed("")
    }

    /// As [`TokenCache::from_env`], every name prefixed with `prefix` (`MYAPP_AUTH_CLIENT_ID`
    /// for `"MYAPP_"`), as `AuthConfig::from_env_prefixed` reads the server side's.
    ///
    /// # Errors
    /// As [`TokenCache::from_env`], naming the prefixed variable.
    pub fn from_env_prefixed(prefix: &str) -> Result<Self, ConfigError> {
        Self::from_lookup(prefix, |name| std::env::var(name).ok())
    }

    /// As [`TokenCache::from_env_prefixed`], reading variables through `get`, which is called
    /// with full (prefixed) names (for tests, or another configuration store).
    ///
    /// ```
    /// use tower_auth_client::TokenCache;
    ///
    /// let vars = [
    ///     ("APP_AUTH_CLIENT_ID", "reporting"),
    ///     ("APP_AUTH_CLIENT_SECRET", "s3cr3t-value"),
    /// ];
    /// let err = TokenCache::from_lookup("APP_", |name| {
    ///     vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    /// })
    /// .unwrap_err();
    /// assert_eq!(err.variable(), "APP_AUTH_TOKEN_URL");
    /// assert!(!err.to_string().contains("s3cr3t"));
    /// ```
    ///
    /// # Errors
    /// As [`TokenCache::from_env_prefixed`].
    pub fn from_lookup(
        prefix: &str,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let name = |name: &str| format!("{prefix}{name}");
        let var = |short: &str| get(&name(short)).filter(|v| !v.trim().is_empty());
        let client_vars = [
            "AUTH_CLIENT_ID",
            "AUTH_CLIENT_SECRET",
            "AUTH_TOKEN_URL",
            "AUTH_ISSUER",
        ];
        if var("AUTH_STATIC_TOKEN").is_some() {
            if let Some(other) = client_vars.iter().find(|short| var(short).is_some()) {
                return Err(ConfigError::new(
                    name("AUTH_STATIC_TOKEN"),
                    format!(
                        "set either a static token or client credentials, not both ({} is set too)",
                        name(other)
                    ),
                ));
            }
            return StaticToken::from_lookup(prefix, &get).map(Self::new);
        }
        let client_id = var("AUTH_CLIENT_ID").ok_or_else(|| {
            ConfigError::new(
                name("AUTH_CLIENT_ID"),
                format!(
                    "is not set (set {} and {}, or {})",
                    name("AUTH_CLIENT_ID"),
                    name("AUTH_CLIENT_SECRET"),
                    name("AUTH_STATIC_TOKEN")
                ),
            )
        })?;
        let secret = Secret::from(
            var("AUTH_CLIENT_SECRET")
                .ok_or_else(|| ConfigError::new(name("AUTH_CLIENT_SECRET"), "is not set"))?,
        );
        let renamed = |short: &str| {
            let variable = name(short);
            move |e: ConfigError| ConfigError::new(variable, e.message())
        };
        let mut source = match (var("AUTH_TOKEN_URL"), var("AUTH_ISSUER")) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    name("AUTH_ISSUER"),
                    format!(
                        "set either {} or {}, not both",
                        name("AUTH_TOKEN_URL"),
                        name("AUTH_ISSUER")
                    ),
                ));
            }
            (None, None) => {
                return Err(ConfigError::new(
                    name("AUTH_TOKEN_URL"),
                    format!(
                        "is not set (set it, or {} to find it by discovery)",
                        name("AUTH_ISSUER")
                    ),
                ));
            }
            (Some(url), None) => ClientCredentials::new(url.trim(), client_id.trim(), secret)
                .map_err(renamed("AUTH_TOKEN_URL"))?,
            (None, Some(issuer)) => {
                ClientCredentials::from_issuer(issuer.trim(), client_id.trim(), secret)
                    .map_err(renamed("AUTH_ISSUER"))?
            }
        };
        if let Some(scope) = var("AUTH_SCOPE") {
            source = source.scope(scope);
        }
        if let Some(audience) = var("AUTH_AUDIENCE") {
            source = source.audience(audience.trim());
        }
        if let Some(resources) = var("AUTH_RESOURCE") {
            for resource in resources.split_whitespace() {
                source = source.resource(resource);
            }
        }
        if let Some(method) = var("AUTH_CLIENT_AUTH_METHOD") {
            let auth = match method.trim() {
                "client_secret_basic" => ClientAuth::Basic,
                "client_secret_post" => ClientAuth::Post,
                _ => {
                    return Err(ConfigError::new(
                        name("AUTH_CLIENT_AUTH_METHOD"),
                        "must be client_secret_basic or client_secret_post",
                    ));
                }
            };
            source = source.auth_method(auth);
        }
        Ok(Self::new(source))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const SECRET: &str = "s3cr3t-d3b07384d113edec49eaa6238ad5ff00";

    fn from(vars: &[(&str, &str)]) -> Result<TokenCache, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        TokenCache::from_lookup("", |name| vars.get(name).cloned())
    }

    #[track_caller]
    fn refused(vars: &[(&str, &str)], variable: &str) {
        let err = from(vars).unwrap_err();
        assert_eq!(err.variable(), variable, "{err}");
        assert!(!err.to_string().contains(SECRET), "{err}");
        assert!(!err.to_string().contains("static-token-value"), "{err}");
    }

    #[test]
    fn good_configurations() {
        from(&[("AUTH_STATIC_TOKEN", "abc.def")]).unwrap();
        let cache = from(&[
            ("AUTH_CLIENT_ID", "app"),
            ("AUTH_CLIENT_SECRET", SECRET),
            ("AUTH_TOKEN_URL", "https://idp.example/token"),
            ("AUTH_SCOPE", "a b"),
            ("AUTH_AUDIENCE", "api"),
            ("AUTH_RESOURCE", "urn:a urn:b"),
            ("AUTH_CLIENT_AUTH_METHOD", "client_secret_post"),
        ])
        .unwrap();
        assert!(!format!("{cache:?}").contains(SECRET));
        from(&[
            ("AUTH_CLIENT_ID", "app"),
            ("AUTH_CLIENT_SECRET", SECRET),
            ("AUTH_ISSUER", "https://idp.example"),
            ("AUTH_SCOPE", ""),
        ])
        .unwrap();
    }

    #[test]
    fn each_error_names_its_variable() {
        let cc = [
            ("AUTH_CLIENT_ID", "app"),
            ("AUTH_CLIENT_SECRET", SECRET),
            ("AUTH_TOKEN_URL", "https://idp.example/token"),
        ];
        refused(&[], "AUTH_CLIENT_ID");
        refused(&[("AUTH_CLIENT_ID", "app")], "AUTH_CLIENT_SECRET");
        refused(&cc[..2], "AUTH_TOKEN_URL");
        refused(
            &[cc[0], cc[1], ("AUTH_TOKEN_URL", "http://idp.example/token")],
            "AUTH_TOKEN_URL",
        );
        refused(&[cc[0], cc[1], ("AUTH_ISSUER", "not a url")], "AUTH_ISSUER");
        refused(
            &[cc[0], cc[1], cc[2], ("AUTH_ISSUER", "https://idp.example")],
            "AUTH_ISSUER",
        );
        refused(
            &[
                cc[0],
                cc[1],
                cc[2],
                ("AUTH_CLIENT_AUTH_METHOD", "private_key_jwt"),
            ],
            "AUTH_CLIENT_AUTH_METHOD",
        );
        refused(
            &[("AUTH_STATIC_TOKEN", "static-token-value"), cc[0]],
            "AUTH_STATIC_TOKEN",
        );
        refused(
            &[("AUTH_STATIC_TOKEN", "static token value")],
            "AUTH_STATIC_TOKEN",
        );
    }

    #[test]
    fn a_prefix_applies_to_every_name_read_and_named() {
        let prefixed = |prefix: &str, vars: &[(&str, &str)]| {
            let vars: HashMap<String, String> = vars
                .iter()
                .map(|(k, v)| (format!("{prefix}{k}"), (*v).to_owned()))
                .collect();
            TokenCache::from_lookup(prefix, |name| vars.get(name).cloned())
        };
        let cc = [
            ("AUTH_CLIENT_ID", "app"),
            ("AUTH_CLIENT_SECRET", SECRET),
            ("AUTH_TOKEN_URL", "https://idp.example/token"),
        ];
        prefixed("APP_", &cc).unwrap();
        prefixed("APP_", &[("AUTH_STATIC_TOKEN", "abc.def")]).unwrap();
        // The unprefixed names are not read when a prefix is given.
        let unprefixed: HashMap<&str, &str> = cc.iter().copied().collect();
        let err =
            TokenCache::from_lookup("APP_", |name| unprefixed.get(name).map(|v| (*v).to_owned()))
                .unwrap_err();
        assert_eq!(err.variable(), "APP_AUTH_CLIENT_ID", "{err}");
        for (vars, variable) in [
            (&cc[..2], "APP_AUTH_TOKEN_URL"),
            (&[cc[0]][..], "APP_AUTH_CLIENT_SECRET"),
            (
                &[cc[0], cc[1], ("AUTH_TOKEN_URL", "http://idp.example/token")][..],
                "APP_AUTH_TOKEN_URL",
            ),
            (
                &[cc[0], cc[1], cc[2], ("AUTH_CLIENT_AUTH_METHOD", "x")][..],
                "APP_AUTH_CLIENT_AUTH_METHOD",
            ),
            (
                &[("AUTH_STATIC_TOKEN", "static token value")][..],
                "APP_AUTH_STATIC_TOKEN",
            ),
            (
                &[("AUTH_STATIC_TOKEN", "abc"), cc[0]][..],
                "APP_AUTH_STATIC_TOKEN",
            ),
        ] {
            let err = prefixed("APP_", vars).unwrap_err();
            assert_eq!(err.variable(), variable, "{err}");
            assert!(!err.to_string().contains(SECRET), "{err}");
        }
    }
}
