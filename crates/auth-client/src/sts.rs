//! [`SubjectTokenExchange`]: OAuth 2.0 Token Exchange (RFC 8693) at an IdP's token endpoint.

use std::fmt;
use std::sync::Arc;

use tower_auth_core::{ConfigError, Secret};

use crate::oauth::{ClientAuth, OAuthClient, Target};
use crate::response::token_from_reply;
use crate::source::BoxFuture;
use crate::{Token, TokenCache, TokenError, TokenErrorKind, TokenSource};

/// The grant type of RFC 8693 section 2.1.
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// RFC 8693 section 3: the type of an OAuth 2.0 access token.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// RFC 8693 section 3: the type of a JWT.
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// RFC 8693 section 3: the type of an OpenID Connect ID token.
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";

/// OAuth 2.0 Token Exchange (RFC 8693) at an IdP's token endpoint: trades a *subject token*,
/// taken from any other [`TokenCache`] (client credentials, a person's session, a workload
/// identity), for a token for another audience or resource, as a service calling the next
/// one on a user's behalf does. Beside [`TokenExchange`](crate::TokenExchange), which talks
/// to our own `POST /auth/token`.
///
/// ```no_run
/// use tower_auth_client::{ClientCredentials, SubjectTokenExchange, TokenCache};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let own = TokenCache::start(ClientCredentials::from_issuer("https://idp.example", "gateway", "s3cr3t")?).await?;
/// let exchange = SubjectTokenExchange::from_issuer("https://idp.example", "gateway", own)?
///     .client_secret("s3cr3t")
///     .audience("orders-api")
///     .scope("orders:read");
/// let for_orders = TokenCache::start(exchange).await?;
/// # Ok(()) }
/// ```
///
/// Each fetch asks the subject's cache for its current token (refreshing it when due), then
/// posts `grant_type=urn:ietf:params:oauth:grant-type:token-exchange` with
/// `subject_token`, `subject_token_type` (an access token unless set), and the
/// `requested_token_type`, `audience`, `resource` and `scope` given. Only a `Bearer` answer
/// is accepted: an issued token that is not an access token (`token_type: N_A`) could not be
/// sent in a header.
#[derive(Clone)]
pub struct SubjectTokenExchange {
    client: OAuthClient,
    subject: TokenCache,
    subject_token_type: Arc<str>,
    requested_token_type: Option<Arc<str>>,
    target: Target,
}

impl SubjectTokenExchange {
    /// Exchanges tokens of `subject` at the token endpoint `token_url`, as the public
    /// client `client_id` (see [`client_secret`](Self::client_secret)).
    ///
    /// # Errors
    /// A [`ConfigError`] when the URL is not absolute `https` (or loopback `http`), or the
    /// client id is empty.
    pub fn new(
        token_url: &str,
        client_id: impl Into<String>,
        subject: impl Into<TokenCache>,
    ) -> Result<Self, ConfigError> {
        let client = OAuthClient::at_url(token_url, client_id.into(), None)?;
        Ok(Self::build(client, subject.into()))
    }

    /// As [`new`](Self::new), at the token endpoint of `issuer`'s discovery document.
    ///
    /// # Errors
    /// As [`new`](Self::new), for the issuer URL.
    pub fn from_issuer(
        issuer: &str,
        client_id: impl Into<String>,
        subject: impl Into<TokenCache>,
    ) -> Result<Self, ConfigError> {
        let client = OAuthClient::of_issuer(issuer, client_id.into(), None)?;
        Ok(Self::build(client, subject.into()))
    }

    fn build(client: OAuthClient, subject: TokenCache) -> Self {
        Self {
            client,
            subject,
            subject_token_type: ACCESS_TOKEN_TYPE.into(),
            requested_token_type: None,
            target: Target::default(),
        }
    }

    /// Authenticates as a confidential client with `secret` (HTTP Basic).
    #[must_use]
    pub fn client_secret(self, secret: impl Into<Secret>) -> Self {
        self.client_auth(secret, ClientAuth::Basic)
    }

    /// Authenticates as a confidential client with `secret`, by `auth`.
    #[must_use]
    pub fn client_auth(mut self, secret: impl Into<Secret>, auth: ClientAuth) -> Self {
        self.client = self.client.with_secret(secret.into(), auth);
        self
    }

    /// The `subject_token_type` (default [`ACCESS_TOKEN_TYPE`]; [`JWT_TOKEN_TYPE`],
    /// [`ID_TOKEN_TYPE`] or any URI the IdP knows).
    #[must_use]
    pub fn subject_token_type(mut self, token_type: impl Into<String>) -> Self {
        self.subject_token_type = token_type.into().into();
        self
    }

    /// The `requested_token_type` (none by default: the IdP's choice, an access token).
    #[must_use]
    pub fn requested_token_type(mut self, token_type: impl Into<String>) -> Self {
        self.requested_token_type = Some(token_type.into().into());
        self
    }

    /// The `audience`: the logical name of the service the token is for.
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.target.set_audience(audience);
        self
    }

    /// Adds a `resource`: an absolute URI of the service the token is for. May be given
    /// several times.
    #[must_use]
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.target.add_resource(resource);
        self
    }

    /// The `scope` asked for, space-separated.
    #[must_use]
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.target.set_scope(scope);
        self
    }

    async fn exchange(&self) -> Result<Token, TokenError> {
        let subject = self.subject.token().await.map_err(|e| {
            TokenError::new(e.kind(), "subject_token_unavailable")
                .with_retry_after(e.retry_after())
                .with_source(e)
        })?;
        let subject_token =
            std::str::from_utf8(subject.secret().expose_secret()).map_err(|_| {
                TokenError::new(TokenErrorKind::InvalidResponse, "subject_token_not_text")
            })?;
        let mut params = vec![
            ("grant_type", GRANT_TYPE),
            ("subject_token", subject_token),
            ("subject_token_type", &self.subject_token_type),
        ];
        if let Some(requested) = &self.requested_token_type {
            params.push(("requested_token_type", requested));
        }
        self.target.extend(&mut params);
        let (reply, started) = self.client.grant(&params).await?;
        token_from_reply(reply, started)
    }
}

impl TokenSource for SubjectTokenExchange {
    fn fetch(&self) -> BoxFuture<'_, Result<Token, TokenError>> {
        Box::pin(self.exchange())
    }
}

impl fmt::Debug for SubjectTokenExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("SubjectTokenExchange");
        self.client.debug_fields(&mut d);
        d.field("subject", &self.subject)
            .field("subject_token_type", &self.subject_token_type)
            .field("requested_token_type", &self.requested_token_type);
        self.target.debug_fields(&mut d);
        d.finish()
    }
}
