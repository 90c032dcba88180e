//! JWT checks: structure, routing by `iss`, header, claims, signature, and the identity.
//!
//! jsonwebtoken is used for the signature only; the header and claims are parsed here,
//! strictly, and times are checked against the injected [`Clock`](tower_auth_core::Clock).

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, AlgorithmFamily};
use serde_json::{Map, Value};
use tower_auth_core::{Admins, AuthError, AuthMethod, Identity};

use crate::config::Issuer;
use crate::keys::Key;

/// A longer `kid` is refused before any lookup.
pub(crate) const MAX_KID_LEN: usize = 256;

/// Times after 9999-12-31 are refused as nonsense rather than carried around as huge numbers.
const MAX_NUMERIC_DATE: u64 = 253_402_300_799;

/// Just the `iss` of a payload; serde rejects a duplicate `iss`, which then takes the strict path.
#[derive(serde::Deserialize)]
struct IssPeek<'a> {
    #[serde(borrow, default)]
    iss: Option<std::borrow::Cow<'a, str>>,
}

/// A token split and decoded, with its issuer found.
pub(crate) struct Token<'t> {
    signing_input: &'t str,
    signature: &'t str,
    header: Map<String, Value>,
    pub(crate) claims: Map<String, Value>,
}

/// Who a token belongs to.
pub(crate) enum Routed<'t> {
    /// Not a JWT naming one of our issuers.
    NotMine,
    /// One of ours (by index), but malformed.
    Malformed(usize, &'static str),
    /// One of ours (by index), well-formed so far.
    Mine(usize, Token<'t>),
}

/// What the header allows.
pub(crate) struct Header<'t> {
    pub(crate) alg: Algorithm,
    pub(crate) kid: Option<&'t str>,
}

fn is_b64url(segment: &str) -> bool {
    segment
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn decode_segment(segment: &str) -> Option<Vec<u8>> {
    // The default engine refuses padding and non-canonical trailing bits.
    URL_SAFE_NO_PAD.decode(segment).ok()
}

/// Finds the issuer of `token` by its unverified `iss`: an exact, case-sensitive match on a
/// configured issuer (RFC 7519 section 4.1.1, OpenID Connect Core section 3.1.3.7). No
/// network, no cryptography.
pub(crate) fn route<'t, S: AsRef<str>>(token: &'t str, issuers: &[S]) -> Routed<'t> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return malformed_or_not_mine(token, issuers, "not_three_segments");
    };
    // RFC 7515 section 2: base64url without padding; '=', '+' and '/' are not in it.
    if ![header, payload, signature].iter().all(|s| is_b64url(s)) {
        return malformed_or_not_mine(token, issuers, "bad_base64url");
    }
    let Some(payload) = decode_segment(payload) else {
        return malformed_or_not_mine(token, issuers, "bad_payload");
    };
    // Most foreign tokens (HMAC role tokens further down the chain) leave here, after a
    // scan without allocation; only a payload that names one of ours is parsed strictly.
    if let Ok(peek) = serde_json::from_slice::<IssPeek<'_>>(&payload)
        && peek
            .iss
            .as_deref()
            .is_none_or(|iss| !issuers.iter().any(|i| i.as_ref() == iss))
    {
        return Routed::NotMine;
    }
    let Some(claims) = tower_auth_core::parse_strict_object(&payload) else {
        return malformed_or_not_mine(token, issuers, "bad_payload");
    };
    let Some(index) = claims
        .get("iss")
        .and_then(Value::as_str)
        .and_then(|iss| issuers.iter().position(|i| i.as_ref() == iss))
    else {
        return Routed::NotMine;
    };
    let Some(header) =
        decode_segment(header).and_then(|bytes| tower_auth_core::parse_strict_object(&bytes))
    else {
        return Routed::Malformed(index, "bad_header");
    };
    Routed::Mine(
        index,
        Token {
            signing_input: &token[..token.len() - signature.len() - 1],
            signature,
            header,
            claims,
        },
    )
}

/// A token that fails to parse strictly is still ours, for logging, if a lenient reading
/// of its payload names one of our issuers; either way nobody accepts it.
fn malformed_or_not_mine<'t, S: AsRef<str>>(
    token: &str,
    issuers: &[S],
    reason: &'static str,
) -> Routed<'t> {
    let Some(payload) = token.split('.').nth(1) else {
        return Routed::NotMine;
    };
    let cleaned: String = payload
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    let Ok(bytes) = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    )
    .decode(cleaned) else {
        return Routed::NotMine;
    };
    let text = String::from_utf8_lossy(&bytes);
    match issuers
        .iter()
        .position(|i| serde_json::to_string(i.as_ref()).is_ok_and(|quoted| text.contains(&quoted)))
    {
        Some(index) => Routed::Malformed(index, reason),
        None => Routed::NotMine,
    }
}

impl<'t> Token<'t> {
    /// Checks the JOSE header against the issuer's policy.
    pub(crate) fn check_header(&self, issuer: &Issuer) -> Result<Header<'_>, AuthError> {
        let alg = match self.header.get("alg") {
            Some(Value::String(alg)) => alg,
            _ => return Err(AuthError::invalid_token("missing_alg")),
        };
        // RFC 8725 section 3.1: never accept unsecured JWTs, whatever the spelling.
        if alg.eq_ignore_ascii_case("none") {
            return Err(AuthError::invalid_token("alg_none"));
        }
        let alg: Algorithm = alg
            .parse()
            .map_err(|_| AuthError::invalid_token("unsupported_alg"))?;
        if alg.family() == AlgorithmFamily::Hmac {
            return Err(AuthError::invalid_token("hmac_alg_for_oidc_issuer"));
        }
        if !issuer.algorithms.contains(&alg) {
            return Err(AuthError::invalid_token("alg_not_allowed"));
        }
        // RFC 7515 section 4.1.11: an extension we do not understand must fail the token;
        // we understand none, so any `crit` (even an empty one, which is invalid) fails.
        if self.header.contains_key("crit") {
            return Err(AuthError::invalid_token("crit_header"));
        }
        // RFC 7797: `b64` changes what is signed; we only verify the standard form.
        if self.header.contains_key("b64") {
            return Err(AuthError::invalid_token("b64_header"));
        }
        let kid = match self.header.get("kid") {
            None => None,
            Some(Value::String(kid)) if kid.len() <= MAX_KID_LEN => Some(kid.as_str()),
            Some(_) => return Err(AuthError::invalid_token("bad_kid")),
        };
        let typ = match self.header.get("typ") {
            None => None,
            Some(Value::String(typ)) => Some(typ.as_str()),
            Some(_) => return Err(AuthError::invalid_token("bad_typ")),
        };
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
            if typ.is_none_or(|t| strip(t) != strip(required)) {
                return Err(AuthError::invalid_token("typ_mismatch"));
            }
        }
        // `jku`, `x5u`, `jwk` and `x5c` are never read: keys come only from the issuer's JWKS.
        if self.signature.is_empty() {
            return Err(AuthError::invalid_token("empty_signature"));
        }
        Ok(Header { alg, kid })
    }

    /// Checks the registered claims; returns `exp`.
    pub(crate) fn check_claims(
        &self,
        issuer: &Issuer,
        now: u64,
        leeway: u64,
    ) -> Result<u64, AuthError> {
        let claims = &self.claims;
        match claims.get("sub") {
            Some(Value::String(sub)) if !sub.is_empty() => {}
            _ => return Err(AuthError::invalid_token("missing_sub")),
        }
        let audience_ok = match claims.get("aud") {
            Some(Value::String(aud)) => issuer.audiences.iter().any(|a| a == aud),
            Some(Value::Array(items)) if !items.is_empty() => {
                let mut ours = false;
                for item in items {
                    let Value::String(aud) = item else {
                        return Err(AuthError::invalid_token("bad_aud"));
                    };
                    ours |= issuer.audiences.iter().any(|a| a == aud);
                }
                ours
            }
            _ => return Err(AuthError::invalid_token("bad_aud")),
        };
        if !audience_ok {
            return Err(AuthError::invalid_token("aud_mismatch"));
        }
        // RFC 7519 section 4.1.4: the token is valid only before `exp`.
        let exp = numeric_date(claims, "exp")?.ok_or(AuthError::invalid_token("missing_exp"))?;
        if now >= exp.saturating_add(leeway) {
            return Err(AuthError::invalid_token("expired"));
        }
        if let Some(nbf) = numeric_date(claims, "nbf")?
            && nbf > now.saturating_add(leeway)
        {
            return Err(AuthError::invalid_token("not_yet_valid"));
        }
        if let Some(iat) = numeric_date(claims, "iat")?
            && iat > now.saturating_add(leeway)
        {
            return Err(AuthError::invalid_token("issued_in_future"));
        }
        Ok(exp)
    }

    /// Verifies the signature with `key`.
    pub(crate) fn verify(&self, key: &Key, alg: Algorithm) -> bool {
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
            let Some(sig) = decode_segment(self.signature) else {
                return false;
            };
            let (r, s) = sig.split_at(sig.len() / 2);
            if sig.len() != len || r.iter().all(|&b| b == 0) || s.iter().all(|&b| b == 0) {
                return false;
            }
        }
        jsonwebtoken::crypto::verify(
            self.signature,
            self.signing_input.as_bytes(),
            &key.decoding,
            alg,
        )
        .unwrap_or(false)
    }
}

/// A NumericDate (RFC 7519 section 2): only non-negative integers are accepted here, so a
/// string, null, float or 1e300 is refused rather than coerced.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, AuthError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(t) if t <= MAX_NUMERIC_DATE => Ok(Some(t)),
            _ => Err(AuthError::invalid_token("bad_time_claim")),
        },
        Some(_) => Err(AuthError::invalid_token("bad_time_claim")),
    }
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
    let mut builder = Identity::builder(
        subject,
        AuthMethod::Oidc {
            issuer: Arc::clone(&issuer.issuer),
        },
    )
    .roles(roles)
    .expires_at(UNIX_EPOCH + Duration::from_secs(exp));
    if let Some(name) = claims.get("name").and_then(Value::as_str) {
        builder = builder.name(name);
    }
    if let Some(email) = claims.get("email").and_then(Value::as_str) {
        builder = builder.email(email);
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
    use super::*;
    use crate::config::{IssuerConfig, OidcConfig};
    use serde_json::json;

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

    fn mine(token: &str) -> Token<'_> {
        match route(token, &ISSUERS) {
            Routed::Mine(0, t) => t,
            Routed::Mine(..) => panic!("routed to another issuer"),
            Routed::Malformed(_, r) => panic!("malformed: {r}"),
            Routed::NotMine => panic!("not mine"),
        }
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
    fn structure_errors_of_our_tokens_are_malformed() {
        let h = b64(&json!({"alg": "RS256"}));
        let p = b64(&claims(json!({})));
        for (token, reason) in [
            (format!("{h}.{p}"), "not_three_segments"),
            (format!("{h}.{p}.sig.x.y"), "not_three_segments"),
            (format!("{h}.{p}=.sig"), "bad_base64url"),
            (format!("{h}.{p}.si+g"), "bad_base64url"),
            (format!("{h}.{p}.si/g"), "bad_base64url"),
            (format!("e30.{}.sig", b64(&json!([1]))), "not mine"),
            (format!("bm90IGpzb24.{p}.sig"), "bad_header"),
            (format!("{}.{p}.sig", b64(&json!([1]))), "bad_header"),
            (
                format!(
                    "{}.{p}.sig",
                    URL_SAFE_NO_PAD.encode(b"{\"alg\":\"RS256\",\"alg\":\"none\"}")
                ),
                "bad_header",
            ),
            (
                format!(
                    "{h}.{}.sig",
                    URL_SAFE_NO_PAD
                        .encode(br#"{"iss":"https://idp.example","iss":"https://idp.example"}"#)
                ),
                "bad_payload",
            ),
        ] {
            match route(&token, &ISSUERS) {
                Routed::Malformed(0, r) => assert_eq!(r, reason),
                Routed::NotMine => assert_eq!(reason, "not mine"),
                _ => panic!("a {reason} token should not pass"),
            }
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
            (
                json!({"alg": "RS256", "kid": "k".repeat(MAX_KID_LEN + 1)}),
                "bad_kid",
            ),
            (json!({"alg": "RS256", "typ": 1}), "bad_typ"),
        ] {
            let t = jwt(&header, &c);
            assert_eq!(
                mine(&t).check_header(&iss).err().map(|e| e.reason()),
                Some(reason),
                "{header}"
            );
        }
        let t = jwt(
            &json!({"alg": "RS256", "kid": "../../etc\r\n", "jku": "http://evil", "x5u": "http://evil"}),
            &c,
        );
        let token = mine(&t);
        let h = token.check_header(&iss).unwrap();
        assert_eq!((h.alg, h.kid), (Algorithm::RS256, Some("../../etc\r\n")));
        let empty_sig = format!("{}.{}.", b64(&json!({"alg": "RS256"})), b64(&c));
        assert_eq!(
            mine(&empty_sig)
                .check_header(&iss)
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
            assert_eq!(mine(&t).check_header(&iss).is_ok(), ok, "{typ}");
        }
        let lax = issuer(|i| i);
        let t = jwt(&json!({"alg": "RS256", "typ": "JWT"}), &c);
        assert!(mine(&t).check_header(&lax).is_ok());
    }

    #[test]
    fn claim_policy() {
        let iss = issuer(|i| i.audience("api2"));
        let now = 1_500;
        for (extra, reason) in [
            (json!({"exp": 1_440}), Some("expired")),
            (json!({"exp": 1_441}), None),
            (json!({"exp": null}), Some("bad_time_claim")),
            (json!({"exp": "2000"}), Some("bad_time_claim")),
            (json!({"exp": 1e300}), Some("bad_time_claim")),
            (json!({"exp": -5}), Some("bad_time_claim")),
            (json!({"exp": 1_600.5}), Some("bad_time_claim")),
            (json!({"nbf": 1_561}), Some("not_yet_valid")),
            (json!({"nbf": 1_560}), None),
            (json!({"nbf": "1"}), Some("bad_time_claim")),
            (json!({"iat": 1_550}), None),
            (json!({"iat": 1_600}), Some("issued_in_future")),
            (json!({"aud": "other"}), Some("aud_mismatch")),
            (json!({"aud": []}), Some("bad_aud")),
            (json!({"aud": ["other", 1, "api"]}), Some("bad_aud")),
            (json!({"aud": ["other", "api2"]}), None),
            (json!({"aud": null}), Some("bad_aud")),
            (json!({"sub": ""}), Some("missing_sub")),
        ] {
            let t = jwt(&json!({"alg": "RS256"}), &claims(extra.clone()));
            assert_eq!(
                mine(&t)
                    .check_claims(&iss, now, 60)
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
            mine(&t)
                .check_claims(&iss, now, 60)
                .err()
                .map(|e| e.reason()),
            Some("missing_exp")
        );
        missing.as_object_mut().unwrap().remove("aud");
        missing["exp"] = json!(2_000);
        let t = jwt(&json!({"alg": "RS256"}), &missing);
        assert_eq!(
            mine(&t)
                .check_claims(&iss, now, 60)
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
                              "email": "boss@example.com", "name": "Boss"}),
        );
        let id = identity(c.as_object().unwrap().clone(), &nested, 2_000, &admins);
        assert_eq!(
            id.roles().iter().map(String::as_str).collect::<Vec<_>>(),
            ["a", "admin", "b", "p1", "s1", "s2"]
        );
        assert_eq!(
            (id.subject(), id.email(), id.name()),
            ("u1", Some("boss@example.com"), Some("Boss"))
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
}
