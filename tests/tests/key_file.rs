//! `API_KEYS_FILE`: rotation by editing the file, with time controlled by Tokio's paused clock.

use std::time::Duration;

use std::net::SocketAddr;

use auth_tests::{CapturedLogs, KEY_A, KEY_B, config, get, serve};
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

    // A broken file keeps the keys in force rather than locking everyone out (SECURITY.md K5).
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

/// The demo's router behind a layer reading `file`, polled every `POLL`.
async fn serve_file(file: &NamedTempFile) -> SocketAddr {
    let auth = config(&[("API_KEYS_FILE", file.path().to_str().unwrap())])
        .key_file_poll_interval(POLL)
        .build_blocking()
        .unwrap();
    serve(auth_examples::router(auth)).await
}

/// The statuses of `/whoami` with `KEY_A` and with `KEY_B`.
async fn statuses(addr: SocketAddr) -> (u16, u16) {
    let status =
        |key: &'static str| async move { get(addr, "/whoami", &[("x-api-key", key)]).await.status };
    (status(KEY_A).await, status(KEY_B).await)
}

/// SECURITY.md K5.
#[tokio::test(start_paused = true)]
async fn emptying_the_file_revokes_every_key() {
    let (logs, _guard) = CapturedLogs::start();
    let file = key_file(&format!("{KEY_A},{KEY_B}"));
    let addr = serve_file(&file).await;
    assert_eq!(statuses(addr).await, (200, 200));
    for empty in ["", " \n\t\n", "[]"] {
        rewrite(&file, empty);
        next_poll().await;
        assert_eq!(statuses(addr).await, (401, 401), "{empty:?}");
        // Keys come back with the file's content.
        rewrite(&file, KEY_B);
        next_poll().await;
        assert_eq!(statuses(addr).await, (401, 200));
        rewrite(&file, &format!("{KEY_A},{KEY_B}"));
        next_poll().await;
    }
    let text = logs.text();
    assert_eq!(
        text.matches("API key file is empty: no API key is accepted")
            .count(),
        2,
        "one error event per emptying, not per poll: {text}"
    );
    assert!(text.contains("API key file lists no keys"), "{text}");
    assert!(text.contains(" ERROR "), "{text}");
    assert!(!text.contains(KEY_A) && !text.contains(KEY_B), "{text}");
}

/// SECURITY.md K5.
#[tokio::test(start_paused = true)]
async fn deleting_the_file_revokes_every_key_until_it_is_back() {
    let (logs, _guard) = CapturedLogs::start();
    let file = key_file(&format!("{KEY_A},{KEY_B}"));
    let addr = serve_file(&file).await;
    assert_eq!(statuses(addr).await, (200, 200));
    std::fs::remove_file(file.path()).unwrap();
    next_poll().await;
    assert_eq!(statuses(addr).await, (401, 401));
    next_poll().await;
    assert_eq!(statuses(addr).await, (401, 401));
    let text = logs.text();
    assert_eq!(
        text.matches("API key file is gone: no API key is accepted")
            .count(),
        1,
        "{text}"
    );
    // The same content back: taken again.
    rewrite(&file, &format!("{KEY_A},{KEY_B}"));
    next_poll().await;
    assert_eq!(statuses(addr).await, (200, 200));
}

/// SECURITY.md K5.
#[tokio::test(start_paused = true)]
async fn a_malformed_file_keeps_the_keys_in_force_even_none() {
    let (logs, _guard) = CapturedLogs::start();
    let file = key_file(&format!("{KEY_A},{KEY_B}"));
    let addr = serve_file(&file).await;
    // Malformed in several ways: the last good keys stay, with an error event each.
    for bad in ["too-short", "[{\"name\":", &format!("{KEY_A},{KEY_A}")] {
        rewrite(&file, bad);
        next_poll().await;
        assert_eq!(statuses(addr).await, (200, 200), "{bad}");
    }
    let text = logs.text();
    assert_eq!(
        text.matches("API key file not reloaded; the keys in force stay")
            .count(),
        3,
        "{text}"
    );
    assert!(!text.contains(KEY_A) && !text.contains(KEY_B), "{text}");
    // After an emptying, a malformed file does not bring the old keys back.
    rewrite(&file, "");
    next_poll().await;
    rewrite(&file, &format!("{KEY_A},too-short"));
    next_poll().await;
    assert_eq!(statuses(addr).await, (401, 401));
}

/// SECURITY.md K5: at start-up an empty or missing file still refuses to start.
#[tokio::test]
async fn an_empty_or_missing_file_refuses_to_start() {
    let file = key_file("  \n");
    let missing = file.path().with_extension("missing");
    for path in [file.path(), missing.as_path()] {
        let vars = [("API_KEYS_FILE", path.to_str().unwrap())];
        let vars: std::collections::HashMap<_, _> = vars.into_iter().collect();
        let error =
            tower_auth::AuthConfig::from_lookup("", |n| vars.get(n).map(|v| (*v).to_owned()))
                .unwrap_err();
        assert_eq!(error.variable(), "API_KEYS_FILE", "{path:?}");
    }
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
