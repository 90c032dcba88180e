//! tower-auth-client against a real OpenID provider: panva/oidc-provider v9 (tests/interop), started
//! on loopback. The client credentials grant through discovery, tokens reused and refreshed
//! on Tokio's clock, single-flight, the provider gone during a refresh, and rejected clients;
//! the tokens it gets are accepted by our own OIDC authenticator behind the demo.
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
