//! The `demo` binary, run as a user (or a deployment that copies it) would: which mode it
//! picks from the environment, and where its demo secrets are printed.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The demo with an empty environment but for `vars`, both listeners on 127.0.0.1:0 unless
/// `vars` says otherwise.
fn demo(vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_demo"));
    command
        .env_clear()
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("GRPC_ADDR", "127.0.0.1:0")
        .envs(vars.iter().copied())
        .stdin(Stdio::null());
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The last word of the first stderr line that starts with `prefix`.
fn secret_after(lines: &[String], prefix: &str) -> String {
    let line = lines
        .iter()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no banner line starting with {prefix:?}"));
    line.split_whitespace().last().unwrap().to_owned()
}

/// SECURITY.md D3.
#[test]
fn demo_secrets_go_to_the_terminal_and_never_to_the_log() {
    let mut child = Running(
        demo(&[])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = child.0.stderr.take().unwrap();
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    // The banner, up to its last gRPC line. A bound on the wait so that a demo that never
    // prints fails the test instead of hanging it; nothing sleeps.
    let mut banner = Vec::new();
    loop {
        match lines.recv_timeout(Duration::from_secs(120)) {
            Ok(line) => {
                let last = line.contains("demo.v1.Demo/AdminPing # OK");
                banner.push(line);
                if last {
                    break;
                }
            }
            Err(e) => {
                panic!(
                    "the demo printed no whole banner on stderr ({e}); it printed {} lines",
                    banner.len()
                );
            }
        }
    }
    let user = secret_after(&banner, "  API key demo ");
    let admin = banner
        .iter()
        .find(|l| l.starts_with("  API key demo-admin "))
        .and_then(|l| l.split_whitespace().nth(3))
        .unwrap()
        .to_owned();
    let client_secret = secret_after(&banner, "  token client demo-client, secret ");
    let role_token = banner
        .iter()
        .skip_while(|l| !l.starts_with("  role token"))
        .nth(1)
        .unwrap()
        .trim()
        .to_owned();
    for secret in [&user, &admin, &client_secret] {
        assert_eq!(secret.len(), 64, "a generated 32-byte hex secret");
    }
    assert_eq!(role_token.split('.').count(), 3, "a JWT");

    // The printed key is the one the demo accepts.
    let http = banner
        .iter()
        .find_map(|l| l.strip_prefix("  curl -i http://"))
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();
    let status = get_whoami(&http, &user);
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let status = get_whoami(&http, "wrong");
    assert!(status.starts_with("HTTP/1.1 401"), "{status}");

    child.0.kill().unwrap();
    let mut stdout = Vec::new();
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    let stdout = text(&stdout);
    assert!(stdout.contains("demo listening"), "the log is on stdout");
    for (what, secret) in [
        ("API key demo", &user),
        ("API key demo-admin", &admin),
        ("client secret", &client_secret),
        ("role token", &role_token),
    ] {
        assert!(
            !stdout.contains(secret.as_str()),
            "the {what} is in the log"
        );
    }
    assert!(!stdout.contains("API key"), "the banner is in the log");
}

/// A child process killed when the test ends, passed or failed.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET /whoami` with `X-API-Key: key` over a plain HTTP/1.1 connection: the status line.
fn get_whoami(addr: &str, key: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET /whoami HTTP/1.1\r\nHost: demo\r\nX-API-Key: {key}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response.lines().next().unwrap_or_default().to_owned()
}

/// SECURITY.md D2.
#[test]
fn demo_mode_refuses_to_listen_beyond_loopback() {
    for (variable, addr) in [("BIND_ADDR", "0.0.0.0:0"), ("GRPC_ADDR", "[::]:0")] {
        let output = demo(&[(variable, addr)]).output().unwrap();
        let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
        assert!(!output.status.success(), "{variable}={addr} started");
        assert!(
            stderr.contains(&format!("{variable}={addr}")) && stderr.contains("not a loopback"),
            "{stderr}"
        );
        assert!(!stderr.contains("API key") && !stdout.contains("API key"));
    }
}

/// SECURITY.md D1.
#[test]
fn one_or_a_misspelt_variable_is_no_demo() {
    // Misspelt: configured from the environment, which configures no method: refused.
    let output = demo(&[("AUTH_MODEE", "api_key")]).output().unwrap();
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(!output.status.success());
    assert!(
        stderr.contains("AUTH_MODEE") && stderr.contains("no authentication method"),
        "{stderr}"
    );
    assert!(!stderr.contains("API key") && !stdout.contains("API key"));

    // Only the token clients: the configuration refuses them without HMAC_SECRET.
    let clients = r#"[{"client_id":"ci","secret_sha256":"0000000000000000000000000000000000000000000000000000000000000000","roles":["r"]}]"#;
    let output = demo(&[("AUTH_TOKEN_CLIENTS", clients)]).output().unwrap();
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(!output.status.success());
    assert!(
        stderr.contains("AUTH_TOKEN_CLIENTS") && stderr.contains("HMAC_SECRET"),
        "{stderr}"
    );
    assert!(!stderr.contains("API key") && !stdout.contains("API key"));

    // On an address beyond loopback, a configured demo is the deployment's choice.
    let output = demo(&[("BIND_ADDR", "0.0.0.0:0"), ("AUTH_MODE", "api_key")])
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("AUTH_MODE") && !stderr.contains("loopback"),
        "{stderr}"
    );
}
