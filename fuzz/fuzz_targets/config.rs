//! Configuration from the environment with one arbitrary value: `API_KEYS`, `AUTH_ADMINS`,
//! `AUTH_METHOD_ROLES`, `AUTH_PUBLIC_PATHS`, `OIDC_CONFIG`, `AUTH_TOKEN_CLIENTS`,
//! `AUTH_FAILURE_LIMIT`, `AUTH_TRUSTED_PROXIES`, `AUTH_STRIP_HEADERS`: never a panic, an
//! error always names a variable, and never quotes an API key given.
//!
//! Round trip: a value of `AUTH_ADMINS`, `API_KEYS`, `OIDC_CONFIG` or `AUTH_METHOD_ROLES`
//! that loads, written back (`Admins::to_variable`, `ApiKeySet::to_variable`,
//! `OidcConfig::to_variable`, `tower_auth::fuzzing::MethodRoles::to_variable`), reads back to
//! an equal value (for `OIDC_CONFIG`, `OidcConfig::same_variable`), and a configuration with
//! the written-back text loads too. Written-back `API_KEYS` never holds a plaintext key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_auth::AuthConfig;
use tower_auth::fuzzing::{MethodRoles, method_roles};
use tower_auth_core::{Admins, ApiKeySet};
use tower_auth_oidc::OidcConfig;

const KEY: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const SECRET: &str = "Fz7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA-fuzzing";
const VARIABLES: [&str; 9] = [
    "API_KEYS",
    "AUTH_ADMINS",
    "AUTH_METHOD_ROLES",
    "AUTH_PUBLIC_PATHS",
    "OIDC_CONFIG",
    "AUTH_TOKEN_CLIENTS",
    "AUTH_FAILURE_LIMIT",
    "AUTH_TRUSTED_PROXIES",
    "AUTH_STRIP_HEADERS",
];

fn load(variable: &str, value: &str) -> Result<AuthConfig, tower_auth_core::ConfigError> {
    AuthConfig::from_lookup("", |name: &str| match name {
        n if n == variable => Some(value.to_owned()),
        "API_KEYS" => Some(KEY.to_owned()),
        "HMAC_SECRET" => Some(SECRET.to_owned()),
        _ => None,
    })
}

/// `AUTH_ADMINS` read as the variable is documented: a JSON array of strings, or a comma
/// list whose entries are trimmed and empty ones dropped.
fn admins(value: &str) -> Option<Admins> {
    let value = value.trim();
    let entries: Vec<String> = if value.starts_with('[') {
        serde_json::from_str(value).ok()?
    } else {
        value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    Admins::parse("AUTH_ADMINS", entries).ok()
}

/// `API_KEYS` read as the configuration reads it (no `AUTH_ADMINS` is set here).
fn api_keys(value: &str) -> Option<ApiKeySet> {
    ApiKeySet::parse("API_KEYS", value, &Admins::default()).ok()
}

fn oidc(value: &str) -> Option<OidcConfig> {
    OidcConfig::from_json("OIDC_CONFIG", value).ok()
}

fn roles(value: &str) -> Option<MethodRoles> {
    method_roles(value).ok()
}

/// The written-back text of a value that loads: it reads back equal, and loads.
fn round_trip(variable: &str, value: &str) {
    let text = match variable {
        "API_KEYS" => {
            let parsed = api_keys(value).expect("API_KEYS loads but is not a key set");
            let text = parsed.to_variable(&Admins::default());
            assert_eq!(
                api_keys(&text).as_ref(),
                Some(&parsed),
                "written back, read back another key set"
            );
            // Keys are written as digests, never as given (SECURITY.md Y3). Every `key` is
            // `sha256:` and 64 hex characters (a plaintext key may well be a substring of
            // another key's digest, so looking for it in the text would prove nothing).
            let written: Vec<serde_json::Value> =
                serde_json::from_str(&text).expect("written back as a JSON array");
            for entry in &written {
                let key = entry["key"].as_str().expect("every entry has a key");
                let digest = key.strip_prefix("sha256:").expect("a key written as a digest");
                assert!(
                    digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
                    "a key written back that is not a digest"
                );
            }
            text
        }
        "OIDC_CONFIG" => {
            let parsed = oidc(value).expect("OIDC_CONFIG loads but does not parse");
            let text = parsed
                .to_variable()
                .expect("a configuration read from OIDC_CONFIG can be written back");
            let again = oidc(&text).expect("written back, OIDC_CONFIG no longer parses");
            assert!(
                again.same_variable(&parsed),
                "written back, read back another configuration"
            );
            text
        }
        "AUTH_METHOD_ROLES" => {
            let parsed = roles(value).expect("AUTH_METHOD_ROLES loads but does not parse");
            let text = parsed.to_variable();
            assert_eq!(
                roles(&text).as_ref(),
                Some(&parsed),
                "written back, read back other rules"
            );
            text
        }
        _ => return,
    };
    assert!(
        load(variable, &text).is_ok(),
        "{variable}: written back, the configuration no longer loads"
    );
}

fuzz_target!(|input: (u8, String)| {
    let (which, value) = input;
    let variable = VARIABLES[usize::from(which) % VARIABLES.len()];
    let loaded = load(variable, &value);
    if variable == "AUTH_ADMINS" {
        let parsed = admins(&value);
        if loaded.is_ok() {
            let parsed = parsed.expect("AUTH_ADMINS loads but is not an admin list");
            let text = parsed.to_variable();
            assert_eq!(
                admins(&text).as_ref(),
                Some(&parsed),
                "written back, read back another list"
            );
            assert!(
                load(variable, &text).is_ok(),
                "written back, the configuration no longer loads"
            );
        }
    }
    if loaded.is_ok() {
        round_trip(variable, &value);
    }
    if let Err(error) = loaded {
        assert!(!error.variable().is_empty());
        // A key never comes back in the message (other variables' values, paths and rules,
        // may be quoted to say what is wrong with them).
        if variable == "API_KEYS" && value.trim().len() >= 12 {
            assert!(
                !error.to_string().contains(value.trim()),
                "{variable}: the error quotes the value"
            );
        }
    }
});
