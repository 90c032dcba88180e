//! `BearerLayer` end to end: in front of a hyper client and a tonic `Channel`, calling the
//! demo (HTTP router and gRPC server) behind our own `AuthLayer`, with tokens from a static
//! value and from the client credentials grant (JWTs the OIDC authenticator validates), and
//! the retry-once-on-401 path.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use auth_examples::grpc::pb::WhoAmIRequest;
use auth_examples::grpc::pb::demo_client::DemoClient;
use auth_examples::grpc::{grpc_auth, serve_grpc};
use auth_tests::idp::{AUDIENCE, SigningKey, TestIdp};
use auth_tests::token_endpoint::TokenEndpoint;
use auth_tests::{KEY_A, config, serve};
use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tonic::transport::Channel;
use tower::{ServiceBuilder, ServiceExt};
use tower_auth::AuthLayer;
use tower_auth_client::bearer::{BufferBody, CloneBody};
use tower_auth_client::{
    BearerLayer, ClientCredentials, FnSource, StaticToken, Token, TokenCache, TokenError,
    TokenErrorKind,
};
use tower_auth_core::Admins;
use tower_auth_oidc::{IssuerConfig, OidcAuthenticator, OidcConfig};

const ID: &str = "orders-reporter";
const SECRET: &str = "s3cr3t-0b8d2a4e6c1f3a5b7d9e0f2a4c6e8b1d";

fn hyper_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// `layer`, sending its token to the server at `addr` (a hyper client's requests name it).
fn origin_of(layer: BearerLayer, addr: SocketAddr) -> BearerLayer {
    layer.allow_origin(&format!("http://{addr}")).unwrap()
}

fn get_request(addr: SocketAddr, path: &str) -> http::Request<Full<Bytes>> {
    http::Request::get(format!("http://{addr}{path}"))
        .body(Full::new(Bytes::new()))
        .unwrap()
}

async fn json(response: http::Response<hyper::body::Incoming>) -> serde_json::Value {
    let body = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}

async fn grpc_demo(auth: AuthLayer) -> Channel {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_grpc(
        grpc_auth(auth),
        listener,
        std::future::pending(),
    ));
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// An IdP publishing `key`, a token endpoint minting JWTs with it, and an `AuthLayer` that
/// validates them (OIDC, audience `api`).
async fn oidc_setup() -> (TestIdp, TokenEndpoint, AuthLayer) {
    let key = SigningKey::ec("client-ec-1");
    let idp = TestIdp::start(&[&key]).await;
    let endpoint = TokenEndpoint::start_jwt(&[(ID, SECRET)], key, idp.issuer(), AUDIENCE).await;
    let oidc = OidcConfig::builder()
        .issuer(IssuerConfig::new(idp.issuer(), AUDIENCE))
        .build()
        .unwrap();
    let auth = OidcAuthenticator::start(oidc, Admins::default())
        .await
        .unwrap();
    (idp, endpoint, AuthLayer::new(auth))
}

#[tokio::test]
async fn client_credentials_jwt_over_hyper_and_a_tonic_channel() {
    let (_idp, endpoint, auth) = oidc_setup().await;
    let http = serve(auth_examples::router(auth.clone())).await;
    let channel = grpc_demo(auth).await;
    let source = ClientCredentials::new(&endpoint.token_url(), ID, SECRET)
        .unwrap()
        .scope("orders:read");
    let tokens = TokenCache::start(source).await.unwrap();

    let client = ServiceBuilder::new()
        .layer(origin_of(BearerLayer::new(tokens.clone()), http))
        .service(hyper_client());
    let response = client.oneshot(get_request(http, "/whoami")).await.unwrap();
    assert_eq!(response.status(), 200);
    let who = json(response).await;
    assert_eq!(who["subject"], ID);
    assert_eq!(who["method"], "oidc");
    assert_eq!(who["roles"], serde_json::json!(["orders:read"]));

    let channel = ServiceBuilder::new()
        .layer(BearerLayer::new(tokens.clone()))
        .service(channel);
    let mut demo = DemoClient::new(channel);
    for _ in 0..3 {
        let reply = demo.who_am_i(WhoAmIRequest {}).await.unwrap().into_inner();
        assert_eq!(reply.subject, ID);
        assert_eq!(reply.method, "oidc");
    }
    assert_eq!(endpoint.token_requests(), 1, "one token for every call");
}

#[tokio::test]
async fn a_static_token_over_hyper_and_a_tonic_channel() {
    let keys = format!(r#"[{{"name":"ci","key":"{KEY_A}"}}]"#);
    let auth = config(&[("API_KEYS", &keys)]).build_blocking().unwrap();
    let http = serve(auth_examples::router(auth.clone())).await;
    let channel = grpc_demo(auth).await;
    let layer = origin_of(BearerLayer::new(StaticToken::new(KEY_A).unwrap()), http);

    let client = ServiceBuilder::new()
        .layer(layer.clone())
        .service(hyper_client());
    let response = client.oneshot(get_request(http, "/whoami")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(json(response).await["subject"], "ci");

    let mut demo = DemoClient::new(ServiceBuilder::new().layer(layer).service(channel.clone()));
    let reply = demo.who_am_i(WhoAmIRequest {}).await.unwrap().into_inner();
    assert_eq!(reply.subject, "ci");
    // Without the layer the same channel is refused: it was the layer's header.
    let refused = DemoClient::new(channel)
        .who_am_i(WhoAmIRequest {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
}

#[tokio::test]
async fn no_token_means_an_error_from_the_client_not_a_request() {
    let keys = format!(r#"[{{"name":"ci","key":"{KEY_A}"}}]"#);
    let auth = config(&[("API_KEYS", &keys)]).build_blocking().unwrap();
    let endpoint = TokenEndpoint::start(&[(ID, SECRET)]).await;
    let channel = grpc_demo(auth.clone()).await;
    let http = serve(auth_examples::router(auth)).await;
    let source = ClientCredentials::new(&endpoint.token_url(), ID, "a wrong secret").unwrap();
    let layer = origin_of(BearerLayer::new(source), http);

    let err = ServiceBuilder::new()
        .layer(layer.clone())
        .service(hyper_client())
        .oneshot(get_request(http, "/whoami"))
        .await
        .unwrap_err();
    let err = err.downcast::<TokenError>().unwrap();
    assert_eq!(err.kind(), TokenErrorKind::InvalidClient);

    // tower-auth-client's `tonic` feature: the code the error stands for, not UNKNOWN, and
    // not UNAUTHENTICATED either, which would blame the caller for this client's own
    // configuration; the message is the kind's, never the token endpoint's words.
    let status = DemoClient::new(ServiceBuilder::new().layer(layer).service(channel.clone()))
        .who_am_i(WhoAmIRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Internal);
    assert_eq!(
        status.message(),
        format!("{} (oauth_error)", TokenErrorKind::InvalidClient)
    );
    let source = std::error::Error::source(&status).unwrap();
    let err = source.downcast_ref::<TokenError>().unwrap();
    assert!(err.is_invalid_client());
    assert!(!status.message().contains("a wrong secret"));
    assert_eq!(tonic::Status::from(err.clone()).code(), status.code());

    // A token endpoint that is down: UNAVAILABLE, which gRPC retry policies retry.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let down = format!("http://{}/token", closed.local_addr().unwrap());
    drop(closed);
    let source = ClientCredentials::new(&down, ID, SECRET).unwrap();
    let status = DemoClient::new(
        ServiceBuilder::new()
            .layer(BearerLayer::new(source))
            .service(channel),
    )
    .who_am_i(WhoAmIRequest {})
    .await
    .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    let err = std::error::Error::source(&status)
        .and_then(|e| e.downcast_ref::<TokenError>())
        .unwrap();
    assert_eq!(err.kind(), TokenErrorKind::Unavailable);
}

/// An API that refuses the tokens in `revoked` (or all of them) with 401 and echoes the rest.
async fn revoking_api(revoked: Arc<Mutex<HashSet<String>>>, all: Arc<Mutex<bool>>) -> SocketAddr {
    let handler = move |headers: http::HeaderMap| {
        let revoked = Arc::clone(&revoked);
        let all = Arc::clone(&all);
        async move {
            let token = headers["authorization"]
                .to_str()
                .unwrap()
                .strip_prefix("Bearer ")
                .unwrap()
                .to_owned();
            if *all.lock().unwrap() || revoked.lock().unwrap().contains(&token) {
                (StatusCode::UNAUTHORIZED, String::new())
            } else {
                (StatusCode::OK, token)
            }
        }
    };
    serve(Router::new().route("/data", get(handler))).await
}

#[tokio::test]
async fn retry_once_with_a_fresh_token_on_401_over_hyper() {
    let endpoint = TokenEndpoint::start(&[(ID, SECRET)]).await;
    let revoked = Arc::<Mutex<HashSet<String>>>::default();
    let all = Arc::<Mutex<bool>>::default();
    let api = revoking_api(Arc::clone(&revoked), Arc::clone(&all)).await;
    let tokens =
        TokenCache::start(ClientCredentials::new(&endpoint.token_url(), ID, SECRET).unwrap())
            .await
            .unwrap();
    let client = ServiceBuilder::new()
        .layer(origin_of(BearerLayer::new(tokens.clone()), api).retry_unauthorized(CloneBody))
        .service(hyper_client());
    let body = |response: http::Response<hyper::body::Incoming>| async move {
        String::from_utf8(
            response
                .into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .to_vec(),
        )
        .unwrap()
    };

    let response = client
        .clone()
        .oneshot(get_request(api, "/data"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let first = body(response).await;

    // The server stops accepting the token: one 401, a forced refresh, and the retry passes.
    revoked.lock().unwrap().insert(first.clone());
    let response = client
        .clone()
        .oneshot(get_request(api, "/data"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let second = body(response).await;
    assert_ne!(second, first);
    assert_eq!(endpoint.token_requests(), 2);

    // A server refusing everything: within the forced-refresh interval (5 s) the 401 comes
    // back without another token request...
    *all.lock().unwrap() = true;
    for _ in 0..2 {
        let response = client
            .clone()
            .oneshot(get_request(api, "/data"))
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    assert_eq!(endpoint.token_requests(), 2);
    // ...and after it, one retry with one fresh token, then the 401.
    tokio::time::pause();
    tokio::time::advance(std::time::Duration::from_secs(5)).await;
    tokio::time::resume();
    let response = client
        .clone()
        .oneshot(get_request(api, "/data"))
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(endpoint.token_requests(), 3);
}

#[tokio::test]
async fn retry_once_on_unauthenticated_over_a_tonic_channel() {
    let keys = format!(r#"[{{"name":"ci","key":"{KEY_A}"}}]"#);
    let channel = grpc_demo(config(&[("API_KEYS", &keys)]).build_blocking().unwrap()).await;
    // The first token the source hands out is one the server no longer accepts.
    let source = || {
        let calls = Arc::new(AtomicU32::new(0));
        let counter = Arc::clone(&calls);
        let source = FnSource::new(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let value = if n == 0 {
                "revoked-5d41402abc4b2a76b9719d911017c592"
            } else {
                KEY_A
            };
            async move { Ok(Token::new(value, None)) }
        });
        (source, calls)
    };

    let (tokens, calls) = source();
    let layer =
        BearerLayer::new(tokens).retry_unauthorized(BufferBody::new(tonic::body::Body::new));
    let mut demo = DemoClient::new(ServiceBuilder::new().layer(layer).service(channel.clone()));
    let reply = demo.who_am_i(WhoAmIRequest {}).await.unwrap().into_inner();
    assert_eq!(reply.subject, "ci");
    assert_eq!(calls.load(Ordering::SeqCst), 2, "one forced refresh");
    // The next call goes straight through with the new token.
    demo.who_am_i(WhoAmIRequest {}).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // Without the retry the caller sees the UNAUTHENTICATED.
    let (tokens, _) = source();
    let mut demo = DemoClient::new(
        ServiceBuilder::new()
            .layer(BearerLayer::new(tokens))
            .service(channel),
    );
    let status = demo.who_am_i(WhoAmIRequest {}).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
}
