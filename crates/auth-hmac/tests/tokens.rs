//! Minting and verifying: round trips, time, audience, rotation, revocation, roles.

mod common;

use std::time::Duration;

use common::*;
use tower_auth_core::{ADMIN_ROLE, Admins, AuthMethod, Authenticator, Clock, Credential};
use tower_auth_hmac::{
    DEFAULT_ISSUER, HmacAuthenticator, HmacConfig, HmacConfigBuilder, MintError, RevocationError,
    RoleTokenErrorKind,
};

const HOUR: Duration = Duration::from_secs(3600);

fn builder(clock: &Clock) -> HmacConfigBuilder {
    HmacConfig::builder(SECRET).clock(clock.clone())
}

fn config(clock: &Clock) -> HmacConfig {
    builder(clock).build().unwrap()
}

#[test]
fn round_trip_with_mint_and_decode() {
    let config = HmacConfig::builder(SECRET).build().unwrap();
    let token = config.mint("ops", ["a", "b"], HOUR, None).unwrap();
    let claims = config.decode(&token).unwrap();
    assert_eq!(claims.sub, "ops");
    assert_eq!(claims.roles, ["a", "b"]);
    assert_eq!(claims.iss, DEFAULT_ISSUER);
    assert!(claims.aud.is_empty());
    assert_eq!(claims.exp, claims.iat.unwrap() + 3600);
    assert_eq!(
        claims.jti.as_ref().unwrap().len(),
        22,
        "128 random bits, base64url"
    );

    let again = config.mint("ops", ["a", "b"], HOUR, None).unwrap();
    assert_ne!(
        config.decode(&again).unwrap().jti,
        claims.jti,
        "every token gets its own jti"
    );
}

#[test]
fn minted_token_shape() {
    let clock = Clock::manual(NOW);
    let token = config(&clock)
        .mint("ops", ["r"], HOUR, Some("api"))
        .unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    );
    let payload: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, parts[1])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(payload["iat"], NOW);
    assert_eq!(payload["exp"], NOW + 3600);
    assert_eq!(payload["aud"], "api");
    assert_eq!(payload["iss"], "auth-hmac");
    assert_eq!(payload["roles"], serde_json::json!(["r"]));
}

#[test]
fn secrets_shorter_than_32_bytes_are_refused() {
    let short = "x".repeat(31);
    let err = HmacConfig::builder(short.clone()).build().unwrap_err();
    assert_eq!(err.variable(), "HMAC_SECRET");
    let err = HmacConfig::builder(SECRET)
        .previous(short)
        .build()
        .unwrap_err();
    assert_eq!(err.variable(), "HMAC_SECRET_PREVIOUS");
    // Exactly 32 bytes, random.
    assert!(
        HmacConfig::builder("a7Kq3Zx9Lm2Vt8Rp4Nw6Bc1Hj5Fd0GsU")
            .build()
            .is_ok()
    );
}

#[test]
fn bad_mint_arguments_are_refused() {
    let config = config(&Clock::manual(NOW));
    assert_eq!(
        config.mint("", ["a"], HOUR, None),
        Err(MintError::EmptySubject)
    );
    assert_eq!(
        config.mint("ops", ["a"], Duration::ZERO, None),
        Err(MintError::LifetimeOutOfRange)
    );
    assert_eq!(
        config.mint("ops", ["a"], Duration::from_secs(400 * 86_400), None),
        Err(MintError::LifetimeOutOfRange)
    );
    let many: Vec<String> = (0..1000).map(|i| format!("role-{i}")).collect();
    assert_eq!(
        config.mint("ops", &many, HOUR, None),
        Err(MintError::TooLarge)
    );
}

#[test]
fn duplicate_and_empty_roles_are_stripped() {
    let clock = Clock::manual(NOW);
    let config = config(&clock);
    let token = config
        .mint("ops", ["b", "", "a", "b", "a"], HOUR, None)
        .unwrap();
    assert_eq!(config.decode(&token).unwrap().roles, ["b", "a"]);

    // A token minted elsewhere with repeats and empties: the same cleaning on the way in.
    let token = sign_raw(
        HS256,
        &payload(r#""extra":1"#).replace(r#"["runtime.health:read"]"#, r#"["x","","x","y"]"#),
        SECRET,
    );
    let claims = config.decode(&token).unwrap();
    assert_eq!(claims.roles, ["x", "y"]);
    let identity = accepted(&HmacAuthenticator::new(config, Admins::default()), &token);
    assert_eq!(identity.roles().iter().collect::<Vec<_>>(), ["x", "y"]);
}

#[test]
fn expiry_with_leeway_on_the_injected_clock() {
    let clock = Clock::manual(NOW);
    let config = builder(&clock)
        .leeway(Duration::from_secs(30))
        .build()
        .unwrap();
    let token = config.mint("ops", ["a"], HOUR, None).unwrap();
    let auth = HmacAuthenticator::new(config.clone(), Admins::default());
    accepted(&auth, &token);

    // Past exp but inside the leeway: still accepted.
    clock.set(NOW + 3600 + 29);
    accepted(&auth, &token);
    assert!(config.decode(&token).is_ok());

    // At exp + leeway: expired, and said so.
    clock.set(NOW + 3600 + 30);
    assert_eq!(rejected(&auth, &token).reason(), "token_expired");
    let err = config.decode(&token).unwrap_err();
    assert_eq!(err.kind(), RoleTokenErrorKind::Expired);
    assert!(err.is_expired());
    assert_eq!(err.expired_claims().unwrap().sub, "ops");
    let auth_error = err.to_auth_error();
    assert_eq!(
        auth_error.kind(),
        tower_auth_core::AuthErrorKind::InvalidToken
    );
    assert_eq!(auth_error.reason(), "token_expired");
}

#[test]
fn zero_leeway_expires_exactly_at_exp() {
    let clock = Clock::manual(NOW);
    let config = builder(&clock).leeway(Duration::ZERO).build().unwrap();
    let token = config
        .mint("ops", ["a"], Duration::from_secs(10), None)
        .unwrap();
    clock.set(NOW + 9);
    assert!(config.decode(&token).is_ok());
    clock.set(NOW + 10);
    assert!(config.decode(&token).unwrap_err().is_expired());
}

#[test]
fn nbf_and_iat_with_leeway() {
    let clock = Clock::manual(NOW);
    let auth = HmacAuthenticator::new(config(&clock), Admins::default());
    // iat and nbf in the future within the 60 s leeway: accepted (clocks differ a little).
    let inside = sign_raw(
        HS256,
        &payload(&format!(r#""nbf":{}"#, NOW + 60)).replace(
            &format!(r#""iat":{NOW}"#),
            &format!(r#""iat":{}"#, NOW + 60),
        ),
        SECRET,
    );
    accepted(&auth, &inside);
    // Beyond the leeway: refused.
    let nbf_later = sign_raw(HS256, &payload(&format!(r#""nbf":{}"#, NOW + 61)), SECRET);
    assert_eq!(rejected(&auth, &nbf_later).reason(), "not_yet_valid");
    let iat_later = sign_raw(
        HS256,
        &payload("").replace(
            &format!(r#""iat":{NOW}"#),
            &format!(r#""iat":{}"#, NOW + 61),
        ),
        SECRET,
    );
    assert_eq!(rejected(&auth, &iat_later).reason(), "issued_in_future");
    // Fractional NumericDates are refused, by both validators alike (RFC 7519 section 2
    // allows them; tower_auth_core::jose says why not).
    let fractional = sign_raw(HS256, &payload(&format!(r#""nbf":{}.5"#, NOW)), SECRET);
    assert_eq!(rejected(&auth, &fractional).reason(), "bad_nbf");
}

#[test]
fn audience_present_absent_wrong_and_array() {
    let clock = Clock::manual(NOW);
    let with_aud = HmacAuthenticator::new(
        builder(&clock).audience("metrics").build().unwrap(),
        Admins::default(),
    );
    let without_aud = HmacAuthenticator::new(config(&clock), Admins::default());
    let minter = config(&clock);
    let token = |aud: Option<&str>| minter.mint("ops", ["a"], HOUR, aud).unwrap();

    // Present and ours.
    let identity = accepted(&with_aud, &token(Some("metrics")));
    assert_eq!(identity.claims().unwrap()["aud"], "metrics");
    // Required but absent, or someone else's.
    assert_eq!(rejected(&with_aud, &token(None)).reason(), "bad_aud");
    assert_eq!(
        rejected(&with_aud, &token(Some("billing"))).reason(),
        "wrong_audience"
    );
    assert_eq!(
        rejected(&with_aud, &token(Some("Metrics"))).reason(),
        "wrong_audience"
    );
    // Not configured: tokens without aud pass, tokens meant for an audience do not.
    accepted(&without_aud, &token(None));
    assert_eq!(
        rejected(&without_aud, &token(Some("metrics"))).reason(),
        "unexpected_audience"
    );
    // Arrays: one containing ours is accepted; empty, foreign or non-string items are not.
    accepted(
        &with_aud,
        &sign_raw(HS256, &payload(r#""aud":["billing","metrics"]"#), SECRET),
    );
    for (aud, reason) in [
        (r#"[]"#, "wrong_audience"),
        (r#"["billing"]"#, "wrong_audience"),
        (r#"["metrics",5]"#, "bad_aud"),
        (r#"5"#, "bad_aud"),
        (r#"null"#, "bad_aud"),
    ] {
        let t = sign_raw(HS256, &payload(&format!(r#""aud":{aud}"#)), SECRET);
        assert_eq!(rejected(&with_aud, &t).reason(), reason, "{aud}");
    }

    // Minting takes the audience as an argument; decoding holds it to the configuration's.
    let t = config(&clock)
        .mint("ops", ["a"], HOUR, Some("metrics"))
        .unwrap();
    let decoding = |audience: Option<&str>| {
        let builder = builder(&clock);
        match audience {
            Some(audience) => builder.audience(audience),
            None => builder,
        }
        .build()
        .unwrap()
        .decode(&t)
    };
    assert!(decoding(Some("metrics")).is_ok());
    assert_eq!(
        decoding(Some("other")).unwrap_err().reason(),
        "wrong_audience"
    );
    assert_eq!(decoding(None).unwrap_err().reason(), "unexpected_audience");
}

#[test]
fn rotation_accepts_current_and_previous_only() {
    let clock = Clock::manual(NOW);
    let old = HmacConfig::builder(PREVIOUS)
        .clock(clock.clone())
        .build()
        .unwrap();
    let rotated = builder(&clock).previous(PREVIOUS).build().unwrap();
    let old_token = old.mint("ops", ["a"], HOUR, None).unwrap();
    let new_token = rotated.mint("ops", ["a"], HOUR, None).unwrap();

    let during = HmacAuthenticator::new(rotated.clone(), Admins::default());
    accepted(&during, &old_token);
    accepted(&during, &new_token);
    // New tokens are signed with the current secret, so the old verifier refuses them.
    assert_eq!(
        rejected(&HmacAuthenticator::new(old, Admins::default()), &new_token).reason(),
        "bad_signature"
    );
    // Once the previous secret is dropped, its tokens stop verifying.
    let after = HmacAuthenticator::new(config(&clock), Admins::default());
    assert_eq!(rejected(&after, &old_token).reason(), "bad_signature");
    accepted(&after, &new_token);
    // A third secret verifies nothing.
    let stranger = HmacConfig::builder("Wq5tY8nB3vK7xR1mZ4cH9pL2sF6gD0jE-unrelated")
        .clock(clock.clone())
        .build()
        .unwrap();
    let stranger_token = stranger.mint("ops", ["a"], HOUR, None).unwrap();
    assert_eq!(rejected(&during, &stranger_token).reason(), "bad_signature");
}

#[test]
fn revocation_by_jti_until_expiry() {
    let clock = Clock::manual(NOW);
    let config = config(&clock);
    let auth = HmacAuthenticator::new(config.clone(), Admins::default());
    let token = config.mint("ops", ["a"], HOUR, None).unwrap();
    let other = config.mint("ops", ["a"], HOUR, None).unwrap();
    accepted(&auth, &token);

    let claims = auth.revoke_token(&token).unwrap();
    assert_eq!(claims.sub, "ops");
    assert_eq!(rejected(&auth, &token).reason(), "token_revoked");
    assert!(
        config.decode(&token).is_ok(),
        "the config alone knows no revocations"
    );
    accepted(&auth, &other);
    assert_eq!(accepted(&auth, &other).subject(), "ops");
    assert_eq!(auth.revocations().len(), 1);

    // Shared lists: a second authenticator sees the same revocations.
    let shared = HmacAuthenticator::new(config.clone(), Admins::default())
        .revocation_list(auth.revocations().clone());
    assert_eq!(rejected(&shared, &token).reason(), "token_revoked");

    // Revoking by jti directly.
    let third = config.mint("ci", ["a"], HOUR, None).unwrap();
    let jti = config.decode(&third).unwrap().jti.unwrap();
    auth.revoke(&jti, "ci", NOW + 3600).unwrap();
    assert_eq!(rejected(&auth, &third).reason(), "token_revoked");

    // The entries outlive exp by the leeway (the token is still acceptable until then),
    // and are then purged: the list is bounded by the live tokens.
    clock.set(NOW + 3600 + 59);
    auth.revocations().purge_expired();
    assert_eq!(auth.revocations().len(), 2);
    assert_eq!(rejected(&auth, &token).reason(), "token_revoked");
    clock.set(NOW + 3600 + 60);
    auth.revocations().purge_expired();
    assert!(auth.revocations().is_empty());
    assert_eq!(rejected(&auth, &token).reason(), "token_expired");

    // Only valid tokens of ours can be revoked by value.
    assert_eq!(
        auth.revoke_token("garbage"),
        Err(RevocationError::InvalidToken)
    );
    let no_jti = sign_raw(HS256, &payload("").replace(r#""jti":"j-1","#, ""), SECRET);
    clock.set(NOW);
    accepted(&auth, &no_jti);
    assert_eq!(auth.revoke_token(&no_jti), Err(RevocationError::NoTokenId));
}

#[test]
fn identity_from_a_token() {
    let clock = Clock::manual(NOW);
    let config = builder(&clock).issuer("ops-tokens").build().unwrap();
    let token = config
        .mint("root", ["runtime.metrics:read"], HOUR, None)
        .unwrap();
    let auth = HmacAuthenticator::new(config, Admins::new(["root"]));
    assert_eq!(auth.method(), "hmac");
    assert_eq!(auth.issuer(), "ops-tokens");
    let identity = accepted(&auth, &token);
    assert_eq!(identity.subject(), "root");
    assert_eq!(
        identity.method(),
        &AuthMethod::Hmac {
            issuer: "ops-tokens".into()
        }
    );
    assert!(identity.has_role("runtime.metrics:read"));
    assert!(
        identity.has_role(ADMIN_ROLE),
        "root is listed in AUTH_ADMINS"
    );
    assert_eq!(
        identity.expires_at(),
        Some(std::time::UNIX_EPOCH + Duration::from_secs(NOW + 3600))
    );
    assert_eq!(identity.claims().unwrap()["iss"], "ops-tokens");

    // A token of the default issuer is not this authenticator's.
    let default_issuer = HmacConfig::builder(SECRET)
        .clock(clock)
        .build()
        .unwrap()
        .mint("root", ["a"], HOUR, None)
        .unwrap();
    not_mine(&auth, &default_issuer);
}

#[test]
fn api_key_header_and_other_bearers_are_not_mine() {
    let auth = HmacAuthenticator::new(config(&Clock::manual(NOW)), Admins::default());
    let token = HmacConfig::builder(SECRET)
        .clock(Clock::manual(NOW))
        .build()
        .unwrap()
        .mint("ops", ["a"], HOUR, None)
        .unwrap();
    // A token sent in the API-key header is not a bearer token: never ours.
    assert!(matches!(
        auth.authenticate(Credential::ApiKey(&token)),
        tower_auth_core::Check::Ready(tower_auth_core::Outcome::NotMine)
    ));
    not_mine(&auth, "k7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA");
    not_mine(&auth, "");
}

#[test]
fn secrets_and_tokens_never_show_in_debug_or_errors() {
    let clock = Clock::manual(NOW);
    let config = builder(&clock).previous(PREVIOUS).build().unwrap();
    let token = config.mint("ops", ["a"], HOUR, None).unwrap();
    let auth = HmacAuthenticator::new(config.clone(), Admins::default());
    let signature = token.rsplit('.').next().unwrap();

    let mut shown = vec![format!("{config:?}"), format!("{auth:?}")];
    clock.advance(Duration::from_secs(7200));
    let expired = config.decode(&token).unwrap_err();
    shown.push(format!("{expired:?}"));
    shown.push(expired.to_string());
    shown.push(format!("{:?}", rejected(&auth, &token)));
    shown.push(rejected(&auth, &token).to_string());
    let tampered = format!("{}x", &token[..token.len() - 1]);
    let invalid = config.decode(&tampered).unwrap_err();
    shown.push(format!("{invalid:?}"));
    shown.push(invalid.to_string());
    shown.push(format!(
        "{:?}",
        HmacConfig::builder("short-secret-value")
            .build()
            .unwrap_err()
    ));
    for text in &shown {
        for needle in [SECRET, PREVIOUS, &token, signature, "short-secret-value"] {
            assert!(!text.contains(needle), "{text} shows {needle}");
        }
    }
}
