//! RFC 8705 against a real authorization server: panva/oidc-provider v9 with
//! `features.mTLS.certificateBoundAccessTokens` (opt-in, `INTEROP_MTLS=1`), behind a
//! TLS-terminating proxy of the test that asks for a client certificate of the test CA and
//! forwards it to the provider as a url-encoded PEM. Our client obtains a token with its
//! certificate (`tls_client_auth`); the provider binds it (`cnf["x5t#S256"]`, computed by
//! Node's crypto, must equal our thumbprint); our layer, serving HTTPS with `TlsListener`,
//! accepts it with that certificate and refuses it with another or none (SECURITY.md L1, L9).
//!
//! Needs `npm ci --prefix tests/interop` first (`tests/interop/run` does it).
#![cfg(feature = "interop")]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use auth_tests::oidc_provider::OidcProvider;
use auth_tests::pki::{ClientCert, Pki, pem_of, url_encode};
use auth_tests::{config, token_text};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tower_auth::TlsPeer;
use tower_auth::tls::TlsListener;
use tower_auth_client::{CaBundle, ClientCertificate, ClientCredentials, TokenCache};

fn server_tls(pki: &Pki) -> Arc<rustls::ServerConfig> {
    let (cert, key) = pki.server_files();
    auth_examples::tls_server_config(
        Path::new(&cert),
        Path::new(&key),
        Some(Path::new(&pki.path("ca.pem"))),
    )
    .unwrap()
}

/// A TLS-terminating proxy in front of `upstream` (plain HTTP): it asks for a client
/// certificate of the test CA and forwards it as a url-encoded PEM in `x-ssl-client-cert`, as
/// nginx's `$ssl_client_escaped_cert` does; a header of that name from the client is dropped.
async fn tls_proxy(pki: &Pki, upstream: SocketAddr) -> SocketAddr {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let forward = move |ConnectInfo(peer): ConnectInfo<TlsPeer>, request: Request| {
        let client = client.clone();
        async move {
            let (mut parts, body) = request.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            parts.uri = format!("http://{upstream}{path}").parse().unwrap();
            parts.headers.remove("x-ssl-client-cert");
            parts
                .headers
                .insert("host", upstream.to_string().parse().unwrap());
            if let Some(certificate) = &peer.certificate {
                let value = url_encode(&pem_of(certificate.der()));
                parts
                    .headers
                    .insert("x-ssl-client-cert", value.parse().unwrap());
            }
            let response = client
                .request(http::Request::from_parts(parts, Full::new(body)))
                .await
                .unwrap();
            let (parts, body) = response.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            http::Response::from_parts(parts, Body::from(body))
        }
    };
    let app = axum::Router::new()
        .fallback(forward)
        .into_make_service_with_connect_info::<TlsPeer>();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(axum::serve(TlsListener::new(listener, server_tls(pki)), app).into_future());
    addr
}

fn certificate(cert: &ClientCert) -> ClientCertificate {
    ClientCertificate::from_pem_files(Path::new(&cert.cert_file), Path::new(&cert.key_file))
        .unwrap()
}

/// `GET https://{api}/whoami` with `token`, presenting `cert` if given; the status. The
/// server's certificate is checked against the test CA (`ca`, `ca_pem`).
async fn whoami(
    (ca, ca_pem): (&CaBundle, &str),
    api: SocketAddr,
    cert: Option<&ClientCert>,
    token: &str,
) -> u16 {
    use rustls::pki_types::pem::PemObject;
    let tls = match cert {
        Some(cert) => certificate(cert).tls_config(&[ca]).unwrap(),
        None => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
                roots.add(cert.unwrap()).unwrap();
            }
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth()
        }
    };
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .build();
    let client = Client::builder(TokioExecutor::new()).build::<_, Full<Bytes>>(https);
    let request = http::Request::get(format!("https://{api}/whoami"))
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    client.request(request).await.unwrap().status().as_u16()
}

/// SECURITY.md L1, L9.
#[tokio::test]
async fn oidc_provider_binds_a_token_to_our_certificate_and_our_layer_holds_it_to_it() {
    let provider = OidcProvider::start_mtls();
    let pki = Pki::new();
    let ca_text = std::fs::read_to_string(pki.path("ca.pem")).unwrap();
    let ca = CaBundle::from_pem(ca_text.as_bytes()).unwrap();
    let (ours, other) = (
        pki.client(provider.field("mtls_client_id"), Some(&pki.ca)),
        pki.client("mallory", Some(&pki.ca)),
    );
    let proxy = tls_proxy(&pki, SocketAddr::from(([127, 0, 0, 1], provider.port))).await;
    let url = format!("https://127.0.0.1:{}/token", proxy.port());

    // Another client's certificate: the provider refuses the client (its subject differs).
    let refused = ClientCredentials::with_certificate(
        &url,
        provider.field("mtls_client_id"),
        certificate(&other),
    )
    .unwrap()
    .ca(ca.clone());
    assert!(TokenCache::start(refused).await.is_err());

    let source = ClientCredentials::with_certificate(
        &url,
        provider.field("mtls_client_id"),
        certificate(&ours),
    )
    .unwrap()
    .ca(ca.clone());
    let tokens = TokenCache::start(source).await.unwrap();
    let token = token_text(&tokens.token().await.unwrap());
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["cnf"], json!({"x5t#S256": ours.thumbprint()}));

    let oidc = json!({"issuers": [{"issuer": provider.issuer, "audience": provider.resource}]})
        .to_string();
    let layer = config(&[("OIDC_CONFIG", &oidc)]).build().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap();
    tokio::spawn(auth_examples::serve_tls(
        listener,
        server_tls(&pki),
        layer,
        std::future::pending(),
    ));
    assert_eq!(whoami((&ca, &ca_text), api, Some(&ours), &token).await, 200);
    assert_eq!(
        whoami((&ca, &ca_text), api, Some(&other), &token).await,
        401
    );
    assert_eq!(whoami((&ca, &ca_text), api, None, &token).await, 401);
}
