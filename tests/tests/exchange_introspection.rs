//! SECURITY.md N10-N12: the token exchange's second backend, clients registered with
//! `"introspect": "<issuer>"` whose credential is an upstream access token judged by RFC 7662
//! introspection, wired by the layer from `OIDC_CONFIG` and `AUTH_TOKEN_CLIENTS`.

use std::time::{SystemTime, UNIX_EPOCH};

use auth_tests::idp::{
    AUDIENCE, INTROSPECT_CLIENT_ID, INTROSPECT_SECRET, Introspection, SigningKey, TestIdp,
};
use auth_tests::{Reply, config, get, send_body, serve_with_peers};
use axum::Router;
use axum::routing::get as route_get;
use base64::Engine;
use serde_json::{Value, json};
use tower_auth::{AuthLayer, RequireRolesLayer};

const HMAC: &str = "Vq7Lz2Rk9Tw4Xb8Nc3Hm6Jp1Sd5Gf0Ya-exchange-introspection";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn oidc_config(idp: &TestIdp) -> String {
    json!({"issuers": [{"issuer": idp.issuer(), "audience": AUDIENCE,
        "introspection": {"client_id": INTROSPECT_CLIENT_ID, "client_secret": INTROSPECT_SECRET}}]})
    .to_string()
}

async fn layer(idp: &TestIdp) -> AuthLayer {
    let clients = json!([
        {"client_id": "agent", "introspect": idp.issuer(), "roles": ["runtime.metrics:read"]},
        {"client_id": "other", "introspect": idp.issuer(), "roles": ["admin"]}
    ])
    .to_string();
    config(&[
        ("OIDC_CONFIG", &oidc_config(idp)),
        ("HMAC_SECRET", HMAC),
        ("AUTH_TOKEN_CLIENTS", &clients),
    ])
    .build()
    .await
    .unwrap()
}

async fn app(layer: AuthLayer) -> std::net::SocketAddr {
    let exchange = layer.exchange_endpoint().unwrap().clone();
    let revocation = layer.revocation_endpoint().unwrap().clone();
    let app = Router::new()
        .route(
            "/metrics",
            route_get(|| async { "metrics" })
                .route_layer(RequireRolesLayer::all(["runtime.metrics:read"]).unwrap()),
        )
        .layer(layer)
        .merge(exchange.router())
        .merge(revocation.router());
    serve_with_peers(app).await
}

async fn exchange(addr: std::net::SocketAddr, client_id: &str, credential: &str) -> Reply {
    let body = json!({"client_id": client_id, "credential": credential}).to_string();
    send_body(
        addr,
        http::Method::POST,
        "/auth/token",
        &[("content-type", "application/json")],
        &body,
    )
    .await
}

fn upstream(idp: &TestIdp, sub: Option<&str>, client_id: &str) -> String {
    let mut claims = json!({"iss": idp.issuer(), "aud": AUDIENCE, "exp": now() + 600,
        "client_id": client_id, "scope": "upstream:scope"});
    if let Some(sub) = sub {
        claims["sub"] = json!(sub);
    }
    idp.opaque_token(claims)
}

/// SECURITY.md N10.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_upstream_token_of_the_client_is_exchanged_for_its_registered_roles() {
    let idp = TestIdp::start(&[&SigningKey::rsa("a", 0)]).await;
    let addr = app(layer(&idp).await).await;
    // The token's client_id is the registration (a client-credentials token), and its sub,
    // when sent, is too.
    for token in [
        upstream(&idp, None, "agent"),
        upstream(&idp, Some("agent"), "agent"),
    ] {
        let reply = exchange(addr, "agent", &token).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let body: Value = serde_json::from_str(&reply.body).unwrap();
        let role_token = body["access_token"].as_str().unwrap();
        let claims = tower_auth_hmac::HmacConfig::builder(HMAC)
            .build()
            .unwrap()
            .decode(role_token)
            .unwrap();
        assert_eq!(claims.sub, "agent");
        assert_eq!(claims.roles, ["runtime.metrics:read"]);
        // SECURITY.md N16: no longer than the upstream token (600 s), not the default hour.
        assert!(claims.exp <= now() + 600, "{} > upstream exp", claims.exp);
        assert!(body["expires_in"].as_u64().unwrap() <= 600, "{body}");
        let bearer = format!("Bearer {role_token}");
        let metrics = get(addr, "/metrics", &[("authorization", &bearer)]).await;
        assert_eq!(metrics.status, 200);
        // The registration has no secret: the upstream token is no Basic password at the
        // revocation endpoint.
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("agent:{token}"))
        );
        let revoke = send_body(
            addr,
            http::Method::POST,
            "/auth/revoke",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("authorization", &basic),
            ],
            &format!("token={role_token}"),
        )
        .await;
        assert_eq!(revoke.status, 401, "{revoke:?}");
        assert_eq!(
            get(addr, "/metrics", &[("authorization", &bearer)])
                .await
                .status,
            200
        );
    }
}

/// SECURITY.md N11.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inactive_foreign_or_another_clients_tokens_are_invalid_client_and_count_as_failures() {
    let idp = TestIdp::start(&[&SigningKey::rsa("a", 0)]).await;
    let addr = app(layer(&idp).await).await;
    // Another client's token, presented as `other` (which would get admin).
    let agents = upstream(&idp, None, "agent");
    assert_eq!(exchange(addr, "other", &agents).await.status, 401);
    let revoked = upstream(&idp, Some("agent"), "agent");
    idp.revoke_opaque(&revoked);
    assert_eq!(exchange(addr, "agent", &revoked).await.status, 401);
    for never_issued in ["never-issued-token", "another-never-issued-token"] {
        assert_eq!(exchange(addr, "agent", never_issued).await.status, 401);
    }
    // A JWT of the issuer is not introspected: refused without a call.
    let before = idp.introspections();
    let jwt = idp.token(&SigningKey::rsa("a", 0), "agent");
    assert_eq!(exchange(addr, "agent", &jwt).await.status, 401);
    assert_eq!(idp.introspections(), before);
    let foreign = upstream(&idp, Some("agent"), "agent");
    idp.set_introspection(Introspection::ForeignIss);
    assert_eq!(exchange(addr, "agent", &foreign).await.status, 401);
    idp.set_introspection(Introspection::Normal);
    // Five failures for `agent` from this source: now even a good token gets 429.
    let good = upstream(&idp, None, "agent");
    let limited = exchange(addr, "agent", &good).await;
    assert_eq!(limited.status, 429, "{limited:?}");
    assert!(limited.header("retry-after").is_some());
}

/// SECURITY.md N12.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_issuer_is_503_and_not_a_failure() {
    let idp = TestIdp::start(&[&SigningKey::rsa("a", 0)]).await;
    let addr = app(layer(&idp).await).await;
    idp.set_introspection(Introspection::Down);
    for _ in 0..6 {
        let token = upstream(&idp, None, "agent");
        let reply = exchange(addr, "agent", &token).await;
        assert_eq!(reply.status, 503, "{reply:?}");
        assert_eq!(reply.header("retry-after"), Some("7"));
        assert_eq!(reply.body, r#"{"error":"temporarily_unavailable"}"#);
    }
    idp.set_introspection(Introspection::Normal);
    let token = upstream(&idp, None, "agent");
    assert_eq!(exchange(addr, "agent", &token).await.status, 200);
}

/// SECURITY.md N12: a client naming an issuer that does not introspect refuses start-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_naming_an_issuer_without_introspection_refuses_to_start() {
    let idp = TestIdp::start(&[&SigningKey::rsa("a", 0)]).await;
    let plain = json!({"issuers": [{"issuer": idp.issuer(), "audience": AUDIENCE}]}).to_string();
    for (oidc, clients) in [
        (
            oidc_config(&idp),
            json!([{"client_id": "a", "introspect": "https://elsewhere.example"}]),
        ),
        (
            plain,
            json!([{"client_id": "a", "introspect": idp.issuer()}]),
        ),
    ] {
        let error = config(&[
            ("OIDC_CONFIG", &oidc),
            ("HMAC_SECRET", HMAC),
            ("AUTH_TOKEN_CLIENTS", &clients.to_string()),
        ])
        .build()
        .await
        .unwrap_err();
        assert_eq!(error.variable(), "AUTH_TOKEN_CLIENTS");
        assert!(error.message().contains("introspect"), "{error}");
    }
}

/// SECURITY.md N16: only the client's own unbound token, of a subject not cut off, is
/// exchanged: a person's token issued to the client, another client's token about the
/// client, a certificate- or key-bound token, and a cut-off subject's token are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_clients_own_unbound_token_of_a_live_subject_is_exchanged() {
    let idp = TestIdp::start(&[&SigningKey::rsa("a", 0)]).await;
    let layer = layer(&idp).await;
    let cutoffs = layer.revocations().unwrap().clone();
    let addr = app(layer).await;
    let persons = upstream(&idp, Some("alice"), "agent");
    assert_eq!(exchange(addr, "agent", &persons).await.status, 401);
    let about_the_client = upstream(&idp, Some("agent"), "some-app");
    assert_eq!(exchange(addr, "agent", &about_the_client).await.status, 401);
    for cnf in [
        json!({"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}),
        json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}),
    ] {
        let bound = idp.opaque_token(json!({"iss": idp.issuer(), "aud": AUDIENCE,
            "exp": now() + 600, "client_id": "agent", "cnf": cnf}));
        assert_eq!(exchange(addr, "agent", &bound).await.status, 401, "{cnf}");
    }
    // Four failures so far; the limiter allows five. A cut-off of the client's subject at
    // the issuer: its upstream token, active at the IdP and issued before, is refused.
    let issued = now() - 10;
    let token = idp.opaque_token(json!({"iss": idp.issuer(), "aud": AUDIENCE,
        "exp": now() + 600, "iat": issued, "client_id": "agent"}));
    cutoffs
        .revoke_subject(
            &tower_auth_core::AuthMethod::Oidc {
                issuer: idp.issuer().into(),
            },
            "agent",
        )
        .unwrap();
    assert_eq!(exchange(addr, "agent", &token).await.status, 401);
}
