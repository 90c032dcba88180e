//! Certificate-bound tokens (RFC 8705 section 3; SECURITY.md L1-L6): the demo's HTTPS
//! listener asks for a client certificate of a CA the test makes, and a token whose
//! `cnf["x5t#S256"]` names a certificate is accepted only over a connection that presented
//! it; behind a TLS-terminating proxy in `AUTH_TRUSTED_PROXIES`, from the proxy's
//! `AUTH_CLIENT_CERT_HEADER`, and from no other peer.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use auth_tests::idp::{AUDIENCE, SigningKey, TestIdp};
use auth_tests::pki::{ClientCert, Pki, url_encode};
use auth_tests::{config, http1_from, serve_with_peers};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{PrivateKeyDer, ServerName};
use serde_json::json;
use tower_auth::AuthLayer;
use tower_auth_core::Clock;

/// A token of `idp` valid now by the system clock, bound to `thumbprint` when given.
fn token(idp: &TestIdp, key: &SigningKey, thumbprint: Option<&str>) -> String {
    let now = Clock::system().now_unix();
    idp.token_with(key, |claims| {
        claims["sub"] = json!("alice");
        claims["iat"] = json!(now);
        claims["exp"] = json!(now + 600);
        if let Some(thumbprint) = thumbprint {
            claims["cnf"] = json!({"x5t#S256": thumbprint});
        }
    })
}

fn oidc_config(idp: &TestIdp) -> String {
    json!({"issuers": [{"issuer": idp.issuer(), "audience": AUDIENCE}]}).to_string()
}

/// The demo's HTTPS listener (`TLS_CERT_FILE`, `TLS_KEY_FILE`, `TLS_CLIENT_CA_FILE`) with a
/// layer from these variables, on 127.0.0.1:0.
async fn serve_https(pki: &Pki, vars: &[(&str, &str)]) -> SocketAddr {
    let (cert, key) = pki.server_files();
    let ca = pki.path("ca.pem");
    let tls =
        auth_examples::tls_server_config(Path::new(&cert), Path::new(&key), Some(Path::new(&ca)))
            .unwrap();
    let layer: AuthLayer = config(vars).build().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(auth_examples::serve_tls(
        listener,
        tls,
        layer,
        std::future::pending(),
    ));
    addr
}

/// `GET /whoami` with `token` over TLS, presenting `cert` if given; the status.
async fn whoami(pki: &Pki, addr: SocketAddr, cert: Option<&ClientCert>, token: &str) -> u16 {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match cert {
        Some(cert) => builder
            .with_client_auth_cert(
                vec![cert.der.clone()],
                PrivateKeyDer::Pkcs8(cert.key_der.clone().into()),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = http::Request::get("/whoami")
        .header("host", addr.to_string())
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    if status == 401 {
        assert_eq!(&body[..], br#"{"error":"invalid_token"}"#);
    }
    status
}

/// SECURITY.md L1.
#[tokio::test]
async fn a_bound_token_is_accepted_only_with_its_certificate() {
    let pki = Pki::new();
    let (right, other) = (
        pki.client("alice", Some(&pki.ca)),
        pki.client("mallory", Some(&pki.ca)),
    );
    let key = SigningKey::ec("mtls-1");
    let idp = TestIdp::start(&[&key]).await;
    let addr = serve_https(&pki, &[("OIDC_CONFIG", &oidc_config(&idp))]).await;
    let bound = token(&idp, &key, Some(&right.thumbprint()));

    assert_eq!(whoami(&pki, addr, Some(&right), &bound).await, 200);
    // The same token again: served from the cache, the binding still compared.
    assert_eq!(whoami(&pki, addr, Some(&right), &bound).await, 200);
    assert_eq!(whoami(&pki, addr, Some(&other), &bound).await, 401);
    assert_eq!(whoami(&pki, addr, None, &bound).await, 401);
    assert_eq!(whoami(&pki, addr, Some(&right), &bound).await, 200);

    // An unbound token works with a certificate or without one.
    let unbound = token(&idp, &key, None);
    assert_eq!(whoami(&pki, addr, None, &unbound).await, 200);
    assert_eq!(whoami(&pki, addr, Some(&other), &unbound).await, 200);
}

/// SECURITY.md L2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_of_another_ca_is_no_certificate() {
    let pki = Pki::new();
    let alice = pki.client("alice", Some(&pki.ca));
    // Self-signed, with the same subject: the server asks for certificates of its CA only,
    // so the handshake fails, and no request is served over it.
    let stranger = pki.client("alice-self", None);
    let key = SigningKey::ec("mtls-2");
    let idp = TestIdp::start(&[&key]).await;
    let addr = serve_https(&pki, &[("OIDC_CONFIG", &oidc_config(&idp))]).await;
    let bound = token(&idp, &key, Some(&stranger.thumbprint()));
    let (status, code) = tokio::task::block_in_place(|| curl(&pki, addr, Some(&stranger), &bound));
    // No HTTP answer at all: curl reports the TLS alert (exit code 56, or 35 with TLS 1.2).
    assert_eq!(status, 0);
    assert_ne!(code, 0);
    assert_eq!(whoami(&pki, addr, Some(&alice), &bound).await, 401);
}

/// `curl https://127.0.0.1:PORT/whoami` with `--cacert`, and `--cert`/`--key` when given:
/// the status (0 when no response came) and curl's exit code.
fn curl(pki: &Pki, addr: SocketAddr, cert: Option<&ClientCert>, token: &str) -> (u16, i32) {
    let mut command = std::process::Command::new("curl");
    command
        .args([
            "-sS",
            "--max-time",
            "30",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg("--cacert")
        .arg(pki.path("ca.pem"))
        .args(["-H", &format!("Authorization: Bearer {token}")]);
    if let Some(cert) = cert {
        command.args(["--cert", &cert.cert_file, "--key", &cert.key_file]);
    }
    let output = command
        .arg(format!("https://{addr}/whoami"))
        .output()
        .expect("curl is installed (the CI image and the README's test setup have it)");
    let status = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    (status, output.status.code().unwrap_or(-1))
}

/// SECURITY.md L1: curl, an independent TLS client (OpenSSL), with `--cert` / `--key`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_with_the_bound_certificate_is_served_and_without_it_refused() {
    let pki = Pki::new();
    let (right, other) = (
        pki.client("alice", Some(&pki.ca)),
        pki.client("bob", Some(&pki.ca)),
    );
    let key = SigningKey::ec("mtls-3");
    let idp = TestIdp::start(&[&key]).await;
    let addr = serve_https(&pki, &[("OIDC_CONFIG", &oidc_config(&idp))]).await;
    let bound = token(&idp, &key, Some(&right.thumbprint()));
    let run = |cert: Option<&ClientCert>| {
        let (status, code) = curl(&pki, addr, cert, &bound);
        assert_eq!(code, 0, "curl failed");
        status
    };
    let statuses =
        tokio::task::block_in_place(|| [run(Some(&right)), run(Some(&other)), run(None)]);
    assert_eq!(statuses, [200, 401, 401]);
}

/// `GET /whoami` over plain HTTP from the loopback address `from`, with a bearer token and
/// `extra` headers; the status.
async fn whoami_from(
    addr: SocketAddr,
    from: [u8; 4],
    token: &str,
    extra: &[(&str, String)],
) -> u16 {
    let mut sender = http1_from(addr, from).await;
    let mut request = http::Request::get("/whoami")
        .header("host", addr.to_string())
        .header("authorization", format!("Bearer {token}"));
    for (name, value) in extra {
        request = request.header(*name, value);
    }
    let response = sender
        .send_request(request.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    response.status().as_u16()
}

/// SECURITY.md L4, L5: Envoy's `x-forwarded-client-cert` from a trusted proxy (127.0.0.2)
/// confirms the binding; the same header from another peer (127.0.0.3) is ignored.
#[tokio::test]
async fn envoy_xfcc_counts_from_a_trusted_proxy_only() {
    let pki = Pki::new();
    let alice = pki.client("alice", Some(&pki.ca));
    let key = SigningKey::ec("mtls-4");
    let idp = TestIdp::start(&[&key]).await;
    let layer = config(&[
        ("OIDC_CONFIG", &oidc_config(&idp)),
        ("AUTH_TRUSTED_PROXIES", "127.0.0.2"),
        ("AUTH_CLIENT_CERT_HEADER", "x-forwarded-client-cert"),
    ])
    .build()
    .await
    .unwrap();
    let addr = serve_with_peers(auth_examples::router(layer)).await;
    let bound = token(&idp, &key, Some(&alice.thumbprint()));
    let hash = hex::encode(tower_auth_core::sha256_digest(&alice.der));
    let by_hash = vec![(
        "x-forwarded-client-cert",
        format!("By=spiffe://cluster.local/ns/default/sa/api;Hash={hash};Subject=\"CN=alice\""),
    )];
    let by_cert = vec![(
        "x-forwarded-client-cert",
        format!("By=spiffe://api;Cert=\"{}\"", url_encode(&alice.pem())),
    )];
    assert_eq!(
        whoami_from(addr, [127, 0, 0, 2], &bound, &by_hash).await,
        200
    );
    assert_eq!(
        whoami_from(addr, [127, 0, 0, 2], &bound, &by_cert).await,
        200
    );
    assert_eq!(whoami_from(addr, [127, 0, 0, 2], &bound, &[]).await, 401);
    // A client's own element first, the proxy's (another certificate) last: refused.
    let other = pki.client("mallory", Some(&pki.ca));
    let forged = vec![(
        "x-forwarded-client-cert",
        format!(
            "Hash={hash},Hash={}",
            hex::encode(tower_auth_core::sha256_digest(&other.der))
        ),
    )];
    assert_eq!(
        whoami_from(addr, [127, 0, 0, 2], &bound, &forged).await,
        401
    );
    // Not a trusted proxy: the header is ignored.
    assert_eq!(
        whoami_from(addr, [127, 0, 0, 3], &bound, &by_hash).await,
        401
    );
    assert_eq!(
        whoami_from(addr, [127, 0, 0, 3], &bound, &by_cert).await,
        401
    );
}

/// SECURITY.md L4, L5: nginx's url-encoded PEM (`$ssl_client_escaped_cert`) in a header of
/// the operator's choosing.
#[tokio::test]
async fn nginx_escaped_pem_counts_from_a_trusted_proxy_only() {
    let pki = Pki::new();
    let alice = pki.client("alice", Some(&pki.ca));
    let key = SigningKey::ec("mtls-5");
    let idp = TestIdp::start(&[&key]).await;
    let layer = config(&[
        ("OIDC_CONFIG", &oidc_config(&idp)),
        ("AUTH_TRUSTED_PROXIES", "127.0.0.2/32"),
        ("AUTH_CLIENT_CERT_HEADER", "X-SSL-Client-Cert"),
    ])
    .build()
    .await
    .unwrap();
    let addr = serve_with_peers(auth_examples::router(layer)).await;
    let bound = token(&idp, &key, Some(&alice.thumbprint()));
    let header = vec![("x-ssl-client-cert", url_encode(&alice.pem()))];
    assert_eq!(
        whoami_from(addr, [127, 0, 0, 2], &bound, &header).await,
        200
    );
    assert_eq!(
        whoami_from(addr, [127, 0, 0, 3], &bound, &header).await,
        401
    );
    let other = pki.client("bob", Some(&pki.ca));
    let wrong = vec![("x-ssl-client-cert", url_encode(&other.pem()))];
    assert_eq!(whoami_from(addr, [127, 0, 0, 2], &bound, &wrong).await, 401);
    // The raw DER in standard base64 without PEM lines is not the format: no certificate.
    let raw = vec![(
        "x-ssl-client-cert",
        base64::engine::general_purpose::STANDARD.encode(&alice.der),
    )];
    assert_eq!(whoami_from(addr, [127, 0, 0, 2], &bound, &raw).await, 401);
}

/// SECURITY.md L7.
#[test]
fn a_client_cert_header_without_trusted_proxies_refuses_to_start() {
    let error = tower_auth::AuthConfig::from_lookup("", |name| match name {
        "API_KEYS" => Some(auth_tests::KEY_A.to_owned()),
        "AUTH_CLIENT_CERT_HEADER" => Some("x-forwarded-client-cert".to_owned()),
        _ => None,
    })
    .unwrap_err();
    assert!(
        error.to_string().contains("AUTH_CLIENT_CERT_HEADER"),
        "{error}"
    );
    let error = tower_auth::AuthConfig::from_lookup("", |name| match name {
        "API_KEYS" => Some(auth_tests::KEY_A.to_owned()),
        "AUTH_TRUSTED_PROXIES" => Some("10.0.0.1".to_owned()),
        "AUTH_CLIENT_CERT_HEADER" => Some("bad header".to_owned()),
        _ => None,
    })
    .unwrap_err();
    assert!(
        error.to_string().contains("AUTH_CLIENT_CERT_HEADER"),
        "{error}"
    );
}

/// SECURITY.md L8.
#[tokio::test(start_paused = true)]
async fn a_handshake_that_never_completes_is_closed_and_holds_up_no_one() {
    use tokio::io::AsyncReadExt;
    let pki = Pki::new();
    let (cert, key) = pki.server_files();
    let tls = auth_examples::tls_server_config(Path::new(&cert), Path::new(&key), None).unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let mut listener = tower_auth::tls::TlsListener::new(tcp, tls)
        .handshake_timeout(std::time::Duration::from_secs(10));
    let started = tokio::time::Instant::now();
    // Connects, and never says a word.
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let client = tokio::spawn(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
            .await
            .map(|_| ())
    });
    // The client that completes its handshake is yielded while the silent one waits.
    let (_stream, peer) = listener.accept().await;
    assert!(peer.certificate.is_none());
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    client.await.unwrap().unwrap();
    // The silent one is closed once its handshake time is up.
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(std::time::Duration::from_secs(60), silent.read(&mut buf))
        .await
        .expect("the silent connection is closed");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(10));
    drop(listener);
}

/// An authorization server for RFC 8705 clients, on HTTPS with the test CA: `POST /token`
/// answers a client credentials grant of `client_id` (no secret) only over a connection that
/// presented a client certificate, with an access token bound to that certificate.
async fn mtls_token_endpoint(pki: &Pki, idp: &Arc<TestIdp>, key: &Arc<SigningKey>) -> SocketAddr {
    use axum::extract::ConnectInfo;
    use tower_auth::TlsPeer;
    let (cert, server_key) = pki.server_files();
    let tls = auth_examples::tls_server_config(
        Path::new(&cert),
        Path::new(&server_key),
        Some(Path::new(&pki.path("ca.pem"))),
    )
    .unwrap();
    let (idp, key) = (Arc::clone(idp), Arc::clone(key));
    let token = move |ConnectInfo(peer): ConnectInfo<TlsPeer>, form: String| async move {
        let Some(certificate) = peer.certificate else {
            return (
                http::StatusCode::UNAUTHORIZED,
                r#"{"error":"invalid_client"}"#.to_owned(),
            );
        };
        let fields: Vec<(String, String)> = form_fields(&form);
        let has = |k: &str, v: &str| fields.iter().any(|(a, b)| a == k && b == v);
        if !has("grant_type", "client_credentials")
            || !has("client_id", "app")
            || fields.iter().any(|(k, _)| k == "client_secret")
        {
            return (
                http::StatusCode::BAD_REQUEST,
                r#"{"error":"invalid_request"}"#.to_owned(),
            );
        }
        let access = token(&idp, &key, Some(certificate.thumbprint()));
        let body = json!({"access_token": access, "token_type": "Bearer", "expires_in": 600});
        (http::StatusCode::OK, body.to_string())
    };
    let app = axum::Router::new()
        .route("/token", axum::routing::post(token))
        .into_make_service_with_connect_info::<TlsPeer>();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(axum::serve(tower_auth::tls::TlsListener::new(listener, tls), app).into_future());
    addr
}

fn form_fields(form: &str) -> Vec<(String, String)> {
    form.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.replace("%3A", ":").replace("%2F", "/")))
        .collect()
}

/// SECURITY.md L9, L1: our client (RFC 8705 `tls_client_auth`) obtains a token bound to its
/// certificate, and calls through hyper over rustls with the same certificate (200); the same
/// token from a client with another certificate is refused.
#[tokio::test]
async fn our_client_obtains_a_bound_token_with_its_certificate_and_calls_with_it() {
    use tower::{ServiceBuilder, ServiceExt};
    use tower_auth_client::{
        BearerLayer, CaBundle, ClientCertificate, ClientCredentials, TokenCache,
    };
    let pki = Pki::new();
    let (alice, bob) = (
        pki.client("alice", Some(&pki.ca)),
        pki.client("bob", Some(&pki.ca)),
    );
    let key = Arc::new(SigningKey::ec("mtls-6"));
    let idp = Arc::new(TestIdp::start(&[&key]).await);
    let token_endpoint = mtls_token_endpoint(&pki, &idp, &key).await;
    let api = serve_https(&pki, &[("OIDC_CONFIG", &oidc_config(&idp))]).await;
    let ca = CaBundle::from_pem(std::fs::read(pki.path("ca.pem")).unwrap().as_slice()).unwrap();
    let certificate = |c: &ClientCert| {
        ClientCertificate::from_pem_files(Path::new(&c.cert_file), Path::new(&c.key_file)).unwrap()
    };
    let url = format!("https://127.0.0.1:{}/token", token_endpoint.port());

    // Without a certificate the authorization server refuses the client.
    let anonymous = ClientCredentials::new(&url, "app", "not-a-secret")
        .unwrap()
        .ca(ca.clone());
    assert!(TokenCache::start(anonymous).await.is_err());

    let source = ClientCredentials::with_certificate(&url, "app", certificate(&alice))
        .unwrap()
        .ca(ca.clone());
    let tokens = TokenCache::start(source).await.unwrap();
    let call = |c: &ClientCert| {
        let tls = certificate(c).tls_config(&[&ca]).unwrap();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .build();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build::<_, Full<Bytes>>(https);
        let layer = BearerLayer::new(tokens.clone())
            .allow_origin(&format!("https://{api}"))
            .unwrap();
        let service = ServiceBuilder::new().layer(layer).service(client);
        let request = http::Request::get(format!("https://{api}/whoami"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        async move { service.oneshot(request).await.unwrap().status().as_u16() }
    };
    assert_eq!(call(&alice).await, 200);
    assert_eq!(call(&bob).await, 401);
    let bound = tokens.token().await.unwrap();
    assert_eq!(
        whoami(&pki, api, None, &auth_tests::token_text(&bound)).await,
        401
    );
    assert_eq!(certificate(&alice).thumbprint(), alice.thumbprint());
}

/// SECURITY.md L10.
#[test]
fn a_client_certificate_that_cannot_be_used_is_refused_when_made() {
    use tower_auth_client::{ClientCertError, ClientCertificate};
    let pki = Pki::new();
    let (alice, bob) = (
        pki.client("alice", Some(&pki.ca)),
        pki.client("bob", Some(&pki.ca)),
    );
    let read = |p: &str| std::fs::read(p).unwrap();
    let made = ClientCertificate::from_pem(&read(&alice.cert_file), &read(&alice.key_file));
    let shown = format!("{:?}", made.unwrap());
    assert!(
        shown.contains("[redacted]") && !shown.contains("PRIVATE"),
        "{shown}"
    );
    assert_eq!(
        ClientCertificate::from_pem(&read(&alice.cert_file), &read(&bob.key_file)).unwrap_err(),
        ClientCertError::Unusable
    );
    assert_eq!(
        ClientCertificate::from_pem(&read(&alice.key_file), &read(&alice.key_file)).unwrap_err(),
        ClientCertError::NoCertificate
    );
    assert_eq!(
        ClientCertificate::from_pem(&read(&alice.cert_file), &read(&alice.cert_file)).unwrap_err(),
        ClientCertError::NoKey
    );
    assert!(matches!(
        ClientCertificate::from_pem_files(
            Path::new("/nonexistent/c.pem"),
            Path::new(&alice.key_file)
        ),
        Err(ClientCertError::Unreadable(_))
    ));
}

/// SECURITY.md L11: from a peer in `AUTH_TRUSTED_PROXIES`, only its certificate header
/// counts; without one, the certificate on the peer's own connection (the proxy's) is no
/// client certificate.
#[tokio::test]
async fn a_trusted_proxys_own_certificate_is_not_its_clients() {
    let pki = Pki::new();
    let proxy = pki.client("alice", Some(&pki.ca));
    let key = SigningKey::ec("mtls-l11");
    let idp = TestIdp::start(&[&key]).await;
    let addr = serve_https(
        &pki,
        &[
            ("OIDC_CONFIG", &oidc_config(&idp)),
            ("AUTH_TRUSTED_PROXIES", "127.0.0.1/32"),
            ("AUTH_CLIENT_CERT_HEADER", "x-forwarded-client-cert"),
        ],
    )
    .await;
    let bound = token(&idp, &key, Some(&proxy.thumbprint()));
    assert_eq!(whoami(&pki, addr, Some(&proxy), &bound).await, 401);
    // An unbound token from the proxy is served as usual.
    let unbound = token(&idp, &key, None);
    assert_eq!(whoami(&pki, addr, Some(&proxy), &unbound).await, 200);
}
