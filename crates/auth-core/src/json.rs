//! Strict JSON for JOSE headers and claims: one object, no duplicate member names, shallow.
//!
//! The reader behind [`jose`](crate::jose): every validator reads headers and claims through
//! it, so that HMAC role tokens and OIDC tokens are read by the same rules.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Deeper nesting than this is refused; real claims nest two or three levels.
const MAX_DEPTH: usize = 16;

/// Parses `bytes` as a JSON object.
///
/// RFC 7515 section 5.2 and RFC 7519 section 7.2 let a parser either reject duplicate
/// member names or keep the last one; two readers that choose differently would see two
/// different tokens, so we reject them. Invalid UTF-8 is refused by serde_json itself.
pub(crate) fn parse_strict_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = Strict { depth: 0 }.deserialize(&mut de).ok()?;
    de.end().ok()?;
    match value {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

#[derive(Clone, Copy)]
struct Strict {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.deeper()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let inner = self.deeper()?;
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let value = access.next_value_seed(inner)?;
            if map.insert(key, value).is_some() {
                return Err(de::Error::custom("duplicate member name"));
            }
        }
        Ok(Value::Object(map))
    }
}

impl Strict {
    fn deeper<E: de::Error>(self) -> Result<Self, E> {
        if self.depth >= MAX_DEPTH {
            Err(E::custom("nested too deeply"))
        } else {
            Ok(Self {
                depth: self.depth + 1,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_only() {
        assert!(parse_strict_object(br#"{"a":1,"b":{"c":[1,"x",null,true,1.5]}}"#).is_some());
        for bad in [
            &b"[]"[..],
            b"1",
            b"\"s\"",
            b"null",
            b"",
            b"{",
            b"{} {}",
            b"{}x",
            b"{\"a\":\xff}",
        ] {
            assert!(parse_strict_object(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn duplicates_are_refused_at_any_depth_and_through_escapes() {
        assert!(parse_strict_object(br#"{"iss":"a","iss":"b"}"#).is_none());
        assert!(parse_strict_object(br#"{"a":1,"\u0061":2}"#).is_none());
        assert!(parse_strict_object(br#"{"x":{"a":1,"a":1}}"#).is_none());
        assert!(parse_strict_object(br#"{"x":[{"a":1,"a":2}]}"#).is_none());
    }

    #[test]
    fn deep_nesting_is_refused() {
        let at_limit = format!(
            "{{\"a\":{}1{}}}",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        assert!(parse_strict_object(at_limit.as_bytes()).is_some());
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(200), "]".repeat(200));
        assert!(parse_strict_object(deep.as_bytes()).is_none());
    }
}
