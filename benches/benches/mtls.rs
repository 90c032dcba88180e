//! A certificate-bound token (RFC 8705) against the same token unbound, both from the OIDC
//! token cache, through an axum hello-world: the binding costs one thumbprint comparison per
//! request. Every request carries the connection's `TlsPeer` (client certificate included) as
//! `axum::serve` with `TlsListener` puts it there: `cargo bench -p benches --bench mtls`.

use std::hint::black_box;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use serde_json::json;
use tower::ServiceExt;
use tower_auth::{AuthLayer, PeerCertificate, TlsPeer};
use tower_auth_core::Clock;

#[allow(dead_code)] // each bench target uses part of the fixtures
mod support;

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn mtls(c: &mut Criterion) {
    let rt = support::runtime();
    let certificate = PeerCertificate::from_der(vec![0x30; 900]);
    let ec = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let point = ec.public_key().as_ref().to_vec();
    let now = Clock::system().now_unix();
    let mint = |cnf: bool| {
        let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": "es"});
        let mut claims = json!({
            "iss": support::ISSUER, "sub": "248289761001", "aud": support::AUDIENCE,
            "iat": now, "exp": now + 24 * 3600, "client_id": "s6BhdRkqt3",
            "scope": "openid orders:read orders:write",
        });
        if cnf {
            claims["cnf"] = json!({"x5t#S256": certificate.thumbprint()});
        }
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let sig = ec.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", b64(sig))
    };
    let key = support::Key {
        alg: "ES256",
        jwk: json!({"kty": "EC", "crv": "P-256", "kid": "es", "alg": "ES256", "use": "sig",
                    "x": b64(&point[1..33]), "y": b64(&point[33..])}),
        token: mint(false),
    };
    let bound = mint(true);
    let jwks_url = rt.block_on(support::serve_jwks(std::slice::from_ref(&key)));
    let layer = rt.block_on(async { AuthLayer::new(support::oidc(&jwks_url, 10_000).await) });
    let router = Router::new()
        .route("/hello", get(|| async { "hello" }))
        .layer(layer)
        .with_state(());
    let peer = TlsPeer {
        remote_addr: "192.0.2.7:40000".parse().unwrap(),
        certificate: Some(certificate.clone()),
    };
    let mut group = c.benchmark_group("mtls_hello_world");
    for (name, token) in [("unbound_cached", &key.token), ("bound_cached", &bound)] {
        let authorization = format!("Bearer {token}");
        let call = || {
            let mut request = Request::get("/hello")
                .header(http::header::HOST, "bench")
                .header(http::header::AUTHORIZATION, &authorization)
                .body(Body::empty())
                .unwrap();
            request.extensions_mut().insert(ConnectInfo(peer.clone()));
            router.clone().oneshot(request)
        };
        assert_eq!(rt.block_on(call()).unwrap().status(), 200, "{name}");
        group.bench_function(name, |b| {
            b.to_async(&rt)
                .iter(|| async { black_box(call().await.unwrap()) })
        });
    }
    // The bound token over a connection without the certificate: refused.
    let mut request = Request::get("/hello")
        .header(http::header::AUTHORIZATION, format!("Bearer {bound}"))
        .body(Body::empty())
        .unwrap();
    request.extensions_mut().insert(ConnectInfo(TlsPeer {
        certificate: None,
        ..peer
    }));
    assert_eq!(
        rt.block_on(router.clone().oneshot(request))
            .unwrap()
            .status(),
        401
    );
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = mtls
}
criterion_main!(benches);
