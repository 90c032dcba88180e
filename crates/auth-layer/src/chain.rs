//! Trying authenticators in order.

use std::sync::Arc;

use tower_auth_core::{
    AuthError, Authenticator, Check, Credential, Identity, Outcome, OutcomeFuture,
};

/// Authenticators in the order they are tried.
#[derive(Clone, Default)]
pub(crate) struct Chain(Vec<Arc<dyn Authenticator>>);

/// Where a chain run stands.
pub(crate) enum Step {
    /// Decided.
    Done(Result<Identity, AuthError>),
    /// Authenticator `index` needs to wait; on `NotMine` the run resumes at `index + 1`.
    Waiting(OutcomeFuture, usize),
}

impl Chain {
    pub(crate) fn push(&mut self, authenticator: Arc<dyn Authenticator>) {
        self.0.push(authenticator);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `api_key,oidc`: the methods in order, for `/health` and logs.
    pub(crate) fn methods(&self) -> String {
        self.0
            .iter()
            .map(|a| a.method())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Runs the chain from authenticator `from`. The first `Authenticated` or `Rejected`
    /// decides: a present but invalid credential never falls through. A credential nobody
    /// claims is an invalid token.
    pub(crate) fn run(&self, credential: Credential<'_>, from: usize) -> Step {
        for (index, authenticator) in self.0.iter().enumerate().skip(from) {
            match authenticator.authenticate(credential) {
                Check::Ready(Outcome::NotMine) => continue,
                Check::Ready(outcome) => return Step::Done(settle(outcome)),
                Check::Pending(future) => return Step::Waiting(future, index),
            }
        }
        Step::Done(Err(AuthError::invalid_token("unclaimed_credential")))
    }
}

/// An `Authenticated` or `Rejected` outcome as a result (`NotMine` is the caller's to handle).
pub(crate) fn settle(outcome: Outcome) -> Result<Identity, AuthError> {
    match outcome {
        Outcome::Authenticated(identity) => Ok(identity),
        Outcome::Rejected(error) => Err(error),
        Outcome::NotMine => Err(AuthError::invalid_token("unclaimed_credential")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_auth_core::AuthMethod;

    /// Claims credentials starting with its prefix: `<prefix>ok` is valid, anything else is rejected.
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
                Outcome::Authenticated(
                    Identity::builder(
                        self.0,
                        AuthMethod::Hmac {
                            issuer: self.0.into(),
                        },
                    )
                    .build(),
                )
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

    fn chain() -> Chain {
        let mut c = Chain::default();
        c.push(Arc::new(Prefixed("a", false)));
        c.push(Arc::new(Prefixed("b", true)));
        c.push(Arc::new(Prefixed("c", false)));
        c
    }

    fn done(step: Step) -> Result<String, &'static str> {
        match step {
            Step::Done(r) => r.map(|i| i.subject().to_owned()).map_err(|e| e.reason()),
            Step::Waiting(..) => panic!("waiting"),
        }
    }

    #[test]
    fn first_claim_decides() {
        let c = chain();
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
        assert_eq!(done(chain().run(Credential::Bearer("abad"), 0)), Err("bad"));
    }

    #[test]
    fn pending_stops_the_run_and_resumes_after() {
        let c = chain();
        match c.run(Credential::Bearer("bok"), 0) {
            Step::Waiting(_, index) => assert_eq!(index, 1),
            Step::Done(_) => panic!("b waits"),
        }
        assert_eq!(done(c.run(Credential::Bearer("cok"), 2)), Ok("c".into()));
        assert_eq!(c.methods(), "a,b,c");
    }
}
