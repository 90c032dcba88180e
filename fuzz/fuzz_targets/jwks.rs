//! A JWKS document as fetched from an issuer, through the parser the key cache uses
//! (`tower_auth_oidc::fuzzing::jwks`, feature `fuzzing`): never a panic, and every key kept
//! is checked against the document, read independently with serde_json:
//! - the kept keys are entries of `keys`, in the document's order;
//! - each has the members its `kty` needs (`n`/`e`; `crv`/`x`/`y`; `crv`/`x`), the public
//!   material it holds is exactly their decoding, and an RSA modulus has 2048 bits or more;
//! - none carries a private or symmetric member (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`, `k`),
//!   none is for encryption only, and none verifies an HMAC algorithm;
//! - a key naming its `alg` verifies that one algorithm only, and one that does not verifies
//!   what its type allows;
//! - no two keys of one type share a `kid`, a set is never empty, and reading the same
//!   document again keeps every key (tokens cached under them stay valid).
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use tower_auth_oidc::fuzzing::{JwksKey, jwks};

const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
const RSA_ALGORITHMS: [&str; 6] = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"];

fn text<'a>(entry: &'a Map<String, Value>, member: &str) -> Option<&'a str> {
    entry.get(member)?.as_str()
}

fn decoded(entry: &Map<String, Value>, member: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text(entry, member)?).ok()
}

fn significant_bits(bytes: &[u8]) -> usize {
    let bits = bytes.len() * 8;
    bytes
        .iter()
        .position(|&b| b != 0)
        .map_or(0, |i| bits - i * 8 - bytes[i].leading_zeros() as usize)
}

/// The algorithms a key of `kind` verifies when it names none.
fn by_type(kind: &str) -> Vec<&'static str> {
    match kind {
        "RSA" => RSA_ALGORITHMS.to_vec(),
        "EC P-256" => vec!["ES256"],
        "EC P-384" => vec!["ES384"],
        "OKP Ed25519" => vec!["EdDSA"],
        other => panic!("a key of unknown kind {other}"),
    }
}

/// Whether `key` is what `entry` describes: the same `kid`, type, curve and material.
fn describes(entry: &Value, key: &JwksKey) -> bool {
    let Some(entry) = entry.as_object() else {
        return false;
    };
    if entry.get("kid").and_then(Value::as_str) != key.kid.as_deref() {
        return false;
    }
    let (kty, crv) = key.kind.split_once(' ').unwrap_or((key.kind, ""));
    if text(entry, "kty") != Some(kty) {
        return false;
    }
    let material = match kty {
        "RSA" => decoded(entry, "n")
            .zip(decoded(entry, "e"))
            .map(|(n, e)| [n, e].concat()),
        "EC" if text(entry, "crv") == Some(crv) => decoded(entry, "x")
            .zip(decoded(entry, "y"))
            .map(|(x, y)| [x, y].concat()),
        "OKP" if text(entry, "crv") == Some(crv) => decoded(entry, "x"),
        _ => None,
    };
    material.as_deref() == Some(&key.material[..])
}

/// The rules a kept key must meet, checked on the entry that describes it. Entries that
/// look alike may differ in what is checked here (one skipped for its `use`, the next kept),
/// so a key needs one describing entry that meets them all.
fn rules(entry: &Map<String, Value>, key: &JwksKey) -> Result<(), String> {
    if let Some(member) = PRIVATE_MEMBERS.iter().find(|m| entry.contains_key(**m)) {
        return Err(format!("kept a key with a private member `{member}`"));
    }
    if !matches!(entry.get("use"), None | Some(Value::String(_)))
        || text(entry, "use").is_some_and(|u| u != "sig")
    {
        return Err("kept a key not for signatures".into());
    }
    if let Some(ops) = entry.get("key_ops")
        && !ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|o| o == "verify"))
    {
        return Err("kept a key whose key_ops exclude verify".into());
    }
    if key.kind == "RSA" && decoded(entry, "n").is_none_or(|n| significant_bits(&n) < 2048) {
        return Err("kept an RSA key under 2048 bits".into());
    }
    let expected: Vec<&str> = match entry.get("alg") {
        None => by_type(key.kind),
        Some(Value::String(alg)) if by_type(key.kind).contains(&alg.as_str()) => vec![alg.as_str()],
        Some(alg) => return Err(format!("kept a key whose alg {alg} its type cannot do")),
    };
    if key.verifies != expected {
        return Err(format!(
            "a key that verifies {:?}, where its entry says {expected:?}",
            key.verifies
        ));
    }
    Ok(())
}

fuzz_target!(|document: &[u8]| {
    let Ok(keys) = jwks(document) else {
        return;
    };
    assert!(!keys.is_empty(), "an empty key set accepted");
    let value: Value = serde_json::from_slice(document).expect("a key set from what is not JSON");
    let entries = value
        .get("keys")
        .and_then(Value::as_array)
        .expect("a key set from a document without a `keys` array");
    // The kept keys are a subsequence of the entries.
    let mut next = 0;
    for key in &keys {
        let mut broken = None;
        let found = entries[next..].iter().position(|entry| {
            describes(entry, key)
                && rules(entry.as_object().unwrap(), key)
                    .map_err(|e| broken = broken.take().or(Some(e)))
                    .is_ok()
        });
        let Some(found) = found else {
            match broken {
                Some(why) => panic!("{why}: {key:?}"),
                None => panic!("kept a key no entry describes: {key:?}"),
            }
        };
        assert!(
            key.carried_over,
            "read again, the same document made a new key"
        );
        next += found + 1;
    }
    for (i, a) in keys.iter().enumerate() {
        for b in &keys[i + 1..] {
            assert!(
                a.kid.is_none() || a.kid != b.kid || a.kind != b.kind,
                "two keys of one type share a kid"
            );
        }
    }
});
