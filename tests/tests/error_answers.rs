//! Answers an application shapes: `AuthLayerBuilder::answer_with` and the RFC 9457
//! `application/problem+json` answers (`AUTH_PROBLEM_JSON`), end to end through the demo's
//! HTTP router and tonic server on 127.0.0.1:0. SECURITY.md B13-B14.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use auth_examples::grpc::pb::WhoAmIRequest;
use auth_examples::grpc::pb::demo_client::DemoClient;
use auth_examples::grpc::{grpc_auth, serve_grpc};
use auth_tests::{KEY_A, get, serve};
use bytes::Bytes;
use serde_json::{Value, json};
use tonic::Code;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tower_auth::{AuthConfig, AuthLayer, AuthRejection, ConfigError};

fn from(vars: &[(&str, &str)]) -> Result<AuthConfig, ConfigError> {
    AuthConfig::from_lookup("", |name| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| (*v).to_owned())
    })
}

async fn demo(layer: AuthLayer) -> SocketAddr {
    serve(auth_examples::router(layer)).await
}

async fn grpc(layer: AuthLayer) -> Channel {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_grpc(
        grpc_auth(layer),
        listener,
        std::future::pending(),
    ));
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn who_am_i(channel: &Channel, key: &str) -> Result<String, Code> {
    let mut request = tonic::Request::new(WhoAmIRequest {});
    request
        .metadata_mut()
        .insert("x-api-key", MetadataValue::try_from(key).unwrap());
    DemoClient::new(channel.clone())
        .who_am_i(request)
        .await
        .map(|r| r.into_inner().subject)
        .map_err(|status| status.code())
}

/// SECURITY.md B14: every kind gets a fixed RFC 9457 document with the usual status and
/// headers; nothing about why.
#[tokio::test]
async fn problem_json_answers_each_refusal_with_a_fixed_document() {
    let vars = [
        ("API_KEYS", KEY_A),
        ("AUTH_PROBLEM_JSON", "true"),
        ("AUTH_RESOURCE", "https://api.example.com"),
        ("AUTH_METHOD_ROLES", "/orders=orders:read"),
    ];
    let layer = from(&vars).unwrap().build().await.unwrap();
    let addr = demo(layer.clone()).await;
    let wrong = "0".repeat(64);
    for (path, headers, status, title, error) in [
        ("/whoami", &[][..], 401, "Unauthorized", "unauthorized"),
        (
            "/whoami",
            &[("x-api-key", wrong.as_str())],
            401,
            "Unauthorized",
            "invalid_token",
        ),
        (
            "/whoami",
            &[("authorization", "Bearer a b")],
            400,
            "Bad Request",
            "invalid_request",
        ),
        (
            "/orders",
            &[("x-api-key", KEY_A)],
            403,
            "Forbidden",
            "insufficient_scope",
        ),
    ] {
        let reply = get(addr, path, headers).await;
        assert_eq!(reply.status, status, "{path} {headers:?}: {reply:?}");
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        let body: Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(
            body,
            json!({"type": "about:blank", "title": title, "status": status, "error": error})
        );
        // The challenge is the standard one, with the metadata URL.
        let challenge = reply.header("www-authenticate").unwrap();
        assert!(challenge.starts_with("Bearer realm=\"api\""), "{challenge}");
        assert!(
            challenge.ends_with(
                "resource_metadata=\"https://api.example.com/.well-known/oauth-protected-resource\""
            ),
            "{challenge}"
        );
        assert!(!reply.body.contains(&wrong));
    }
    // gRPC stays gRPC.
    let channel = grpc(layer).await;
    assert_eq!(who_am_i(&channel, &wrong).await, Err(Code::Unauthenticated));
    assert!(who_am_i(&channel, KEY_A).await.is_ok());
}

/// SECURITY.md B14.
#[test]
fn auth_problem_json_must_be_a_switch() {
    for bad in ["yes", "problem", ""] {
        let error = from(&[("API_KEYS", KEY_A), ("AUTH_PROBLEM_JSON", bad)]).unwrap_err();
        assert_eq!(error.variable(), "AUTH_PROBLEM_JSON", "{bad:?}");
    }
    assert!(from(&[("API_KEYS", KEY_A), ("AUTH_PROBLEM_JSON", "false")]).is_ok());
}

/// SECURITY.md B13: the hook sees the refusal, never the credential; whatever it answers
/// keeps `no-store`, and gets the challenges and `Retry-After` it did not set itself.
#[tokio::test]
async fn an_application_hook_shapes_http_answers_only() {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let record = Arc::clone(&seen);
    let keys =
        tower_auth::ApiKeySet::parse("API_KEYS", KEY_A, &tower_auth::Admins::default()).unwrap();
    let layer = AuthLayer::builder(tower_auth::ApiKeyAuthenticator::new(keys))
        .api_key_basic(true)
        .answer_with(move |rejection: &AuthRejection<'_>| {
            record.lock().unwrap().push(format!("{rejection:?}"));
            let body = format!(
                "<h1>{} {}</h1>",
                rejection.http_status().as_u16(),
                rejection.error_name()
            );
            let mut response = http::Response::new(Bytes::from(body));
            *response.status_mut() = rejection.http_status();
            let headers = response.headers_mut();
            headers.insert("content-type", "text/html".parse().unwrap());
            // Asking for a cache is overruled.
            headers.insert("cache-control", "public, max-age=600".parse().unwrap());
            if rejection.error_code() == Some("invalid_request") {
                headers.insert(
                    "www-authenticate",
                    "Bearer realm=\"custom\"".parse().unwrap(),
                );
            }
            assert_eq!(rejection.grpc_code().as_i32(), 16);
            response
        })
        .build()
        .unwrap();
    let addr = demo(layer.clone()).await;
    let secret = "5e8848d2c4a64b1e9f0a7c3b2d1e6f4a8b9c0d7e6f5a4b3c2d1e0f9a8b7c6d5e";
    let reply = get(addr, "/whoami", &[("x-api-key", secret)]).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body, "<h1>401 invalid_token</h1>");
    assert_eq!(reply.header("content-type"), Some("text/html"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let challenges: Vec<_> = reply.headers.get_all("www-authenticate").iter().collect();
    assert_eq!(
        challenges,
        [
            r#"Bearer realm="api", error="invalid_token""#,
            r#"Basic realm="api""#
        ]
    );
    // The hook's own challenge stands.
    let reply = get(addr, "/whoami", &[("authorization", "Bearer a b")]).await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.header("www-authenticate"),
        Some(r#"Bearer realm="custom""#)
    );
    // gRPC requests never reach the hook.
    let before = seen.lock().unwrap().len();
    let channel = grpc(layer).await;
    assert_eq!(who_am_i(&channel, secret).await, Err(Code::Unauthenticated));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), before);
    assert_eq!(seen.len(), 2);
    for view in seen.iter() {
        assert!(!view.contains(secret), "{view}");
        assert!(view.starts_with("AuthRejection { kind: "), "{view}");
    }
}
