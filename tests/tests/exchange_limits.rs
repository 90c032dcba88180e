//! The token exchange's lock-out per (client, source address) and per source, its trusted
//! proxies, and its body deadline, through a real server on loopback with clients bound to
//! two different loopback source addresses.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower_auth_core::sha256_digest;
use tower_auth_hmac::{ExchangeEndpoint, HmacConfig, TokenClients};

const SECRET: &str = "Vq7Lz2Rk9Tw4Xb8Nc3Hm6Jp1Sd5Gf0Ya-exchange-limits";
const CLIENT_SECRET: &str = "registration-secret-of-the-metrics-agent";

fn endpoint(trusted: &[&str]) -> ExchangeEndpoint {
    let digest = hex::encode(sha256_digest(CLIENT_SECRET.as_bytes()));
    let clients = TokenClients::parse(
        "AUTH_TOKEN_CLIENTS",
        &format!(r#"[{{"client_id":"agent","secret_sha256":"sha256:{digest}","roles":["r"]}}]"#),
    )
    .unwrap();
    let config = HmacConfig::builder(SECRET).build().unwrap();
    ExchangeEndpoint::builder(config, clients)
        .trusted_proxies(trusted.iter().copied())
        .build()
        .unwrap()
}

/// Serves `endpoint` with the peer address in each request, as
/// `into_make_service_with_connect_info` provides it.
async fn serve(endpoint: ExchangeEndpoint) -> SocketAddr {
    auth_tests::serve_with_peers(endpoint.router()).await
}

/// POSTs an exchange for `agent` with `credential`, from the loopback address `from`.
async fn exchange(
    server: SocketAddr,
    from: [u8; 4],
    credential: &str,
    headers: &[(&str, &str)],
) -> (u16, Option<String>) {
    let mut sender = auth_tests::http1_from(server, from).await;
    let mut request = Request::post("/auth/token")
        .header("host", server.to_string())
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = format!(r#"{{"client_id":"agent","credential":"{credential}"}}"#);
    let response = sender
        .send_request(request.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry_after)
}

const A: [u8; 4] = [127, 0, 0, 2];
const B: [u8; 4] = [127, 0, 0, 3];

/// SECURITY.md X1.
#[tokio::test]
async fn wrong_secrets_lock_out_one_source_not_the_real_client() {
    let server = serve(endpoint(&[])).await;
    for _ in 0..5 {
        assert_eq!(exchange(server, A, "wrong", &[]).await.0, 401);
    }
    // From A, even the right secret is refused for the rest of the window.
    let (status, retry_after) = exchange(server, A, CLIENT_SECRET, &[]).await;
    assert_eq!(status, 429);
    assert!(retry_after.is_some_and(|s| s.parse::<u64>().unwrap() >= 1));
    // The real client, from B, is not locked out.
    assert_eq!(exchange(server, B, CLIENT_SECRET, &[]).await.0, 200);
}

/// SECURITY.md X3.
#[tokio::test]
async fn forwarding_headers_name_the_source_only_from_a_trusted_proxy() {
    // 127.0.0.2 is our proxy; what it forwards is believed, what 127.0.0.3 claims is not.
    let server = serve(endpoint(&["127.0.0.2"])).await;
    let via_proxy = [("x-forwarded-for", "198.51.100.7")];
    for _ in 0..5 {
        assert_eq!(exchange(server, A, "wrong", &via_proxy).await.0, 401);
    }
    assert_eq!(exchange(server, A, CLIENT_SECRET, &via_proxy).await.0, 429);
    // Another client behind the same proxy is another source.
    let other = [("x-forwarded-for", "198.51.100.8")];
    assert_eq!(exchange(server, A, CLIENT_SECRET, &other).await.0, 200);
    // An untrusted peer cannot pick the source it is counted as.
    for _ in 0..5 {
        assert_eq!(exchange(server, B, "wrong", &other).await.0, 401);
    }
    assert_eq!(exchange(server, B, CLIENT_SECRET, &other).await.0, 429);
    assert_eq!(exchange(server, A, CLIENT_SECRET, &other).await.0, 200);
}

/// SECURITY.md X4.
#[tokio::test(start_paused = true)]
async fn a_body_that_never_completes_gets_408() {
    let server = serve(endpoint(&[])).await;
    // Headers that promise 200 bytes of body, 13 of them, and then nothing, for ever.
    let mut stream = tokio::net::TcpStream::connect(server).await.unwrap();
    let head = format!(
        "POST /auth/token HTTP/1.1\r\nhost: {server}\r\ncontent-type: application/json\r\n\
         content-length: 200\r\n\r\n{{\"client_id\":"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = tokio::time::Instant::now();
    let mut reply = Vec::new();
    let mut buf = [0u8; 1024];
    while !reply.ends_with(br#"{"error":"invalid_request"}"#) {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(
            n > 0,
            "closed without an answer: {}",
            String::from_utf8_lossy(&reply)
        );
        reply.extend_from_slice(&buf[..n]);
    }
    let reply = String::from_utf8(reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(started.elapsed() >= Duration::from_secs(10));
}

/// SECURITY.md E9, V4: a locked-out source that keeps posting writes a bounded log.
#[tokio::test]
async fn a_locked_out_source_cannot_inflate_the_log() {
    let (logs, _guard) = auth_tests::CapturedLogs::start();
    let server = serve(endpoint(&[])).await;
    for _ in 0..40 {
        exchange(server, A, "wrong", &[]).await;
    }
    let text = logs.text();
    // One audit event of each kind for the whole flood (SECURITY.md V4).
    assert_eq!(text.matches("token_exchange_failed").count(), 1, "{text}");
    assert_eq!(text.matches("token_exchange_limited").count(), 1, "{text}");
}
