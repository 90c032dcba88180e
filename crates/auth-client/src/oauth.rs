//! The OAuth 2.0 client credentials grant (RFC 6749 section 4.4) and what token endpoints answer.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderValue, Uri};
use tokio::sync::OnceCell;
use tower_auth_core::{ConfigError, Secret};
use tower_auth_http::{
    CaBundle, ClientCertificate, Discovery, HttpClient, HttpError, require_tls_off_loopback,
};

use crate::response::token_from_reply;
use crate::source::BoxFuture;
use crate::transport::{Transport, config_error, endpoint_uri, token_error};
use crate::{Token, TokenError, TokenErrorKind, TokenSource};

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
        /// OpenID Connect discovery, then RFC 8414 metadata on a 404.
        discovery: Discovery,
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
    client: OAuthClient,
    target: Target,
    /// Proves possession of this key at the token endpoint, for DPoP-bound tokens.
    dpop: Option<crate::DpopKey>,
}

/// What a grant asks its token for: the `scope`, the `audience` many IdPs (Auth0, Okta,
/// Keycloak) use, and RFC 8707 `resource`s; shared by the grants that take them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Target {
    scope: Option<Arc<str>>,
    audience: Option<Arc<str>>,
    resources: Arc<[String]>,
}

impl Target {
    pub(crate) fn set_scope(&mut self, scope: impl Into<String>) {
        self.scope = normal_scope(scope).map(Into::into);
    }

    pub(crate) fn set_audience(&mut self, audience: impl Into<String>) {
        let audience = audience.into();
        self.audience = (!audience.is_empty()).then(|| audience.into());
    }

    pub(crate) fn add_resource(&mut self, resource: impl Into<String>) {
        let mut resources = self.resources.to_vec();
        resources.push(resource.into());
        self.resources = resources.into();
    }

    /// Adds the parameters that are set to `params`.
    pub(crate) fn extend<'a>(&'a self, params: &mut Vec<(&'static str, &'a str)>) {
        if let Some(scope) = &self.scope {
            params.push(("scope", scope));
        }
        if let Some(audience) = &self.audience {
            params.push(("audience", audience));
        }
        for resource in self.resources.iter() {
            params.push(("resource", resource));
        }
    }

    pub(crate) fn debug_fields(&self, d: &mut fmt::DebugStruct<'_, '_>) {
        d.field("scope", &self.scope)
            .field("audience", &self.audience)
            .field("resources", &self.resources);
    }
}

/// A `scope` parameter as sent: its scopes separated by one space (RFC 6749 section 3.3);
/// `None` when it names none.
pub(crate) fn normal_scope(scope: impl Into<String>) -> Option<String> {
    let scope = scope
        .into()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    (!scope.is_empty()).then_some(scope)
}

/// A client of a token endpoint: where the endpoint is, who the client is and how it
/// authenticates, shared by every grant this crate makes.
#[derive(Clone)]
pub(crate) struct OAuthClient {
    endpoint: Endpoint,
    client_id: Arc<str>,
    /// `None` for a public client (RFC 6749 section 2.1), which sends its id in the form.
    secret: Option<Arc<Secret>>,
    auth: ClientAuth,
    transport: Transport,
}

impl OAuthClient {
    /// At the token endpoint `token_url`.
    pub(crate) fn at_url(
        token_url: &str,
        client_id: String,
        secret: Option<Secret>,
    ) -> Result<Self, ConfigError> {
        let uri = endpoint_uri("token_url", token_url)?;
        Self::build(Endpoint::Url(uri), client_id, secret)
    }

    /// At the token endpoint of `issuer`'s discovery document.
    pub(crate) fn of_issuer(
        issuer: &str,
        client_id: String,
        secret: Option<Secret>,
    ) -> Result<Self, ConfigError> {
        let discovery =
            Discovery::openid_or_oauth(issuer).map_err(|e| config_error("issuer", e))?;
        require_tls_off_loopback(discovery.url()).map_err(|e| config_error("issuer", e))?;
        let endpoint = Endpoint::Issuer {
            discovery,
            token_endpoint: Arc::new(OnceCell::new()),
        };
        Self::build(endpoint, client_id, secret)
    }

    fn build(
        endpoint: Endpoint,
        client_id: String,
        secret: Option<Secret>,
    ) -> Result<Self, ConfigError> {
        if client_id.is_empty() {
            return Err(ConfigError::new("client_id", "is empty"));
        }
        Ok(Self {
            endpoint,
            client_id: client_id.into(),
            secret: secret.map(Arc::new),
            auth: ClientAuth::default(),
            transport: Transport::new()?,
        })
    }

    pub(crate) fn client_id(&self) -> &str {
        &self.client_id
    }

    /// A confidential client, authenticating with `secret` by `auth`.
    pub(crate) fn with_secret(mut self, secret: Secret, auth: ClientAuth) -> Self {
        self.secret = Some(Arc::new(secret));
        self.auth = auth;
        self
    }

    /// The token endpoint: the configured one, or the discovered one once known.
    pub(crate) fn token_endpoint(&self) -> Option<&Uri> {
        match &self.endpoint {
            Endpoint::Url(uri) => Some(uri),
            Endpoint::Issuer { token_endpoint, .. } => token_endpoint.get(),
        }
    }

    async fn resolve(&self) -> Result<&Uri, TokenError> {
        match &self.endpoint {
            Endpoint::Url(uri) => Ok(uri),
            Endpoint::Issuer {
                discovery,
                token_endpoint,
            } => {
                token_endpoint
                    .get_or_try_init(|| async {
                        discover_token_endpoint(self.transport.client()?, discovery).await
                    })
                    .await
            }
        }
    }

    /// Adds the client's authentication to `form`: the `Authorization` header to send, if
    /// any. Form values are UTF-8 (appendix B), so a secret that is not cannot be posted in
    /// the body; in the `Basic` header any bytes survive percent-encoding. A public client
    /// names itself in the form (section 4.1.3, 6).
    fn authenticate(
        &self,
        form: &mut form_urlencoded::Serializer<'_, String>,
    ) -> Result<Option<HeaderValue>, TokenError> {
        let Some(secret) = &self.secret else {
            form.append_pair("client_id", &self.client_id);
            return Ok(None);
        };
        Ok(match self.auth {
            ClientAuth::Basic => Some(basic_authorization(
                self.client_id.as_bytes(),
                secret.expose_secret(),
            )),
            ClientAuth::Post => {
                let secret = std::str::from_utf8(secret.expose_secret())
                    .map_err(|_| TokenError::new(TokenErrorKind::Other, "secret_not_text"))?;
                form.append_pair("client_id", &self.client_id);
                form.append_pair("client_secret", secret);
                None
            }
        })
    }

    /// The form body of `params` with the client's authentication, and the `Authorization`
    /// header, if any.
    fn encode(&self, params: &[(&str, &str)]) -> Result<(String, Option<HeaderValue>), TokenError> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.extend_pairs(params);
        let authorization = self.authenticate(&mut form)?;
        Ok((form.finish(), authorization))
    }

    /// Posts a grant of `params` (with the client's authentication) and reads the answer.
    pub(crate) async fn grant(
        &self,
        params: &[(&str, &str)],
    ) -> Result<(tower_auth_http::Reply, tokio::time::Instant), TokenError> {
        let uri = self.resolve().await?.clone();
        self.post_to(&uri, params).await
    }

    /// [`grant`](Self::grant) with a DPoP proof by `key` (RFC 9449 section 5). A server that
    /// answers `use_dpop_nonce` with a `DPoP-Nonce` (section 8) gets one more request, whose
    /// proof carries that nonce.
    pub(crate) async fn grant_with_dpop(
        &self,
        params: &[(&str, &str)],
        key: &crate::DpopKey,
    ) -> Result<(tower_auth_http::Reply, tokio::time::Instant), TokenError> {
        let uri = self.resolve().await?.clone();
        let (body, authorization) = self.encode(params)?;
        let attempt = |nonce: Option<String>| {
            let (uri, body, authorization) = (&uri, body.clone(), authorization.clone());
            async move {
                let proof = key.proof(&http::Method::POST, uri, None, nonce.as_deref())?;
                let proof = HeaderValue::from_str(&proof)
                    .map_err(|_| TokenError::new(TokenErrorKind::Other, "dpop_proof_not_header"))?;
                let started = tokio::time::Instant::now();
                let (reply, offered) = self
                    .transport
                    .client()?
                    .post_form_with_dpop(uri, authorization, proof, body)
                    .await
                    .map_err(token_error)?;
                Ok::<_, TokenError>((reply, started, offered))
            }
        };
        let (reply, started, offered) = attempt(None).await?;
        let asks_nonce = matches!(reply.status.as_u16(), 400 | 401)
            && serde_json::from_slice::<serde_json::Value>(&reply.body)
                .is_ok_and(|body| body["error"] == "use_dpop_nonce");
        match offered.as_ref().and_then(|v| v.to_str().ok()) {
            Some(nonce) if asks_nonce && !nonce.is_empty() && nonce.len() <= 512 => {
                let (reply, started, _) = attempt(Some(nonce.to_owned())).await?;
                Ok((reply, started))
            }
            _ => Ok((reply, started)),
        }
    }

    /// Posts `params` with the client's authentication to another endpoint of the same
    /// server (revocation, device authorization), whose URL the caller has checked.
    pub(crate) async fn post_to(
        &self,
        uri: &Uri,
        params: &[(&str, &str)],
    ) -> Result<(tower_auth_http::Reply, tokio::time::Instant), TokenError> {
        let (body, authorization) = self.encode(params)?;
        let started = tokio::time::Instant::now();
        let reply = self
            .transport
            .client()?
            .post_form(uri, authorization, body)
            .await
            .map_err(token_error)?;
        Ok((reply, started))
    }

    pub(crate) fn debug_fields(&self, d: &mut fmt::DebugStruct<'_, '_>) {
        match &self.endpoint {
            Endpoint::Url(uri) => d.field("token_url", uri),
            Endpoint::Issuer { discovery, .. } => d.field("issuer", &discovery.issuer()),
        };
        d.field("client_id", &self.client_id)
            .field("client_secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("auth", &self.auth);
    }
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
        let client = OAuthClient::at_url(token_url, client_id.into(), Some(client_secret.into()))?;
        Ok(Self::build(client))
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
        let client = OAuthClient::of_issuer(issuer, client_id.into(), Some(client_secret.into()))?;
        Ok(Self::build(client))
    }

    fn build(client: OAuthClient) -> Self {
        Self {
            client,
            target: Target::default(),
            dpop: None,
        }
    }

    /// Asks for tokens bound to `key` (RFC 9449 section 5): each token request carries a
    /// proof by it, retried once with the server's nonce when it answers `use_dpop_nonce`,
    /// and a `token_type` of `DPoP` is accepted. Send the tokens through
    /// [`DpopLayer`](crate::DpopLayer) with the same key.
    #[must_use]
    pub fn dpop(mut self, key: crate::DpopKey) -> Self {
        self.dpop = Some(key);
        self
    }

    /// A client authenticated by its TLS certificate alone (RFC 8705 section 2: the
    /// `tls_client_auth` and `self_signed_tls_client_auth` methods): `client_id` goes in the
    /// form, no secret is sent, and `certificate` is presented on the connection to the token
    /// endpoint `token_url`. An authorization server that binds tokens to the certificate
    /// (section 3) issues tokens that only work on connections presenting it: give the same
    /// certificate to the client of the calls ([`ClientCertificate::tls_config`]).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_certificate(
        token_url: &str,
        client_id: impl Into<String>,
        certificate: ClientCertificate,
    ) -> Result<Self, ConfigError> {
        let mut client = OAuthClient::at_url(token_url, client_id.into(), None)?;
        client.transport = client.transport.client_certificate(certificate);
        Ok(Self::build(client))
    }

    /// Presents `certificate` on the connection to the token endpoint (mutual TLS, RFC 8705),
    /// beside the client's secret: for an authorization server that binds the tokens of a
    /// secret-authenticated client to the certificate of its connection.
    pub fn client_certificate(mut self, certificate: ClientCertificate) -> Self {
        self.client.transport = self.client.transport.client_certificate(certificate);
        self
    }

    /// Trusts the CA certificates of `ca` for the token endpoint (and discovery), beside the
    /// platform's store and the webpki roots: an authorization server behind a private CA.
    pub fn ca(mut self, ca: CaBundle) -> Self {
        self.client.transport = self.client.transport.ca(ca);
        self
    }

    /// How to authenticate to the endpoint (default [`ClientAuth::Basic`]).
    #[must_use]
    pub fn auth_method(mut self, auth: ClientAuth) -> Self {
        self.client.auth = auth;
        self
    }

    /// The `scope` parameter: space-separated scopes (RFC 6749 section 3.3).
    #[must_use]
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.target.set_scope(scope);
        self
    }

    /// The `audience` parameter many IdPs (Auth0, Okta, Keycloak) use to pick the API a token is for.
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.target.set_audience(audience);
        self
    }

    /// Adds a `resource` parameter (RFC 8707): an absolute URI of the API the token is for.
    /// May be given several times.
    #[must_use]
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.target.add_resource(resource);
        self
    }

    /// Connect and read timeouts for each request (default 5 s each).
    #[must_use]
    pub fn timeouts(mut self, connect: Duration, read: Duration) -> Self {
        self.client.transport = self.client.transport.timeouts(connect, read);
        self
    }

    /// The token endpoint: the configured one, or the discovered one once known.
    pub fn token_endpoint(&self) -> Option<&Uri> {
        self.client.token_endpoint()
    }

    /// The parameters of the grant (RFC 6749 section 4.4.2), before client authentication.
    fn params(&self) -> Vec<(&str, &str)> {
        let mut params = vec![("grant_type", "client_credentials")];
        self.target.extend(&mut params);
        params
    }
}

impl TokenSource for ClientCredentials {
    fn fetch(&self) -> BoxFuture<'_, Result<Token, TokenError>> {
        Box::pin(async move {
            match &self.dpop {
                None => {
                    let (reply, started) = self.client.grant(&self.params()).await?;
                    token_from_reply(reply, started)
                }
                Some(key) => {
                    let (reply, started) = self.client.grant_with_dpop(&self.params(), key).await?;
                    crate::response::dpop_token_from_reply(reply, started)
                }
            }
        })
    }
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ClientCredentials");
        self.client.debug_fields(&mut d);
        self.target.debug_fields(&mut d);
        d.finish()
    }
}

/// `Authorization: Basic` for a client: id and secret are form-urlencoded *before* base64
/// (RFC 6749 section 2.3.1), so a `:` or `%` in either survives the round trip.
fn basic_authorization(id: &[u8], secret: &[u8]) -> HeaderValue {
    let mut pair: String = form_urlencoded::byte_serialize(id).collect();
    pair.push(':');
    pair.extend(form_urlencoded::byte_serialize(secret));
    let mut header = HeaderValue::try_from(format!("Basic {}", STANDARD.encode(pair)))
        .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
    header.set_sensitive(true);
    header
}

/// The token endpoint named by the issuer's metadata, which must name exactly this issuer;
/// a discovered endpoint gets the same loopback rule as a configured one.
async fn discover_token_endpoint(
    http: &HttpClient,
    discovery: &Discovery,
) -> Result<Uri, TokenError> {
    let metadata = discovery.fetch(http).await.map_err(|error| match error {
        // The reason codes this crate has always given.
        HttpError::UnexpectedStatus => {
            TokenError::new(TokenErrorKind::InvalidResponse, "discovery_failed")
        }
        other => token_error(other),
    })?;
    let endpoint = metadata.token_endpoint().map_err(|error| match error {
        HttpError::MissingEndpoint => {
            TokenError::new(TokenErrorKind::InvalidResponse, "no_token_endpoint")
        }
        other => TokenError::new(TokenErrorKind::InvalidResponse, "bad_token_endpoint")
            .with_source(config_error("token_endpoint", other)),
    })?;
    no_less_secure(discovery.url(), &endpoint)?;
    Ok(endpoint)
}

/// The secret goes where the discovery document says: never with less protection than the
/// document itself came with (an https issuer naming a plain-http endpoint, even on
/// loopback, where the loopback rule alone would allow it).
pub(crate) fn no_less_secure(document: &Uri, endpoint: &Uri) -> Result<(), TokenError> {
    let https = |uri: &Uri| uri.scheme() == Some(&http::uri::Scheme::HTTPS);
    if https(document) && !https(endpoint) {
        return Err(TokenError::new(
            TokenErrorKind::InvalidResponse,
            "token_endpoint_less_secure_than_issuer",
        ));
    }
    Ok(())
}

#[cfg(test)]
impl ClientCredentials {
    /// The body and header the grant would send.
    fn request(&self) -> Result<(String, Option<HeaderValue>), TokenError> {
        self.client.encode(&self.params())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SECURITY.md O3.
    #[test]
    fn a_discovered_token_endpoint_is_never_less_secure_than_its_issuer() {
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        let https_doc = uri("https://login.example.com/.well-known/openid-configuration");
        let plain_doc = uri("http://127.0.0.1:9/.well-known/openid-configuration");
        assert!(no_less_secure(&https_doc, &uri("https://login.example.com/token")).is_ok());
        let refused = no_less_secure(&https_doc, &uri("http://127.0.0.1:8080/token")).unwrap_err();
        assert_eq!(refused.reason(), "token_endpoint_less_secure_than_issuer");
        assert!(no_less_secure(&plain_doc, &uri("http://127.0.0.1:9/token")).is_ok());
        assert!(no_less_secure(&plain_doc, &uri("https://login.example.com/token")).is_ok());
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
        let cc = ClientCredentials::new("https://idp.example/token", "app", "s3cret")
            .unwrap()
            .scope("orders:read orders:write")
            .resource("https://api.example/x?y=1");
        let (form, _) = cc.request().unwrap();
        assert_eq!(
            form,
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
        let (form, auth) = cc.request().unwrap();
        assert_eq!(
            form,
            "grant_type=client_credentials&scope=a+b&audience=api&resource=urn%3Ax&resource=urn%3Ay"
        );
        assert!(auth.is_some());
        let (form, auth) = cc.auth_method(ClientAuth::Post).request().unwrap();
        assert!(form.ends_with("&client_id=app&client_secret=s3cret"));
        assert!(auth.is_none());
    }

    #[test]
    fn a_secret_that_is_not_utf8_goes_only_in_the_basic_header() {
        let secret = Secret::new(vec![0xff, b'x']);
        let cc = ClientCredentials::new("https://idp.example/token", "app", secret).unwrap();
        let (form, auth) = cc.request().unwrap();
        assert_eq!(form, "grant_type=client_credentials");
        let encoded = auth.unwrap().to_str().unwrap()["Basic ".len()..].to_owned();
        assert_eq!(STANDARD.decode(encoded).unwrap(), b"app:%FFx");
        let err = cc.auth_method(ClientAuth::Post).request().unwrap_err();
        assert_eq!(
            (err.kind(), err.reason()),
            (TokenErrorKind::Other, "secret_not_text")
        );
    }

    #[test]
    fn configuration_errors_name_the_setting() {
        for (issuer, setting) in [
            ("https://a.example?x=1", "issuer"),
            ("http://a.example", "issuer"),
            ("https://a.example/#x", "issuer"),
        ] {
            let err = ClientCredentials::from_issuer(issuer, "c", "s").unwrap_err();
            assert_eq!(err.variable(), setting, "{issuer}");
        }
        assert!(ClientCredentials::from_issuer("http://LOCALHOST:9/realm", "c", "s").is_ok());
        let err = ClientCredentials::new("https://a.example/t", "", "s").unwrap_err();
        assert_eq!(err.variable(), "client_id");
    }
}
