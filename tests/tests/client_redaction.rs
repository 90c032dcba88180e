//! tower-auth-client never shows a token or a secret: not in `Debug` output, not in errors, not in
//! logs at any level (hyper's and tonic's included), whatever happens.

use std::time::Duration;

use auth_examples::grpc::pb::WhoAmIRequest;
use auth_examples::grpc::pb::demo_client::DemoClient;
use auth_examples::grpc::{grpc_auth, serve_grpc};
use auth_tests::token_endpoint::TokenEndpoint;
use auth_tests::{CapturedLogs, KEY_A, config, serve};
use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{ServiceBuilder, ServiceExt};
use tower_auth_client::bearer::CloneBody;
use tower_auth_client::{
    BearerLayer, ClientAuth, ClientCredentials, StaticToken, TokenCache, TokenExchange,
};

const ID: &str = "redaction-client";
const SECRET: &str = "client-secret-6f1ed002ab5595859014ebf0951522d9";
const WRONG: &str = "wrong-secret-1f3870be274f6c49b3e31a0c6728957f";
const REGISTRATION: &str = "registration-secret-9e107d9d372bb6826bd81d3542a419d6";

/// Every way `text` could leak a secret or a token.
#[track_caller]
fn assert_clean(text: &str, tokens: &[String]) {
    let basic = base64::engine::general_purpose::STANDARD;
    for secret in [SECRET, WRONG, REGISTRATION, KEY_A] {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
        assert!(
            !text.contains(&secret[..16]),
            "part of {secret} leaked:\n{text}"
        );
        let pair = basic.encode(format!("{ID}:{secret}"));
        assert!(!text.contains(&pair), "basic credentials leaked:\n{text}");
    }
    for token in tokens {
        assert!(!text.contains(token.as_str()), "token leaked:\n{text}");
        assert!(
            !text.contains(&token[..token.len().min(20)]),
            "token prefix leaked:\n{text}"
        );
    }
}

#[tokio::test]
async fn debug_output_and_errors() {
    let endpoint = TokenEndpoint::start(&[(ID, SECRET)]).await;
    let source = ClientCredentials::new(&endpoint.token_url(), ID, SECRET)
        .unwrap()
        .auth_method(ClientAuth::Post);
    let tokens = TokenCache::start(source.clone()).await.unwrap();
    let token = tokens.token().await.unwrap();
    let value = String::from_utf8(token.secret().expose_secret().to_vec()).unwrap();
    let exchange =
        TokenExchange::new("https://api.example/auth/token", "agent", REGISTRATION).unwrap();
    let wrong =
        TokenCache::start(ClientCredentials::new(&endpoint.token_url(), ID, WRONG).unwrap())
            .await
            .unwrap_err();
    let layer = BearerLayer::new(tokens.clone());
    let service = {
        use tower_layer::Layer;
        format!(
            "{:?} {:?}",
            layer.layer("inner"),
            layer.clone().retry_unauthorized(CloneBody).layer("inner")
        )
    };

    let shown = format!(
        "{source:?} {tokens:?} {token:?} {exchange:?} {wrong:?} {wrong} {layer:?} {service} {:?} {:?}",
        StaticToken::new(KEY_A).unwrap(),
        TokenCache::new(StaticToken::new(KEY_A).unwrap()),
    );
    assert!(shown.contains("[redacted]"), "{shown}");
    assert!(shown.contains(ID), "the client id is not a secret: {shown}");
    assert_clean(&shown, &[value]);
}

#[test]
fn logs_at_every_level() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (logs, _guard) = CapturedLogs::start();
    let seen_tokens = runtime.block_on(async {
        let keys = format!(r#"[{{"name":"ci","key":"{KEY_A}"}}]"#);
        let auth = config(&[("API_KEYS", &keys)]).build_blocking().unwrap();
        let http = serve(auth_examples::router(auth.clone())).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let grpc = listener.local_addr().unwrap();
        tokio::spawn(serve_grpc(
            grpc_auth(auth),
            listener,
            std::future::pending(),
        ));
        let endpoint = TokenEndpoint::start(&[(ID, SECRET)]).await;
        endpoint.set_expires_in(Some(600));

        // Successes, with both client authentication methods.
        let mut seen = Vec::new();
        for auth in [ClientAuth::Basic, ClientAuth::Post] {
            let source = ClientCredentials::new(&endpoint.token_url(), ID, SECRET)
                .unwrap()
                .auth_method(auth);
            let tokens = TokenCache::start(source).await.unwrap();
            let token = tokens.token().await.unwrap();
            seen.push(String::from_utf8(token.secret().expose_secret().to_vec()).unwrap());
        }
        // A rejected secret.
        let err =
            TokenCache::start(ClientCredentials::new(&endpoint.token_url(), ID, WRONG).unwrap())
                .await
                .unwrap_err();
        tracing::error!(error = %err, debug = ?err, "start-up failed");

        // A failed refresh while a token is held.
        let tokens =
            TokenCache::start(ClientCredentials::new(&endpoint.token_url(), ID, SECRET).unwrap())
                .await
                .unwrap();
        seen.push(
            String::from_utf8(
                tokens
                    .token()
                    .await
                    .unwrap()
                    .secret()
                    .expose_secret()
                    .to_vec(),
            )
            .unwrap(),
        );
        endpoint.set_down(true);
        tokio::time::pause();
        tokio::time::advance(Duration::from_secs(301)).await;
        tokio::time::resume();
        tokens.token().await.unwrap();
        assert!(tokens.refresh().await.is_err());

        // Calls through the layer over hyper and tonic, a static token as the credential.
        let layer = BearerLayer::new(StaticToken::new(KEY_A).unwrap())
            .allow_origin(&format!("http://{http}"))
            .unwrap();
        let client = ServiceBuilder::new()
            .layer(layer.clone())
            .service(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());
        let request = http::Request::get(format!("http://{http}/whoami"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        assert_eq!(client.oneshot(request).await.unwrap().status(), 200);
        let channel = tonic::transport::Channel::from_shared(format!("http://{grpc}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut demo = DemoClient::new(ServiceBuilder::new().layer(layer).service(channel));
        assert_eq!(
            demo.who_am_i(WhoAmIRequest {})
                .await
                .unwrap()
                .into_inner()
                .subject,
            "ci"
        );
        seen
    });
    drop(runtime);
    let text = logs.text();
    assert!(text.contains("access token obtained"), "{text}");
    assert!(text.contains("access token fetch failed"), "{text}");
    assert!(text.contains("invalid_client"), "{text}");
    assert_clean(&text, &seen_tokens);
}
