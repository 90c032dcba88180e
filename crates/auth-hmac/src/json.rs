//! Strict JSON for token segments: an object, with no member name repeated at any depth.
//!
//! `serde_json::Value` keeps the last of two members with the same name, and other JWT
//! libraries keep the first, so a token with `"sub"` twice could mean different things to
//! different readers (RFC 7515 section 5.2 lets a JWS reject such a token; we always do).

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
        Ok(Strict(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
        Ok(Strict(Value::Number(v.into())))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
        Ok(Strict(Value::Number(v.into())))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Strict, E> {
        Number::from_f64(v)
            .map(|n| Strict(Value::Number(n)))
            .ok_or_else(|| E::custom("not a finite number"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
        Ok(Strict(Value::String(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Strict, E> {
        Ok(Strict(Value::String(v)))
    }

    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Strict(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Strict, A::Error> {
        let mut map = Map::new();
        while let Some(name) = access.next_key::<String>()? {
            let Strict(value) = access.next_value()?;
            if map.insert(name, value).is_some() {
                return Err(de::Error::custom("duplicate member name"));
            }
        }
        Ok(Strict(Value::Object(map)))
    }
}

/// Parses `bytes` as one JSON object without repeated member names; `None` for anything else
/// (not UTF-8, not an object, trailing data, nesting past serde_json's depth limit).
pub(crate) fn parse_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Strict>(bytes) {
        Ok(Strict(Value::Object(map))) => Some(map),
        _ => None,
    }
}

/// A string borrowed from the input where it has no escapes.
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
/// member equal to `issuer`: used only to decide that a broken token claims to be ours, so
/// that it is rejected rather than passed on, never to accept one.
pub(crate) fn names_issuer(bytes: &[u8], issuer: &str) -> bool {
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
    fn objects_only() {
        assert!(parse_object(br#"{"a":1,"b":[1,{"c":null}],"d":"x"}"#).is_some());
        for bad in [
            &b"[]"[..],
            b"1",
            b"\"x\"",
            b"null",
            b"{",
            b"{} x",
            b"{\"a\":\xff}",
            b"",
        ] {
            assert!(parse_object(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn duplicate_names_are_refused_at_any_depth() {
        assert!(parse_object(br#"{"a":1,"a":1}"#).is_none());
        assert!(parse_object(br#"{"a":1,"\u0061":2}"#).is_none());
        assert!(parse_object(br#"{"x":{"a":1,"a":2}}"#).is_none());
        assert!(parse_object(br#"{"x":[{"a":1,"a":2}]}"#).is_none());
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(200), "]".repeat(200));
        assert!(parse_object(deep.as_bytes()).is_none());
    }

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
    }
}
