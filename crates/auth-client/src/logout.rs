//! Logging out: the refresh token revoked where the IdP says how (RFC 7009), the session
//! file deleted whatever happens.

use std::fmt;
use std::io;

use http::StatusCode;
use tower_auth_core::{ConfigError, Secret};

use crate::login::ClientConfig;
use crate::oauth::ClientAuth;
use crate::token_file::TokenFile;
use crate::transport::token_error;
use crate::{TokenError, TokenErrorKind};

/// What became of the refresh token at logout.
#[derive(Debug)]
#[non_exhaustive]
pub enum Revocation {
    /// The IdP's `revocation_endpoint` accepted it (RFC 7009 section 2.2: 200).
    Revoked,
    /// There was no session, or it had no refresh token.
    NothingToRevoke,
    /// The IdP advertises no `revocation_endpoint`: the refresh token lives until it expires.
    NotSupported,
    /// Revocation failed (unreachable, refused, metadata unusable, or the session file could
    /// not be read): the refresh token may still be live.
    Failed(TokenError),
}

impl fmt::Display for Revocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Revoked => f.write_str("the refresh token was revoked"),
            Self::NothingToRevoke => f.write_str("there was no refresh token to revoke"),
            Self::NotSupported => f.write_str(
                "the identity provider offers no revocation endpoint; the refresh token stays valid until it expires",
            ),
            Self::Failed(e) => write!(f, "the refresh token could not be revoked: {e}"),
        }
    }
}

/// Ends the session in a [`TokenFile`]: revokes its refresh token at the issuer's
/// `revocation_endpoint` when the issuer advertises one (RFC 7009, `token_type_hint=
/// refresh_token`, with the client's authentication), then deletes the file. A failed
/// revocation still deletes the file, and says so.
///
/// The issuer and client are the session's own; a session of another client id than this
/// logout's is not revoked with this client's credentials (only deleted). The client secret
/// is sent only to the issuer it was given for ([`client_secret`](Self::client_secret)): a
/// session of another issuer is revoked as a public client, never with this secret.
///
/// The file's lock ([`TokenFile::lock`]) is held from reading the session to deleting it, so
/// that a refresh in another process cannot write a new session back after the logout.
#[derive(Clone)]
pub struct Logout {
    client_id: String,
    /// The secret and the issuer it belongs to.
    secret: Option<(Secret, ClientAuth, String)>,
}

impl Logout {
    /// A logout as the public client `client_id`.
    pub fn new(client_id: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            secret: None,
        }
    }

    /// A confidential client of `issuer`: authenticates to that issuer's revocation endpoint
    /// with `secret`. A session of any other issuer is revoked without it.
    #[must_use]
    pub fn client_secret(
        mut self,
        issuer: impl Into<String>,
        secret: impl Into<Secret>,
        auth: ClientAuth,
    ) -> Self {
        self.secret = Some((secret.into(), auth, issuer.into()));
        self
    }

    /// Revokes (when possible), then deletes `file`.
    ///
    /// # Errors
    /// The file exists and cannot be deleted; the revocation's outcome is then lost with it.
    pub async fn run(&self, file: &TokenFile) -> io::Result<Revocation> {
        let locking = file.clone();
        let _lock = tokio::task::spawn_blocking(move || locking.lock())
            .await
            .map_err(io::Error::other)??;
        let revocation = self.revoke(file).await;
        file.remove()?;
        Ok(revocation)
    }

    async fn revoke(&self, file: &TokenFile) -> Revocation {
        let session = match file.load() {
            Ok(Some(session)) => session,
            Ok(None) => return Revocation::NothingToRevoke,
            Err(e) => {
                return Revocation::Failed(
                    TokenError::new(TokenErrorKind::Other, "token_file_unreadable").with_source(e),
                );
            }
        };
        let Some(refresh) = session.refresh() else {
            return Revocation::NothingToRevoke;
        };
        if session.client_id() != self.client_id {
            return Revocation::Failed(TokenError::new(
                TokenErrorKind::InvalidClient,
                "session_of_another_client",
            ));
        }
        let config = match ClientConfig::new(session.issuer(), self.client_id.clone()) {
            Ok(mut config) => {
                config.secret = self
                    .secret
                    .as_ref()
                    .filter(|(_, _, issuer)| {
                        issuer.trim_end_matches('/') == session.issuer().trim_end_matches('/')
                    })
                    .map(|(secret, auth, _)| (secret.clone(), *auth));
                config
            }
            Err(e) => return Revocation::Failed(config_failed(e)),
        };
        let issuer = match config.discover().await {
            Ok(issuer) => issuer,
            Err(e) => return Revocation::Failed(e),
        };
        let endpoint = match issuer.endpoint(
            issuer.metadata.revocation_endpoint(),
            "bad_revocation_endpoint",
        ) {
            Ok(Some(endpoint)) => endpoint,
            Ok(None) => return Revocation::NotSupported,
            Err(e) => return Revocation::Failed(e),
        };
        let Ok(token) = std::str::from_utf8(refresh.expose_secret()) else {
            return Revocation::Failed(TokenError::new(TokenErrorKind::Other, "token_not_text"));
        };
        let reply = issuer
            .client
            .post_to(
                &endpoint,
                &[("token", token), ("token_type_hint", "refresh_token")],
            )
            .await;
        match reply {
            // Section 2.2: 200 whether or not the token was valid.
            Ok((reply, _)) if reply.status == StatusCode::OK => Revocation::Revoked,
            Ok((reply, _)) => Revocation::Failed(match reply.failure() {
                Some(e) => token_error(e),
                None => TokenError::new(TokenErrorKind::Rejected, "revocation_refused"),
            }),
            Err(e) => Revocation::Failed(e),
        }
    }
}

fn config_failed(e: ConfigError) -> TokenError {
    TokenError::new(TokenErrorKind::Other, "bad_issuer").with_source(e)
}

impl fmt::Debug for Logout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Logout")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}
