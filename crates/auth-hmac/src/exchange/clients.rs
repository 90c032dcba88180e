//! The registered clients of the token exchange (`AUTH_TOKEN_CLIENTS`).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use tower_auth_core::ConfigError;

use super::MAX_CLIENT_ID_LEN;

pub(super) struct Client {
    /// The SHA-256 of the secret; all zeros (which no secret hashes to) for a client
    /// authenticated by introspection.
    pub(super) digest: [u8; 32],
    /// The issuer whose introspection judges this client's credential, an upstream access token.
    pub(super) introspect: Option<Arc<str>>,
    pub(super) roles: Vec<String>,
}

/// The registered clients (`AUTH_TOKEN_CLIENTS`): id, SHA-256 digest of the secret, roles.
///
/// Only digests are held, and `Debug` shows the number of clients, nothing more.
#[derive(Clone)]
pub struct TokenClients {
    pub(super) clients: Arc<HashMap<String, Client>>,
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
    secret_sha256: Option<String>,
    introspect: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
}

impl TokenClients {
    /// Parses `value`, a JSON array `[{"client_id": "...", "secret_sha256": "...", "roles": [...]}]`.
    /// `secret_sha256` is 64 hex characters, with or without a `sha256:` prefix (print one
    /// with `auth-token digest`); `roles` may be omitted.
    ///
    /// Instead of `secret_sha256`, a client may have `"introspect": "<issuer>"`: its
    /// credential is then an access token of that OIDC issuer, accepted when the issuer's
    /// introspection says it is active and its `sub` or `client_id` is this `client_id`
    /// (see [`ExchangeEndpointBuilder::introspector`](crate::ExchangeEndpointBuilder::introspector)).
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
            let mut digest = [0u8; 32];
            let secret_sha256 = match (entry.secret_sha256, entry.introspect) {
                (Some(digest), None) => digest,
                (None, Some(issuer)) if !issuer.is_empty() => {
                    let roles = crate::token::normalize_roles(entry.roles);
                    let introspect = Some(issuer.into());
                    clients.insert(
                        entry.client_id,
                        Client {
                            digest,
                            introspect,
                            roles,
                        },
                    );
                    continue;
                }
                _ => {
                    return Err(ConfigError::new(
                        variable,
                        format!(
                            "client #{position} needs exactly one of secret_sha256 and introspect (a non-empty issuer)"
                        ),
                    ));
                }
            };
            let hex_digest = secret_sha256
                .strip_prefix("sha256:")
                .unwrap_or(&secret_sha256);
            hex::decode_to_slice(hex_digest, &mut digest).map_err(|_| {
                ConfigError::new(
                    variable,
                    format!(
                        "client #{position}: secret_sha256 is not 64 hex characters (optionally after `sha256:`)"
                    ),
                )
            })?;
            let roles = crate::token::normalize_roles(entry.roles);
            clients.insert(
                entry.client_id,
                Client {
                    digest,
                    introspect: None,
                    roles,
                },
            );
        }
        Ok(Self {
            clients: Arc::new(clients),
        })
    }

    /// Reads `{prefix}AUTH_TOKEN_CLIENTS` through `get`; `Ok(None)` when it is unset.
    pub(super) fn from_lookup(
        prefix: &str,
        get: impl Fn(&str) -> Option<String>,
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

    /// The issuers named by clients registered with `introspect`, each once.
    pub fn introspected_issuers(&self) -> Vec<&str> {
        let mut issuers: Vec<&str> = self
            .clients
            .values()
            .filter_map(|c| c.introspect.as_deref())
            .collect();
        issuers.sort_unstable();
        issuers.dedup();
        issuers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(clients.introspected_issuers().is_empty());

        let introspected = TokenClients::parse(
            "AUTH_TOKEN_CLIENTS",
            r#"[{"client_id":"agent","introspect":"https://idp.example","roles":["metrics"]},
                {"client_id":"other","introspect":"https://idp.example"}]"#,
        )
        .unwrap();
        assert_eq!(introspected.introspected_issuers(), ["https://idp.example"]);
        let agent = &introspected.clients["agent"];
        assert_eq!(agent.introspect.as_deref(), Some("https://idp.example"));
        assert_eq!(
            (agent.digest, agent.roles.as_slice()),
            ([0; 32], &["metrics".to_owned()][..])
        );

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
            format!(r#"[{{"client_id":"a","secret_sha256":"{digest}","introspect":"https://i"}}]"#),
            r#"[{"client_id":"a"}]"#.to_owned(),
            r#"[{"client_id":"a","introspect":""}]"#.to_owned(),
        ] {
            let err = TokenClients::parse("APP_AUTH_TOKEN_CLIENTS", &bad).unwrap_err();
            assert_eq!(err.variable(), "APP_AUTH_TOKEN_CLIENTS");
            assert!(!err.to_string().contains(&digest[..20]), "{err}");
            assert!(!err.to_string().contains(&bad_digest[..20]), "{err}");
        }
    }
}
