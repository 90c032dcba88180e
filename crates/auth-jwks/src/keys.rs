//! Key sets: which JWKs we accept, and which key may verify which token.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

/// RSA moduli below this are ignored (NIST SP 800-131A; RFC 7518 section 3.3 requires 2048).
const MIN_RSA_BITS: usize = 2048;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl KeyKind {
    fn fits(self, alg: Algorithm) -> bool {
        match self {
            Self::Rsa => matches!(
                alg,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ),
            Self::P256 => alg == Algorithm::ES256,
            Self::P384 => alg == Algorithm::ES384,
            Self::Ed25519 => alg == Algorithm::EdDSA,
        }
    }
}

/// One usable verification key.
pub(crate) struct Key {
    pub(crate) kid: Option<Box<str>>,
    pub(crate) kind: KeyKind,
    alg: Option<Algorithm>,
    pub(crate) material: Box<[u8]>,
    pub(crate) decoding: DecodingKey,
    /// Set once the key leaves the issuer's key set; cached tokens it verified are then dropped.
    revoked: AtomicBool,
}

impl Key {
    /// Whether this key may verify a token signed with `alg`: the key type and curve must
    /// fit, and a key that names its `alg` must name exactly this one (RFC 8725 section 3.1).
    pub(crate) fn fits(&self, alg: Algorithm) -> bool {
        self.kind.fits(alg) && self.alg.is_none_or(|a| a == alg)
    }

    pub(crate) fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::Relaxed)
    }

    fn same_as(&self, other: &Key) -> bool {
        self.kid == other.kid
            && self.kind == other.kind
            && self.alg == other.alg
            && self.material == other.material
    }
}

/// The usable keys of one issuer.
#[derive(Default)]
pub(crate) struct KeySet {
    keys: Vec<Arc<Key>>,
}

impl KeySet {
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Keys with this `kid`.
    pub(crate) fn with_kid<'a>(&'a self, kid: &'a str) -> impl Iterator<Item = &'a Arc<Key>> + 'a {
        self.keys
            .iter()
            .filter(move |k| k.kid.as_deref() == Some(kid))
    }

    /// Every key, in the document's order.
    #[cfg(feature = "fuzzing")]
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<Key>> + '_ {
        self.keys.iter()
    }

    /// All keys that fit `alg`.
    pub(crate) fn fitting(&self, alg: Algorithm) -> impl Iterator<Item = &Arc<Key>> + '_ {
        self.keys.iter().filter(move |k| k.fits(alg))
    }

    /// Parses a JWKS document. Single unusable keys are skipped; a document that is not a
    /// key set, has no usable key, or is ambiguous is refused as a whole.
    ///
    /// Keys equal to one in `previous` are carried over as the same key, so that cached
    /// tokens stay valid across refreshes.
    pub(crate) fn parse(document: &[u8], previous: &KeySet) -> Result<KeySet, &'static str> {
        let value: Value = serde_json::from_slice(document).map_err(|_| "jwks_not_json")?;
        let Some(Value::Array(entries)) = value.get("keys") else {
            return Err("jwks_without_keys");
        };
        let mut keys: Vec<Arc<Key>> = Vec::with_capacity(entries.len());
        for entry in entries {
            let Some(key) = usable_key(entry) else {
                continue;
            };
            // RFC 7517 section 4.5: two keys may share a kid only if their types differ;
            // with the same type the set is ambiguous, so it is refused as a whole.
            if key.kid.is_some() && keys.iter().any(|k| k.kid == key.kid && k.kind == key.kind) {
                return Err("jwks_duplicate_kid");
            }
            // The same key twice (possible without a kid) is one key: otherwise a refresh
            // maps both to the first previous one, the second counts as removed and every
            // refresh looks like a key set change.
            if keys.iter().any(|k| k.same_as(&key)) {
                continue;
            }
            let key = previous
                .keys
                .iter()
                .find(|old| old.same_as(&key))
                .cloned()
                .unwrap_or_else(|| Arc::new(key));
            keys.push(key);
        }
        if keys.is_empty() {
            return Err("jwks_no_usable_keys");
        }
        Ok(KeySet { keys })
    }

    /// Marks the keys of `self` that `next` no longer has as revoked; returns how many.
    pub(crate) fn revoke_missing(&self, next: &KeySet) -> usize {
        let mut revoked = 0;
        for key in &self.keys {
            if !next.keys.iter().any(|k| Arc::ptr_eq(k, key)) {
                key.revoked.store(true, Ordering::Relaxed);
                revoked += 1;
            }
        }
        revoked
    }

    /// Whether both sets hold the same keys.
    pub(crate) fn same_keys(&self, other: &KeySet) -> bool {
        self.keys.len() == other.keys.len()
            && self
                .keys
                .iter()
                .all(|k| other.keys.iter().any(|o| Arc::ptr_eq(k, o)))
    }
}

/// Members of a private or symmetric JWK (RFC 7518 sections 6.2.2, 6.3.2 and 6.4.1).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

pub(crate) fn usable_key(entry: &Value) -> Option<Key> {
    // A key published with its private part is known to whoever read the document, who can
    // then sign tokens with it: it verifies nothing (SECURITY.md Y1).
    if PRIVATE_MEMBERS.iter().any(|m| entry.get(m).is_some()) {
        return None;
    }
    let jwk: Jwk = serde_json::from_value(entry.clone()).ok()?;
    let common = &jwk.common;
    // RFC 7517 section 4.2 / 4.3: a key for encryption, or one whose operations exclude
    // verification, must not verify signatures.
    match &common.public_key_use {
        None | Some(PublicKeyUse::Signature) => {}
        Some(_) => return None,
    }
    if let Some(ops) = &common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return None;
    }
    let alg = match &common.key_algorithm {
        None => None,
        Some(a) => Some(a.to_string().parse::<Algorithm>().ok()?),
    };
    let kid = match &common.key_id {
        Some(kid) if kid.len() > tower_auth_core::jose::MAX_KID_LEN => return None,
        Some(kid) => Some(kid.as_str().into()),
        None => None,
    };
    let (kind, material) = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            let n = URL_SAFE_NO_PAD.decode(&rsa.n).ok()?;
            let e = URL_SAFE_NO_PAD.decode(&rsa.e).ok()?;
            let n_bits = significant_bits(&n);
            if n_bits < MIN_RSA_BITS || significant_bits(&e) < 2 || e.len() > 8 {
                return None;
            }
            let mut material = n;
            material.extend_from_slice(&e);
            (KeyKind::Rsa, material)
        }
        AlgorithmParameters::EllipticCurve(ec) => {
            let (kind, len) = match ec.curve {
                EllipticCurve::P256 => (KeyKind::P256, 32),
                EllipticCurve::P384 => (KeyKind::P384, 48),
                _ => return None,
            };
            let x = URL_SAFE_NO_PAD.decode(&ec.x).ok()?;
            let y = URL_SAFE_NO_PAD.decode(&ec.y).ok()?;
            if x.len() != len || y.len() != len {
                return None;
            }
            let mut material = x;
            material.extend_from_slice(&y);
            (kind, material)
        }
        AlgorithmParameters::OctetKeyPair(okp) => {
            if okp.curve != EllipticCurve::Ed25519 {
                return None;
            }
            let x = URL_SAFE_NO_PAD.decode(&okp.x).ok()?;
            if x.len() != 32 {
                return None;
            }
            (KeyKind::Ed25519, x)
        }
        // Symmetric keys never verify OIDC tokens; other types are not supported.
        _ => return None,
    };
    if alg.is_some_and(|a| !kind.fits(a)) {
        return None;
    }
    let decoding = DecodingKey::from_jwk(&jwk).ok()?;
    Some(Key {
        kid,
        kind,
        alg,
        material: material.into_boxed_slice(),
        decoding,
        revoked: AtomicBool::new(false),
    })
}

fn significant_bits(bytes: &[u8]) -> usize {
    match bytes.iter().position(|&b| b != 0) {
        None => 0,
        Some(first) => (bytes.len() - first - 1) * 8 + (8 - bytes[first].leading_zeros() as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn rsa(kid: &str, bits: usize) -> Value {
        let mut n = vec![0xC5u8; bits / 8];
        n[0] = 0xC5;
        json!({"kty": "RSA", "kid": kid, "n": b64(&n), "e": "AQAB"})
    }

    fn ec(kid: &str) -> Value {
        json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": b64(&[1; 32]), "y": b64(&[2; 32])})
    }

    fn parse(keys: Value) -> Result<KeySet, &'static str> {
        KeySet::parse(
            json!({ "keys": keys }).to_string().as_bytes(),
            &KeySet::default(),
        )
    }

    #[test]
    fn small_rsa_enc_and_symmetric_keys_are_skipped() {
        let set = parse(json!([
            rsa("small", 1024),
            rsa("ok", 2048),
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": b64(&[0xC5; 256]), "e": "AQAB"},
            {"kty": "RSA", "kid": "ops", "key_ops": ["encrypt"], "n": b64(&[0xC5; 256]), "e": "AQAB"},
            {"kty": "oct", "kid": "hmac", "k": b64(b"0123456789abcdef0123456789abcdef")},
            {"kty": "EC", "crv": "P-256", "kid": "short", "x": b64(&[1; 31]), "y": b64(&[2; 32])},
            {"kty": "RSA", "kid": "mismatch", "alg": "ES256", "n": b64(&[0xC5; 256]), "e": "AQAB"},
            {"kty": "weird"},
            "not an object",
            ec("ec"),
        ]))
        .unwrap();
        let kids: Vec<_> = set.keys.iter().map(|k| k.kid.as_deref().unwrap()).collect();
        assert_eq!(kids, ["ok", "ec"]);
    }

    /// SECURITY.md Y1.
    #[test]
    fn keys_published_with_a_private_member_are_skipped() {
        for member in PRIVATE_MEMBERS {
            let mut leaked = rsa("leaked", 2048);
            leaked[member] = json!(b64(&[7; 32]));
            let mut leaked_ec = ec("leaked-ec");
            leaked_ec[member] = json!(null);
            let set = parse(json!([leaked, leaked_ec, rsa("public", 2048)])).unwrap();
            let kids: Vec<_> = set.keys.iter().map(|k| k.kid.as_deref().unwrap()).collect();
            assert_eq!(kids, ["public"], "{member}");
        }
        let mut okp = json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64(&[9; 32])});
        assert!(parse(json!([okp.clone()])).is_ok());
        okp["d"] = json!(b64(&[3; 32]));
        assert_eq!(parse(json!([okp])).err(), Some("jwks_no_usable_keys"));
    }

    #[test]
    fn rsa_size_counts_significant_bits() {
        assert_eq!(significant_bits(&[0, 0, 1]), 1);
        assert_eq!(significant_bits(&[0x80, 0]), 16);
        let mut n = vec![0u8; 257];
        n[1] = 0x7F; // leading zero byte, then 2047 bits
        assert_eq!(significant_bits(&n), 2047);
        assert!(parse(json!([{"kty": "RSA", "n": b64(&n), "e": "AQAB"}])).is_err());
    }

    #[test]
    fn garbage_documents_are_refused() {
        assert_eq!(
            KeySet::parse(b"<html></html>", &KeySet::default()).err(),
            Some("jwks_not_json")
        );
        assert_eq!(
            KeySet::parse(b"{}", &KeySet::default()).err(),
            Some("jwks_without_keys")
        );
        assert_eq!(parse(json!([])).err(), Some("jwks_no_usable_keys"));
        assert_eq!(
            parse(json!([rsa("a", 1024)])).err(),
            Some("jwks_no_usable_keys")
        );
    }

    #[test]
    fn duplicate_kids_of_one_type_are_ambiguous_but_across_types_allowed() {
        assert_eq!(
            parse(json!([rsa("a", 2048), rsa("a", 3072)])).err(),
            Some("jwks_duplicate_kid")
        );
        let set = parse(json!([rsa("a", 2048), ec("a")])).unwrap();
        assert_eq!(set.with_kid("a").count(), 2);
        assert_eq!(
            set.with_kid("a")
                .filter(|k| k.fits(Algorithm::ES256))
                .count(),
            1
        );
    }

    #[test]
    fn alg_must_agree_with_key() {
        let set = parse(json!([
            {"kty": "RSA", "kid": "ps", "alg": "PS256", "n": b64(&[0xC5; 256]), "e": "AQAB"},
            ec("ec"),
        ]))
        .unwrap();
        let ps = set.with_kid("ps").next().unwrap();
        assert!(ps.fits(Algorithm::PS256));
        assert!(!ps.fits(Algorithm::RS256));
        assert!(!ps.fits(Algorithm::HS256));
        let ec = set.with_kid("ec").next().unwrap();
        assert!(
            ec.fits(Algorithm::ES256) && !ec.fits(Algorithm::ES384) && !ec.fits(Algorithm::RS256)
        );
    }

    #[test]
    fn unchanged_keys_are_carried_over_and_removed_ones_revoked() {
        let first = parse(json!([rsa("a", 2048), ec("b")])).unwrap();
        let second = KeySet::parse(
            json!({"keys": [rsa("a", 2048)]}).to_string().as_bytes(),
            &first,
        )
        .unwrap();
        assert!(Arc::ptr_eq(&first.keys[0], &second.keys[0]));
        assert!(!first.same_keys(&second));
        assert_eq!(first.revoke_missing(&second), 1);
        assert!(!first.keys[0].is_revoked());
        assert!(first.keys[1].is_revoked());
    }

    /// Found by the `jwks` fuzz target: the same kid-less key published twice is kept once,
    /// so that reading the document again carries every key over and changes nothing.
    /// SECURITY.md Y2.
    #[test]
    fn a_key_published_twice_is_kept_once_and_carried_over() {
        let mut twice = rsa("x", 2048);
        twice.as_object_mut().unwrap().remove("kid");
        let document = json!({"keys": [twice.clone(), rsa("a", 2048), twice]}).to_string();
        let first = KeySet::parse(document.as_bytes(), &KeySet::default()).unwrap();
        assert_eq!(first.keys.len(), 2);
        let again = KeySet::parse(document.as_bytes(), &first).unwrap();
        assert!(first.same_keys(&again));
        assert_eq!(first.revoke_missing(&again), 0);
    }
}
