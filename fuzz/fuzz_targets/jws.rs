//! Compact JWS parsing and the claims checks on arbitrary text: never a panic; the routing
//! peek agrees with itself (`peek` and `peek_for` the issuer it found); a token without three
//! segments never passes the header rules; and the HMAC validator (which reads every token through the same
//! module) never accepts what the shared parser refuses.
//!
//! The HMAC and OIDC validators never disagree on structure. Both are given the same issuer
//! name; the OIDC side is judged up to the point where it needs a key
//! (`tower_auth_oidc::fuzzing::Judge`, the authenticator's own steps). Then:
//! - one routes a token to the issuer exactly when the other does;
//! - a token one refuses for its structure or shared header rules (size, segments,
//!   base64url, header JSON, `alg` missing, `crit`, `b64`, `kid`, `typ`) the other refuses
//!   for the same reason;
//! - a payload that is not a strict JSON object is refused as such by both, unless one
//!   refused the token earlier for its own `alg` rules;
//! - what HMAC accepts, OIDC refuses for its algorithm only, and what OIDC would take to
//!   its keys, HMAC refuses for its algorithm only.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use tower_auth_core::jose::{CompactJws, Peeked, TimeClaims, looks_like_jws};
use tower_auth_core::{Admins, Authenticator, Check, Clock, Credential, Outcome};
use tower_auth_hmac::{HmacAuthenticator, HmacConfig};
use tower_auth_oidc::fuzzing::{Judge, Structure};

const SECRET: &str = "Fz7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA-fuzzing";
const ISSUER: &str = "https://idp.example";
const NOW: u64 = 1_800_000_000;

/// Refusals for the token's structure and the header rules both validators share.
const STRUCTURE: [&str; 9] = [
    "credential_too_large",
    "not_three_segments",
    "bad_base64url",
    "malformed_header",
    "missing_alg",
    "crit_header",
    "b64_header",
    "bad_kid",
    "bad_typ",
];
/// Refusals for the header's `alg` or `typ` by the OIDC issuer's own policy, judged before
/// the payload.
const OIDC_HEADER_POLICY: [&str; 6] = [
    "alg_none",
    "unsupported_alg",
    "hmac_alg_for_oidc_issuer",
    "alg_not_allowed",
    "typ_mismatch",
    "empty_signature",
];

fn oidc() -> &'static Judge {
    static JUDGE: OnceLock<Judge> = OnceLock::new();
    JUDGE.get_or_init(|| Judge::new(ISSUER, "api").unwrap())
}

fn hmac() -> &'static HmacAuthenticator {
    static AUTH: OnceLock<HmacAuthenticator> = OnceLock::new();
    AUTH.get_or_init(|| {
        let config = HmacConfig::builder(SECRET)
            .issuer(ISSUER)
            .clock(Clock::manual(NOW))
            .build()
            .unwrap();
        HmacAuthenticator::new(config, Admins::default())
    })
}

fuzz_target!(|text: &str| {
    let peeked = CompactJws::peek(text);
    if let Peeked::Issuer(jws) = &peeked {
        // A token naming an issuer goes to that issuer even when broken, so that it is
        // refused there; but one without three segments never passes the header rules.
        if text.matches('.').count() != 2 {
            assert!(
                jws.header().is_err(),
                "a header accepted in what is not a JWS"
            );
        }
        let issuer = jws.issuer().to_owned();
        assert!(matches!(
            CompactJws::peek_for(text, &[issuer.as_str()]),
            Peeked::Issuer(_)
        ));
        let _ = jws.header().map(|h| (h.alg().len(), h.kid(), h.typ()));
        if let Ok(claims) = jws.claims() {
            if let Ok(times) = TimeClaims::read(&claims) {
                let _ = times.check(NOW, 60);
            }
        }
    }
    let hmac_verdict = match hmac().authenticate(Credential::Bearer(text)) {
        Check::Ready(Outcome::NotMine) => Structure::NotMine,
        Check::Ready(Outcome::Rejected(error)) => Structure::Refused(error.reason()),
        Check::Ready(Outcome::Authenticated(_)) => Structure::NeedsKey,
        Check::Pending(_) => panic!("the HMAC validator never waits"),
    };
    let oidc_verdict = oidc().judge(text, NOW);
    match (&hmac_verdict, &oidc_verdict) {
        (Structure::NotMine, Structure::NotMine) => {}
        (Structure::NotMine, _) | (_, Structure::NotMine) => {
            panic!("routed by one validator only: HMAC {hmac_verdict:?}, OIDC {oidc_verdict:?}")
        }
        (Structure::Refused(h), Structure::Refused(o))
            if STRUCTURE.contains(h) || STRUCTURE.contains(o) =>
        {
            assert_eq!(
                h, o,
                "refused for structure by one, for another reason by the other"
            );
        }
        (Structure::Refused(h), _) if STRUCTURE.contains(h) => {
            panic!("HMAC refuses the structure ({h}), OIDC does not: {oidc_verdict:?}")
        }
        (_, Structure::Refused(o)) if STRUCTURE.contains(o) => {
            panic!("OIDC refuses the structure ({o}), HMAC does not: {hmac_verdict:?}")
        }
        (Structure::Refused("malformed_payload"), o) => assert!(
            matches!(o, Structure::Refused(r) if *r == "malformed_payload" || OIDC_HEADER_POLICY.contains(r)),
            "HMAC refuses the payload, OIDC: {o:?}"
        ),
        (h, Structure::Refused("malformed_payload")) => assert!(
            matches!(h, Structure::Refused("alg_not_hs256")),
            "OIDC refuses the payload, HMAC: {h:?}"
        ),
        (Structure::NeedsKey, o) => assert_eq!(
            o,
            &Structure::Refused("hmac_alg_for_oidc_issuer"),
            "HMAC accepts, OIDC refuses for more than its algorithm"
        ),
        (h, Structure::NeedsKey) => assert_eq!(
            h,
            &Structure::Refused("alg_not_hs256"),
            "OIDC would check a key, HMAC refuses for more than its algorithm"
        ),
        _ => {}
    }
    if hmac_verdict == Structure::NeedsKey {
        let Peeked::Issuer(jws) = CompactJws::peek(text) else {
            panic!("accepted a token the shared parser does not read");
        };
        assert!(jws.header().is_ok() && jws.claims().is_ok());
        assert!(
            looks_like_jws(text),
            "accepted what does not have the JWS shape (the chain would route it elsewhere)"
        );
    }
});
