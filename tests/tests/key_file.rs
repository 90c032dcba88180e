//! `API_KEYS_FILE`: rotation by editing the file, with time controlled by Tokio's paused clock.

use std::time::Duration;

use auth_tests::{KEY_A, KEY_B, config, get, serve};
use tempfile::NamedTempFile;

const POLL: Duration = Duration::from_secs(5);

/// A key file holding `content`, removed when dropped.
fn key_file(content: &str) -> NamedTempFile {
    let file = tempfile::Builder::new()
        .prefix("auth-tests-keys-")
        .tempfile()
        .unwrap();
    rewrite(&file, content);
    file
}

/// Replaces the key file's content, as an operator's edit would.
fn rewrite(file: &NamedTempFile, content: &str) {
    std::fs::write(file.path(), content).unwrap();
}

/// Lets more than one poll interval pass on the paused clock.
async fn next_poll() {
    tokio::time::sleep(POLL + Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn editing_the_file_rotates_keys() {
    let file = key_file(&format!("{KEY_A},{KEY_B}"));
    let auth = config(&[("API_KEYS_FILE", file.path().to_str().unwrap())])
        .key_file_poll_interval(POLL)
        .build_blocking()
        .unwrap();
    let addr = serve(auth_examples::router(auth)).await;
    let status =
        |key: &'static str| async move { get(addr, "/whoami", &[("x-api-key", key)]).await.status };

    // Both keys valid during the rotation window.
    assert_eq!((status(KEY_A).await, status(KEY_B).await), (200, 200));

    // The old key is removed.
    rewrite(&file, KEY_B);
    next_poll().await;
    assert_eq!((status(KEY_A).await, status(KEY_B).await), (401, 200));

    // A broken file keeps the keys in force rather than locking everyone out.
    rewrite(&file, "too-short");
    next_poll().await;
    assert_eq!(status(KEY_B).await, 200);
    rewrite(&file, "[{\"name\":");
    next_poll().await;
    assert_eq!(status(KEY_B).await, 200);

    // A good file is taken again.
    rewrite(&file, &format!(r#"[{{"name":"new","key":"{KEY_A}"}}]"#));
    next_poll().await;
    assert_eq!((status(KEY_A).await, status(KEY_B).await), (200, 401));
}

#[tokio::test]
async fn a_bad_file_refuses_to_start() {
    let file = key_file("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    let vars = [("API_KEYS_FILE", file.path().to_str().unwrap())];
    let vars: std::collections::HashMap<_, _> = vars.into_iter().collect();
    let error = tower_auth::AuthConfig::from_lookup("", |n| vars.get(n).map(|v| (*v).to_owned()))
        .unwrap_err();
    assert_eq!(error.variable(), "API_KEYS_FILE");
    assert!(error.message().contains("key #1"), "{error}");
}
