//! An issuer's metadata: OpenID Connect Discovery 1.0, and, when asked, OAuth 2.0
//! authorization server metadata (RFC 8414) for issuers that publish only that.

use std::sync::Arc;

use http::{StatusCode, Uri};
use serde::Deserialize;

use crate::url::{parse_endpoint, parse_url};
use crate::{HttpClient, HttpError};

/// Where an issuer publishes its metadata, and the identifier the metadata must name.
#[derive(Clone, Debug)]
pub struct Discovery {
    issuer: Arc<str>,
    /// `{issuer}/.well-known/openid-configuration`.
    openid: Uri,
    /// The RFC 8414 location, asked only when the first answers 404.
    oauth: Option<Uri>,
}

/// The fields of a metadata document the workspace uses; the issuer is already checked.
#[derive(Clone, Debug, Deserialize)]
pub struct Metadata {
    issuer: String,
    #[serde(default)]
    jwks_uri: Option<String>,
    #[serde(default)]
    token_endpoint: Option<String>,
    #[serde(default)]
    authorization_endpoint: Option<String>,
    #[serde(default)]
    revocation_endpoint: Option<String>,
    #[serde(default)]
    device_authorization_endpoint: Option<String>,
    #[serde(default)]
    introspection_endpoint: Option<String>,
}

impl Discovery {
    /// OpenID Connect discovery only: `{issuer}/.well-known/openid-configuration` (section 4:
    /// the issuer without its trailing slash, then the well-known path).
    ///
    /// # Errors
    /// As [`parse_url`](crate::parse_url) for `issuer`, and [`HttpError::Query`]. The loopback
    /// rule is the caller's to apply ([`require_tls_off_loopback`](crate::require_tls_off_loopback)
    /// on [`url`](Self::url)).
    pub fn openid(issuer: &str) -> Result<Self, HttpError> {
        let issuer_uri = parse_url(issuer)?;
        // OpenID Connect Discovery 1.0 section 2 and RFC 8414 section 2: no query, no fragment.
        if issuer_uri.query().is_some() {
            return Err(HttpError::Query);
        }
        let openid = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        Ok(Self {
            issuer: issuer.into(),
            openid: parse_url(&openid)?,
            oauth: None,
        })
    }

    /// [`openid`](Self::openid), then, if that answers 404 (and only then: an outage is no
    /// reason to look elsewhere), the RFC 8414 location (section 3.1: the well-known segment
    /// between the host and the issuer's path).
    ///
    /// # Errors
    /// As [`openid`](Self::openid).
    pub fn openid_or_oauth(issuer: &str) -> Result<Self, HttpError> {
        let mut discovery = Self::openid(issuer)?;
        let issuer_uri = parse_url(issuer)?;
        discovery.oauth = Some(parse_url(&rfc8414_url(&issuer_uri))?);
        Ok(discovery)
    }

    /// The issuer identifier, exactly as given.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The OpenID Connect discovery URL, asked first.
    pub fn url(&self) -> &Uri {
        &self.openid
    }

    /// Fetches the metadata and checks that it names exactly this issuer (OpenID Connect
    /// Discovery 1.0 section 4.3, RFC 8414 section 3.3: identical, not merely equivalent, so a
    /// trailing slash, a case or a scheme of difference is a mismatch).
    ///
    /// # Errors
    /// The client's errors, [`Reply::into_ok_body`](crate::Reply::into_ok_body)'s for the last
    /// location asked, [`HttpError::NotJson`] and [`HttpError::IssuerMismatch`].
    pub async fn fetch(&self, http: &HttpClient) -> Result<Metadata, HttpError> {
        let mut reply = http.get(&self.openid).await?;
        if let Some(oauth) = &self.oauth
            && reply.status == StatusCode::NOT_FOUND
        {
            reply = http.get(oauth).await?;
        }
        let body = reply.into_ok_body()?;
        let metadata: Metadata = serde_json::from_slice(&body).map_err(|_| HttpError::NotJson)?;
        if metadata.issuer != *self.issuer {
            return Err(HttpError::IssuerMismatch);
        }
        Ok(metadata)
    }
}

impl Metadata {
    /// The `jwks_uri`: an absolute `http` or `https` URL. The loopback rule is the caller's to
    /// apply ([`require_tls_off_loopback`](crate::require_tls_off_loopback)), so that it can
    /// say which URL it refused: a key set is public, but keys read over plain http could be
    /// anyone's.
    ///
    /// # Errors
    /// [`HttpError::MissingEndpoint`], or as [`parse_url`](crate::parse_url).
    pub fn jwks_uri(&self) -> Result<Uri, HttpError> {
        parse_url(self.jwks_uri.as_deref().ok_or(HttpError::MissingEndpoint)?)
    }

    /// The `token_endpoint`, where a client secret will be sent: the loopback rule applies.
    ///
    /// # Errors
    /// [`HttpError::MissingEndpoint`], or as [`parse_endpoint`](crate::parse_endpoint).
    pub fn token_endpoint(&self) -> Result<Uri, HttpError> {
        parse_endpoint(
            self.token_endpoint
                .as_deref()
                .ok_or(HttpError::MissingEndpoint)?,
        )
    }
}

impl Metadata {
    /// The `authorization_endpoint`, where a person's browser signs in: the loopback rule
    /// applies (RFC 6749 section 3.1 requires TLS there).
    ///
    /// # Errors
    /// [`HttpError::MissingEndpoint`], or as [`parse_endpoint`](crate::parse_endpoint).
    pub fn authorization_endpoint(&self) -> Result<Uri, HttpError> {
        endpoint(self.authorization_endpoint.as_deref())
    }

    /// The `revocation_endpoint` (RFC 7009, RFC 8414 section 2), sent refresh tokens: the
    /// loopback rule applies.
    ///
    /// # Errors
    /// [`HttpError::MissingEndpoint`], or as [`parse_endpoint`](crate::parse_endpoint).
    pub fn revocation_endpoint(&self) -> Result<Uri, HttpError> {
        endpoint(self.revocation_endpoint.as_deref())
    }

    /// The `device_authorization_endpoint` (RFC 8628 section 4): the loopback rule applies.
    ///
    /// # Errors
    /// [`HttpError::MissingEndpoint`], or as [`parse_endpoint`](crate::parse_endpoint).
    pub fn device_authorization_endpoint(&self) -> Result<Uri, HttpError> {
        endpoint(self.device_authorization_endpoint.as_deref())
    }

    /// The `introspection_endpoint` (RFC 7662, RFC 8414 section 2), sent access tokens and a
    /// client secret: the loopback rule applies.
    ///
    /// # Errors
    /// [`HttpError::MissingEndpoint`], or as [`parse_endpoint`](crate::parse_endpoint).
    pub fn introspection_endpoint(&self) -> Result<Uri, HttpError> {
        endpoint(self.introspection_endpoint.as_deref())
    }
}

fn endpoint(url: Option<&str>) -> Result<Uri, HttpError> {
    parse_endpoint(url.ok_or(HttpError::MissingEndpoint)?)
}

/// RFC 8414 section 3.1: `https://as.example/tenant` ->
/// `https://as.example/.well-known/oauth-authorization-server/tenant`.
fn rfc8414_url(issuer: &Uri) -> String {
    let authority = issuer.authority().map_or("", |a| a.as_str());
    let scheme = issuer.scheme_str().unwrap_or("https");
    let path = issuer.path().trim_end_matches('/');
    format!("{scheme}://{authority}/.well-known/oauth-authorization-server{path}")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::test_server::{TestServer, status};

    const OPENID: &str = "/tenant/.well-known/openid-configuration";
    const OAUTH: &str = "/.well-known/oauth-authorization-server/tenant";

    fn client() -> HttpClient {
        HttpClient::new(Duration::from_millis(500), Duration::from_millis(300)).unwrap()
    }

    /// An issuer `{base}/tenant` whose server answers `openid` and `oauth` at its two
    /// locations; `{issuer}` in a body stands for the issuer.
    async fn idp(openid: Option<(u16, &str)>, oauth: Option<(u16, &str)>) -> (TestServer, String) {
        let server = TestServer::start(|base| {
            let issuer = format!("{base}/tenant");
            let answer = |reply: Option<(u16, &str)>| {
                reply.map(|(code, body)| {
                    status(code, &body.replace("{issuer}", &issuer)).into_bytes()
                })
            };
            vec![(OPENID, answer(openid)), (OAUTH, answer(oauth))]
        })
        .await;
        let issuer = format!("{}/tenant", server.base);
        (server, issuer)
    }

    const TOKEN: &str =
        r#"{"issuer":"{issuer}","token_endpoint":"{issuer}/token","jwks_uri":"{issuer}/jwks"}"#;

    #[tokio::test]
    async fn openid_metadata_names_its_endpoints() {
        let (server, issuer) = idp(Some((200, TOKEN)), None).await;
        let metadata = Discovery::openid(&issuer)
            .unwrap()
            .fetch(&client())
            .await
            .unwrap();
        assert_eq!(
            metadata.token_endpoint().unwrap(),
            &*format!("{issuer}/token")
        );
        assert_eq!(metadata.jwks_uri().unwrap(), &*format!("{issuer}/jwks"));
        assert_eq!(server.asked(), [OPENID]);
    }

    #[tokio::test]
    async fn rfc8414_is_asked_only_after_a_404() {
        let (server, issuer) = idp(Some((404, "")), Some((200, TOKEN))).await;
        let discovery = Discovery::openid_or_oauth(&issuer).unwrap();
        let metadata = discovery.fetch(&client()).await.unwrap();
        assert_eq!(
            metadata.token_endpoint().unwrap(),
            &*format!("{issuer}/token")
        );
        assert_eq!(server.asked(), [OPENID, OAUTH]);

        // OpenID Connect only: a 404 is the answer.
        let (server, issuer) = idp(Some((404, "")), Some((200, TOKEN))).await;
        let error = Discovery::openid(&issuer)
            .unwrap()
            .fetch(&client())
            .await
            .unwrap_err();
        assert_eq!(error, HttpError::UnexpectedStatus);
        assert_eq!(server.asked(), [OPENID]);
    }

    #[tokio::test]
    async fn an_outage_is_not_a_reason_to_look_elsewhere() {
        let (server, issuer) = idp(Some((503, "")), Some((200, TOKEN))).await;
        let discovery = Discovery::openid_or_oauth(&issuer).unwrap();
        let error = discovery.fetch(&client()).await.unwrap_err();
        assert_eq!(error, HttpError::ServerError { retry_after: None });
        assert_eq!(server.asked(), [OPENID]);

        let server = TestServer::start(|_| vec![(OPENID, None)]).await;
        let discovery = Discovery::openid_or_oauth(&format!("{}/tenant", server.base)).unwrap();
        assert_eq!(
            discovery.fetch(&client()).await.unwrap_err(),
            HttpError::Timeout
        );
        assert_eq!(server.asked(), [OPENID]);
    }

    #[tokio::test]
    async fn the_issuer_must_be_identical() {
        for other in [
            r#"{"issuer":"{issuer}/","token_endpoint":"{issuer}/token"}"#,
            r#"{"issuer":"{issuer}x","token_endpoint":"{issuer}/token"}"#,
            r#"{"issuer":"https://elsewhere.example/tenant","token_endpoint":"{issuer}/token"}"#,
        ] {
            let (_server, issuer) = idp(Some((200, other)), None).await;
            let error = Discovery::openid(&issuer)
                .unwrap()
                .fetch(&client())
                .await
                .unwrap_err();
            assert_eq!(error, HttpError::IssuerMismatch, "{other}");
        }
        let (_server, issuer) = idp(Some((200, TOKEN)), None).await;
        let upper = issuer.replace("tenant", "TENANT");
        let error = Discovery::openid(&upper).unwrap().fetch(&client()).await;
        // The upper-case path is another resource: not found, never the lower-case issuer's.
        assert_eq!(error.unwrap_err(), HttpError::UnexpectedStatus);
    }

    #[tokio::test]
    async fn bad_documents_and_endpoints() {
        for (body, error) in [
            ("<html>", HttpError::NotJson),
            (r#"{"token_endpoint":"{issuer}/token"}"#, HttpError::NotJson),
            (r#"{"issuer":7}"#, HttpError::NotJson),
            (r#"{"issuer":"{issuer}"}"#, HttpError::MissingEndpoint),
            (
                r#"{"issuer":"{issuer}","token_endpoint":"http://idp.example/token"}"#,
                HttpError::PlainHttp,
            ),
            (
                r#"{"issuer":"{issuer}","token_endpoint":"/token"}"#,
                HttpError::NotAbsolute,
            ),
            (
                r#"{"issuer":"{issuer}","token_endpoint":"token"}"#,
                HttpError::UnsupportedScheme,
            ),
        ] {
            let (_server, issuer) = idp(Some((200, body)), None).await;
            let fetched = Discovery::openid(&issuer).unwrap().fetch(&client()).await;
            let found = fetched.and_then(|metadata| metadata.token_endpoint());
            assert_eq!(found.unwrap_err(), error, "{body}");
        }
        // Parsed, not judged: the caller applies the loopback rule and names the URL it refuses.
        let body = r#"{"issuer":"{issuer}","jwks_uri":"http://idp.example/jwks"}"#;
        let (_server, issuer) = idp(Some((200, body)), None).await;
        let metadata = Discovery::openid(&issuer)
            .unwrap()
            .fetch(&client())
            .await
            .unwrap();
        assert!(metadata.jwks_uri().is_ok());
    }

    #[tokio::test]
    async fn login_endpoints_follow_the_loopback_rule() {
        let body = r#"{"issuer":"{issuer}","authorization_endpoint":"{issuer}/authorize",
            "revocation_endpoint":"http://idp.example/revoke",
            "device_authorization_endpoint":"{issuer}/device",
            "introspection_endpoint":"http://idp.example/introspect"}"#;
        let (_server, issuer) = idp(Some((200, body)), None).await;
        let metadata = Discovery::openid(&issuer)
            .unwrap()
            .fetch(&client())
            .await
            .unwrap();
        assert_eq!(
            metadata.authorization_endpoint().unwrap(),
            &*format!("{issuer}/authorize")
        );
        assert_eq!(
            metadata.device_authorization_endpoint().unwrap(),
            &*format!("{issuer}/device")
        );
        assert_eq!(
            metadata.revocation_endpoint().unwrap_err(),
            HttpError::PlainHttp
        );
        assert_eq!(
            metadata.introspection_endpoint().unwrap_err(),
            HttpError::PlainHttp
        );
        assert_eq!(
            metadata.token_endpoint().unwrap_err(),
            HttpError::MissingEndpoint
        );
    }

    #[test]
    fn issuers_have_no_query_and_metadata_urls_follow_their_specs() {
        assert_eq!(
            Discovery::openid("https://a.example?x=1").unwrap_err(),
            HttpError::Query
        );
        assert_eq!(
            Discovery::openid("https://a.example/#x").unwrap_err(),
            HttpError::Fragment
        );
        let discovery = Discovery::openid("https://as.example/realms/x/").unwrap();
        assert_eq!(
            discovery.url(),
            "https://as.example/realms/x/.well-known/openid-configuration"
        );
        assert_eq!(discovery.issuer(), "https://as.example/realms/x/");
        let url = |issuer: &str| rfc8414_url(&issuer.parse().unwrap());
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
}
