//! gRPC end to end: the demo's tonic server on 127.0.0.1:0 behind the same `AuthLayer`
//! value as its HTTP router, called by a real tonic client.

use std::net::SocketAddr;

use auth_examples::grpc::pb::demo_client::DemoClient;
use auth_examples::grpc::pb::{AdminPingRequest, WhoAmIRequest};
use auth_examples::grpc::{grpc_auth, serve_grpc};
use auth_tests::{KEY_A, KEY_B, config, get, send, serve};
use tonic::Code;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// HTTP and gRPC servers sharing one layer: `KEY_A` is `ci` (no roles), `KEY_B` is `ops` (admin).
async fn servers() -> (SocketAddr, Channel) {
    let keys = format!(
        r#"[{{"name":"ci","key":"{KEY_A}"}},{{"name":"ops","key":"{KEY_B}","roles":["admin"]}}]"#
    );
    let auth = grpc_auth(config(&[("API_KEYS", &keys)]).build_blocking().unwrap());
    let http = serve(auth_examples::router(auth.clone())).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc = listener.local_addr().unwrap();
    tokio::spawn(serve_grpc(auth, listener, std::future::pending()));
    let channel = Channel::from_shared(format!("http://{grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    (http, channel)
}

fn with(metadata: &[(&'static str, &str)]) -> tonic::Request<WhoAmIRequest> {
    let mut request = tonic::Request::new(WhoAmIRequest {});
    for (name, value) in metadata {
        request
            .metadata_mut()
            .append(*name, MetadataValue::try_from(*value).unwrap());
    }
    request
}

async fn who_am_i(channel: &Channel, metadata: &[(&'static str, &str)]) -> Result<String, Code> {
    DemoClient::new(channel.clone())
        .who_am_i(with(metadata))
        .await
        .map(|r| r.into_inner().subject)
        .map_err(|status| status.code())
}

/// A gRPC content type earns the gRPC answer only on a `POST` over HTTP/2; gRPC-Web gets
/// it with its own content type. Every refusal says `Cache-Control: no-store`.
/// SECURITY.md E7.
#[tokio::test]
async fn only_real_grpc_requests_get_the_grpc_answer() {
    let (http, _) = servers().await;
    for method in [http::Method::GET, http::Method::POST] {
        let reply = send(
            http,
            method.clone(),
            "/whoami",
            &[("content-type", "application/grpc")],
        )
        .await;
        assert_eq!(reply.status, 401, "{method} over HTTP/1.1: {reply:?}");
        assert!(reply.header("grpc-status").is_none(), "{reply:?}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(reply.header("cache-control"), Some("no-store"));
    }
    let web = "application/grpc-web+proto";
    let reply = send(
        http,
        http::Method::POST,
        "/whoami",
        &[("content-type", web)],
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("content-type"), Some(web));
    assert_eq!(reply.header("grpc-status"), Some("16"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.body, "");
}

#[tokio::test]
async fn the_exact_status_codes() {
    let (_, channel) = servers().await;
    assert_eq!(who_am_i(&channel, &[]).await, Err(Code::Unauthenticated));
    assert_eq!(
        who_am_i(&channel, &[("x-api-key", "wrong")]).await,
        Err(Code::Unauthenticated)
    );
    assert_eq!(
        who_am_i(&channel, &[("x-api-key", KEY_A)]).await,
        Ok("ci".into())
    );

    let mut demo = DemoClient::new(channel.clone());
    let admin_ping = |key: &str| {
        let mut request = tonic::Request::new(AdminPingRequest {});
        request
            .metadata_mut()
            .insert("x-api-key", key.parse().unwrap());
        request
    };
    let denied = demo.admin_ping(admin_ping(KEY_A)).await.unwrap_err();
    assert_eq!(
        denied.code(),
        Code::PermissionDenied,
        "a missing role is not UNAUTHENTICATED"
    );
    assert_eq!(denied.message(), "insufficient scope");
    assert_eq!(
        demo.admin_ping(admin_ping(KEY_B))
            .await
            .unwrap()
            .into_inner()
            .message,
        "pong, ops"
    );
}

#[tokio::test]
async fn health_check_is_public_and_watch_is_not() {
    let (_, channel) = servers().await;
    let mut health = HealthClient::new(channel);
    let check = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(check.into_inner().status, 1, "SERVING");
    let watch = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(watch.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn extraction_rules_hold_over_metadata() {
    let (_, channel) = servers().await;
    let bearer = format!("Bearer {KEY_A}");
    for ok in [
        format!("bearer {KEY_A}"),
        format!("BEARER {KEY_A}"),
        bearer.clone(),
    ] {
        assert_eq!(
            who_am_i(&channel, &[("authorization", &ok)]).await,
            Ok("ci".into()),
            "{ok}"
        );
    }
    let oversized = format!("Bearer {}", "a".repeat(8 * 1024 + 1));
    let refused: [&[(&str, &str)]; 9] = [
        &[("authorization", "Bearer")],
        &[("authorization", "Bearer a b")],
        &[("authorization", "Bearer a=b")],
        &[("authorization", &bearer), ("authorization", &bearer)],
        &[("authorization", &bearer), ("x-api-key", KEY_A)],
        &[("authorization", "Basic dXNlcjpwYXNz")],
        &[("authorization", "Bearer-xyz abc")],
        &[("authorization", &oversized)],
        &[("x-api-key", "")],
    ];
    for metadata in refused {
        assert_eq!(
            who_am_i(&channel, metadata).await,
            Err(Code::Unauthenticated),
            "{metadata:?}"
        );
    }
}

#[tokio::test]
async fn identity_metadata_from_the_client_is_stripped() {
    let (_, channel) = servers().await;
    let subject = who_am_i(
        &channel,
        &[
            ("x-api-key", KEY_A),
            ("x-auth-subject", "root"),
            ("x-forwarded-user", "root"),
        ],
    )
    .await;
    assert_eq!(subject, Ok("ci".into()));
}

#[tokio::test]
async fn one_layer_value_guards_http_and_grpc_alike() {
    let (http, channel) = servers().await;
    assert_eq!(
        get(http, "/whoami", &[("x-api-key", KEY_A)]).await.status,
        200
    );
    assert_eq!(
        who_am_i(&channel, &[("x-api-key", KEY_A)]).await,
        Ok("ci".into())
    );
    assert_eq!(
        get(http, "/whoami", &[("x-api-key", "wrong")]).await.status,
        401
    );
    assert_eq!(
        who_am_i(&channel, &[("x-api-key", "wrong")]).await,
        Err(Code::Unauthenticated)
    );
    // The gRPC service exemption does not open HTTP paths under the same prefix.
    let reflection = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
    assert_eq!(get(http, reflection, &[]).await.status, 401);
}

#[tokio::test]
async fn a_single_service_can_be_wrapped() {
    use auth_examples::grpc::DemoService;
    use auth_examples::grpc::pb::demo_server::DemoServer;
    use tower_layer::Layer;

    let auth = config(&[("API_KEYS", KEY_A)]).build_blocking().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_, health) = tonic_health::server::health_reporter();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health)
            .add_service(auth.layer(DemoServer::new(DemoService)))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    assert_eq!(who_am_i(&channel, &[]).await, Err(Code::Unauthenticated));
    assert_eq!(
        who_am_i(&channel, &[("x-api-key", KEY_A)]).await,
        Ok("key-1".into())
    );
    // Only the wrapped service is guarded.
    let watch = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await;
    assert!(watch.is_ok());
}
