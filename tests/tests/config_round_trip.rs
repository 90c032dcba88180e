//! A parsed and re-serialised configuration parses to the same value (issue 18), over
//! generated values (proptest): `API_KEYS` in both forms, plaintext and `sha256:` keys, with
//! names, roles and an admin list; `OIDC_CONFIG` with its issuers' fields and the numbers set
//! or left out (CA files, client secret files and introspection endpoints are covered by the
//! unit tests of tower-auth-oidc's `config_text`).

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tower_auth_core::{ADMIN_ROLE, Admins, ApiKeySet, check_key_strength, sha256_digest};
use tower_auth_oidc::OidcConfig;

/// A key that passes the strength check, one for each `(seed, place)`: 40 hex characters of
/// a digest (the first of `seed/place/0`, `seed/place/1`, ... that passes: about one in
/// 40,000 has a run the check refuses, such as `abcdef`).
fn key(seed: u64, place: usize) -> String {
    (0u32..)
        .map(|n| {
            hex::encode(sha256_digest(format!("{seed}/{place}/{n}").as_bytes()))[..40].to_owned()
        })
        .find(|key| check_key_strength(key).is_ok())
        .expect("some digest passes")
}

/// The digest a configured key (`sha256:<hex>` or plaintext) is held as.
fn digest_of(key: &str) -> [u8; 32] {
    match key.strip_prefix("sha256:") {
        Some(hex_digest) => {
            let mut digest = [0; 32];
            hex::decode_to_slice(hex_digest, &mut digest).unwrap();
            digest
        }
        None => sha256_digest(key.as_bytes()),
    }
}

/// Any name or role, escapes and non-ASCII included.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9:_-]{0,12}",
        "\\PC{1,8}",
        Just("admin".to_owned()),
        Just("a \"quoted\", \\ name".to_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn api_keys_written_back_read_back_equal(
        entries in prop::collection::vec(
            (any::<u64>(), any::<bool>(), text(), prop::collection::vec(text(), 0..4)),
            1..6,
        ),
        comma in any::<bool>(),
        admin in prop::option::of(0usize..6),
    ) {
        // Distinct keys and names (by place), or the value does not parse.
        let entries: Vec<_> = entries
            .into_iter()
            .enumerate()
            .map(|(i, (seed, hashed, name, roles))| {
                let plain = key(seed, i);
                let key = if hashed {
                    format!("sha256:{}", hex::encode(sha256_digest(plain.as_bytes())))
                } else {
                    plain
                };
                (key, format!("{i}-{name}"), roles)
            })
            .collect();
        let value = if comma {
            entries.iter().map(|(k, _, _)| format!(" {k} ")).collect::<Vec<_>>().join(",")
        } else {
            Value::from(
                entries
                    .iter()
                    .map(|(k, n, r)| json!({"name": n, "key": k, "roles": r}))
                    .collect::<Vec<_>>(),
            )
            .to_string()
        };
        let admins = match admin {
            Some(i) if comma => Admins::new([format!("api_key:key-{}", i + 1)]),
            Some(i) => Admins::new(entries.get(i).map(|(_, n, _)| n.clone())),
            None => Admins::default(),
        };
        let set = ApiKeySet::parse("API_KEYS", &value, &admins).unwrap();
        let text = set.to_variable(&admins);
        let again = ApiKeySet::parse("API_KEYS", &text, &admins).unwrap();
        prop_assert_eq!(&again, &set);
        prop_assert_eq!(again.to_variable(&admins), text.clone());
        for (key, _, _) in &entries {
            prop_assert!(key.starts_with("sha256:") || !text.contains(key.as_str()));
        }
        // Written back, the admin role the list grants is left to the list: read without it,
        // a key is an administrator only by a role of its own that the list did not grant.
        let without = ApiKeySet::parse("API_KEYS", &text, &Admins::default()).unwrap();
        for (i, (key, _, roles)) in entries.iter().enumerate() {
            let own = !comma && roles.iter().any(|r| r == ADMIN_ROLE) && admin != Some(i);
            let held = without.lookup_digest(&digest_of(key)).unwrap().has_role(ADMIN_ROLE);
            prop_assert_eq!(held, own, "{}", text);
        }
    }

    #[test]
    fn oidc_config_written_back_reads_back_the_same(
        issuers in prop::collection::vec(issuer(), 1..4),
        numbers in (
            prop::option::of(1u64..100_000),
            prop::option::of(any::<u64>()),
            prop::option::of(any::<u64>()),
            prop::option::of(0u64..=600),
        ),
        introspecting in prop::option::of(0usize..4),
    ) {
        let issuers: Vec<Value> = issuers
            .into_iter()
            .enumerate()
            .map(|(i, mut issuer)| {
                issuer.insert("issuer".into(), format!("https://idp-{i}.example/realms/r").into());
                if introspecting == Some(i) {
                    issuer.insert(
                        "introspection".into(),
                        json!({"client_id": "rs", "client_secret": format!("s3cret-{i}")}),
                    );
                }
                Value::Object(issuer)
            })
            .collect();
        let mut config = Map::new();
        config.insert("issuers".into(), issuers.into());
        let (refresh, size, ttl, leeway) = numbers;
        for (name, number) in [
            ("jwks_refresh_interval_secs", refresh),
            ("token_cache_size", size),
            ("token_cache_ttl_secs", ttl),
            ("leeway_secs", leeway),
        ] {
            if let Some(n) = number {
                config.insert(name.into(), n.into());
            }
        }
        let json = Value::Object(config).to_string();
        let parsed = OidcConfig::from_json("OIDC_CONFIG", &json).unwrap();
        let text = parsed.to_variable().unwrap();
        let again = OidcConfig::from_json("OIDC_CONFIG", &text).unwrap();
        // No JSON in the message: it may hold a client secret.
        prop_assert!(again.same_variable(&parsed), "written back, read back another configuration");
        prop_assert_eq!(again.to_variable().unwrap(), text);
        let debug = format!("{:?}", parsed);
        prop_assert!(!debug.contains("s3cret"), "a client secret in Debug");
    }
}

/// One issuer's optional fields (the issuer URL is added by the caller).
fn issuer() -> impl Strategy<Value = Map<String, Value>> {
    let audience = prop_oneof![
        text().prop_map(Value::from),
        prop::collection::vec(text(), 1..4).prop_map(Value::from),
    ];
    let algorithms = prop::collection::vec(
        prop::sample::select(vec![
            "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
        ]),
        1..5,
    );
    (
        audience,
        prop::option::of(prop::sample::select(vec![
            "https://keys.example/jwks",
            "http://127.0.0.1:8080/jwks?x=1",
            "https://keys.example",
            "http://[::1]/k",
        ])),
        prop::option::of(prop::sample::select(vec![
            "groups",
            "realm_access.roles",
            "scope",
        ])),
        prop::option::of(text()),
        prop::option::of(algorithms),
        prop::option::of(text()),
        prop::option::of(prop::sample::select(vec!["allowed", "required"])),
        prop::option::of(any::<bool>()),
    )
        .prop_map(
            |(audience, jwks_uri, claim, prefix, algorithms, typ, dpop, nonce)| {
                let mut issuer = Map::new();
                issuer.insert("audience".into(), audience);
                let optional = [
                    ("jwks_uri", jwks_uri.map(Value::from)),
                    ("roles_claim", claim.map(Value::from)),
                    ("roles_prefix", prefix.map(Value::from)),
                    ("algorithms", algorithms.map(Value::from)),
                    ("required_typ", typ.map(Value::from)),
                    ("dpop", dpop.map(Value::from)),
                    ("dpop_nonce", nonce.map(Value::from)),
                ];
                for (name, value) in optional {
                    if let Some(value) = value {
                        issuer.insert(name.into(), value);
                    }
                }
                issuer
            },
        )
}
