//! The HS256 cases of SECURITY.md (T token structure, A algorithms and signatures, H header
//! parameters, C claims). A token of ours (its `iss` is the HMAC issuer) that breaks a rule
//! is rejected with `invalid_token`; nothing panics; foreign tokens are `NotMine`.

mod common;

use common::*;
use tower_auth_core::{Admins, Clock, MAX_CREDENTIAL_LEN};
use tower_auth_hmac::{HmacAuthenticator, HmacConfig};

fn auth() -> HmacAuthenticator {
    HmacAuthenticator::new(
        HmacConfig::builder(SECRET)
            .clock(Clock::manual(NOW))
            .build()
            .unwrap(),
        Admins::default(),
    )
}

fn good() -> String {
    sign_raw(HS256, &payload(""), SECRET)
}

#[test]
fn the_reference_token_is_accepted() {
    accepted(&auth(), &good());
}

#[test]
fn alg_none_in_any_case_and_empty_signatures() {
    let auth = auth();
    let body = b64(payload("").as_bytes());
    for alg in ["none", "None", "nOnE", "NONE"] {
        let header = b64(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#).as_bytes());
        for token in [
            format!("{header}.{body}."),
            format!("{header}.{body}.{}", good().rsplit('.').next().unwrap()),
        ] {
            assert_eq!(rejected(&auth, &token).reason(), "alg_not_hs256", "{alg}");
        }
    }
    // HS256 header with an empty or truncated signature.
    let unsigned = format!("{}.{body}", b64(HS256.as_bytes()));
    assert_eq!(
        rejected(&auth, &format!("{unsigned}.")).reason(),
        "empty_signature"
    );
    let good = good();
    assert_eq!(
        rejected(&auth, &good[..good.len() - 1]).reason(),
        "bad_signature"
    );
    // A missing or non-string alg, and case variants of HS256.
    for (header, reason) in [
        (r#"{"typ":"JWT"}"#, "missing_alg"),
        (r#"{"alg":null}"#, "missing_alg"),
        (r#"{"alg":["HS256"]}"#, "missing_alg"),
        (r#"{"alg":"hs256"}"#, "alg_not_hs256"),
        (r#"{"alg":"HS256 "}"#, "alg_not_hs256"),
    ] {
        assert_eq!(
            rejected(&auth, &sign_raw(header, &payload(""), SECRET)).reason(),
            reason,
            "{header}"
        );
    }
}

#[test]
fn other_hmac_algorithms_with_the_right_secret() {
    let auth = auth();
    for (alg, algorithm) in [("HS384", Sha::S384), ("HS512", Sha::S512)] {
        let input = format!(
            "{}.{}",
            b64(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#).as_bytes()),
            b64(payload("").as_bytes())
        );
        let token = sign_input(&input, algorithm, SECRET);
        assert_eq!(rejected(&auth, &token).reason(), "alg_not_hs256", "{alg}");
        // The same MAC relabelled HS256 fails the signature instead.
        let relabelled = sign_input(&input, algorithm, SECRET).replacen(
            &b64(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#).as_bytes()),
            &b64(HS256.as_bytes()),
            1,
        );
        assert_eq!(rejected(&auth, &relabelled).reason(), "bad_signature");
    }
}

#[test]
fn wrong_secret_and_tampering() {
    let auth = auth();
    let wrong = sign_raw(
        HS256,
        &payload(""),
        "Zr8vN2qL5xT9wK3mP7cF4hJ6sD1gB0yQ-other",
    );
    assert_eq!(rejected(&auth, &wrong).reason(), "bad_signature");

    // Payload changed after signing (roles escalated), signature kept.
    let good = good();
    let parts: Vec<&str> = good.split('.').collect();
    let escalated = payload("").replace("runtime.health:read", "admin");
    let forged = format!("{}.{}.{}", parts[0], b64(escalated.as_bytes()), parts[2]);
    assert_eq!(rejected(&auth, &forged).reason(), "bad_signature");

    // Every single-character change of the signature.
    let sig = parts[2];
    for i in 0..sig.len() {
        let mut bytes = sig.as_bytes().to_vec();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let token = format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            String::from_utf8(bytes).unwrap()
        );
        assert_eq!(rejected(&auth, &token).reason(), "bad_signature", "{i}");
    }
}

#[test]
fn crit_and_b64_headers() {
    let auth = auth();
    for (header, reason) in [
        (r#"{"alg":"HS256","crit":["exp"]}"#, "crit_header"),
        (r#"{"alg":"HS256","crit":[]}"#, "crit_header"),
        (r#"{"alg":"HS256","crit":null}"#, "crit_header"),
        (
            r#"{"alg":"HS256","crit":["b64"],"b64":false}"#,
            "crit_header",
        ),
        (r#"{"alg":"HS256","b64":false}"#, "b64_header"),
        (r#"{"alg":"HS256","b64":true}"#, "b64_header"),
    ] {
        assert_eq!(
            rejected(&auth, &sign_raw(header, &payload(""), SECRET)).reason(),
            reason,
            "{header}"
        );
    }
    // jku / x5u / jwk / x5c / kid are ignored: there is one key and nothing is fetched.
    let ignored = r#"{"alg":"HS256","kid":"../../etc/passwd","jku":"https://evil.example/jwks","x5u":"https://evil.example/x","jwk":{"kty":"oct","k":"AAAA"}}"#;
    accepted(&auth, &sign_raw(ignored, &payload(""), SECRET));
}

#[test]
fn exp_and_nbf_types() {
    let auth = auth();
    let without_exp = payload("").replace(&format!(r#""exp":{},"#, NOW + 3600), "");
    assert_eq!(
        rejected(&auth, &sign_raw(HS256, &without_exp, SECRET)).reason(),
        "missing_exp"
    );
    for exp in [
        r#""4000000000""#,
        "null",
        "1e300",
        "-1",
        "true",
        "[4000000000]",
        "{}",
        "253402300800",
        "18446744073709551615",
    ] {
        let p = payload("").replace(
            &format!(r#""exp":{}"#, NOW + 3600),
            &format!(r#""exp":{exp}"#),
        );
        assert_eq!(
            rejected(&auth, &sign_raw(HS256, &p, SECRET)).reason(),
            "bad_exp",
            "{exp}"
        );
    }
    for nbf in [r#""0""#, "null", "1e300", "-1", "false"] {
        let p = payload(&format!(r#""nbf":{nbf}"#));
        assert_eq!(
            rejected(&auth, &sign_raw(HS256, &p, SECRET)).reason(),
            "bad_nbf",
            "{nbf}"
        );
    }
    for iat in [r#""x""#, "null", "-5"] {
        let p = payload("").replace(&format!(r#""iat":{NOW}"#), &format!(r#""iat":{iat}"#));
        assert_eq!(
            rejected(&auth, &sign_raw(HS256, &p, SECRET)).reason(),
            "bad_iat",
            "{iat}"
        );
    }
    // A fractional exp, even in the future: RFC 7519 section 2 allows it, and the shared
    // NumericDate rule refuses it (tower_auth_core::jose says why).
    let p = payload("").replace(
        &format!(r#""exp":{}"#, NOW + 3600),
        &format!(r#""exp":{}.75"#, NOW + 3600),
    );
    assert_eq!(
        rejected(&auth, &sign_raw(HS256, &p, SECRET)).reason(),
        "bad_exp"
    );
}

#[test]
fn other_claim_types() {
    let auth = auth();
    for (from, to, reason) in [
        (
            r#""roles":["runtime.health:read"]"#,
            r#""roles":"runtime.health:read""#,
            "bad_roles",
        ),
        (
            r#""roles":["runtime.health:read"]"#,
            r#""roles":["a",1]"#,
            "bad_roles",
        ),
        (
            r#""roles":["runtime.health:read"]"#,
            r#""roles":[null]"#,
            "bad_roles",
        ),
        (
            r#""roles":["runtime.health:read"]"#,
            r#""roles":{"a":true}"#,
            "bad_roles",
        ),
        (r#""sub":"ops""#, r#""sub":"""#, "bad_subject"),
        (r#""sub":"ops""#, r#""sub":42"#, "bad_subject"),
        (r#""sub":"ops","#, "", "bad_subject"),
        (r#""jti":"j-1""#, r#""jti":7"#, "bad_jti"),
    ] {
        let p = payload("").replace(from, to);
        assert_ne!(p, payload(""));
        assert_eq!(
            rejected(&auth, &sign_raw(HS256, &p, SECRET)).reason(),
            reason,
            "{to}"
        );
    }
    // No roles at all: a valid identity without roles.
    let p = payload("").replace(r#""roles":["runtime.health:read"],"#, "");
    assert!(
        accepted(&auth, &sign_raw(HS256, &p, SECRET))
            .roles()
            .is_empty()
    );
}

#[test]
fn header_or_payload_not_a_json_object() {
    let auth = auth();
    for header in ["[]", "\"HS256\"", "null", "{", "{\"alg\":\"HS256\"}\u{0}"] {
        let t = sign_raw(header, &payload(""), SECRET);
        assert_eq!(
            rejected(&auth, &t).reason(),
            "malformed_header",
            "{header:?}"
        );
    }
    // Not UTF-8.
    let input = format!(
        "{}.{}",
        b64(b"{\"alg\":\"HS256\",\"x\":\"\xff\"}"),
        b64(payload("").as_bytes())
    );
    assert_eq!(
        rejected(&auth, &sign_input(&input, Sha::S256, SECRET)).reason(),
        "malformed_header"
    );
    // A payload that is not an object cannot say it is ours: someone else's, or nobody's.
    for body in ["[]", "\"auth-hmac\"", "42", "{"] {
        not_mine(&auth, &sign_raw(HS256, body, SECRET));
    }
}

#[test]
fn duplicate_member_names() {
    let auth = auth();
    // In the payload: `sub` twice, `iss` twice, `exp` twice, escapes that spell the same name.
    for extra in [
        r#""sub":"root""#,
        r#""iss":"auth-hmac""#,
        r#""exp":4000000000"#,
        r#""\u0073ub":"root""#,
    ] {
        let t = sign_raw(HS256, &payload(extra), SECRET);
        assert_eq!(rejected(&auth, &t).reason(), "malformed_payload", "{extra}");
    }
    // Nested duplicates too.
    let t = sign_raw(HS256, &payload(r#""ctx":{"a":1,"a":2}"#), SECRET);
    assert_eq!(rejected(&auth, &t).reason(), "malformed_payload");
    // In the header.
    for header in [
        r#"{"alg":"HS256","alg":"HS256"}"#,
        r#"{"alg":"none","alg":"HS256"}"#,
        r#"{"alg":"HS256","typ":"JWT","typ":"JWT"}"#,
    ] {
        let t = sign_raw(header, &payload(""), SECRET);
        assert_eq!(rejected(&auth, &t).reason(), "malformed_header", "{header}");
    }
}

#[test]
fn deep_nesting() {
    let auth = auth();
    let deep = format!(r#""ctx":{}1{}"#, "[".repeat(10_000), "]".repeat(10_000));
    let t = sign_raw(HS256, &payload(&deep), SECRET);
    assert!(t.len() > MAX_CREDENTIAL_LEN);
    assert_eq!(rejected(&auth, &t).reason(), "credential_too_large");
    let deep = format!(r#""ctx":{}1{}"#, "[".repeat(200), "]".repeat(200));
    let t = sign_raw(HS256, &payload(&deep), SECRET);
    assert_eq!(rejected(&auth, &t).reason(), "malformed_payload");
}

#[test]
fn padding_and_standard_alphabet_in_segments() {
    let auth = auth();
    let good = good();
    let parts: Vec<&str> = good.split('.').collect();
    // Padding on any segment: refused. On the header or signature the payload still names
    // our issuer, so the refusal is ours; a padded payload cannot be read strictly, so it
    // names no issuer and every validator passes it on (the chain answers 401 invalid_token
    // for a credential nobody claims; tests/malformed.rs holds both validators to that).
    for i in 0..3 {
        let mut p: Vec<String> = parts.iter().map(|s| (*s).to_owned()).collect();
        p[i].push('=');
        let t = p.join(".");
        if i == 1 {
            not_mine(&auth, &t);
        } else {
            assert_eq!(rejected(&auth, &t).reason(), "bad_base64url", "{i}");
        }
    }
    // A payload whose base64url uses `-`/`_`, rewritten in the standard alphabet (`+`/`/`).
    let tricky = payload(r#""note":"?>?>?>~~~""#);
    let url = b64(tricky.as_bytes());
    assert!(url.contains('-') || url.contains('_'), "{url}");
    let standard = url.replace('-', "+").replace('_', "/");
    let signed = sign_raw(HS256, &tricky, SECRET);
    let sig = signed.rsplit('.').next().unwrap();
    let t = format!("{}.{standard}.{sig}", parts[0]);
    not_mine(&auth, &t);
    // And in the signature.
    let sig_std = sig.replace('-', "+").replace('_', "/");
    if sig_std != sig {
        let t = format!("{}.{}.{sig_std}", parts[0], b64(tricky.as_bytes()));
        assert_eq!(rejected(&auth, &t).reason(), "bad_base64url");
    }
    // Non-canonical base64 (trailing bits set) is refused too.
    let last = parts[2].chars().last().unwrap();
    let tweaked = match last {
        'A' => 'B',
        'E' => 'F',
        c => {
            if c == 'Q' {
                'R'
            } else {
                c
            }
        }
    };
    if tweaked != last {
        let t = format!(
            "{}.{}.{}{tweaked}",
            parts[0],
            parts[1],
            &parts[2][..parts[2].len() - 1]
        );
        assert_eq!(rejected(&auth, &t).reason(), "bad_signature");
    }
}

#[test]
fn not_exactly_three_segments() {
    let auth = auth();
    let good = good();
    let parts: Vec<&str> = good.split('.').collect();
    for t in [
        format!("{}.{}", parts[0], parts[1]),
        format!("{good}.{}", parts[2]),
        format!(
            "{}.{}.{}.{}.{}",
            parts[0], parts[1], parts[2], parts[2], parts[2]
        ),
        format!("{good}."),
    ] {
        assert_eq!(rejected(&auth, &t).reason(), "not_three_segments", "{t}");
    }
    // A JWE-shaped value, a bare word or dots only: nothing says it is ours.
    for t in ["eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d", "abc", "..", "....", "."] {
        not_mine(&auth, t);
    }
}

#[test]
fn oversize_tokens_are_rejected_before_decoding() {
    let auth = auth();
    let big = format!("{}.{}", good(), "A".repeat(MAX_CREDENTIAL_LEN));
    assert_eq!(rejected(&auth, &big).reason(), "credential_too_large");
}

#[test]
fn foreign_issuers_are_not_mine() {
    let auth = auth();
    // An HS256 token claiming an OIDC issuer, MAC'd with some key (the issuer's RSA public key
    // in the classic confusion attack): never ours, so the OIDC validator refuses it.
    for iss in [
        r#""https://idp.example.com""#,
        r#""auth-hmac/""#,
        r#""Auth-hmac""#,
        r#""""#,
        "null",
        "5",
    ] {
        let p = payload("").replace(r#""iss":"auth-hmac""#, &format!(r#""iss":{iss}"#));
        not_mine(
            &auth,
            &sign_raw(HS256, &p, "-----BEGIN PUBLIC KEY-----MIIBIjANBgkqhkiG9w0B"),
        );
        not_mine(&auth, &sign_raw(r#"{"alg":"none"}"#, &p, SECRET));
    }
    let p = payload("").replace(r#""iss":"auth-hmac","#, "");
    not_mine(
        &auth,
        &sign_raw(HS256, &p.replace(r#","iss":"auth-hmac""#, ""), SECRET),
    );
    // An RS256 OIDC token.
    not_mine(
        &auth,
        "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlLmNvbSIsInN1YiI6InUxIn0.c2ln",
    );
}

#[test]
fn mutations_never_panic_and_never_pass() {
    let auth = auth();
    let good = good();
    let alphabet = b"AZaz09-_.=+/ \x00";
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let mut bytes = good.as_bytes().to_vec();
        for _ in 0..=(next() % 3) {
            let at = (next() as usize) % bytes.len();
            match next() % 3 {
                0 => bytes[at] = alphabet[(next() as usize) % alphabet.len()],
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, alphabet[(next() as usize) % alphabet.len()]),
            }
        }
        let Ok(token) = String::from_utf8(bytes) else {
            continue;
        };
        if token == good {
            continue;
        }
        // Some mutations are harmless (a changed `typ` letter keeps the MAC invalid, so
        // only the original bytes verify); none may be accepted.
        assert!(
            !matches!(
                check(&auth, &token),
                tower_auth_core::Outcome::Authenticated(_)
            ),
            "{token}"
        );
    }
}
