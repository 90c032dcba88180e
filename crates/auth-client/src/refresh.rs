//! [`RefreshTokenGrant`]: a person's session in a [`TokenFile`], kept fresh with its refresh
//! token (RFC 6749 section 6).

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tower_auth_core::{ConfigError, Secret, sha256_digest};

use crate::error::LOGIN_REQUIRED;
use crate::oauth::{ClientAuth, OAuthClient};
use crate::response::granted_from_reply;
use crate::source::BoxFuture;
use crate::token_file::{Session, TokenFile};
use crate::{Token, TokenError, TokenErrorKind, TokenSource};

/// A token found in the file with less time left than this is refreshed rather than used.
const MIN_LEFT: Duration = Duration::from_secs(60);

/// Access tokens from a person's session in a [`TokenFile`], refreshed with its refresh token
/// at the token endpoint, for [`TokenCache`](crate::TokenCache) (which decides when).
///
/// Each refresh, under the file's lock ([`TokenFile::lock`]):
/// 1. reads the session; a token in it that this source has not handed out yet, with more
///    than a minute left, is another process's fresh refresh, and is used as it is (no
///    request, so two processes sharing the file never both spend a single-use refresh
///    token);
/// 2. otherwise posts `grant_type=refresh_token` (with the client's secret, if it has one:
///    public clients name themselves with `client_id`);
/// 3. writes the new session, with the rotated refresh token if the server sent one, to the
///    file **before** the access token is used: a crash between the two never loses the
///    session.
///
/// No session, a session of another client, or a refresh token the server refuses
/// (`invalid_grant`: expired, revoked, spent) is a [`TokenError`] for which
/// [`is_login_required`](TokenError::is_login_required) is true: the person must log in
/// again.
#[derive(Clone)]
pub struct RefreshTokenGrant {
    client: OAuthClient,
    file: TokenFile,
    /// The issuer a session must be of, when the grant was made for one.
    issuer: Option<Arc<str>>,
    /// The SHA-256 of the access token last handed out.
    handed_out: Arc<Mutex<Option<[u8; 32]>>>,
}

impl RefreshTokenGrant {
    /// Refreshes the session in `file` at the token endpoint `token_url`, as the public
    /// client `client_id`.
    ///
    /// # Errors
    /// A [`ConfigError`] when the URL is not absolute `https` (or loopback `http`), or the
    /// client id is empty.
    pub fn new(
        token_url: &str,
        client_id: impl Into<String>,
        file: TokenFile,
    ) -> Result<Self, ConfigError> {
        Ok(Self::build(
            OAuthClient::at_url(token_url, client_id.into(), None)?,
            file,
        ))
    }

    /// As [`new`](Self::new), at the token endpoint of `issuer`'s discovery document.
    ///
    /// # Errors
    /// As [`new`](Self::new), for the issuer URL.
    pub fn from_issuer(
        issuer: &str,
        client_id: impl Into<String>,
        file: TokenFile,
    ) -> Result<Self, ConfigError> {
        let mut grant = Self::build(
            OAuthClient::of_issuer(issuer, client_id.into(), None)?,
            file,
        );
        grant.issuer = Some(issuer.into());
        Ok(grant)
    }

    fn build(client: OAuthClient, file: TokenFile) -> Self {
        Self {
            client,
            file,
            issuer: None,
            handed_out: Arc::default(),
        }
    }

    /// A confidential client: authenticates with `secret` (by `auth`).
    #[must_use]
    pub fn client_secret(mut self, secret: impl Into<Secret>, auth: ClientAuth) -> Self {
        self.client = self.client.with_secret(secret.into(), auth);
        self
    }

    /// The session file.
    pub fn file(&self) -> &TokenFile {
        &self.file
    }

    async fn blocking<T: Send + 'static>(
        &self,
        reason: &'static str,
        work: impl FnOnce(TokenFile) -> std::io::Result<T> + Send + 'static,
    ) -> Result<T, TokenError> {
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || work(file))
            .await
            .map_err(|e| TokenError::new(TokenErrorKind::Other, reason).with_source(e))?
            .map_err(|e| TokenError::new(TokenErrorKind::Other, reason).with_source(e))
    }

    async fn refresh(&self) -> Result<Token, TokenError> {
        let _lock = self.blocking("token_file_lock", |file| file.lock()).await?;
        let session = self
            .blocking("token_file_unreadable", |file| file.load())
            .await?
            .ok_or_else(|| TokenError::new(TokenErrorKind::Rejected, LOGIN_REQUIRED))?;
        // Another client's session, or another issuer's: its tokens and its refresh token
        // must not go to this one's endpoint or APIs.
        let other_issuer = self.issuer.as_deref().is_some_and(|issuer| {
            issuer.trim_end_matches('/') != session.issuer().trim_end_matches('/')
        });
        if session.client_id() != self.client.client_id() || other_issuer {
            return Err(TokenError::new(TokenErrorKind::Rejected, LOGIN_REQUIRED));
        }
        let now = SystemTime::now();
        let fresh_elsewhere = *self
            .handed_out
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            != Some(sha256_digest(session.access().expose_secret()))
            && session.expires_in(now).is_some_and(|left| left > MIN_LEFT);
        if fresh_elsewhere {
            let token = Token::new(session.access().clone(), session.expires_in(now));
            return Ok(self.hand_out(token));
        }
        let refresh_token = session
            .refresh()
            .and_then(|t| std::str::from_utf8(t.expose_secret()).ok())
            .ok_or_else(|| TokenError::new(TokenErrorKind::Rejected, LOGIN_REQUIRED))?;
        let (reply, started) = self
            .client
            .grant(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ])
            .await?;
        let granted = granted_from_reply(reply, started)?;
        let mut next = Session::new(
            session.issuer(),
            session.client_id(),
            granted.token.secret().clone(),
        );
        if let Some(refresh) = granted.refresh_token.or_else(|| session.refresh().cloned()) {
            next = next.refresh_token(refresh);
        }
        if let Some(id) = granted.id_token.or_else(|| session.id().cloned()) {
            next = next.id_token(id);
        }
        if let Some(left) = granted.token.expires_in() {
            next = next.expires_at(now + left);
        }
        // Written before the token is used: the rotated refresh token is the session now.
        self.blocking("token_file_not_written", move |file| file.store(&next))
            .await?;
        Ok(self.hand_out(granted.token))
    }

    fn hand_out(&self, token: Token) -> Token {
        *self
            .handed_out
            .lock()
            .unwrap_or_else(PoisonError::into_inner) =
            Some(sha256_digest(token.secret().expose_secret()));
        token
    }
}

impl TokenSource for RefreshTokenGrant {
    /// The refresh runs in a task of its own, which holds the lock until the new session is
    /// written: a caller that stops waiting (the cache's fetch timeout) never cancels it
    /// between the server's rotation and the write, which would lose the session, nor
    /// releases the lock while the file is half done.
    fn fetch(&self) -> BoxFuture<'_, Result<Token, TokenError>> {
        let grant = self.clone();
        Box::pin(async move {
            tokio::spawn(async move { grant.refresh().await })
                .await
                .map_err(|e| {
                    TokenError::new(TokenErrorKind::Other, "refresh_task_failed").with_source(e)
                })?
        })
    }
}

impl fmt::Debug for RefreshTokenGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RefreshTokenGrant");
        self.client.debug_fields(&mut d);
        d.field("file", &self.file.path()).finish()
    }
}
