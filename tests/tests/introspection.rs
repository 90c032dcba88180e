//! SECURITY.md N1-N6: opaque access tokens judged by RFC 7662 introspection against the test
//! IdP's endpoint, directly and through the layer.
//!
//! Time is controlled: `warp` moves the wall clock and Tokio's clock together; no test sleeps.

use std::time::Duration;

use auth_tests::idp::{
    AUDIENCE, INTROSPECT_CLIENT_ID, INTROSPECT_SECRET, Introspection, NOW, SigningKey, TestIdp,
    accepted, assert_invalid, assert_unavailable, ready, run, warp,
};
use auth_tests::{KEY_A, config, get, serve};
use axum::Router;
use axum::routing::get as route_get;
use serde_json::{Value, json};
use tower_auth_core::{Admins, AuthErrorKind, Clock};
use tower_auth_oidc::{IntrospectionConfig, IssuerConfig, OidcAuthenticator, OidcConfig};

fn issuer(idp: &TestIdp) -> IssuerConfig {
    IssuerConfig::new(idp.issuer(), AUDIENCE)
        .roles_prefix("idp:")
        .introspection(IntrospectionConfig::new(
            INTROSPECT_CLIENT_ID,
            INTROSPECT_SECRET,
        ))
}

async fn start(idp: &TestIdp, issuer: IssuerConfig, clock: &Clock) -> OidcAuthenticator {
    let config = OidcConfig::builder()
        .issuer(issuer)
        .token_cache_ttl(Duration::from_secs(300))
        .connect_timeout(Duration::from_millis(500))
        .read_timeout(Duration::from_millis(500))
        .clock(clock.clone())
        .build()
        .unwrap();
    let auth = OidcAuthenticator::start(config, Admins::default())
        .await
        .unwrap();
    assert_eq!(auth.introspecting_issuer(), Some(idp.issuer()));
    auth
}

/// The claims an active token of `idp` carries.
fn claims(idp: &TestIdp, sub: &str, exp: u64) -> Value {
    json!({"iss": idp.issuer(), "sub": sub, "aud": AUDIENCE, "exp": exp,
           "scope": "orders:read orders:write", "client_id": "app", "token_type": "Bearer"})
}

async fn one(clock: &Clock) -> (TestIdp, OidcAuthenticator) {
    let idp = TestIdp::start(&[&SigningKey::rsa("a", 0)]).await;
    let auth = start(&idp, issuer(&idp), clock).await;
    (idp, auth)
}

#[tokio::test]
async fn an_active_opaque_token_is_accepted_with_scopes_as_prefixed_roles_and_cached() {
    let clock = Clock::manual(NOW);
    let (idp, auth) = one(&clock).await;
    let token = idp.opaque_token(claims(&idp, "alice", NOW + 3600));
    let identity = accepted(run(&auth, &token).await);
    assert_eq!(identity.subject(), "alice");
    assert!(identity.has_role("idp:orders:read") && identity.has_role("idp:orders:write"));
    assert!(!identity.has_role("orders:read"));
    assert_eq!(idp.introspections(), 1);
    // The second check is answered from the cache, at once.
    let again = ready(&auth, &token).expect("a cached token is decided at once");
    assert_eq!(accepted(again).subject(), "alice");
    assert_eq!(idp.introspections(), 1);
    // The endpoint came from discovery (asked once for it, once for the keys), and is kept.
    assert_eq!(idp.discovery_requests(), 2);
    let other = idp.opaque_token(claims(&idp, "bob", NOW + 3600));
    accepted(run(&auth, &other).await);
    assert_eq!((idp.discovery_requests(), idp.introspections()), (2, 2));
}

#[tokio::test]
async fn a_token_without_sub_takes_its_client_id_and_one_without_exp_lives_for_the_cache_ttl() {
    let clock = Clock::manual(NOW);
    let (idp, auth) = one(&clock).await;
    let token = idp.opaque_token(json!({"iss": idp.issuer(), "aud": [AUDIENCE, "other"],
        "client_id": "batch-job", "scope": "orders:read"}));
    let identity = accepted(run(&auth, &token).await);
    assert_eq!(identity.subject(), "batch-job");
    warp(&clock, Duration::from_secs(299)).await;
    accepted(ready(&auth, &token).unwrap());
    assert_eq!(idp.introspections(), 1);
    // Past the cache TTL the issuer is asked again.
    warp(&clock, Duration::from_secs(2)).await;
    assert!(ready(&auth, &token).is_none());
    accepted(run(&auth, &token).await);
    assert_eq!(idp.introspections(), 2);
}

/// SECURITY.md N5.
#[tokio::test]
async fn a_cached_token_is_dropped_at_its_exp_and_a_revoked_one_after_the_cache_ttl() {
    let clock = Clock::manual(NOW);
    let (idp, auth) = one(&clock).await;
    // exp in 100 s, before the 300 s TTL; the 60 s leeway applies as for JWTs.
    let token = idp.opaque_token(claims(&idp, "alice", NOW + 100));
    accepted(run(&auth, &token).await);
    warp(&clock, Duration::from_secs(159)).await;
    accepted(ready(&auth, &token).unwrap());
    warp(&clock, Duration::from_secs(1)).await;
    // No longer cached; the IdP still says active, but exp is past: refused.
    assert_eq!(assert_invalid(&run(&auth, &token).await), "not_mine");
    assert_eq!(idp.introspections(), 2);
}

/// SECURITY.md N1.
#[tokio::test]
async fn garbage_inactive_foreign_iss_and_bad_claims_are_invalid_tokens() {
    let clock = Clock::manual(NOW);
    let idp = TestIdp::start(&[&SigningKey::rsa("a", 0)]).await;
    let base = claims(&idp, "alice", NOW + 3600);
    let with = |change: &dyn Fn(&mut Value)| {
        let mut c = base.clone();
        change(&mut c);
        c
    };
    let cases: Vec<(&str, Introspection, Value, &str)> = vec![
        (
            "html",
            Introspection::Body("<html>".into()),
            base.clone(),
            "introspection_garbage",
        ),
        (
            "array",
            Introspection::Body("[]".into()),
            base.clone(),
            "introspection_garbage",
        ),
        (
            "active string",
            Introspection::Body(r#"{"active":"true"}"#.into()),
            base.clone(),
            "introspection_garbage",
        ),
        (
            "no active",
            Introspection::Body(r#"{"sub":"x"}"#.into()),
            base.clone(),
            "introspection_garbage",
        ),
        (
            "inactive",
            Introspection::Inactive,
            base.clone(),
            "inactive",
        ),
        (
            "foreign iss",
            Introspection::ForeignIss,
            base.clone(),
            "introspection_foreign_iss",
        ),
        (
            "past exp",
            Introspection::Normal,
            with(&|c| c["exp"] = json!(NOW - 61)),
            "expired",
        ),
        (
            "exp string",
            Introspection::Normal,
            with(&|c| c["exp"] = json!("soon")),
            "introspection_garbage",
        ),
        (
            "nbf ahead",
            Introspection::Normal,
            with(&|c| c["nbf"] = json!(NOW + 600)),
            "not_yet_valid",
        ),
        (
            "foreign aud",
            Introspection::Normal,
            with(&|c| c["aud"] = json!("other")),
            "aud_mismatch",
        ),
        (
            "no aud",
            Introspection::Normal,
            with(&|c| {
                c.as_object_mut().unwrap().remove("aud");
            }),
            "bad_aud",
        ),
        (
            "refresh token",
            Introspection::Normal,
            with(&|c| c["token_type"] = json!("refresh_token")),
            "introspection_not_an_access_token",
        ),
        (
            "no subject",
            Introspection::Normal,
            with(&|c| {
                let o = c.as_object_mut().unwrap();
                o.remove("sub");
                o.remove("client_id");
            }),
            "missing_sub",
        ),
        (
            "empty sub",
            Introspection::Normal,
            with(&|c| c["sub"] = json!("")),
            "introspection_garbage",
        ),
        // SECURITY.md N13: a time past the year 9999 is no time (it would overflow one).
        (
            "exp past 9999",
            Introspection::Normal,
            with(&|c| c["exp"] = json!(u64::MAX)),
            "introspection_garbage",
        ),
        (
            "iat past 9999",
            Introspection::Normal,
            with(&|c| c["iat"] = json!(1u64 << 63)),
            "introspection_garbage",
        ),
        (
            "iat ahead",
            Introspection::Normal,
            with(&|c| c["iat"] = json!(NOW + 600)),
            "issued_in_future",
        ),
        // SECURITY.md N14: refresh tokens as Ory Hydra and Keycloak name them.
        (
            "hydra refresh token",
            Introspection::Normal,
            with(&|c| {
                c.as_object_mut().unwrap().remove("token_type");
                c["token_use"] = json!("refresh_token");
            }),
            "introspection_not_an_access_token",
        ),
        (
            "keycloak refresh token",
            Introspection::Normal,
            with(&|c| {
                c.as_object_mut().unwrap().remove("token_type");
                c["typ"] = json!("Refresh");
            }),
            "introspection_not_an_access_token",
        ),
        // SECURITY.md N15: a malformed confirmation is refused as on a JWT.
        (
            "cnf not an object",
            Introspection::Normal,
            with(&|c| c["cnf"] = json!("jkt")),
            "malformed_cnf",
        ),
    ];
    for (name, mode, claims, reason) in cases {
        let auth = start(&idp, issuer(&idp), &clock).await;
        idp.set_introspection(mode);
        let token = idp.opaque_token(claims);
        // What a request gets: not claimed, so 401 invalid_token from the chain.
        assert_eq!(
            assert_invalid(&run(&auth, &token).await),
            "not_mine",
            "{name}"
        );
        // The reason, as the exchange sees it.
        let error = auth.introspect(idp.issuer(), &token).await.unwrap_err();
        assert_eq!(
            (error.kind(), error.reason()),
            (AuthErrorKind::InvalidToken, reason),
            "{name}"
        );
        idp.set_introspection(Introspection::Normal);
    }
}

/// SECURITY.md N2.
#[tokio::test]
async fn an_unreachable_endpoint_is_503_with_retry_after_and_not_cached() {
    let clock = Clock::manual(NOW);
    let (idp, auth) = one(&clock).await;
    let token = idp.opaque_token(claims(&idp, "alice", NOW + 3600));
    idp.set_introspection(Introspection::Down);
    let retry = assert_unavailable(&run(&auth, &token).await);
    assert_eq!(retry, Duration::from_secs(7));
    idp.set_introspection(Introspection::Normal);
    accepted(run(&auth, &token).await);
    assert_eq!(idp.introspections(), 2);
    // Our own credentials refused: no token can be judged, 503 rather than 401.
    let wrong = start(
        &idp,
        IssuerConfig::new(idp.issuer(), AUDIENCE)
            .introspection(IntrospectionConfig::new(INTROSPECT_CLIENT_ID, "wrong")),
        &clock,
    )
    .await;
    assert_unavailable(&run(&wrong, &token).await);
    // Nothing listening.
    let gone = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}/introspect", listener.local_addr().unwrap())
    };
    let down = start(
        &idp,
        IssuerConfig::new(idp.issuer(), AUDIENCE).introspection(
            IntrospectionConfig::new(INTROSPECT_CLIENT_ID, INTROSPECT_SECRET).endpoint(gone),
        ),
        &clock,
    )
    .await;
    assert_unavailable(&run(&down, &token).await);
}

/// SECURITY.md N6.
#[tokio::test]
async fn concurrent_requests_with_one_token_make_one_call_and_refusals_are_cached_briefly() {
    let clock = Clock::manual(NOW);
    let (idp, auth) = one(&clock).await;
    let token = idp.opaque_token(claims(&idp, "alice", NOW + 3600));
    // Discovery first, so that only introspection is held.
    let warm = idp.opaque_token(claims(&idp, "bob", NOW + 3600));
    accepted(run(&auth, &warm).await);
    let before = idp.introspections();
    idp.hold();
    let checks: Vec<_> = (0..20)
        .map(|_| {
            let (auth, token) = (auth.clone(), token.clone());
            tokio::spawn(async move { run(&auth, &token).await })
        })
        .collect();
    idp.wait_for_requests(idp.requests() + 1).await;
    idp.release();
    for check in checks {
        assert_eq!(accepted(check.await.unwrap()).subject(), "alice");
    }
    assert_eq!(idp.introspections(), before + 1);
    // An unknown token: one call, then refused from the negative cache for a few seconds.
    let unknown = "opaque-but-unknown-0123456789";
    assert_invalid(&run(&auth, unknown).await);
    assert_invalid(&ready(&auth, unknown).unwrap());
    assert_eq!(idp.introspections(), before + 2);
    warp(&clock, Duration::from_secs(5)).await;
    assert!(ready(&auth, unknown).is_none());
}

/// SECURITY.md N6: new tokens beyond 64 calls in flight get 503 rather than a 65th call.
#[tokio::test]
async fn calls_in_flight_are_bounded() {
    let clock = Clock::manual(NOW);
    let (idp, auth) = one(&clock).await;
    accepted(run(&auth, &idp.opaque_token(claims(&idp, "warm", NOW + 3600))).await);
    idp.hold();
    let seen = idp.requests();
    let held: Vec<_> = (0..64)
        .map(|i| {
            let auth = auth.clone();
            let token = idp.opaque_token(claims(&idp, &format!("u{i}"), NOW + 3600));
            tokio::spawn(async move { run(&auth, &token).await })
        })
        .collect();
    idp.wait_for_requests(seen + 64).await;
    let extra = idp.opaque_token(claims(&idp, "extra", NOW + 3600));
    assert_unavailable(&run(&auth, &extra).await);
    idp.release();
    for check in held {
        accepted(check.await.unwrap());
    }
    accepted(run(&auth, &extra).await);
}

/// SECURITY.md N1: a JWT is never sent to introspection; an opaque token never to JWKS.
#[tokio::test]
async fn jwts_are_never_introspected() {
    let clock = Clock::manual(NOW);
    let key = SigningKey::rsa("a", 0);
    let idp = TestIdp::start(&[&key]).await;
    let auth = start(&idp, issuer(&idp), &clock).await;
    accepted(run(&auth, &idp.token(&key, "carol")).await);
    let foreign = idp.token_with(&key, |c| c["iss"] = json!("https://elsewhere.example"));
    assert_invalid(&run(&auth, &foreign).await);
    let error = auth.introspect(idp.issuer(), &foreign).await.unwrap_err();
    assert_eq!(error.reason(), "not_introspected");
    assert_eq!(idp.introspections(), 0);
}

/// SECURITY.md N1: through the layer, from `OIDC_CONFIG`, with API keys first in the chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layer_accepts_introspected_tokens_from_oidc_config() {
    let idp = TestIdp::start(&[&SigningKey::rsa("a", 0)]).await;
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("introspection-secret");
    std::fs::write(&secret_file, format!("{INTROSPECT_SECRET}\n")).unwrap();
    let oidc = json!({"issuers": [{"issuer": idp.issuer(), "audience": AUDIENCE,
        "introspection": {"client_id": INTROSPECT_CLIENT_ID,
                          "client_secret_file": secret_file.to_str().unwrap()}}]})
    .to_string();
    let key = KEY_A;
    let layer = config(&[
        ("AUTH_MODE", "api_key,oidc"),
        ("API_KEYS", key),
        ("OIDC_CONFIG", &oidc),
    ])
    .build()
    .await
    .unwrap();
    let app = Router::new()
        .route("/", route_get(|| async { "ok" }))
        .layer(layer);
    let addr = serve(app).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = idp.opaque_token(claims(&idp, "alice", now + 600));
    let bearer = |t: &str| format!("Bearer {t}");
    assert_eq!(
        get(addr, "/", &[("authorization", &bearer(&token))])
            .await
            .status,
        200
    );
    // An API key as a bearer token is claimed first: never sent to the IdP.
    assert_eq!(
        get(addr, "/", &[("authorization", &bearer(key))])
            .await
            .status,
        200
    );
    assert_eq!(idp.introspections(), 1);
    idp.revoke_opaque(&token);
    let unknown = idp.opaque_token(claims(&idp, "bob", now + 600));
    idp.revoke_opaque(&unknown);
    let refused = get(addr, "/", &[("authorization", &bearer(&unknown))]).await;
    assert_eq!(refused.status, 401);
    assert!(
        refused
            .header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );
    idp.set_introspection(Introspection::Down);
    let other = idp.opaque_token(claims(&idp, "dave", now + 600));
    let down = get(addr, "/", &[("authorization", &bearer(&other))]).await;
    assert_eq!(down.status, 503);
    assert_eq!(down.header("retry-after"), Some("7"));
}

/// SECURITY.md N15: the issuer's DPoP policy holds for its opaque tokens as for its JWTs:
/// under `required` an unbound token is refused; a token introspected as `DPoP` (RFC 9449
/// section 6.2) is active, with its `cnf.jkt` for the layer to ask a proof by.
#[tokio::test]
async fn the_dpop_policy_holds_for_introspected_tokens() {
    let clock = Clock::manual(NOW);
    let idp = TestIdp::start(&[&SigningKey::rsa("a", 0)]).await;
    let required = start(
        &idp,
        issuer(&idp).dpop(tower_auth_oidc::DpopPolicy::Required),
        &clock,
    )
    .await;
    let unbound = idp.opaque_token(claims(&idp, "alice", NOW + 3600));
    let error = required
        .introspect(idp.issuer(), &unbound)
        .await
        .unwrap_err();
    assert_eq!(
        (error.kind(), error.reason()),
        (AuthErrorKind::InvalidToken, "dpop_binding_required")
    );
    let mut bound_claims = claims(&idp, "alice", NOW + 3600);
    bound_claims["token_type"] = json!("DPoP");
    bound_claims["cnf"] = json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"});
    let bound = idp.opaque_token(bound_claims);
    let identity = required.introspect(idp.issuer(), &bound).await.unwrap();
    assert_eq!(identity.subject(), "alice");
    assert_eq!(
        identity.claims().unwrap()["cnf"]["jkt"],
        "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
    );
}

/// SECURITY.md N17: with `oidc` before `api_key` and an introspecting issuer, start-up warns
/// once that bearer API keys would reach the IdP; in the default order it does not.
#[tokio::test]
async fn oidc_before_api_keys_with_introspection_is_warned_about() {
    let idp = TestIdp::start(&[&SigningKey::rsa("a", 0)]).await;
    let oidc = json!({"issuers": [{"issuer": idp.issuer(), "audience": AUDIENCE,
        "introspection": {"client_id": INTROSPECT_CLIENT_ID, "client_secret": INTROSPECT_SECRET}}]})
    .to_string();
    let warnings = |mode: &'static str| {
        let oidc = oidc.clone();
        async move {
            let (logs, _guard) = auth_tests::CapturedLogs::start();
            let _layer = config(&[
                ("AUTH_MODE", mode),
                ("API_KEYS", KEY_A),
                ("OIDC_CONFIG", &oidc),
            ])
            .build()
            .await
            .unwrap();
            let text = logs.text();
            assert!(!text.contains(KEY_A) && !text.contains(INTROSPECT_SECRET));
            text.lines()
                .filter(|l| l.contains("WARN") && l.contains("introspects opaque tokens"))
                .count()
        }
    };
    assert_eq!(warnings("oidc,api_key").await, 1);
    assert_eq!(warnings("api_key,oidc").await, 0);
    assert_eq!(warnings("oidc").await, 0);
}
