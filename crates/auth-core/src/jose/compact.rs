//! [`CompactJws`]: a compact token split, its payload's `iss` read, its header judged.

use std::fmt;
use std::sync::{Mutex, OnceLock, PoisonError};

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::header::Header;
use super::{JoseError, base64url};
use crate::MAX_CREDENTIAL_LEN;

/// A compact JWS (`header.payload.signature`) whose payload names an issuer, read but not
/// verified: the borrowed segments, the decoded payload, its unverified `iss`, and the header
/// as judged by the rules every validator shares.
///
/// It is what routing by structure needs: the `iss` picks the one validator that owns the
/// token, and that validator takes the same value on, so a token is split and decoded once.
/// A token that breaks a shared rule but still names an issuer is that issuer's to refuse
/// ([`header`](Self::header) answers the first broken rule), rather than passed along the
/// chain as nobody's. "Names" means in a payload that decodes as strict base64url: one that
/// does not (padding, `+` or `/`, stray low bits) names nobody, as the issue that made this
/// module asked (no lenient re-decoding), so every validator passes it on and the chain ends
/// in 401 `invalid_token` (SECURITY.md T1).
///
/// `Debug` shows the issuer and the header's `alg` or broken rule, never a segment.
pub struct CompactJws<'t> {
    token: &'t str,
    signing_input: &'t str,
    header_b64: &'t str,
    signature: &'t str,
    three_segments: bool,
    issuer: Box<str>,
    payload: Vec<u8>,
    /// The payload already read strictly, when [`peek_for`](Self::peek_for) did so to find
    /// the issuer of a token it expected to own; [`claims`](Self::claims) takes it.
    parsed: Mutex<Option<Map<String, Value>>>,
    /// Judged on first use: a validator that passes the token on never pays for it.
    header: OnceLock<Result<Header, JoseError>>,
}

/// What [`CompactJws::peek`] found.
// Built once per token and matched at once: boxing the view would cost an allocation on
// every request to save a few words of stack.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Peeked<'t> {
    /// Longer than [`MAX_CREDENTIAL_LEN`]: refused by whoever sees it, before any decoding.
    TooLarge,
    /// No issuer can be read: fewer than two segments, a payload segment that is not strict
    /// base64url of a JSON object, or an object whose first `iss` is not a string. Nobody
    /// owns such a token; the chain answers it with `invalid_token`.
    NoIssuer,
    /// The payload names an issuer: the token is that issuer's to judge.
    Issuer(CompactJws<'t>),
}

impl<'t> CompactJws<'t> {
    /// Splits `token` and reads the `iss` of its second segment, without cryptography.
    ///
    /// The payload is decoded strictly and only `iss` is read from it: the first top-level
    /// `iss` member, in document order, however the rest of the payload is formed. That one
    /// value names the owner; whether the payload is otherwise acceptable is the owner's
    /// question ([`claims`](Self::claims)), so a broken token naming an issuer is refused by
    /// that issuer instead of falling through to the next authenticator.
    pub fn peek(token: &'t str) -> Peeked<'t> {
        Self::peek_for(token, &[] as &[&str])
    }

    /// [`peek`](Self::peek) for a validator that owns only `issuers` (all issuers when
    /// empty): the same answer for every token of those issuers, and [`Peeked::NoIssuer`]
    /// for another issuer's token whenever that is clear without reading its JSON (no
    /// escape in the payload, and none of `issuers` spelled in it), which keeps passing a
    /// foreign token on cheap.
    pub fn peek_for<S: AsRef<str>>(token: &'t str, issuers: &[S]) -> Peeked<'t> {
        if token.len() > MAX_CREDENTIAL_LEN {
            return Peeked::TooLarge;
        }
        let mut segments = token.split('.');
        let header_b64 = segments.next().unwrap_or_default();
        let Some(payload_b64) = segments.next() else {
            return Peeked::NoIssuer;
        };
        let signature = segments.next();
        let more = segments.next().is_some();
        let Some(payload) = base64url::decode(payload_b64) else {
            return Peeked::NoIssuer;
        };
        // Without a backslash, a JSON string is its own bytes between quotes: an `iss` equal
        // to one of ours would spell it literally.
        if !issuers.is_empty()
            && let Ok(text) = std::str::from_utf8(&payload)
            && !text.contains('\\')
            && !issuers.iter().any(|issuer| text.contains(issuer.as_ref()))
        {
            return Peeked::NoIssuer;
        }
        // A token that names one of `issuers` is nearly always that issuer's, and its owner
        // reads the payload strictly anyway: read it so once, here. A payload that passes has
        // one `iss` at most, so its `iss` is the first one; one that fails is scanned.
        let parsed = (!issuers.is_empty())
            .then(|| crate::json::parse_strict_object(&payload))
            .flatten();
        let issuer = match &parsed {
            Some(claims) => match claims.get("iss") {
                Some(Value::String(iss)) => Some(iss.as_str().into()),
                _ => None,
            },
            None => first_issuer(&payload),
        };
        let Some(issuer) = issuer else {
            return Peeked::NoIssuer;
        };
        Peeked::Issuer(CompactJws {
            token,
            signing_input: &token[..header_b64.len() + 1 + payload_b64.len()],
            header_b64,
            signature: signature.unwrap_or_default(),
            three_segments: signature.is_some() && !more,
            issuer,
            payload,
            parsed: Mutex::new(parsed),
            header: OnceLock::new(),
        })
    }

    /// The whole token, as sent.
    pub fn token(&self) -> &'t str {
        self.token
    }

    /// The unverified `iss` that names the owner: a routing hint, never a proof.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The header, or the first shared rule the token breaks: not three segments, a
    /// segment outside base64url, or a header that is not a strict JSON object with a
    /// string `alg`, no `crit` or `b64`, and string `kid` (at most
    /// [`MAX_KID_LEN`](super::MAX_KID_LEN) bytes) and `typ`.
    ///
    /// # Errors
    /// The broken rule.
    pub fn header(&self) -> Result<&Header, JoseError> {
        self.header
            .get_or_init(|| {
                if self.three_segments {
                    judge_header(self.header_b64, self.signature)
                } else {
                    Err(JoseError::NotThreeSegments)
                }
            })
            .as_ref()
            .map_err(|e| *e)
    }

    /// The payload as a strict JSON object: no duplicate member names at any depth (RFC
    /// 7515 section 5.2 lets a reader keep the last of them, and two readers choosing
    /// differently would see two different tokens), at most 16 levels deep, nothing after it.
    ///
    /// # Errors
    /// [`JoseError::MalformedPayload`].
    pub fn claims(&self) -> Result<Map<String, Value>, JoseError> {
        let parsed = self
            .parsed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        parsed
            .or_else(|| crate::json::parse_strict_object(&self.payload))
            .ok_or(JoseError::MalformedPayload)
    }

    /// What the signature covers: `header.payload`, as sent.
    pub fn signing_input(&self) -> &'t str {
        self.signing_input
    }

    /// The signature segment, still base64url-encoded.
    pub fn signature_b64(&self) -> &'t str {
        self.signature
    }

    /// Decodes the signature into the front of `buf`.
    ///
    /// # Errors
    /// [`JoseError::EmptySignature`]; [`JoseError::BadSignature`] when the segment is not
    /// strict base64url or decodes to more than `buf` holds.
    pub fn decode_signature<'b>(&self, buf: &'b mut [u8]) -> Result<&'b [u8], JoseError> {
        if self.signature.is_empty() {
            return Err(JoseError::EmptySignature);
        }
        base64url::decode_into(self.signature, buf).ok_or(JoseError::BadSignature)
    }
}

impl fmt::Debug for CompactJws<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompactJws")
            .field("issuer", &self.issuer)
            .field("alg", &self.header().map(Header::alg))
            .finish_non_exhaustive()
    }
}

/// Whether a bearer value has the shape of a compact JWS: `eyJ` (a JSON object's `{"`,
/// base64url-encoded) and exactly two dots.
///
/// This is the line between the two kinds of bearer value: an API key never has this shape
/// (`ApiKeySet` refuses such keys), and a value that has it is routed by its `iss` alone
/// (see `Chain`).
pub fn looks_like_jws(value: &str) -> bool {
    // Counted in blocks of 255 with a byte-wide counter, which the compiler turns into
    // vector compares: a plain `filter(..).count()` stays a byte-at-a-time loop (300 ns on
    // an 800-byte token, against about 20 ns for this).
    value.starts_with("eyJ")
        && value
            .as_bytes()
            .chunks(255)
            .map(|block| usize::from(block.iter().fold(0u8, |n, &b| n + u8::from(b == b'.'))))
            .sum::<usize>()
            == 2
}

/// The shared rules for the header and signature segments of a three-segment token.
fn judge_header(header_b64: &str, signature: &str) -> Result<Header, JoseError> {
    // RFC 7515 section 2: base64url without padding; `=`, `+` and `/` are not in it.
    if !base64url::is_alphabet(header_b64) || !base64url::is_alphabet(signature) {
        return Err(JoseError::BadBase64url);
    }
    if let Some(header) = Header::well_known(header_b64) {
        return Ok(header);
    }
    let bytes = base64url::decode(header_b64).ok_or(JoseError::MalformedHeader)?;
    Header::parse(&bytes)
}

/// The string value of the first top-level `iss` member of a JSON object, read in document
/// order and without looking further: member names and values are decoded as JSON (escapes
/// included), and nothing after the first `iss` changes the answer.
fn first_issuer(payload: &[u8]) -> Option<Box<str>> {
    struct Scan<'a> {
        found: &'a mut Option<Box<str>>,
    }

    impl<'de> Visitor<'de> for Scan<'_> {
        type Value = ();

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(Name(name)) = map.next_key()? {
                if name == "iss" {
                    *self.found = map.next_value::<OnlyText>()?.0;
                    // The first `iss` decides, and the rest is the owner's to judge: stop
                    // reading (the stop surfaces as an error, which is ignored below).
                    return Err(de::Error::custom("first iss read"));
                }
                map.next_value::<IgnoredAny>()?;
            }
            Ok(())
        }
    }

    let mut found = None;
    let mut deserializer = serde_json::Deserializer::from_slice(payload);
    // The answer is what was found before the reader stopped: a payload broken after its
    // first `iss` still names that issuer.
    let _ = deserializer.deserialize_map(Scan { found: &mut found });
    found
}

/// A member name, borrowed unless it contains escapes.
struct Name<'de>(std::borrow::Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(v.into()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Name<'de>, E> {
                Ok(Name(v.to_owned().into()))
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// Any JSON value, kept only when it is a string.
struct OnlyText(Option<Box<str>>);

impl<'de> de::Deserialize<'de> for OnlyText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OnlyText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E>(self, v: &str) -> Result<OnlyText, E> {
                Ok(OnlyText(Some(v.into())))
            }
            fn visit_bool<E>(self, _: bool) -> Result<OnlyText, E> {
                Ok(OnlyText(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<OnlyText, E> {
                Ok(OnlyText(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<OnlyText, E> {
                Ok(OnlyText(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<OnlyText, E> {
                Ok(OnlyText(None))
            }
            fn visit_unit<E>(self) -> Result<OnlyText, E> {
                Ok(OnlyText(None))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<OnlyText, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(OnlyText(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OnlyText, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(OnlyText(None))
            }
        }
        deserializer.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jws_shape_is_eyj_and_exactly_two_dots() {
        for yes in ["eyJ.a.b", "eyJhbGci..", "eyJ..", "eyJa.b.c"] {
            assert!(looks_like_jws(yes), "{yes}");
        }
        for no in [
            "",
            "eyJ",
            "eyJ.a",
            "eyJ.a.b.c",
            "eyJ...",
            "ey.J.a",
            "xeyJ.a.b",
            "a.b.c",
        ] {
            assert!(!looks_like_jws(no), "{no}");
        }
    }

    fn b64(bytes: &[u8]) -> String {
        super::super::base64url::encode(bytes)
    }

    const HEADER: &str = r#"{"alg":"RS256","kid":"k1"}"#;
    const PAYLOAD: &str = r#"{"sub":"u","iss":"https://idp.example","exp":2000}"#;

    fn token(header: &str, payload: &str) -> String {
        format!(
            "{}.{}.c2ln",
            b64(header.as_bytes()),
            b64(payload.as_bytes())
        )
    }

    impl Peeked<'_> {
        fn issuer_for_test(&self) -> Option<String> {
            match self {
                Peeked::Issuer(jws) => Some(jws.issuer().to_owned()),
                _ => None,
            }
        }
    }

    fn issuer_of(payload: &[u8]) -> Option<String> {
        first_issuer(payload).map(String::from)
    }

    #[test]
    fn the_first_iss_names_the_owner_whatever_follows() {
        let iss = |json: &str| issuer_of(json.as_bytes());
        assert_eq!(
            iss(r#"{"x":[1,{"iss":"no"}],"iss":"a"}"#).as_deref(),
            Some("a")
        );
        assert_eq!(iss(r#"{"\u0069ss":"a\u0062"}"#).as_deref(), Some("ab"));
        assert_eq!(iss(r#"{"iss":"a","iss":"b"}"#).as_deref(), Some("a"));
        assert_eq!(iss(r#"{"iss":"a","broken":"#).as_deref(), Some("a"));
        for nobody in [
            r#"{"iss":5,"iss":"a"}"#,
            r#"{"iss":["a"]}"#,
            r#"{"iss":null}"#,
            r#"["a"]"#,
            r#""a""#,
            r#"{"sub":"a"}"#,
            r#"{"sub":"#,
            "",
        ] {
            assert_eq!(iss(nobody), None, "{nobody}");
        }
        assert_eq!(issuer_of(b"{\"iss\":\"a\xff\"}"), None, "not UTF-8");
    }

    #[test]
    fn peek_routes_by_payload_and_defers_every_other_rule_to_the_owner() {
        let good = token(HEADER, PAYLOAD);
        let Peeked::Issuer(jws) = CompactJws::peek(&good) else {
            panic!("a well-formed token names its issuer");
        };
        assert_eq!(jws.issuer(), "https://idp.example");
        assert_eq!(jws.header().unwrap().kid(), Some("k1"));
        assert_eq!(jws.claims().unwrap()["exp"], 2000);
        assert_eq!(jws.signing_input(), &good[..good.rfind('.').unwrap()]);
        assert_eq!(jws.signature_b64(), "c2ln");
        assert_eq!(jws.decode_signature(&mut [0; 8]), Ok(&b"sig"[..]));
        assert_eq!(
            jws.decode_signature(&mut [0; 2]),
            Err(JoseError::BadSignature)
        );

        let [h, p, s]: [&str; 3] = good.split('.').collect::<Vec<_>>().try_into().unwrap();
        let dup = b64(br#"{"iss":"https://idp.example","iss":"https://idp.example"}"#);
        for (bad, verdict) in [
            (format!("{h}.{p}"), Err(JoseError::NotThreeSegments)),
            (format!("{h}.{p}.{s}.{s}"), Err(JoseError::NotThreeSegments)),
            (format!("{h}.{p}.{s}."), Err(JoseError::NotThreeSegments)),
            (format!("{h}=.{p}.{s}"), Err(JoseError::BadBase64url)),
            (format!("{h}.{p}.{s}="), Err(JoseError::BadBase64url)),
            (format!("{h}.{p}.c2l+"), Err(JoseError::BadBase64url)),
            (format!("{h}/.{p}.{s}"), Err(JoseError::BadBase64url)),
            (
                format!("{}.{p}.{s}", b64(b"[1]")),
                Err(JoseError::MalformedHeader),
            ),
            (format!("{h}.{p}."), Ok(())),
            (format!("{h}.{dup}.{s}"), Ok(())),
        ] {
            let Peeked::Issuer(jws) = CompactJws::peek(&bad) else {
                panic!("{bad} still names its issuer");
            };
            assert_eq!(jws.header().map(|_| ()), verdict, "{bad}");
        }
        let duplicated = format!("{h}.{dup}.{s}");
        let Peeked::Issuer(jws) = CompactJws::peek(&duplicated) else {
            unreachable!()
        };
        assert_eq!(jws.claims(), Err(JoseError::MalformedPayload));
        let unsigned = format!("{h}.{p}.");
        let Peeked::Issuer(jws) = CompactJws::peek(&unsigned) else {
            unreachable!()
        };
        assert_eq!(
            jws.decode_signature(&mut [0; 8]),
            Err(JoseError::EmptySignature)
        );
    }

    #[test]
    fn unreadable_payloads_name_nobody() {
        let good = token(HEADER, PAYLOAD);
        let [h, p, s]: [&str; 3] = good.split('.').collect::<Vec<_>>().try_into().unwrap();
        let standard = p.replace('-', "+").replace('_', "/");
        for nobody in [
            "opaque-api-key".to_owned(),
            String::new(),
            ".".to_owned(),
            "....".to_owned(),
            format!("{h}.{p}=.{s}"),
            format!("{h}.{p}==.{s}"),
            format!("{h}.{}.{s}", b64(b"[1]")),
            format!("{h}.{}.{s}", b64(b"iss=me")),
            format!("{h}.{}.{s}", b64(br#"{"sub":"u"}"#)),
            "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d".to_owned(),
        ] {
            assert!(
                matches!(CompactJws::peek(&nobody), Peeked::NoIssuer),
                "{nobody}"
            );
        }
        if standard != p {
            assert!(matches!(
                CompactJws::peek(&format!("{h}.{standard}.{s}")),
                Peeked::NoIssuer
            ));
        }
        let huge = format!("{good}{}", "A".repeat(MAX_CREDENTIAL_LEN));
        assert!(matches!(CompactJws::peek(&huge), Peeked::TooLarge));
    }

    #[test]
    fn peek_for_answers_as_peek_for_the_issuers_it_names() {
        let escaped = r#"{"sub":"u","iss":"https:\/\/idp.example","exp":2000}"#;
        let foreign = r#"{"iss":"https://other.example","exp":2000}"#;
        let ours = ["https://idp.example", "auth-hmac"];
        for payload in [
            PAYLOAD,
            escaped,
            foreign,
            r#"{"sub":"https://idp.example"}"#,
        ] {
            let t = token(HEADER, payload);
            let issuer = |peeked: Peeked<'_>| match peeked {
                Peeked::Issuer(jws) => Some(jws.issuer().to_owned()),
                _ => None,
            };
            let all = issuer(CompactJws::peek(&t));
            let mine = all.clone().filter(|iss| ours.contains(&iss.as_str()));
            assert_eq!(issuer(CompactJws::peek_for(&t, &ours)), mine, "{payload}");
        }
        assert_eq!(
            CompactJws::peek(&token(HEADER, escaped)).issuer_for_test(),
            Some("https://idp.example".to_owned())
        );
    }

    #[test]
    fn debug_shows_no_segment() {
        let good = token(HEADER, PAYLOAD);
        let shown = format!("{:?}", CompactJws::peek(&good));
        for segment in good.split('.') {
            assert!(!shown.contains(segment), "{shown}");
        }
    }
}
