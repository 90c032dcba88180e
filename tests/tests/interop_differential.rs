//! Differential test against PyJWT: random mutations of valid RS256, ES256 and EdDSA tokens
//! (bit flips in any segment, segment swaps, header edits, truncations) are judged by our OIDC
//! validator and by PyJWT with the same keys, issuer and audience. No token may be accepted
//! by us and refused by PyJWT.
//!
//! Needs Python with PyJWT and `cryptography`: `tests/interop/run` installs them in a venv and
//! sets `INTEROP_PYTHON`.
#![cfg(feature = "interop")]

use std::io::Write;
use std::process::{Command, Stdio};

use auth_tests::idp::{AUDIENCE, SigningKey, TestIdp, b64, unb64};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};
use tower_auth::Clock;
use tower_auth_core::{Admins, Authenticator, Check, Credential, Outcome};
use tower_auth_oidc::{IssuerConfig, OidcAuthenticator, OidcConfig};

/// Tokens judged: mutations per key.
const PER_KEY: usize = 400;

/// One way of changing a token.
#[derive(Clone, Debug)]
enum Mutation {
    /// Flip bit `bit` of byte `at` of decoded segment `segment`.
    FlipBit { segment: usize, at: usize, bit: u8 },
    /// Swap two segments.
    Swap(usize, usize),
    /// Set a header member to a value.
    Header(&'static str, Value),
    /// Drop a header member.
    DropHeader(&'static str),
    /// Cut the signature to `keep` bytes.
    Truncate { keep: usize },
    /// Leave it as it is (the control: both must accept).
    None,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (0usize..3, any::<usize>(), 0u8..8)
            .prop_map(|(segment, at, bit)| Mutation::FlipBit { segment, at, bit }),
        1 => prop_oneof![Just((0usize, 1usize)), Just((1, 2)), Just((0, 2))]
            .prop_map(|(a, b)| Mutation::Swap(a, b)),
        2 => prop_oneof![
            Just(Mutation::Header("alg", json!("none"))),
            Just(Mutation::Header("alg", json!("HS256"))),
            Just(Mutation::Header("alg", json!("RS256"))),
            Just(Mutation::Header("alg", json!("ES256"))),
            Just(Mutation::Header("alg", json!("EdDSA"))),
            Just(Mutation::Header("alg", json!("PS256"))),
            Just(Mutation::Header("kid", json!("other"))),
            Just(Mutation::Header("kid", json!(7))),
            Just(Mutation::Header("crit", json!(["exp"]))),
            Just(Mutation::Header("typ", json!("at+jwt"))),
            Just(Mutation::Header("b64", json!(false))),
            Just(Mutation::DropHeader("alg")),
            Just(Mutation::DropHeader("kid")),
        ],
        1 => (0usize..80).prop_map(|keep| Mutation::Truncate { keep }),
        1 => Just(Mutation::None),
    ]
}

fn apply(token: &str, mutation: &Mutation) -> String {
    let mut segments: Vec<String> = token.split('.').map(str::to_owned).collect();
    match mutation {
        Mutation::FlipBit { segment, at, bit } => {
            let mut bytes = unb64(&segments[*segment]);
            if !bytes.is_empty() {
                let at = at % bytes.len();
                bytes[at] ^= 1 << bit;
            }
            segments[*segment] = b64(bytes);
        }
        Mutation::Swap(a, b) => segments.swap(*a, *b),
        Mutation::Header(name, value) => {
            let mut header: Value = serde_json::from_slice(&unb64(&segments[0])).unwrap();
            header[*name] = value.clone();
            segments[0] = b64(header.to_string());
        }
        Mutation::DropHeader(name) => {
            let mut header: Value = serde_json::from_slice(&unb64(&segments[0])).unwrap();
            header.as_object_mut().unwrap().remove(*name);
            segments[0] = b64(header.to_string());
        }
        Mutation::Truncate { keep } => {
            let bytes = unb64(&segments[2]);
            segments[2] = b64(&bytes[..(*keep).min(bytes.len())]);
        }
        Mutation::None => {}
    }
    segments.join(".")
}

/// PyJWT's verdict on each token: decoded with the key its `kid` names in the JWKS, the
/// key's own algorithm only, the same issuer and audience, 60 s leeway.
fn pyjwt_verdicts(jwks: &Value, issuer: &str, tokens: &[String]) -> Vec<bool> {
    let script = r#"
import json, os, sys
import jwt
jwks = jwt.PyJWKSet.from_dict(json.loads(os.environ["JWKS"]))
keys = {k.key_id: k for k in jwks.keys}
out = []
for line in sys.stdin:
    token = line.strip()
    try:
        header = jwt.get_unverified_header(token)
        key = keys[header["kid"]]
        jwt.decode(token, key=key.key, algorithms=[key.algorithm_name],
                   audience=os.environ["AUD"], issuer=os.environ["ISS"], leeway=60,
                   options={"require": ["exp", "iss", "aud"]})
        out.append(True)
    except Exception:
        out.append(False)
print(json.dumps(out))
"#;
    let interpreter = std::env::var("INTEROP_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let mut child = Command::new(interpreter)
        .arg("-c")
        .arg(script)
        .env("JWKS", jwks.to_string())
        .env("AUD", AUDIENCE)
        .env("ISS", issuer)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 must be installed for the interop tests");
    {
        let mut stdin = child.stdin.take().unwrap();
        for token in tokens {
            writeln!(stdin, "{token}").unwrap();
        }
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "PyJWT failed (pip install pyjwt cryptography):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn no_token_we_accept_is_refused_by_pyjwt() {
    let keys = [
        SigningKey::rsa("rsa-1", 0),
        SigningKey::ec("ec-1"),
        SigningKey::ed25519("ed-1"),
    ];
    let idp = TestIdp::start(&keys.iter().collect::<Vec<_>>()).await;
    let config = OidcConfig::builder()
        .issuer(IssuerConfig::new(idp.issuer(), AUDIENCE).algorithms(["RS256", "ES256", "EdDSA"]))
        .build()
        .unwrap();
    let auth = OidcAuthenticator::start(config, Admins::default())
        .await
        .unwrap();
    let now = Clock::system().now_unix();
    let mut runner = TestRunner::deterministic();
    let strategy = mutation();
    let mut tokens = Vec::new();
    for key in &keys {
        let token = idp.token_with(key, |claims| {
            claims["iat"] = json!(now);
            claims["exp"] = json!(now + 600);
        });
        for _ in 0..PER_KEY {
            let mutation = strategy.new_tree(&mut runner).unwrap().current();
            tokens.push((apply(&token, &mutation), mutation));
        }
    }
    let mut ours = Vec::new();
    for (token, _) in &tokens {
        let outcome = match auth.authenticate(Credential::Bearer(token)) {
            Check::Ready(outcome) => outcome,
            Check::Pending(pending) => pending.await,
        };
        ours.push(matches!(outcome, Outcome::Authenticated(_)));
    }
    let jwks = json!({"keys": keys.iter().map(|k| k.jwk().clone()).collect::<Vec<_>>()});
    let theirs = pyjwt_verdicts(
        &jwks,
        idp.issuer(),
        &tokens.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>(),
    );
    assert_eq!(ours.len(), theirs.len());
    let accepted_by_us_only: Vec<_> = tokens
        .iter()
        .zip(ours.iter().zip(&theirs))
        .filter(|(_, (ours, theirs))| **ours && !**theirs)
        .map(|((_, mutation), _)| mutation)
        .collect();
    assert!(
        accepted_by_us_only.is_empty(),
        "accepted by us, refused by PyJWT: {accepted_by_us_only:?}"
    );
    // Both sides accepted the unaltered controls: the comparison is not vacuous.
    let both = ours.iter().zip(&theirs).filter(|(a, b)| **a && **b).count();
    let controls = tokens
        .iter()
        .filter(|(_, m)| matches!(m, Mutation::None))
        .count();
    assert!(
        both >= controls && controls > 0,
        "{both} accepted by both, {controls} controls"
    );
    println!(
        "{} tokens: {} accepted by both, {} by PyJWT only, {} by neither",
        tokens.len(),
        both,
        ours.iter()
            .zip(&theirs)
            .filter(|(a, b)| !**a && **b)
            .count(),
        ours.iter()
            .zip(&theirs)
            .filter(|(a, b)| !**a && !**b)
            .count()
    );
}
