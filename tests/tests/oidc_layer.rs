//! OIDC through the whole stack: the demo's router and gRPC server behind a layer configured
//! from variables (`api_key,oidc,hmac`), with the test IdP serving discovery and JWKS.

use std::net::SocketAddr;
use std::time::Duration;

use auth_examples::grpc::pb::WhoAmIRequest;
use auth_examples::grpc::pb::demo_client::DemoClient;
use auth_examples::grpc::{grpc_auth, serve_grpc};
use auth_tests::idp::{Fault, SigningKey, TestIdp};
use auth_tests::{CapturedLogs, KEY_A, config, get, serve};
use serde_json::json;
use tonic::Code;
use tower_auth::AuthLayer;
use tower_auth_core::Clock;
use tower_auth_hmac::HmacConfig;

const SECRET: &str = "c2VjcmV0LWZvci1obWFjLXJvbGUtdG9rZW5zLWluLXRlc3Rz";

/// The layer for `idp`: API keys, then the IdP's tokens (roles in `roles`), then role tokens.
async fn layer(idp: &TestIdp) -> AuthLayer {
    let oidc =
        json!({"issuers": [{"issuer": idp.issuer(), "audience": "api", "roles_claim": "roles"}]})
            .to_string();
    config(&[
        ("API_KEYS", KEY_A),
        ("OIDC_CONFIG", &oidc),
        ("HMAC_SECRET", SECRET),
    ])
    .build()
    .await
    .unwrap()
}

/// A token of `idp` valid now (the IdP's defaults are dated for manual clocks).
fn token(idp: &TestIdp, key: &SigningKey, sub: &str, roles: &[&str]) -> String {
    let now = Clock::system().now_unix();
    idp.token_with(key, |claims| {
        claims["sub"] = json!(sub);
        claims["iat"] = json!(now);
        claims["exp"] = json!(now + 600);
        claims["roles"] = json!(roles);
    })
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn demo(idp: &TestIdp) -> SocketAddr {
    serve(auth_examples::router(layer(idp).await)).await
}

#[tokio::test]
async fn every_method_in_one_chain() {
    let key = SigningKey::rsa("rsa-1", 0);
    let idp = TestIdp::start(&[&key]).await;
    let addr = demo(&idp).await;
    let health: serde_json::Value =
        serde_json::from_str(&get(addr, "/health", &[]).await.body).unwrap();
    assert_eq!(
        health,
        serde_json::json!({
            "auth_mode": "api_key,oidc,hmac",
            "status": "ok",
            "methods": {"api_key": "ready", "oidc": "ready", "hmac": "ready"},
            "issuers": [{
                "issuer": idp.issuer(),
                "state": "ready",
                "key_age_secs": health["issuers"][0]["key_age_secs"],
                "keys": 1,
            }],
        })
    );
    assert!(health["issuers"][0]["key_age_secs"].as_u64().unwrap() < 60);
    // The readiness probe is public too, and ready with the issuer's keys loaded.
    assert_eq!(get(addr, "/ready", &[]).await.status, 200);

    let alice = token(&idp, &key, "alice", &["orders:read"]);
    let reply = get(addr, "/whoami", &[("authorization", &bearer(&alice))]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(
        (body["subject"].as_str(), body["method"].as_str()),
        (Some("alice"), Some("oidc"))
    );
    assert_eq!(body["roles"], json!(["orders:read"]));

    let role_token = HmacConfig::builder(SECRET)
        .build()
        .unwrap()
        .mint("ops", ["x"], Duration::from_secs(600), None)
        .unwrap();
    assert_eq!(
        get(addr, "/whoami", &[("authorization", &bearer(&role_token))])
            .await
            .status,
        200
    );
    assert_eq!(
        get(addr, "/whoami", &[("x-api-key", KEY_A)]).await.status,
        200
    );
    // A repeated token is answered from the validated-token cache: still exactly one JWKS fetch.
    for _ in 0..3 {
        assert_eq!(
            get(addr, "/whoami", &[("authorization", &bearer(&alice))])
                .await
                .status,
            200
        );
    }
    assert_eq!(idp.jwks_requests(), 1);
}

/// Routing by structure: the chain reads a bearer JWT once and hands it to the one method
/// that owns its issuer, so every order of the three methods answers every credential alike,
/// and the other methods are never asked. SECURITY.md K4.
#[tokio::test]
async fn every_order_of_the_chain_answers_alike() {
    let key = SigningKey::rsa("rsa-1", 0);
    let idp = TestIdp::start(&[&key]).await;
    let other = TestIdp::start(&[&key]).await;
    let alice = token(&idp, &key, "alice", &["orders:read"]);
    let foreign = token(&other, &key, "mallory", &["admin"]);
    let (signed, _) = alice.rsplit_once('.').unwrap();
    let tampered = format!("{signed}.{}", auth_tests::idp::b64("not the signature"));
    let hmac = HmacConfig::builder(SECRET).build().unwrap();
    let role_token = hmac
        .mint("ops", ["x"], Duration::from_secs(600), None)
        .unwrap();
    let wrong_secret = HmacConfig::builder(format!("{SECRET}-other"))
        .build()
        .unwrap()
        .mint("ops", ["x"], Duration::from_secs(600), None)
        .unwrap();
    let oidc =
        json!({"issuers": [{"issuer": idp.issuer(), "audience": "api", "roles_claim": "roles"}]})
            .to_string();
    let orders = [
        "api_key,oidc,hmac",
        "api_key,hmac,oidc",
        "oidc,api_key,hmac",
        "oidc,hmac,api_key",
        "hmac,api_key,oidc",
        "hmac,oidc,api_key",
    ];
    for mode in orders {
        let layer = config(&[
            ("AUTH_MODE", mode),
            ("API_KEYS", KEY_A),
            ("OIDC_CONFIG", &oidc),
            ("HMAC_SECRET", SECRET),
        ])
        .build()
        .await
        .unwrap();
        let addr = serve(auth_examples::router(layer)).await;
        let whoami = async |header: (&str, &str)| {
            let reply = get(addr, "/whoami", &[header]).await;
            let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap_or_default();
            (reply.status, body["method"].as_str().map(str::to_owned))
        };
        let oidc_method = (200, Some("oidc".to_owned()));
        // Twice: the second answer comes from the validated-token cache.
        for _ in 0..2 {
            assert_eq!(
                whoami(("authorization", &bearer(&alice))).await,
                oidc_method,
                "{mode}"
            );
        }
        assert_eq!(
            whoami(("authorization", &bearer(&role_token))).await,
            (200, Some("hmac".to_owned())),
            "{mode}"
        );
        assert_eq!(
            whoami(("x-api-key", KEY_A)).await,
            (200, Some("api_key".to_owned())),
            "{mode}"
        );
        for refused in [&foreign, &tampered, &wrong_secret] {
            assert_eq!(
                whoami(("authorization", &bearer(refused))).await,
                (401, None),
                "{mode}"
            );
        }
    }
    // One JWKS fetch per layer; a token of an issuer nobody configured costs its IdP nothing.
    assert_eq!(idp.jwks_requests(), orders.len() as u64);
    assert_eq!(other.requests(), 0);
}

#[tokio::test]
async fn roles_from_the_token_decide_403() {
    let key = SigningKey::ec("ec-1");
    let idp = TestIdp::start(&[&key]).await;
    let addr = demo(&idp).await;
    let reader = token(&idp, &key, "bob", &["orders:read"]);
    let reply = get(addr, "/admin", &[("authorization", &bearer(&reader))]).await;
    assert_eq!(reply.status, 403);
    assert_eq!(
        reply.header("www-authenticate"),
        Some(r#"Bearer realm="api", error="insufficient_scope", scope="admin""#)
    );
    let admin = token(&idp, &key, "carol", &["admin"]);
    assert_eq!(
        get(addr, "/admin", &[("authorization", &bearer(&admin))])
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn foreign_expired_or_tampered_tokens_are_401_alike() {
    let key = SigningKey::ed25519("ed-1");
    let idp = TestIdp::start(&[&key]).await;
    let addr = demo(&idp).await;
    let other = TestIdp::start(&[&key]).await;
    let now = Clock::system().now_unix();
    let foreign = token(&other, &key, "mallory", &["admin"]);
    let expired = idp.token_with(&key, |c| {
        c["iat"] = json!(now - 7200);
        c["exp"] = json!(now - 3600);
    });
    let good = token(&idp, &key, "alice", &[]);
    let (head, rest) = good.split_once('.').unwrap();
    let (_, signature) = rest.rsplit_once('.').unwrap();
    let forged_payload = auth_tests::idp::b64(
        json!({"iss": idp.issuer(), "sub": "alice", "aud": "api", "iat": now, "exp": now + 600, "roles": ["admin"]}).to_string(),
    );
    let tampered = format!("{head}.{forged_payload}.{signature}");
    for token in [foreign, expired, tampered] {
        let reply = get(addr, "/whoami", &[("authorization", &bearer(&token))]).await;
        assert_eq!(reply.status, 401, "{reply:?}");
        assert_eq!(reply.body, r#"{"error":"invalid_token"}"#);
        assert_eq!(
            reply.header("www-authenticate"),
            Some(r#"Bearer realm="api", error="invalid_token""#)
        );
    }
    // A token of an unknown issuer costs the IdP nothing.
    assert_eq!(other.requests(), 0);
}

#[tokio::test]
async fn an_idp_down_at_start_is_503_for_its_tokens_only() {
    let key = SigningKey::rsa("rsa-1", 0);
    let idp = TestIdp::start(&[&key]).await;
    idp.set_fault(Fault::Close);
    let auth = layer(&idp).await;
    let addr = serve(auth_examples::router(auth.clone())).await;

    let reply = get(
        addr,
        "/whoami",
        &[("authorization", &bearer(&token(&idp, &key, "alice", &[])))],
    )
    .await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert!(
        reply
            .header("retry-after")
            .is_some_and(|s| s.parse::<u64>().unwrap() >= 1)
    );
    assert!(reply.header("www-authenticate").is_none());
    assert_eq!(reply.body, r#"{"error":"temporarily_unavailable"}"#);
    // Other methods and public routes are untouched.
    assert_eq!(
        get(addr, "/whoami", &[("x-api-key", KEY_A)]).await.status,
        200
    );
    assert_eq!(get(addr, "/health", &[]).await.status, 200);

    // Over gRPC the same fault is UNAVAILABLE, not UNAUTHENTICATED.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc = listener.local_addr().unwrap();
    tokio::spawn(serve_grpc(
        grpc_auth(auth),
        listener,
        std::future::pending(),
    ));
    let mut client = DemoClient::connect(format!("http://{grpc}")).await.unwrap();
    let mut request = tonic::Request::new(WhoAmIRequest {});
    request.metadata_mut().insert(
        "authorization",
        bearer(&token(&idp, &key, "alice", &[])).parse().unwrap(),
    );
    assert_eq!(
        client.who_am_i(request).await.unwrap_err().code(),
        Code::Unavailable
    );
}

#[tokio::test]
async fn oidc_over_grpc() {
    let key = SigningKey::rsa("rsa-1", 0);
    let idp = TestIdp::start(&[&key]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc = listener.local_addr().unwrap();
    tokio::spawn(serve_grpc(
        grpc_auth(layer(&idp).await),
        listener,
        std::future::pending(),
    ));
    let mut client = DemoClient::connect(format!("http://{grpc}")).await.unwrap();
    let call = |token: String| {
        let mut request = tonic::Request::new(WhoAmIRequest {});
        request
            .metadata_mut()
            .insert("authorization", bearer(&token).parse().unwrap());
        request
    };
    let reply = client
        .who_am_i(call(token(&idp, &key, "alice", &["a"])))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (reply.subject.as_str(), reply.method.as_str()),
        ("alice", "oidc")
    );
    let ping = |token: String| {
        let mut request = tonic::Request::new(auth_examples::grpc::pb::AdminPingRequest {});
        request
            .metadata_mut()
            .insert("authorization", bearer(&token).parse().unwrap());
        request
    };
    let denied = client
        .admin_ping(ping(token(&idp, &key, "alice", &["a"])))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(
        client
            .admin_ping(ping(token(&idp, &key, "root", &["admin"])))
            .await
            .is_ok()
    );
}

#[tokio::test(flavor = "current_thread")]
async fn tokens_never_reach_the_logs() {
    let (logs, _guard) = CapturedLogs::start();
    let key = SigningKey::rsa("rsa-1", 0);
    let idp = TestIdp::start(&[&key]).await;
    let addr = demo(&idp).await;
    let good = token(&idp, &key, "alice", &[]);
    let bad = format!("{}x", &good[..good.len() - 1]);
    for t in [&good, &bad] {
        get(addr, "/whoami", &[("authorization", &bearer(t))]).await;
    }
    let logs = logs.text();
    assert!(
        logs.contains("outcome=\"accepted\"") && logs.contains("outcome=\"rejected\""),
        "{logs}"
    );
    let signature = good.rsplit('.').next().unwrap();
    assert!(
        !logs.contains(signature) && !logs.contains(&good[..40]),
        "a token reached the logs"
    );
}
