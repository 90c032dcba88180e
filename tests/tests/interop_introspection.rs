//! Interop: RFC 7662 introspection against a real provider, panva/oidc-provider v9
//! (tests/interop, started with `INTEROP_OPAQUE=1`): its client_credentials access tokens are
//! opaque, and ours must accept them through its introspection endpoint, and refuse revoked
//! and unknown ones (SECURITY.md N1).
//!
//! Needs `npm ci --prefix tests/interop` first (`tests/interop/run` does it).
#![cfg(feature = "interop")]

use auth_tests::idp::{accepted, assert_invalid, run};
use auth_tests::oidc_provider::OidcProvider;
use base64::Engine;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tower_auth_core::{Admins, AuthErrorKind};
use tower_auth_oidc::{IntrospectionConfig, IssuerConfig, OidcAuthenticator, OidcConfig};

/// POSTs `form` to the provider at `path` as the confidential client: status and body.
async fn post(provider: &OidcProvider, path: &str, form: String) -> (u16, Value) {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", provider.port))
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", provider.client_id, provider.client_secret));
    let request = Request::post(path)
        .header("host", format!("127.0.0.1:{}", provider.port))
        .header("authorization", format!("Basic {basic}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(form)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// An opaque access token for the resource, by client_credentials.
async fn token(provider: &OidcProvider) -> String {
    let form = format!(
        "grant_type=client_credentials&scope=orders%3Aread&resource={}",
        provider.resource.replace(':', "%3A")
    );
    let (status, reply) = post(provider, "/token", form).await;
    assert_eq!(status, 200, "{reply}");
    let token = reply["access_token"].as_str().unwrap().to_owned();
    assert!(!token.starts_with("eyJ"), "an opaque token: {token}");
    token
}

async fn authenticator(provider: &OidcProvider) -> OidcAuthenticator {
    let config = OidcConfig::builder()
        .issuer(
            IssuerConfig::new(&provider.issuer, &provider.resource)
                .roles_prefix("op:")
                .introspection(IntrospectionConfig::new(
                    &provider.client_id,
                    provider.client_secret.as_str(),
                )),
        )
        .build()
        .unwrap();
    OidcAuthenticator::start(config, Admins::default())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opaque_tokens_of_oidc_provider_are_accepted_by_introspection_and_revoked_ones_refused() {
    let provider = OidcProvider::start_opaque();
    let auth = authenticator(&provider).await;

    let good = token(&provider).await;
    let identity = accepted(run(&auth, &good).await);
    // A client_credentials token has no `sub`: its client_id is the subject.
    assert_eq!(identity.subject(), provider.client_id);
    assert!(identity.has_role("op:orders:read"), "{identity:?}");
    assert!(!identity.has_role("op:orders:write"));

    let revoked = token(&provider).await;
    let (status, _) = post(&provider, "/token/revocation", format!("token={revoked}")).await;
    assert_eq!(status, 200);
    assert_invalid(&run(&auth, &revoked).await);
    let error = auth
        .introspect(&provider.issuer, &revoked)
        .await
        .unwrap_err();
    assert_eq!(
        (error.kind(), error.reason()),
        (AuthErrorKind::InvalidToken, "inactive")
    );

    let unknown = "bm90LWEtdG9rZW4tb2YtdGhpcy1wcm92aWRlcg";
    assert_invalid(&run(&auth, unknown).await);
    // The good token still passes (from the cache now), and a fresh authenticator agrees.
    accepted(run(&auth, &good).await);
    accepted(run(&authenticator(&provider).await, &good).await);
}
