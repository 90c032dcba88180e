//! The JOSE header of a compact JWS, read strictly.

use std::borrow::Cow;

use serde_json::Value;

use super::JoseError;
use crate::json::parse_strict_object;

/// A longer `kid` is refused before any key lookup (RFC 7515 section 4.1.4 sets no limit;
/// real key ids are a few dozen characters, and a lookup key should be bounded).
pub const MAX_KID_LEN: usize = 256;

/// The header parameters a validator acts on, from a header that passed every shared rule.
///
/// `jku`, `x5u`, `jwk` and `x5c` are deliberately not kept: keys come from configuration,
/// never from the token that is to be verified with them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    alg: Cow<'static, str>,
    kid: Option<Box<str>>,
    typ: Option<Cow<'static, str>>,
}

/// `{"alg":"HS256","typ":"JWT"}`, byte for byte as PyJWT, jsonwebtoken and tower-auth-hmac
/// write it: most HS256 tokens carry exactly this segment, and it passes every rule.
const HS256_JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

impl Header {
    /// The header a segment spells, without decoding, when it is one of the few that most
    /// tokens carry; `None` for any other (which then takes [`parse`](Self::parse)).
    pub(crate) fn well_known(segment: &str) -> Option<Self> {
        (segment == HS256_JWT).then_some(Self {
            alg: Cow::Borrowed("HS256"),
            kid: None,
            typ: Some(Cow::Borrowed("JWT")),
        })
    }

    /// Reads a decoded header: a strict JSON object (no duplicate names, shallow) with a
    /// string `alg`, no `crit` and no `b64`, and `kid` and `typ`, when present, strings.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, JoseError> {
        let mut header = parse_strict_object(bytes).ok_or(JoseError::MalformedHeader)?;
        let alg = match header.remove("alg") {
            Some(Value::String(alg)) => Cow::Owned(alg),
            _ => return Err(JoseError::MissingAlg),
        };
        // RFC 7515 section 4.1.11: an extension listed in `crit` that the recipient does not
        // understand must fail the token. No extension is understood here, so any `crit`
        // fails it (even `[]`, which the section forbids outright).
        if header.contains_key("crit") {
            return Err(JoseError::CritHeader);
        }
        // RFC 7797: `b64` changes what is signed, and only has meaning under `crit`; the
        // standard form is the only one verified here.
        if header.contains_key("b64") {
            return Err(JoseError::B64Header);
        }
        let kid = match header.remove("kid") {
            None => None,
            Some(Value::String(kid)) if kid.len() <= MAX_KID_LEN => Some(kid.into_boxed_str()),
            Some(_) => return Err(JoseError::BadKid),
        };
        let typ = match header.remove("typ") {
            None => None,
            Some(Value::String(typ)) => Some(Cow::Owned(typ)),
            Some(_) => return Err(JoseError::BadTyp),
        };
        Ok(Self { alg, kid, typ })
    }

    /// `alg`, exactly as written (its meaning is each validator's policy).
    pub fn alg(&self) -> &str {
        &self.alg
    }

    /// `kid`, an opaque hint of at most [`MAX_KID_LEN`] bytes, if present.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// `typ`, if present.
    pub fn typ(&self) -> Option<&str> {
        self.typ.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Header, JoseError> {
        Header::parse(json.as_bytes())
    }

    #[test]
    fn shared_header_rules() {
        let long_kid = format!(
            r#"{{"alg":"RS256","kid":"{}"}}"#,
            "k".repeat(MAX_KID_LEN + 1)
        );
        let max_kid = format!(r#"{{"alg":"RS256","kid":"{}"}}"#, "k".repeat(MAX_KID_LEN));
        for (json, verdict) in [
            (r#"{"alg":"HS256","typ":"JWT"}"#, Ok(())),
            (r#"{"alg":"none"}"#, Ok(())),
            (max_kid.as_str(), Ok(())),
            (
                r#"{"alg":"RS256","jku":"https://x","jwk":{"kty":"oct"}}"#,
                Ok(()),
            ),
            ("[]", Err(JoseError::MalformedHeader)),
            ("\"HS256\"", Err(JoseError::MalformedHeader)),
            (
                r#"{"alg":"HS256","alg":"HS256"}"#,
                Err(JoseError::MalformedHeader),
            ),
            ("{\"alg\":\"HS256\"}\u{0}", Err(JoseError::MalformedHeader)),
            (r#"{"typ":"JWT"}"#, Err(JoseError::MissingAlg)),
            (r#"{"alg":null}"#, Err(JoseError::MissingAlg)),
            (r#"{"alg":["HS256"]}"#, Err(JoseError::MissingAlg)),
            (
                r#"{"alg":"HS256","crit":["exp"]}"#,
                Err(JoseError::CritHeader),
            ),
            (r#"{"alg":"HS256","crit":[]}"#, Err(JoseError::CritHeader)),
            (r#"{"alg":"HS256","crit":null}"#, Err(JoseError::CritHeader)),
            (r#"{"alg":"HS256","b64":true}"#, Err(JoseError::B64Header)),
            (r#"{"alg":"HS256","kid":7}"#, Err(JoseError::BadKid)),
            (r#"{"alg":"HS256","kid":null}"#, Err(JoseError::BadKid)),
            (long_kid.as_str(), Err(JoseError::BadKid)),
            (r#"{"alg":"HS256","typ":1}"#, Err(JoseError::BadTyp)),
        ] {
            assert_eq!(parse(json).map(|_| ()), verdict, "{json}");
        }
        let h = parse(r#"{"alg":"RS256","kid":"../etc\r\n","typ":"at+jwt"}"#).unwrap();
        assert_eq!(
            (h.alg(), h.kid(), h.typ()),
            ("RS256", Some("../etc\r\n"), Some("at+jwt"))
        );
    }

    #[test]
    fn the_well_known_header_is_what_parsing_its_segment_gives() {
        let decoded = crate::jose::base64url::decode(HS256_JWT).unwrap();
        assert_eq!(decoded, br#"{"alg":"HS256","typ":"JWT"}"#);
        assert_eq!(
            Header::well_known(HS256_JWT),
            Some(Header::parse(&decoded).unwrap())
        );
        assert_eq!(Header::well_known("eyJhbGciOiJIUzI1NiJ9"), None);
    }
}
