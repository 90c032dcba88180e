//! The `auth-token` binary, run as a user would.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use tower_auth_core::sha256_digest;
use tower_auth_hmac::HmacConfig;

const SECRET: &str = "k7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA-cli";

fn auth_token() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_auth-token"));
    for name in [
        "HMAC_SECRET",
        "HMAC_SECRET_PREVIOUS",
        "HMAC_ISSUER",
        "HMAC_AUDIENCE",
        "AUTH_LEEWAY_SECS",
        "AUTH_TOKEN_SECRET_INPUT",
    ] {
        command.env_remove(name);
    }
    command
}

fn run(command: &mut Command) -> (Output, String, String) {
    let output = command.output().unwrap();
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    (output, stdout, stderr)
}

/// `command` run with `input` on its standard input.
fn run_with_input(command: &mut Command, input: &str) -> (Output, String, String) {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A refused command exits without reading: a broken pipe here is no failure.
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    (output, stdout, stderr)
}

/// `auth-token decode` with `HMAC_SECRET=secret` and the token on standard input.
fn decode(secret: &str, token: &str) -> (Output, String, String) {
    run_with_input(
        auth_token().env("HMAC_SECRET", secret).arg("decode"),
        &format!("{token}\n"),
    )
}

fn mint(args: &[&str]) -> String {
    let (output, stdout, stderr) = run(auth_token()
        .env("HMAC_SECRET", SECRET)
        .arg("mint")
        .args(args));
    assert!(output.status.success(), "{stderr}");
    stdout.trim_end().to_owned()
}

#[test]
fn mint_then_verify() {
    let token = mint(&[
        "--sub",
        "ops",
        "--role",
        "runtime.health:read",
        "--role",
        "x",
        "--ttl",
        "1h",
        "--aud",
        "metrics",
    ]);
    let metrics = HmacConfig::builder(SECRET)
        .audience("metrics")
        .build()
        .unwrap();
    let claims = metrics.decode(&token).unwrap();
    assert_eq!(claims.sub, "ops");
    assert_eq!(claims.roles, ["runtime.health:read", "x"]);
    assert_eq!(claims.exp - claims.iat.unwrap(), 3600);

    let token = mint(&["--sub", "ci", "--ttl", "90"]);
    let claims = HmacConfig::builder(SECRET)
        .build()
        .unwrap()
        .decode(&token)
        .unwrap();
    assert_eq!(claims.exp - claims.iat.unwrap(), 90);
    assert!(claims.roles.is_empty());
}

#[test]
fn mint_honours_the_issuer_variable() {
    let (output, stdout, _) = run(auth_token()
        .env("HMAC_SECRET", SECRET)
        .env("HMAC_ISSUER", "ops-tokens")
        .args(["mint", "--sub", "ops"]));
    assert!(output.status.success());
    let (output, stdout, _) = run_with_input(
        auth_token()
            .env("HMAC_SECRET", SECRET)
            .env("HMAC_ISSUER", "ops-tokens")
            .arg("decode"),
        &stdout,
    );
    assert!(output.status.success());
    assert!(stdout.contains(r#""iss": "ops-tokens""#), "{stdout}");
}

#[test]
fn decode_says_valid_expired_or_invalid() {
    let token = mint(&["--sub", "ops", "--role", "r", "--ttl", "1s"]);
    let (output, stdout, _) = decode(SECRET, &token);
    assert!(output.status.success());
    assert!(stdout.starts_with("status: valid\n"), "{stdout}");
    let json: serde_json::Value = serde_json::from_str(stdout.split_once('\n').unwrap().1).unwrap();
    assert_eq!(json["sub"], "ops");
    assert_eq!(json["roles"], serde_json::json!(["r"]));

    // Expired: past exp and the leeway, without sleeping: a zero leeway and a token whose
    // exp is already behind the clock is made by hand.
    let expired = hand_made_expired_token();
    let (output, stdout, stderr) = decode(SECRET, &expired);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout.starts_with("status: expired\n"), "{stdout}");
    assert!(stdout.contains(r#""sub": "old""#), "{stdout}");
    assert!(stderr.contains("expired"), "{stderr}");

    // Invalid: another secret.
    let (output, stdout, stderr) = decode("Zr8vN2qL5xT9wK3mP7cF4hJ6sD1gB0yQ-other", &token);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout.is_empty(),
        "no unverified claims are shown: {stdout}"
    );
    assert!(
        stderr.contains("status: invalid (bad_signature)"),
        "{stderr}"
    );
    assert!(!stderr.contains(&token));
}

/// SECURITY.md D4.
#[test]
fn decode_reads_the_token_from_standard_input_never_the_command_line() {
    let token = mint(&["--sub", "ops", "--role", "r"]);
    // `-` names standard input, as no argument does.
    let (output, stdout, _) = run_with_input(
        auth_token()
            .env("HMAC_SECRET", SECRET)
            .args(["decode", "-"]),
        &token,
    );
    assert!(output.status.success());
    assert!(stdout.starts_with("status: valid\n"), "{stdout}");

    // On the command line it is refused, with why, and is not repeated.
    for args in [
        &["decode", token.as_str()][..],
        &["decode", "-", token.as_str()],
        &["decode", "--", token.as_str()],
        &[token.as_str()],
    ] {
        let (output, stdout, stderr) =
            run_with_input(auth_token().env("HMAC_SECRET", SECRET).args(args), &token);
        assert_eq!(output.status.code(), Some(2), "{}", args.len());
        assert!(stdout.is_empty());
        assert!(!stderr.contains(&token), "the token is repeated");
        if args[0] == "decode" {
            assert!(
                stderr.contains("standard input") && stderr.contains("`ps`"),
                "{stderr}"
            );
        }
    }

    // Nothing on standard input: an error, not a hang or a panic.
    let (output, _, stderr) = run(auth_token()
        .env("HMAC_SECRET", SECRET)
        .arg("decode")
        .stdin(Stdio::null()));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("no token"), "{stderr}");
}

fn hand_made_expired_token() -> String {
    use tower_auth_core::Clock;
    let clock = Clock::manual(1_000_000_000);
    tower_auth_hmac::HmacConfig::builder(SECRET)
        .clock(clock)
        .build()
        .unwrap()
        .mint("old", ["r"], std::time::Duration::from_secs(60), None)
        .unwrap()
}

#[test]
fn digest_from_stdin_or_env() {
    let expected = format!(
        "sha256:{}\n",
        hex::encode(sha256_digest(b"registration secret"))
    );
    let mut child = auth_token()
        .arg("digest")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"registration secret\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8(output.stdout).unwrap(), expected);

    let (output, stdout, _) = run(auth_token()
        .env("AUTH_TOKEN_SECRET_INPUT", "registration secret")
        .arg("digest"));
    assert!(output.status.success());
    assert_eq!(stdout, expected);

    // `-` names standard input too.
    let (output, stdout, _) = run_with_input(
        auth_token().args(["digest", "-"]),
        "registration secret\r\n",
    );
    assert!(output.status.success());
    assert_eq!(stdout, expected);

    let (output, _, stderr) = run(auth_token().arg("digest").stdin(Stdio::null()));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("empty"), "{stderr}");
}

#[test]
fn usage_errors_and_missing_secret() {
    for args in [
        &[][..],
        &["frobnicate"],
        &["mint"],
        &["mint", "--sub"],
        &["mint", "--sub", "a", "--ttl", "soon"],
        &["mint", "--sub", "a", "--secret", "x"],
        &["decode", "x", "y"],
        &["digest", "secret-on-argv"],
        &["digest", "-", "-"],
    ] {
        let (output, _, stderr) = run(auth_token().env("HMAC_SECRET", SECRET).args(args));
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("usage:"), "{stderr}");
        assert!(!stderr.contains("secret-on-argv"), "{stderr}");
    }
    let (output, _, stderr) = run(auth_token().args(["mint", "--sub", "a"]));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("HMAC_SECRET is not set"), "{stderr}");

    let (output, _, stderr) = run(auth_token()
        .env("HMAC_SECRET", "short-secret")
        .args(["mint", "--sub", "a"]));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains("HMAC_SECRET") && !stderr.contains("short-secret"),
        "{stderr}"
    );

    let (output, stdout, _) = run(auth_token().arg("--help"));
    assert!(output.status.success());
    assert!(stdout.contains("auth-token mint"));
}
