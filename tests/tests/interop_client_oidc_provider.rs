//! tower-auth-client against a real OpenID provider: panva/oidc-provider v9 (tests/interop), started
//! on loopback. The client credentials grant through discovery, tokens reused and refreshed
//! on Tokio's clock, single-flight, the provider gone during a refresh, and rejected clients;
//! the tokens it gets are accepted by our own OIDC authenticator behind the demo. A person's
//! login (authorization code + PKCE through the provider's development forms, the ID token
//! checked, refresh, logout with revocation).
//!
//! Needs `npm ci --prefix tests/interop` first (`tests/interop/run` does it).
#![cfg(feature = "interop")]

use std::collections::HashSet;
use std::time::Duration;

use auth_tests::idp::unb64;
use auth_tests::oidc_provider::OidcProvider;
use auth_tests::serve;
use auth_tests::{jump, token_text};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tower::{ServiceBuilder, ServiceExt};
use tower_auth::AuthLayer;
use tower_auth_client::{BearerLayer, ClientAuth, ClientCredentials, TokenCache, TokenErrorKind};
use tower_auth_core::Admins;
use tower_auth_oidc::{IssuerConfig, OidcAuthenticator, OidcConfig};

/// The provider, and the grants this suite makes against it.
struct Peer(OidcProvider);

impl std::ops::Deref for Peer {
    type Target = OidcProvider;

    fn deref(&self) -> &OidcProvider {
        &self.0
    }
}

impl Peer {
    fn start() -> Self {
        Self(OidcProvider::start(None))
    }

    /// The grant through discovery, for the provider's resource, with `secret`.
    fn source(&self, secret: &str) -> ClientCredentials {
        ClientCredentials::from_issuer(self.field("issuer"), self.field("client_id"), secret)
            .unwrap()
            .scope("orders:read")
            .resource(self.field("resource"))
    }

    fn good_source(&self) -> ClientCredentials {
        self.source(self.field("client_secret"))
    }
}

#[tokio::test]
async fn client_credentials_tokens_that_our_layer_accepts() {
    let peer = Peer::start();
    let tokens = TokenCache::start(peer.good_source()).await.unwrap();
    let token = tokens.token().await.unwrap();
    // accessTokenTTL is 600 s; the lifetime counts from when the request was sent.
    assert_eq!(token.lifetime(), Some(Duration::from_secs(600)));
    let jwt = token_text(&token);
    let header: Value = serde_json::from_slice(&unb64(jwt.split('.').next().unwrap())).unwrap();
    assert_eq!(header["typ"], "at+jwt");

    let oidc = OidcConfig::builder()
        .issuer(
            IssuerConfig::new(peer.field("issuer"), peer.field("resource"))
                .roles_claim("scope")
                .required_typ("at+jwt"),
        )
        .build()
        .unwrap();
    let auth = OidcAuthenticator::start(oidc, Admins::default())
        .await
        .unwrap();
    let app = serve(auth_examples::router(AuthLayer::new(auth))).await;
    let client = ServiceBuilder::new()
        .layer(
            BearerLayer::new(tokens)
                .allow_origin(&format!("http://{app}"))
                .unwrap(),
        )
        .service(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());
    let request = http::Request::get(format!("http://{app}/whoami"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = client.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let who: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(who["subject"], peer.field("client_id"));
    assert_eq!(who["roles"], serde_json::json!(["orders:read"]));
}

#[tokio::test]
async fn reused_refreshed_and_fetched_once_for_a_hundred_callers() {
    let peer = Peer::start();
    let tokens = TokenCache::new(peer.good_source());
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let tokens = tokens.clone();
        callers.spawn(async move { tokens.token().await.map(|t| token_text(&t)) });
    }
    let mut seen = HashSet::new();
    while let Some(result) = callers.join_next().await {
        seen.insert(result.unwrap().unwrap());
    }
    assert_eq!(seen.len(), 1);
    assert_eq!(tokens.fetches(), 1, "one token request for 100 callers");
    let first = seen.into_iter().next().unwrap();

    // 600 s tokens: refreshed 300 s before expiry (half the lifetime), less up to 30 s of jitter.
    jump(Duration::from_secs(299)).await;
    assert_eq!(token_text(&tokens.token().await.unwrap()), first);
    assert_eq!(tokens.fetches(), 1);
    jump(Duration::from_secs(32)).await;
    assert_eq!(token_text(&tokens.token().await.unwrap()), first);
    assert_eq!(tokens.fetches(), 2, "due: a background refresh started");
    let second = token_text(&tokens.refresh().await.unwrap());
    assert_ne!(second, first);
    assert_eq!(tokens.fetches(), 2);
}

#[tokio::test]
async fn provider_gone_during_refresh() {
    let peer = Peer::start();
    let tokens = TokenCache::start(peer.good_source()).await.unwrap();
    let first = token_text(&tokens.token().await.unwrap());
    drop(peer);

    jump(Duration::from_secs(331)).await;
    assert_eq!(
        token_text(&tokens.token().await.unwrap()),
        first,
        "kept until expiry"
    );
    assert_eq!(tokens.fetches(), 2, "a background refresh started");
    let err = tokens.refresh().await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Unavailable, "{err:?}");
    assert_eq!(token_text(&tokens.token().await.unwrap()), first);

    jump(Duration::from_secs(300)).await;
    let err = tokens.token().await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Unavailable, "{err:?}");
    assert!(tokens.current().is_none());
}

#[tokio::test]
async fn rejected_clients_fail_start_up_with_typed_errors() {
    let peer = Peer::start();
    let err = TokenCache::start(peer.source("not-the-client-secret"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::InvalidClient, "{err:?}");
    assert_eq!(err.oauth_error(), Some("invalid_client"));
    let err = TokenCache::start(
        peer.source("not-the-client-secret")
            .auth_method(ClientAuth::Post),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::InvalidClient, "{err:?}");
    // The right secret in the form body (client_secret_post) is accepted too.
    TokenCache::start(peer.good_source().auth_method(ClientAuth::Post))
        .await
        .unwrap();
}

/// A person's login against the provider: the test plays the browser through its development
/// login and consent forms with plain HTTP requests (a cookie jar of its own), and follows the
/// last redirect to our loopback listener.
mod login {
    use super::*;
    use auth_tests::send_body;
    use http::Uri;
    use tower_auth_client::{
        AuthorizationCodeLogin, Logout, RefreshTokenGrant, Revocation, TokenFile, TokenSource,
    };

    #[derive(Default)]
    struct Browser {
        cookies: Vec<(String, String)>,
    }

    impl Browser {
        async fn send(
            &mut self,
            method: http::Method,
            url: &str,
            form: Option<&str>,
        ) -> auth_tests::Reply {
            let uri: Uri = url.parse().unwrap_or_else(|e| panic!("{url:?}: {e}"));
            let addr = uri.authority().unwrap().as_str().parse().unwrap();
            let cookie = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            let mut headers = Vec::new();
            if !cookie.is_empty() {
                headers.push(("cookie", cookie.as_str()));
            }
            if form.is_some() {
                headers.push(("content-type", "application/x-www-form-urlencoded"));
            }
            let path = uri.path_and_query().unwrap().as_str();
            let reply = send_body(addr, method, path, &headers, form.unwrap_or_default()).await;
            for set in reply.headers.get_all("set-cookie") {
                let pair = set.to_str().unwrap().split(';').next().unwrap();
                let (name, value) = pair.split_once('=').unwrap();
                self.cookies.retain(|(k, _)| k != name);
                if !value.is_empty() {
                    self.cookies.push((name.to_owned(), value.to_owned()));
                }
            }
            reply
        }

        /// From `url` on: redirects are followed (up to one to `stop_at`, whose answer is
        /// returned), every form is posted with its hidden inputs (the login form also as
        /// `ada`); a page without a form is where it ends.
        async fn browse(
            &mut self,
            url: &str,
            issuer: &str,
            stop_at: Option<&str>,
        ) -> auth_tests::Reply {
            let absolute = |next: &str| {
                if next.starts_with('/') {
                    format!("{issuer}{next}")
                } else {
                    next.to_owned()
                }
            };
            let mut reply = self.send(http::Method::GET, url, None).await;
            for _ in 0..16 {
                let next = match reply.status {
                    302 | 303 => absolute(reply.header("location").unwrap()),
                    200 if reply.body.contains("<form") => {
                        let body = &reply.body;
                        let start = body.find("action=\"").expect("an action") + "action=\"".len();
                        let action =
                            absolute(&body[start..start + body[start..].find('"').unwrap()]);
                        let mut form: Vec<String> = body
                            .split("<input type=\"hidden\" name=\"")
                            .skip(1)
                            .map(|input| {
                                let (name, rest) = input.split_once('"').unwrap();
                                let value = rest.split("value=\"").nth(1).unwrap();
                                format!("{name}={}", &value[..value.find('"').unwrap()])
                            })
                            .collect();
                        if body.contains("name=\"password\"") {
                            form.push("login=ada&password=any".into());
                        }
                        reply = self
                            .send(http::Method::POST, &action, Some(&form.join("&")))
                            .await;
                        continue;
                    }
                    _ => return reply,
                };
                if stop_at.is_some_and(|stop| next.starts_with(stop)) {
                    return self.send(http::Method::GET, &next, None).await;
                }
                reply = self.send(http::Method::GET, &next, None).await;
            }
            panic!("the pages never ended");
        }
    }

    #[tokio::test]
    async fn a_person_logs_in_with_pkce_refreshes_and_logs_out() {
        let peer = Peer::start();
        let issuer = peer.field("issuer").to_owned();
        let client_id = peer.field("cli_client_id").to_owned();
        let pending = AuthorizationCodeLogin::new(&issuer, client_id.clone())
            .unwrap()
            .scope("openid offline_access")
            .redirect_port(0)
            .start()
            .await
            .unwrap();
        let url = pending.authorization_url().to_owned();
        let redirect_uri = pending.redirect_uri().to_owned();
        let finished = tokio::spawn(pending.finish());
        let page = Browser::default()
            .browse(&url, &issuer, Some(&redirect_uri))
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        // The ID token was checked (iss, aud, exp, nonce and, with `oidc`, its signature).
        let session = finished.await.unwrap().unwrap();
        let id = String::from_utf8(session.id().unwrap().expose_secret().to_vec()).unwrap();
        let claims: Value = serde_json::from_slice(&unb64(id.split('.').nth(1).unwrap())).unwrap();
        assert_eq!(claims["sub"], "ada");
        assert_eq!(claims["aud"], client_id.as_str());

        // Refreshed with the refresh token the login brought.
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::new(dir.path().join("tokens.json"));
        let expired = session
            .clone()
            .expires_at(std::time::SystemTime::now() - Duration::from_secs(1));
        file.store(&expired).unwrap();
        let grant =
            RefreshTokenGrant::from_issuer(&issuer, client_id.clone(), file.clone()).unwrap();
        let token = grant.fetch().await.unwrap();
        assert_ne!(
            token_text(&token).as_bytes(),
            session.access().expose_secret()
        );
        let refreshed = file.load().unwrap().unwrap();

        // Logout revokes the refresh token at the provider: a copy of the file is worthless.
        let revocation = Logout::new(client_id.clone()).run(&file).await.unwrap();
        assert!(matches!(revocation, Revocation::Revoked), "{revocation:?}");
        assert!(!file.path().exists());
        file.store(&refreshed.expires_at(std::time::SystemTime::now() - Duration::from_secs(1)))
            .unwrap();
        let error = RefreshTokenGrant::from_issuer(&issuer, client_id, file.clone())
            .unwrap()
            .fetch()
            .await
            .unwrap_err();
        assert!(error.is_login_required(), "{error:?}");
    }

    #[tokio::test]
    async fn a_device_login_approved_in_the_provider_pages() {
        let peer = Peer::start();
        let issuer = peer.field("issuer").to_owned();
        let client_id = peer.field("cli_client_id").to_owned();
        let pending = tower_auth_client::DeviceLogin::new(&issuer, client_id.clone())
            .unwrap()
            .scope("openid offline_access")
            .start()
            .await
            .unwrap();
        let complete = pending.verification_uri_complete().unwrap().to_owned();
        assert!(complete.contains("user_code="), "{complete}");
        // The person approves on another device: the code's page, confirm, login, consent.
        let done = Browser::default().browse(&complete, &issuer, None).await;
        assert_eq!(done.status, 200, "{}", done.body);
        // The first poll comes after the interval (5 s, the provider names none): Tokio's
        // clock jumps there, and the poll itself runs on real time.
        let finished = tokio::spawn(pending.finish());
        tokio::task::yield_now().await;
        jump(Duration::from_secs(5)).await;
        let session = finished.await.unwrap().unwrap();
        assert_eq!(session.issuer(), issuer);
        assert!(session.refresh().is_some());
        let id = String::from_utf8(session.id().unwrap().expose_secret().to_vec()).unwrap();
        let claims: Value = serde_json::from_slice(&unb64(id.split('.').nth(1).unwrap())).unwrap();
        assert_eq!(claims["sub"], "ada");
    }
}
