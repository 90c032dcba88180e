//! The device authorization grant (RFC 8628): a login for machines without a browser.

use std::fmt;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::StatusCode;
use serde::Deserialize;
use tokio::time::Instant;
use tower_auth_core::{ConfigError, Secret};

use crate::login::{ClientConfig, IssuerClient, LoginError, check_id_token, printable, session_of};
use crate::oauth::ClientAuth;
use crate::response::{Granted, granted_from_reply};
use crate::token_file::Session;
use crate::{TokenError, TokenErrorKind};

/// RFC 8628 section 3.4.
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Section 3.2: the polling interval when the server names none.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// Section 3.5: what `slow_down` adds to the interval.
const SLOW_DOWN: Duration = Duration::from_secs(5);

/// A server asking for longer waits than this is not waited on for longer.
const MAX_INTERVAL: Duration = Duration::from_secs(60);

/// A device code lives at most this long, whatever `expires_in` says.
const MAX_EXPIRES_IN: Duration = Duration::from_secs(3600);

#[derive(Deserialize)]
struct DeviceResponse {
    device_code: String,
    user_code: String,
    verification_uri: String,
    #[serde(default)]
    verification_uri_complete: Option<String>,
    expires_in: u64,
    #[serde(default)]
    interval: Option<u64>,
}

/// A device login (RFC 8628): the person opens a URL on any device and enters a code, while
/// this process polls the token endpoint.
///
/// ```no_run
/// use tower_auth_client::{DeviceLogin, TokenFile};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let pending = DeviceLogin::new("https://login.example.com", "cli")?
///     .scope("openid offline_access")
///     .start()
///     .await?;
/// match pending.verification_uri_complete() {
///     Some(uri) => eprintln!("Open {uri}"),
///     None => eprintln!("Open {} and enter {}", pending.verification_uri(), pending.user_code()),
/// }
/// let session = pending.finish().await?;
/// TokenFile::from_env().expect("a config directory").store(&session)?;
/// # Ok(()) }
/// ```
///
/// Polls at the server's `interval` (5 s when it names none), 5 s slower after each
/// `slow_down`; goes on while `authorization_pending`; stops with
/// [`LoginError::AccessDenied`] on `access_denied` and [`LoginError::Expired`] on
/// `expired_token` or once `expires_in` has passed. With `openid` in the scope, the ID token
/// is required and checked as the browser login checks it (without `nonce`, which this grant
/// does not carry).
#[derive(Clone)]
pub struct DeviceLogin {
    config: ClientConfig,
    scope: Option<String>,
}

impl DeviceLogin {
    /// A device login at `issuer` (its metadata names the `device_authorization_endpoint`)
    /// as the public client `client_id`.
    ///
    /// # Errors
    /// As [`AuthorizationCodeLogin::new`](crate::AuthorizationCodeLogin::new).
    pub fn new(issuer: &str, client_id: impl Into<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            config: ClientConfig::new(issuer, client_id.into())?,
            scope: None,
        })
    }

    /// A confidential client: authenticates with `secret`.
    #[must_use]
    pub fn client_secret(mut self, secret: impl Into<Secret>, auth: ClientAuth) -> Self {
        self.config.secret = Some((secret.into(), auth));
        self
    }

    /// The scope to ask for (space-separated); with `openid`, an ID token is required.
    #[must_use]
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = crate::oauth::normal_scope(scope);
        self
    }

    /// Asks the device authorization endpoint for a user code.
    ///
    /// # Errors
    /// [`LoginError::Discovery`] (no `device_authorization_endpoint` included), or
    /// [`LoginError::Token`] when the endpoint refuses or answers nonsense.
    pub async fn start(&self) -> Result<PendingDeviceLogin, LoginError> {
        let issuer = self
            .config
            .discover()
            .await
            .map_err(LoginError::Discovery)?;
        let endpoint = issuer
            .endpoint(
                issuer.metadata.device_authorization_endpoint(),
                "bad_device_authorization_endpoint",
            )
            .map_err(LoginError::Discovery)?
            .ok_or_else(|| {
                LoginError::Discovery(TokenError::new(
                    TokenErrorKind::InvalidResponse,
                    "no_device_authorization_endpoint",
                ))
            })?;
        let mut params = Vec::new();
        if let Some(scope) = &self.scope {
            params.push(("scope", scope.as_str()));
        }
        let (reply, started) = issuer
            .client
            .post_to(&endpoint, &params)
            .await
            .map_err(LoginError::Token)?;
        if reply.status != StatusCode::OK {
            // An OAuth error response, or the failure the status stands for.
            let error = match granted_from_reply(reply, started) {
                Err(e) => e,
                Ok(_) => TokenError::new(TokenErrorKind::InvalidResponse, "unexpected_status"),
            };
            return Err(LoginError::Token(error));
        }
        let response: DeviceResponse = serde_json::from_slice(&reply.body).map_err(|_| {
            LoginError::Token(TokenError::new(
                TokenErrorKind::InvalidResponse,
                "not_a_device_response",
            ))
        })?;
        for uri in std::iter::once(&response.verification_uri)
            .chain(response.verification_uri_complete.as_ref())
        {
            check_verification_uri(uri)?;
        }
        let expires_in = Duration::from_secs(response.expires_in).min(MAX_EXPIRES_IN);
        Ok(PendingDeviceLogin {
            user_code: printable(&response.user_code),
            verification_uri: printable(&response.verification_uri),
            verification_uri_complete: response
                .verification_uri_complete
                .map(|uri| printable(&uri)),
            device_code: Secret::from(response.device_code),
            deadline: started + expires_in,
            expires_in,
            interval: response
                .interval
                .map_or(DEFAULT_INTERVAL, Duration::from_secs)
                .clamp(Duration::from_secs(1), MAX_INTERVAL),
            openid: self
                .scope
                .as_deref()
                .is_some_and(|s| s.split(' ').any(|s| s == "openid")),
            issuer,
        })
    }
}

impl fmt::Debug for DeviceLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceLogin")
            .field("issuer", &self.config.discovery.issuer())
            .field("client_id", &self.config.client_id)
            .field(
                "client_secret",
                &self.config.secret.as_ref().map(|_| "[redacted]"),
            )
            .field("scope", &self.scope)
            .finish()
    }
}

/// A device login waiting for the person: what to show them, then [`finish`](Self::finish).
pub struct PendingDeviceLogin {
    user_code: String,
    verification_uri: String,
    verification_uri_complete: Option<String>,
    device_code: Secret,
    deadline: Instant,
    expires_in: Duration,
    interval: Duration,
    openid: bool,
    issuer: IssuerClient,
}

impl fmt::Debug for PendingDeviceLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingDeviceLogin")
            .field("issuer", &self.issuer.issuer)
            .field("verification_uri", &self.verification_uri)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

/// What one poll of the token endpoint said.
pub(crate) enum Poll {
    Granted(Box<Granted>),
    Pending,
    SlowDown,
    Failed(LoginError),
}

/// The person is sent to a verification URI: https, or http on this machine, as every
/// endpoint, and short enough to be shown whole (never cut into a broken link).
fn check_verification_uri(uri: &str) -> Result<(), LoginError> {
    if tower_auth_http::parse_endpoint(uri).is_ok() && uri.len() <= 256 {
        return Ok(());
    }
    Err(LoginError::Token(TokenError::new(
        TokenErrorKind::InvalidResponse,
        "bad_verification_uri",
    )))
}

/// What one poll of the token endpoint comes to (RFC 8628 section 3.5).
fn judge_poll(reply: Result<(tower_auth_http::Reply, tokio::time::Instant), TokenError>) -> Poll {
    let (reply, started) = match reply {
        Ok(reply) => reply,
        // A connection that fails is retried, more slowly: a flow of many minutes does not
        // end on one.
        Err(e) if e.kind() == TokenErrorKind::Unavailable => return Poll::SlowDown,
        Err(e) => return Poll::Failed(LoginError::Token(e)),
    };
    match granted_from_reply(reply, started) {
        Ok(granted) => Poll::Granted(Box::new(granted)),
        // A 5xx or 429: the same.
        Err(e) if e.kind() == TokenErrorKind::Unavailable => Poll::SlowDown,
        Err(e) => match e.oauth_error() {
            Some("authorization_pending") => Poll::Pending,
            Some("slow_down") => Poll::SlowDown,
            Some("access_denied") => Poll::Failed(LoginError::AccessDenied {
                description: e.description().map(str::to_owned),
            }),
            Some("expired_token") => Poll::Failed(LoginError::Expired),
            _ => Poll::Failed(LoginError::Token(e)),
        },
    }
}

/// Polls with `poll` until it grants or fails: first after `interval`, 5 s slower after each
/// `slow_down`, never past `deadline`.
pub(crate) async fn poll_until<F, Fut>(
    mut interval: Duration,
    deadline: Instant,
    mut poll: F,
) -> Result<Granted, LoginError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Poll>,
{
    loop {
        let next = Instant::now() + interval;
        if next >= deadline {
            tokio::time::sleep_until(deadline).await;
            return Err(LoginError::Expired);
        }
        tokio::time::sleep_until(next).await;
        match poll().await {
            Poll::Granted(granted) => return Ok(*granted),
            Poll::Pending => {}
            Poll::SlowDown => interval = (interval + SLOW_DOWN).min(MAX_INTERVAL),
            Poll::Failed(error) => return Err(error),
        }
    }
}

impl PendingDeviceLogin {
    /// The code the person enters.
    pub fn user_code(&self) -> &str {
        &self.user_code
    }

    /// Where the person enters it.
    pub fn verification_uri(&self) -> &str {
        &self.verification_uri
    }

    /// The URL with the code in it, when the server gives one (show it rather than the two
    /// above).
    pub fn verification_uri_complete(&self) -> Option<&str> {
        self.verification_uri_complete.as_deref()
    }

    /// How long the code is good for.
    pub fn expires_in(&self) -> Duration {
        self.expires_in
    }

    /// Polls until the person approves, refuses, or the code expires.
    ///
    /// # Errors
    /// [`LoginError::AccessDenied`], [`LoginError::Expired`], [`LoginError::Token`] (another
    /// OAuth error, an unusable answer, an unreachable endpoint) or
    /// [`LoginError::IdToken`].
    pub async fn finish(self) -> Result<Session, LoginError> {
        let device_code = std::str::from_utf8(self.device_code.expose_secret())
            .unwrap_or_default()
            .to_owned();
        let client = &self.issuer.client;
        let granted = poll_until(self.interval, self.deadline, || async {
            judge_poll(
                client
                    .grant(&[("grant_type", GRANT_TYPE), ("device_code", &device_code)])
                    .await,
            )
        })
        .await?;
        let client_id = client.client_id().to_owned();
        if self.openid {
            let id_token = granted
                .id_token
                .as_ref()
                .ok_or(LoginError::IdToken("id_token_missing"))?;
            let id_token = std::str::from_utf8(id_token.expose_secret())
                .map_err(|_| LoginError::IdToken("id_token_malformed"))?;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            check_id_token(id_token, &self.issuer.issuer, &client_id, None, now)
                .map_err(LoginError::IdToken)?;
            #[cfg(feature = "oidc")]
            crate::id_token::verify_signature(id_token, &self.issuer.issuer, &client_id)
                .await
                .map_err(LoginError::IdToken)?;
        }
        Ok(session_of(&self.issuer.issuer, &client_id, granted))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// SECURITY.md O17: a verification URI the person is sent to is https (or loopback
    /// http) and shown whole.
    #[test]
    fn verification_uris_are_https_and_whole() {
        assert!(check_verification_uri("https://idp.example/activate?user_code=ABCD").is_ok());
        assert!(check_verification_uri("http://127.0.0.1:8080/activate").is_ok());
        for bad in [
            "http://idp.example/activate",
            "javascript:alert(1)",
            "idp.example/activate",
            "ftp://idp.example/x",
        ] {
            assert!(check_verification_uri(bad).is_err(), "{bad}");
        }
        let long = format!("https://idp.example/{}", "a".repeat(300));
        assert!(check_verification_uri(&long).is_err());
    }

    /// SECURITY.md O17: an unreachable or failing endpoint slows the polling down; an
    /// OAuth error ends it.
    #[tokio::test]
    async fn a_failing_endpoint_slows_polling_and_oauth_errors_end_it() {
        let reply = |status: u16, body: &str| {
            Ok((
                tower_auth_http::Reply {
                    status: StatusCode::from_u16(status).unwrap(),
                    retry_after: None,
                    body: bytes::Bytes::from(body.to_owned()),
                },
                tokio::time::Instant::now(),
            ))
        };
        let down = Err(TokenError::new(
            TokenErrorKind::Unavailable,
            "connect_failed",
        ));
        assert!(matches!(judge_poll(down), Poll::SlowDown));
        assert!(matches!(judge_poll(reply(503, "")), Poll::SlowDown));
        assert!(matches!(
            judge_poll(reply(400, r#"{"error":"authorization_pending"}"#)),
            Poll::Pending
        ));
        assert!(matches!(
            judge_poll(reply(400, r#"{"error":"access_denied"}"#)),
            Poll::Failed(LoginError::AccessDenied { .. })
        ));
        assert!(matches!(
            judge_poll(reply(400, r#"{"error":"invalid_grant"}"#)),
            Poll::Failed(LoginError::Token(_))
        ));
    }

    /// Scripted answers; records when each poll came, in seconds since the start.
    async fn script(
        answers: Vec<&'static str>,
        interval: u64,
        expires_in: u64,
    ) -> (Result<Granted, LoginError>, Vec<u64>) {
        let start = Instant::now();
        let times = Arc::new(Mutex::new(Vec::new()));
        let answers = Arc::new(Mutex::new(answers.into_iter()));
        let result = poll_until(
            Duration::from_secs(interval),
            start + Duration::from_secs(expires_in),
            || {
                let times = Arc::clone(&times);
                let answers = Arc::clone(&answers);
                async move {
                    times.lock().unwrap().push(start.elapsed().as_secs());
                    match answers.lock().unwrap().next() {
                        Some("pending") | None => Poll::Pending,
                        Some("slow_down") => Poll::SlowDown,
                        Some("denied") => {
                            Poll::Failed(LoginError::AccessDenied { description: None })
                        }
                        Some("expired") => Poll::Failed(LoginError::Expired),
                        Some(_) => Poll::Granted(Box::new(Granted {
                            token: crate::Token::new("access", Some(Duration::from_secs(60))),
                            refresh_token: None,
                            id_token: None,
                        })),
                    }
                }
            },
        )
        .await;
        let times = times.lock().unwrap().clone();
        (result, times)
    }

    #[tokio::test(start_paused = true)]
    async fn polls_at_the_interval_and_slows_down_by_five_seconds() {
        let (result, times) = script(
            vec!["pending", "slow_down", "pending", "slow_down", "granted"],
            5,
            600,
        )
        .await;
        assert!(result.is_ok());
        assert_eq!(times, [5, 10, 20, 30, 45]);
    }

    /// SECURITY.md O17.
    #[tokio::test(start_paused = true)]
    async fn stops_at_expires_in_on_denial_and_on_expiry() {
        let (result, times) = script(vec![], 5, 22).await;
        assert!(
            matches!(result, Err(LoginError::Expired)),
            "{:?}",
            result.err()
        );
        assert_eq!(times, [5, 10, 15, 20]);
        let (result, times) = script(vec!["pending", "denied"], 5, 600).await;
        assert!(
            matches!(result, Err(LoginError::AccessDenied { .. })),
            "{:?}",
            result.err()
        );
        assert_eq!(times, [5, 10]);
        let (result, _) = script(vec!["expired"], 5, 600).await;
        assert!(
            matches!(result, Err(LoginError::Expired)),
            "{:?}",
            result.err()
        );
    }
}
