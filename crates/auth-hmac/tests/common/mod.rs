//! Helpers shared by the integration tests: hand-made tokens and outcome checks.
#![allow(dead_code, unreachable_pub)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tower_auth_core::{AuthError, Authenticator, Check, Credential, Identity, Outcome};

pub const SECRET: &str = "k7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA-current";
pub const PREVIOUS: &str = "Zr8vN2qL5xT9wK3mP7cF4hJ6sD1gB0yQ-previous";
pub const NOW: u64 = 1_700_000_000;

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The HMAC hash functions of RFC 7518 section 3.2.
#[derive(Clone, Copy, Debug)]
pub enum Sha {
    S256,
    S384,
    S512,
}

/// A token with exactly this header and payload JSON, MAC'd with HMAC-SHA256 under `secret`.
pub fn sign_raw(header: &str, payload: &str, secret: &str) -> String {
    let signing_input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    sign_input(&signing_input, Sha::S256, secret)
}

/// `signing_input` followed by its MAC under HMAC-`sha`, computed with RustCrypto's `hmac`
/// whichever backend the library under test uses.
pub fn sign_input(signing_input: &str, sha: Sha, secret: &str) -> String {
    use hmac::{Hmac, Mac};
    fn tag<M: Mac + hmac::digest::KeyInit>(secret: &str, input: &str) -> Vec<u8> {
        let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(input.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
    let tag = match sha {
        Sha::S256 => tag::<Hmac<sha2::Sha256>>(secret, signing_input),
        Sha::S384 => tag::<Hmac<sha2::Sha384>>(secret, signing_input),
        Sha::S512 => tag::<Hmac<sha2::Sha512>>(secret, signing_input),
    };
    format!("{signing_input}.{}", b64(&tag))
}

pub const HS256: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// A payload of ours with these extra members spliced in (`"k":v,...` or empty).
pub fn payload(extra: &str) -> String {
    let sep = if extra.is_empty() { "" } else { "," };
    format!(
        r#"{{"sub":"ops","roles":["runtime.health:read"],"iat":{NOW},"exp":{},"jti":"j-1","iss":"auth-hmac"{sep}{extra}}}"#,
        NOW + 3600
    )
}

pub fn check(auth: &impl Authenticator, token: &str) -> Outcome {
    match auth.authenticate(Credential::Bearer(token)) {
        Check::Ready(outcome) => outcome,
        Check::Pending(_) => panic!("HMAC tokens are always decided at once"),
    }
}

pub fn accepted(auth: &impl Authenticator, token: &str) -> Identity {
    match check(auth, token) {
        Outcome::Authenticated(identity) => identity,
        other => panic!("expected acceptance, got {other:?}"),
    }
}

pub fn rejected(auth: &impl Authenticator, token: &str) -> AuthError {
    match check(auth, token) {
        Outcome::Rejected(error) => {
            assert_eq!(error.kind(), tower_auth_core::AuthErrorKind::InvalidToken);
            error
        }
        other => panic!("expected rejection, got {other:?}"),
    }
}

pub fn not_mine(auth: &impl Authenticator, token: &str) {
    match check(auth, token) {
        Outcome::NotMine => {}
        other => panic!("expected NotMine, got {other:?}"),
    }
}
