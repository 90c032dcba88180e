//! SECURITY.md N7-N9: the IdP client through `HTTPS_PROXY` / `NO_PROXY`, with a CONNECT proxy
//! the test starts and a test IdP over TLS whose host name (`idp.test`) only that proxy can
//! reach.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth_tests::idp::{
    AUDIENCE, INTROSPECT_CLIENT_ID, INTROSPECT_SECRET, PROXIED_HOST, SigningKey, TestCa, TestIdp,
    assert_unavailable, run,
};
use auth_tests::proxy::TestProxy;
use auth_tests::{config, get, serve};
use axum::Router;
use axum::routing::get as route_get;
use base64::Engine;
use serde_json::json;
use tower_auth_core::{Admins, Clock};
use tower_auth_oidc::{IntrospectionConfig, IssuerConfig, OidcAuthenticator, OidcConfig, Proxies};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// SECURITY.md N7: discovery, keys and introspection all go through the tunnel, with the
/// proxy's credentials; the layer reads the proxy from the environment it is given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_keys_and_introspection_go_through_the_connect_proxy() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_ca_file(dir.path(), "ca.pem");
    let key = SigningKey::ec("p1");
    let idp = TestIdp::start_tls_proxied(&[&key], &ca).await;
    assert!(
        idp.issuer()
            .starts_with(&format!("https://{PROXIED_HOST}:"))
    );
    let proxy = TestProxy::start(idp.addr()).await;
    let oidc = json!({"issuers": [{"issuer": idp.issuer(), "audience": AUDIENCE,
        "introspection": {"client_id": INTROSPECT_CLIENT_ID, "client_secret": INTROSPECT_SECRET}}]})
    .to_string();
    let proxy_url = proxy.url().replace("http://", "http://ops:pr%3Axy@");
    let layer = config(&[
        ("OIDC_CONFIG", &oidc),
        ("OIDC_CA_FILE", ca_file.to_str().unwrap()),
        ("https_proxy", &proxy_url),
        ("NO_PROXY", "elsewhere.example"),
    ])
    .build()
    .await
    .unwrap();
    let app = Router::new()
        .route("/", route_get(|| async { "ok" }))
        .layer(layer);
    let addr = serve(app).await;
    let t = now();
    let jwt = idp.token_with(&key, |c| {
        c["iat"] = json!(t);
        c["exp"] = json!(t + 600);
    });
    let opaque = idp.opaque_token(json!({"iss": idp.issuer(), "sub": "alice", "aud": AUDIENCE,
        "exp": t + 600, "active": true}));
    for token in [&jwt, &opaque] {
        let reply = get(addr, "/", &[("authorization", &format!("Bearer {token}"))]).await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    assert_eq!((idp.jwks_requests(), idp.introspections()), (1, 1));
    let connects = proxy.connects();
    assert!(!connects.is_empty());
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("ops:pr:xy")
    );
    for connect in &connects {
        assert_eq!(
            connect.target,
            format!("{PROXIED_HOST}:{}", idp.addr().port())
        );
        assert_eq!(connect.authorization.as_deref(), Some(basic.as_str()));
    }
}

/// SECURITY.md N8: `NO_PROXY` naming the host (or `*`) means a direct connection, which for
/// `idp.test` cannot be made: 503, and the proxy sees nothing.
#[tokio::test]
async fn no_proxy_hosts_are_reached_directly() {
    let ca = TestCa::new();
    let key = SigningKey::ec("p1");
    let idp = TestIdp::start_tls_proxied(&[&key], &ca).await;
    let proxy = TestProxy::start(idp.addr()).await;
    for no_proxy in [PROXIED_HOST, ".test", "*"] {
        let proxies = Proxies::from_lookup(|name| match name {
            "HTTPS_PROXY" => Some(proxy.url()),
            "no_proxy" => Some(no_proxy.into()),
            _ => None,
        });
        let config = OidcConfig::builder()
            .issuer(IssuerConfig::new(idp.issuer(), AUDIENCE).ca_pem(ca.ca_pem()))
            .connect_timeout(Duration::from_millis(500))
            .read_timeout(Duration::from_millis(500))
            .startup_timeout(Duration::from_secs(2))
            .proxies(proxies)
            .build()
            .unwrap();
        let auth = OidcAuthenticator::start(config, Admins::default())
            .await
            .unwrap();
        let t = Clock::system().now_unix();
        let token = idp.token_with(&key, |c| {
            c["iat"] = json!(t);
            c["exp"] = json!(t + 600);
        });
        assert_unavailable(&run(&auth, &token).await);
    }
    assert!(proxy.connects().is_empty());
    assert_eq!(idp.requests(), 0);
}

/// SECURITY.md N9: a loopback IdP is never reached through a proxy, even one that would
/// take it: plain http to loopback must stay on this machine.
#[tokio::test]
async fn loopback_idps_never_go_through_the_proxy() {
    let key = SigningKey::ec("p1");
    let idp = TestIdp::start(&[&key]).await;
    let proxy = TestProxy::start(idp.addr()).await;
    let proxies = Proxies::from_lookup(|name| match name {
        "HTTPS_PROXY" | "HTTP_PROXY" => Some(proxy.url()),
        _ => None,
    });
    let config =
        OidcConfig::builder()
            .issuer(IssuerConfig::new(idp.issuer(), AUDIENCE).introspection(
                IntrospectionConfig::new(INTROSPECT_CLIENT_ID, INTROSPECT_SECRET),
            ))
            .proxies(proxies)
            .build()
            .unwrap();
    let auth = OidcAuthenticator::start(config, Admins::default())
        .await
        .unwrap();
    let t = Clock::system().now_unix();
    let token = idp.opaque_token(json!({"sub": "alice", "aud": AUDIENCE, "exp": t + 600}));
    auth_tests::idp::accepted(run(&auth, &token).await);
    assert!(proxy.connects().is_empty());
    assert!(idp.jwks_requests() >= 1);
}

/// Set in the child process of the next test: the token URL to ask.
const CHILD_TOKEN_URL: &str = "AUTH_TESTS_PROXY_CHILD_TOKEN_URL";

/// SECURITY.md N7: `tower-auth-client`'s token requests read `HTTPS_PROXY` from the process
/// environment. The environment is the process's, and setting it in this one would race the
/// other tests, so this test binary runs again as a child with the variables set, and asks
/// the token endpoint once; this process runs the proxy and the IdP and watches.
#[test]
fn the_client_crates_token_requests_go_through_https_proxy_from_the_environment() {
    const NAME: &str =
        "the_client_crates_token_requests_go_through_https_proxy_from_the_environment";
    if let Ok(url) = std::env::var(CHILD_TOKEN_URL) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            use tower_auth_client::TokenSource;
            let source = tower_auth_client::ClientCredentials::new(&url, "svc", "secret").unwrap();
            // The test IdP has no token endpoint: the answer is a 404, which does not matter.
            let _ = source.fetch().await;
        });
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let ca = TestCa::new();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = ca.write_ca_file(dir.path(), "ca.pem");
        let idp = TestIdp::start_tls_proxied(&[&SigningKey::ec("p1")], &ca).await;
        let proxy = TestProxy::start(idp.addr()).await;
        let token_url = format!("{}/token", idp.issuer());
        let proxy_url = proxy.url();
        let status = tokio::task::spawn_blocking(move || {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", NAME, "--test-threads", "1", "--quiet"])
                .env(CHILD_TOKEN_URL, token_url)
                .env("HTTPS_PROXY", proxy_url)
                // The platform store of the child: the test CA, so that TLS through the tunnel
                // completes and the request reaches the IdP.
                .env("SSL_CERT_FILE", ca_file)
                .env_remove("NO_PROXY")
                .env_remove("no_proxy")
                .stdout(std::process::Stdio::null())
                .status()
        })
        .await
        .unwrap()
        .unwrap();
        assert!(status.success());
        let connects = proxy.connects();
        assert_eq!(connects.len(), 1, "{connects:?}");
        assert_eq!(
            connects[0].target,
            format!("{PROXIED_HOST}:{}", idp.addr().port())
        );
        assert_eq!(idp.requests(), 1, "the request went through the tunnel");
    });
}
