//! An [`ApiKeySet`] written back in the text form of `API_KEYS`, and equality of sets: a
//! parsed and re-serialised configuration parses to the same value (issue 18; checked by the
//! `config` fuzz target).

use serde_json::{Map, Value};

use crate::{ADMIN_ROLE, Admins, ApiKeySet, Identity};

impl ApiKeySet {
    /// The set in the JSON form of `API_KEYS`, which reads back ([`ApiKeySet::parse`] with
    /// the same `admins`) to an equal set:
    ///
    /// ```text
    /// [{"key":"sha256:<64 hex>","name":"ci","roles":["deploy"]},{"key":"sha256:...","name":"ops"}]
    /// ```
    ///
    /// Entries are sorted by name; `roles` is left out when a key has none. The set holds
    /// SHA-256 digests only, so every key is written as `sha256:<hex>`: the text never holds
    /// a plaintext key, and a set read from the comma form comes back in this form, its keys
    /// still named `key-1`, `key-2`, ...
    ///
    /// [`ADMIN_ROLE`] is left out of a key's roles when `admins` grants it to that key (reading
    /// the text with the same `admins` grants it again), so that the text does not make a key
    /// an administrator for good that a later `AUTH_ADMINS` no longer lists. Pass the
    /// `admins` the set was parsed with: with another list, a grant of the parsing list that
    /// `admins` lacks is written as an `admin` role and outlives `AUTH_ADMINS`, and a key
    /// that has `admin` as its own role and is also in `admins` loses it in the text.
    ///
    /// ```
    /// use tower_auth_core::{Admins, ApiKeySet};
    ///
    /// let keys = "k7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA";
    /// let set = ApiKeySet::parse("API_KEYS", keys, &Admins::default()).unwrap();
    /// let text = set.to_variable(&Admins::default());
    /// assert!(text.starts_with(r#"[{"key":"sha256:"#) && !text.contains(keys));
    /// assert_eq!(ApiKeySet::parse("API_KEYS", &text, &Admins::default()).unwrap(), set);
    /// ```
    pub fn to_variable(&self, admins: &Admins) -> String {
        let mut entries: Vec<(&[u8; 32], &Identity)> = self.entries().collect();
        entries.sort_unstable_by(|a, b| a.1.subject().cmp(b.1.subject()));
        let entries: Vec<Value> = entries
            .into_iter()
            .map(|(digest, identity)| {
                let granted = Identity::builder(identity.subject(), identity.method().clone())
                    .admins(admins)
                    .build()
                    .has_role(ADMIN_ROLE);
                let roles: Vec<&str> = identity
                    .roles()
                    .iter()
                    .map(String::as_str)
                    .filter(|role| !(granted && *role == ADMIN_ROLE))
                    .collect();
                let mut entry = Map::new();
                entry.insert("name".into(), identity.subject().into());
                entry.insert(
                    "key".into(),
                    format!("sha256:{}", hex::encode(digest)).into(),
                );
                if !roles.is_empty() {
                    entry.insert("roles".into(), roles.into());
                }
                Value::Object(entry)
            })
            .collect();
        Value::Array(entries).to_string()
    }
}

/// Two sets are equal when they hold the same digests, each with the same identity: the same
/// name (subject and method) and the same roles, [`ADMIN_ROLE`] included.
impl PartialEq for ApiKeySet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self.entries().all(|(digest, identity)| {
                other
                    .lookup_digest(digest)
                    .is_some_and(|theirs| same_identity(identity, theirs))
            })
    }
}

impl Eq for ApiKeySet {}

/// Whether two identities say the same in everything they expose.
fn same_identity(a: &Identity, b: &Identity) -> bool {
    a.subject() == b.subject()
        && a.method() == b.method()
        && a.roles() == b.roles()
        && a.name() == b.name()
        && a.email() == b.email()
        && a.email_verified() == b.email_verified()
        && a.claims() == b.claims()
        && a.expires_at() == b.expires_at()
        && a.bound_certificate() == b.bound_certificate()
        && a.issued_at() == b.issued_at()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sha256_digest;

    const K1: &str = "k7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA";
    const K2: &str = "0f3c9a7e5b1d2c4e6a8b0d9f7e5c3a1b2d4f6e8a0c9b7d5e3f1a2c4e6b8d0f9a";
    const K3: &str = "q9VtX2mB7kR4nZ8wL1cF6hJ3pD5sG0yA+/eU=";

    fn parse(text: &str, admins: &Admins) -> ApiKeySet {
        ApiKeySet::parse("API_KEYS", text, admins).unwrap()
    }

    /// Written back with `admins`, the set reads back equal, and writing that again gives
    /// the same text.
    fn round_trip(set: &ApiKeySet, admins: &Admins) -> String {
        let text = set.to_variable(admins);
        let again = parse(&text, admins);
        assert_eq!(&again, set, "{text}");
        assert_eq!(again.to_variable(admins), text);
        text
    }

    #[test]
    fn every_form_of_api_keys_written_back_reads_back_equal() {
        let d2 = hex::encode(sha256_digest(K2.as_bytes()));
        let upper = hex::encode_upper(sha256_digest(K3.as_bytes()));
        let none = Admins::default();
        let admins = Admins::new(["api_key:ops", "key-2"]);
        for (value, admins) in [
            // The comma form, plaintext and digest keys, spaces around them.
            (format!(" {K1} , sha256:{d2} ,{K3}"), &none),
            (format!("{K1},sha256:{d2}"), &admins),
            (K1.to_owned(), &none),
            // The JSON form: roles or none, empty and repeated roles, admin granted by the
            // list, admin held as a role, names that need escaping.
            (
                format!(
                    r#"[{{"name":"ci","key":"{K1}","roles":["deploy","","deploy","b"]}},
                        {{"name":"ops","key":"sha256:{d2}"}},
                        {{"name":"self-made \"admin\", \u00e9","key":"sha256:{upper}","roles":["admin"]}}]"#
                ),
                &admins,
            ),
            (
                format!(r#"[{{"name":"ops","key":"{K1}","roles":["admin","x"]}}]"#),
                &admins,
            ),
            ("[]".to_owned(), &none),
        ] {
            let set = parse(&value, admins);
            let text = round_trip(&set, admins);
            for key in [K1, K2, K3] {
                assert!(!text.contains(key), "a plaintext key in {text}");
            }
        }
    }

    /// SECURITY.md Y3.
    #[test]
    fn the_text_holds_digests_names_and_roles_but_not_an_admin_grant() {
        let admins = Admins::new(["api_key:ops"]);
        let set = parse(
            &format!(
                r#"[{{"name":"ops","key":"{K1}","roles":["deploy"]}},{{"name":"ci","key":"{K2}","roles":["admin"]}}]"#
            ),
            &admins,
        );
        let d1 = hex::encode(sha256_digest(K1.as_bytes()));
        let d2 = hex::encode(sha256_digest(K2.as_bytes()));
        assert_eq!(
            set.to_variable(&admins),
            format!(
                r#"[{{"key":"sha256:{d2}","name":"ci","roles":["admin"]}},{{"key":"sha256:{d1}","name":"ops","roles":["deploy"]}}]"#
            )
        );
        // Read back without the admin list, `ops` is no administrator; `ci` still is.
        let without = parse(&set.to_variable(&admins), &Admins::default());
        assert!(!without.lookup(K1).unwrap().has_role(ADMIN_ROLE));
        assert!(without.lookup(K2).unwrap().has_role(ADMIN_ROLE));
        assert_ne!(without, set);
        // Written back without the list, the grant is kept as a role.
        assert_eq!(parse(&set.to_variable(&Admins::default()), &admins), set);
        assert_eq!(ApiKeySet::default().to_variable(&admins), "[]");
    }

    #[test]
    fn sets_differ_by_digest_name_roles_or_admin() {
        let none = Admins::default();
        let base = parse(
            &format!(r#"[{{"name":"a","key":"{K1}","roles":["r"]}}]"#),
            &none,
        );
        for other in [
            format!(r#"[{{"name":"a","key":"{K2}","roles":["r"]}}]"#),
            format!(r#"[{{"name":"b","key":"{K1}","roles":["r"]}}]"#),
            format!(r#"[{{"name":"a","key":"{K1}","roles":["r","s"]}}]"#),
            format!(r#"[{{"name":"a","key":"{K1}"}}]"#),
            format!(r#"[{{"name":"a","key":"{K1}","roles":["r"]}},{{"name":"b","key":"{K2}"}}]"#),
        ] {
            assert_ne!(parse(&other, &none), base, "{other}");
        }
        let admin = parse(
            &format!(r#"[{{"name":"a","key":"{K1}","roles":["r"]}}]"#),
            &Admins::new(["a"]),
        );
        assert_ne!(admin, base);
        assert_eq!(
            parse(
                &format!(r#"[{{"name":"a","key":"{K1}","roles":["r","r"]}}]"#),
                &none
            ),
            base
        );
    }
}
