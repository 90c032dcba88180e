//! Minting and verifying: round trips, time, audience, rotation, revocation, roles.

mod common;

use std::time::Duration;

use common::*;
use tower_auth_core::{ADMIN_ROLE, Admins, AuthMethod, Authenticator, Clock, Credential, Secret};
use tower_auth_hmac::{
    DEFAULT_ISSUER, HmacAuthenticator, HmacConfig, RevocationError, TokenErrorKind,
    create_access_token, decode_access_token,
};

const HOUR: Duration = Duration::from_secs(3600);

fn config(clock: &Clock) -> HmacConfig {
    HmacConfig::new(SECRET).unwrap().clock(clock.clone())
}

#[test]
fn round_trip_with_the_free_helpers() {
    let secret = Secret::from(SECRET);
    let token = create_access_token("ops", &secret, ["a", "b"], HOUR, None).unwrap();
    let claims = decode_access_token(&token, &secret, None).unwrap();
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

    let again = create_access_token("ops", &secret, ["a", "b"], HOUR, None).unwrap();
    assert_ne!(
        decode_access_token(&again, &secret, None).unwrap().jti,
        claims.jti,
        "every token gets its own jti"
    );
}

#[test]
fn minted_token_shape() {
    let clock = Clock::manual(NOW);
    let token = config(&clock)
        .create_access_token("ops", ["r"], HOUR, Some("api"))
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
    let short = Secret::from("x".repeat(31));
    let err = create_access_token("ops", &short, ["a"], HOUR, None).unwrap_err();
    assert_eq!(err.variable(), "HMAC_SECRET");
    let token = create_access_token("ops", &Secret::from(SECRET), ["a"], HOUR, None).unwrap();
    let err = decode_access_token(&token, &short, None).unwrap_err();
    assert_eq!(err.reason(), "secret_too_short");
}

#[test]
fn bad_mint_arguments_are_refused() {
    let config = config(&Clock::manual(NOW));
    assert!(config.create_access_token("", ["a"], HOUR, None).is_err());
    assert!(
        config
            .create_access_token("ops", ["a"], Duration::ZERO, None)
            .is_err()
    );
    assert!(
        config
            .create_access_token("ops", ["a"], Duration::from_secs(400 * 86_400), None)
            .is_err()
    );
    let many: Vec<String> = (0..1000).map(|i| format!("role-{i}")).collect();
    let err = config
        .create_access_token("ops", &many, HOUR, None)
        .unwrap_err();
    assert_eq!(err.variable(), "roles");
}

#[test]
fn duplicate_and_empty_roles_are_stripped() {
    let clock = Clock::manual(NOW);
    let config = config(&clock);
    let token = config
        .create_access_token("ops", ["b", "", "a", "b", "a"], HOUR, None)
        .unwrap();
    assert_eq!(
        config.decode_access_token(&token).unwrap().roles,
        ["b", "a"]
    );

    // A token minted elsewhere with repeats and empties: the same cleaning on the way in.
    let token = sign_raw(
        HS256,
        &payload(r#""extra":1"#).replace(r#"["runtime.health:read"]"#, r#"["x","","x","y"]"#),
        SECRET,
    );
    let claims = config.decode_access_token(&token).unwrap();
    assert_eq!(claims.roles, ["x", "y"]);
    let identity = accepted(&HmacAuthenticator::new(config), &token);
    assert_eq!(identity.roles().iter().collect::<Vec<_>>(), ["x", "y"]);
}

#[test]
fn expiry_with_leeway_on_the_injected_clock() {
    let clock = Clock::manual(NOW);
    let config = config(&clock).leeway(Duration::from_secs(30));
    let token = config
        .create_access_token("ops", ["a"], HOUR, None)
        .unwrap();
    let auth = HmacAuthenticator::new(config.clone());
    accepted(&auth, &token);

    // Past exp but inside the leeway: still accepted.
    clock.set(NOW + 3600 + 29);
    accepted(&auth, &token);
    assert!(config.decode_access_token(&token).is_ok());

    // At exp + leeway: expired, and said so.
    clock.set(NOW + 3600 + 30);
    assert_eq!(rejected(&auth, &token).reason(), "token_expired");
    let err = config.decode_access_token(&token).unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Expired);
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
    let config = config(&clock).leeway(Duration::ZERO);
    let token = config
        .create_access_token("ops", ["a"], Duration::from_secs(10), None)
        .unwrap();
    clock.set(NOW + 9);
    assert!(config.decode_access_token(&token).is_ok());
    clock.set(NOW + 10);
    assert!(config.decode_access_token(&token).unwrap_err().is_expired());
}

#[test]
fn nbf_and_iat_with_leeway() {
    let clock = Clock::manual(NOW);
    let auth = HmacAuthenticator::new(config(&clock));
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
    let with_aud = HmacAuthenticator::new(config(&clock).audience("metrics"));
    let without_aud = HmacAuthenticator::new(config(&clock));
    let minter = config(&clock);
    let token = |aud: Option<&str>| minter.create_access_token("ops", ["a"], HOUR, aud).unwrap();

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

    // The free helper takes the audience as an argument.
    let secret = Secret::from(SECRET);
    let t = create_access_token("ops", &secret, ["a"], HOUR, Some("metrics")).unwrap();
    assert!(decode_access_token(&t, &secret, Some("metrics")).is_ok());
    assert_eq!(
        decode_access_token(&t, &secret, Some("other"))
            .unwrap_err()
            .reason(),
        "wrong_audience"
    );
    assert_eq!(
        decode_access_token(&t, &secret, None).unwrap_err().reason(),
        "unexpected_audience"
    );
}

#[test]
fn rotation_accepts_current_and_previous_only() {
    let clock = Clock::manual(NOW);
    let old = HmacConfig::new(PREVIOUS).unwrap().clock(clock.clone());
    let rotated = config(&clock).previous(PREVIOUS).unwrap();
    let old_token = old.create_access_token("ops", ["a"], HOUR, None).unwrap();
    let new_token = rotated
        .create_access_token("ops", ["a"], HOUR, None)
        .unwrap();

    let during = HmacAuthenticator::new(rotated.clone());
    accepted(&during, &old_token);
    accepted(&during, &new_token);
    // New tokens are signed with the current secret, so the old verifier refuses them.
    assert_eq!(
        rejected(&HmacAuthenticator::new(old), &new_token).reason(),
        "bad_signature"
    );
    // Once the previous secret is dropped, its tokens stop verifying.
    let after = HmacAuthenticator::new(config(&clock));
    assert_eq!(rejected(&after, &old_token).reason(), "bad_signature");
    accepted(&after, &new_token);
    // A third secret verifies nothing.
    let stranger = HmacConfig::new("Qw3rTy-unrelated-secret-0123456789abcdef")
        .unwrap()
        .clock(clock.clone());
    let stranger_token = stranger
        .create_access_token("ops", ["a"], HOUR, None)
        .unwrap();
    assert_eq!(rejected(&during, &stranger_token).reason(), "bad_signature");
}

#[test]
fn revocation_by_jti_until_expiry() {
    let clock = Clock::manual(NOW);
    let config = config(&clock);
    let auth = HmacAuthenticator::new(config.clone());
    let token = config
        .create_access_token("ops", ["a"], HOUR, None)
        .unwrap();
    let other = config
        .create_access_token("ops", ["a"], HOUR, None)
        .unwrap();
    accepted(&auth, &token);

    let claims = auth.revoke_token(&token).unwrap();
    assert_eq!(claims.sub, "ops");
    assert_eq!(rejected(&auth, &token).reason(), "token_revoked");
    assert_eq!(auth.verify(&token).unwrap_err().reason(), "token_revoked");
    assert!(
        config.decode_access_token(&token).is_ok(),
        "the config alone knows no revocations"
    );
    accepted(&auth, &other);
    assert_eq!(auth.verify(&other).unwrap().sub, "ops");
    assert_eq!(auth.revocations().len(), 1);

    // Shared lists: a second authenticator sees the same revocations.
    let shared = HmacAuthenticator::new(config.clone()).revocation_list(auth.revocations().clone());
    assert_eq!(rejected(&shared, &token).reason(), "token_revoked");

    // Revoking by jti directly.
    let third = config.create_access_token("ci", ["a"], HOUR, None).unwrap();
    let jti = config.decode_access_token(&third).unwrap().jti.unwrap();
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
    let config = config(&clock).issuer("ops-tokens");
    let token = config
        .create_access_token("root", ["runtime.metrics:read"], HOUR, None)
        .unwrap();
    let auth = HmacAuthenticator::new(config).admins(Admins::new(["root"]));
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
    let default_issuer = HmacConfig::new(SECRET)
        .unwrap()
        .clock(clock)
        .create_access_token("root", ["a"], HOUR, None)
        .unwrap();
    not_mine(&auth, &default_issuer);
}

#[test]
fn api_key_header_and_other_bearers_are_not_mine() {
    let auth = HmacAuthenticator::new(config(&Clock::manual(NOW)));
    let token = HmacConfig::new(SECRET)
        .unwrap()
        .clock(Clock::manual(NOW))
        .create_access_token("ops", ["a"], HOUR, None)
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
    let config = config(&clock).previous(PREVIOUS).unwrap();
    let token = config
        .create_access_token("ops", ["a"], HOUR, None)
        .unwrap();
    let auth = HmacAuthenticator::new(config.clone());
    let signature = token.rsplit('.').next().unwrap();

    let mut shown = vec![format!("{config:?}"), format!("{auth:?}")];
    clock.advance(Duration::from_secs(7200));
    let expired = config.decode_access_token(&token).unwrap_err();
    shown.push(format!("{expired:?}"));
    shown.push(expired.to_string());
    shown.push(format!("{:?}", rejected(&auth, &token)));
    shown.push(rejected(&auth, &token).to_string());
    let tampered = format!("{}x", &token[..token.len() - 1]);
    let invalid = config.decode_access_token(&tampered).unwrap_err();
    shown.push(format!("{invalid:?}"));
    shown.push(invalid.to_string());
    shown.push(format!(
        "{:?}",
        HmacConfig::new("short-secret-value").unwrap_err()
    ));
    for text in &shown {
        for needle in [SECRET, PREVIOUS, &token, signature, "short-secret-value"] {
            assert!(!text.contains(needle), "{text} shows {needle}");
        }
    }
}
