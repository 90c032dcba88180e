//! HMAC role tokens end to end, through the demo's router and its gRPC server: roles,
//! expiry, and the exchange of a registered client secret for a token.

use std::net::SocketAddr;
use std::time::Duration;

use auth_examples::grpc::pb::WhoAmIRequest;
use auth_examples::grpc::pb::demo_client::DemoClient;
use auth_examples::grpc::{grpc_auth, serve_grpc};
use auth_tests::{KEY_A, config, get, serve};
use tonic::Code;
use tower_auth_core::{Clock, sha256_digest};
use tower_auth_hmac::HmacConfig;

const SECRET: &str = "c2VjcmV0LWZvci1obWFjLXJvbGUtdG9rZW5zLWluLXRlc3Rz";
const CLIENT_SECRET: &str = "7d1a54127b222502f5b79b5fb0803061152a44f92b37e23c6527baf665d4da9a";
const METRICS: [&str; 2] = ["runtime.health:read", "runtime.metrics:read"];

fn hex(bytes: [u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The demo with API keys, role tokens and a token client `ci` that gets both metrics roles.
async fn demo() -> SocketAddr {
    let clients = format!(
        r#"[{{"client_id":"ci","secret_sha256":"sha256:{}","roles":["{}","{}"]}}]"#,
        hex(sha256_digest(CLIENT_SECRET.as_bytes())),
        METRICS[0],
        METRICS[1]
    );
    let auth = config(&[
        ("API_KEYS", KEY_A),
        ("HMAC_SECRET", SECRET),
        ("AUTH_TOKEN_CLIENTS", &clients),
    ])
    .build_blocking()
    .unwrap();
    serve(auth_examples::router(auth)).await
}

fn mint(roles: &[&str], ttl: Duration, clock: Clock) -> String {
    HmacConfig::builder(SECRET)
        .clock(clock)
        .build()
        .unwrap()
        .mint("ops", roles, ttl, None)
        .unwrap()
}

#[tokio::test]
async fn a_role_token_with_both_roles_reads_metrics() {
    let addr = demo().await;
    let token = mint(&METRICS, Duration::from_secs(600), Clock::system());
    let reply = get(
        addr,
        "/metrics",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let reply = get(
        addr,
        "/whoami",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(body["method"], "hmac");
    assert_eq!(body["subject"], "ops");
}

#[tokio::test]
async fn a_missing_role_is_403_and_an_expired_token_401() {
    let addr = demo().await;
    let one_role = mint(&METRICS[..1], Duration::from_secs(600), Clock::system());
    let reply = get(
        addr,
        "/metrics",
        &[("authorization", &format!("Bearer {one_role}"))],
    )
    .await;
    assert_eq!(reply.status, 403);
    assert!(
        reply
            .header("www-authenticate")
            .unwrap()
            .contains(r#"scope="runtime.health:read runtime.metrics:read""#)
    );

    // Issued two hours ago for one hour: past its expiry and the minute of leeway.
    let past = Clock::manual(Clock::system().now_unix() - 7200);
    let expired = mint(&METRICS, Duration::from_secs(3600), past);
    let reply = get(
        addr,
        "/metrics",
        &[("authorization", &format!("Bearer {expired}"))],
    )
    .await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.header("www-authenticate"),
        Some(r#"Bearer realm="api", error="invalid_token""#)
    );
    assert_eq!(reply.body, r#"{"error":"invalid_token"}"#);
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_401_not_passed_on() {
    let addr = demo().await;
    let forged = HmacConfig::builder("Mf4kT9rW2xB7nQ5vL8cZ1hJ6pD3sG0yA-forged")
        .build()
        .unwrap()
        .mint("ops", METRICS, Duration::from_secs(600), None)
        .unwrap();
    let reply = get(
        addr,
        "/metrics",
        &[("authorization", &format!("Bearer {forged}"))],
    )
    .await;
    assert_eq!(reply.status, 401);
}

#[tokio::test]
async fn exchange_a_client_secret_for_a_token_then_call() {
    let addr = demo().await;
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let mut exchange = |credential: &str| {
        let body = format!(r#"{{"client_id":"ci","credential":"{credential}"}}"#);
        let request = http::Request::post("/auth/token")
            .header("host", "demo")
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .unwrap();
        sender.send_request(request)
    };
    use http_body_util::BodyExt;
    let response = exchange("wrong").await.unwrap();
    assert_eq!(response.status(), 401);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], br#"{"error":"invalid_client"}"#);

    let response = exchange(CLIENT_SECRET).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 86_400);
    let token = body["access_token"].as_str().unwrap();

    let reply = get(
        addr,
        "/metrics",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(reply.status, 200);
    // The token carries the client's roles, not admin.
    assert_eq!(
        get(
            addr,
            "/admin",
            &[("authorization", &format!("Bearer {token}"))]
        )
        .await
        .status,
        403
    );
}

#[tokio::test]
async fn role_tokens_work_over_grpc_too() {
    let auth = grpc_auth(config(&[("HMAC_SECRET", SECRET)]).build_blocking().unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_grpc(auth, listener, std::future::pending()));
    let mut client = DemoClient::connect(format!("http://{addr}")).await.unwrap();
    let call = |token: &str| {
        let mut request = tonic::Request::new(WhoAmIRequest {});
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        request
    };
    let token = mint(&["reader"], Duration::from_secs(600), Clock::system());
    let reply = client.who_am_i(call(&token)).await.unwrap().into_inner();
    assert_eq!(
        (reply.subject.as_str(), reply.method.as_str()),
        ("ops", "hmac")
    );
    assert_eq!(reply.roles, ["reader"]);

    let admin_ping = |token: &str| {
        let mut request = tonic::Request::new(auth_examples::grpc::pb::AdminPingRequest {});
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        request
    };
    assert_eq!(
        client
            .admin_ping(admin_ping(&token))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let admin = mint(&["admin"], Duration::from_secs(600), Clock::system());
    assert!(client.admin_ping(admin_ping(&admin)).await.is_ok());
    let expired = mint(
        &["admin"],
        Duration::from_secs(60),
        Clock::manual(Clock::system().now_unix() - 3600),
    );
    assert_eq!(
        client
            .admin_ping(admin_ping(&expired))
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
}
