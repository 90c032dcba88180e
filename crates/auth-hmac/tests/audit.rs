//! Audit events: revocations and exchanges are logged (target `auth`) by jti, subject and
//! client id, never with a token, a secret or a credential.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use tower::ServiceExt;
use tower_auth_core::{Admins, Clock, sha256_digest};
use tower_auth_hmac::{ExchangeEndpoint, HmacAuthenticator, HmacConfig, TokenClients};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn subscriber(captured: &Captured) -> impl tracing::Subscriber + Send + Sync {
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_target(true)
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish()
}

#[test]
fn revocation_is_audited_by_jti_and_subject() {
    let captured = Captured::default();
    let clock = Clock::manual(NOW);
    let config = HmacConfig::builder(SECRET).clock(clock).build().unwrap();
    let token = config
        .mint("deploy-bot", ["a"], Duration::from_secs(600), None)
        .unwrap();
    let jti = config.decode(&token).unwrap().jti.unwrap();
    let auth = HmacAuthenticator::new(config, Admins::default());
    tracing::subscriber::with_default(subscriber(&captured), || {
        auth.revoke_token(&token).unwrap();
    });
    let logs = captured.text();
    assert!(logs.contains(" auth: "), "target auth: {logs}");
    assert!(logs.contains("token_revoked"), "{logs}");
    assert!(logs.contains(&jti), "{logs}");
    assert!(logs.contains("deploy-bot"), "{logs}");
    assert!(!logs.contains(&token), "{logs}");
    assert!(!logs.contains(token.rsplit('.').next().unwrap()), "{logs}");
    assert!(!logs.contains(SECRET), "{logs}");
}

#[test]
fn exchange_is_audited_without_credentials_or_tokens() {
    const CREDENTIAL: &str = "agent-registration-secret-5f2b8c1e9d4a7360";
    let captured = Captured::default();
    let digest = hex::encode(sha256_digest(CREDENTIAL.as_bytes()));
    let clients = TokenClients::parse(
        "AUTH_TOKEN_CLIENTS",
        &format!(r#"[{{"client_id":"agent","secret_sha256":"{digest}","roles":["r"]}}]"#),
    )
    .unwrap();
    let config = HmacConfig::builder(SECRET).build().unwrap();
    let exchange = ExchangeEndpoint::builder(config, clients).build().unwrap();
    // The endpoint's body deadline needs Tokio's timer.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let mut issued = String::new();
    tracing::subscriber::with_default(subscriber(&captured), || {
        for credential in [CREDENTIAL, "wrong-guess-credential"] {
            let body = serde_json::json!({"client_id": "agent", "credential": credential});
            let request = http::Request::post("/auth/token")
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body.to_string())))
                .unwrap();
            let response = runtime.block_on(exchange.clone().oneshot(request)).unwrap();
            let bytes = runtime
                .block_on(response.into_body().collect())
                .unwrap()
                .to_bytes();
            let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            if let Some(token) = json["access_token"].as_str() {
                issued = token.to_owned();
            }
        }
    });
    let logs = captured.text();
    assert!(
        logs.contains("token_issued") && logs.contains("token_exchange_failed"),
        "{logs}"
    );
    assert!(logs.contains("agent"), "{logs}");
    assert!(!issued.is_empty());
    let jti = HmacConfig::builder(SECRET)
        .build()
        .unwrap()
        .decode(&issued)
        .unwrap()
        .jti
        .unwrap();
    assert!(
        logs.contains(&jti),
        "the issued jti is logged, for revocation: {logs}"
    );
    for hidden in [
        CREDENTIAL,
        "wrong-guess-credential",
        &digest,
        &issued,
        SECRET,
    ] {
        assert!(!logs.contains(hidden), "{hidden} in {logs}");
    }
}

/// SECURITY.md V4.
/// A flood of wrong secrets from one source writes one `token_exchange_failed` event and one
/// `token_exchange_limited` event per window, not one per request; the source's first event
/// of the next window counts the ones not written.
#[test]
fn a_refusal_flood_is_audited_once_per_window() {
    let captured = Captured::default();
    let digest = hex::encode(sha256_digest(b"agent-registration-secret-5f2b8c1e9d4a7360"));
    let clients = TokenClients::parse(
        "AUTH_TOKEN_CLIENTS",
        &format!(r#"[{{"client_id":"agent","secret_sha256":"{digest}","roles":["r"]}}]"#),
    )
    .unwrap();
    let clock = Clock::manual(NOW);
    let config = HmacConfig::builder(SECRET)
        .clock(clock.clone())
        .build()
        .unwrap();
    let exchange = ExchangeEndpoint::builder(config, clients)
        .rate_limit(5, Duration::from_secs(60))
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let post = |n: usize| {
        let mut statuses = Vec::new();
        for _ in 0..n {
            let body = serde_json::json!({"client_id": "agent", "credential": "wrong-guess"});
            let request = http::Request::post("/auth/token")
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body.to_string())))
                .unwrap();
            let response = runtime.block_on(exchange.clone().oneshot(request)).unwrap();
            statuses.push(response.status().as_u16());
        }
        statuses
    };
    let events = |logs: &str, event: &str| {
        logs.lines()
            .filter(|line| line.contains(" auth::audit: ") && line.contains(event))
            .count()
    };
    tracing::subscriber::with_default(subscriber(&captured), || {
        let statuses = post(30);
        assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 5);
        assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 25);
    });
    let logs = captured.text();
    assert_eq!(events(&logs, "token_exchange_failed"), 1, "{logs}");
    assert_eq!(events(&logs, "token_exchange_limited"), 1, "{logs}");
    assert!(!logs.contains("wrong-guess"), "{logs}");
    // The next window: the lock-out has ended, the first refusal is written with the count
    // of the 4 failures not written in the last window.
    clock.advance(Duration::from_secs(61));
    tracing::subscriber::with_default(subscriber(&captured), || {
        assert_eq!(post(3), [401, 401, 401]);
    });
    let logs = captured.text();
    assert_eq!(events(&logs, "token_exchange_failed"), 2, "{logs}");
    let last = logs
        .lines()
        .rfind(|line| line.contains("token_exchange_failed"))
        .unwrap();
    assert!(last.contains("unlogged_before=4"), "{last}");
}
