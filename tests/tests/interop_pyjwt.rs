//! Interop with PyJWT: tokens minted by PyJWT with the shared secret are accepted by our
//! decoder and authenticator (and their tampered forms refused); tokens minted by
//! `HmacConfig::mint` decode in PyJWT with audience and issuer checks.
//!
//! Needs Python with PyJWT: `tests/interop/run` installs it in a venv and sets
//! `INTEROP_PYTHON`; by hand, `pip install pyjwt` and
//! `cargo test -p auth-tests --features interop --test interop_pyjwt`.
#![cfg(feature = "interop")]

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tower_auth_core::{Admins, Authenticator, Check, Credential, Outcome};
use tower_auth_hmac::{HmacAuthenticator, HmacConfig};

const SECRET: &str = "k7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA-interop";

/// Runs `script` in Python (`INTEROP_PYTHON`, which `tests/interop/run` points at its venv,
/// else `python3`) with `vars` in its environment (secrets never go on argv) and returns its
/// standard output; a Python failure fails the test with its stderr.
fn python(script: &str, vars: &[(&str, &str)]) -> String {
    let interpreter = std::env::var("INTEROP_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let output = Command::new(interpreter)
        .arg("-c")
        .arg(script)
        .envs(vars.iter().copied())
        .output()
        .expect("python3 must be installed for the interop tests");
    assert!(
        output.status.success(),
        "python3 failed (is PyJWT installed? `pip install pyjwt`):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// A token minted by PyJWT: `jwt.encode(claims, SECRET, algorithm, headers)`.
fn pyjwt_encode(claims: &Value, secret: &str, algorithm: &str, headers: &Value) -> String {
    python(
        "import json, os, jwt\n\
         print(jwt.encode(json.loads(os.environ['CLAIMS']), os.environ['SECRET'],\n\
               algorithm=os.environ['ALG'], headers=json.loads(os.environ['HEADERS']) or None))",
        &[
            ("CLAIMS", &claims.to_string()),
            ("SECRET", secret),
            ("ALG", algorithm),
            ("HEADERS", &headers.to_string()),
        ],
    )
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(extra: Value) -> Value {
    let now = now();
    let mut claims = json!({
        "sub": "ops",
        "roles": ["runtime.health:read", "runtime.metrics:read"],
        "iat": now,
        "exp": now + 600,
        "jti": "pyjwt-1",
        "iss": "auth-hmac",
        "aud": "metrics",
    });
    if let (Value::Object(base), Value::Object(extra)) = (&mut claims, extra) {
        base.extend(extra);
    }
    claims
}

fn outcome(auth: &HmacAuthenticator, token: &str) -> Outcome {
    match auth.authenticate(Credential::Bearer(token)) {
        Check::Ready(outcome) => outcome,
        Check::Pending(_) => panic!("HMAC tokens are decided at once"),
    }
}

#[test]
fn pyjwt_tokens_are_accepted() {
    let config = HmacConfig::builder(SECRET)
        .audience("metrics")
        .build()
        .unwrap();
    let auth = HmacAuthenticator::new(config.clone(), Admins::default());

    let token = pyjwt_encode(&claims(json!({})), SECRET, "HS256", &json!({}));
    let decoded = config.decode(&token).unwrap();
    assert_eq!(decoded.sub, "ops");
    assert_eq!(
        decoded.roles,
        ["runtime.health:read", "runtime.metrics:read"]
    );
    assert_eq!(decoded.jti.as_deref(), Some("pyjwt-1"));
    let Outcome::Authenticated(identity) = outcome(&auth, &token) else {
        panic!("a PyJWT token with our secret and issuer is accepted");
    };
    assert!(identity.has_role("runtime.metrics:read"));

    // An audience array containing ours, and a kid header, are fine too.
    let token = pyjwt_encode(
        &claims(json!({"aud": ["billing", "metrics"]})),
        SECRET,
        "HS256",
        &json!({"kid": "k1"}),
    );
    assert!(matches!(outcome(&auth, &token), Outcome::Authenticated(_)));
}

#[test]
fn tampered_and_disallowed_pyjwt_tokens_are_rejected() {
    let auth = HmacAuthenticator::new(
        HmacConfig::builder(SECRET)
            .audience("metrics")
            .build()
            .unwrap(),
        Admins::default(),
    );
    let reject = |token: &str, reason: &str| match outcome(&auth, token) {
        Outcome::Rejected(e) => assert_eq!(e.reason(), reason),
        other => panic!("expected {reason}, got {other:?}"),
    };

    // The right secret, the wrong algorithm.
    reject(
        &pyjwt_encode(&claims(json!({})), SECRET, "HS384", &json!({})),
        "alg_not_hs256",
    );
    reject(
        &pyjwt_encode(&claims(json!({})), SECRET, "HS512", &json!({})),
        "alg_not_hs256",
    );
    // Another secret.
    reject(
        &pyjwt_encode(
            &claims(json!({})),
            "Zr8vN2qL5xT9wK3mP7cF4hJ6sD1gB0yQ-other",
            "HS256",
            &json!({}),
        ),
        "bad_signature",
    );
    // A critical header extension we do not understand.
    reject(
        &pyjwt_encode(
            &claims(json!({})),
            SECRET,
            "HS256",
            &json!({"crit": ["exp"]}),
        ),
        "crit_header",
    );
    // Expired long ago, the wrong audience, roles that are not strings.
    let now = now();
    reject(
        &pyjwt_encode(
            &claims(json!({"iat": now - 7200, "exp": now - 3600})),
            SECRET,
            "HS256",
            &json!({}),
        ),
        "token_expired",
    );
    reject(
        &pyjwt_encode(
            &claims(json!({"aud": "billing"})),
            SECRET,
            "HS256",
            &json!({}),
        ),
        "wrong_audience",
    );
    reject(
        &pyjwt_encode(
            &claims(json!({"roles": "admin"})),
            SECRET,
            "HS256",
            &json!({}),
        ),
        "bad_roles",
    );
    // The payload swapped for an escalated one under the original signature.
    let token = pyjwt_encode(&claims(json!({})), SECRET, "HS256", &json!({}));
    let forged_payload = pyjwt_encode(
        &claims(json!({"roles": ["admin"]})),
        SECRET,
        "HS256",
        &json!({}),
    );
    let parts: Vec<&str> = token.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        forged_payload.split('.').nth(1).unwrap(),
        parts[2]
    );
    reject(&forged, "bad_signature");
    // alg none from PyJWT (unsigned).
    let unsigned = pyjwt_encode(&claims(json!({})), "", "none", &json!({}));
    reject(&unsigned, "alg_not_hs256");

    // A PyJWT token of another issuer is not ours at all.
    let foreign = pyjwt_encode(
        &claims(json!({"iss": "https://idp.example.com"})),
        SECRET,
        "HS256",
        &json!({}),
    );
    assert!(matches!(outcome(&auth, &foreign), Outcome::NotMine));
}

#[test]
fn our_tokens_decode_in_pyjwt() {
    let token = HmacConfig::builder(SECRET)
        .build()
        .unwrap()
        .mint(
            "ops",
            ["runtime.health:read", "runtime.metrics:read"],
            Duration::from_secs(3600),
            Some("metrics"),
        )
        .unwrap();
    let decode = "import json, os, jwt\n\
        claims = jwt.decode(os.environ['TOKEN'], os.environ['SECRET'], algorithms=['HS256'],\n\
            audience=os.environ['AUD'], issuer='auth-hmac',\n\
            options={'require': ['exp', 'iat', 'sub', 'jti', 'iss', 'aud']})\n\
        print(json.dumps({'claims': claims, 'header': jwt.get_unverified_header(os.environ['TOKEN'])}))";
    let out: Value = serde_json::from_str(&python(
        decode,
        &[("TOKEN", &token), ("SECRET", SECRET), ("AUD", "metrics")],
    ))
    .unwrap();
    let claims = &out["claims"];
    assert_eq!(out["header"], json!({"alg": "HS256", "typ": "JWT"}));
    assert_eq!(claims["sub"], "ops");
    assert_eq!(
        claims["roles"],
        json!(["runtime.health:read", "runtime.metrics:read"])
    );
    assert_eq!(claims["iss"], "auth-hmac");
    assert_eq!(claims["aud"], "metrics");
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        3600
    );

    // PyJWT's own checks hold against our tokens: wrong audience and wrong secret fail.
    let check_fails = r#"
import os, jwt
try:
    jwt.decode(os.environ['TOKEN'], os.environ['SECRET'], algorithms=['HS256'], audience=os.environ['AUD'])
    print('accepted')
except jwt.InvalidTokenError as e:
    print(type(e).__name__)
"#;
    assert_eq!(
        python(
            check_fails,
            &[("TOKEN", &token), ("SECRET", SECRET), ("AUD", "billing")]
        ),
        "InvalidAudienceError"
    );
    assert_eq!(
        python(
            check_fails,
            &[
                ("TOKEN", &token),
                ("SECRET", "Zr8vN2qL5xT9wK3mP7cF4hJ6sD1gB0yQ-other"),
                ("AUD", "metrics")
            ]
        ),
        "InvalidSignatureError"
    );
}
