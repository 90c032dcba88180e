//! `API_KEYS_FILE`: rotation by editing the file, with time controlled by Tokio's paused clock.

use std::path::PathBuf;
use std::time::Duration;

use auth_tests::{KEY_A, KEY_B, config, get, serve};

const POLL: Duration = Duration::from_secs(5);

struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, content: &str) -> Self {
        let path = std::env::temp_dir().join(format!("auth-tests-{}-{name}", std::process::id()));
        std::fs::write(&path, content).unwrap();
        Self(path)
    }

    fn write(&self, content: &str) {
        std::fs::write(&self.0, content).unwrap();
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Lets more than one poll interval pass on the paused clock.
async fn next_poll() {
    tokio::time::sleep(POLL + Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn editing_the_file_rotates_keys() {
    let file = TempFile::new("rotate", &format!("{KEY_A},{KEY_B}"));
    let auth = config(&[("API_KEYS_FILE", file.0.to_str().unwrap())])
        .key_file_poll_interval(POLL)
        .build_blocking()
        .unwrap();
    let addr = serve(auth_examples::router(auth)).await;
    let status =
        |key: &'static str| async move { get(addr, "/whoami", &[("x-api-key", key)]).await.status };

    // Both keys valid during the rotation window.
    assert_eq!((status(KEY_A).await, status(KEY_B).await), (200, 200));

    // The old key is removed.
    file.write(KEY_B);
    next_poll().await;
    assert_eq!((status(KEY_A).await, status(KEY_B).await), (401, 200));

    // A broken file keeps the keys in force rather than locking everyone out.
    file.write("too-short");
    next_poll().await;
    assert_eq!(status(KEY_B).await, 200);
    file.write("[{\"name\":");
    next_poll().await;
    assert_eq!(status(KEY_B).await, 200);

    // A good file is taken again.
    file.write(&format!(r#"[{{"name":"new","key":"{KEY_A}"}}]"#));
    next_poll().await;
    assert_eq!((status(KEY_A).await, status(KEY_B).await), (200, 401));
}

#[tokio::test]
async fn a_bad_file_refuses_to_start() {
    let file = TempFile::new("bad", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    let vars = [("API_KEYS_FILE", file.0.to_str().unwrap())];
    let vars: std::collections::HashMap<_, _> = vars.into_iter().collect();
    let error = tower_auth::AuthConfig::from_lookup("", |n| vars.get(n).map(|v| (*v).to_owned()))
        .unwrap_err();
    assert_eq!(error.variable(), "API_KEYS_FILE");
    assert!(error.message().contains("key #1"), "{error}");
}
