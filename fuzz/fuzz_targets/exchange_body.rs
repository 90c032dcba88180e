//! The token exchange (`POST /auth/token`) and revocation (`POST /auth/revoke`) endpoints with
//! arbitrary bodies and content types: never a panic and never a 5xx; a 200 only for the
//! registered client's right secret.
#![no_main]

use std::sync::OnceLock;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;
use tower_auth_hmac::{ExchangeEndpoint, HmacConfig, RevocationList, TokenClients};

const SECRET: &str = "Fz7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA-fuzzing";
/// SHA-256 of "registration-secret-of-the-fuzzed-agent".
const CLIENTS: &str = r#"[{"client_id":"agent","secret_sha256":"sha256:ff33cdbc8728f4f7536484ccbe63874b47aa69c4c6622f870a29c4d33a7881c9","roles":["r"]}]"#;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    exchange: ExchangeEndpoint,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let clients = TokenClients::parse("AUTH_TOKEN_CLIENTS", CLIENTS).unwrap();
        let config = HmacConfig::builder(SECRET).build().unwrap();
        let exchange = ExchangeEndpoint::builder(config, clients)
            .rate_limit(1_000_000, std::time::Duration::from_secs(1))
            .build()
            .unwrap();
        Fixture { runtime, exchange }
    })
}

fuzz_target!(|input: (bool, u8, Vec<u8>)| {
    let (revoke, content_type, body) = input;
    let fixture = fixture();
    let content_type = [
        "application/json",
        "application/x-www-form-urlencoded",
        "text/plain",
        "",
    ][usize::from(content_type) % 4];
    let path = if revoke {
        "/auth/revoke"
    } else {
        "/auth/token"
    };
    let mut request = Request::post(path)
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    if !content_type.is_empty() {
        request
            .headers_mut()
            .insert("content-type", content_type.parse().unwrap());
    }
    let status = fixture.runtime.block_on(async {
        if revoke {
            let endpoint = fixture
                .exchange
                .revocation_endpoint(RevocationList::default());
            endpoint.oneshot(request).await.unwrap().status()
        } else {
            fixture
                .exchange
                .clone()
                .oneshot(request)
                .await
                .unwrap()
                .status()
        }
    });
    assert!(!status.is_server_error(), "{status}");
    assert_ne!(status.as_u16(), 200, "a 200 without the registered secret");
});
