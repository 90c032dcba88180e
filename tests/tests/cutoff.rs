//! Cutting off every token of a subject ("tokens of S issued up to now are invalid"), for
//! OIDC and HMAC alike, through a real server on loopback: by an admin at
//! `POST /auth/revoke` (`subject=S`, `issuer=...`), checked by the layer after
//! authentication (cached OIDC identities too), and kept across a restart in the revocation
//! file. Time is a manual clock; nothing sleeps.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use auth_tests::idp::{AUDIENCE, NOW, SigningKey, TestIdp};
use auth_tests::{CapturedLogs, KEY_A, KEY_B, get, send_body};
use axum::Router;
use axum::routing::get as get_route;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::Method;
use serde_json::json;
use tower_auth::{AuthLayer, Identity};
use tower_auth_core::{Admins, ApiKeyAuthenticator, ApiKeySet, Clock, sha256_digest};
use tower_auth_hmac::{
    ExchangeEndpoint, HmacAuthenticator, HmacConfig, REVOKE_PATH, RevocationList, TokenClients,
};
use tower_auth_oidc::{IssuerConfig, OidcAuthenticator, OidcConfig};

const HMAC_SECRET: &str = "Kd8Wq2Rv6Tn1Xc9Mb4Hs7Jf3Lp5Gz0Ya-subject-cutoff";
const AGENT_SECRET: &str = "registration-secret-of-the-metrics-agent";
const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

/// Two OIDC issuers and the HMAC issuer, all on one manual clock.
struct World {
    clock: Clock,
    key: SigningKey,
    idp_a: TestIdp,
    idp_b: TestIdp,
    hmac: HmacConfig,
}

impl World {
    async fn new() -> Self {
        let key = SigningKey::rsa("a", 0);
        let idp_a = TestIdp::start(&[&key]).await;
        let idp_b = TestIdp::start(&[&key]).await;
        let clock = Clock::manual(NOW);
        let hmac = HmacConfig::builder(HMAC_SECRET)
            .clock(clock.clone())
            .build()
            .unwrap();
        Self {
            clock,
            key,
            idp_a,
            idp_b,
            hmac,
        }
    }

    /// An OIDC token of `idp` for `sub`, issued now by the manual clock.
    fn oidc(&self, idp: &TestIdp, sub: &str) -> String {
        let now = self.clock.now_unix();
        idp.token_with(&self.key, |c| {
            c["sub"] = json!(sub);
            c["iat"] = json!(now);
            c["exp"] = json!(now + 3600);
        })
    }

    /// A role token for `sub`, issued now by the manual clock.
    fn role_token(&self, sub: &str) -> String {
        self.hmac
            .mint(sub, ["metrics"], Duration::from_secs(3600), None)
            .unwrap()
    }

    /// A layer (API keys, both OIDC issuers, HMAC) checking `list`'s cut-offs, serving
    /// `/whoami` and the revocation endpoint writing `list`.
    async fn serve(&self, list: &RevocationList) -> SocketAddr {
        let keys = ApiKeySet::parse(
            "API_KEYS",
            &format!(
                r#"[{{"name":"ops-admin","key":"{KEY_A}","roles":["admin"]}},{{"name":"viewer","key":"{KEY_B}"}}]"#
            ),
            &Admins::default(),
        )
        .unwrap();
        let oidc = OidcConfig::builder()
            .issuer(IssuerConfig::new(self.idp_a.issuer(), AUDIENCE))
            .issuer(IssuerConfig::new(self.idp_b.issuer(), AUDIENCE))
            .build()
            .unwrap()
            .with_clock(self.clock.clone());
        let oidc = OidcAuthenticator::start(oidc, Admins::default())
            .await
            .unwrap();
        let hmac = HmacAuthenticator::new(self.hmac.clone(), Admins::default())
            .revocation_list(list.clone());
        let digest = hex::encode(sha256_digest(AGENT_SECRET.as_bytes()));
        let clients = TokenClients::parse(
            "AUTH_TOKEN_CLIENTS",
            &format!(r#"[{{"client_id":"agent","secret_sha256":"{digest}","roles":["metrics"]}}]"#),
        )
        .unwrap();
        let revoke = ExchangeEndpoint::builder(self.hmac.clone(), clients)
            .build()
            .unwrap()
            .revocation_endpoint(list.clone());
        let layer = AuthLayer::builder(ApiKeyAuthenticator::new(keys))
            .or(Arc::new(oidc))
            .or(hmac)
            // Clients revoking with Basic credentials reach the endpoint.
            .exempt(REVOKE_PATH)
            .subject_cutoffs(list.clone())
            .build()
            .unwrap();
        assert!(layer.revocations().is_some());
        let router = Router::new()
            .route(
                "/whoami",
                get_route(|identity: Identity| async move { identity.subject().to_owned() }),
            )
            .merge(revoke.router())
            .layer(layer);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router.into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }
}

async fn status(server: SocketAddr, token: &str) -> u16 {
    get(
        server,
        "/whoami",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await
    .status
}

/// `POST /auth/revoke` with `body`, as the API key `key` (`None`: as the client `agent`).
async fn revoke(server: SocketAddr, key: Option<&str>, body: &str) -> auth_tests::Reply {
    let basic;
    let auth = match key {
        Some(key) => ("x-api-key", key),
        None => {
            basic = format!("Basic {}", STANDARD.encode(format!("agent:{AGENT_SECRET}")));
            ("authorization", basic.as_str())
        }
    };
    send_body(server, Method::POST, REVOKE_PATH, &[FORM, auth], body).await
}

/// SECURITY.md S10, S11, S13, S19.
#[tokio::test]
async fn an_admin_cuts_off_a_subject_of_one_issuer_cached_tokens_included() {
    let (logs, _guard) = CapturedLogs::start();
    let world = World::new().await;
    let list = RevocationList::new(world.clock.clone());
    let server = world.serve(&list).await;
    let role = world.role_token("alice");
    let from_a = world.oidc(&world.idp_a, "alice");
    let from_b = world.oidc(&world.idp_b, "alice");
    let bob = world.role_token("bob");
    for token in [&role, &from_a, &from_b, &bob] {
        assert_eq!(status(server, token).await, 200);
    }

    // `subject` alone: the HMAC subject of this endpoint's issuer.
    let reply = revoke(server, Some(KEY_A), "subject=alice").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let refused = get(
        server,
        "/whoami",
        &[("authorization", &format!("Bearer {role}"))],
    )
    .await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.body, r#"{"error":"invalid_token"}"#);
    assert_eq!(status(server, &from_a).await, 200, "OIDC alice is another");
    assert_eq!(status(server, &bob).await, 200);

    // With `issuer`: that OIDC issuer's subject; its token was cached by the request above.
    let body = format!("subject=alice&issuer={}", world.idp_a.issuer());
    assert_eq!(revoke(server, Some(KEY_A), &body).await.status, 200);
    assert_eq!(
        status(server, &from_a).await,
        401,
        "the cached identity too"
    );
    assert_eq!(
        status(server, &from_b).await,
        200,
        "alice of another issuer"
    );

    // The cut-off covers its own second and, for issuers' clocks running ahead, the 60 s
    // of the default leeway (SECURITY.md S19); tokens stamped after that work.
    assert_eq!(status(server, &world.role_token("alice")).await, 401);
    world.clock.advance(Duration::from_secs(60));
    assert_eq!(status(server, &world.role_token("alice")).await, 401);
    world.clock.advance(Duration::from_secs(1));
    assert_eq!(status(server, &world.role_token("alice")).await, 200);
    assert_eq!(
        status(server, &world.oidc(&world.idp_a, "alice")).await,
        200
    );
    assert_eq!(
        status(server, &role).await,
        401,
        "the old ones stay refused"
    );
    assert_eq!(list.cut_off_subjects(), 2);

    let text = logs.text();
    assert!(text.contains("subject_revoked"), "{text}");
    assert!(
        text.contains("subject_revoked") && text.contains("ops-admin"),
        "{text}"
    );
}

/// SECURITY.md S14.
#[tokio::test]
async fn only_an_admin_may_cut_off_a_subject_and_only_in_one_form() {
    let world = World::new().await;
    let list = RevocationList::new(world.clock.clone());
    let server = world.serve(&list).await;
    let bob = world.role_token("bob");
    // An identity without role admin: 403, as for a token.
    let reply = revoke(server, Some(KEY_B), "subject=bob").await;
    assert_eq!(reply.status, 403, "{reply:?}");
    assert_eq!(reply.body, r#"{"error":"insufficient_scope"}"#);
    // A registered client: it may revoke only tokens issued to it.
    let reply = revoke(server, None, "subject=bob").await;
    assert_eq!(reply.status, 400, "{reply:?}");
    assert_eq!(reply.body, r#"{"error":"unauthorized_client"}"#);
    // A token and a subject at once, an empty subject, an issuer alone, a repeated subject.
    for body in [
        format!("token={bob}&subject=bob"),
        "subject=".to_owned(),
        "subject=bob&issuer=".to_owned(),
        "issuer=https%3A%2F%2Fidp.example".to_owned(),
        "subject=bob&subject=eve".to_owned(),
    ] {
        let reply = revoke(server, Some(KEY_A), &body).await;
        assert_eq!(reply.status, 400, "{body}: {reply:?}");
        assert_eq!(reply.body, r#"{"error":"invalid_request"}"#);
    }
    assert_eq!(status(server, &bob).await, 200, "nothing was cut off");
    assert_eq!(list.cut_off_subjects(), 0);
}

fn read(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// SECURITY.md S16.
#[tokio::test]
async fn a_cut_off_survives_a_restart_with_the_revocation_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("revoked.json");
    let world = World::new().await;
    let list = RevocationList::open(&path, world.clock.clone()).unwrap();
    let server = world.serve(&list).await;
    let role = world.role_token("alice");
    let from_a = world.oidc(&world.idp_a, "alice");
    assert_eq!(
        revoke(server, Some(KEY_A), "subject=alice").await.status,
        200
    );
    let body = format!("subject=alice&issuer={}", world.idp_a.issuer());
    assert_eq!(revoke(server, Some(KEY_A), &body).await.status, 200);
    let cutoffs = read(&path)["cutoffs"].clone();
    assert_eq!(cutoffs.as_array().unwrap().len(), 2, "{cutoffs}");
    assert_eq!(cutoffs[0]["method"], "hmac");
    assert_eq!(cutoffs[0]["sub"], "alice");
    assert_eq!(cutoffs[0]["before"], NOW + 1 + 60, "the default leeway");

    // A restart: a new list from the file, a new layer, an empty token cache.
    world.clock.advance(Duration::from_secs(61));
    let reopened = RevocationList::open(&path, world.clock.clone()).unwrap();
    assert_eq!(reopened.cut_off_subjects(), 2);
    let restarted = world.serve(&reopened).await;
    assert_eq!(status(restarted, &role).await, 401);
    assert_eq!(status(restarted, &from_a).await, 401);
    assert_eq!(status(restarted, &world.role_token("alice")).await, 200);
    assert_eq!(
        status(restarted, &world.oidc(&world.idp_b, "alice")).await,
        200
    );
}
