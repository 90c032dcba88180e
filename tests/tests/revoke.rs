//! `POST /auth/revoke` (RFC 7009) served beside `/auth/token` by a layer configured from the
//! environment, through a real server on loopback: revocation by the client a token was
//! issued to (Basic or form credentials) or by an admin, refused at once by the layer, kept
//! across a restart in `AUTH_REVOCATION_FILE`, and audited.

use std::net::SocketAddr;
use std::path::Path;

use auth_tests::{CapturedLogs, KEY_A, KEY_B, Reply, config, get, send_body};
use axum::Router;
use axum::routing::get as get_route;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::Method;
use tower_auth::{AuthConfig, AuthLayer, Identity};
use tower_auth_core::{Fingerprint, sha256_digest};

const HMAC_SECRET: &str = "Vq7Lz2Rk9Tw4Xb8Nc3Hm6Jp1Sd5Gf0Ya-revocation";
const AGENT_SECRET: &str = "registration-secret-of-the-metrics-agent";
const OTHER_SECRET: &str = "registration-secret-of-the-backup-agent";
const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

fn clients() -> String {
    let digest = |secret: &str| hex::encode(sha256_digest(secret.as_bytes()));
    format!(
        r#"[{{"client_id":"agent","secret_sha256":"{}","roles":["metrics"]}},
            {{"client_id":"other","secret_sha256":"{}","roles":["backup"]}}]"#,
        digest(AGENT_SECRET),
        digest(OTHER_SECRET)
    )
}

fn keys() -> String {
    format!(
        r#"[{{"name":"ops-admin","key":"{KEY_A}","roles":["admin"]}},{{"name":"viewer","key":"{KEY_B}"}}]"#
    )
}

/// The layer from these variables plus the HMAC secret, the two clients and the two keys.
async fn layer(extra: &[(&str, &str)]) -> AuthLayer {
    let (clients, keys) = (clients(), keys());
    let mut vars = vec![
        ("HMAC_SECRET", HMAC_SECRET),
        ("AUTH_TOKEN_CLIENTS", clients.as_str()),
        ("API_KEYS", keys.as_str()),
    ];
    vars.extend_from_slice(extra);
    config(&vars).build().await.unwrap()
}

/// Serves `/whoami` behind `auth` with both endpoints inside it, with peer addresses.
async fn serve(auth: AuthLayer) -> SocketAddr {
    let router = Router::new()
        .route(
            "/whoami",
            get_route(|identity: Identity| async move { identity.subject().to_owned() }),
        )
        .merge(auth.exchange_endpoint().unwrap().clone().router())
        .merge(auth.revocation_endpoint().unwrap().clone().router())
        .layer(auth);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn token(server: SocketAddr, client: &str, secret: &str) -> String {
    let reply = send_body(
        server,
        Method::POST,
        "/auth/token",
        &[("content-type", "application/json")],
        &format!(r#"{{"client_id":"{client}","credential":"{secret}"}}"#),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// A server from the default configuration, and a token issued there to `agent`.
async fn agent_with_token() -> (SocketAddr, String) {
    let server = serve(layer(&[]).await).await;
    let token = token(server, "agent", AGENT_SECRET).await;
    (server, token)
}

fn basic(client: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{client}:{secret}")))
}

async fn revoke(server: SocketAddr, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut all = vec![FORM];
    all.extend_from_slice(headers);
    send_body(server, Method::POST, "/auth/revoke", &all, body).await
}

/// Revokes `token` as `client`, with HTTP Basic.
async fn revoke_as(server: SocketAddr, client: &str, secret: &str, token: &str) -> Reply {
    let authorization = basic(client, secret);
    revoke(
        server,
        &[("authorization", &authorization)],
        &format!("token={token}"),
    )
    .await
}

async fn whoami(server: SocketAddr, token: &str) -> u16 {
    get(
        server,
        "/whoami",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await
    .status
}

/// SECURITY.md R1.
#[tokio::test]
async fn a_token_revoked_with_basic_credentials_is_refused_at_once() {
    let (server, token) = agent_with_token().await;
    assert_eq!(whoami(server, &token).await, 200);
    let reply = revoke(
        server,
        &[("authorization", &basic("agent", AGENT_SECRET))],
        &format!("token={token}&token_type_hint=access_token"),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(whoami(server, &token).await, 401);
    // A token issued later to the same client is not affected.
    let fresh = self::token(server, "agent", AGENT_SECRET).await;
    assert_eq!(whoami(server, &fresh).await, 200);
}

/// SECURITY.md R1.
#[tokio::test]
async fn a_token_revoked_with_form_credentials_is_refused_at_once() {
    let (server, token) = agent_with_token().await;
    let body = format!("token={token}&client_id=agent&client_secret={AGENT_SECRET}");
    assert_eq!(revoke(server, &[], &body).await.status, 200);
    assert_eq!(whoami(server, &token).await, 401);
}

/// SECURITY.md R2.
#[tokio::test]
async fn a_wrong_secret_is_invalid_client_and_counts_in_the_exchange_limiter() {
    let (server, token) = agent_with_token().await;
    let body = format!("token={token}");
    for _ in 0..4 {
        let reply = revoke(
            server,
            &[("authorization", &basic("agent", "wrong"))],
            &body,
        )
        .await;
        assert_eq!(reply.status, 401);
        assert_eq!(reply.body, r#"{"error":"invalid_client"}"#);
        assert!(
            reply
                .header("www-authenticate")
                .is_some_and(|c| c.starts_with("Basic realm=")),
            "{reply:?}"
        );
    }
    // The fifth failure, at the exchange: the same limiter, the same (client, source) pair.
    let wrong_exchange = send_body(
        server,
        Method::POST,
        "/auth/token",
        &[("content-type", "application/json")],
        r#"{"client_id":"agent","credential":"wrong"}"#,
    )
    .await;
    assert_eq!(wrong_exchange.status, 401);
    let reply = revoke(
        server,
        &[("authorization", &basic("agent", AGENT_SECRET))],
        &body,
    )
    .await;
    assert_eq!(reply.status, 429, "{reply:?}");
    assert!(reply.header("retry-after").is_some());
    assert_eq!(whoami(server, &token).await, 200, "nothing was revoked");
    // An unknown client is answered as a wrong secret is.
    let reply = revoke(server, &[("authorization", &basic("nobody", "x"))], &body).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body, r#"{"error":"invalid_client"}"#);
}

/// SECURITY.md R4.
#[tokio::test]
async fn a_client_cannot_revoke_another_clients_token() {
    let (server, token) = agent_with_token().await;
    let reply = revoke_as(server, "other", OTHER_SECRET, &token).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body, r#"{"error":"unauthorized_client"}"#);
    assert_eq!(whoami(server, &token).await, 200, "the token keeps working");
}

/// SECURITY.md R5.
#[tokio::test]
async fn an_admin_revokes_any_role_token_and_no_one_else_by_identity() {
    let (server, token) = agent_with_token().await;
    let body = format!("token={token}");
    // An identity without role admin.
    let reply = revoke(server, &[("x-api-key", KEY_B)], &body).await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.body, r#"{"error":"insufficient_scope"}"#);
    // A bearer credential the layer did not accept.
    let reply = revoke(
        server,
        &[("authorization", "Bearer not-a-credential")],
        &body,
    )
    .await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body, r#"{"error":"invalid_token"}"#);
    assert_eq!(whoami(server, &token).await, 200);
    // The admin, with a bearer credential the layer authenticated.
    let reply = revoke(
        server,
        &[("authorization", &format!("Bearer {KEY_A}"))],
        &body,
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(whoami(server, &token).await, 401);
    // And with the API-key header, the other client's token.
    let backup = self::token(server, "other", OTHER_SECRET).await;
    let reply = revoke(server, &[("x-api-key", KEY_A)], &format!("token={backup}")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(whoami(server, &backup).await, 401);
}

/// SECURITY.md R6.
#[tokio::test]
async fn unknown_invalid_and_foreign_tokens_get_200_and_change_nothing() {
    let auth = layer(&[]).await;
    let revocations = auth.revocation_endpoint().unwrap().revocations().clone();
    let server = serve(auth).await;
    let token = token(server, "agent", AGENT_SECRET).await;
    let foreign = tower_auth_hmac::HmacConfig::builder("Pz4Kq8Wm2Rt6Yv1Xc5Bn9Lj3Hg7Fd0Sa-another")
        .build()
        .unwrap()
        .mint(
            "agent",
            ["metrics"],
            std::time::Duration::from_secs(60),
            None,
        )
        .unwrap();
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    let auth = basic("agent", AGENT_SECRET);
    for garbage in ["garbage", "a.b.c", foreign.as_str(), tampered.as_str()] {
        let reply = revoke(
            server,
            &[("authorization", &auth)],
            &format!("token={garbage}"),
        )
        .await;
        assert_eq!(reply.status, 200, "{garbage}: {reply:?}");
        assert_eq!(reply.body, "");
    }
    assert!(revocations.is_empty());
    assert_eq!(whoami(server, &token).await, 200);
}

/// SECURITY.md R3.
#[tokio::test]
async fn malformed_requests_are_refused_before_anything_is_revoked() {
    let (server, token) = agent_with_token().await;
    let auth = basic("agent", AGENT_SECRET);
    let reply = get(server, "/auth/revoke", &[]).await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("POST"));
    let token_body = format!("token={token}");
    let both_ways = format!("token={token}&client_id=agent&client_secret={AGENT_SECRET}");
    let twice = format!("token={token}&token={token}");
    let cases: [(&str, Headers<'_>, &str); 6] = [
        (
            "no token",
            vec![("authorization", &auth)],
            "token_type_hint=access_token",
        ),
        ("empty token", vec![("authorization", &auth)], "token="),
        ("repeated token", vec![("authorization", &auth)], &twice),
        ("Basic and form", vec![("authorization", &auth)], &both_ways),
        (
            "malformed Basic",
            vec![("authorization", "Basic !!!")],
            &token_body,
        ),
        ("id without secret", vec![], "client_id=agent&token=x"),
    ];
    for (case, headers, body) in cases {
        let reply = revoke(server, &headers, body).await;
        assert_eq!(reply.status, 400, "{case}: {reply:?}");
        assert_eq!(reply.body, r#"{"error":"invalid_request"}"#, "{case}");
    }
    let json = send_body(
        server,
        Method::POST,
        "/auth/revoke",
        &[
            ("content-type", "application/json"),
            ("authorization", &auth),
        ],
        &format!(r#"{{"token":"{token}"}}"#),
    )
    .await;
    assert_eq!(json.status, 400);
    let huge = format!("token={}", "x".repeat(5000));
    assert_eq!(
        revoke(server, &[("authorization", &auth)], &huge)
            .await
            .status,
        400
    );
    let reply = revoke(server, &[], &token_body).await;
    assert_eq!(reply.status, 401, "no client authentication");
    assert_eq!(reply.body, r#"{"error":"invalid_client"}"#);
    assert!(reply.header("www-authenticate").is_some());
    assert_eq!(whoami(server, &token).await, 200);
}

/// Request headers as `(name, value)` pairs.
type Headers<'a> = Vec<(&'a str, &'a str)>;

fn file_jtis(path: &Path) -> Vec<String> {
    let document: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    document["revoked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["jti"].as_str().unwrap().to_owned())
        .collect()
}

/// SECURITY.md R7.
#[tokio::test]
async fn revocations_survive_a_restart_and_expired_entries_leave_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("revoked.json");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Left by an earlier run: one entry long expired, one still live.
    std::fs::write(
        &path,
        format!(
            r#"{{"revoked":[{{"jti":"expired","sub":"agent","until":{}}},{{"jti":"live","sub":"agent","until":{}}}]}}"#,
            now - 3600,
            now + 3600
        ),
    )
    .unwrap();
    let file = [("AUTH_REVOCATION_FILE", path.to_str().unwrap())];
    let auth = layer(&file).await;
    let list = auth.revocation_endpoint().unwrap().revocations().clone();
    assert!(list.is_revoked("live") && !list.is_revoked("expired"));
    let server = serve(auth).await;
    let token = token(server, "agent", AGENT_SECRET).await;
    let reply = revoke_as(server, "agent", AGENT_SECRET, &token).await;
    assert_eq!(reply.status, 200);
    let jtis = file_jtis(&path);
    assert_eq!(jtis.len(), 2, "{jtis:?}");
    assert!(jtis.contains(&"live".to_owned()) && !jtis.contains(&"expired".to_owned()));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(&token) && !text.contains(AGENT_SECRET) && !text.contains(HMAC_SECRET));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A restart: a new layer from the same configuration, on a new server.
    let restarted = serve(layer(&file).await).await;
    assert_eq!(whoami(restarted, &token).await, 401);
    let other = self::token(restarted, "agent", AGENT_SECRET).await;
    assert_eq!(whoami(restarted, &other).await, 200);
}

/// SECURITY.md R7.
#[tokio::test]
async fn a_revocation_file_that_cannot_be_written_is_a_500_and_the_revocation_holds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("revoked.json");
    // Where the temporary file would go stands a directory: no write can succeed.
    std::fs::create_dir(dir.path().join(".revoked.json.tmp")).unwrap();
    let server = serve(layer(&[("AUTH_REVOCATION_FILE", path.to_str().unwrap())]).await).await;
    let token = token(server, "agent", AGENT_SECRET).await;
    let reply = revoke_as(server, "agent", AGENT_SECRET, &token).await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.body, r#"{"error":"server_error"}"#);
    assert!(!path.exists());
    assert_eq!(
        whoami(server, &token).await,
        401,
        "revoked in memory all the same"
    );
}

/// SECURITY.md R8.
#[test]
fn an_unusable_revocation_file_refuses_start_up_naming_variable_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("revoked.json");
    std::fs::write(&path, r#"{"revoked":[{"jti":1}]}"#).unwrap();
    let path = path.to_str().unwrap().to_owned();
    let error = AuthConfig::from_lookup("APP_", |name| match name {
        "APP_HMAC_SECRET" => Some(HMAC_SECRET.to_owned()),
        "APP_AUTH_REVOCATION_FILE" => Some(path.clone()),
        _ => None,
    })
    .unwrap_err();
    assert_eq!(error.variable(), "APP_AUTH_REVOCATION_FILE");
    assert!(error.to_string().contains(&path), "{error}");
}

/// SECURITY.md R9.
#[tokio::test(flavor = "current_thread")]
async fn every_revocation_is_an_audit_event_without_the_token() {
    let (logs, _guard) = CapturedLogs::start();
    let (server, token) = agent_with_token().await;
    let long_id = "i".repeat(200);
    let reply = revoke_as(server, &long_id, "wrong", &token).await;
    assert_eq!(reply.status, 401);
    let reply = revoke_as(server, "agent", AGENT_SECRET, &token).await;
    assert_eq!(reply.status, 200);
    let admin_revoked = self::token(server, "agent", AGENT_SECRET).await;
    let reply = revoke(
        server,
        &[("x-api-key", KEY_A)],
        &format!("token={admin_revoked}"),
    )
    .await;
    assert_eq!(reply.status, 200);

    let text = logs.text();
    let events: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("event=\"token_revoked\""))
        .collect();
    assert_eq!(events.len(), 2, "{text}");
    let by_client = events[0];
    let fingerprint = Fingerprint::of(token.as_bytes()).to_string();
    assert!(by_client.contains(" INFO auth::audit: "), "{by_client}");
    assert!(
        by_client.contains(&format!("fingerprint={fingerprint}")),
        "{by_client}"
    );
    assert!(by_client.contains("sub=agent"), "{by_client}");
    assert!(by_client.contains("client_id=\"agent\""), "{by_client}");
    assert!(by_client.contains("jti="), "{by_client}");
    let by_admin = events[1];
    assert!(by_admin.contains("admin=\"ops-admin\""), "{by_admin}");
    assert!(
        by_admin.contains(&Fingerprint::of(admin_revoked.as_bytes()).to_string()),
        "{by_admin}"
    );
    // The failed attempt is logged with the client id capped, never in full.
    let failed = text
        .lines()
        .find(|line| line.contains("token_revocation_failed"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(!failed.contains(&long_id), "{failed}");
    for secret in [
        token.as_str(),
        admin_revoked.as_str(),
        AGENT_SECRET,
        KEY_A,
        HMAC_SECRET,
    ] {
        assert!(!text.contains(secret), "a secret in the log");
    }
}

/// SECURITY.md R11: an application that serves the exchange but not the revocation endpoint
/// (as before it existed) keeps `/auth/revoke` protected, whatever answers there.
#[tokio::test]
async fn an_endpoint_the_application_does_not_serve_is_not_exempt() {
    let auth = layer(&[]).await;
    assert!(!auth.exemptions().iter().any(|p| p == "/auth/revoke"));
    let router = Router::new()
        .merge(auth.exchange_endpoint().unwrap().clone().router())
        .fallback(|| async { "the application's fallback" })
        .layer(auth.clone());
    let server = auth_tests::serve(router).await;
    let reply = get(server, "/auth/revoke", &[]).await;
    assert_eq!(reply.status, 401, "{reply:?}");
    assert_eq!(get(server, "/elsewhere", &[]).await.status, 401);
    // The exchange it took is exempt: no credential of the layer's is needed to call it.
    let reply = send_body(
        server,
        Method::POST,
        "/auth/token",
        &[("content-type", "application/json")],
        r#"{"client_id":"nobody","credential":"x"}"#,
    )
    .await;
    assert_eq!(reply.status, 401);
    assert!(reply.body.contains("invalid_client"), "{reply:?}");
    let mut exempt = auth.exemptions();
    exempt.retain(|p| p.starts_with("/auth/"));
    assert_eq!(exempt, ["/auth/token"]);
}

/// SECURITY.md B15: with `AUTH_COOKIE`, an admin's credential in the token cookie, which a
/// browser also sends with a cross-site form POST, acts for no one at the revocation endpoint.
#[tokio::test]
async fn an_admin_token_in_the_cookie_revokes_nothing() {
    let server = serve(layer(&[("AUTH_COOKIE", "session")]).await).await;
    let token = token(server, "agent", AGENT_SECRET).await;
    let cookie = format!("session={KEY_A}");
    // The cookie authenticates an ordinary request.
    assert_eq!(
        get(server, "/whoami", &[("cookie", &cookie)]).await.status,
        200
    );
    let reply = revoke(server, &[("cookie", &cookie)], &format!("token={token}")).await;
    assert_eq!(reply.status, 401, "{reply:?}");
    let reply = revoke(server, &[("cookie", &cookie)], "subject=agent").await;
    assert_eq!(reply.status, 401, "{reply:?}");
    assert_eq!(whoami(server, &token).await, 200);
    // The same admin with a header (no browser sends one cross-site) still may.
    let reply = revoke(server, &[("x-api-key", KEY_A)], &format!("token={token}")).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(whoami(server, &token).await, 401);
}
