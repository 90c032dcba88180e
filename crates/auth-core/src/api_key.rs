//! API keys: named, stored only as SHA-256 digests, looked up in constant time per request.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::{
    Admins, AuthError, AuthMethod, Authenticator, Check, ConfigError, Credential,
    DigestBuildHasher, Identity, Outcome, Routing, Secret, jose::looks_like_jws, sha256_digest,
};

/// Keys shorter than this refuse to load.
const MIN_KEY_LEN: usize = 32;

/// Why a key was refused at start-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyWeakness {
    /// Under 32 characters.
    TooShort,
    /// Few distinct characters, a repeated pattern, a run such as `abcdefgh`, or a common word.
    LowEntropy,
    /// Whitespace, a comma or a character outside printable ASCII.
    BadCharacter,
}

impl KeyWeakness {
    /// What is wrong, for an error message; never shows the key.
    pub fn describe(self) -> &'static str {
        match self {
            Self::TooShort => "is shorter than 32 characters",
            Self::LowEntropy => "has low entropy (use `openssl rand -hex 32`)",
            Self::BadCharacter => "contains whitespace, a comma or a non-printable character",
        }
    }
}

/// Words that make a key guessable however long it is.
const WEAK_WORDS: &[&str] = &[
    "password", "passwd", "secret", "changeme", "letmein", "qwerty", "admin", "123456", "default",
    "example",
];

/// Checks that a plaintext key is fit to use: long enough and not guessable.
///
/// The rules are deliberately simple and conservative: a key from a random generator
/// (`openssl rand -hex 32`, 32 random bytes in base64) always passes; a human-made key
/// (`aaaa...`, `password1234...`, `abcdefgh...`) does not.
pub fn check_key_strength(key: &str) -> Result<(), KeyWeakness> {
    let bytes = key.as_bytes();
    if !bytes.iter().all(|&b| b.is_ascii_graphic() && b != b',') {
        return Err(KeyWeakness::BadCharacter);
    }
    check_secret_strength(bytes)
}

/// Checks that a secret of any bytes (an HMAC key, say) is fit to use: at least 32 bytes and
/// not guessable, by the rules of [`check_key_strength`] without its character set, so that
/// random binary secrets pass too. Never [`KeyWeakness::BadCharacter`].
pub fn check_secret_strength(secret: &[u8]) -> Result<(), KeyWeakness> {
    if secret.len() < MIN_KEY_LEN {
        return Err(KeyWeakness::TooShort);
    }
    let distinct = secret.iter().collect::<HashSet<_>>().len();
    let lower = secret.to_ascii_lowercase();
    let weak = distinct < 10
        || shannon_bits(secret) < 96.0
        || has_period(secret)
        || longest_step_run(secret) >= 6
        || WEAK_WORDS
            .iter()
            .any(|w| lower.windows(w.len()).any(|part| part == w.as_bytes()));
    if weak {
        Err(KeyWeakness::LowEntropy)
    } else {
        Ok(())
    }
}

/// Shannon entropy of the character distribution, times the length: an upper bound on the
/// information in the key, low for keys with a skewed alphabet.
fn shannon_bits(bytes: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[b as usize] += 1;
    }
    let n = bytes.len() as f64;
    let per_char: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum();
    per_char * n
}

/// Whether the key is one short pattern repeated (`abcabcabc...`).
fn has_period(bytes: &[u8]) -> bool {
    (1..=bytes.len() / 2).any(|p| bytes.iter().skip(p).zip(bytes).all(|(a, b)| a == b))
}

/// The longest run of characters that each step by the same +1 or -1 (`abcdef`, `987654`).
fn longest_step_run(bytes: &[u8]) -> usize {
    let mut longest = 1;
    let mut run = 1;
    let mut step = 0i16;
    for pair in bytes.windows(2) {
        let d = i16::from(pair[1]) - i16::from(pair[0]);
        if d.abs() == 1 && d == step {
            run += 1;
        } else {
            run = if d.abs() == 1 { 2 } else { 1 };
            step = d;
        }
        longest = longest.max(run);
    }
    longest
}

/// The keys by the first 8 bytes of their digests.
type Buckets = HashMap<u64, Bucket, DigestBuildHasher>;

/// The keys whose digests begin with the same 8 bytes, with their identities: one, inline in
/// the map's slot, so that a lookup reads the slot and the identity and nothing else (a `Vec`
/// here cost a heap block of 4 entries per key, 160 bytes, and one more memory access per
/// lookup); or, on a 64-bit prefix collision, all of them in a boxed slice.
#[derive(Clone)]
enum Bucket {
    One(([u8; 32], Identity)),
    Many(Box<[([u8; 32], Identity)]>),
}

impl Bucket {
    fn entries(&self) -> &[([u8; 32], Identity)] {
        match self {
            Self::One(entry) => std::slice::from_ref(entry),
            Self::Many(entries) => entries,
        }
    }
}

impl<'a> IntoIterator for &'a Bucket {
    type Item = &'a ([u8; 32], Identity);
    type IntoIter = std::slice::Iter<'a, ([u8; 32], Identity)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries().iter()
    }
}

fn prefix(digest: &[u8; 32]) -> u64 {
    let mut first = [0; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// One configured key, before it is hashed into a set.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    name: String,
    key: String,
    #[serde(default)]
    roles: Vec<String>,
}

/// A set of API keys, held as SHA-256 digests only.
///
/// Lookup hashes the presented key once, finds its bucket by the digest's prefix, and
/// compares full digests with `subtle`: the cost does not grow with the number of keys and
/// does not depend on how much of a wrong key matches.
///
/// There is no per-thread front here (the token cache of tower-auth-oidc has one): a lookup
/// is a SHA-256 and a map probe, about 116 ns, well under the 250 ns target, and a front
/// measured no gain against the targets (issue 11, item 9; BENCHMARKS.md).
#[derive(Clone, Default)]
pub struct ApiKeySet {
    buckets: Buckets,
    len: usize,
}

impl std::fmt::Debug for ApiKeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeySet")
            .field("keys", &self.len)
            .finish_non_exhaustive()
    }
}

impl ApiKeySet {
    /// Parses keys as given in `API_KEYS` (or `API_KEYS_FILE`); `variable` names the source in errors.
    ///
    /// Accepted forms:
    /// - a comma-separated list of keys, named `key-1`, `key-2`, ... by position;
    /// - a JSON array `[{"name": "svc1", "key": "...", "roles": ["..."]}]` (`roles` optional);
    /// - in either form, a key may be `sha256:<64 hex>` so the plaintext never sits in config.
    ///
    /// Plaintext keys must pass [`check_key_strength`]. Errors name `variable` and the
    /// entry's position, never a key.
    pub fn parse(variable: &str, value: &str, admins: &Admins) -> Result<Self, ConfigError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(ConfigError::new(variable, "no keys given"));
        }
        let entries: Vec<KeyEntry> = if value.starts_with('[') {
            serde_json::from_str(value).map_err(|e| {
                // serde_json's message can quote input; keep only its position.
                ConfigError::new(
                    variable,
                    format!(
                        "not a JSON array of {{\"name\",\"key\"}} objects (line {}, column {})",
                        e.line(),
                        e.column()
                    ),
                )
            })?
        } else {
            value
                .split(',')
                .enumerate()
                .map(|(i, key)| KeyEntry {
                    name: format!("key-{}", i + 1),
                    key: key.trim().to_owned(),
                    roles: Vec::new(),
                })
                .collect()
        };
        let mut set = Self::default();
        let mut names = HashSet::new();
        for (i, entry) in entries.into_iter().enumerate() {
            let position = i + 1;
            let key = Secret::from(entry.key);
            if entry.name.is_empty() || !names.insert(entry.name.clone()) {
                return Err(ConfigError::new(
                    variable,
                    format!("key #{position} has an empty or repeated name"),
                ));
            }
            let digest = parse_key(&key)
                .map_err(|why| ConfigError::new(variable, format!("key #{position} {why}")))?;
            let identity = Identity::builder(
                entry.name.clone(),
                AuthMethod::ApiKey {
                    name: entry.name.as_str().into(),
                },
            )
            .roles(entry.roles)
            .admins(admins)
            .build();
            if !set.insert(digest, identity) {
                return Err(ConfigError::new(
                    variable,
                    format!("key #{position} repeats an earlier key"),
                ));
            }
        }
        Ok(set)
    }

    fn insert(&mut self, digest: [u8; 32], identity: Identity) -> bool {
        use std::collections::hash_map::Entry;
        match self.buckets.entry(prefix(&digest)) {
            Entry::Vacant(slot) => {
                slot.insert(Bucket::One((digest, identity)));
            }
            Entry::Occupied(mut slot) => {
                let bucket = slot.get_mut();
                if bucket
                    .into_iter()
                    .any(|(d, _)| bool::from(d.ct_eq(&digest)))
                {
                    return false;
                }
                // A 64-bit prefix collision: rare enough that copying the few entries is fine.
                let mut entries = bucket.entries().to_vec();
                entries.push((digest, identity));
                *bucket = Bucket::Many(entries.into_boxed_slice());
            }
        }
        self.len += 1;
        true
    }

    /// The identity of the key whose SHA-256 digest is `digest`.
    pub fn lookup_digest(&self, digest: &[u8; 32]) -> Option<&Identity> {
        let bucket = self.buckets.get(&prefix(digest))?;
        // A bucket holds one entry except on a 64-bit prefix collision; compare every
        // entry so the time does not depend on which one matches.
        let mut found = None;
        for (d, identity) in bucket.entries() {
            if bool::from(d.ct_eq(digest)) {
                found = Some(identity);
            }
        }
        found
    }

    /// The identity of `key`, if it is configured.
    pub fn lookup(&self, key: &str) -> Option<&Identity> {
        self.lookup_digest(&sha256_digest(key.as_bytes()))
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every key's digest and identity, in no particular order (for
    /// [`to_variable`](Self::to_variable) and equality, in `api_key_text.rs`).
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&[u8; 32], &Identity)> + '_ {
        self.buckets.values().flatten().map(|(d, i)| (d, i))
    }
}

/// A key's digest: from `sha256:<hex>`, or by hashing a plaintext key that passes the strength check.
fn parse_key(key: &Secret) -> Result<[u8; 32], &'static str> {
    let text = std::str::from_utf8(key.expose_secret())
        .map_err(|_| KeyWeakness::BadCharacter.describe())?;
    if let Some(hex_digest) = text.strip_prefix("sha256:") {
        let mut digest = [0; 32];
        return hex::decode_to_slice(hex_digest, &mut digest)
            .map(|()| digest)
            .map_err(|_| "is not `sha256:` followed by 64 hex characters");
    }
    check_key_strength(text).map_err(KeyWeakness::describe)?;
    if looks_like_jws(text) {
        return Err("has the shape of a JWT and would be routed to a token validator");
    }
    Ok(sha256_digest(text.as_bytes()))
}

/// Authenticates API keys from the API-key header or `Authorization: Bearer`.
///
/// The key set can be swapped at run time ([`ApiKeyAuthenticator::replace`]) without a lock
/// on the request path, which is how `API_KEYS_FILE` reloads.
pub struct ApiKeyAuthenticator {
    keys: ArcSwap<ApiKeySet>,
}

impl std::fmt::Debug for ApiKeyAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyAuthenticator")
            .field("keys", &self.keys.load().len())
            .finish()
    }
}

impl ApiKeyAuthenticator {
    /// An authenticator for `keys`.
    pub fn new(keys: ApiKeySet) -> Self {
        Self {
            keys: ArcSwap::from_pointee(keys),
        }
    }

    /// Replaces the key set; requests already past the lookup are unaffected.
    pub fn replace(&self, keys: ApiKeySet) {
        self.keys.store(Arc::new(keys));
    }

    /// The number of keys now configured.
    pub fn len(&self) -> usize {
        self.keys.load().len()
    }

    /// Whether no key is configured.
    pub fn is_empty(&self) -> bool {
        self.keys.load().is_empty()
    }
}

impl ApiKeyAuthenticator {
    /// The identity of `key`, if it is configured in the current set.
    fn find(&self, key: &str) -> Option<Identity> {
        let digest = sha256_digest(key.as_bytes());
        self.keys.load().lookup_digest(&digest).cloned()
    }
}

impl Authenticator for ApiKeyAuthenticator {
    fn method(&self) -> &'static str {
        "api_key"
    }

    /// A bearer value with a JWT's shape is never taken for a key: such keys refuse to load.
    fn routing(&self) -> Routing {
        Routing::NotJws
    }

    fn authenticate(&self, credential: Credential<'_>) -> Check {
        let outcome = match credential {
            Credential::ApiKey(key) => match self.find(key) {
                Some(identity) => Outcome::Authenticated(identity),
                None => Outcome::Rejected(AuthError::invalid_token("unknown_api_key")),
            },
            Credential::Bearer(token) if looks_like_jws(token) => Outcome::NotMine,
            // A bearer that is not a known key may be another method's token.
            Credential::Bearer(token) => match self.find(token) {
                Some(identity) => Outcome::Authenticated(identity),
                None => Outcome::NotMine,
            },
        };
        Check::Ready(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ADMIN_ROLE;

    const K1: &str = "k7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA";
    const K2: &str = "0f3c9a7e5b1d2c4e6a8b0d9f7e5c3a1b2d4f6e8a0c9b7d5e3f1a2c4e6b8d0f9a";

    fn ready(check: Check) -> Outcome {
        match check {
            Check::Ready(o) => o,
            Check::Pending(_) => panic!("api keys never wait"),
        }
    }

    #[test]
    fn strong_keys_pass() {
        for key in [K1, K2, "q9VtX2mB7kR4nZ8wL1cF6hJ3pD5sG0yA+/eU="] {
            assert_eq!(check_key_strength(key), Ok(()), "{key}");
        }
    }

    #[test]
    fn weak_keys_are_refused() {
        let cases = [
            ("short", KeyWeakness::TooShort),
            (
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                KeyWeakness::LowEntropy,
            ),
            (
                "abababababababababababababababababab",
                KeyWeakness::LowEntropy,
            ),
            (
                "password1234password1234password1234",
                KeyWeakness::LowEntropy,
            ),
            (
                "Xk9PASSWORDq2Lm7Rt4Vb8Nc3Jh6Gf1Dz5Ws",
                KeyWeakness::LowEntropy,
            ),
            (
                "abcdefghijklmnopqrstuvwxyz0123456789",
                KeyWeakness::LowEntropy,
            ),
            (
                "x7Kq2Lm9Pz4Rt8Vb3Nc6Jh1Gf5Dz0Ws 2Ya",
                KeyWeakness::BadCharacter,
            ),
            (
                "x7Kq2Lm9Pz4Rt8Vb3Nc6Jh1Gf5Dz0Ws,2Ya",
                KeyWeakness::BadCharacter,
            ),
            (
                "x7Kq2Lm9Pz4Rt8Vb3Nc6Jh1Gf5Dz0Wsé2Ya",
                KeyWeakness::BadCharacter,
            ),
            // 36 characters but only 3-4 bits each.
            (
                "1212343412123434121234341212343412123434",
                KeyWeakness::LowEntropy,
            ),
        ];
        for (key, why) in cases {
            assert_eq!(check_key_strength(key), Err(why), "{key}");
        }
    }

    #[test]
    fn secrets_of_any_bytes_follow_the_entropy_rules_only() {
        let binary: Vec<u8> = (0u8..32)
            .map(|i| i.wrapping_mul(149).wrapping_add(200))
            .collect();
        assert_eq!(
            check_key_strength(&String::from_utf8_lossy(&binary)),
            Err(KeyWeakness::BadCharacter)
        );
        assert_eq!(check_secret_strength(&binary), Ok(()));
        assert_eq!(
            check_secret_strength(b"spaces and, commas: q9VtX2mB7kR4nZ8wL1"),
            Ok(())
        );
        for (secret, why) in [
            (&b"short"[..], KeyWeakness::TooShort),
            (&[0xffu8; 40][..], KeyWeakness::LowEntropy),
            (
                b"q9VtX2mB7kR4nZ8wL1cF6hJ3pD5sG0yA-SeCrEt",
                KeyWeakness::LowEntropy,
            ),
            (
                b"abcdefghijklmnopqrstuvwxyz0123456789",
                KeyWeakness::LowEntropy,
            ),
        ] {
            assert_eq!(check_secret_strength(secret), Err(why));
        }
    }

    #[test]
    fn comma_list_names_keys_by_position() {
        let set =
            ApiKeySet::parse("API_KEYS", &format!(" {K1} , {K2} "), &Admins::default()).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(set.lookup(K1).unwrap().subject(), "key-1");
        assert_eq!(set.lookup(K2).unwrap().subject(), "key-2");
        assert!(set.lookup("nope").is_none());
    }

    #[test]
    fn json_entries_with_names_roles_and_digests() {
        let digest = hex::encode(sha256_digest(K2.as_bytes()));
        let json = format!(
            r#"[{{"name":"ci","key":"{K1}","roles":["deploy"]}},{{"name":"ops","key":"sha256:{digest}"}}]"#
        );
        let admins = Admins::new(["ops"]);
        let set = ApiKeySet::parse("API_KEYS", &json, &admins).unwrap();
        let ci = set.lookup(K1).unwrap();
        assert_eq!(ci.subject(), "ci");
        assert!(ci.has_role("deploy") && !ci.has_role(ADMIN_ROLE));
        let ops = set.lookup(K2).unwrap();
        assert_eq!(ops.method(), &AuthMethod::ApiKey { name: "ops".into() });
        assert!(ops.has_role(ADMIN_ROLE));
    }

    #[test]
    fn errors_name_the_variable_and_position_never_the_key() {
        let weak = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let err =
            ApiKeySet::parse("API_KEYS", &format!("{K1},{weak}"), &Admins::default()).unwrap_err();
        assert_eq!(err.variable(), "API_KEYS");
        assert!(err.message().contains("key #2"), "{err}");
        assert!(!err.to_string().contains(weak), "{err}");

        let err = ApiKeySet::parse(
            "API_KEYS",
            &format!(r#"[{{"name":"a","key":"{K1}"}},"#),
            &Admins::default(),
        )
        .unwrap_err();
        assert!(!err.to_string().contains(K1), "{err}");

        for bad in [
            "",
            "  ",
            &format!("{K1},{K1}"),
            &format!("{K1},,{K2}"),
            "sha256:abcd",
            &format!("sha256:{}", "z".repeat(64)),
        ] {
            let err = ApiKeySet::parse("API_KEYS", bad, &Admins::default()).unwrap_err();
            assert_eq!(err.variable(), "API_KEYS");
        }
        let jwt_shaped = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlX3g";
        assert!(ApiKeySet::parse("API_KEYS", jwt_shaped, &Admins::default()).is_err());
    }

    #[test]
    fn authenticator_routes_by_transport() {
        let auth =
            ApiKeyAuthenticator::new(ApiKeySet::parse("API_KEYS", K1, &Admins::default()).unwrap());
        assert!(matches!(
            ready(auth.authenticate(Credential::ApiKey(K1))),
            Outcome::Authenticated(_)
        ));
        assert!(matches!(
            ready(auth.authenticate(Credential::Bearer(K1))),
            Outcome::Authenticated(_)
        ));
        // An API-key header is ours whatever it holds: a wrong key is rejected, never passed on.
        match ready(auth.authenticate(Credential::ApiKey("wrong"))) {
            Outcome::Rejected(e) => assert_eq!(e.reason(), "unknown_api_key"),
            other => panic!("{other:?}"),
        }
        // A bearer that is no key of ours may be a token for the next authenticator.
        assert!(matches!(
            ready(auth.authenticate(Credential::Bearer("other"))),
            Outcome::NotMine
        ));
        assert!(matches!(
            ready(auth.authenticate(Credential::Bearer("eyJh.eyJz.sig"))),
            Outcome::NotMine
        ));
    }

    #[test]
    fn replace_swaps_the_keys() {
        let auth =
            ApiKeyAuthenticator::new(ApiKeySet::parse("API_KEYS", K1, &Admins::default()).unwrap());
        auth.replace(ApiKeySet::parse("API_KEYS", K2, &Admins::default()).unwrap());
        assert!(matches!(
            ready(auth.authenticate(Credential::ApiKey(K1))),
            Outcome::Rejected(_)
        ));
        assert!(matches!(
            ready(auth.authenticate(Credential::ApiKey(K2))),
            Outcome::Authenticated(_)
        ));
    }

    #[test]
    fn alternating_and_repeated_keys_get_their_own_identities_and_a_new_set_applies_at_once() {
        let keys =
            format!(r#"[{{"name":"a","key":"{K1}","roles":["ops"]}},{{"name":"b","key":"{K2}"}}]"#);
        let auth = ApiKeyAuthenticator::new(
            ApiKeySet::parse("API_KEYS", &keys, &Admins::default()).unwrap(),
        );
        let subject = |key| match ready(auth.authenticate(Credential::ApiKey(key))) {
            Outcome::Authenticated(identity) => {
                Ok((identity.subject().to_owned(), identity.has_role("ops")))
            }
            Outcome::Rejected(e) => Err(e.reason()),
            Outcome::NotMine => Err("not mine"),
        };
        // Alternating, then repeated, then another key: each gets its own identity.
        for key in [K1, K2, K1, K1, K1, K2, K2, K1] {
            let expected = if key == K1 {
                ("a".into(), true)
            } else {
                ("b".into(), false)
            };
            assert_eq!(subject(key), Ok(expected));
        }
        assert_eq!(
            subject("k7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeB"),
            Err("unknown_api_key")
        );
        // A new set without K1 refuses it at once.
        auth.replace(ApiKeySet::parse("API_KEYS", K2, &Admins::default()).unwrap());
        assert_eq!(subject(K1), Err("unknown_api_key"));
        assert_eq!(subject(K2), Ok(("key-1".into(), false)));
    }

    fn named(name: &str) -> Identity {
        Identity::builder(name, AuthMethod::ApiKey { name: name.into() }).build()
    }

    /// Digests that share their first 8 bytes (a 64-bit prefix collision, which SHA-256 will
    /// not give us on demand) each find their own identity, however many share the prefix.
    #[test]
    fn digests_sharing_a_prefix_each_find_their_own_identity() {
        let digest = |last: u8, middle: u8| {
            let mut d = [7u8; 32];
            d[31] = last;
            d[16] = middle;
            d
        };
        let (a, b, c) = (digest(1, 0), digest(2, 0), digest(1, 9));
        let mut set = ApiKeySet::default();
        assert!(set.insert(a, named("a")));
        assert!(matches!(set.buckets[&prefix(&a)], Bucket::One(_)));
        assert!(set.insert(b, named("b")));
        assert!(set.insert(c, named("c")));
        assert!(
            !set.insert(b, named("b again")),
            "a repeated digest is refused"
        );
        assert_eq!((set.len(), set.buckets.len()), (3, 1));
        assert!(matches!(&set.buckets[&prefix(&a)], Bucket::Many(all) if all.len() == 3));
        for (d, name) in [(a, "a"), (b, "b"), (c, "c")] {
            assert_eq!(set.lookup_digest(&d).map(Identity::subject), Some(name));
        }
        // The same prefix with another tail, and another prefix with a known tail: unknown.
        assert!(set.lookup_digest(&digest(3, 0)).is_none());
        let mut other_prefix = a;
        other_prefix[0] ^= 1;
        assert!(set.lookup_digest(&other_prefix).is_none());
        // A key whose prefix is its own stays inline beside them.
        assert!(set.insert(other_prefix, named("d")));
        assert!(matches!(
            set.buckets[&prefix(&other_prefix)],
            Bucket::One(_)
        ));
        assert_eq!(set.lookup_digest(&other_prefix).unwrap().subject(), "d");
        assert_eq!(set.clone().lookup_digest(&c).unwrap().subject(), "c");
    }

    /// The map's slot holds a key's digest and identity with no room to spare: the collision
    /// case fits beside them (BENCHMARKS.md, cost at scale).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_bucket_is_a_digest_and_a_pointer() {
        assert_eq!(std::mem::size_of::<Bucket>(), 40);
    }

    #[test]
    fn lookup_with_many_keys() {
        let keys: Vec<String> = (0..1000)
            .map(|i| hex::encode(sha256_digest(format!("seed-{i}").as_bytes())))
            .collect();
        let set = ApiKeySet::parse("API_KEYS", &keys.join(","), &Admins::default()).unwrap();
        assert_eq!(set.len(), 1000);
        assert_eq!(set.lookup(&keys[999]).unwrap().subject(), "key-1000");
    }
}
