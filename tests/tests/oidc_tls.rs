//! Transport to the IdP (SECURITY.md G4, G5, F17, F18): an issuer served over HTTPS with a
//! certificate of a CA the test makes, trusted through `ca_file` or `OIDC_CA_FILE`; plain
//! http refused off loopback, at start-up for configured URLs and as a failed refresh for a
//! discovered one.
//!
//! Time is controlled: `warp` moves the wall clock and Tokio's clock together; no test sleeps.

use std::net::SocketAddr;
use std::time::Duration;

use auth_tests::idp::{
    AUDIENCE, NOW, SigningKey, TestCa, TestIdp, accepted, assert_unavailable, run, warp,
};
use auth_tests::{CapturedLogs, get, serve};
use serde_json::json;
use tower_auth::{AuthConfig, AuthLayer};
use tower_auth_core::{Admins, Clock, ConfigError};
use tower_auth_oidc::{IssuerConfig, OidcAuthenticator, OidcConfig};

/// Configuration from these variables only.
fn from_vars(vars: &[(&str, &str)]) -> Result<AuthConfig, ConfigError> {
    AuthConfig::from_lookup("", |name| {
        vars.iter()
            .find(|(var, _)| *var == name)
            .map(|(_, value)| (*value).to_owned())
    })
}

/// The demo's router behind a layer built from these variables, on 127.0.0.1:0.
async fn serve_layer(vars: &[(&str, &str)]) -> SocketAddr {
    let layer: AuthLayer = from_vars(vars).unwrap().build().await.unwrap();
    serve(auth_examples::router(layer)).await
}

/// A token of `issuer` valid now by the system clock.
fn token(idp: &TestIdp, key: &SigningKey, issuer: &str, sub: &str) -> String {
    let now = Clock::system().now_unix();
    idp.token_with(key, |claims| {
        claims["iss"] = json!(issuer);
        claims["sub"] = json!(sub);
        claims["iat"] = json!(now);
        claims["exp"] = json!(now + 600);
    })
}

async fn whoami(addr: SocketAddr, token: &str) -> (u16, serde_json::Value) {
    let reply = get(
        addr,
        "/whoami",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    let body = serde_json::from_str(&reply.body).unwrap_or_default();
    (reply.status, body)
}

/// SECURITY.md F18.
#[tokio::test]
async fn an_https_issuer_of_a_private_ca_is_trusted_through_ca_file_or_oidc_ca_file() {
    let ca = TestCa::new();
    let key = SigningKey::ec("tls-1");
    let idp = TestIdp::start_tls(&[&key], &ca).await;
    assert!(idp.issuer().starts_with("https://127.0.0.1:"));
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_ca_file(dir.path(), "idp-ca.pem");
    let ca_file = ca_file.to_str().unwrap();
    let alice = token(&idp, &key, idp.issuer(), "alice");

    // Per issuer, in OIDC_CONFIG.
    let per_issuer = json!({"issuers": [{"issuer": idp.issuer(), "audience": AUDIENCE,
                                         "ca_file": ca_file}]})
    .to_string();
    let addr = serve_layer(&[("OIDC_CONFIG", &per_issuer)]).await;
    let (status, body) = whoami(addr, &alice).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["subject"].as_str(), body["method"].as_str()),
        (Some("alice"), Some("oidc"))
    );

    // For every issuer, in OIDC_CA_FILE.
    let plain = json!({"issuers": [{"issuer": idp.issuer(), "audience": AUDIENCE}]}).to_string();
    let addr = serve_layer(&[("OIDC_CONFIG", &plain), ("OIDC_CA_FILE", ca_file)]).await;
    assert_eq!(whoami(addr, &alice).await.0, 200);
    assert!(idp.discovery_requests() >= 2 && idp.jwks_requests() >= 2);

    // In code: a PEM given to the issuer's builder.
    let config = OidcConfig::builder()
        .issuer(IssuerConfig::new(idp.issuer(), AUDIENCE).ca_pem(ca.ca_pem()))
        .build()
        .unwrap();
    let oidc = OidcAuthenticator::start(config, Admins::default())
        .await
        .unwrap();
    assert_eq!(accepted(run(&oidc, &alice).await).subject(), "alice");
}

/// SECURITY.md F18.
#[tokio::test]
async fn without_its_ca_the_https_issuer_is_not_reached_and_its_tokens_get_503() {
    let ca = TestCa::new();
    let key = SigningKey::ec("tls-1");
    let idp = TestIdp::start_tls(&[&key], &ca).await;
    let oidc = json!({"issuers": [{"issuer": idp.issuer(), "audience": AUDIENCE}]}).to_string();
    let addr = serve_layer(&[("OIDC_CONFIG", &oidc)]).await;
    let reply = get(
        addr,
        "/whoami",
        &[(
            "authorization",
            &format!("Bearer {}", token(&idp, &key, idp.issuer(), "alice")),
        )],
    )
    .await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert!(reply.header("retry-after").is_some());
    // The client hung up in the handshake: connections came, no request was made.
    assert!(idp.connections() >= 1);
    assert_eq!(idp.requests(), 0);

    // Another CA's certificate does not stand in for the right one.
    let other = TestCa::new();
    let config = OidcConfig::builder()
        .issuer(IssuerConfig::new(idp.issuer(), AUDIENCE).ca_pem(other.ca_pem()))
        .startup_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let oidc = OidcAuthenticator::start(config, Admins::default())
        .await
        .unwrap();
    let status = oidc.issuer_status(idp.issuer()).unwrap();
    assert!(
        !status.available && status.last_error.is_some(),
        "{status:?}"
    );
    assert_eq!(idp.requests(), 0);
}

/// SECURITY.md G4.
#[tokio::test]
async fn a_configured_plain_http_url_off_loopback_refuses_to_start() {
    for (issuer, jwks_uri, needle) in [
        (
            "http://idp.example",
            None,
            r#"issuer "http://idp.example" is plain http"#,
        ),
        ("http://10.1.2.3:8080/realms/x", None, "not loopback"),
        (
            "https://idp.example",
            Some("http://keys.example/jwks"),
            r#"jwks_uri "http://keys.example/jwks" must use https"#,
        ),
        (
            "http://127.0.0.1:9",
            Some("http://localhost.:9/jwks"),
            "must use https",
        ),
    ] {
        let mut entry = json!({"issuer": issuer, "audience": AUDIENCE});
        if let Some(uri) = jwks_uri {
            entry["jwks_uri"] = json!(uri);
        }
        let oidc = json!({"issuers": [entry]}).to_string();
        let error = from_vars(&[("OIDC_CONFIG", &oidc)]).unwrap_err();
        assert_eq!(error.variable(), "OIDC_CONFIG", "{error}");
        assert!(
            error.message().starts_with("issuers[0]: ") && error.message().contains(needle),
            "{error}"
        );
    }

    // The identifier itself may be any URL when the keys come over TLS.
    let ca = TestCa::new();
    let key = SigningKey::ec("tls-1");
    let idp = TestIdp::start_tls(&[&key], &ca).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_ca_file(dir.path(), "ca.pem");
    let oidc = json!({"issuers": [{"issuer": "http://idp.example", "audience": AUDIENCE,
                                   "jwks_uri": idp.jwks_uri()}]})
    .to_string();
    let addr = serve_layer(&[
        ("OIDC_CONFIG", &oidc),
        ("OIDC_CA_FILE", ca_file.to_str().unwrap()),
    ])
    .await;
    let bob = token(&idp, &key, "http://idp.example", "bob");
    assert_eq!(whoami(addr, &bob).await.0, 200);
    assert_eq!(idp.discovery_requests(), 0);
}

/// SECURITY.md G5.
#[tokio::test]
async fn an_unusable_ca_file_refuses_to_start_naming_the_setting_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let key_only = dir.path().join("key.pem");
    std::fs::write(
        &key_only,
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let truncated = dir.path().join("truncated.pem");
    std::fs::write(&truncated, &TestCa::new().ca_pem()[..200]).unwrap();
    let missing = dir.path().join("missing.pem");
    let oidc =
        json!({"issuers": [{"issuer": "https://idp.example", "audience": AUDIENCE}]}).to_string();
    for (path, why) in [
        (&missing, "cannot be read"),
        (&key_only, "holds no PEM certificate"),
        (&truncated, "not a well-formed PEM"),
    ] {
        let path = path.to_str().unwrap();
        let error = from_vars(&[("OIDC_CONFIG", &oidc), ("OIDC_CA_FILE", path)]).unwrap_err();
        assert_eq!(error.variable(), "OIDC_CA_FILE");
        assert!(
            error.message().contains(path) && error.message().contains(why),
            "{error}"
        );
        let per_issuer = json!({"issuers": [{"issuer": "https://idp.example",
                                             "audience": AUDIENCE, "ca_file": path}]})
        .to_string();
        let error = from_vars(&[("OIDC_CONFIG", &per_issuer)]).unwrap_err();
        assert_eq!(error.variable(), "OIDC_CONFIG");
        assert!(
            error.message().starts_with("issuers[0]: ca_file ")
                && error.message().contains(path)
                && error.message().contains(why),
            "{error}"
        );
        assert!(!error.to_string().contains("c2VjcmV0"));
    }
    let error = from_vars(&[("OIDC_CA_FILE", missing.to_str().unwrap())]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "OIDC_CA_FILE: is set but OIDC_CONFIG is not"
    );
}

/// SECURITY.md F17.
#[tokio::test]
async fn a_discovered_plain_http_jwks_uri_is_a_failed_refresh_and_https_works() {
    let ca = TestCa::new();
    let key = SigningKey::ec("tls-1");
    let idp = TestIdp::start_tls(&[&key], &ca).await;
    // A plain-http server with the same keys, named by a host that is not loopback by the
    // rule (a trailing dot) though it may resolve to this machine: it must never be asked.
    let decoy = TestIdp::start(&[&key]).await;
    let decoy_uri = format!("http://localhost.:{}/jwks", decoy.addr().port());
    idp.set_discovery_jwks_uri(Some(decoy_uri.clone()));

    let (logs, _guard) = CapturedLogs::start();
    let clock = Clock::manual(NOW);
    let config = OidcConfig::builder()
        .issuer(IssuerConfig::new(idp.issuer(), AUDIENCE).ca_pem(ca.ca_pem()))
        .jwks_refresh_interval(Duration::from_secs(60))
        .clock(clock.clone())
        .build()
        .unwrap();
    let oidc = OidcAuthenticator::start(config, Admins::default())
        .await
        .unwrap();
    let status = oidc.issuer_status(idp.issuer()).unwrap();
    assert_eq!(status.last_error, Some("discovery_jwks_uri_plain_http"));
    assert!(!status.available && !status.misconfigured);
    assert_eq!((decoy.requests(), idp.jwks_requests()), (0, 0));
    let alice = idp.token(&key, "alice");
    assert_unavailable(&run(&oidc, &alice).await);
    let text = logs.text();
    let event = text
        .lines()
        .find(|line| line.contains("plain-http jwks_uri"))
        .unwrap_or_else(|| panic!("no event in {text}"));
    assert!(
        event.contains("ERROR") && event.contains(" auth: ") && event.contains(&decoy_uri),
        "{event}"
    );

    // Retried like any failed refresh: discovery asked again, the https key set used.
    idp.set_discovery_jwks_uri(None);
    let before = oidc.issuer_status(idp.issuer()).unwrap().fetches;
    warp(&clock, Duration::from_secs(2)).await;
    oidc.wait_for_fetches(idp.issuer(), before + 1).await;
    assert_eq!(accepted(run(&oidc, &alice).await).subject(), "alice");
    assert!(idp.discovery_requests() >= 2 && idp.jwks_requests() >= 1);
    assert_eq!(decoy.requests(), 0);
}

/// Set in the child process of the test below: the issuer it must reach.
const CHILD_ISSUER: &str = "TOWER_AUTH_TEST_NATIVE_ROOTS_ISSUER";

/// SECURITY.md F18: the platform's store is trusted, not only the webpki roots. On Linux
/// rustls-native-certs reads the store named by `SSL_CERT_FILE` (where an operator's CA is
/// installed); the store is read once per process, so the check runs in a child process of
/// this test binary, given the test CA as its whole store, and once more without it.
#[tokio::test]
async fn the_platforms_certificate_store_is_trusted() {
    if let Ok(issuer) = std::env::var(CHILD_ISSUER) {
        let config = OidcConfig::builder()
            .issuer(IssuerConfig::new(&issuer, AUDIENCE))
            .build()
            .unwrap();
        let oidc = OidcAuthenticator::start(config, Admins::default())
            .await
            .unwrap();
        let status = oidc.issuer_status(&issuer).unwrap();
        assert!(status.available, "{status:?}");
        return;
    }
    let ca = TestCa::new();
    let idp = TestIdp::start_tls(&[&SigningKey::ec("tls-1")], &ca).await;
    let dir = tempfile::tempdir().unwrap();
    let store = ca.write_ca_file(dir.path(), "store.pem");
    let child = |store: Option<&std::path::Path>| {
        let mut command = std::process::Command::new(std::env::current_exe().unwrap());
        command
            .args(["the_platforms_certificate_store_is_trusted", "--exact"])
            .env(CHILD_ISSUER, idp.issuer())
            .env_remove("SSL_CERT_DIR")
            .env_remove("SSL_CERT_FILE");
        if let Some(store) = store {
            command.env("SSL_CERT_FILE", store);
        }
        // Blocking on the child in a blocking thread: this runtime keeps serving the IdP.
        tokio::task::spawn_blocking(move || command.output().unwrap())
    };
    let trusted = child(Some(&store)).await.unwrap();
    assert!(
        trusted.status.success(),
        "{}",
        String::from_utf8_lossy(&trusted.stdout)
    );
    let requests = idp.requests();
    assert!(requests >= 2, "discovery and keys: {requests}");
    let untrusted = child(None).await.unwrap();
    assert!(!untrusted.status.success());
    assert_eq!(idp.requests(), requests);
}
