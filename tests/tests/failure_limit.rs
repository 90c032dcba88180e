//! The layer's limits per source address, through real servers on loopback with clients
//! bound to two loopback source addresses: `AUTH_FAILURE_LIMIT` over HTTP (axum's connect
//! info) and gRPC (tonic's), behind a trusted proxy, and the limit on rejection log lines.

use std::net::SocketAddr;
use std::time::Duration;

use auth_examples::grpc::pb::WhoAmIRequest;
use auth_examples::grpc::pb::demo_client::DemoClient;
use auth_examples::grpc::serve_grpc;
use auth_tests::{CapturedLogs, KEY_A, KEY_B, config, connect_from, http1_from};
use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tonic::Code;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tower_auth::{AuthLayer, Clock, LOGGED_REJECTIONS_PER_SOURCE};

const A: [u8; 4] = [127, 0, 0, 2];
const B: [u8; 4] = [127, 0, 0, 3];

/// A layer from these variables, on `clock`.
fn layer(vars: &[(&str, &str)], clock: &Clock) -> AuthLayer {
    config(vars)
        .build_blocking()
        .unwrap()
        .into_builder()
        .clock(clock.clone())
        .build()
        .unwrap()
}

/// Serves `/private` and the exempt `/health` behind `auth`, with the peer address in each
/// request (`into_make_service_with_connect_info`).
async fn serve(auth: AuthLayer) -> SocketAddr {
    let app = Router::new()
        .route("/private", get(|| async { "private" }))
        .route("/health", get(|| async { "ok" }))
        .layer(auth);
    auth_tests::serve_with_peers(app).await
}

/// `GET path` from `from` with these headers: the status, `Retry-After` and the body.
async fn get_from(
    server: SocketAddr,
    from: [u8; 4],
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Option<String>, String) {
    let mut sender = http1_from(server, from).await;
    let mut request = Request::get(path).header("host", server.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = sender
        .send_request(request.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        retry_after,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

/// SECURITY.md X5.
#[tokio::test]
async fn a_source_over_its_failure_limit_gets_429_even_with_a_good_key() {
    let (logs, _guard) = CapturedLogs::start();
    let clock = Clock::manual(1_700_000_000);
    let server = serve(layer(
        &[("API_KEYS", KEY_A), ("AUTH_FAILURE_LIMIT", "3/60")],
        &clock,
    ))
    .await;
    let good = [("x-api-key", KEY_A)];
    let bad = [("x-api-key", KEY_B)];
    // A missing credential is not a failed one: no number of them blocks a source.
    for _ in 0..5 {
        assert_eq!(get_from(server, A, "/private", &[]).await.0, 401);
    }
    assert_eq!(get_from(server, A, "/private", &good).await.0, 200);
    for _ in 0..3 {
        assert_eq!(get_from(server, A, "/private", &bad).await.0, 401);
    }
    clock.advance(Duration::from_secs(20));
    for _ in 0..3 {
        let (status, retry_after, body) = get_from(server, A, "/private", &good).await;
        assert_eq!(status, 429);
        // The window started with the first failure, 20 s ago.
        assert_eq!(retry_after.as_deref(), Some("40"));
        assert_eq!(body, r#"{"error":"too_many_requests"}"#);
    }
    // Exempt paths stay open to it; another source is not affected.
    assert_eq!(get_from(server, A, "/health", &good).await.0, 200);
    assert_eq!(get_from(server, B, "/private", &good).await.0, 200);
    // The window ends: the source gets its tries back.
    clock.advance(Duration::from_secs(40));
    assert_eq!(get_from(server, A, "/private", &good).await.0, 200);
    // The block was logged once, not once per refused request.
    let text = logs.text();
    assert_eq!(
        text.matches("outcome=\"rate_limited\"").count(),
        1,
        "{text}"
    );
    assert!(text.contains("source=127.0.0.2"), "{text}");
    assert!(!text.contains(KEY_A) && !text.contains(KEY_B));
}

/// SECURITY.md X5: behind a trusted proxy each forwarded client is its own source; an
/// untrusted peer's forwarding header is ignored.
#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_the_source() {
    let clock = Clock::manual(1_700_000_000);
    let server = serve(layer(
        &[
            ("API_KEYS", KEY_A),
            ("AUTH_FAILURE_LIMIT", "2/60"),
            ("AUTH_TRUSTED_PROXIES", "127.0.0.2"),
        ],
        &clock,
    ))
    .await;
    let bad = [("x-api-key", KEY_B), ("x-forwarded-for", "198.51.100.7")];
    for _ in 0..2 {
        assert_eq!(get_from(server, A, "/private", &bad).await.0, 401);
    }
    let good = |client: &'static str| [("x-api-key", KEY_A), ("x-forwarded-for", client)];
    assert_eq!(
        get_from(server, A, "/private", &good("198.51.100.7"))
            .await
            .0,
        429
    );
    assert_eq!(
        get_from(server, A, "/private", &good("198.51.100.8"))
            .await
            .0,
        200
    );
    // From B, which is no proxy of ours, the header names nothing: B is the source.
    let spoofed = [("x-api-key", KEY_B), ("x-forwarded-for", "198.51.100.9")];
    for _ in 0..2 {
        assert_eq!(get_from(server, B, "/private", &spoofed).await.0, 401);
    }
    assert_eq!(
        get_from(server, B, "/private", &good("198.51.100.10"))
            .await
            .0,
        429
    );
}

/// A tonic channel to `server` whose connections come from `from`.
async fn channel_from(server: SocketAddr, from: [u8; 4]) -> Channel {
    Endpoint::from_shared(format!("http://{server}"))
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_| async move {
            connect_from(server, from).await.map(TokioIo::new)
        }))
        .await
        .unwrap()
}

async fn who_am_i(channel: &Channel, key: &str) -> Code {
    let mut request = tonic::Request::new(WhoAmIRequest {});
    request
        .metadata_mut()
        .insert("x-api-key", MetadataValue::try_from(key).unwrap());
    match DemoClient::new(channel.clone()).who_am_i(request).await {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

/// SECURITY.md X5, over gRPC: the source is the peer tonic's server records
/// (`TcpConnectInfo`), and the refusal is RESOURCE_EXHAUSTED.
#[tokio::test]
async fn grpc_sources_are_limited_by_tonics_peer_address() {
    let clock = Clock::manual(1_700_000_000);
    let auth = layer(
        &[("API_KEYS", KEY_A), ("AUTH_FAILURE_LIMIT", "2/60")],
        &clock,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = listener.local_addr().unwrap();
    tokio::spawn(serve_grpc(auth, listener, std::future::pending()));
    let (a, b) = (channel_from(server, A).await, channel_from(server, B).await);
    assert_eq!(who_am_i(&a, KEY_B).await, Code::Unauthenticated);
    assert_eq!(who_am_i(&a, KEY_B).await, Code::Unauthenticated);
    assert_eq!(who_am_i(&a, KEY_A).await, Code::ResourceExhausted);
    assert_eq!(who_am_i(&b, KEY_A).await, Code::Ok);
    clock.advance(Duration::from_secs(60));
    assert_eq!(who_am_i(&a, KEY_A).await, Code::Ok);
}

/// SECURITY.md E9: one source's refusals write at most a fixed number of lines a window,
/// then one line saying the rest are counted; the next window's first line gives the count.
#[tokio::test]
async fn one_source_cannot_inflate_the_rejection_log() {
    let (logs, _guard) = CapturedLogs::start();
    let clock = Clock::manual(1_700_000_000);
    let server = serve(layer(&[("API_KEYS", KEY_A)], &clock)).await;
    let bad = [("x-api-key", KEY_B)];
    for _ in 0..30 {
        assert_eq!(get_from(server, A, "/private", &bad).await.0, 401);
    }
    let text = logs.text();
    let logged = LOGGED_REJECTIONS_PER_SOURCE as usize;
    assert_eq!(
        text.matches("outcome=\"rejected\"").count(),
        logged,
        "{text}"
    );
    assert_eq!(text.matches("counted, not logged").count(), 1, "{text}");
    // Another source still has its own lines.
    assert_eq!(get_from(server, B, "/private", &bad).await.0, 401);
    assert_eq!(
        logs.text().matches("outcome=\"rejected\"").count(),
        logged + 1
    );
    clock.advance(tower_auth::LOG_WINDOW);
    assert_eq!(get_from(server, A, "/private", &bad).await.0, 401);
    let text = logs.text();
    assert!(
        text.contains(&format!("unlogged_before={}", 30 - logged)),
        "{text}"
    );
    assert_eq!(text.matches("outcome=\"rejected\"").count(), logged + 2);
}

/// SECURITY.md X5: a guess on an exempt path is served, and counted as one anywhere else.
#[tokio::test]
async fn failures_on_exempt_paths_count_too() {
    let clock = Clock::manual(1_700_000_000);
    let server = serve(layer(
        &[("API_KEYS", KEY_A), ("AUTH_FAILURE_LIMIT", "2/60")],
        &clock,
    ))
    .await;
    let bad = [("x-api-key", KEY_B)];
    for _ in 0..2 {
        assert_eq!(get_from(server, A, "/health", &bad).await.0, 200);
    }
    let good = [("x-api-key", KEY_A)];
    assert_eq!(get_from(server, A, "/private", &good).await.0, 429);
    assert_eq!(get_from(server, A, "/health", &good).await.0, 200);
}

/// SECURITY.md E9: without a peer address (plain `axum::serve`), all requests share one
/// larger budget of rejection lines, and the layer says once why.
#[tokio::test]
async fn without_a_peer_address_rejections_share_one_budget() {
    let (logs, _guard) = CapturedLogs::start();
    let clock = Clock::manual(1_700_000_000);
    let app = Router::new()
        .route("/private", get(|| async { "private" }))
        .layer(layer(&[("API_KEYS", KEY_A)], &clock));
    let server = auth_tests::serve(app).await;
    let bad = [("x-api-key", KEY_B)];
    let total = tower_auth::LOGGED_REJECTIONS_WITHOUT_PEER as usize + 20;
    for _ in 0..total {
        assert_eq!(auth_tests::get(server, "/private", &bad).await.status, 401);
    }
    let text = logs.text();
    assert_eq!(
        text.matches("outcome=\"rejected\"").count(),
        tower_auth::LOGGED_REJECTIONS_WITHOUT_PEER as usize,
    );
    assert_eq!(
        text.matches("event=\"no_peer_address\"").count(),
        1,
        "{text}"
    );
}
