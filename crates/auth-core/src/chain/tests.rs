use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::AuthMethod;

fn identity(subject: &str) -> Identity {
    Identity::builder(
        subject,
        AuthMethod::Hmac {
            issuer: subject.into(),
        },
    )
    .build()
}

/// Claims credentials starting with its prefix: `<prefix>ok` is valid, anything else of
/// its prefix is rejected. Says nothing about its tokens ([`Routing::InOrder`]).
struct Prefixed(&'static str, bool);

impl Authenticator for Prefixed {
    fn method(&self) -> &'static str {
        self.0
    }

    fn authenticate(&self, credential: Credential<'_>) -> Check {
        let Some(rest) = credential.expose().strip_prefix(self.0) else {
            return Outcome::NotMine.into();
        };
        let outcome = if rest == "ok" {
            Outcome::Authenticated(identity(self.0))
        } else {
            Outcome::Rejected(AuthError::invalid_token("bad"))
        };
        if self.1 {
            Check::Pending(Box::pin(async move { outcome }))
        } else {
            outcome.into()
        }
    }
}

fn prefixed() -> Chain {
    let mut c = Chain::new();
    c.push(Arc::new(Prefixed("a", false)));
    c.push(Arc::new(Prefixed("b", true)));
    c.push(Arc::new(Prefixed("c", false)));
    c
}

fn done(step: ChainStep) -> Result<String, &'static str> {
    match step {
        ChainStep::Done(r) => r.map(|i| i.subject().to_owned()).map_err(|e| e.reason()),
        ChainStep::Waiting(..) => panic!("waiting"),
    }
}

#[test]
fn first_claim_decides() {
    let c = prefixed();
    assert_eq!(done(c.run(Credential::Bearer("aok"), 0)), Ok("a".into()));
    assert_eq!(done(c.run(Credential::Bearer("cok"), 0)), Ok("c".into()));
    assert_eq!(
        done(c.run(Credential::Bearer("zzz"), 0)),
        Err("unclaimed_credential")
    );
}

#[test]
fn rejected_never_falls_through() {
    // `abad` is a's and bad; `c` would never be asked even if it liked it.
    assert_eq!(
        done(prefixed().run(Credential::Bearer("abad"), 0)),
        Err("bad")
    );
}

#[test]
fn pending_stops_the_run_and_resumes_after() {
    let c = prefixed();
    match c.run(Credential::Bearer("bok"), 0) {
        ChainStep::Waiting(_, index) => assert_eq!(index, 1),
        ChainStep::Done(_) => panic!("b waits"),
    }
    assert_eq!(done(c.run(Credential::Bearer("cok"), 2)), Ok("c".into()));
    assert_eq!(c.methods(), "a,b,c");
}

const HEADER: &str = "eyJhbGciOiJIUzI1NiJ9";
/// `{"iss":"https://a.example","sub":"x"}`, and the same for b and c.
const PAYLOAD_A: &str = "eyJpc3MiOiJodHRwczovL2EuZXhhbXBsZSIsInN1YiI6IngifQ";
const PAYLOAD_B: &str = "eyJpc3MiOiJodHRwczovL2IuZXhhbXBsZSIsInN1YiI6IngifQ";
const PAYLOAD_C: &str = "eyJpc3MiOiJodHRwczovL2MuZXhhbXBsZSIsInN1YiI6IngifQ";

fn jwt(payload: &str) -> String {
    format!("{HEADER}.{payload}.c2ln")
}

/// A JWT validator for one issuer that counts how it is asked. It accepts any token
/// naming its issuer, and remembers (for `recall`) the tokens given to `remember`.
#[derive(Default)]
struct Counts {
    authenticate: AtomicUsize,
    recall: AtomicUsize,
    authenticate_jws: AtomicUsize,
}

struct Issuer {
    name: &'static str,
    issuer: &'static str,
    remembered: Option<String>,
    counts: Arc<Counts>,
}

impl Issuer {
    fn new(name: &'static str, issuer: &'static str) -> (Self, Arc<Counts>) {
        let counts = Arc::new(Counts::default());
        let me = Self {
            name,
            issuer,
            remembered: None,
            counts: Arc::clone(&counts),
        };
        (me, counts)
    }

    fn judge(&self, jws: &CompactJws<'_>) -> Outcome {
        if jws.issuer() == self.issuer {
            Outcome::Authenticated(identity(self.name))
        } else {
            Outcome::NotMine
        }
    }
}

impl Authenticator for Issuer {
    fn method(&self) -> &'static str {
        self.name
    }

    fn authenticate(&self, credential: Credential<'_>) -> Check {
        self.counts.authenticate.fetch_add(1, Ordering::Relaxed);
        match credential {
            Credential::Bearer(token) => match CompactJws::peek(token) {
                Peeked::Issuer(jws) => self.judge(&jws).into(),
                _ => Outcome::NotMine.into(),
            },
            Credential::ApiKey(_) => Outcome::NotMine.into(),
        }
    }

    fn routing(&self) -> Routing {
        Routing::Issuers(vec![self.issuer.into()])
    }

    fn recall(&self, token: &str) -> Option<Outcome> {
        self.counts.recall.fetch_add(1, Ordering::Relaxed);
        (self.remembered.as_deref() == Some(token))
            .then(|| Outcome::Authenticated(identity(&format!("{}-cached", self.name))))
    }

    fn authenticate_jws(&self, jws: &CompactJws<'_>) -> Check {
        self.counts.authenticate_jws.fetch_add(1, Ordering::Relaxed);
        self.judge(jws).into()
    }
}

/// Takes no JWT, as API keys do; knows one key.
struct Keys;

impl Authenticator for Keys {
    fn method(&self) -> &'static str {
        "keys"
    }

    fn authenticate(&self, credential: Credential<'_>) -> Check {
        match credential.expose() {
            "the-key" => Outcome::Authenticated(identity("keys")),
            _ => Outcome::NotMine,
        }
        .into()
    }

    fn routing(&self) -> Routing {
        Routing::NotJws
    }
}

fn asked(counts: &Counts) -> [usize; 3] {
    [
        counts.authenticate.load(Ordering::Relaxed),
        counts.recall.load(Ordering::Relaxed),
        counts.authenticate_jws.load(Ordering::Relaxed),
    ]
}

/// SECURITY.md K4.
#[test]
fn a_jwt_goes_to_its_owner_alone_in_any_order() {
    for a_first in [true, false] {
        let (a, a_counts) = Issuer::new("a", "https://a.example");
        let (b, b_counts) = Issuer::new("b", "https://b.example");
        let mut c = Chain::new();
        c.push(Arc::new(Keys));
        let (a, b): (Arc<dyn Authenticator>, Arc<dyn Authenticator>) = (Arc::new(a), Arc::new(b));
        if a_first {
            c.push(Arc::clone(&a));
            c.push(Arc::clone(&b));
        } else {
            c.push(Arc::clone(&b));
            c.push(Arc::clone(&a));
        }
        assert_eq!(
            done(c.run(Credential::Bearer(&jwt(PAYLOAD_B)), 0)),
            Ok("b".into())
        );
        assert_eq!(
            done(c.run(Credential::Bearer(&jwt(PAYLOAD_A)), 0)),
            Ok("a".into())
        );
        // Each cache asked twice, each owner handed its token once, nobody tried in turn.
        assert_eq!(asked(&a_counts), [0, 2, 1], "a_first {a_first}");
        assert_eq!(asked(&b_counts), [0, 2, 1], "a_first {a_first}");
        // An API key still goes to the keys, in order.
        assert_eq!(
            done(c.run(Credential::Bearer("the-key"), 0)),
            Ok("keys".into())
        );
    }
}

#[test]
fn a_chain_of_one_asks_its_authenticator_directly() {
    let (a, a_counts) = Issuer::new("a", "https://a.example");
    let mut c = Chain::new();
    c.push(Arc::new(a));
    assert_eq!(
        done(c.run(Credential::Bearer(&jwt(PAYLOAD_A)), 0)),
        Ok("a".into())
    );
    assert_eq!(asked(&a_counts), [1, 0, 0]);
}

#[test]
fn a_remembered_token_is_answered_before_it_is_read() {
    let (mut b, b_counts) = Issuer::new("b", "https://b.example");
    b.remembered = Some(jwt(PAYLOAD_B));
    let (a, a_counts) = Issuer::new("a", "https://a.example");
    let mut c = Chain::new();
    c.push(Arc::new(a));
    c.push(Arc::new(b));
    assert_eq!(
        done(c.run(Credential::Bearer(&jwt(PAYLOAD_B)), 0)),
        Ok("b-cached".into())
    );
    assert_eq!(asked(&a_counts), [0, 1, 0]);
    assert_eq!(asked(&b_counts), [0, 1, 0]);
}

#[test]
fn a_jwt_of_no_configured_issuer_is_nobodys() {
    let (a, a_counts) = Issuer::new("a", "https://a.example");
    let mut c = Chain::new();
    c.push(Arc::new(Keys));
    c.push(Arc::new(a));
    for token in [jwt(PAYLOAD_C), format!("{HEADER}.bm90LWpzb24.c2ln")] {
        assert_eq!(
            done(c.run(Credential::Bearer(&token), 0)),
            Err("unclaimed_credential")
        );
    }
    assert_eq!(asked(&a_counts), [0, 2, 0]);
}

#[test]
fn an_oversized_jwt_is_refused_before_it_is_read() {
    let (a, _) = Issuer::new("a", "https://a.example");
    let mut c = Chain::new();
    c.push(Arc::new(Keys));
    c.push(Arc::new(a));
    let huge = jwt(&"A".repeat(crate::MAX_CREDENTIAL_LEN));
    assert_eq!(
        done(c.run(Credential::Bearer(&huge), 0)),
        Err(AuthError::from(JoseError::TooLarge).reason())
    );
}

#[test]
fn one_authenticator_in_order_makes_the_chain_ask_in_order() {
    // `eyJ` is the prefix Prefixed claims: it takes (and rejects) every JWT before `a` is
    // asked, as its place in the chain says.
    let (a, a_counts) = Issuer::new("a", "https://a.example");
    let mut c = Chain::new();
    c.push(Arc::new(Prefixed("eyJ", false)));
    c.push(Arc::new(a));
    assert_eq!(
        done(c.run(Credential::Bearer(&jwt(PAYLOAD_A)), 0)),
        Err("bad")
    );
    assert_eq!(asked(&a_counts), [0, 0, 0]);

    let (a, a_counts) = Issuer::new("a", "https://a.example");
    let mut c = Chain::new();
    c.push(Arc::new(a));
    c.push(Arc::new(Prefixed("x", false)));
    assert_eq!(
        done(c.run(Credential::Bearer(&jwt(PAYLOAD_A)), 0)),
        Ok("a".into())
    );
    assert_eq!(asked(&a_counts), [1, 0, 0]);
}

#[test]
fn an_issuer_owned_twice_is_reported_and_asked_in_order() {
    let mut c = Chain::new();
    c.push(Arc::new(Issuer::new("a", "https://a.example").0));
    c.push(Arc::new(Issuer::new("b", "https://b.example").0));
    assert_eq!(c.shared_issuer(), None);
    // The second owner of a's issuer remembers a's token: routed, its cache would answer
    // before the first owner, which the ordered run asks first.
    let (mut second, second_counts) = Issuer::new("a2", "https://a.example");
    second.remembered = Some(jwt(PAYLOAD_A));
    c.push(Arc::new(second));
    assert_eq!(c.shared_issuer(), Some("https://a.example"));
    assert_eq!(
        done(c.run(Credential::Bearer(&jwt(PAYLOAD_A)), 0)),
        Ok("a".into())
    );
    assert_eq!(asked(&second_counts), [0, 0, 0]);
}

#[test]
fn a_chain_without_jwt_owners_reads_no_jwt() {
    let mut c = Chain::new();
    c.push(Arc::new(Keys));
    let huge = jwt(&"A".repeat(crate::MAX_CREDENTIAL_LEN));
    for token in [jwt(PAYLOAD_A), huge] {
        assert_eq!(
            done(c.run(Credential::Bearer(&token), 0)),
            Err("unclaimed_credential")
        );
    }
}
