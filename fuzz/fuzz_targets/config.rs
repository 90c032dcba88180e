//! Configuration from the environment with one arbitrary value: `API_KEYS`, `AUTH_ADMINS`,
//! `AUTH_METHOD_ROLES`, `AUTH_PUBLIC_PATHS`, `OIDC_CONFIG`, `AUTH_TOKEN_CLIENTS`,
//! `AUTH_FAILURE_LIMIT`, `AUTH_TRUSTED_PROXIES`, `AUTH_STRIP_HEADERS`: never a panic, an
//! error always names a variable, and never quotes an API key given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_auth::AuthConfig;

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

fuzz_target!(|input: (u8, String)| {
    let (which, value) = input;
    let variable = VARIABLES[usize::from(which) % VARIABLES.len()];
    let get = |name: &str| match name {
        n if n == variable => Some(value.clone()),
        "API_KEYS" => Some(KEY.to_owned()),
        "HMAC_SECRET" => Some(SECRET.to_owned()),
        _ => None,
    };
    if let Err(error) = AuthConfig::from_lookup("", get) {
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
