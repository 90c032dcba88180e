//! SECURITY.md T, A, H and C ("Token structure", "Algorithms and signatures", "Header
//! parameters", "Claims"), against a real test IdP, at the `Authenticator` level.

use std::time::Duration;

use auth_tests::idp::{
    AUDIENCE, NOW, SMALL_RSA_ISSUER, SMALL_RSA_JWK, SMALL_RSA_TOKEN, SigningKey, TestIdp, accepted,
    assert_invalid, assert_refused, b64, ready, run, unb64, warp,
};
use serde_json::{Value, json};
use tower_auth_core::{Admins, Clock, Outcome};
use tower_auth_oidc::{IssuerConfig, OidcAuthenticator, OidcConfig};

struct Setup {
    idp: TestIdp,
    auth: OidcAuthenticator,
    clock: Clock,
    rsa: SigningKey,
    ec: SigningKey,
    ed: SigningKey,
}

async fn setup_with(change: impl FnOnce(IssuerConfig) -> IssuerConfig) -> Setup {
    let rsa = SigningKey::rsa("rsa-1", 0);
    let ec = SigningKey::ec("ec-1");
    let ed = SigningKey::ed25519("ed-1");
    let idp = TestIdp::start(&[&rsa, &ec, &ed]).await;
    let clock = Clock::manual(NOW);
    let config = OidcConfig::builder()
        .issuer(change(IssuerConfig::new(idp.issuer(), AUDIENCE)))
        .build()
        .unwrap();
    let auth = OidcAuthenticator::start(
        config.with_clock(clock.clone()),
        Admins::new(["root@example.com"]),
    )
    .await
    .unwrap();
    assert_eq!((idp.discovery_requests(), idp.jwks_requests()), (1, 1));
    Setup {
        idp,
        auth,
        clock,
        rsa,
        ec,
        ed,
    }
}

async fn setup() -> Setup {
    setup_with(|i| i).await
}

impl Setup {
    /// Asserts 401 and that the IdP saw no request beyond start-up's.
    async fn refused_without_fetch(&self, token: &str, why: &str) -> &'static str {
        let outcome = run(&self.auth, token).await;
        let reason = assert_invalid(&outcome);
        assert_eq!(self.idp.jwks_requests(), 1, "{why}: no refetch");
        reason
    }
}

fn segments(token: &str) -> Vec<String> {
    token.split('.').map(str::to_owned).collect()
}

#[tokio::test]
async fn good_tokens_of_every_key_type_are_accepted() {
    let s = setup().await;
    for key in [&s.rsa, &s.ec, &s.ed] {
        let id = accepted(run(&s.auth, &s.idp.token(key, "alice")).await);
        assert_eq!(id.subject(), "alice");
    }
    for alg in ["RS384", "RS512", "PS256", "PS384", "PS512"] {
        let key = SigningKey::rsa_alg(&format!("k-{alg}"), 0, alg);
        // Published under its own kid and alg; the kid is new, so wait out the cooldown first.
        s.idp.publish(&key);
        warp(&s.clock, Duration::from_secs(31)).await;
        let token = s.idp.token(&key, "bob");
        accepted(run(&s.auth, &token).await);
    }
}

/// SECURITY.md T1, T2.
#[tokio::test]
async fn malformed_token_structures_are_invalid_token() {
    let s = setup().await;
    let good = s.idp.token(&s.rsa, "u");
    let [h, p, sig]: [String; 3] = segments(&good).try_into().unwrap();
    let claims = s.idp.claims("u");
    let header = s.rsa.header();
    let cases: Vec<(&str, String)> = vec![
        ("two segments", format!("{h}.{p}")),
        ("four segments", format!("{h}.{p}.{sig}.{sig}")),
        (
            "JWE-like five segments",
            format!("{h}.{p}.{sig}.{sig}.{sig}"),
        ),
        ("padding in payload", s.rsa.mint_raw(&h, &format!("{p}=="))),
        ("padding in signature", format!("{h}.{p}.{sig}=")),
        (
            "'+' in signature",
            format!(
                "{h}.{p}.{}",
                sig.replacen(|c: char| c.is_ascii_alphabetic(), "+", 1)
            ),
        ),
        ("'/' in header", format!("{}/.{p}.{sig}", h)),
        (
            "standard base64 payload",
            s.rsa
                .mint_raw(&h, &base64_std(claims.to_string().as_bytes())),
        ),
        (
            "header is an array",
            s.rsa.mint_raw(&b64(json!(["RS256"]).to_string()), &p),
        ),
        ("header is a string", s.rsa.mint_raw(&b64("\"RS256\""), &p)),
        (
            "payload is an array",
            s.rsa.mint_raw(&h, &b64(json!([claims]).to_string())),
        ),
        ("payload is not JSON", s.rsa.mint_raw(&h, &b64("iss=me"))),
        (
            "header not UTF-8",
            s.rsa.mint_raw(
                &b64(b"{\"alg\":\"RS256\",\"kid\":\"rsa-1\",\"x\":\"\xff\xfe\"}"),
                &p,
            ),
        ),
        (
            "payload not UTF-8",
            s.rsa.mint_raw(
                &h,
                &b64([
                    &claims.to_string().as_bytes()[..claims.to_string().len() - 1],
                    b",\"n\":\"\xc3\x28\"}",
                ]
                .concat()),
            ),
        ),
        (
            "duplicate alg",
            s.rsa
                .mint_raw(&b64(r#"{"alg":"RS256","kid":"rsa-1","alg":"none"}"#), &p),
        ),
        (
            "duplicate iss",
            s.rsa.mint_raw(
                &h,
                &b64(format!(
                    r#"{{"iss":"https://evil.example",{}"#,
                    &claims.to_string()[1..]
                )),
            ),
        ),
        (
            "duplicate exp",
            s.rsa.mint_raw(
                &h,
                &b64(format!(
                    r#"{{"exp":99999999999,{}"#,
                    &claims.to_string()[1..]
                )),
            ),
        ),
        (
            "deeply nested payload",
            s.rsa.mint_raw(
                &h,
                &b64(format!(
                    r#"{{"n":{}1{},{}"#,
                    "[".repeat(40),
                    "]".repeat(40),
                    &claims.to_string()[1..]
                )),
            ),
        ),
        (
            "deeply nested header",
            s.rsa.mint_raw(
                &b64(format!(
                    r#"{{"n":{}1{},{}"#,
                    "[".repeat(40),
                    "]".repeat(40),
                    &header.to_string()[1..]
                )),
                &p,
            ),
        ),
        (
            "trailing data after payload",
            s.rsa.mint_raw(&h, &b64(format!("{claims} {{}}"))),
        ),
    ];
    for (why, token) in cases {
        s.refused_without_fetch(&token, why).await;
    }
    // The untouched token still passes: the cases above failed for their defect alone.
    accepted(run(&s.auth, &good).await);
}

fn base64_std(bytes: &[u8]) -> String {
    use base64::Engine;
    // Only differs from base64url when '+' or '/' occur; force one with a leading byte that encodes to '+'.
    let mut with_marker = vec![0xfb];
    with_marker.extend_from_slice(bytes);
    base64::engine::general_purpose::STANDARD.encode(with_marker)
}

/// SECURITY.md A1.
#[tokio::test]
async fn alg_none_and_empty_signatures() {
    let s = setup().await;
    let claims = s.idp.claims("u");
    for alg in ["none", "None", "nOnE", "NONE"] {
        let header = b64(json!({"alg": alg, "typ": "JWT"}).to_string());
        let payload = b64(claims.to_string());
        for token in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}.{}", b64("sig")),
        ] {
            assert_eq!(s.refused_without_fetch(&token, alg).await, "alg_none");
        }
    }
    let good = s.idp.token(&s.rsa, "u");
    let stripped = &good[..good.rfind('.').unwrap() + 1];
    assert_eq!(
        s.refused_without_fetch(stripped, "empty signature").await,
        "empty_signature"
    );
}

/// SECURITY.md A2.
#[tokio::test]
async fn hs256_signed_with_the_issuers_public_key_is_refused() {
    use aws_lc_rs::hmac;
    let s = setup().await;
    let jwk = s.rsa.jwk();
    let secrets: Vec<Vec<u8>> = vec![
        unb64(jwk["n"].as_str().unwrap()),
        jwk.to_string().into_bytes(),
        json!({"keys": [jwk]}).to_string().into_bytes(),
    ];
    for (i, secret) in secrets.iter().enumerate() {
        for kid in [Some("rsa-1"), None] {
            let mut header = json!({"alg": "HS256", "typ": "JWT"});
            if let Some(kid) = kid {
                header["kid"] = json!(kid);
            }
            let input = format!(
                "{}.{}",
                b64(header.to_string()),
                b64(s.idp.claims("u").to_string())
            );
            let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input.as_bytes());
            let token = format!("{input}.{}", b64(tag.as_ref()));
            let reason = s
                .refused_without_fetch(&token, &format!("secret {i}"))
                .await;
            assert_eq!(reason, "hmac_alg_for_oidc_issuer");
        }
    }
}

/// SECURITY.md A3.
#[tokio::test]
async fn algorithm_allow_list_and_key_agreement() {
    let s = setup_with(|i| i.algorithms(["RS256", "ES256", "EdDSA"])).await;
    let claims = s.idp.claims("u");
    // PS256 with the RSA key: not on the allow-list.
    let ps = SigningKey::rsa_alg("rsa-1", 0, "PS256");
    assert_eq!(
        s.refused_without_fetch(&ps.mint(&ps.header(), &claims), "PS256 not allowed")
            .await,
        "alg_not_allowed"
    );
    // RS256 header naming the EC key's kid: kty disagrees.
    let lying = s.rsa.mint(&json!({"alg": "RS256", "kid": "ec-1"}), &claims);
    assert_eq!(
        s.refused_without_fetch(&lying, "RS256 on an EC kid").await,
        "key_alg_mismatch"
    );
    // EdDSA header on the ES256 key: curve disagrees.
    let lying = s.ed.mint(&json!({"alg": "EdDSA", "kid": "ec-1"}), &claims);
    assert_eq!(
        s.refused_without_fetch(&lying, "EdDSA on a P-256 kid")
            .await,
        "key_alg_mismatch"
    );
}

/// SECURITY.md A3.
#[tokio::test]
async fn key_alg_and_use_must_agree_with_the_token() {
    // The RSA key is published once as RS256-only, once as an encryption key.
    let rs_only = SigningKey::rsa("rs-only", 0);
    let enc = SigningKey::rsa("enc", 1).with_jwk(|j| j["use"] = json!("enc"));
    let ec = SigningKey::ec("ec-1");
    let idp = TestIdp::start(&[&rs_only, &enc, &ec]).await;
    let config = OidcConfig::builder()
        .issuer(IssuerConfig::new(idp.issuer(), AUDIENCE))
        .build()
        .unwrap();
    let clock = Clock::manual(NOW);
    let auth = OidcAuthenticator::start(config.with_clock(clock.clone()), Admins::default())
        .await
        .unwrap();
    let claims = idp.claims("u");
    accepted(run(&auth, &rs_only.mint(&rs_only.header(), &claims)).await);
    let ps = SigningKey::rsa_alg("rs-only", 0, "PS256");
    assert_eq!(
        assert_refused(&run(&auth, &ps.mint(&ps.header(), &claims)).await),
        "key_alg_mismatch"
    );
    // The enc key is not in the usable set at all; after the cooldown its kid gets one refetch.
    warp(&clock, Duration::from_secs(31)).await;
    assert_eq!(
        assert_refused(&run(&auth, &enc.mint(&enc.header(), &claims)).await),
        "unknown_kid"
    );
    assert_eq!(idp.jwks_requests(), 2);
    // Without a kid, only keys that fit are tried, and the enc key is not one of them.
    let no_kid = enc.mint(&json!({"alg": "RS256"}), &claims);
    assert_eq!(
        assert_refused(&run(&auth, &no_kid).await),
        "no_key_verifies"
    );
    assert_eq!(idp.jwks_requests(), 2);
}

/// SECURITY.md H7.
#[tokio::test]
async fn a_token_without_kid_tries_at_most_four_fitting_keys() {
    let keys: Vec<SigningKey> = (1..=6)
        .map(|i| SigningKey::ec(&format!("ec-{i}")))
        .collect();
    let idp = TestIdp::start(&keys.iter().collect::<Vec<_>>()).await;
    let config = OidcConfig::builder()
        .issuer(IssuerConfig::new(idp.issuer(), AUDIENCE))
        .build()
        .unwrap();
    let auth = OidcAuthenticator::start(config.with_clock(Clock::manual(NOW)), Admins::default())
        .await
        .unwrap();
    assert_eq!(auth.issuer_status(idp.issuer()).unwrap().keys, 6);
    let claims = idp.claims("u");
    // Six keys fit ES256; without a kid the first four are tried, in the published order.
    for (i, key) in keys.iter().enumerate() {
        let outcome = run(&auth, &key.mint(&json!({"alg": "ES256"}), &claims)).await;
        if i < 4 {
            accepted(outcome);
        } else {
            assert_eq!(assert_refused(&outcome), "no_key_verifies", "key {}", i + 1);
        }
    }
    // With its kid, the fifth key verifies: the cap is on guessing, not on the key set.
    accepted(run(&auth, &keys[4].mint(&keys[4].header(), &claims)).await);
    assert_eq!(idp.jwks_requests(), 1, "no refetch");
}

fn der_signature(fixed: &[u8]) -> Vec<u8> {
    let int = |half: &[u8]| {
        let trimmed: Vec<u8> = half.iter().copied().skip_while(|&b| b == 0).collect();
        let mut bytes = if trimmed.first().is_some_and(|&b| b & 0x80 != 0) {
            vec![0]
        } else {
            vec![]
        };
        bytes.extend(trimmed);
        let mut out = vec![0x02, bytes.len() as u8];
        out.extend(bytes);
        out
    };
    let (r, s) = fixed.split_at(fixed.len() / 2);
    let body = [int(r), int(s)].concat();
    [vec![0x30, body.len() as u8], body].concat()
}

/// SECURITY.md A4.
#[tokio::test]
async fn ecdsa_zero_and_der_signatures_are_refused() {
    let s = setup().await;
    let good = s.idp.token(&s.ec, "u");
    let [h, p, sig]: [String; 3] = segments(&good).try_into().unwrap();
    let zeros = format!("{h}.{p}.{}", b64([0u8; 64]));
    assert_eq!(
        s.refused_without_fetch(&zeros, "all-zero ECDSA").await,
        "bad_signature"
    );
    let zero_s = format!("{h}.{p}.{}", b64([&unb64(&sig)[..32], &[0u8; 32]].concat()));
    assert_eq!(
        s.refused_without_fetch(&zero_s, "zero s").await,
        "bad_signature"
    );
    let der = format!("{h}.{p}.{}", b64(der_signature(&unb64(&sig))));
    assert_eq!(
        s.refused_without_fetch(&der, "DER ECDSA").await,
        "bad_signature"
    );
    accepted(run(&s.auth, &good).await);
}

/// SECURITY.md A4.
#[tokio::test]
async fn rsa_keys_under_2048_bits_are_ignored() {
    let good = SigningKey::rsa("rsa-ok", 0);
    let idp = TestIdp::start(&[&good]).await;
    idp.publish_jwk(serde_json::from_str(SMALL_RSA_JWK).unwrap());
    let config = OidcConfig::builder()
        .issuer(IssuerConfig::new(SMALL_RSA_ISSUER, AUDIENCE).jwks_uri(idp.jwks_uri()))
        .build()
        .unwrap();
    let auth = OidcAuthenticator::start(config.with_clock(Clock::manual(NOW)), Admins::default())
        .await
        .unwrap();
    assert_eq!(
        auth.issuer_status(SMALL_RSA_ISSUER).unwrap().keys,
        1,
        "only the 2048-bit key is usable"
    );
    assert_eq!(
        idp.discovery_requests(),
        0,
        "jwks_uri configured: no discovery"
    );
    // The fixture token is correctly signed by the 1024-bit key, and still refused.
    assert_eq!(
        assert_refused(&run(&auth, SMALL_RSA_TOKEN).await),
        "unknown_kid"
    );
    // With its kid stripped, no usable key verifies it either.
    let [_, p, sig]: [String; 3] = segments(SMALL_RSA_TOKEN).try_into().unwrap();
    let no_kid = format!("{}.{p}.{sig}", b64(r#"{"alg":"RS256","kid":"rsa-ok"}"#));
    assert_eq!(assert_refused(&run(&auth, &no_kid).await), "bad_signature");
}

/// SECURITY.md H1.
#[tokio::test]
async fn crit_and_b64_headers_are_refused() {
    let s = setup().await;
    let claims = s.idp.claims("u");
    for extra in [
        json!({"crit": ["exp"], "exp": 1}),
        json!({"crit": []}),
        json!({"crit": ["b64"], "b64": false}),
        json!({"b64": false}),
    ] {
        let mut header = s.rsa.header();
        header
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let reason = s
            .refused_without_fetch(&s.rsa.mint(&header, &claims), &extra.to_string())
            .await;
        assert!(
            reason == "crit_header" || reason == "b64_header",
            "{reason}"
        );
    }
}

/// SECURITY.md H2.
#[tokio::test]
async fn jku_x5u_jwk_and_x5c_are_never_used() {
    let s = setup().await;
    let attacker_key = SigningKey::rsa("evil", 1);
    let attacker = TestIdp::start(&[&attacker_key]).await;
    let claims = s.idp.claims("u");
    // Signed by the attacker's key, pointing at the attacker's key in every way a header can.
    let headers = [
        json!({"alg": "RS256", "kid": "evil", "jku": attacker.jwks_uri()}),
        json!({"alg": "RS256", "kid": "evil", "x5u": attacker.jwks_uri()}),
        json!({"alg": "RS256", "jwk": attacker_key.jwk()}),
        json!({"alg": "RS256", "kid": "rsa-1", "jwk": attacker_key.jwk()}),
        json!({"alg": "RS256", "x5c": ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]}),
    ];
    for header in headers {
        let outcome = run(&s.auth, &attacker_key.mint(&header, &claims)).await;
        assert_invalid(&outcome);
    }
    assert_eq!(
        attacker.requests(),
        0,
        "the attacker's URLs are never fetched"
    );
    assert_eq!(
        s.idp.jwks_requests(),
        1,
        "within the cooldown, no refetch either"
    );
    // With our own key, the same headers change nothing: the token is judged by our JWKS.
    let own = s.rsa.mint(&json!({"alg": "RS256", "kid": "rsa-1", "jku": attacker.jwks_uri(), "x5u": "http://127.0.0.1:9/x"}), &claims);
    accepted(run(&s.auth, &own).await);
    assert_eq!(attacker.requests(), 0);
}

/// SECURITY.md H3.
#[tokio::test]
async fn hostile_kids_are_opaque_capped_lookup_keys() {
    let s = setup().await;
    let claims = s.idp.claims("u");
    warp(&s.clock, Duration::from_secs(31)).await;
    for kid in [
        json!("../../../../etc/passwd"),
        json!("rsa-1\r\nX-Injected: 1"),
        json!("a%2F..%2F"),
        json!("k".repeat(257)),
        json!(7),
        json!(["rsa-1"]),
        json!(null),
    ] {
        let token = s.rsa.mint(&json!({"alg": "RS256", "kid": kid}), &claims);
        assert_invalid(&run(&s.auth, &token).await);
    }
    // At most the one refetch the cooldown allows, and only to the configured JWKS URI.
    assert_eq!(s.idp.jwks_requests(), 2);
    assert_eq!(
        s.idp.requests(),
        3,
        "discovery + start-up JWKS + one refetch"
    );
}

/// SECURITY.md H4, F16.
#[tokio::test]
async fn unknown_kid_gets_one_rate_limited_refetch() {
    let s = setup().await;
    let stranger = SigningKey::rsa("not-published", 1);
    let token = s.idp.token(&stranger, "u");
    // Within the cooldown after start-up's fetch: refused at once, no fetch.
    assert_eq!(
        assert_refused(&ready(&s.auth, &token).expect("no wait in cooldown")),
        "unknown_kid"
    );
    assert_eq!(s.idp.jwks_requests(), 1);
    warp(&s.clock, Duration::from_secs(30)).await;
    assert_eq!(assert_refused(&run(&s.auth, &token).await), "unknown_kid");
    assert_eq!(s.idp.jwks_requests(), 2, "one refetch after the cooldown");
    // The same kid again, and another unknown kid: no further fetch within the cooldown.
    assert_eq!(assert_refused(&run(&s.auth, &token).await), "unknown_kid");
    let other = s.idp.token(&SigningKey::rsa("another-stranger", 1), "u");
    assert_eq!(assert_refused(&run(&s.auth, &other).await), "unknown_kid");
    assert_eq!(s.idp.jwks_requests(), 2);
    // After the next cooldown the kid that was looked for is forgotten (SECURITY.md F16): it
    // gets one refetch again, and the other kid waits for the cooldown after that.
    warp(&s.clock, Duration::from_secs(31)).await;
    assert_eq!(assert_refused(&run(&s.auth, &token).await), "unknown_kid");
    assert_eq!(s.idp.jwks_requests(), 3);
    assert_eq!(
        assert_refused(&ready(&s.auth, &other).expect("no fetch in cooldown")),
        "unknown_kid"
    );
    assert_eq!(s.idp.jwks_requests(), 3);
}

/// SECURITY.md H4.
#[tokio::test]
async fn known_kid_with_a_bad_signature_never_refetches() {
    let s = setup().await;
    warp(&s.clock, Duration::from_secs(60)).await;
    let claims = s.idp.claims("u");
    let impostor = SigningKey::rsa("rsa-1", 1); // same kid, other key
    for _ in 0..3 {
        assert_eq!(
            assert_refused(&run(&s.auth, &impostor.mint(&impostor.header(), &claims)).await),
            "bad_signature"
        );
    }
    let good = s.idp.token(&s.rsa, "u");
    let [h, _, sig]: [String; 3] = segments(&good).try_into().unwrap();
    let tampered = format!("{h}.{}.{sig}", b64(s.idp.claims("admin").to_string()));
    assert_eq!(
        assert_refused(&run(&s.auth, &tampered).await),
        "bad_signature"
    );
    assert_eq!(s.idp.jwks_requests(), 1);
}

/// SECURITY.md H4.
#[tokio::test]
async fn no_kid_tries_only_fitting_keys_without_refetch() {
    let s = setup().await;
    warp(&s.clock, Duration::from_secs(60)).await;
    let claims = s.idp.claims("u");
    for key in [&s.rsa, &s.ec, &s.ed] {
        let token = key.mint(&json!({"alg": key.alg()}), &claims);
        accepted(run(&s.auth, &token).await);
    }
    let stranger = SigningKey::ec("x");
    let token = stranger.mint(&json!({"alg": "ES256"}), &claims);
    assert_eq!(
        assert_refused(&run(&s.auth, &token).await),
        "no_key_verifies"
    );
    assert_eq!(s.idp.jwks_requests(), 1);
}

/// SECURITY.md H5.
#[tokio::test]
async fn typ_at_jwt_when_required() {
    let s = setup_with(|i| i.required_typ("at+jwt")).await;
    let claims = s.idp.claims("u");
    let mut header = s.rsa.header();
    assert_eq!(
        s.refused_without_fetch(&s.rsa.mint(&header, &claims), "typ JWT")
            .await,
        "typ_mismatch"
    );
    header.as_object_mut().unwrap().remove("typ");
    assert_eq!(
        s.refused_without_fetch(&s.rsa.mint(&header, &claims), "no typ")
            .await,
        "typ_mismatch"
    );
    header["typ"] = json!("at+jwt");
    accepted(run(&s.auth, &s.rsa.mint(&header, &claims)).await);
    header["typ"] = json!("application/at+jwt");
    accepted(run(&s.auth, &s.rsa.mint(&header, &claims)).await);
}

/// SECURITY.md H6.
#[tokio::test]
async fn an_hmac_role_token_is_not_ours() {
    use aws_lc_rs::hmac;
    let s = setup().await;
    let input = format!(
        "{}.{}",
        b64(r#"{"alg":"HS256","typ":"JWT"}"#),
        b64(json!({"iss": "auth-hmac", "sub": "svc", "roles": ["admin"], "exp": NOW + 60, "iat": NOW, "jti": "1"}).to_string())
    );
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, &[7u8; 32]),
        input.as_bytes(),
    );
    let token = format!("{input}.{}", b64(tag.as_ref()));
    assert!(matches!(ready(&s.auth, &token), Some(Outcome::NotMine)));
    assert_eq!(s.idp.requests(), 2);
}

/// SECURITY.md C1, C2.
#[tokio::test]
async fn exp_nbf_and_iat_are_numeric_dates_checked_with_leeway() {
    let s = setup().await;
    type Change = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Change, bool)> = vec![
        (
            "exp just past, within leeway",
            Box::new(|c| c["exp"] = json!(NOW - 59)),
            true,
        ),
        (
            "exp past beyond leeway",
            Box::new(|c| c["exp"] = json!(NOW - 61)),
            false,
        ),
        (
            "exp missing",
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            false,
        ),
        (
            "exp string",
            Box::new(|c| c["exp"] = json!((NOW + 60).to_string())),
            false,
        ),
        ("exp null", Box::new(|c| c["exp"] = Value::Null), false),
        ("exp 1e300", Box::new(|c| c["exp"] = json!(1e300)), false),
        ("exp negative", Box::new(|c| c["exp"] = json!(-1)), false),
        (
            "exp float",
            Box::new(|c| c["exp"] = json!((NOW + 60) as f64 + 0.5)),
            false,
        ),
        (
            "nbf future within leeway",
            Box::new(|c| c["nbf"] = json!(NOW + 59)),
            true,
        ),
        (
            "nbf future beyond leeway",
            Box::new(|c| c["nbf"] = json!(NOW + 61)),
            false,
        ),
        ("nbf string", Box::new(|c| c["nbf"] = json!("0")), false),
        ("nbf null", Box::new(|c| c["nbf"] = Value::Null), false),
        ("nbf 1e300", Box::new(|c| c["nbf"] = json!(1e300)), false),
        ("nbf negative", Box::new(|c| c["nbf"] = json!(-5)), false),
        (
            "iat future within leeway",
            Box::new(|c| c["iat"] = json!(NOW + 30)),
            true,
        ),
        (
            "iat future beyond leeway",
            Box::new(|c| c["iat"] = json!(NOW + 600)),
            false,
        ),
        ("iat string", Box::new(|c| c["iat"] = json!("now")), false),
    ];
    for (why, change, ok) in cases {
        let token = s.idp.token_with(&s.rsa, change);
        let outcome = run(&s.auth, &token).await;
        if ok {
            accepted(outcome);
        } else {
            assert_refused(&outcome);
        }
        assert_eq!(s.idp.jwks_requests(), 1, "{why}");
    }
}

/// SECURITY.md C3.
#[tokio::test]
async fn iss_routes_exactly_and_unknown_issuers_cost_no_fetch() {
    let s = setup().await;
    let issuer = s.idp.issuer().to_owned();
    let variants = [
        json!(format!("{issuer}/")),
        json!(issuer.to_uppercase()),
        json!(issuer.replace("http://", "https://")),
        json!("https://unknown.example"),
        json!(""),
        Value::Null,
        json!([issuer]),
    ];
    for iss in variants {
        let token = s.idp.token_with(&s.rsa, |c| c["iss"] = iss.clone());
        assert!(
            matches!(ready(&s.auth, &token), Some(Outcome::NotMine)),
            "{iss}"
        );
    }
    let token = s.idp.token_with(&s.rsa, |c| {
        c.as_object_mut().unwrap().remove("iss");
    });
    assert!(matches!(ready(&s.auth, &token), Some(Outcome::NotMine)));
    assert_eq!(s.idp.requests(), 2, "start-up's discovery and JWKS only");
}

/// SECURITY.md C5.
#[tokio::test]
async fn aud_must_be_ours_or_an_array_containing_ours() {
    let s = setup_with(|i| i.audience("api-v2")).await;
    let cases: Vec<(Value, bool)> = vec![
        (json!(AUDIENCE), true),
        (json!("api-v2"), true),
        (json!(["other", AUDIENCE]), true),
        (json!("other"), false),
        (json!([]), false),
        (json!(["other"]), false),
        (json!([AUDIENCE, 1]), false),
        (json!([AUDIENCE, null]), false),
        (json!({"aud": AUDIENCE}), false),
        (Value::Null, false),
    ];
    for (aud, ok) in cases {
        let token = s.idp.token_with(&s.rsa, |c| c["aud"] = aud.clone());
        let outcome = run(&s.auth, &token).await;
        assert_eq!(
            matches!(outcome, Outcome::Authenticated(_)),
            ok,
            "{aud}: {outcome:?}"
        );
        if !ok {
            assert_refused(&outcome);
        }
    }
    let token = s.idp.token_with(&s.rsa, |c| {
        c.as_object_mut().unwrap().remove("aud");
    });
    assert_eq!(assert_refused(&run(&s.auth, &token).await), "bad_aud");
}

#[tokio::test]
async fn identity_carries_subject_email_roles_and_claims() {
    let s = setup_with(|i| i.roles_claim("realm_access.roles")).await;
    let token = s.idp.token_with(&s.ec, |c| {
        c["sub"] = json!("u-42");
        c["email"] = json!("root@example.com");
        c["email_verified"] = json!(true);
        c["name"] = json!("Root");
        c["realm_access"] = json!({"roles": ["orders:write"]});
        c["scope"] = json!("openid orders:read");
        c["scp"] = json!(["metrics:read"]);
    });
    let id = accepted(run(&s.auth, &token).await);
    assert_eq!(
        (id.subject(), id.email(), id.name(), id.email_verified()),
        ("u-42", Some("root@example.com"), Some("Root"), true)
    );
    let roles: Vec<&str> = id.roles().iter().map(String::as_str).collect();
    assert_eq!(
        roles,
        [
            "admin",
            "metrics:read",
            "openid",
            "orders:read",
            "orders:write"
        ]
    );
    assert_eq!(id.method().to_string(), format!("oidc:{}", s.idp.issuer()));
    assert_eq!(
        id.claims().unwrap()["realm_access"]["roles"][0],
        "orders:write"
    );
    assert_eq!(
        id.expires_at(),
        Some(std::time::UNIX_EPOCH + Duration::from_secs(NOW + 3600))
    );
    let shown = format!("{id:?}");
    assert!(
        !shown.contains("root@example.com"),
        "Debug shows no claim values: {shown}"
    );
}

#[tokio::test]
async fn api_key_credentials_are_not_ours() {
    let s = setup().await;
    let outcome = match tower_auth_core::Authenticator::authenticate(
        &s.auth,
        tower_auth_core::Credential::ApiKey("k7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA"),
    ) {
        tower_auth_core::Check::Ready(o) => o,
        tower_auth_core::Check::Pending(_) => panic!("an API key never waits"),
    };
    assert!(matches!(outcome, Outcome::NotMine));
}

/// SECURITY.md E5.
#[tokio::test]
async fn tokens_over_8_kib_are_refused_before_decoding() {
    let s = setup().await;
    let token = s
        .idp
        .token_with(&s.rsa, |c| c["pad"] = json!("x".repeat(9 * 1024)));
    let outcome = ready(&s.auth, &token).expect("decided without waiting");
    assert_eq!(assert_refused(&outcome), "credential_too_large");
    assert_eq!(s.idp.requests(), 2);
}
