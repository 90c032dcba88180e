//! Credentials never reach logs or response bodies; the fingerprint is what correlates.

use auth_tests::{CapturedLogs, KEY_A, config, get, serve};
use tower_auth_core::Fingerprint;

#[tokio::test(flavor = "current_thread")]
async fn credentials_appear_in_no_log_line_and_no_body() {
    let (logs, _guard) = CapturedLogs::start();
    let auth = config(&[("API_KEYS", KEY_A)]).build_blocking().unwrap();
    let addr = serve(auth_examples::router(auth)).await;

    let wrong_key = "4c2b7e0d9a1f3e5b8c6d2a0f7e9b1c3d5a7f9e1b3d5c7a9e0f2d4b6a8c0e1f3d";
    let wrong_bearer = format!("Bearer {wrong_key}");
    let valid_bearer = format!("Bearer {KEY_A}");
    let duplicate = [
        ("authorization", valid_bearer.as_str()),
        ("authorization", wrong_bearer.as_str()),
    ];
    let mut bodies = Vec::new();
    for headers in [
        &[("x-api-key", KEY_A)][..],
        &[("authorization", &valid_bearer)],
        &[("x-api-key", wrong_key)],
        &[("authorization", &wrong_bearer)],
        &duplicate,
        &[("authorization", &format!("{wrong_bearer} trailing"))],
    ] {
        for path in ["/whoami", "/admin", "/health"] {
            let reply = get(addr, path, headers).await;
            bodies.push(format!("{:?} {}", reply.headers, reply.body));
        }
    }

    let logs = logs.text();
    // The capture works, and records decisions with reasons and fingerprints...
    assert!(logs.contains("outcome=\"accepted\""), "{logs}");
    assert!(logs.contains("reason=\"unknown_api_key\""), "{logs}");
    assert!(
        logs.contains(&Fingerprint::of(KEY_A.as_bytes()).to_string()),
        "{logs}"
    );
    // ...but never a credential.
    for secret in [KEY_A, wrong_key] {
        assert!(!logs.contains(secret), "a credential reached the logs");
        assert!(
            !logs.contains(&secret[..16]),
            "part of a credential reached the logs"
        );
        assert!(
            bodies.iter().all(|b| !b.contains(&secret[..16])),
            "a credential reached a response"
        );
    }
}

/// A refused request's path is logged capped: 4,000 bytes of path write a fixed-size line.
/// SECURITY.md E8.
#[tokio::test(flavor = "current_thread")]
async fn a_long_path_is_logged_capped() {
    let (logs, _guard) = CapturedLogs::start();
    let auth = config(&[("API_KEYS", KEY_A)]).build_blocking().unwrap();
    let addr = serve(auth_examples::router(auth)).await;
    let path = format!("/{}", "p".repeat(3999));
    assert_eq!(get(addr, &path, &[]).await.status, 401);
    let logs = logs.text();
    let line = logs
        .lines()
        .find(|l| l.contains("outcome=\"rejected\""))
        .expect("the refusal is logged");
    assert!(line.contains("... (4000 bytes)"), "{line}");
    assert!(
        !line.contains(&"p".repeat(200)),
        "the whole path was logged"
    );
    assert!(line.len() < 400, "{} bytes: {line}", line.len());
}
