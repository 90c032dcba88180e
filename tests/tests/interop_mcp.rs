//! Interop with the MCP TypeScript SDK's client-side authorization discovery
//! (`@modelcontextprotocol/sdk`, tests/interop/mcp-discovery.mjs): from a bare 401 of the
//! demo's router on 127.0.0.1:0, configured with `AUTH_RESOURCE` and a real OpenID provider
//! (panva/oidc-provider), the SDK finds the protected resource metadata (RFC 9728) and the
//! authorization server's metadata. SECURITY.md B11, B12.
//!
//! Needs `npm ci --prefix tests/interop` first (`tests/interop/run` does it).
#![cfg(feature = "interop")]

use std::path::PathBuf;
use std::process::Command;

use auth_tests::oidc_provider::OidcProvider;
use serde_json::{Value, json};
use tower_auth::AuthConfig;

fn node_dir() -> PathBuf {
    std::env::var_os("INTEROP_NODE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop"))
}

/// What the SDK's discovery found for `server_url`.
async fn discover(server_url: String) -> Value {
    let dir = node_dir();
    assert!(
        dir.join("node_modules/@modelcontextprotocol/sdk").is_dir(),
        "the MCP SDK is not installed: run `npm ci --prefix {}`",
        dir.display()
    );
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(dir.join("mcp-discovery.mjs"))
            .arg(server_url)
            .output()
            .expect("node is installed")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "no result from the SDK ({e}): {stdout:?} {:?}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mcp_sdk_discovers_the_authorization_server_from_a_bare_401() {
    let provider = OidcProvider::start(None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let resource = format!("http://127.0.0.1:{port}/mcp");
    let oidc = json!({"issuers": [{"issuer": provider.issuer, "audience": resource}]}).to_string();
    let vars = [
        ("OIDC_CONFIG", oidc.as_str()),
        ("AUTH_RESOURCE", resource.as_str()),
        ("AUTH_METHOD_ROLES", "/mcp=mcp:tools"),
    ];
    let layer = AuthConfig::from_lookup("", |name| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| (*v).to_owned())
    })
    .unwrap()
    .build()
    .await
    .unwrap();
    let app = auth_examples::router(layer);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let found = discover(resource.clone()).await;
    assert!(found.get("error").is_none(), "{found}");
    assert_eq!(found["status"], 401, "{found}");
    let metadata_url = format!("http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp");
    assert_eq!(found["resource_metadata_url"], metadata_url.as_str());
    assert_eq!(
        found["resource_metadata"],
        json!({
            "resource": resource,
            "authorization_servers": [provider.issuer],
            "scopes_supported": ["mcp:tools"],
            "bearer_methods_supported": ["header"],
        })
    );
    assert_eq!(found["authorization_server"], provider.issuer.as_str());
    assert_eq!(
        found["authorization_server_issuer"],
        provider.issuer.as_str()
    );
    assert_eq!(
        found["token_endpoint"],
        format!("{}/token", provider.issuer).as_str()
    );
    // Without the hint, the SDK's own probing finds the path-suffixed document.
    assert_eq!(found["probed_resource"], resource.as_str());
    assert_eq!(
        found["probed_authorization_server"],
        provider.issuer.as_str()
    );
    // The SDK accepts the resource as this server's (its RFC 8707 resource indicator).
    assert_eq!(found["selected_resource"], resource.as_str());
}
