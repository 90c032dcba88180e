//! The token-exchange endpoint driven as a tower service (and, with `axum`, through a router).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use tower::ServiceExt;
use tower_auth_core::{Admins, Clock, sha256_digest};
use tower_auth_hmac::{
    ExchangeEndpoint, HmacAuthenticator, HmacConfig, MAX_BODY_BYTES, TokenClients,
};

const AGENT_SECRET: &str = "agent-registration-secret-5f2b8c1e9d4a7360";

fn clients() -> TokenClients {
    let digest = hex::encode(sha256_digest(AGENT_SECRET.as_bytes()));
    TokenClients::parse(
        "AUTH_TOKEN_CLIENTS",
        &format!(
            r#"[{{"client_id":"agent","secret_sha256":"sha256:{digest}","roles":["runtime.metrics:read","runtime.health:read"]}},
                {{"client_id":"plain","secret_sha256":"{digest}"}}]"#
        ),
    )
    .unwrap()
}

fn setup() -> (Clock, HmacConfig, ExchangeEndpoint) {
    let clock = Clock::manual(NOW);
    let config = HmacConfig::builder(SECRET)
        .clock(clock.clone())
        .build()
        .unwrap();
    let exchange = ExchangeEndpoint::builder(config.clone(), clients())
        .build()
        .unwrap();
    (clock, config, exchange)
}

fn post(body: &str) -> Request<Full<Bytes>> {
    Request::post("/auth/token")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

fn attempt(client_id: &str, credential: &str) -> Request<Full<Bytes>> {
    post(&serde_json::json!({"client_id": client_id, "credential": credential}).to_string())
}

async fn send(
    exchange: &ExchangeEndpoint,
    request: Request<Full<Bytes>>,
) -> (StatusCode, http::HeaderMap, Value) {
    let response: Response<Full<Bytes>> = exchange.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    assert_eq!(
        parts.headers["cache-control"], "no-store",
        "RFC 6749 section 5.1"
    );
    assert_eq!(parts.headers["pragma"], "no-cache");
    assert_eq!(parts.headers["content-type"], "application/json");
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        serde_json::from_slice(&bytes).unwrap(),
    )
}

#[tokio::test]
async fn good_credential_gets_a_token_with_the_clients_roles() {
    let (_, config, exchange) = setup();
    let (status, _, body) = send(&exchange, attempt("agent", AGENT_SECRET)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 86_400);
    let token = body["access_token"].as_str().unwrap();
    let claims = config.decode(token).unwrap();
    assert_eq!(claims.sub, "agent");
    assert_eq!(
        claims.roles,
        ["runtime.metrics:read", "runtime.health:read"]
    );
    assert_eq!(claims.exp, NOW + 86_400);
    // The token works with the authenticator.
    let identity = accepted(&HmacAuthenticator::new(config, Admins::default()), token);
    assert!(identity.has_role("runtime.metrics:read"));

    // A client without roles gets a token without roles.
    let (status, _, body) = send(&exchange, attempt("plain", AGENT_SECRET)).await;
    assert_eq!(status, StatusCode::OK);
    let claims = HmacConfig::builder(SECRET)
        .clock(Clock::manual(NOW))
        .build()
        .unwrap()
        .decode(body["access_token"].as_str().unwrap())
        .unwrap();
    assert!(claims.roles.is_empty());
}

#[tokio::test]
async fn lifetime_and_audience_are_configurable() {
    let (clock, config, _) = setup();
    let exchange = ExchangeEndpoint::builder(config, clients())
        .lifetime(Duration::from_secs(900))
        .audience("metrics")
        .build()
        .unwrap();
    let (status, _, body) = send(&exchange, attempt("agent", AGENT_SECRET)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["expires_in"], 900);
    let claims = HmacConfig::builder(SECRET)
        .clock(clock)
        .audience("metrics")
        .build()
        .unwrap()
        .decode(body["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(claims.exp, NOW + 900);
    assert_eq!(claims.aud, ["metrics"]);
}

#[tokio::test]
async fn wrong_secret_and_unknown_client_get_the_same_answer() {
    let (_, _, exchange) = setup();
    let wrong = send(&exchange, attempt("agent", "not-the-registered-secret")).await;
    let unknown = send(&exchange, attempt("nobody", AGENT_SECRET)).await;
    assert_eq!(wrong.0, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.2, serde_json::json!({"error": "invalid_client"}));
    assert_eq!((wrong.0, &wrong.2), (unknown.0, &unknown.2));
    // The registered digest itself is not the secret.
    let digest = hex::encode(sha256_digest(AGENT_SECRET.as_bytes()));
    assert_eq!(
        send(&exchange, attempt("agent", &digest)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&exchange, attempt("agent", &format!("{AGENT_SECRET} ")))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn malformed_requests_are_invalid_request() {
    let (_, _, exchange) = setup();
    let ok_body = serde_json::json!({"client_id": "agent", "credential": AGENT_SECRET}).to_string();
    let bad_bodies = [
        "".to_owned(),
        "{".to_owned(),
        "[]".to_owned(),
        r#"{"client_id":"agent"}"#.to_owned(),
        r#"{"credential":"x"}"#.to_owned(),
        r#"{"client_id":5,"credential":"x"}"#.to_owned(),
        r#"{"client_id":"agent","credential":""}"#.to_owned(),
        r#"{"client_id":"","credential":"x"}"#.to_owned(),
        format!(r#"{{"client_id":"{}","credential":"x"}}"#, "a".repeat(300)),
        format!(r#"{{"client_id":"agent","client_id":"agent","credential":"{AGENT_SECRET}"}}"#),
    ];
    for body in bad_bodies {
        let (status, _, json) = send(&exchange, post(&body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(json, serde_json::json!({"error": "invalid_request"}));
    }
    // Wrong or missing content type, with a body that would otherwise be fine.
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut request = Request::post("/auth/token");
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let request = request
            .body(Full::new(Bytes::from(ok_body.clone())))
            .unwrap();
        assert_eq!(
            send(&exchange, request).await.0,
            StatusCode::BAD_REQUEST,
            "{content_type:?}"
        );
    }
    // Parameters on the media type are fine.
    let request = Request::post("/auth/token")
        .header("content-type", "Application/JSON; charset=utf-8")
        .body(Full::new(Bytes::from(ok_body.clone())))
        .unwrap();
    assert_eq!(send(&exchange, request).await.0, StatusCode::OK);
    // Oversize: padded with whitespace, which would be valid JSON.
    let big = format!("{ok_body}{}", " ".repeat(MAX_BODY_BYTES));
    assert_eq!(send(&exchange, post(&big)).await.0, StatusCode::BAD_REQUEST);
    // A declared length over the limit is refused before reading; so is a garbled one.
    for length in ["5000", "x"] {
        let request = Request::post("/auth/token")
            .header("content-type", "application/json")
            .header("content-length", length)
            .body(Full::new(Bytes::from(ok_body.clone())))
            .unwrap();
        assert_eq!(
            send(&exchange, request).await.0,
            StatusCode::BAD_REQUEST,
            "{length}"
        );
    }
    // Other methods.
    let request = Request::get("/auth/token")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, headers, _) = send(&exchange, request).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers["allow"], "POST");
}

#[tokio::test]
async fn failures_are_rate_limited_per_client_with_controlled_time() {
    let (clock, _, exchange) = setup();
    for _ in 0..5 {
        assert_eq!(
            send(&exchange, attempt("agent", "guess")).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    clock.advance(Duration::from_secs(10));
    // Locked out, even with the right secret, for the rest of the minute.
    let (status, headers, body) = send(&exchange, attempt("agent", AGENT_SECRET)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "50");
    assert_eq!(body["error"], "too_many_requests");
    // Other clients are unaffected.
    assert_eq!(
        send(&exchange, attempt("plain", AGENT_SECRET)).await.0,
        StatusCode::OK
    );
    // Unknown client ids are limited the same way, so the answer does not reveal which exist.
    for _ in 0..5 {
        assert_eq!(
            send(&exchange, attempt("ghost", "guess")).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        send(&exchange, attempt("ghost", "guess")).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    // After the window, the right secret works again and clears the count.
    clock.advance(Duration::from_secs(50));
    assert_eq!(
        send(&exchange, attempt("agent", AGENT_SECRET)).await.0,
        StatusCode::OK
    );
    for _ in 0..4 {
        assert_eq!(
            send(&exchange, attempt("agent", "guess")).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        send(&exchange, attempt("agent", AGENT_SECRET)).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn custom_rate_limit() {
    let (clock, config, _) = setup();
    let exchange = ExchangeEndpoint::builder(config, clients())
        .rate_limit(2, Duration::from_secs(300))
        .build()
        .unwrap();
    for _ in 0..2 {
        send(&exchange, attempt("agent", "guess")).await;
    }
    let (status, headers, _) = send(&exchange, attempt("agent", AGENT_SECRET)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "300");
    clock.advance(Duration::from_secs(300));
    assert_eq!(
        send(&exchange, attempt("agent", AGENT_SECRET)).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn debug_output_shows_no_secret_or_digest() {
    let (_, _, exchange) = setup();
    let shown = format!("{exchange:?}");
    let digest = hex::encode(sha256_digest(AGENT_SECRET.as_bytes()));
    assert!(
        !shown.contains(SECRET) && !shown.contains(&digest) && !shown.contains(AGENT_SECRET),
        "{shown}"
    );
}

#[cfg(feature = "axum")]
mod with_axum {
    use super::*;
    use axum::body::Body;
    use tower_auth_hmac::TOKEN_PATH;

    async fn call(app: axum::Router, body: &str) -> (StatusCode, Value) {
        let request = Request::post(TOKEN_PATH)
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        let status = response.status();
        assert_eq!(response.headers()["cache-control"], "no-store");
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn router_serves_the_endpoint_at_the_token_path() {
        let (_, config, exchange) = setup();
        let good =
            serde_json::json!({"client_id": "agent", "credential": AGENT_SECRET}).to_string();
        let bad = serde_json::json!({"client_id": "agent", "credential": "nope"}).to_string();

        let app: axum::Router = exchange.clone().router();
        let (status, body) = call(app.clone(), &good).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            config
                .decode(body["access_token"].as_str().unwrap())
                .is_ok()
        );
        assert_eq!(call(app, &bad).await.0, StatusCode::UNAUTHORIZED);

        let app: axum::Router = exchange.router();
        assert_eq!(
            call(app.clone(), "{").await,
            (
                StatusCode::BAD_REQUEST,
                serde_json::json!({"error": "invalid_request"})
            )
        );

        // Every method reaches the endpoint, which answers anything but POST itself: 405,
        // `Allow: POST`, and no caching, rather than axum's bare 405.
        let response = app
            .oneshot(Request::get(TOKEN_PATH).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()["allow"], "POST");
        assert_eq!(response.headers()["cache-control"], "no-store");
    }
}
