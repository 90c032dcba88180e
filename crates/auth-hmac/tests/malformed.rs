//! SECURITY.md's malformed forms, fed to both token validators: the HMAC role-token
//! authenticator and the OIDC authenticator read tokens through the same
//! `tower_auth_core::jose` rules, so every form gets the same verdict from both. A form is
//! built once per validator, naming that validator's issuer (and carrying its algorithm and,
//! for HMAC, a valid MAC, so that a later check cannot mask an earlier one).
//!
//! A verdict is 401 `invalid_token` from the owner (`Refused`, with its log reason), or
//! `NotMine` from both, which the chain answers with 401 `invalid_token` too: a payload that
//! cannot be read names no issuer, so nobody can own it.

mod common;

use std::time::Duration;

use common::{SECRET, Sha, b64, sign_input};
use serde_json::{Value, json};
use tower_auth_core::{
    Admins, AuthErrorKind, Authenticator, Check, Clock, Credential, MAX_CREDENTIAL_LEN, Outcome,
};
use tower_auth_hmac::{HmacAuthenticator, HmacConfig};
use tower_auth_oidc::OidcAuthenticator;
use tower_auth_oidc::dev_issuer::DevIssuer;

const AUDIENCE: &str = "api";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Accepted,
    NotMine,
    Refused(&'static str),
}

async fn verdict(auth: &impl Authenticator, token: &str) -> Verdict {
    let outcome = match auth.authenticate(Credential::Bearer(token)) {
        Check::Ready(outcome) => outcome,
        Check::Pending(pending) => pending.await,
    };
    match outcome {
        Outcome::Authenticated(_) => Verdict::Accepted,
        Outcome::NotMine => Verdict::NotMine,
        Outcome::Rejected(e) => {
            assert_eq!(e.kind(), AuthErrorKind::InvalidToken, "{e:?}");
            assert_eq!(e.http_status().as_u16(), 401, "{e:?}");
            Verdict::Refused(e.reason())
        }
    }
}

/// How one validator's tokens are made: its issuer, its header, its signature.
struct Side<'a> {
    iss: &'a str,
    header: Value,
    sign: &'a dyn Fn(&str) -> String,
    now: u64,
}

impl Side<'_> {
    fn claims(&self) -> Value {
        json!({"sub": "u1", "iss": self.iss, "aud": AUDIENCE, "iat": self.now, "exp": self.now + 3600})
    }

    fn raw(&self, header: &str, payload: &str) -> String {
        (self.sign)(&format!("{header}.{payload}"))
    }

    fn json(&self, header: &str, payload: &str) -> String {
        self.raw(&b64(header.as_bytes()), &b64(payload.as_bytes()))
    }

    fn token(&self, header: &Value, claims: &Value) -> String {
        self.json(&header.to_string(), &claims.to_string())
    }

    fn with_header(&self, change: impl FnOnce(&mut Value)) -> String {
        let mut header = self.header.clone();
        change(&mut header);
        self.token(&header, &self.claims())
    }

    fn with_claims(&self, change: impl FnOnce(&mut Value)) -> String {
        let mut claims = self.claims();
        change(&mut claims);
        self.token(&self.header, &claims)
    }

    /// The claims' JSON with `extra` appended as last members (after `iss`).
    fn claims_then(&self, extra: &[u8]) -> Vec<u8> {
        let claims = self.claims().to_string();
        [&claims.as_bytes()[..claims.len() - 1], b",", extra, b"}"].concat()
    }

    fn good(&self) -> String {
        self.token(&self.header, &self.claims())
    }

    fn segments(&self) -> [String; 3] {
        let good = self.good();
        let parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        parts.try_into().unwrap()
    }
}

type Form = fn(&Side<'_>) -> String;

fn set(key: &'static str, value: Value) -> impl FnOnce(&mut Value) {
    move |object| {
        object[key] = value;
    }
}

fn remove(key: &'static str) -> impl FnOnce(&mut Value) {
    move |object| {
        object.as_object_mut().unwrap().remove(key);
    }
}

/// Every malformed form, with the one verdict both validators must give.
fn shared_forms() -> Vec<(&'static str, Form, Verdict)> {
    use Verdict::{NotMine, Refused};
    vec![
        // Token structure.
        (
            "two segments",
            |s| {
                let [h, p, _] = s.segments();
                format!("{h}.{p}")
            },
            Refused("not_three_segments"),
        ),
        (
            "four segments",
            |s| {
                let g = s.good();
                let sig = s.segments()[2].clone();
                format!("{g}.{sig}")
            },
            Refused("not_three_segments"),
        ),
        (
            "five segments",
            |s| {
                let g = s.good();
                format!("{g}.a.b")
            },
            Refused("not_three_segments"),
        ),
        (
            "a trailing dot",
            |s| format!("{}.", s.good()),
            Refused("not_three_segments"),
        ),
        (
            "a JWE",
            |_| "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d".to_owned(),
            NotMine,
        ),
        (
            "padding in the header",
            |s| {
                let [h, p, sig] = s.segments();
                format!("{h}=.{p}.{sig}")
            },
            Refused("bad_base64url"),
        ),
        (
            "padding in the payload",
            |s| {
                let [h, p, _] = s.segments();
                s.raw(&h, &format!("{p}=="))
            },
            NotMine,
        ),
        (
            "padding in the signature",
            |s| format!("{}=", s.good()),
            Refused("bad_base64url"),
        ),
        (
            "'+' in the signature",
            |s| {
                let [h, p, sig] = s.segments();
                format!("{h}.{p}.+{}", &sig[1..])
            },
            Refused("bad_base64url"),
        ),
        (
            "'/' in the header",
            |s| {
                let [h, p, sig] = s.segments();
                format!("{h}/.{p}.{sig}")
            },
            Refused("bad_base64url"),
        ),
        (
            "a standard-alphabet payload",
            |s| {
                let [h, _, _] = s.segments();
                // A leading 0xfb byte forces a '+' in the standard alphabet.
                let mut bytes = vec![0xfb];
                bytes.extend_from_slice(s.claims().to_string().as_bytes());
                let standard = b64(&bytes).replace('-', "+").replace('_', "/");
                s.raw(&h, &standard)
            },
            NotMine,
        ),
        (
            "a whitespace-padded payload segment",
            |s| {
                let [h, p, sig] = s.segments();
                format!("{h}. {p}.{sig}")
            },
            NotMine,
        ),
        // Header or payload not a JSON object, not UTF-8, too deep, duplicate names.
        (
            "a header array",
            |s| s.json("[\"HS256\"]", &s.claims().to_string()),
            Refused("malformed_header"),
        ),
        (
            "a header string",
            |s| s.json("\"HS256\"", &s.claims().to_string()),
            Refused("malformed_header"),
        ),
        (
            "a header not UTF-8",
            |s| {
                let header = s.header.to_string();
                let bytes = [&header.as_bytes()[..header.len() - 1], b",\"x\":\"\xff\"}"].concat();
                s.raw(&b64(&bytes), &b64(s.claims().to_string().as_bytes()))
            },
            Refused("malformed_header"),
        ),
        (
            "a duplicate alg",
            |s| {
                let header = s.header.to_string();
                s.json(
                    &format!("{{\"alg\":\"none\",{}", &header[1..]),
                    &s.claims().to_string(),
                )
            },
            Refused("malformed_header"),
        ),
        (
            "a deeply nested header",
            |s| {
                let header = s.header.to_string();
                let deep = format!(
                    "{{\"n\":{}1{},{}",
                    "[".repeat(40),
                    "]".repeat(40),
                    &header[1..]
                );
                s.json(&deep, &s.claims().to_string())
            },
            Refused("malformed_header"),
        ),
        (
            "a payload array",
            |s| s.json(&s.header.to_string(), &json!([s.claims()]).to_string()),
            NotMine,
        ),
        (
            "a payload not JSON",
            |s| s.json(&s.header.to_string(), "iss=me"),
            NotMine,
        ),
        (
            "a payload without iss",
            |s| s.with_claims(remove("iss")),
            NotMine,
        ),
        (
            "a payload whose iss is not a string",
            |s| s.with_claims(set("iss", json!([s.iss]))),
            NotMine,
        ),
        (
            "a payload not UTF-8 after iss",
            |s| {
                let header = b64(s.header.to_string().as_bytes());
                s.raw(&header, &b64(&s.claims_then(b"\"n\":\"\xc3\x28\"")))
            },
            Refused("malformed_payload"),
        ),
        (
            "a duplicate iss",
            |s| {
                let header = b64(s.header.to_string().as_bytes());
                s.raw(
                    &header,
                    &b64(&s.claims_then(format!("\"iss\":\"{}\"", s.iss).as_bytes())),
                )
            },
            Refused("malformed_payload"),
        ),
        (
            "a duplicate exp",
            |s| {
                let header = b64(s.header.to_string().as_bytes());
                s.raw(&header, &b64(&s.claims_then(b"\"exp\":99999999999")))
            },
            Refused("malformed_payload"),
        ),
        (
            "a duplicate name spelled with an escape",
            |s| {
                let header = b64(s.header.to_string().as_bytes());
                s.raw(&header, &b64(&s.claims_then(b"\"\\u0073ub\":\"root\"")))
            },
            Refused("malformed_payload"),
        ),
        (
            "a deeply nested payload",
            |s| {
                let header = b64(s.header.to_string().as_bytes());
                let deep = format!("\"n\":{}1{}", "[".repeat(40), "]".repeat(40));
                s.raw(&header, &b64(&s.claims_then(deep.as_bytes())))
            },
            Refused("malformed_payload"),
        ),
        (
            "data after the payload",
            |s| {
                let header = b64(s.header.to_string().as_bytes());
                s.raw(&header, &b64(format!("{} {{}}", s.claims()).as_bytes()))
            },
            Refused("malformed_payload"),
        ),
        (
            "over 8 KiB",
            |s| s.with_claims(set("pad", json!("x".repeat(MAX_CREDENTIAL_LEN)))),
            Refused("credential_too_large"),
        ),
        // Header parameters.
        (
            "no alg",
            |s| s.with_header(remove("alg")),
            Refused("missing_alg"),
        ),
        (
            "a null alg",
            |s| s.with_header(set("alg", Value::Null)),
            Refused("missing_alg"),
        ),
        (
            "crit with an extension",
            |s| s.with_header(set("crit", json!(["exp"]))),
            Refused("crit_header"),
        ),
        (
            "an empty crit",
            |s| s.with_header(set("crit", json!([]))),
            Refused("crit_header"),
        ),
        (
            "b64 false",
            |s| s.with_header(set("b64", json!(false))),
            Refused("b64_header"),
        ),
        (
            "a kid that is not a string",
            |s| s.with_header(set("kid", json!(7))),
            Refused("bad_kid"),
        ),
        (
            "a null kid",
            |s| s.with_header(set("kid", Value::Null)),
            Refused("bad_kid"),
        ),
        (
            "a kid over 256 bytes",
            |s| s.with_header(set("kid", json!("k".repeat(257)))),
            Refused("bad_kid"),
        ),
        (
            "a typ that is not a string",
            |s| s.with_header(set("typ", json!(1))),
            Refused("bad_typ"),
        ),
        (
            "an empty signature",
            |s| {
                let [h, p, _] = s.segments();
                format!("{h}.{p}.")
            },
            Refused("empty_signature"),
        ),
        (
            "a signature that does not verify",
            |s| {
                let [h, p, _] = s.segments();
                format!("{h}.{p}.{}", b64(&[9; 64]))
            },
            Refused("bad_signature"),
        ),
        // Claims.
        (
            "no exp",
            |s| s.with_claims(remove("exp")),
            Refused("missing_exp"),
        ),
        (
            "exp as a string",
            |s| s.with_claims(set("exp", json!((s.now + 3600).to_string()))),
            Refused("bad_exp"),
        ),
        (
            "exp null",
            |s| s.with_claims(set("exp", Value::Null)),
            Refused("bad_exp"),
        ),
        (
            "exp 1e300",
            |s| s.with_claims(set("exp", json!(1e300))),
            Refused("bad_exp"),
        ),
        (
            "exp negative",
            |s| s.with_claims(set("exp", json!(-1))),
            Refused("bad_exp"),
        ),
        (
            "exp after the year 9999",
            |s| s.with_claims(set("exp", json!(253_402_300_800_u64))),
            Refused("bad_exp"),
        ),
        (
            "nbf as a string",
            |s| s.with_claims(set("nbf", json!("0"))),
            Refused("bad_nbf"),
        ),
        (
            "nbf null",
            |s| s.with_claims(set("nbf", Value::Null)),
            Refused("bad_nbf"),
        ),
        (
            "nbf 1e300",
            |s| s.with_claims(set("nbf", json!(1e300))),
            Refused("bad_nbf"),
        ),
        (
            "nbf negative",
            |s| s.with_claims(set("nbf", json!(-1))),
            Refused("bad_nbf"),
        ),
        (
            "iat negative",
            |s| s.with_claims(set("iat", json!(-5))),
            Refused("bad_iat"),
        ),
        (
            "nbf beyond the leeway",
            |s| s.with_claims(set("nbf", json!(s.now + 61))),
            Refused("not_yet_valid"),
        ),
        // RFC 7519 section 2 allows non-integer NumericDates; the shared rule refuses them
        // (tower_auth_core::jose says why), whatever the value.
        (
            "exp with a fraction",
            |s| s.with_claims(set("exp", json!(s.now as f64 + 3600.5))),
            Refused("bad_exp"),
        ),
        (
            "exp written as a float",
            |s| s.with_claims(set("exp", json!(s.now as f64 + 3600.0))),
            Refused("bad_exp"),
        ),
        (
            "nbf with a fraction",
            |s| s.with_claims(set("nbf", json!(s.now as f64 - 0.5))),
            Refused("bad_nbf"),
        ),
        (
            "iat with a fraction",
            |s| s.with_claims(set("iat", json!(s.now as f64 + 0.5))),
            Refused("bad_iat"),
        ),
        (
            "iat beyond the leeway",
            |s| s.with_claims(set("iat", json!(s.now + 61))),
            Refused("issued_in_future"),
        ),
        (
            "an empty sub",
            |s| s.with_claims(set("sub", json!(""))),
            Refused("bad_subject"),
        ),
        (
            "no aud",
            |s| s.with_claims(remove("aud")),
            Refused("bad_aud"),
        ),
        (
            "aud null",
            |s| s.with_claims(set("aud", Value::Null)),
            Refused("bad_aud"),
        ),
        (
            "aud with a non-string item",
            |s| s.with_claims(set("aud", json!([AUDIENCE, 1]))),
            Refused("bad_aud"),
        ),
    ]
}

/// Forms where each validator's own policy speaks, with the names its log reasons have
/// always had; the verdict is still a refusal with `invalid_token` from both.
fn policy_forms() -> Vec<(&'static str, Form, Verdict, Verdict)> {
    use Verdict::Refused;
    vec![
        (
            "alg none",
            |s| s.with_header(set("alg", json!("nOnE"))),
            Refused("alg_not_hs256"),
            Refused("alg_none"),
        ),
        (
            "the other kind's algorithm",
            |s| {
                let alg = if s.header["alg"] == "HS256" {
                    "ES256"
                } else {
                    "HS256"
                };
                s.with_header(set("alg", json!(alg)))
            },
            Refused("alg_not_hs256"),
            Refused("hmac_alg_for_oidc_issuer"),
        ),
        (
            "exp past beyond the leeway",
            |s| s.with_claims(set("exp", json!(s.now - 61))),
            Refused("token_expired"),
            Refused("expired"),
        ),
        (
            "a foreign aud",
            |s| s.with_claims(set("aud", json!("other"))),
            Refused("wrong_audience"),
            Refused("aud_mismatch"),
        ),
        (
            "an empty aud array",
            |s| s.with_claims(set("aud", json!([]))),
            Refused("wrong_audience"),
            Refused("aud_mismatch"),
        ),
    ]
}

struct Validators {
    hmac: HmacAuthenticator,
    oidc: OidcAuthenticator,
    dev: DevIssuer,
    now: u64,
}

async fn validators() -> Validators {
    let dev = DevIssuer::start().await.unwrap();
    // The dev issuer mints with the system clock; both validators get a manual clock set
    // to the same second, so that nothing here depends on time passing.
    let now = Clock::system().now_unix();
    let clock = Clock::manual(now);
    let oidc = OidcAuthenticator::start(
        dev.config(AUDIENCE).clock(clock.clone()).build().unwrap(),
        Admins::default(),
    )
    .await
    .unwrap();
    let hmac = HmacAuthenticator::new(
        HmacConfig::builder(SECRET)
            .audience(AUDIENCE)
            .clock(clock)
            .build()
            .unwrap(),
        Admins::default(),
    );
    Validators {
        hmac,
        oidc,
        dev,
        now,
    }
}

fn hmac_sign(input: &str) -> String {
    sign_input(input, Sha::S256, SECRET)
}

/// A well-formed ES256 signature length that no key made.
fn foreign_sign(input: &str) -> String {
    format!("{input}.{}", b64(&[7; 64]))
}

impl Validators {
    fn hmac_side(&self) -> Side<'_> {
        Side {
            iss: tower_auth_hmac::DEFAULT_ISSUER,
            header: json!({"alg": "HS256", "typ": "JWT"}),
            sign: &hmac_sign,
            now: self.now,
        }
    }

    fn oidc_side(&self) -> Side<'_> {
        Side {
            iss: self.dev.issuer(),
            header: json!({"alg": "ES256", "typ": "JWT", "kid": "dev-es256"}),
            sign: &foreign_sign,
            now: self.now,
        }
    }
}

#[tokio::test]
async fn every_malformed_form_gets_the_same_verdict_from_both_validators() {
    let v = validators().await;
    let (hmac_side, oidc_side) = (v.hmac_side(), v.oidc_side());
    // The controls: each validator accepts its own well-formed token.
    assert_eq!(verdict(&v.hmac, &hmac_side.good()).await, Verdict::Accepted);
    let minted = v.dev.mint("u1", AUDIENCE, &[], Duration::from_secs(3600));
    assert_eq!(verdict(&v.oidc, &minted).await, Verdict::Accepted);

    let mut seen = 0;
    for (name, form, expected) in shared_forms() {
        let for_hmac = form(&hmac_side);
        let for_oidc = form(&oidc_side);
        let got = (
            verdict(&v.hmac, &for_hmac).await,
            verdict(&v.oidc, &for_oidc).await,
        );
        assert_eq!(got, (expected, expected), "{name}");
        // And each is nobody else's business: the other validator passes it on, except a
        // token too large to decode, which whoever sees it refuses.
        let elsewhere = match expected {
            Verdict::Refused("credential_too_large") => expected,
            _ => Verdict::NotMine,
        };
        assert_eq!(
            verdict(&v.oidc, &for_hmac).await,
            elsewhere,
            "{name}: to OIDC"
        );
        assert_eq!(
            verdict(&v.hmac, &for_oidc).await,
            elsewhere,
            "{name}: to HMAC"
        );
        seen += 1;
    }
    for (name, form, hmac_expected, oidc_expected) in policy_forms() {
        let got = (
            verdict(&v.hmac, &form(&hmac_side)).await,
            verdict(&v.oidc, &form(&oidc_side)).await,
        );
        assert_eq!(got, (hmac_expected, oidc_expected), "{name}");
        seen += 1;
    }
    assert!(seen > 60, "{seen} forms");
}
