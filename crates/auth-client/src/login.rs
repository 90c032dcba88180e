//! A person's login: the authorization code grant with PKCE (RFC 6749 section 4.1, RFC 7636)
//! through the system browser and a loopback redirect (RFC 8252), with `state` and, for
//! OpenID Connect, `nonce` and ID token checks.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::Uri;
use rand::RngCore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tower_auth_core::{ConfigError, Secret, sha256_digest};
use tower_auth_http::{Discovery, HttpError, Metadata, require_tls_off_loopback};

use crate::oauth::{ClientAuth, OAuthClient, no_less_secure};
use crate::response::granted_from_reply;
use crate::token_file::Session;
use crate::transport::{config_error, token_error};
use crate::{TokenError, TokenErrorKind};

/// The loopback port the redirect listener binds unless told otherwise.
pub const DEFAULT_REDIRECT_PORT: u16 = 48080;

/// The path of the redirect URI unless told otherwise.
pub const DEFAULT_CALLBACK_PATH: &str = "/callback";

/// How long a login waits for the browser unless told otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// A request head longer than this is refused (a redirect carries a code and a state).
const MAX_HEAD: usize = 16 * 1024;

/// A connection to the listener that sends no complete request head within this is closed.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections the redirect listener serves at once; more are dropped.
const MAX_CONNECTIONS: usize = 16;

/// How far an ID token's `exp` may be past before it is refused (clock skew).
const ID_TOKEN_LEEWAY: u64 = 60;

/// The page the browser shows after the redirect, whatever it carried: no server text.
const DONE_PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>Login</title></head>\
<body><h1>Login received</h1><p>You can close this window and return to the terminal.</p></body></html>";
const FAILED_PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>Login</title></head>\
<body><h1>Login failed</h1><p>Return to the terminal for the reason.</p></body></html>";

/// Why a login did not end in a session.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoginError {
    /// The loopback redirect listener could not be bound (the port is taken?).
    Listen(io::Error),
    /// The issuer's metadata could not be had or names no usable authorization or token
    /// endpoint.
    Discovery(TokenError),
    /// The person (or the IdP's policy) refused: `error=access_denied` (RFC 6749 section
    /// 4.1.2.1).
    AccessDenied {
        /// The IdP's `error_description`, cut and stripped of control characters.
        description: Option<String>,
    },
    /// The IdP redirected back with another OAuth error.
    Authorization {
        /// The OAuth `error` code.
        error: String,
        /// The IdP's `error_description`, cut and stripped of control characters.
        description: Option<String>,
    },
    /// A redirect whose `state` is not the one this login sent: a forged or stale redirect
    /// (cross-site request forgery, RFC 6749 section 10.12). No code is exchanged. The
    /// listener answers such requests with a 400 page and keeps waiting, so
    /// [`PendingLogin::finish`] does not end with it.
    StateMismatch,
    /// The redirect names another issuer (`iss`, RFC 9207): a mix-up attack.
    IssuerMismatch,
    /// The redirect carried neither a code nor an error, or a parameter twice.
    BadCallback,
    /// No redirect came within the login's timeout.
    Timeout,
    /// The device code expired (`expired_token`, or `expires_in` passed) before the person
    /// approved (RFC 8628).
    Expired,
    /// The token endpoint refused the code or could not be reached.
    Token(TokenError),
    /// The ID token is missing or fails a check (a short reason such as `id_token_nonce`).
    IdToken(&'static str),
}

impl fmt::Display for LoginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Listen(e) => write!(f, "cannot listen for the login redirect: {e}"),
            Self::Discovery(e) => write!(f, "cannot read the issuer's metadata: {e}"),
            Self::AccessDenied { description } => {
                f.write_str("the login was refused (access_denied)")?;
                if let Some(d) = description {
                    write!(f, ": {d}")?;
                }
                Ok(())
            }
            Self::Authorization { error, description } => {
                write!(f, "the identity provider answered the login with {error}")?;
                if let Some(d) = description {
                    write!(f, ": {d}")?;
                }
                Ok(())
            }
            Self::StateMismatch => f.write_str(
                "the login redirect carried another state: a forged or stale redirect was ignored; log in again",
            ),
            Self::IssuerMismatch => f.write_str("the login redirect names another issuer"),
            Self::BadCallback => f.write_str("the login redirect carried no code"),
            Self::Timeout => f.write_str("no login redirect came in time"),
            Self::Expired => f.write_str("the device code expired before the login was approved"),
            Self::Token(e) => write!(f, "the code could not be exchanged for tokens: {e}"),
            Self::IdToken(reason) => write!(f, "the ID token was refused ({reason})"),
        }
    }
}

impl std::error::Error for LoginError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Listen(e) => Some(e),
            Self::Discovery(e) | Self::Token(e) => Some(e),
            _ => None,
        }
    }
}

/// `len` random bytes, base64url without padding.
pub(crate) fn random_text(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The PKCE S256 challenge of `verifier` (RFC 7636 section 4.2).
pub(crate) fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha256_digest(verifier.as_bytes()))
}

/// Server text, stripped of control characters and cut to 256 bytes.
pub(crate) fn printable(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > 256 {
            break;
        }
        out.push(c);
    }
    out
}

/// A client of one issuer: its metadata and its token endpoint, found by discovery.
#[derive(Clone)]
pub(crate) struct IssuerClient {
    pub(crate) issuer: String,
    pub(crate) client: OAuthClient,
    pub(crate) metadata: Metadata,
    pub(crate) document: Uri,
}

/// How a client of `issuer` is configured before discovery.
#[derive(Clone)]
pub(crate) struct ClientConfig {
    pub(crate) discovery: Discovery,
    pub(crate) client_id: String,
    pub(crate) secret: Option<(Secret, ClientAuth)>,
}

impl ClientConfig {
    pub(crate) fn new(issuer: &str, client_id: String) -> Result<Self, ConfigError> {
        let discovery =
            Discovery::openid_or_oauth(issuer).map_err(|e| config_error("issuer", e))?;
        require_tls_off_loopback(discovery.url()).map_err(|e| config_error("issuer", e))?;
        if client_id.is_empty() {
            return Err(ConfigError::new("client_id", "is empty"));
        }
        Ok(Self {
            discovery,
            client_id,
            secret: None,
        })
    }

    /// Fetches the issuer's metadata; the client then talks to its token endpoint.
    pub(crate) async fn discover(&self) -> Result<IssuerClient, TokenError> {
        let http = tower_auth_http::HttpClient::new(
            tower_auth_http::DEFAULT_TIMEOUT,
            tower_auth_http::DEFAULT_TIMEOUT,
        )
        .map_err(|_| TokenError::new(TokenErrorKind::Other, "tls_setup_failed"))?;
        let metadata = self.discovery.fetch(&http).await.map_err(|e| match e {
            HttpError::UnexpectedStatus => {
                TokenError::new(TokenErrorKind::InvalidResponse, "discovery_failed")
            }
            other => token_error(other),
        })?;
        let token_endpoint = self.endpoint(metadata.token_endpoint(), "token_endpoint")?;
        let mut client =
            OAuthClient::at_url(&token_endpoint.to_string(), self.client_id.clone(), None)
                .map_err(|e| {
                    TokenError::new(TokenErrorKind::InvalidResponse, "bad_token_endpoint")
                        .with_source(e)
                })?;
        if let Some((secret, auth)) = &self.secret {
            client = client.with_secret(secret.clone(), *auth);
        }
        Ok(IssuerClient {
            issuer: self.discovery.issuer().to_owned(),
            client,
            metadata,
            document: self.discovery.url().clone(),
        })
    }

    fn endpoint(
        &self,
        parsed: Result<Uri, HttpError>,
        name: &'static str,
    ) -> Result<Uri, TokenError> {
        let uri = parsed.map_err(|e| {
            let reason = match (name, e) {
                ("token_endpoint", HttpError::MissingEndpoint) => "no_token_endpoint",
                ("token_endpoint", _) => "bad_token_endpoint",
                (_, HttpError::MissingEndpoint) => "no_authorization_endpoint",
                _ => "bad_authorization_endpoint",
            };
            TokenError::new(TokenErrorKind::InvalidResponse, reason)
                .with_source(config_error(name, e))
        })?;
        no_less_secure(self.discovery.url(), &uri)?;
        Ok(uri)
    }
}

impl IssuerClient {
    /// An optional endpoint of the metadata (`None` when not advertised), never less secure
    /// than the metadata's own URL.
    pub(crate) fn endpoint(
        &self,
        parsed: Result<Uri, HttpError>,
        bad: &'static str,
    ) -> Result<Option<Uri>, TokenError> {
        match parsed {
            Err(HttpError::MissingEndpoint) => Ok(None),
            Err(e) => Err(TokenError::new(TokenErrorKind::InvalidResponse, bad)
                .with_source(config_error(bad, e))),
            Ok(uri) => {
                no_less_secure(&self.document, &uri)
                    .map_err(|_| TokenError::new(TokenErrorKind::InvalidResponse, bad))?;
                Ok(Some(uri))
            }
        }
    }
}

/// A person's login by the authorization code grant with PKCE through the system browser
/// (RFC 6749 section 4.1, RFC 7636 S256, RFC 8252).
///
/// ```no_run
/// use tower_auth_client::{AuthorizationCodeLogin, TokenFile, open_browser};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let login = AuthorizationCodeLogin::new("https://login.example.com", "cli")?
///     .scope("openid offline_access");
/// let pending = login.start().await?; // listening on http://127.0.0.1:48080/callback
/// println!("{}", pending.authorization_url());
/// open_browser(pending.authorization_url());
/// let session = pending.finish().await?; // the redirect, the code, the tokens
/// TokenFile::from_env().expect("a config directory").store(&session)?;
/// # Ok(()) }
/// ```
///
/// - The redirect URI is `http://127.0.0.1:<port><path>` (RFC 8252 section 7.3: the loopback
///   IP literal, not `localhost`); the listener binds 127.0.0.1 only, answers only `GET` of
///   that path from a loopback peer, and shows a fixed page, never the IdP's text.
/// - `state` (256 random bits) must come back exactly: a request with any other value (or
///   none) gets a 400 page, its code is never exchanged, and the login goes on waiting, so
///   that a page in another tab or another local user cannot end it; only the redirect with
///   this login's state does. An `iss` parameter (RFC 9207) must name the issuer.
/// - The code is exchanged with its PKCE verifier (256 random bits), as a public client or,
///   with [`client_secret`](Self::client_secret), a confidential one.
/// - With `openid` in the scope, a `nonce` is sent and the ID token is required and checked:
///   `iss` the issuer, `aud` the client id (and `azp` when there are several audiences),
///   `exp` not past, `nonce` the one sent. It comes straight from the token endpoint over the
///   connection the loopback rule protects (OpenID Connect Core section 3.1.3.7, item 6);
///   with the feature `oidc` its signature is also checked against the issuer's published
///   keys with `tower-auth-oidc`.
#[derive(Clone)]
pub struct AuthorizationCodeLogin {
    config: ClientConfig,
    scope: Option<String>,
    port: u16,
    path: String,
    timeout: Duration,
}

impl AuthorizationCodeLogin {
    /// A login at `issuer` (its OpenID Connect or RFC 8414 metadata names the endpoints) as
    /// the public client `client_id`.
    ///
    /// # Errors
    /// A [`ConfigError`] when the issuer is not an absolute `https` URL (or loopback `http`),
    /// or the client id is empty.
    pub fn new(issuer: &str, client_id: impl Into<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            config: ClientConfig::new(issuer, client_id.into())?,
            scope: None,
            port: DEFAULT_REDIRECT_PORT,
            path: DEFAULT_CALLBACK_PATH.to_owned(),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// A confidential client: authenticates to the token endpoint with `secret`.
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

    /// The loopback port of the redirect URI (default 48080, as registered with the IdP);
    /// 0 lets the system choose (for IdPs that allow any port, RFC 8252 section 7.3).
    #[must_use]
    pub fn redirect_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The path of the redirect URI (default `/callback`).
    ///
    /// # Errors
    /// A [`ConfigError`] unless the path starts with `/` and holds only unreserved
    /// characters and `/`.
    pub fn callback_path(mut self, path: &str) -> Result<Self, ConfigError> {
        let ok = path.starts_with('/')
            && path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b));
        if !ok {
            return Err(ConfigError::new(
                "callback_path",
                "must be /[A-Za-z0-9/-._~]*",
            ));
        }
        self.path = path.to_owned();
        Ok(self)
    }

    /// How long [`PendingLogin::finish`] waits for the redirect (default 5 minutes).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn wants_id_token(&self) -> bool {
        self.scope
            .as_deref()
            .is_some_and(|s| s.split(' ').any(|s| s == "openid"))
    }

    /// Reads the issuer's metadata, binds the redirect listener and makes the authorization
    /// URL, fresh `state`, `nonce` and PKCE verifier included.
    ///
    /// # Errors
    /// [`LoginError::Discovery`] or [`LoginError::Listen`].
    pub async fn start(&self) -> Result<PendingLogin, LoginError> {
        let issuer = self
            .config
            .discover()
            .await
            .map_err(LoginError::Discovery)?;
        let authorize = self
            .config
            .endpoint(
                issuer.metadata.authorization_endpoint(),
                "authorization_endpoint",
            )
            .map_err(LoginError::Discovery)?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, self.port))
            .await
            .map_err(LoginError::Listen)?;
        let port = listener.local_addr().map_err(LoginError::Listen)?.port();
        let redirect_uri = format!("http://127.0.0.1:{port}{}", self.path);
        let verifier = random_text(32);
        let state = random_text(32);
        let nonce = self.wants_id_token().then(|| random_text(32));
        let mut query = form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", &redirect_uri);
        if let Some(scope) = &self.scope {
            query.append_pair("scope", scope);
        }
        query
            .append_pair("state", &state)
            .append_pair("code_challenge", &s256_challenge(&verifier))
            .append_pair("code_challenge_method", "S256");
        if let Some(nonce) = &nonce {
            query.append_pair("nonce", nonce);
        }
        let base = authorize.to_string();
        let separator = if authorize.query().is_some() {
            '&'
        } else {
            '?'
        };
        let url = format!("{base}{separator}{}", query.finish());
        Ok(PendingLogin {
            url,
            redirect_uri,
            listener,
            path: self.path.clone(),
            verifier: Secret::from(verifier),
            state,
            nonce,
            issuer,
            timeout: self.timeout,
        })
    }
}

impl fmt::Debug for AuthorizationCodeLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationCodeLogin")
            .field("issuer", &self.config.discovery.issuer())
            .field("client_id", &self.config.client_id)
            .field(
                "client_secret",
                &self.config.secret.as_ref().map(|_| "[redacted]"),
            )
            .field("scope", &self.scope)
            .field("port", &self.port)
            .field("path", &self.path)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A login under way: the URL to open, and the listener waiting for the redirect.
pub struct PendingLogin {
    url: String,
    redirect_uri: String,
    listener: TcpListener,
    path: String,
    verifier: Secret,
    state: String,
    nonce: Option<String>,
    issuer: IssuerClient,
    timeout: Duration,
}

impl fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingLogin")
            .field("issuer", &self.issuer.issuer)
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// What one request to the listener was.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    /// Not the redirect (another path, another method, not HTTP): answered and ignored.
    Other(u16),
    /// The redirect, with the code or why there is none.
    Callback(Result<String, CallbackError>),
}

#[derive(Debug, PartialEq, Eq)]
enum CallbackError {
    StateMismatch,
    IssuerMismatch,
    BadCallback,
    Denied(String, Option<String>),
}

impl From<CallbackError> for LoginError {
    fn from(e: CallbackError) -> Self {
        match e {
            CallbackError::StateMismatch => Self::StateMismatch,
            CallbackError::IssuerMismatch => Self::IssuerMismatch,
            CallbackError::BadCallback => Self::BadCallback,
            CallbackError::Denied(error, description) if error == "access_denied" => {
                Self::AccessDenied { description }
            }
            CallbackError::Denied(error, description) => Self::Authorization { error, description },
        }
    }
}

/// Reads the request line of `head` and, for `GET <path>?...`, the redirect's parameters:
/// `state` first (nothing else is believed without it), then `iss`, then `error` or `code`.
fn parse_request(head: &str, path: &str, state: &str, issuer: &str) -> Request {
    let line = head.split("\r\n").next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Request::Other(400);
    };
    if !version.starts_with("HTTP/1.") {
        return Request::Other(400);
    }
    let (target_path, query) = target.split_once('?').unwrap_or((target, ""));
    if target_path != path {
        return Request::Other(404);
    }
    if method != "GET" {
        return Request::Other(405);
    }
    Request::Callback(parse_callback(query, state, issuer))
}

fn parse_callback(query: &str, state: &str, issuer: &str) -> Result<String, CallbackError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let one = |name: &str| -> Result<Option<String>, CallbackError> {
        let mut values = pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        let first = values.next().cloned();
        // RFC 6749 section 3.1: no parameter more than once.
        if values.next().is_some() {
            return Err(CallbackError::BadCallback);
        }
        Ok(first)
    };
    // The state first: nothing else in a request without it is believed, or ends the login.
    let sent = one("state").map_err(|_| CallbackError::StateMismatch)?;
    if sent.is_none_or(|sent| !tower_auth_core::Secret::from(sent).ct_eq(state.as_bytes())) {
        return Err(CallbackError::StateMismatch);
    }
    if one("iss")?.is_some_and(|iss| iss != issuer) {
        return Err(CallbackError::IssuerMismatch);
    }
    if let Some(error) = one("error")? {
        let description = one("error_description")?.map(|d| printable(&d));
        return Err(CallbackError::Denied(printable(&error), description));
    }
    one("code")?
        .filter(|c| !c.is_empty())
        .ok_or(CallbackError::BadCallback)
}

/// Whether a connection from `peer` may be heard: loopback only (the listener binds
/// 127.0.0.1, so this is a second lock on the same door).
fn admit(peer: SocketAddr) -> bool {
    peer.ip().is_loopback()
}

fn page(status: u16, body: &str) -> String {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Bad Request",
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
cache-control: no-store\r\nreferrer-policy: no-referrer\r\nx-content-type-options: nosniff\r\n\
content-security-policy: default-src 'none'\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Reads one request head, answers it, and reports the redirect if that is what it was.
async fn serve_one(
    mut stream: TcpStream,
    path: String,
    state: String,
    issuer: String,
    found: mpsc::Sender<Result<String, CallbackError>>,
) {
    let mut head = Vec::new();
    let read = tokio::time::timeout(HEAD_TIMEOUT, async {
        let mut buf = [0u8; 2048];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await?;
            if n == 0 || head.len() + n > MAX_HEAD {
                return Err(io::Error::from(io::ErrorKind::InvalidData));
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok(())
    })
    .await;
    if !matches!(read, Ok(Ok(()))) {
        return;
    }
    let request = parse_request(&String::from_utf8_lossy(&head), &path, &state, &issuer);
    let answer = match &request {
        Request::Other(status) => page(*status, FAILED_PAGE),
        Request::Callback(Ok(_)) => page(200, DONE_PAGE),
        Request::Callback(Err(_)) => page(400, FAILED_PAGE),
    };
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
    match request {
        // A request without this login's `state` is not the redirect: a page in another tab
        // or another local user can send one to the well-known port. It is refused and the
        // login goes on waiting, so that nobody but the IdP's redirect can end it.
        Request::Callback(Err(CallbackError::StateMismatch)) => {
            tracing::warn!(target: "auth", event = "login_redirect_refused", reason = "state_mismatch",
                "login redirect listener: a request without this login's state was refused; still waiting");
        }
        Request::Callback(result) => {
            let _ = found.send(result).await;
        }
        Request::Other(_) => {}
    }
}

impl PendingLogin {
    /// The URL to open in the browser.
    pub fn authorization_url(&self) -> &str {
        &self.url
    }

    /// The redirect URI, `http://127.0.0.1:<port><path>`.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Waits for the redirect (at most the login's timeout), exchanges the code and checks
    /// the ID token: the new session.
    ///
    /// # Errors
    /// Every [`LoginError`] but [`Listen`](LoginError::Listen) and
    /// [`Discovery`](LoginError::Discovery).
    pub async fn finish(self) -> Result<Session, LoginError> {
        let code = self.wait().await?;
        let (reply, started) = self
            .issuer
            .client
            .grant(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &self.redirect_uri),
                (
                    "code_verifier",
                    std::str::from_utf8(self.verifier.expose_secret()).unwrap_or_default(),
                ),
            ])
            .await
            .map_err(LoginError::Token)?;
        let granted = granted_from_reply(reply, started).map_err(LoginError::Token)?;
        let client_id = self.issuer.client.client_id().to_owned();
        if let Some(nonce) = &self.nonce {
            let id_token = granted
                .id_token
                .as_ref()
                .ok_or(LoginError::IdToken("id_token_missing"))?;
            let id_token = std::str::from_utf8(id_token.expose_secret())
                .map_err(|_| LoginError::IdToken("id_token_malformed"))?;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            check_id_token(id_token, &self.issuer.issuer, &client_id, Some(nonce), now)
                .map_err(LoginError::IdToken)?;
            #[cfg(feature = "oidc")]
            crate::id_token::verify_signature(id_token, &self.issuer.issuer, &client_id)
                .await
                .map_err(LoginError::IdToken)?;
        }
        Ok(session_of(&self.issuer.issuer, &client_id, granted))
    }

    async fn wait(&self) -> Result<String, LoginError> {
        let (found, mut results) = mpsc::channel(4);
        let mut connections = JoinSet::new();
        let waiting = async {
            loop {
                tokio::select! {
                    accepted = self.listener.accept() => {
                        let Ok((stream, peer)) = accepted else {
                            // Out of descriptors, say: wait a moment rather than spin.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        };
                        // Finished connections leave the set; past a few at once, more are
                        // dropped: nobody but this login's browser needs the listener.
                        while connections.try_join_next().is_some() {}
                        if connections.len() >= MAX_CONNECTIONS {
                            continue;
                        }
                        if !admit(peer) {
                            tracing::warn!(%peer, "login redirect listener: connection from a non-loopback peer refused");
                            continue;
                        }
                        connections.spawn(serve_one(
                            stream,
                            self.path.clone(),
                            self.state.clone(),
                            self.issuer.issuer.clone(),
                            found.clone(),
                        ));
                    }
                    Some(result) = results.recv() => return result,
                }
            }
        };
        let result = tokio::time::timeout(self.timeout, waiting)
            .await
            .map_err(|_| LoginError::Timeout)?;
        connections.abort_all();
        result.map_err(LoginError::from)
    }
}

/// The session a token response makes.
pub(crate) fn session_of(
    issuer: &str,
    client_id: &str,
    granted: crate::response::Granted,
) -> Session {
    let mut session = Session::new(issuer, client_id, granted.token.secret().clone());
    if let Some(refresh) = granted.refresh_token {
        session = session.refresh_token(refresh);
    }
    if let Some(id) = granted.id_token {
        session = session.id_token(id);
    }
    if let Some(left) = granted.token.expires_in() {
        session = session.expires_at(SystemTime::now() + left);
    }
    session
}

/// The unverified claims of a compact JWS.
pub(crate) fn jwt_claims(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let mut segments = token.split('.');
    let (_, payload, _) = (segments.next()?, segments.next()?, segments.next()?);
    if segments.next().is_some() {
        return None;
    }
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

/// The claims checks of OpenID Connect Core section 3.1.3.7 for an ID token received from
/// the token endpoint: `iss`, `aud` (and `azp`), `exp`, and `nonce` when one was sent.
pub(crate) fn check_id_token(
    token: &str,
    issuer: &str,
    client_id: &str,
    nonce: Option<&str>,
    now: u64,
) -> Result<(), &'static str> {
    let claims = jwt_claims(token).ok_or("id_token_malformed")?;
    if claims.get("iss").and_then(|v| v.as_str()) != Some(issuer) {
        return Err("id_token_issuer");
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(serde_json::Value::String(aud)) => vec![aud.as_str()],
        Some(serde_json::Value::Array(auds)) => auds.iter().filter_map(|a| a.as_str()).collect(),
        _ => Vec::new(),
    };
    if !audiences.contains(&client_id) {
        return Err("id_token_audience");
    }
    if audiences.len() > 1
        && claims
            .get("azp")
            .is_some_and(|azp| azp.as_str() != Some(client_id))
    {
        return Err("id_token_audience");
    }
    let exp = claims
        .get("exp")
        .and_then(serde_json::Value::as_u64)
        .ok_or("id_token_expired")?;
    if exp.saturating_add(ID_TOKEN_LEEWAY) <= now {
        return Err("id_token_expired");
    }
    if let Some(nonce) = nonce {
        let sent = claims.get("nonce").and_then(|v| v.as_str());
        if sent.is_none_or(|sent| !Secret::from(sent).ct_eq(nonce.as_bytes())) {
            return Err("id_token_nonce");
        }
    }
    Ok(())
}

/// Opens `url` in the system browser: `open` on macOS, the URL handler on Windows, and
/// `xdg-open` elsewhere when a display is set. `false` when there is none to open or it
/// could not be started: print the URL instead (the caller should print it either way).
pub fn open_browser(url: &str) -> bool {
    let mut command = if cfg!(target_os = "macos") {
        let mut c = std::process::Command::new("open");
        c.arg(url);
        c
    } else if cfg!(windows) {
        let mut c = std::process::Command::new("rundll32");
        c.arg("url.dll,FileProtocolHandler").arg(url);
        c
    } else {
        let display = ["DISPLAY", "WAYLAND_DISPLAY"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()));
        if !display {
            return false;
        }
        let mut c = std::process::Command::new("xdg-open");
        c.arg(url);
        c
    };
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    match command.spawn() {
        Ok(mut child) => {
            // Reaped off the caller's thread: the opener exits once the browser has the URL.
            std::thread::spawn(move || child.wait());
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 appendix B.
    #[test]
    fn s256_of_the_rfc_7636_example() {
        assert_eq!(
            s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn state_nonce_and_verifier_are_fresh_and_256_bits() {
        let values: std::collections::HashSet<String> = (0..64).map(|_| random_text(32)).collect();
        assert_eq!(values.len(), 64);
        for v in &values {
            assert_eq!(v.len(), 43, "{v}");
            assert_eq!(URL_SAFE_NO_PAD.decode(v).unwrap().len(), 32);
            // RFC 7636 section 4.1: unreserved characters only.
            assert!(
                v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
        }
    }

    const ISS: &str = "https://login.example.com";

    fn get(target: &str) -> Request {
        parse_request(
            &format!("GET {target} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n"),
            "/callback",
            "s1",
            ISS,
        )
    }

    #[test]
    fn the_callback_parser_takes_the_code_of_the_right_state() {
        assert_eq!(
            get("/callback?code=abc%2B1&state=s1"),
            Request::Callback(Ok("abc+1".into()))
        );
        assert_eq!(
            get("/callback?state=s1&code=c&iss=https%3A%2F%2Flogin.example.com"),
            Request::Callback(Ok("c".into()))
        );
        assert_eq!(get("/favicon.ico"), Request::Other(404));
        assert_eq!(get("/callback/x?code=c&state=s1"), Request::Other(404));
        let post = parse_request(
            "POST /callback?code=c&state=s1 HTTP/1.1\r\n\r\n",
            "/callback",
            "s1",
            ISS,
        );
        assert_eq!(post, Request::Other(405));
        assert_eq!(
            parse_request("garbage\r\n\r\n", "/callback", "s1", ISS),
            Request::Other(400)
        );
    }

    /// SECURITY.md O10.
    #[test]
    fn a_redirect_of_another_state_is_a_state_mismatch() {
        for target in [
            "/callback?code=c&state=s2",
            "/callback?code=c",
            "/callback?code=c&state=",
            "/callback?code=c&state=S1",
            "/callback?error=access_denied&state=evil",
        ] {
            assert_eq!(
                get(target),
                Request::Callback(Err(CallbackError::StateMismatch)),
                "{target}"
            );
        }
    }

    /// SECURITY.md O11.
    #[test]
    fn access_denied_and_other_errors_are_typed() {
        let Request::Callback(Err(e)) =
            get("/callback?error=access_denied&error_description=no%0Athanks&state=s1")
        else {
            panic!("not an error")
        };
        let e = LoginError::from(e);
        assert!(
            matches!(&e, LoginError::AccessDenied { description: Some(d) } if d == "nothanks"),
            "{e:?}"
        );
        let Request::Callback(Err(e)) = get("/callback?error=server_error&state=s1") else {
            panic!("not an error")
        };
        assert!(matches!(
            LoginError::from(e),
            LoginError::Authorization { error, .. } if error == "server_error"
        ));
    }

    /// SECURITY.md O12.
    #[test]
    fn duplicated_parameters_missing_codes_and_other_issuers_are_refused() {
        for (target, error) in [
            (
                "/callback?code=a&code=b&state=s1",
                CallbackError::BadCallback,
            ),
            // A state given twice is no state of this login's.
            (
                "/callback?code=a&state=s1&state=s1",
                CallbackError::StateMismatch,
            ),
            ("/callback?state=s1", CallbackError::BadCallback),
            ("/callback?state=s1&code=", CallbackError::BadCallback),
            (
                "/callback?code=a&state=s1&iss=https%3A%2F%2Fevil.example",
                CallbackError::IssuerMismatch,
            ),
        ] {
            assert_eq!(get(target), Request::Callback(Err(error)), "{target}");
        }
    }

    /// SECURITY.md O13.
    #[test]
    fn only_loopback_peers_are_heard() {
        assert!(admit("127.0.0.1:5000".parse().unwrap()));
        assert!(admit("[::1]:5000".parse().unwrap()));
        assert!(!admit("192.0.2.7:5000".parse().unwrap()));
        assert!(!admit("[2001:db8::1]:5000".parse().unwrap()));
    }

    fn id_token(claims: serde_json::Value) -> String {
        format!("e30.{}.c2ln", URL_SAFE_NO_PAD.encode(claims.to_string()))
    }

    /// SECURITY.md O14.
    #[test]
    fn id_tokens_of_another_issuer_audience_nonce_or_time_are_refused() {
        let now = 1_900_000_000;
        let good = serde_json::json!({"iss": ISS, "aud": "cli", "exp": now + 60, "nonce": "n1", "sub": "ada"});
        assert_eq!(
            check_id_token(&id_token(good.clone()), ISS, "cli", Some("n1"), now),
            Ok(())
        );
        let mut several = good.clone();
        several["aud"] = serde_json::json!(["cli", "other"]);
        assert_eq!(
            check_id_token(&id_token(several.clone()), ISS, "cli", Some("n1"), now),
            Ok(())
        );
        several["azp"] = serde_json::json!("other");
        assert_eq!(
            check_id_token(&id_token(several), ISS, "cli", Some("n1"), now),
            Err("id_token_audience")
        );
        for (change, reason) in [
            (
                ("iss", serde_json::json!("https://evil.example")),
                "id_token_issuer",
            ),
            (("aud", serde_json::json!("other")), "id_token_audience"),
            (("aud", serde_json::json!(["other"])), "id_token_audience"),
            (("nonce", serde_json::json!("n2")), "id_token_nonce"),
            (("nonce", serde_json::Value::Null), "id_token_nonce"),
            (("exp", serde_json::json!(now - 61)), "id_token_expired"),
            (("exp", serde_json::json!("soon")), "id_token_expired"),
        ] {
            let mut claims = good.clone();
            claims[change.0] = change.1.clone();
            assert_eq!(
                check_id_token(&id_token(claims), ISS, "cli", Some("n1"), now),
                Err(reason),
                "{change:?}"
            );
        }
        assert_eq!(
            check_id_token("not-a-jwt", ISS, "cli", Some("n1"), now),
            Err("id_token_malformed")
        );
    }

    #[test]
    fn callback_paths_are_plain() {
        let login = AuthorizationCodeLogin::new("https://login.example.com", "cli").unwrap();
        assert!(login.clone().callback_path("/oauth/cb").is_ok());
        for bad in ["callback", "/cb?x=1", "/cb#x", "/a b", "/%41"] {
            assert!(login.clone().callback_path(bad).is_err(), "{bad}");
        }
        assert!(AuthorizationCodeLogin::new("http://login.example.com", "cli").is_err());
        assert!(AuthorizationCodeLogin::new("https://login.example.com", "").is_err());
        let debug = format!(
            "{:?}",
            login.client_secret("hunter2-secret", ClientAuth::Basic)
        );
        assert!(!debug.contains("hunter2"), "{debug}");
    }
}
