//! RFC 9728 protected resource metadata (`AUTH_RESOURCE`), end to end: the demo's router on
//! 127.0.0.1:0 with API keys and a test IdP's issuer, a raw HTTP client. SECURITY.md B10-B12.

use std::net::SocketAddr;

use auth_tests::idp::{SigningKey, TestIdp};
use auth_tests::{KEY_A, Reply, get, send, serve};
use serde_json::{Value, json};
use tower_auth::{AuthConfig, AuthLayer, ConfigError};

fn from(vars: &[(&str, &str)]) -> Result<AuthConfig, ConfigError> {
    AuthConfig::from_lookup("", |name| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| (*v).to_owned())
    })
}

/// The demo with API keys, `idp`'s issuer, two role rules and `resource`.
async fn demo(idp: &TestIdp, resource: &str) -> SocketAddr {
    let oidc = json!({"issuers": [{"issuer": idp.issuer(), "audience": "api"}]}).to_string();
    let layer = from(&[
        ("API_KEYS", KEY_A),
        ("OIDC_CONFIG", &oidc),
        (
            "AUTH_METHOD_ROLES",
            "/orders=orders:read|orders:write;/pkg.Admin/*=admin",
        ),
        ("AUTH_RESOURCE", resource),
    ])
    .unwrap()
    .build()
    .await
    .unwrap();
    serve(auth_examples::router(layer)).await
}

fn challenge(reply: &Reply) -> &str {
    reply.header("www-authenticate").unwrap()
}

/// SECURITY.md B11: served by the layer, without a credential and whatever credential
/// comes, at the well-known path and its path-suffixed form only.
#[tokio::test]
async fn the_metadata_is_public_and_names_resource_issuers_and_scopes() {
    let key = SigningKey::rsa("rsa-1", 0);
    let idp = TestIdp::start(&[&key]).await;
    let addr = demo(&idp, "https://api.example.com/mcp").await;
    let expected = json!({
        "resource": "https://api.example.com/mcp",
        "authorization_servers": [idp.issuer()],
        "scopes_supported": ["admin", "orders:read", "orders:write"],
        "bearer_methods_supported": ["header"],
    });
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        for headers in [
            &[][..],
            &[("authorization", "Bearer not-a-valid-token")],
            &[("x-api-key", KEY_A)],
        ] {
            let reply = get(addr, path, headers).await;
            assert_eq!(reply.status, 200, "{path} {headers:?}: {reply:?}");
            assert_eq!(reply.header("content-type"), Some("application/json"));
            assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
            let document: Value = serde_json::from_str(&reply.body).unwrap();
            assert_eq!(document, expected, "{path}");
            assert!(!reply.body.contains(KEY_A));
        }
    }
    let reply = send(
        addr,
        http::Method::POST,
        "/.well-known/oauth-protected-resource",
        &[],
    )
    .await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("GET, HEAD"));
    let reply = send(
        addr,
        http::Method::HEAD,
        "/.well-known/oauth-protected-resource/mcp",
        &[],
    )
    .await;
    assert_eq!(reply.status, 200);
    // Exact paths: anything else is an ordinary protected path.
    for path in [
        "/.well-known/oauth-protected-resource/",
        "/.well-known/oauth-protected-resource/mcp/",
        "/.well-known/oauth-protected-resource/other",
        "/.well-known/OAuth-Protected-Resource",
        "//.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource?x=1/../mcp",
    ] {
        let reply = get(addr, path, &[]).await;
        if path.contains('?') {
            // The query is not part of the path: still the metadata.
            assert_eq!(reply.status, 200, "{path}");
            continue;
        }
        assert_eq!(reply.status, 401, "{path}: {reply:?}");
    }
}

/// SECURITY.md B12: every Bearer challenge names the metadata URL, the 400 and the 403 too.
#[tokio::test]
async fn every_challenge_carries_the_resource_metadata_url() {
    let key = SigningKey::rsa("rsa-1", 0);
    let idp = TestIdp::start(&[&key]).await;
    let addr = demo(&idp, "https://api.example.com/mcp").await;
    let url =
        r#"resource_metadata="https://api.example.com/.well-known/oauth-protected-resource/mcp""#;
    for (path, headers, status, start) in [
        ("/whoami", &[][..], 401, r#"Bearer realm="api", "#),
        (
            "/whoami",
            &[("authorization", "Bearer wrong")],
            401,
            r#"Bearer realm="api", error="invalid_token", "#,
        ),
        (
            "/whoami",
            &[("authorization", "Bearer a b")],
            400,
            r#"Bearer realm="api", error="invalid_request", "#,
        ),
        (
            "/orders",
            &[("x-api-key", KEY_A)],
            403,
            r#"Bearer realm="api", error="insufficient_scope", scope="orders:read orders:write", "#,
        ),
        // A RequireRolesLayer made with realm_of(&auth) follows the layer.
        (
            "/admin",
            &[("x-api-key", KEY_A)],
            403,
            r#"Bearer realm="api", error="insufficient_scope", scope="admin", "#,
        ),
    ] {
        let reply = get(addr, path, headers).await;
        assert_eq!(reply.status, status, "{path} {headers:?}: {reply:?}");
        assert_eq!(challenge(&reply), format!("{start}{url}"), "{path}");
    }
    // Without a path, the URL is the well-known one.
    let addr = demo(&idp, "http://127.0.0.1:1").await;
    assert_eq!(
        challenge(&get(addr, "/whoami", &[]).await),
        r#"Bearer realm="api", resource_metadata="http://127.0.0.1:1/.well-known/oauth-protected-resource""#
    );
    assert_eq!(
        get(addr, "/.well-known/oauth-protected-resource", &[])
            .await
            .status,
        200
    );
}

/// Without `AUTH_RESOURCE` nothing changes: no metadata, no parameter.
#[tokio::test]
async fn without_a_resource_there_is_no_metadata() {
    let layer = from(&[("API_KEYS", KEY_A)]).unwrap().build().await.unwrap();
    let addr = serve(auth_examples::router(layer)).await;
    let reply = get(addr, "/.well-known/oauth-protected-resource", &[]).await;
    assert_eq!(reply.status, 401);
    assert_eq!(challenge(&reply), r#"Bearer realm="api""#);
}

/// A layer built in code: the resource, its authorization server and scopes by hand.
#[tokio::test]
async fn the_builder_serves_the_same_metadata() {
    let keys =
        tower_auth::ApiKeySet::parse("API_KEYS", KEY_A, &tower_auth::Admins::default()).unwrap();
    let layer = AuthLayer::builder(tower_auth::ApiKeyAuthenticator::new(keys))
        .resource("https://orders.example")
        .authorization_server("https://login.example")
        .scopes_supported(["orders"])
        .build()
        .unwrap();
    let addr = serve(auth_examples::router(layer)).await;
    let reply = get(addr, "/.well-known/oauth-protected-resource", &[]).await;
    let document: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(
        document,
        json!({
            "resource": "https://orders.example",
            "authorization_servers": ["https://login.example"],
            "scopes_supported": ["orders"],
            "bearer_methods_supported": ["header"],
        })
    );
    let error = AuthLayer::builder(tower_auth::ApiKeyAuthenticator::new(
        tower_auth::ApiKeySet::parse("API_KEYS", KEY_A, &tower_auth::Admins::default()).unwrap(),
    ))
    .resource("http://orders.example")
    .build()
    .unwrap_err();
    assert_eq!(error.variable(), "AuthLayerBuilder::resource");
}

/// SECURITY.md B10.
#[test]
fn a_resource_that_is_not_an_https_url_refuses_start_up() {
    for bad in [
        "http://api.example.com",
        "http://localhost.:8080",
        "https://api.example.com/#frag",
        "https://api.example.com/?tenant=1",
        "https://user:pass@api.example.com",
        "/mcp",
        "api.example.com",
        "",
    ] {
        let error = from(&[("API_KEYS", KEY_A), ("AUTH_RESOURCE", bad)]).unwrap_err();
        assert_eq!(error.variable(), "AUTH_RESOURCE", "{bad:?}");
        assert!(!error.to_string().contains("pass"), "{error}");
    }
}
