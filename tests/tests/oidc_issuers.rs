//! Several issuers at once, each with its own audience, algorithms, keys and roles claim.

use std::time::Duration;

use auth_tests::idp::{NOW, SigningKey, TestIdp, accepted, assert_refused, ready, run, warp};
use serde_json::json;
use tower_auth_core::{Admins, Clock, Outcome};
use tower_auth_oidc::{OidcAuthenticator, OidcConfig};

struct Three {
    rs: (TestIdp, SigningKey),
    es: (TestIdp, SigningKey),
    ed: (TestIdp, SigningKey),
    auth: OidcAuthenticator,
    clock: Clock,
}

async fn three() -> Three {
    let rs_key = SigningKey::rsa("rs", 0);
    let es_key = SigningKey::ec("es");
    let ed_key = SigningKey::ed25519("ed");
    let rs = TestIdp::start(&[&rs_key]).await;
    let es = TestIdp::start(&[&es_key]).await;
    let ed = TestIdp::start(&[&ed_key]).await;
    let config = OidcConfig::from_json(
        "OIDC_CONFIG",
        &json!({
            "issuers": [
                {"issuer": rs.issuer(), "audience": "orders", "algorithms": ["RS256"]},
                {"issuer": es.issuer(), "audience": ["billing"], "algorithms": ["ES256"], "roles_claim": "groups"},
                {"issuer": ed.issuer(), "audience": ["reports", "reports-v2"], "algorithms": ["EdDSA"],
                 "jwks_uri": ed.jwks_uri(), "roles_claim": "realm_access.roles"}
            ],
            "jwks_refresh_interval_secs": 600,
            "token_cache_size": 100,
            "token_cache_ttl_secs": 60,
            "leeway_secs": 30
        })
        .to_string(),
    )
    .unwrap();
    let clock = Clock::manual(NOW);
    let auth = OidcAuthenticator::start(config.with_clock(clock.clone()), Admins::default())
        .await
        .unwrap();
    Three {
        rs: (rs, rs_key),
        es: (es, es_key),
        ed: (ed, ed_key),
        auth,
        clock,
    }
}

#[tokio::test]
async fn each_issuer_accepts_its_own_tokens() {
    let t = three().await;
    assert_eq!(t.auth.issuers().count(), 3);
    let (idp, key) = &t.rs;
    let id = accepted(
        run(
            &t.auth,
            &idp.token_with(key, |c| {
                c["aud"] = json!("orders");
                c["roles"] = json!(["r1"]);
            }),
        )
        .await,
    );
    assert_eq!(id.method().to_string(), format!("oidc:{}", idp.issuer()));
    assert!(id.has_role("r1"));
    let (idp, key) = &t.es;
    let id = accepted(
        run(
            &t.auth,
            &idp.token_with(key, |c| {
                c["aud"] = json!(["x", "billing"]);
                c["groups"] = json!(["g1"]);
            }),
        )
        .await,
    );
    assert_eq!(id.method().to_string(), format!("oidc:{}", idp.issuer()));
    assert!(id.has_role("g1"));
    let (idp, key) = &t.ed;
    let id = accepted(
        run(
            &t.auth,
            &idp.token_with(key, |c| {
                c["aud"] = json!("reports-v2");
                c["realm_access"] = json!({"roles": ["rep"]});
            }),
        )
        .await,
    );
    assert!(id.has_role("rep"));
    assert_eq!(
        t.ed.0.discovery_requests(),
        0,
        "jwks_uri configured: no discovery"
    );
    assert_eq!(
        (t.rs.0.discovery_requests(), t.es.0.discovery_requests()),
        (1, 1)
    );
}

#[tokio::test]
async fn audiences_and_algorithms_are_per_issuer() {
    let t = three().await;
    let (rs, rs_key) = &t.rs;
    let (es, es_key) = &t.es;
    // Another issuer's audience.
    let token = rs.token_with(rs_key, |c| c["aud"] = json!("billing"));
    assert_eq!(assert_refused(&run(&t.auth, &token).await), "aud_mismatch");
    // ES256 is fine for B but not on A's allow-list, even signed by a key A would never have.
    let token = es_key.mint(&es_key.header(), &{
        let mut c = rs.claims("u");
        c["aud"] = json!("orders");
        c
    });
    assert_eq!(
        assert_refused(&run(&t.auth, &token).await),
        "alg_not_allowed"
    );
    // Leeway is 30 s here.
    let token = es.token_with(es_key, |c| {
        c["aud"] = json!("billing");
        c["exp"] = json!(NOW - 31);
    });
    assert_eq!(assert_refused(&run(&t.auth, &token).await), "expired");
}

/// SECURITY.md C4.
#[tokio::test]
async fn a_kid_only_another_issuer_publishes_is_unknown() {
    let t = three().await;
    warp(&t.clock, Duration::from_secs(31)).await;
    let (rs, _) = &t.rs;
    let (es, _) = &t.es;
    // A's claims under the kid `es`, which only B publishes (signed with an RSA key so that A's
    // allow-list passes and the kid alone decides).
    let signer = SigningKey::rsa("es", 1);
    let token = signer.mint(&json!({"alg": "RS256", "kid": "es"}), &{
        let mut c = rs.claims("u");
        c["aud"] = json!("orders");
        c
    });
    assert_eq!(assert_refused(&run(&t.auth, &token).await), "unknown_kid");
    assert_eq!(rs.jwks_requests(), 2, "A refetched its own JWKS once");
    assert_eq!(es.jwks_requests(), 1, "B's JWKS is never consulted for A");
}

/// SECURITY.md C3.
#[tokio::test]
async fn tokens_of_unconfigured_issuers_are_not_mine_and_fetch_nothing() {
    let t = three().await;
    let stranger = TestIdp::start(&[&SigningKey::ec("s")]).await;
    let token = stranger.token(&SigningKey::ec("s"), "u");
    assert!(matches!(ready(&t.auth, &token), Some(Outcome::NotMine)));
    assert_eq!(stranger.requests(), 0);
    assert_eq!(
        t.rs.0.requests() + t.es.0.requests() + t.ed.0.requests(),
        2 + 2 + 1
    );
}
