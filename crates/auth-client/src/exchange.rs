//! Our own token exchange: `POST /auth/token` with `{"client_id","credential"}` (tower-auth-hmac's endpoint).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::Uri;
use serde::Serialize;
use tower_auth_core::{ConfigError, Secret};

use crate::response::token_from_reply;
use crate::source::BoxFuture;
use crate::transport::{Transport, endpoint_uri, token_error};
use crate::{Token, TokenError, TokenErrorKind, TokenSource};

type CredentialFn = dyn Fn() -> BoxFuture<'static, Result<Secret, TokenError>> + Send + Sync;

#[derive(Clone)]
enum Credential {
    Value(Arc<Secret>),
    Callable(Arc<CredentialFn>),
}

/// Exchanges a registration secret (or any upstream credential) for a short-lived role token
/// at our token-exchange endpoint (`tower_auth_hmac::TokenExchange`, mounted at `/auth/token`).
///
/// It sends `POST` `{"client_id": "...", "credential": "..."}` as JSON and reads
/// `{"access_token", "token_type": "Bearer", "expires_in"}`; a 401 `{"error":"invalid_client"}`
/// becomes [`TokenErrorKind::InvalidClient`], a 429 [`TokenErrorKind::Unavailable`] with
/// the server's `Retry-After`.
///
/// ```no_run
/// use tower_auth_client::{TokenCache, TokenExchange};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// // A fixed registration secret...
/// let source = TokenExchange::new("https://api.example.com/auth/token", "metrics-agent", "registration-secret")?;
/// // ...or a credential read afresh at each exchange (a rotated file, a workload identity).
/// let source = TokenExchange::with_credential_fn("https://api.example.com/auth/token", "metrics-agent", || async {
///     let text = std::fs::read_to_string("/var/run/secrets/agent").map_err(tower_auth_client::TokenError::other)?;
///     Ok(tower_auth_core::Secret::from(text.trim().to_owned()))
/// })?;
/// let tokens = TokenCache::start(source).await?;
/// # Ok(()) }
/// ```
///
/// The URL must be `https`, or `http` on a loopback address, as for
/// [`ClientCredentials`](crate::ClientCredentials).
#[derive(Clone)]
pub struct TokenExchange {
    endpoint: Uri,
    client_id: Arc<str>,
    credential: Credential,
    transport: Transport,
}

#[derive(Serialize)]
struct ExchangeRequest<'a> {
    client_id: &'a str,
    credential: &'a str,
}

impl TokenExchange {
    /// An exchange of the fixed `credential` at `url` (the full endpoint URL, such as
    /// `https://api.example.com/auth/token`).
    ///
    /// # Errors
    /// A [`ConfigError`] when the URL is not absolute `https` (or loopback `http`), or the
    /// client id or credential is empty.
    pub fn new(
        url: &str,
        client_id: impl Into<String>,
        credential: impl Into<Secret>,
    ) -> Result<Self, ConfigError> {
        let credential = credential.into();
        if credential.is_empty() {
            return Err(ConfigError::new("credential", "is empty"));
        }
        Self::build(
            url,
            client_id.into(),
            Credential::Value(Arc::new(credential)),
        )
    }

    /// An exchange that calls `credential` afresh for each exchange (each token fetch).
    ///
    /// # Errors
    /// As [`TokenExchange::new`].
    pub fn with_credential_fn<F, Fut>(
        url: &str,
        client_id: impl Into<String>,
        credential: F,
    ) -> Result<Self, ConfigError>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Secret, TokenError>> + Send + 'static,
    {
        let callable: Arc<CredentialFn> = Arc::new(move || Box::pin(credential()));
        Self::build(url, client_id.into(), Credential::Callable(callable))
    }

    fn build(url: &str, client_id: String, credential: Credential) -> Result<Self, ConfigError> {
        let endpoint = endpoint_uri("url", url)?;
        if client_id.is_empty() {
            return Err(ConfigError::new("client_id", "is empty"));
        }
        Ok(Self {
            endpoint,
            client_id: client_id.into(),
            credential,
            transport: Transport::new()?,
        })
    }

    /// Connect and read timeouts for each request (default 5 s each).
    #[must_use]
    pub fn timeouts(mut self, connect: Duration, read: Duration) -> Self {
        self.transport = self.transport.timeouts(connect, read);
        self
    }

    async fn exchange(&self) -> Result<Token, TokenError> {
        let fresh;
        let credential = match &self.credential {
            Credential::Value(secret) => &**secret,
            Credential::Callable(f) => {
                fresh = f().await?;
                &fresh
            }
        };
        let credential = std::str::from_utf8(credential.expose_secret())
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| TokenError::new(TokenErrorKind::Other, "credential_not_text"))?;
        let body = serde_json::to_vec(&ExchangeRequest {
            client_id: &self.client_id,
            credential,
        })
        .map_err(TokenError::other)?;
        let started = tokio::time::Instant::now();
        let reply = self
            .transport
            .client()?
            .post_json(&self.endpoint, body)
            .await
            .map_err(token_error)?;
        token_from_reply(reply, started)
    }
}

impl TokenSource for TokenExchange {
    fn fetch(&self) -> BoxFuture<'_, Result<Token, TokenError>> {
        Box::pin(self.exchange())
    }
}

impl fmt::Debug for TokenExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let credential = match &self.credential {
            Credential::Value(_) => "[redacted]",
            Credential::Callable(_) => "[callable]",
        };
        f.debug_struct("TokenExchange")
            .field("url", &self.endpoint)
            .field("client_id", &self.client_id)
            .field("credential", &credential)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_errors() {
        assert_eq!(
            TokenExchange::new("http://api.example/auth/token", "a", "s")
                .unwrap_err()
                .variable(),
            "url"
        );
        assert_eq!(
            TokenExchange::new("https://api.example/auth/token", "", "s")
                .unwrap_err()
                .variable(),
            "client_id"
        );
        assert_eq!(
            TokenExchange::new("https://api.example/auth/token", "a", "")
                .unwrap_err()
                .variable(),
            "credential"
        );
        let debug = format!(
            "{:?}",
            TokenExchange::new(
                "https://api.example/auth/token",
                "a",
                "hunter2-registration"
            )
            .unwrap()
        );
        assert!(!debug.contains("hunter2"), "{debug}");
    }
}
