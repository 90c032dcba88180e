//! `BearerLayer` sends its token only to the origins it was made for: a hyper client behind
//! it calling its own server and another one (a link or webhook taken from a response), with
//! the other origin's requests sent bare or refused, and no retry there on a 401.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use auth_tests::serve;
use auth_tests::token_endpoint::TokenEndpoint;
use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use bytes::Bytes;
use http::StatusCode;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{ServiceBuilder, ServiceExt};
use tower_auth_client::bearer::{CloneBody, ForeignOrigin, OtherOrigins};
use tower_auth_client::{BearerLayer, ClientCredentials, TokenCache};

const ID: &str = "orders-reporter";
const SECRET: &str = "s3cr3t-7c1e9a3b5d0f2e4a6c8b1d3f5a7e9c0b";

/// A server that records the `Authorization` header of every request and answers `status`.
async fn recording(status: StatusCode) -> (SocketAddr, Arc<Mutex<Vec<Option<String>>>>) {
    let seen = Arc::<Mutex<Vec<Option<String>>>>::default();
    let record = Arc::clone(&seen);
    let app = Router::new().route(
        "/{*path}",
        get(move |headers: HeaderMap| {
            let record = Arc::clone(&record);
            async move {
                let auth = headers
                    .get("authorization")
                    .map(|v| v.to_str().unwrap().to_owned());
                record.lock().unwrap().push(auth);
                status
            }
        }),
    );
    (serve(app).await, seen)
}

fn request(addr: SocketAddr, path: &str) -> http::Request<Full<Bytes>> {
    http::Request::get(format!("http://{addr}{path}"))
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// A token endpoint and a started cache of its tokens.
async fn tokens() -> (TokenEndpoint, TokenCache) {
    let endpoint = TokenEndpoint::start(&[(ID, SECRET)]).await;
    let source = ClientCredentials::new(&endpoint.token_url(), ID, SECRET).unwrap();
    (endpoint, TokenCache::start(source).await.unwrap())
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// SECURITY.md O1.
#[tokio::test]
async fn another_origin_gets_no_token_and_no_retry() {
    let (endpoint, tokens) = tokens().await;
    let (ours, ours_seen) = recording(StatusCode::OK).await;
    let (theirs, theirs_seen) = recording(StatusCode::UNAUTHORIZED).await;
    let layer = BearerLayer::new(tokens)
        .allow_origin(&format!("http://{ours}/api"))
        .unwrap()
        .retry_unauthorized(CloneBody);
    let service = ServiceBuilder::new().layer(layer).service(client());

    let response = service.clone().oneshot(request(ours, "/x")).await.unwrap();
    assert_eq!(response.status(), 200);
    let sent = ours_seen.lock().unwrap().clone();
    assert!(
        sent[0].as_deref().unwrap().starts_with("Bearer "),
        "{sent:?}"
    );

    // Another origin (same host, another port) answering 401: one bare request, no retry,
    // and no second token fetched for it.
    let response = service
        .clone()
        .oneshot(request(theirs, "/hook"))
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(*theirs_seen.lock().unwrap(), [None]);
    assert_eq!(endpoint.token_requests(), 1);
    // `localhost` names the same machine but is another origin than 127.0.0.1.
    let by_name = format!("http://localhost:{}/x", ours.port());
    let response = service
        .clone()
        .oneshot(
            http::Request::get(by_name)
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(ours_seen.lock().unwrap().last().unwrap(), &None);
}

/// SECURITY.md O1.
#[tokio::test]
async fn another_origin_can_be_refused_before_any_request() {
    let (_endpoint, tokens) = tokens().await;
    let (ours, ours_seen) = recording(StatusCode::OK).await;
    let (theirs, theirs_seen) = recording(StatusCode::OK).await;
    let layer = BearerLayer::new(tokens)
        .allow_origin(&format!("http://{ours}"))
        .unwrap()
        .other_origins(OtherOrigins::Refuse);
    let service = ServiceBuilder::new().layer(layer).service(client());
    let error = service
        .clone()
        .oneshot(request(theirs, "/hook"))
        .await
        .unwrap_err();
    let refused = error.downcast_ref::<ForeignOrigin>().unwrap();
    assert_eq!(refused.origin(), Some(format!("http://{theirs}").as_str()));
    assert!(theirs_seen.lock().unwrap().is_empty(), "never called");
    let response = service.oneshot(request(ours, "/x")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(ours_seen.lock().unwrap().len(), 1);
}

/// SECURITY.md O2.
#[test]
fn plain_http_to_a_host_off_loopback_needs_an_explicit_opt_in() {
    let layer =
        || BearerLayer::new(tower_auth_client::StaticToken::new("k7Qm2VxP9rTz4LwN").unwrap());
    let error = layer().allow_origin("http://api.example.com").unwrap_err();
    assert!(error.to_string().contains("in the clear"), "{error}");
    assert!(
        layer()
            .allow_insecure_origin("http://10.0.0.5:50051")
            .is_ok()
    );
    assert!(layer().allow_origin("https://api.example.com").is_ok());
    assert!(layer().allow_origin("api.example.com").is_err());
}
