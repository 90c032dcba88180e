//! Reading `iss` from a token payload before anything else, to decide whether the token is
//! ours. Full parsing is `tower_auth_core::parse_strict_object`, which refuses duplicate member
//! names (RFC 7515 section 5.2 lets a JWS reject them; two readers could disagree otherwise).

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

struct Text<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(v.to_owned())))
    }
}

/// Any JSON value, kept only when it is a string.
struct MaybeText<'de>(Option<Cow<'de, str>>);

impl<'de> Deserialize<'de> for MaybeText<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MaybeTextVisitor)
    }
}

struct MaybeTextVisitor;

impl<'de> Visitor<'de> for MaybeTextVisitor {
    type Value = MaybeText<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<MaybeText<'de>, E> {
        Ok(MaybeText(Some(Cow::Borrowed(v))))
    }

    fn visit_str<E>(self, v: &str) -> Result<MaybeText<'de>, E> {
        Ok(MaybeText(Some(Cow::Owned(v.to_owned()))))
    }

    fn visit_bool<E>(self, _: bool) -> Result<MaybeText<'de>, E> {
        Ok(MaybeText(None))
    }

    fn visit_i64<E>(self, _: i64) -> Result<MaybeText<'de>, E> {
        Ok(MaybeText(None))
    }

    fn visit_u64<E>(self, _: u64) -> Result<MaybeText<'de>, E> {
        Ok(MaybeText(None))
    }

    fn visit_f64<E>(self, _: f64) -> Result<MaybeText<'de>, E> {
        Ok(MaybeText(None))
    }

    fn visit_unit<E>(self) -> Result<MaybeText<'de>, E> {
        Ok(MaybeText(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MaybeText<'de>, A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(MaybeText(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MaybeText<'de>, A::Error> {
        while map
            .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
            .is_some()
        {}
        Ok(MaybeText(None))
    }
}

/// Whether a payload, however malformed otherwise (repeated names included), has an `iss`
/// member equal to `issuer`: used to decide whether a token is ours to judge (so that a broken
/// or foreign-looking token naming our issuer is rejected rather than passed on), never to
/// accept one.
pub(crate) fn names_issuer(bytes: &[u8], issuer: &str) -> bool {
    // Without a backslash anywhere, the issuer can only be named by its own characters: a
    // text holding neither (nearly every other issuer's token going by) needs no parsing.
    if let Ok(text) = std::str::from_utf8(bytes)
        && !text.contains('\\')
        && !text.contains(issuer)
    {
        return false;
    }
    // A cell, so that a match found before the JSON breaks still counts.
    struct Scan<'a> {
        issuer: &'a str,
        found: &'a Cell<bool>,
    }

    impl<'de> Visitor<'de> for Scan<'_> {
        type Value = ();

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(Text(name)) = map.next_key()? {
                if name == "iss" {
                    let MaybeText(value) = map.next_value()?;
                    if value.as_deref() == Some(self.issuer) {
                        self.found.set(true);
                    }
                } else {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
            Ok(())
        }
    }

    let found = Cell::new(false);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let _ = de::Deserializer::deserialize_map(
        &mut deserializer,
        Scan {
            issuer,
            found: &found,
        },
    );
    found.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_issuer_reads_only_iss_even_from_broken_json() {
        let ours = |json: &[u8]| names_issuer(json, "auth-hmac");
        assert!(ours(br#"{"x":[1,{"iss":"no"}],"iss":"auth-hmac"}"#));
        assert!(ours(br#"{"iss":"auth-\u0068mac"}"#));
        assert!(ours(br#"{"iss":"other","iss":"auth-hmac"}"#));
        assert!(ours(br#"{"sub":"a","sub":"b","iss":"auth-hmac"}"#));
        assert!(ours(br#"{"iss":"auth-hmac","broken":"#));
        assert!(!ours(br#"{"iss":5}"#));
        assert!(!ours(br#"{"iss":["auth-hmac"]}"#));
        assert!(!ours(br#"{"iss":"auth-hmac/"}"#));
        assert!(!ours(br#"["auth-hmac"]"#));
        assert!(!ours(br#"{"sub":"a"}"#));
        assert!(!ours(b""));
        // Named only through escapes, anywhere: still found.
        assert!(ours(br#"{"\u0069ss":"auth-hmac"}"#));
        assert!(ours(br#"{"iss":"\u0061uth-hmac","x":"\n"}"#));
        assert!(!ours(br#"{"iss":"auth-hma\u0063k"}"#));
    }
}
