//! Who is admin, and whose roles count, through the whole stack: two OIDC issuers (the
//! second with `roles_prefix`), API keys and role tokens in one chain, `AUTH_ADMINS` with
//! each form of entry. SECURITY.md M1-M3.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use auth_tests::idp::{SigningKey, TestIdp};
use auth_tests::{CapturedLogs, KEY_A, KEY_B, Reply, get, serve};
use axum::Router;
use axum::routing::get as route_get;
use serde_json::{Value, json};
use tower_auth::{AuthConfig, AuthLayer};
use tower_auth_core::{Clock, Identity};
use tower_auth_hmac::HmacConfig;

const SECRET: &str = "c2VjcmV0LWZvci1obWFjLXJvbGUtdG9rZW5zLWluLXRlc3Rz";
const FORBIDDEN_ADMIN: &str = r#"Bearer realm="api", error="insufficient_scope", scope="admin""#;

/// Two issuers: `corp`, and `partner`, whose roles get the prefix `partner:`.
struct Stack {
    corp: TestIdp,
    partner: TestIdp,
    key: SigningKey,
    addr: SocketAddr,
}

/// API keys `deploy` (KEY_A) and `ops` (KEY_B), both issuers, role tokens; `AUTH_ADMINS`
/// qualified throughout; `/admin` needs `admin`, `/orders` needs `orders:write`.
async fn stack() -> Stack {
    let key = SigningKey::rsa("rsa-1", 0);
    let corp = TestIdp::start(&[&key]).await;
    let partner = TestIdp::start(&[&key]).await;
    let admins = format!(
        "api_key:deploy, hmac:ops, email:boss@corp.example, {}#u-1",
        corp.issuer()
    );
    let layer = config(&vars(&corp, &partner, &admins))
        .build()
        .await
        .unwrap();
    let addr = serve(router(layer)).await;
    Stack {
        corp,
        partner,
        key,
        addr,
    }
}

fn vars(corp: &TestIdp, partner: &TestIdp, admins: &str) -> Vec<(&'static str, String)> {
    let keys = format!(r#"[{{"name":"deploy","key":"{KEY_A}"}},{{"name":"ops","key":"{KEY_B}"}}]"#);
    let oidc = json!({"issuers": [
        {"issuer": corp.issuer(), "audience": "api"},
        {"issuer": partner.issuer(), "audience": "api", "roles_prefix": "partner:"}
    ]})
    .to_string();
    vec![
        ("API_KEYS", keys),
        ("OIDC_CONFIG", oidc),
        ("HMAC_SECRET", SECRET.into()),
        ("AUTH_ADMINS", admins.into()),
    ]
}

fn config(vars: &[(&'static str, String)]) -> AuthConfig {
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    auth_tests::config(&vars)
}

fn router(layer: AuthLayer) -> Router {
    let layer = layer
        .into_builder()
        .require_any("/admin", ["admin"])
        .require_any("/orders", ["orders:write"])
        .build()
        .unwrap();
    Router::new()
        .route("/whoami", route_get(whoami))
        .route("/admin", route_get(whoami))
        .route("/orders", route_get(whoami))
        .layer(layer)
}

async fn whoami(identity: Identity) -> axum::Json<Value> {
    axum::Json(json!({"subject": identity.subject(), "roles": identity.roles()}))
}

impl Stack {
    /// A token of `idp` valid now, for subject `sub`, with `change` applied.
    fn token(&self, idp: &TestIdp, sub: &str, change: impl FnOnce(&mut Value)) -> String {
        let now = Clock::system().now_unix();
        idp.token_with(&self.key, |claims| {
            claims["sub"] = json!(sub);
            claims["iat"] = json!(now);
            claims["exp"] = json!(now + 600);
            change(claims);
        })
    }

    async fn get(&self, path: &str, token: &str) -> Reply {
        let bearer = format!("Bearer {token}");
        get(self.addr, path, &[("authorization", &bearer)]).await
    }

    async fn is_admin(&self, token: &str) -> bool {
        let reply = self.get("/admin", token).await;
        match reply.status {
            200 => true,
            403 => {
                assert_eq!(reply.header("www-authenticate"), Some(FORBIDDEN_ADMIN));
                false
            }
            _ => panic!("authentication itself failed: {reply:?}"),
        }
    }
}

fn role_token(sub: &str, roles: &[&str]) -> String {
    HmacConfig::builder(SECRET)
        .build()
        .unwrap()
        .mint(sub, roles.iter().copied(), Duration::from_secs(600), None)
        .unwrap()
}

/// SECURITY.md M1.
#[tokio::test]
async fn an_email_makes_an_admin_only_when_the_token_says_it_is_verified() {
    let s = stack().await;
    for (idp, verified, admin) in [
        (&s.corp, None, false),
        (&s.corp, Some(json!(false)), false),
        (&s.corp, Some(json!("true")), false),
        (&s.corp, Some(json!(true)), true),
        // Anyone can register the address, unverified, at the other issuer.
        (&s.partner, None, false),
        (&s.partner, Some(json!("true")), false),
    ] {
        let token = s.token(idp, "someone", |c| {
            c["email"] = json!("boss@corp.example");
            if let Some(v) = verified.clone() {
                c["email_verified"] = v;
            }
        });
        assert_eq!(
            s.is_admin(&token).await,
            admin,
            "{} email_verified {verified:?}",
            idp.issuer()
        );
    }
    // The address as a subject is not the address as an email.
    let token = s.token(&s.corp, "boss@corp.example", |_| {});
    assert!(!s.is_admin(&token).await);
}

/// SECURITY.md M2.
#[tokio::test]
async fn an_issuer_subject_entry_matches_that_issuer_only() {
    let s = stack().await;
    assert!(s.is_admin(&s.token(&s.corp, "u-1", |_| {})).await);
    assert!(!s.is_admin(&s.token(&s.partner, "u-1", |_| {})).await);
    assert!(!s.is_admin(&role_token("u-1", &[])).await);
    assert!(!s.is_admin(&s.token(&s.corp, "u-2", |_| {})).await);
}

/// SECURITY.md M2.
#[tokio::test]
async fn hmac_and_api_key_entries_match_their_method_only() {
    let s = stack().await;
    assert!(s.is_admin(&role_token("ops", &[])).await, "hmac:ops");
    assert!(s.is_admin(KEY_A).await, "api_key:deploy");
    assert!(
        !s.is_admin(KEY_B).await,
        "the key named ops is not the role-token subject ops"
    );
    assert!(!s.is_admin(&role_token("deploy", &[])).await);
    for sub in ["ops", "deploy", "hmac:ops", "api_key:deploy"] {
        assert!(!s.is_admin(&s.token(&s.corp, sub, |_| {})).await, "{sub}");
    }
}

/// SECURITY.md M3.
#[tokio::test]
async fn a_prefixed_issuers_roles_cannot_satisfy_another_issuers_rules() {
    let s = stack().await;
    let roles = |c: &mut Value| c["roles"] = json!(["orders:write", "admin"]);
    let corp = s.token(&s.corp, "alice", roles);
    assert_eq!(s.get("/orders", &corp).await.status, 200);

    let partner = s.token(&s.partner, "alice", roles);
    let reply = s.get("/orders", &partner).await;
    assert_eq!(reply.status, 403, "{reply:?}");
    assert_eq!(
        reply.header("www-authenticate"),
        Some(r#"Bearer realm="api", error="insufficient_scope", scope="orders:write""#)
    );
    assert!(
        !s.is_admin(&partner).await,
        "a token cannot name itself admin"
    );
    let reply = s.get("/whoami", &partner).await;
    let body: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(
        body["roles"],
        json!(["partner:admin", "partner:orders:write"])
    );
}

/// SECURITY.md M2.
#[tokio::test]
async fn each_unqualified_entry_is_named_in_one_warning() {
    let key = SigningKey::rsa("rsa-1", 0);
    let corp = TestIdp::start(&[&key]).await;
    let partner = TestIdp::start(&[&key]).await;
    let admins = format!(
        "ops, boss@corp.example, api_key:deploy, {}#u-1",
        corp.issuer()
    );
    let (logs, _guard) = CapturedLogs::start();
    let _layer = config(&vars(&corp, &partner, &admins))
        .build()
        .await
        .unwrap();
    let text = logs.text();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("is unqualified"))
        .collect();
    assert_eq!(warnings.len(), 2, "{text}");
    assert!(
        warnings[0].contains(r#"AUTH_ADMINS entry "boss@corp.example""#),
        "{text}"
    );
    assert!(warnings[1].contains(r#"AUTH_ADMINS entry "ops""#), "{text}");
    assert!(warnings.iter().all(|w| w.contains(" auth: ")), "{text}");

    // One method, one issuer: an unqualified entry cannot collide, and is not warned about.
    let (logs, _guard) = CapturedLogs::start();
    let keys = format!(r#"[{{"name":"ops","key":"{KEY_A}"}}]"#);
    let _layer = auth_tests::config(&[("API_KEYS", &keys), ("AUTH_ADMINS", "ops")])
        .build()
        .await
        .unwrap();
    assert!(!logs.text().contains("is unqualified"), "{}", logs.text());
}

/// SECURITY.md G1.
#[tokio::test]
async fn an_entry_naming_an_issuer_not_configured_refuses_to_start() {
    let key = SigningKey::rsa("rsa-1", 0);
    let corp = TestIdp::start(&[&key]).await;
    let partner = TestIdp::start(&[&key]).await;
    for admins in [
        format!("{}/#u-1", corp.issuer()),
        "https://elsewhere.example#u-1".into(),
    ] {
        let vars: HashMap<&str, String> = vars(&corp, &partner, &admins).into_iter().collect();
        let err = AuthConfig::from_lookup("", |name| vars.get(name).cloned()).unwrap_err();
        assert_eq!(err.variable(), "AUTH_ADMINS", "{err}");
        assert!(err.to_string().contains("does not configure"), "{err}");
    }
}
