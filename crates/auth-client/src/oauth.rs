//! The OAuth 2.0 client credentials grant (RFC 6749 section 4.4) and what token endpoints answer.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::{HeaderValue, StatusCode, Uri};
use serde::Deserialize;
use tokio::sync::OnceCell;
use tower_auth_core::{ConfigError, Secret};

use crate::source::BoxFuture;
use crate::{Token, TokenError, TokenErrorKind, TokenSource};
use tower_auth_oidc::http::{DEFAULT_TIMEOUT, HttpClient, HttpError, Reply};

/// How the client authenticates to the token endpoint (RFC 6749 section 2.3.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuth {
    /// HTTP Basic: `Authorization: Basic base64(urlencode(id) ":" urlencode(secret))`.
    /// Every server must support it; the default.
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Post,
}

impl ClientAuth {
    /// The OAuth metadata name: `client_secret_basic` or `client_secret_post`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Basic => "client_secret_basic",
            Self::Post => "client_secret_post",
        }
    }
}

#[derive(Clone)]
enum Endpoint {
    Url(Uri),
    Issuer {
        issuer: Arc<str>,
        /// `{issuer}/.well-known/openid-configuration` (OpenID Connect Discovery).
        discovery: Uri,
        /// The RFC 8414 metadata URL, asked when the first answers 404.
        metadata: Uri,
        token_endpoint: Arc<OnceCell<Uri>>,
    },
}

/// The client credentials grant: a confidential client trades its id and secret for an
/// access token (RFC 6749 section 4.4), at a token endpoint given directly or found in an
/// issuer's discovery document.
///
/// ```no_run
/// use tower_auth_client::{ClientAuth, ClientCredentials, TokenCache};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let source = ClientCredentials::from_issuer("https://login.example.com", "reporting", "s3cr3t")?
///     .auth_method(ClientAuth::Post)
///     .scope("orders:read")
///     .resource("https://orders.example.com");
/// // Fails here, at start-up, when the secret is wrong or the IdP unreachable.
/// let tokens = TokenCache::start(source).await?;
/// # Ok(()) }
/// ```
///
/// Endpoints must be `https`, or `http` on a loopback address: RFC 6749 sections 2.3.1 and
/// 3.2 require TLS wherever a client secret is sent. Redirects are never followed.
#[derive(Clone)]
pub struct ClientCredentials {
    endpoint: Endpoint,
    client_id: Arc<str>,
    secret: Arc<Secret>,
    auth: ClientAuth,
    scope: Option<Arc<str>>,
    audience: Option<Arc<str>>,
    resources: Arc<[String]>,
    http: HttpClient,
}

impl ClientCredentials {
    /// A grant at the token endpoint `token_url`.
    ///
    /// # Errors
    /// A [`ConfigError`] when the URL is not absolute `https` (or loopback `http`), or the
    /// client id is empty.
    pub fn new(
        token_url: &str,
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
    ) -> Result<Self, ConfigError> {
        let uri = endpoint_uri("token_url", token_url)?;
        Self::build(Endpoint::Url(uri), client_id.into(), client_secret.into())
    }

    /// A grant at the `token_endpoint` named by `issuer`'s discovery document
    /// (`{issuer}/.well-known/openid-configuration`), fetched at the first token request, or,
    /// when that is not found (404), by its OAuth 2.0 authorization server metadata (RFC 8414:
    /// `/.well-known/oauth-authorization-server` then the issuer's path). The document must
    /// name exactly `issuer` (OpenID Connect Discovery section 4.3, RFC 8414 section 3.3).
    ///
    /// # Errors
    /// As [`ClientCredentials::new`], for the issuer URL.
    pub fn from_issuer(
        issuer: &str,
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
    ) -> Result<Self, ConfigError> {
        let uri = endpoint_uri("issuer", issuer)?;
        if uri.query().is_some() {
            return Err(ConfigError::new("issuer", "must not have a query"));
        }
        let discovery = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let discovery = endpoint_uri("issuer", &discovery)?;
        let metadata = endpoint_uri("issuer", &rfc8414_metadata_url(&uri))?;
        let endpoint = Endpoint::Issuer {
            issuer: issuer.into(),
            discovery,
            metadata,
            token_endpoint: Arc::new(OnceCell::new()),
        };
        Self::build(endpoint, client_id.into(), client_secret.into())
    }

    fn build(endpoint: Endpoint, client_id: String, secret: Secret) -> Result<Self, ConfigError> {
        if client_id.is_empty() {
            return Err(ConfigError::new("client_id", "is empty"));
        }
        Ok(Self {
            endpoint,
            client_id: client_id.into(),
            secret: Arc::new(secret),
            auth: ClientAuth::default(),
            scope: None,
            audience: None,
            resources: Arc::from([]),
            http: http_client(DEFAULT_TIMEOUT, DEFAULT_TIMEOUT)?,
        })
    }

    /// How to authenticate to the endpoint (default [`ClientAuth::Basic`]).
    #[must_use]
    pub fn auth_method(mut self, auth: ClientAuth) -> Self {
        self.auth = auth;
        self
    }

    /// The `scope` parameter: space-separated scopes (RFC 6749 section 3.3).
    #[must_use]
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        let scope = scope.into();
        self.scope = (!scope.trim().is_empty()).then(|| scope.trim().into());
        self
    }

    /// The `audience` parameter many IdPs (Auth0, Okta, Keycloak) use to pick the API a token is for.
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        let audience = audience.into();
        self.audience = (!audience.is_empty()).then(|| audience.into());
        self
    }

    /// Adds a `resource` parameter (RFC 8707): an absolute URI of the API the token is for.
    /// May be given several times.
    #[must_use]
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        let mut resources = self.resources.to_vec();
        resources.push(resource.into());
        self.resources = resources.into();
        self
    }

    /// Connect and read timeouts for each request (default 5 s each).
    ///
    /// # Errors
    /// A [`ConfigError`] if the TLS set-up fails.
    pub fn timeouts(mut self, connect: Duration, read: Duration) -> Result<Self, ConfigError> {
        self.http = http_client(connect, read)?;
        Ok(self)
    }

    /// The token endpoint: the configured one, or the discovered one once known.
    pub fn token_endpoint(&self) -> Option<&Uri> {
        match &self.endpoint {
            Endpoint::Url(uri) => Some(uri),
            Endpoint::Issuer { token_endpoint, .. } => token_endpoint.get(),
        }
    }

    async fn resolve(&self) -> Result<&Uri, TokenError> {
        match &self.endpoint {
            Endpoint::Url(uri) => Ok(uri),
            Endpoint::Issuer {
                issuer,
                discovery,
                metadata,
                token_endpoint,
            } => {
                token_endpoint
                    .get_or_try_init(|| discover(&self.http, issuer, discovery, metadata))
                    .await
            }
        }
    }

    /// The form body (RFC 6749 section 4.4.2) and the `Authorization` header, if any.
    fn request(&self) -> (Vec<u8>, Option<HeaderValue>) {
        let mut form = FormBody::default();
        form.pair("grant_type", b"client_credentials");
        if let Some(scope) = &self.scope {
            form.pair("scope", scope.as_bytes());
        }
        if let Some(audience) = &self.audience {
            form.pair("audience", audience.as_bytes());
        }
        for resource in self.resources.iter() {
            form.pair("resource", resource.as_bytes());
        }
        let authorization = match self.auth {
            ClientAuth::Basic => Some(basic_authorization(
                self.client_id.as_bytes(),
                self.secret.expose_secret(),
            )),
            ClientAuth::Post => {
                form.pair("client_id", self.client_id.as_bytes());
                form.pair("client_secret", self.secret.expose_secret());
                None
            }
        };
        (form.0, authorization)
    }
}

impl TokenSource for ClientCredentials {
    fn fetch(&self) -> BoxFuture<'_, Result<Token, TokenError>> {
        Box::pin(async move {
            let uri = self.resolve().await?;
            let (form, authorization) = self.request();
            let started = tokio::time::Instant::now();
            let reply = self
                .http
                .post_form(uri, authorization, form)
                .await
                .map_err(unreachable_error)?;
            token_from_reply(reply, started)
        })
    }
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ClientCredentials");
        match &self.endpoint {
            Endpoint::Url(uri) => d.field("token_url", uri),
            Endpoint::Issuer { issuer, .. } => d.field("issuer", issuer),
        };
        d.field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("auth", &self.auth)
            .field("scope", &self.scope)
            .field("audience", &self.audience)
            .field("resources", &self.resources)
            .finish()
    }
}

pub(crate) fn http_client(connect: Duration, read: Duration) -> Result<HttpClient, ConfigError> {
    HttpClient::new(connect, read).map_err(|e| ConfigError::new("tls", e))
}

/// `Authorization: Basic` for a client: id and secret are form-urlencoded *before* base64
/// (RFC 6749 section 2.3.1), so a `:` or `%` in either survives the round trip.
fn basic_authorization(id: &[u8], secret: &[u8]) -> HeaderValue {
    let mut pair = FormBody::default();
    pair.encode(id);
    pair.0.push(b':');
    pair.encode(secret);
    let mut value = b"Basic ".to_vec();
    value.extend_from_slice(STANDARD.encode(&pair.0).as_bytes());
    let mut header =
        HeaderValue::from_bytes(&value).unwrap_or_else(|_| HeaderValue::from_static("Basic"));
    header.set_sensitive(true);
    header
}

/// An `application/x-www-form-urlencoded` body (RFC 6749 appendix B).
#[derive(Default)]
pub(crate) struct FormBody(pub(crate) Vec<u8>);

impl FormBody {
    pub(crate) fn pair(&mut self, name: &str, value: &[u8]) {
        if !self.0.is_empty() {
            self.0.push(b'&');
        }
        self.encode(name.as_bytes());
        self.0.push(b'=');
        self.encode(value);
    }

    fn encode(&mut self, bytes: &[u8]) {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        for &b in bytes {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                    self.0.push(b);
                }
                b' ' => self.0.push(b'+'),
                _ => self.0.extend_from_slice(&[
                    b'%',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 15)],
                ]),
            }
        }
    }
}

/// Parses an endpoint URL: absolute, `https` or loopback `http`, with a host and no fragment.
pub(crate) fn endpoint_uri(setting: &str, url: &str) -> Result<Uri, ConfigError> {
    if url.contains('#') {
        return Err(ConfigError::new(setting, "must not have a fragment"));
    }
    let uri: Uri = url
        .parse()
        .map_err(|_| ConfigError::new(setting, "is not a URL"))?;
    let host = uri.host().unwrap_or_default();
    if host.is_empty() {
        return Err(ConfigError::new(
            setting,
            "must be an absolute URL with a host",
        ));
    }
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if is_loopback(host) => Ok(uri),
        Some("http") => Err(ConfigError::new(
            setting,
            "must use https: a client secret is only ever sent over TLS (plain http is allowed on loopback addresses only)",
        )),
        _ => Err(ConfigError::new(setting, "must be an https URL")),
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    token_endpoint: Option<String>,
}

/// RFC 8414 section 3.1: the well-known segment goes between the host and the issuer's path
/// (`https://as.example/tenant` -> `https://as.example/.well-known/oauth-authorization-server/tenant`).
fn rfc8414_metadata_url(issuer: &Uri) -> String {
    let authority = issuer.authority().map_or("", |a| a.as_str());
    let scheme = issuer.scheme_str().unwrap_or("https");
    let path = issuer.path().trim_end_matches('/');
    format!("{scheme}://{authority}/.well-known/oauth-authorization-server{path}")
}

/// The token endpoint in `issuer`'s OpenID Connect discovery document, or in its RFC 8414
/// metadata when there is no such document (404). Any other failure of the first is the answer:
/// an outage is not a reason to look elsewhere.
async fn discover(
    http: &HttpClient,
    issuer: &str,
    discovery: &Uri,
    metadata: &Uri,
) -> Result<Uri, TokenError> {
    let mut reply = http.get(discovery).await.map_err(unreachable_error)?;
    if reply.status == StatusCode::NOT_FOUND {
        reply = http.get(metadata).await.map_err(unreachable_error)?;
    }
    if let Some(error) = status_error(&reply) {
        return Err(error);
    }
    if reply.status != StatusCode::OK {
        return Err(TokenError::new(
            TokenErrorKind::InvalidResponse,
            "discovery_failed",
        ));
    }
    let document: Discovery = serde_json::from_slice(&reply.body)
        .map_err(|_| TokenError::new(TokenErrorKind::InvalidResponse, "discovery_not_json"))?;
    if document.issuer != issuer {
        return Err(TokenError::new(
            TokenErrorKind::InvalidResponse,
            "issuer_mismatch",
        ));
    }
    let endpoint = document
        .token_endpoint
        .ok_or_else(|| TokenError::new(TokenErrorKind::InvalidResponse, "no_token_endpoint"))?;
    endpoint_uri("token_endpoint", &endpoint).map_err(|e| {
        TokenError::new(TokenErrorKind::InvalidResponse, "bad_token_endpoint").with_source(e)
    })
}

pub(crate) fn unreachable_error(e: HttpError) -> TokenError {
    let kind = match e {
        HttpError::TooLarge => TokenErrorKind::InvalidResponse,
        HttpError::Connect | HttpError::Request | HttpError::Timeout => TokenErrorKind::Unavailable,
    };
    TokenError::new(kind, e.reason())
}

/// The error for 429, 5xx and redirects, whatever the body says.
fn status_error(reply: &Reply) -> Option<TokenError> {
    let status = reply.status;
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Some(
            TokenError::new(TokenErrorKind::Unavailable, "rate_limited")
                .with_retry_after(reply.retry_after),
        );
    }
    if status.is_server_error() {
        return Some(
            TokenError::new(TokenErrorKind::Unavailable, "server_error")
                .with_retry_after(reply.retry_after),
        );
    }
    if status.is_redirection() {
        return Some(TokenError::new(
            TokenErrorKind::InvalidResponse,
            "redirect_refused",
        ));
    }
    None
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// A token response (RFC 6749 section 5.1) or error response (section 5.2), as ours and
/// every OAuth server send them. Lifetimes count from `started`, when the request was sent,
/// so that a slow answer never makes a token look fresher than it is.
pub(crate) fn token_from_reply(
    reply: Reply,
    started: tokio::time::Instant,
) -> Result<Token, TokenError> {
    if let Some(error) = status_error(&reply) {
        return Err(error);
    }
    if reply.status != StatusCode::OK {
        if let Ok(error) = serde_json::from_slice::<ErrorResponse>(&reply.body) {
            return Err(TokenError::oauth(
                &error.error,
                error.error_description.as_deref(),
            ));
        }
        // Section 5.2: a failed client authentication may come as a bare 401.
        if reply.status == StatusCode::UNAUTHORIZED {
            return Err(TokenError::new(
                TokenErrorKind::InvalidClient,
                "unauthorized",
            ));
        }
        return Err(TokenError::new(
            TokenErrorKind::InvalidResponse,
            "unexpected_status",
        ));
    }
    let response: TokenResponse = serde_json::from_slice(&reply.body)
        .map_err(|_| TokenError::new(TokenErrorKind::InvalidResponse, "not_a_token_response"))?;
    let access_token = Secret::from(response.access_token);
    // Section 7.1 and RFC 6750: we can only present bearer tokens; a DPoP or MAC token sent
    // as a bearer would be refused or, worse, accepted without its proof.
    if !response.token_type.eq_ignore_ascii_case("bearer") {
        return Err(TokenError::new(
            TokenErrorKind::InvalidResponse,
            "not_bearer",
        ));
    }
    let lifetime =
        match &response.expires_in {
            None | Some(serde_json::Value::Null) => jwt_lifetime(access_token.expose_secret()),
            Some(value) => Some(expires_in(value).ok_or_else(|| {
                TokenError::new(TokenErrorKind::InvalidResponse, "bad_expires_in")
            })?),
        };
    Ok(Token::received(access_token, started, lifetime))
}

/// `expires_in`: positive seconds, as a number or (as some servers send it) a numeric string.
fn expires_in(value: &serde_json::Value) -> Option<Duration> {
    let secs = match value {
        serde_json::Value::Number(n) => n.as_f64()?,
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    (secs.is_finite() && secs >= 1.0)
        .then(|| Duration::from_secs_f64(secs.min(crate::token::MAX_LIFETIME.as_secs_f64())))
}

/// Without `expires_in` (section 5.1 makes it only RECOMMENDED), a JWT access token's own
/// `exp` says how long it lives; read unverified, for scheduling only.
fn jwt_lifetime(token: &[u8]) -> Option<Duration> {
    let token = std::str::from_utf8(token).ok()?;
    let mut segments = token.split('.');
    let (_, payload, _) = (segments.next()?, segments.next()?, segments.next()?);
    if segments.next().is_some() {
        return None;
    }
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let exp = claims.get("exp")?.as_u64()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    exp.checked_sub(now)
        .filter(|&secs| secs > 0)
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            retry_after: None,
            body: Bytes::from(body.to_owned()),
        }
    }

    fn parse(status: u16, body: &str) -> Result<Token, TokenError> {
        token_from_reply(reply(status, body), tokio::time::Instant::now())
    }

    #[test]
    fn basic_credentials_are_form_encoded_before_base64() {
        // RFC 6749 section 2.3.1: `a:b c` / `p%s&=` become `a%3Ab+c:p%25s%26%3D` first.
        let header = basic_authorization(b"a:b c", "p%s&=é".as_bytes());
        let encoded = header.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let decoded = String::from_utf8(STANDARD.decode(encoded).unwrap()).unwrap();
        assert_eq!(decoded, "a%3Ab+c:p%25s%26%3D%C3%A9");
        assert!(header.is_sensitive());
    }

    #[test]
    fn form_body() {
        let mut form = FormBody::default();
        form.pair("grant_type", b"client_credentials");
        form.pair("scope", b"orders:read orders:write");
        form.pair("resource", b"https://api.example/x?y=1");
        assert_eq!(
            String::from_utf8(form.0).unwrap(),
            "grant_type=client_credentials&scope=orders%3Aread+orders%3Awrite&resource=https%3A%2F%2Fapi.example%2Fx%3Fy%3D1"
        );
    }

    #[test]
    fn post_puts_credentials_in_the_body_and_basic_in_the_header() {
        let cc = ClientCredentials::new("https://idp.example/token", "app", "s3cret")
            .unwrap()
            .scope(" a b ")
            .audience("api")
            .resource("urn:x")
            .resource("urn:y");
        let (form, auth) = cc.request();
        assert_eq!(
            String::from_utf8(form).unwrap(),
            "grant_type=client_credentials&scope=a+b&audience=api&resource=urn%3Ax&resource=urn%3Ay"
        );
        assert!(auth.is_some());
        let (form, auth) = cc.auth_method(ClientAuth::Post).request();
        assert!(
            String::from_utf8(form)
                .unwrap()
                .ends_with("&client_id=app&client_secret=s3cret")
        );
        assert!(auth.is_none());
    }

    #[test]
    fn endpoints_need_tls_off_loopback() {
        for ok in [
            "https://idp.example/token",
            "http://127.0.0.1:8080/token",
            "http://[::1]:1/t",
            "http://localhost/t",
        ] {
            assert!(endpoint_uri("AUTH_TOKEN_URL", ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://idp.example/token",
            "ftp://idp.example/token",
            "/token",
            "https://idp.example/token#x",
            "not a url",
            "http://127.0.0.1.example/t",
        ] {
            let err = endpoint_uri("AUTH_TOKEN_URL", bad).unwrap_err();
            assert_eq!(err.variable(), "AUTH_TOKEN_URL", "{bad}");
        }
        assert!(ClientCredentials::from_issuer("https://a.example?x=1", "c", "s").is_err());
        assert!(ClientCredentials::new("https://a.example/t", "", "s").is_err());
    }

    #[test]
    fn rfc8414_metadata_goes_before_the_issuers_path() {
        let url = |issuer: &str| rfc8414_metadata_url(&issuer.parse().unwrap());
        assert_eq!(
            url("https://as.example"),
            "https://as.example/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            url("https://as.example/"),
            "https://as.example/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            url("https://as.example:8443/tenants/a/"),
            "https://as.example:8443/.well-known/oauth-authorization-server/tenants/a"
        );
        assert_eq!(
            url("http://127.0.0.1:9000/realms/x"),
            "http://127.0.0.1:9000/.well-known/oauth-authorization-server/realms/x"
        );
    }

    #[tokio::test]
    async fn token_responses() {
        let token = parse(
            200,
            r#"{"access_token":"abc","token_type":"bearer","expires_in":3600,"scope":"x"}"#,
        )
        .unwrap();
        assert_eq!(token.secret().expose_secret(), b"abc");
        assert_eq!(token.lifetime(), Some(Duration::from_secs(3600)));
        let token = parse(
            200,
            r#"{"access_token":"abc","token_type":"Bearer","expires_in":"60"}"#,
        )
        .unwrap();
        assert_eq!(token.lifetime(), Some(Duration::from_secs(60)));
        let token = parse(200, r#"{"access_token":"abc","token_type":"Bearer"}"#).unwrap();
        assert_eq!(token.lifetime(), None);

        for (body, reason) in [
            (
                r#"{"access_token":"abc","token_type":"DPoP","expires_in":60}"#,
                "not_bearer",
            ),
            (
                r#"{"access_token":"abc","token_type":"Bearer","expires_in":0}"#,
                "bad_expires_in",
            ),
            (
                r#"{"access_token":"abc","token_type":"Bearer","expires_in":-5}"#,
                "bad_expires_in",
            ),
            (
                r#"{"access_token":"abc","token_type":"Bearer","expires_in":true}"#,
                "bad_expires_in",
            ),
            (r#"{"token_type":"Bearer"}"#, "not_a_token_response"),
            ("<html>", "not_a_token_response"),
        ] {
            let err = parse(200, body).unwrap_err();
            assert_eq!(
                (err.kind(), err.reason()),
                (TokenErrorKind::InvalidResponse, reason),
                "{body}"
            );
        }
    }

    #[test]
    fn jwt_exp_when_expires_in_is_missing() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let payload = URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{}}}"#, now + 120));
        let lifetime = jwt_lifetime(format!("e30.{payload}.sig").as_bytes()).unwrap();
        assert!(lifetime <= Duration::from_secs(120) && lifetime >= Duration::from_secs(110));
        let past = URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{}}}"#, now - 1));
        assert_eq!(jwt_lifetime(format!("e30.{past}.sig").as_bytes()), None);
        assert_eq!(jwt_lifetime(b"opaque"), None);
        assert_eq!(jwt_lifetime(b"a.b.c.d"), None);
    }

    #[tokio::test]
    async fn error_responses() {
        let err = parse(401, r#"{"error":"invalid_client"}"#).unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::InvalidClient);
        let err = parse(
            400,
            r#"{"error":"invalid_client","error_description":"no such client"}"#,
        )
        .unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::InvalidClient);
        assert_eq!(err.description(), Some("no such client"));
        let err = parse(401, "nope").unwrap_err();
        assert_eq!(
            (err.kind(), err.reason()),
            (TokenErrorKind::InvalidClient, "unauthorized")
        );
        let err = parse(400, r#"{"error":"invalid_scope"}"#).unwrap_err();
        assert_eq!(
            (err.kind(), err.oauth_error()),
            (TokenErrorKind::Rejected, Some("invalid_scope"))
        );
        let err = parse(404, "not found").unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::InvalidResponse);
        let err = parse(302, "").unwrap_err();
        assert_eq!(err.reason(), "redirect_refused");
        let mut busy = reply(503, r#"{"error":"invalid_client"}"#);
        busy.retry_after = Some(Duration::from_secs(7));
        let err = token_from_reply(busy, tokio::time::Instant::now()).unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::Unavailable);
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        let err = parse(429, "").unwrap_err();
        assert_eq!(
            (err.kind(), err.reason()),
            (TokenErrorKind::Unavailable, "rate_limited")
        );
    }
}
