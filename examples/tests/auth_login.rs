//! The `auth-login` binary, run as a person would, against the test authorization server of
//! the end-to-end tests: the test plays the browser.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use auth_tests::get;
use auth_tests::token_endpoint::TokenEndpoint;
use http::Uri;
use tower_auth_client::{Session, TokenFile};

const ID: &str = "cli";

fn auth_login(endpoint: &TokenEndpoint, file: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_auth-login"));
    command
        .env_clear()
        .env("AUTH_ISSUER", endpoint.issuer())
        .env("AUTH_CLIENT_ID", ID)
        .env("AUTH_TOKEN_FILE", file)
        .env("AUTH_REDIRECT_PORT", "0")
        .args(args)
        .stdin(Stdio::null());
    command
}

async fn output(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn addr_of(uri: &Uri) -> std::net::SocketAddr {
    uri.authority().unwrap().as_str().parse().unwrap()
}

/// `auth-login login --no-browser`, with the test following the printed URL.
async fn log_in(endpoint: &TokenEndpoint, file: &Path) -> (bool, String, String) {
    let mut child = auth_login(endpoint, file, &["login", "--no-browser"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (send, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = send.send(line.clone());
            all.push(line);
        }
        all.join("\n")
    });
    // The URL is a line of its own. A bound on the wait so that a binary that never prints
    // fails the test instead of hanging it.
    let url = tokio::task::spawn_blocking(move || {
        loop {
            let line = lines.recv_timeout(Duration::from_secs(60)).unwrap();
            if line.starts_with("http") {
                break line;
            }
        }
    })
    .await
    .unwrap();
    let url: Uri = url.parse().unwrap();
    let idp = get(addr_of(&url), url.path_and_query().unwrap().as_str(), &[]).await;
    let location: Uri = idp.header("location").unwrap().parse().unwrap();
    let page = get(
        addr_of(&location),
        location.path_and_query().unwrap().as_str(),
        &[],
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = reader.join().unwrap();
    (output.status.success(), text(&output.stdout), stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_token_status_and_logout_through_the_binary() {
    let endpoint = TokenEndpoint::start(&[(ID, "")]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let file = TokenFile::new(&path);

    let (ok, stdout, stderr) = log_in(&endpoint, &path).await;
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "", "login writes nothing to stdout");
    let session = file.load().unwrap().unwrap();
    let access = text(session.access().expose_secret());
    let refresh = text(session.refresh().unwrap().expose_secret());
    for secret in [&access, &refresh] {
        assert!(!stderr.contains(secret.as_str()), "{stderr}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    // `token`: only the token on stdout; the fresh one in the file needs no request.
    let before = endpoint.token_requests();
    let out = output(auth_login(&endpoint, &path, &["token"])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{access}\n"));
    assert_eq!(endpoint.token_requests(), before);

    // Expired: `token` refreshes, rotating the refresh token into the file.
    file.store(
        &session
            .clone()
            .expires_at(SystemTime::now() - Duration::from_secs(5)),
    )
    .unwrap();
    let out = output(auth_login(&endpoint, &path, &["token"])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let fresh = text(&out.stdout).trim_end().to_owned();
    assert_ne!(fresh, access);
    let rotated = file.load().unwrap().unwrap();
    assert_eq!(text(rotated.access().expose_secret()), fresh);
    let live_refresh = text(rotated.refresh().unwrap().expose_secret());
    assert!(!endpoint.refresh_token_live(&refresh));
    assert!(endpoint.refresh_token_live(&live_refresh));

    let out = output(auth_login(&endpoint, &path, &["status"])).await;
    let status = text(&out.stderr);
    assert!(out.status.success(), "{status}");
    assert!(
        status.contains(&format!("issuer: {}", endpoint.issuer())),
        "{status}"
    );
    assert!(status.contains("subject: ada"), "{status}");
    assert!(status.contains("expires in"), "{status}");
    assert_eq!(text(&out.stdout), "");
    assert!(!status.contains(&fresh) && !status.contains(&live_refresh));

    let out = output(auth_login(&endpoint, &path, &["logout"])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("revoked"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(endpoint.revoked(), std::slice::from_ref(&live_refresh));
    assert!(!path.exists());

    for command in ["token", "status"] {
        let out = output(auth_login(&endpoint, &path, &[command])).await;
        assert!(!out.status.success());
        assert_eq!(text(&out.stdout), "");
        assert!(
            text(&out.stderr).contains("not logged in"),
            "{}",
            text(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_on_another_device() {
    let endpoint = TokenEndpoint::start(&[(ID, "")]).await;
    // The binary's own clock runs for real: the shortest interval RFC 8628 allows.
    endpoint.set_device_interval(1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let mut child = auth_login(&endpoint, &path, &["login", "--device"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = send.send(line);
        }
    });
    let url = tokio::task::spawn_blocking(move || {
        loop {
            let line = lines.recv_timeout(Duration::from_secs(60)).unwrap();
            if line.starts_with("http") {
                break line;
            }
        }
    })
    .await
    .unwrap();
    let user_code = url.split("user_code=").nth(1).unwrap().to_owned();
    endpoint.decide_device(&user_code, true);
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(output.status.success());
    assert_eq!(text(&output.stdout), "");
    let session = TokenFile::new(&path).load().unwrap().unwrap();
    assert!(session.refresh().is_some() && session.id().is_some());
    assert!(endpoint.device_polls() >= 1);
}

/// SECURITY.md O15.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_file_of_another_issuer_is_not_used() {
    let endpoint = TokenEndpoint::start(&[(ID, "")]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let session = Session::new("https://other.example", ID, "access-of-another-issuer")
        .expires_at(SystemTime::now() + Duration::from_secs(3600));
    TokenFile::new(&path).store(&session).unwrap();
    for command in ["token", "status"] {
        let out = output(auth_login(&endpoint, &path, &[command])).await;
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{command}");
        assert_eq!(text(&out.stdout), "");
        assert!(stderr.contains("https://other.example"), "{stderr}");
        assert!(!stderr.contains("access-of-another-issuer"), "{stderr}");
    }
    assert_eq!(endpoint.token_requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_and_configuration_errors() {
    let endpoint = TokenEndpoint::start(&[(ID, "")]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let out = output(auth_login(&endpoint, &path, &["frobnicate"])).await;
    assert_eq!(out.status.code(), Some(2));
    let out = output(auth_login(&endpoint, &path, &["token", "--no-browser"])).await;
    assert_eq!(out.status.code(), Some(2));
    let mut command = auth_login(&endpoint, &path, &["status"]);
    command.env_remove("AUTH_ISSUER");
    let out = output(command).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("AUTH_ISSUER"));
}
