//! tower-auth-client against our own token-exchange endpoint (`tower_auth_hmac::ExchangeEndpoint` at
//! `POST /auth/token`): exchange, refresh, a callable credential, and the role token it
//! yields accepted by the demo behind the HMAC authenticator.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_tests::serve;
use auth_tests::{jump, token_text};
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{ServiceBuilder, ServiceExt};
use tower_auth::AuthLayer;
use tower_auth_client::{BearerLayer, TokenCache, TokenError, TokenErrorKind, TokenExchange};
use tower_auth_core::{Admins, Secret, sha256_digest};
use tower_auth_hmac::{ExchangeEndpoint, HmacAuthenticator, HmacConfig, TOKEN_PATH, TokenClients};

const HMAC_SECRET: &str = "e1c7a9f35b2d84c6f0a3e9d7b1c5f2a8-client-tests";
const CLIENT: &str = "metrics-agent";
const REGISTRATION: &str = "registration-secret-of-the-metrics-agent-5f2b";

/// The exchange endpoint on 127.0.0.1:0 issuing 10-minute role tokens; returns its URL and
/// a counter of requests.
async fn exchange_server(config: &HmacConfig) -> (String, Arc<AtomicU64>) {
    let digest: String = sha256_digest(REGISTRATION.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let clients = TokenClients::parse(
        "AUTH_TOKEN_CLIENTS",
        &format!(
            r#"[{{"client_id":"{CLIENT}","secret_sha256":"sha256:{digest}","roles":["runtime.metrics:read"]}}]"#
        ),
    )
    .unwrap();
    let exchange = ExchangeEndpoint::builder(config.clone(), clients)
        .lifetime(Duration::from_secs(600))
        .build()
        .unwrap();
    let requests = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&requests);
    let counted = ServiceBuilder::new()
        .map_request(move |request| {
            counter.fetch_add(1, Ordering::SeqCst);
            request
        })
        .service(exchange);
    let addr = serve(Router::new().route_service(TOKEN_PATH, counted)).await;
    (format!("http://{addr}{TOKEN_PATH}"), requests)
}

#[tokio::test]
async fn exchange_and_refresh() {
    let config = HmacConfig::builder(HMAC_SECRET).build().unwrap();
    let (url, requests) = exchange_server(&config).await;
    let source = TokenExchange::new(&url, CLIENT, REGISTRATION).unwrap();
    let tokens = TokenCache::start(source).await.unwrap();
    let first = tokens.token().await.unwrap();
    assert_eq!(first.lifetime(), Some(Duration::from_secs(600)));
    let claims = config.decode(&token_text(&first)).unwrap();
    assert_eq!(claims.sub, CLIENT);
    assert_eq!(claims.roles, ["runtime.metrics:read"]);

    // 10-minute tokens: refreshed 300 s before expiry (half the lifetime), less up to 30 s of jitter.
    jump(Duration::from_secs(299)).await;
    assert_eq!(
        token_text(&tokens.token().await.unwrap()),
        token_text(&first)
    );
    assert_eq!(requests.load(Ordering::SeqCst), 1);
    jump(Duration::from_secs(32)).await;
    assert_eq!(
        token_text(&tokens.token().await.unwrap()),
        token_text(&first)
    );
    assert_eq!(tokens.fetches(), 2, "due: a background refresh started");
    let second = tokens.refresh().await.unwrap();
    assert_ne!(token_text(&second), token_text(&first));
    config.decode(&token_text(&second)).unwrap();
    assert_eq!(requests.load(Ordering::SeqCst), 2);
    assert_eq!(tokens.fetches(), 2);
}

#[tokio::test]
async fn a_callable_credential_is_called_at_each_exchange() {
    let config = HmacConfig::builder(HMAC_SECRET).build().unwrap();
    let (url, requests) = exchange_server(&config).await;
    let calls = Arc::new(AtomicU32::new(0));
    let current = Arc::new(Mutex::new(REGISTRATION.to_owned()));
    let (counter, credential) = (Arc::clone(&calls), Arc::clone(&current));
    let source = TokenExchange::with_credential_fn(&url, CLIENT, move || {
        counter.fetch_add(1, Ordering::SeqCst);
        let value = credential.lock().unwrap().clone();
        async move { Ok::<_, TokenError>(Secret::from(value)) }
    })
    .unwrap();
    let tokens = TokenCache::start(source).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    tokens.refresh().await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // Read afresh: a credential that went bad is noticed at the next exchange...
    *current.lock().unwrap() = "a revoked credential".into();
    let err = tokens.refresh().await.unwrap_err();
    assert!(err.is_invalid_client(), "{err:?}");
    // ...while the token already held is still served, until it expires.
    tokens.token().await.unwrap();
    *current.lock().unwrap() = REGISTRATION.into();
    tokens.refresh().await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(requests.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_failing_callable_is_an_error_without_a_request() {
    let config = HmacConfig::builder(HMAC_SECRET).build().unwrap();
    let (url, requests) = exchange_server(&config).await;
    let source = TokenExchange::with_credential_fn(&url, CLIENT, || async {
        Err(TokenError::other("the vault is sealed"))
    })
    .unwrap();
    let err = TokenCache::start(source).await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Other);
    assert!(err.to_string().contains("the vault is sealed"));
    assert_eq!(requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_wrong_credential_is_invalid_client_then_rate_limited() {
    let config = HmacConfig::builder(HMAC_SECRET).build().unwrap();
    let (url, _) = exchange_server(&config).await;
    let source = TokenExchange::new(&url, CLIENT, "not the registration secret").unwrap();
    let tokens = TokenCache::new(source);
    let err = tokens.token().await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::InvalidClient);
    assert_eq!(err.oauth_error(), Some("invalid_client"));
    for _ in 0..4 {
        assert!(tokens.refresh().await.unwrap_err().is_invalid_client());
    }
    // The endpoint locks the id out after 5 failures: 429 with Retry-After.
    let err = tokens.refresh().await.unwrap_err();
    assert_eq!(
        (err.kind(), err.reason()),
        (TokenErrorKind::Unavailable, "rate_limited")
    );
    assert!(err.retry_after().is_some());
}

/// The demo behind the HMAC authenticator, on 127.0.0.1:0.
async fn demo(config: &HmacConfig) -> SocketAddr {
    let auth = AuthLayer::new(HmacAuthenticator::new(config.clone(), Admins::default()));
    serve(auth_examples::router(auth)).await
}

#[tokio::test]
async fn the_role_token_calls_the_demo_through_bearer_layer_over_hyper() {
    let config = HmacConfig::builder(HMAC_SECRET).build().unwrap();
    let (url, _) = exchange_server(&config).await;
    let app = demo(&config).await;
    let tokens = TokenCache::start(TokenExchange::new(&url, CLIENT, REGISTRATION).unwrap())
        .await
        .unwrap();
    let client = ServiceBuilder::new()
        .layer(
            BearerLayer::new(tokens)
                .allow_origin(&format!("http://{app}"))
                .unwrap(),
        )
        .service(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());
    let request = |path: &str| {
        http::Request::get(format!("http://{app}{path}"))
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let response = client.clone().oneshot(request("/whoami")).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let who: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(who["subject"], CLIENT);
    assert_eq!(who["method"], "hmac");
    let response = client.oneshot(request("/admin")).await.unwrap();
    assert_eq!(
        response.status(),
        403,
        "authenticated, without the admin role"
    );
}
