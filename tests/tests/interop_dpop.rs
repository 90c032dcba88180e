//! DPoP interop (RFC 9449): panva/oidc-provider v9 with its `dPoP` feature on (opt-in,
//! `INTEROP_DPOP=1`) binds client_credentials tokens to the requesting key (`cnf.jkt`); our
//! layer accepts them with proofs minted by an independent client (panva's npm `dpop`,
//! tests/interop/dpop-client.mjs) and by ours, and refuses the bad uses each SECURITY.md
//! P-id names.
//!
//! Needs `npm ci --prefix tests/interop` first (`tests/interop/run` does it).
#![cfg(feature = "interop")]

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use auth_tests::idp::unb64;
use auth_tests::oidc_provider::OidcProvider;
use auth_tests::{config, get};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tower::{ServiceBuilder, ServiceExt};
use tower_auth_client::{BearerLayer, ClientCredentials, DpopKey, DpopLayer, TokenCache};

fn provider() -> OidcProvider {
    OidcProvider::start_with(Some("ES256"), &[("INTEROP_DPOP", "1")])
}

/// Our layer for the provider's tokens, served on a listener bound first, so that its
/// origin (which proofs name) is known to `AUTH_DPOP_ORIGIN`.
async fn serve_layer(provider: &OidcProvider) -> (SocketAddr, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let origin = format!("http://{addr}");
    let oidc = json!({"issuers": [{"issuer": provider.issuer, "audience": provider.resource,
                                   "roles_claim": "scope", "dpop": "required"}]})
    .to_string();
    let auth = config(&[("OIDC_CONFIG", &oidc), ("AUTH_DPOP_ORIGIN", &origin)])
        .build()
        .await
        .unwrap();
    let router = auth_examples::router(auth);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (addr, origin)
}

/// The npm `dpop` client: a bound token from the provider and one proof per target.
fn independent_client(provider: &OidcProvider, targets: &[(&str, String)]) -> Value {
    let dir = std::env::var_os("INTEROP_NODE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop"));
    let mut child = Command::new("node")
        .arg(dir.join("dpop-client.mjs"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node is installed");
    let input = json!({"token_url": format!("{}/token", provider.issuer),
        "client_id": provider.client_id, "client_secret": provider.client_secret,
        "resource": provider.resource, "targets": targets});
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "dpop-client.mjs failed");
    serde_json::from_slice(&output.stdout).unwrap()
}

fn dpop(token: &str) -> String {
    format!("DPoP {token}")
}

/// SECURITY.md P1, P2, P3, P4, P5, P8.
#[tokio::test]
async fn tokens_bound_by_oidc_provider_pass_with_independent_proofs_and_only_so() {
    let provider = provider();
    let (addr, origin) = serve_layer(&provider).await;
    let whoami = format!("{origin}/whoami");
    let targets = [
        ("GET", whoami.clone()),
        ("GET", whoami.clone()),
        ("GET", whoami.clone()),
        ("POST", whoami.clone()),
        ("GET", format!("{origin}/admin")),
    ];
    // Blocks this thread for the Node process; nothing of ours has to run meanwhile.
    let out = independent_client(&provider, &targets);
    assert_eq!(out["token_type"], "DPoP");
    let token = out["access_token"].as_str().unwrap();
    let claims: Value = serde_json::from_slice(&unb64(token.split('.').nth(1).unwrap())).unwrap();
    assert_eq!(
        claims["cnf"]["jkt"], out["jkt"],
        "the provider bound the token"
    );
    let proof = |i: usize| out["proofs"][i].as_str().unwrap().to_owned();
    let auth = dpop(token);

    let reply = get(
        addr,
        "/whoami",
        &[("authorization", &auth), ("dpop", &proof(0))],
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let replayed = get(
        addr,
        "/whoami",
        &[("authorization", &auth), ("dpop", &proof(0))],
    )
    .await;
    assert_eq!(replayed.status, 401, "P8");
    assert_eq!(
        get(addr, "/whoami", &[("authorization", &auth)])
            .await
            .status,
        401,
        "P2"
    );
    let bearer = format!("Bearer {token}");
    let as_bearer = get(
        addr,
        "/whoami",
        &[("authorization", &bearer), ("dpop", &proof(1))],
    )
    .await;
    assert_eq!(as_bearer.status, 401, "P1");
    let post_proof = get(
        addr,
        "/whoami",
        &[("authorization", &auth), ("dpop", &proof(3))],
    )
    .await;
    assert_eq!(post_proof.status, 401, "P4");
    let other_url = get(
        addr,
        "/whoami",
        &[("authorization", &auth), ("dpop", &proof(4))],
    )
    .await;
    assert_eq!(other_url.status, 401, "P5");
    let two = get(
        addr,
        "/whoami",
        &[
            ("authorization", &auth),
            ("dpop", &proof(1)),
            ("dpop", &proof(2)),
        ],
    )
    .await;
    assert_eq!(two.status, 400, "P3");
    // None of the refused requests used up proofs 1 and 2.
    let reply = get(
        addr,
        "/whoami",
        &[("authorization", &auth), ("dpop", &proof(1))],
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

/// Our client end to end: `ClientCredentials::dpop` gets a token the provider binds to our
/// key, and `DpopLayer` presents it with a fresh proof per request.
#[tokio::test]
async fn our_client_gets_and_presents_a_token_bound_by_oidc_provider() {
    let provider = provider();
    let (_, origin) = serve_layer(&provider).await;
    let key = DpopKey::generate().unwrap();
    let source = ClientCredentials::from_issuer(
        &provider.issuer,
        provider.client_id.as_str(),
        provider.client_secret.as_str(),
    )
    .unwrap()
    .resource(provider.resource.as_str())
    .dpop(key.clone());
    let tokens = TokenCache::start(source).await.unwrap();
    let client = ServiceBuilder::new()
        .layer(BearerLayer::new(tokens).allow_origin(&origin).unwrap())
        .layer(DpopLayer::new(key))
        .service(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());
    for _ in 0..3 {
        let request = http::Request::get(format!("{origin}/whoami"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        assert_eq!(client.clone().oneshot(request).await.unwrap().status(), 200);
    }
}
