//! JWT checks: routing by `iss`, the issuer's header and claim policy, the signature, and
//! the identity.
//!
//! The token is read by [`tower_auth_core::jose`], the rules it shares with the HMAC
//! validator (structure, header parameters, NumericDate, audience); what is OIDC's own is
//! here: the algorithm allow-list, `typ`, and keys from the issuer's JWKS. jsonwebtoken is
//! used for the signature only, and times are checked against the injected
//! [`Clock`](tower_auth_core::Clock).

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, AlgorithmFamily};
use serde_json::{Map, Value};
use tower_auth_core::jose::{self, CompactJws, JoseError, Peeked, TimeClaims};
use tower_auth_core::{Admins, AuthError, AuthMethod, Identity};

use crate::config::Issuer;
use crate::keys::Key;

/// Who a token belongs to.
// Built once per token and matched at once, as `Peeked` is.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Routed<'t> {
    /// Not a JWT naming one of our issuers.
    NotMine,
    /// Over the size limit: refused before decoding.
    TooLarge,
    /// One of ours (by index), split and read, not yet judged.
    Mine(usize, CompactJws<'t>),
}

/// Finds the issuer of `token` by its unverified `iss`: an exact, case-sensitive match on a
/// configured issuer (RFC 7519 section 4.1.1, OpenID Connect Core section 3.1.3.7). No
/// network, no cryptography.
pub(crate) fn route<'t, S: AsRef<str>>(token: &'t str, issuers: &[S]) -> Routed<'t> {
    match CompactJws::peek_for(token, issuers) {
        Peeked::TooLarge => Routed::TooLarge,
        Peeked::NoIssuer => Routed::NotMine,
        Peeked::Issuer(jws) => match issuers.iter().position(|i| i.as_ref() == jws.issuer()) {
            Some(index) => Routed::Mine(index, jws),
            None => Routed::NotMine,
        },
    }
}

/// What the header allows.
pub(crate) struct Header<'t> {
    pub(crate) alg: Algorithm,
    pub(crate) kid: Option<&'t str>,
}

/// Checks the JOSE header against the shared rules and the issuer's policy.
pub(crate) fn check_header<'j>(
    jws: &'j CompactJws<'_>,
    issuer: &Issuer,
) -> Result<Header<'j>, AuthError> {
    let header = jws.header()?;
    // RFC 8725 section 3.1: never accept unsecured JWTs, whatever the spelling.
    if header.alg().eq_ignore_ascii_case("none") {
        return Err(AuthError::invalid_token("alg_none"));
    }
    let alg: Algorithm = header
        .alg()
        .parse()
        .map_err(|_| AuthError::invalid_token("unsupported_alg"))?;
    if alg.family() == AlgorithmFamily::Hmac {
        return Err(AuthError::invalid_token("hmac_alg_for_oidc_issuer"));
    }
    if !issuer.algorithms.contains(&alg) {
        return Err(AuthError::invalid_token("alg_not_allowed"));
    }
    if let Some(required) = &issuer.required_typ {
        // RFC 7515 section 4.1.9: media types compare case-insensitively and the
        // "application/" prefix may be left out.
        let strip = |t: &str| {
            let lower = t.to_ascii_lowercase();
            lower
                .strip_prefix("application/")
                .map(str::to_owned)
                .unwrap_or(lower)
        };
        if header.typ().is_none_or(|t| strip(t) != strip(required)) {
            return Err(AuthError::invalid_token("typ_mismatch"));
        }
    }
    // `jku`, `x5u`, `jwk` and `x5c` are never read: keys come only from the issuer's JWKS.
    if jws.signature_b64().is_empty() {
        return Err(JoseError::EmptySignature.into());
    }
    Ok(Header {
        alg,
        kid: header.kid(),
    })
}

/// Checks the registered claims; returns `exp`.
pub(crate) fn check_claims(
    claims: &Map<String, Value>,
    issuer: &Issuer,
    now: u64,
    leeway: u64,
) -> Result<u64, AuthError> {
    jose::subject(claims)?;
    jose::require_audience(claims, &issuer.audiences)?;
    // RFC 7519 section 4.1.4: the token is valid only before `exp`.
    let times = TimeClaims::read(claims)?;
    times.check(now, leeway)?;
    crate::dpop::check_policy(claims, issuer.dpop)?;
    Ok(times.exp)
}

/// Verifies the signature of `jws` with `key`.
pub(crate) fn verify(jws: &CompactJws<'_>, key: &Key, alg: Algorithm) -> bool {
    if !key.fits(alg) {
        return false;
    }
    if let Some(len) = match alg {
        Algorithm::ES256 => Some(64),
        Algorithm::ES384 => Some(96),
        _ => None,
    } {
        // RFC 7518 section 3.4: R || S, each exactly half; DER is not JWS. A zero R or S
        // is never valid (CVE-2022-21449), whatever the backend does with it.
        let mut buf = [0u8; 96];
        let Ok(sig) = jws.decode_signature(&mut buf) else {
            return false;
        };
        let (r, s) = sig.split_at(sig.len() / 2);
        if sig.len() != len || r.iter().all(|&b| b == 0) || s.iter().all(|&b| b == 0) {
            return false;
        }
    }
    jsonwebtoken::crypto::verify(
        jws.signature_b64(),
        jws.signing_input().as_bytes(),
        &key.decoding,
        alg,
    )
    .unwrap_or(false)
}

/// Builds the identity from verified claims.
pub(crate) fn identity(
    claims: Map<String, Value>,
    issuer: &Issuer,
    exp: u64,
    admins: &Admins,
) -> Identity {
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut roles: Vec<String> = Vec::new();
    let path = issuer.roles_claim.as_str();
    // A namespaced claim such as `https://example.com/roles` is one name, not a path.
    let configured = claims.get(path).or_else(|| lookup_path(&claims, path));
    if let Some(value) = configured {
        collect_roles(value, path == "scope", &mut roles);
    }
    if path != "scope"
        && let Some(scope) = claims.get("scope")
    {
        collect_roles(scope, true, &mut roles);
    }
    if path != "scp"
        && let Some(scp) = claims.get("scp")
    {
        collect_roles(scp, true, &mut roles);
    }
    if !issuer.roles_prefix.is_empty() {
        // Empty names are no roles, and must not become the bare prefix.
        roles.retain(|role| !role.is_empty());
        for role in &mut roles {
            role.insert_str(0, &issuer.roles_prefix);
        }
    }
    let mut builder = Identity::builder(
        subject,
        AuthMethod::Oidc {
            issuer: Arc::clone(&issuer.issuer),
        },
    )
    .roles(roles)
    .expires_at(UNIX_EPOCH + Duration::from_secs(exp));
    // Validated as a whole number of seconds when present.
    if let Some(iat) = claims.get("iat").and_then(Value::as_u64) {
        builder = builder.issued_at(UNIX_EPOCH + Duration::from_secs(iat));
    }
    if let Some(name) = claims.get("name").and_then(Value::as_str) {
        builder = builder.name(name);
    }
    if let Some(email) = claims.get("email").and_then(Value::as_str) {
        // Only the boolean `true` vouches for the address (OpenID Connect Core 1.0 section
        // 5.1): a missing claim, `false` or the string "true" leaves it unverified.
        let verified = claims.get("email_verified") == Some(&Value::Bool(true));
        builder = builder.email(email).email_verified(verified);
    }
    // RFC 8705 section 3: a certificate-bound token holds only with its certificate, which
    // the layer compares on every request (the cache keeps the token's other checks).
    if let Some(thumbprint) = tower_auth_core::certificate_binding(&claims) {
        builder = builder.bound_certificate(thumbprint);
    }
    builder.admins(admins).claims(claims).build()
}

fn lookup_path<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut segments = path.split('.');
    let mut value = claims.get(segments.next()?)?;
    for segment in segments {
        value = value.as_object()?.get(segment)?;
    }
    Some(value)
}

fn collect_roles(value: &Value, split_string: bool, roles: &mut Vec<String>) {
    match value {
        Value::String(s) if split_string => roles.extend(s.split(' ').map(str::to_owned)),
        Value::String(s) => roles.push(s.clone()),
        Value::Array(items) => {
            roles.extend(items.iter().filter_map(Value::as_str).map(str::to_owned))
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;

    use super::*;
    use crate::config::{IssuerConfig, OidcConfig};

    fn issuer(f: impl FnOnce(IssuerConfig) -> IssuerConfig) -> Arc<Issuer> {
        let config = OidcConfig::builder()
            .issuer(f(IssuerConfig::new("https://idp.example", "api")))
            .build()
            .unwrap();
        Arc::clone(&config.issuers[0])
    }

    fn b64(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    fn jwt(header: &Value, claims: &Value) -> String {
        format!("{}.{}.c2ln", b64(header), b64(claims))
    }

    const ISSUERS: [&str; 2] = ["https://idp.example", "https://other.example"];

    fn mine(token: &str) -> CompactJws<'_> {
        match route(token, &ISSUERS) {
            Routed::Mine(0, t) => t,
            Routed::Mine(..) => panic!("routed to another issuer"),
            Routed::TooLarge => panic!("too large"),
            Routed::NotMine => panic!("not mine"),
        }
    }

    fn claims_of(token: &str) -> Map<String, Value> {
        mine(token).claims().unwrap()
    }

    fn claims(extra: Value) -> Value {
        let mut base = json!({"iss": "https://idp.example", "sub": "u1", "aud": "api", "exp": 2_000, "iat": 1_000});
        base.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        base
    }

    #[test]
    fn routing_is_by_exact_iss() {
        let h = json!({"alg": "RS256"});
        let t = jwt(&h, &claims(json!({})));
        assert!(matches!(route(&t, &ISSUERS), Routed::Mine(0, _)));
        let t = jwt(&h, &claims(json!({"iss": "https://other.example"})));
        assert!(matches!(route(&t, &ISSUERS), Routed::Mine(1, _)));
        for iss in [
            json!("https://idp.example/"),
            json!("HTTPS://IDP.EXAMPLE"),
            json!("http://idp.example"),
            json!(""),
            json!(null),
            json!(["https://idp.example"]),
            json!("https://unknown"),
        ] {
            let t = jwt(&h, &claims(json!({ "iss": iss })));
            assert!(matches!(route(&t, &ISSUERS), Routed::NotMine), "{iss}");
        }
        let no_iss = jwt(&h, &json!({"sub": "x"}));
        assert!(matches!(route(&no_iss, &ISSUERS), Routed::NotMine));
        assert!(matches!(route("opaque-token", &ISSUERS), Routed::NotMine));
    }

    #[test]
    fn structure_errors_of_our_tokens_are_ours_to_refuse() {
        let iss = issuer(|i| i);
        let h = b64(&json!({"alg": "RS256"}));
        let p = b64(&claims(json!({})));
        // Refused by us when the payload still names our issuer; passed on (and answered
        // 401 by the chain) when it cannot be read at all.
        let verdict = |token: &str| match route(token, &ISSUERS) {
            Routed::NotMine => "not mine",
            Routed::TooLarge => "too large",
            Routed::Mine(_, jws) => match check_header(&jws, &iss) {
                Err(e) => e.reason(),
                Ok(_) => jws.claims().err().map_or("ok", JoseError::reason),
            },
        };
        for (token, reason) in [
            (format!("{h}.{p}"), "not_three_segments"),
            (format!("{h}.{p}.sig.x.y"), "not_three_segments"),
            (format!("{h}.{p}=.sig"), "not mine"),
            (format!("{h}.{p}.si+g"), "bad_base64url"),
            (format!("{h}.{p}.si/g"), "bad_base64url"),
            (format!("e30.{}.sig", b64(&json!([1]))), "not mine"),
            (format!("bm90IGpzb24.{p}.sig"), "malformed_header"),
            (format!("{}.{p}.sig", b64(&json!([1]))), "malformed_header"),
            (
                format!(
                    "{}.{p}.sig",
                    URL_SAFE_NO_PAD.encode(b"{\"alg\":\"RS256\",\"alg\":\"none\"}")
                ),
                "malformed_header",
            ),
            (
                format!(
                    "{h}.{}.sig",
                    URL_SAFE_NO_PAD
                        .encode(br#"{"iss":"https://idp.example","iss":"https://idp.example"}"#)
                ),
                "malformed_payload",
            ),
            (format!("{h}.{p}.sig"), "ok"),
        ] {
            assert_eq!(verdict(&token), reason, "{token}");
        }
    }

    #[test]
    fn header_policy() {
        let iss = issuer(|i| i.algorithms(["RS256", "ES256"]));
        let c = claims(json!({}));
        for (header, reason) in [
            (json!({"alg": "none"}), "alg_none"),
            (json!({"alg": "nOnE"}), "alg_none"),
            (json!({}), "missing_alg"),
            (json!({"alg": 1}), "missing_alg"),
            (json!({"alg": "HS256"}), "hmac_alg_for_oidc_issuer"),
            (json!({"alg": "PS256"}), "alg_not_allowed"),
            (json!({"alg": "XX1"}), "unsupported_alg"),
            (json!({"alg": "RS256", "crit": ["exp"]}), "crit_header"),
            (json!({"alg": "RS256", "crit": []}), "crit_header"),
            (json!({"alg": "RS256", "b64": false}), "b64_header"),
            (json!({"alg": "RS256", "kid": 7}), "bad_kid"),
            (json!({"alg": "RS256", "kid": null}), "bad_kid"),
            (
                json!({"alg": "RS256", "kid": "k".repeat(jose::MAX_KID_LEN + 1)}),
                "bad_kid",
            ),
            (json!({"alg": "RS256", "typ": 1}), "bad_typ"),
        ] {
            let t = jwt(&header, &c);
            assert_eq!(
                check_header(&mine(&t), &iss).err().map(|e| e.reason()),
                Some(reason),
                "{header}"
            );
        }
        let t = jwt(
            &json!({"alg": "RS256", "kid": "../../etc\r\n", "jku": "http://evil", "x5u": "http://evil"}),
            &c,
        );
        let token = mine(&t);
        let h = check_header(&token, &iss).unwrap();
        assert_eq!((h.alg, h.kid), (Algorithm::RS256, Some("../../etc\r\n")));
        let empty_sig = format!("{}.{}.", b64(&json!({"alg": "RS256"})), b64(&c));
        assert_eq!(
            check_header(&mine(&empty_sig), &iss)
                .err()
                .map(|e| e.reason()),
            Some("empty_signature")
        );
    }

    #[test]
    fn typ_requirement() {
        let iss = issuer(|i| i.required_typ("at+jwt"));
        let c = claims(json!({}));
        for (typ, ok) in [
            (json!("at+jwt"), true),
            (json!("application/AT+JWT"), true),
            (json!("JWT"), false),
            (json!(null), false),
        ] {
            let mut h = json!({"alg": "RS256"});
            if !typ.is_null() {
                h["typ"] = typ.clone();
            }
            let t = jwt(&h, &c);
            assert_eq!(check_header(&mine(&t), &iss).is_ok(), ok, "{typ}");
        }
        let lax = issuer(|i| i);
        let t = jwt(&json!({"alg": "RS256", "typ": "JWT"}), &c);
        assert!(check_header(&mine(&t), &lax).is_ok());
    }

    #[test]
    fn claim_policy() {
        let iss = issuer(|i| i.audience("api2"));
        let now = 1_500;
        for (extra, reason) in [
            (json!({"exp": 1_440}), Some("expired")),
            (json!({"exp": 1_441}), None),
            (json!({"exp": null}), Some("bad_exp")),
            (json!({"exp": "2000"}), Some("bad_exp")),
            (json!({"exp": 1e300}), Some("bad_exp")),
            (json!({"exp": -5}), Some("bad_exp")),
            // RFC 7519 section 2 allows fractions; tower_auth_core::jose refuses them.
            (json!({"exp": 1_600.5}), Some("bad_exp")),
            (json!({"iat": 1_000.5}), Some("bad_iat")),
            (json!({"nbf": 1_561}), Some("not_yet_valid")),
            (json!({"nbf": 1_560}), None),
            (json!({"nbf": "1"}), Some("bad_nbf")),
            (json!({"iat": 1_550}), None),
            (json!({"iat": 1_600}), Some("issued_in_future")),
            (json!({"aud": "other"}), Some("aud_mismatch")),
            (json!({"aud": []}), Some("aud_mismatch")),
            (json!({"aud": ["other", 1, "api"]}), Some("bad_aud")),
            (json!({"aud": ["other", "api2"]}), None),
            (json!({"aud": null}), Some("bad_aud")),
            (json!({"sub": ""}), Some("bad_subject")),
        ] {
            let t = jwt(&json!({"alg": "RS256"}), &claims(extra.clone()));
            assert_eq!(
                check_claims(&claims_of(&t), &iss, now, 60)
                    .err()
                    .map(|e| e.reason()),
                reason,
                "{extra}"
            );
        }
        let mut missing = claims(json!({}));
        missing.as_object_mut().unwrap().remove("exp");
        let t = jwt(&json!({"alg": "RS256"}), &missing);
        assert_eq!(
            check_claims(&claims_of(&t), &iss, now, 60)
                .err()
                .map(|e| e.reason()),
            Some("missing_exp")
        );
        missing.as_object_mut().unwrap().remove("aud");
        missing["exp"] = json!(2_000);
        let t = jwt(&json!({"alg": "RS256"}), &missing);
        assert_eq!(
            check_claims(&claims_of(&t), &iss, now, 60)
                .err()
                .map(|e| e.reason()),
            Some("bad_aud")
        );
    }

    #[test]
    fn identity_roles_from_path_scope_and_scp() {
        let admins = Admins::new(["boss@example.com"]);
        let nested = issuer(|i| i.roles_claim("realm_access.roles"));
        let c = claims(
            json!({"realm_access": {"roles": ["a", "b", 3]}, "scope": "s1 s2", "scp": ["p1"],
                              "email": "boss@example.com", "email_verified": true, "name": "Boss"}),
        );
        let id = identity(c.as_object().unwrap().clone(), &nested, 2_000, &admins);
        assert_eq!(
            id.roles().iter().map(String::as_str).collect::<Vec<_>>(),
            ["a", "admin", "b", "p1", "s1", "s2"]
        );
        assert_eq!(
            (id.subject(), id.email(), id.name(), id.email_verified()),
            ("u1", Some("boss@example.com"), Some("Boss"), true)
        );
        assert_eq!(
            id.method(),
            &AuthMethod::Oidc {
                issuer: "https://idp.example".into()
            }
        );
        assert_eq!(
            id.expires_at(),
            Some(UNIX_EPOCH + Duration::from_secs(2_000))
        );
        assert_eq!(
            id.issued_at(),
            Some(UNIX_EPOCH + Duration::from_secs(1_000)),
            "what a subject cut-off is judged by"
        );
        assert_eq!(id.claims().unwrap()["scope"], "s1 s2");

        let namespaced = issuer(|i| i.roles_claim("https://example.com/roles"));
        let c = claims(json!({"https://example.com/roles": "editor", "scp": "x y"}));
        let id = identity(
            c.as_object().unwrap().clone(),
            &namespaced,
            2_000,
            &Admins::default(),
        );
        assert_eq!(
            id.roles().iter().map(String::as_str).collect::<Vec<_>>(),
            ["editor", "x", "y"]
        );
    }

    /// SECURITY.md M1.
    #[test]
    fn only_email_verified_true_vouches_for_the_email() {
        let admins = Admins::new(["boss@example.com"]);
        let iss = issuer(|i| i);
        for (verified, admin) in [
            (None, false),
            (Some(json!(false)), false),
            (Some(json!("true")), false),
            (Some(json!(1)), false),
            (Some(json!(true)), true),
        ] {
            let mut c = claims(json!({"email": "boss@example.com"}));
            if let Some(v) = &verified {
                c["email_verified"] = v.clone();
            }
            let id = identity(c.as_object().unwrap().clone(), &iss, 2_000, &admins);
            assert_eq!(id.email(), Some("boss@example.com"));
            assert_eq!(
                (id.email_verified(), id.has_role("admin")),
                (admin, admin),
                "{verified:?}"
            );
        }
    }

    /// SECURITY.md M3.
    #[test]
    fn roles_prefix_marks_every_role_read_from_the_token() {
        let partner = issuer(|i| i.roles_claim("groups").roles_prefix("partner:"));
        let c = claims(
            json!({"groups": ["admin", "orders:write", ""], "scope": "read  write",
                              "scp": ["x"], "sub": "ops"}),
        );
        let id = identity(
            c.as_object().unwrap().clone(),
            &partner,
            2_000,
            &Admins::new(["https://idp.example#ops"]),
        );
        assert_eq!(
            id.roles().iter().map(String::as_str).collect::<Vec<_>>(),
            [
                "admin",
                "partner:admin",
                "partner:orders:write",
                "partner:read",
                "partner:write",
                "partner:x"
            ],
            "only AUTH_ADMINS grants the bare admin role"
        );
        let c = claims(json!({"groups": ["admin"]}));
        let id = identity(
            c.as_object().unwrap().clone(),
            &partner,
            2_000,
            &Admins::default(),
        );
        assert!(!id.has_role("admin") && id.has_role("partner:admin"));
    }
}
