//! Compact JWS parsing and the claims checks on arbitrary text: never a panic; the routing
//! peek agrees with itself (`peek` and `peek_for` the issuer it found); a token without three
//! segments never passes the header rules; and the HMAC validator (which reads every token through the same
//! module) never accepts what the shared parser refuses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use tower_auth_core::jose::{CompactJws, Peeked, TimeClaims, looks_like_jws};
use tower_auth_core::{Admins, Authenticator, Check, Clock, Credential, Outcome};
use tower_auth_hmac::{HmacAuthenticator, HmacConfig};

const SECRET: &str = "Fz7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA-fuzzing";

fn hmac() -> &'static HmacAuthenticator {
    static AUTH: OnceLock<HmacAuthenticator> = OnceLock::new();
    AUTH.get_or_init(|| {
        let config = HmacConfig::builder(SECRET)
            .clock(Clock::manual(1_800_000_000))
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
                let _ = times.check(1_800_000_000, 60);
            }
        }
    }
    if let Check::Ready(Outcome::Authenticated(_)) = hmac().authenticate(Credential::Bearer(text)) {
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
