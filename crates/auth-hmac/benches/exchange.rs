//! What one `POST /auth/token` costs the server, in-process: refused (401, a failure counted
//! by the limiter) and locked out (429, refused by the limiter), from one source address, with
//! the limiter's table already holding 100,000 other pairs.
//!
//! `cargo bench -p tower-auth-hmac --bench exchange`

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use http_body_util::Full;
use tower::{Service, ServiceExt};
use tower_auth_core::sha256_digest;
use tower_auth_hmac::{ExchangeEndpoint, HmacConfig, TokenClients};

const SECRET: &str = "k7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA-bench";

fn request(client_id: &str, credential: &str, peer: SocketAddr) -> Request<Full<Bytes>> {
    let body = format!(r#"{{"client_id":"{client_id}","credential":"{credential}"}}"#);
    let mut request = Request::post("/auth/token")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    request.extensions_mut().insert(peer);
    request
}

fn exchange(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let digest = hex::encode(sha256_digest(b"registration-secret-of-the-metrics-agent"));
    let clients = TokenClients::parse(
        "AUTH_TOKEN_CLIENTS",
        &format!(r#"[{{"client_id":"agent","secret_sha256":"{digest}","roles":["r"]}}]"#),
    )
    .unwrap();
    let config = HmacConfig::builder(SECRET).build().unwrap();
    // Failures never lock out "agent" here: the limit is out of reach.
    let mut open = ExchangeEndpoint::builder(config.clone(), clients.clone())
        .rate_limit(u32::MAX / 8, Duration::from_secs(3600))
        .build()
        .unwrap();
    let mut locked = ExchangeEndpoint::builder(config, clients)
        .rate_limit(1, Duration::from_secs(3600))
        .build()
        .unwrap();
    let call = |endpoint: &mut ExchangeEndpoint, request: Request<Full<Bytes>>| {
        runtime.block_on(async {
            ServiceExt::<Request<Full<Bytes>>>::ready(endpoint)
                .await
                .unwrap()
                .call(request)
                .await
                .unwrap()
        })
    };
    for i in 0..100_000u32 {
        let peer = SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 4000));
        call(&mut open, request(&format!("other-{i}"), "wrong", peer));
    }
    let peer: SocketAddr = "192.0.2.1:4000".parse().unwrap();
    call(&mut locked, request("agent", "wrong", peer));
    assert_eq!(
        call(&mut locked, request("agent", "wrong", peer)).status(),
        429
    );

    let mut g = c.benchmark_group("exchange");
    g.bench_function("refused_401", |b| {
        b.iter(|| {
            let response = call(&mut open, request("agent", "wrong", peer));
            assert_eq!(black_box(response).status(), 401);
        })
    });
    g.bench_function("locked_429", |b| {
        b.iter(|| {
            let response = call(&mut locked, request("agent", "wrong", peer));
            assert_eq!(black_box(response).status(), 429);
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = exchange
}
criterion_main!(benches);
