//! The strict JSON reader of JOSE headers and claims (tower-auth-core `json.rs`, reached
//! through its public door `jose::strict_object_segment`, which only adds strict base64url)
//! on arbitrary bytes, judged against serde_json and an independent reading that keeps
//! duplicate member names:
//! - it accepts exactly the documents that serde_json reads as an object, with no member name
//!   twice in any object (after unescaping), and at most 16 nested objects and arrays;
//! - what it accepts has the value serde_json gives, and survives being written out and read
//!   again unchanged.
#![no_main]

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use tower_auth_core::jose::strict_object_segment;

/// The nesting the strict reader allows (the top object counts as one).
const MAX_DEPTH: usize = 16;

/// A JSON document as written: objects keep every member, duplicates included.
enum Node {
    Leaf,
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

impl Node {
    fn depth(&self) -> usize {
        match self {
            Node::Leaf => 0,
            Node::Array(items) => 1 + items.iter().map(Node::depth).max().unwrap_or(0),
            Node::Object(members) => 1 + members.iter().map(|(_, n)| n.depth()).max().unwrap_or(0),
        }
    }

    fn has_duplicate_names(&self) -> bool {
        match self {
            Node::Leaf => false,
            Node::Array(items) => items.iter().any(Node::has_duplicate_names),
            Node::Object(members) => {
                let mut names: Vec<&str> = members.iter().map(|(k, _)| k.as_str()).collect();
                names.sort_unstable();
                names.windows(2).any(|w| w[0] == w[1])
                    || members.iter().any(|(_, n)| n.has_duplicate_names())
            }
        }
    }
}

struct Lossless;

impl<'de> de::Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(Lossless)
    }
}

impl<'de> Visitor<'de> for Lossless {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_str<E>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Node, A::Error> {
        let mut members = Vec::new();
        while let Some((name, node)) = access.next_entry::<String, Node>()? {
            members.push((name, node));
        }
        Ok(Node::Object(members))
    }
}

fn has_float(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(has_float),
        Value::Object(members) => members.values().any(has_float),
        _ => false,
    }
}

fuzz_target!(|bytes: &[u8]| {
    let strict = strict_object_segment(&URL_SAFE_NO_PAD.encode(bytes));
    let lenient = serde_json::from_slice::<Value>(bytes);
    // serde_json stops at 128 levels; deeper documents are refused by both readers.
    let written = serde_json::from_slice::<Node>(bytes);
    let expected = match (&lenient, &written) {
        (Ok(Value::Object(_)), Ok(node)) => {
            node.depth() <= MAX_DEPTH && !node.has_duplicate_names()
        }
        _ => false,
    };
    assert_eq!(
        strict.is_some(),
        expected,
        "the strict reader and the rule disagree (serde_json: {}, depth {:?}, duplicates {:?})",
        lenient.is_ok(),
        written.as_ref().map(Node::depth).ok(),
        written.as_ref().map(Node::has_duplicate_names).ok(),
    );
    if let Some(map) = strict {
        let value = Value::Object(map);
        assert_eq!(
            Ok(&value),
            lenient.as_ref().map_err(|_| ()),
            "another value than serde_json's"
        );
        let again = strict_object_segment(&URL_SAFE_NO_PAD.encode(value.to_string()))
            .expect("what was accepted, written out, is refused");
        // Without its `float_roundtrip` feature serde_json may read a float it wrote one ULP
        // off: that is serde_json's documented trade, not the strict reader's doing.
        if !has_float(&value) {
            assert_eq!(
                Value::Object(again),
                value,
                "written out and read again, it changed"
            );
        }
    }
});
