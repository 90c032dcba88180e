//! [`Chain`]: authenticators in order, a bearer JWT routed to its one owner.

use std::fmt;
use std::sync::Arc;

use crate::jose::{CompactJws, JoseError, Peeked, looks_like_jws};
use crate::{
    AuthError, Authenticator, Check, Credential, Identity, Outcome, OutcomeFuture, Routing,
};

/// The authenticators of a layer, in the order they were added: what `tower-auth`'s
/// `AuthLayer` runs for each request, public for middleware of other protocols and for
/// benchmarks.
///
/// The first `Authenticated` or `Rejected` decides: a present but invalid credential never
/// falls through, and a credential nobody claims is refused as `invalid_token`.
///
/// When every authenticator says what it takes ([`Authenticator::routing`] is
/// [`Routing::Issuers`] or [`Routing::NotJws`], as for the API-key, HMAC and OIDC
/// authenticators), a bearer JWT is not tried in turn but routed by structure: the owners'
/// caches are asked first ([`Authenticator::recall`]), then the token is split and its `iss`
/// read once, and the one authenticator owning that issuer gets the token already read
/// ([`Authenticator::authenticate_jws`]). (A chain of one simply asks its authenticator.)
/// The answer is the one the ordered run would give,
/// and any order of the chain costs the same. A chain where two authenticators route by one
/// issuer ([`shared_issuer`](Self::shared_issuer), which `AuthLayerBuilder::build` refuses)
/// or where one authenticator is [`Routing::InOrder`] (a custom one that says nothing about
/// its tokens) asks every authenticator in order instead, as its order then matters.
#[derive(Clone, Default)]
pub struct Chain {
    authenticators: Vec<Arc<dyn Authenticator>>,
    /// Every issuer some authenticator routes by, in chain order.
    issuers: Vec<Arc<str>>,
    /// The authenticator owning `issuers[i]`.
    owners: Vec<usize>,
    /// The authenticators with issuers, in chain order: the ones whose cache is asked.
    routed: Vec<usize>,
    /// Whether some authenticator is [`Routing::InOrder`] (it may take any JWT) or two route
    /// by one issuer (the first would win a route, the first to answer an ordered run):
    /// then every credential is tried in order.
    in_order: bool,
}

/// Where a [`Chain::run`] stands: decided, or waiting. (Not `non_exhaustive`: a run has no
/// third state, and a wildcard arm in every caller would hide one if it ever had.)
pub enum ChainStep {
    /// Decided.
    Done(Result<Identity, AuthError>),
    /// Authenticator `index` needs to wait (an OIDC key fetch). Await the future: on
    /// `Authenticated` or `Rejected` that decides; on `NotMine` run the chain again from
    /// `index + 1`.
    Waiting(OutcomeFuture, usize),
}

impl Chain {
    /// An empty chain: it claims nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `authenticator` at the end, reading its [`Authenticator::routing`] once.
    pub fn push(&mut self, authenticator: Arc<dyn Authenticator>) {
        let index = self.authenticators.len();
        match authenticator.routing() {
            Routing::InOrder => self.in_order = true,
            Routing::NotJws => {}
            Routing::Issuers(issuers) => {
                self.routed.push(index);
                for issuer in issuers {
                    self.in_order |= self.issuers.contains(&issuer);
                    self.issuers.push(issuer);
                    self.owners.push(index);
                }
            }
        }
        self.authenticators.push(authenticator);
    }

    /// Whether the chain has no authenticator.
    pub fn is_empty(&self) -> bool {
        self.authenticators.is_empty()
    }

    /// `api_key,oidc`: the methods in order, for `/health` and logs.
    pub fn methods(&self) -> String {
        self.authenticators
            .iter()
            .map(|a| a.method())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// An issuer that two authenticators both route by, if any: a token of it would be
    /// owned twice, so a layer refuses to build with one.
    pub fn shared_issuer(&self) -> Option<&str> {
        self.issuers
            .iter()
            .enumerate()
            .find(|(i, issuer)| self.issuers[..*i].contains(issuer))
            .map(|(_, issuer)| &**issuer)
    }

    /// Runs the chain for a new credential (`from` 0), or resumes it after
    /// [`ChainStep::Waiting`] at `index + 1`: a resumed run asks the rest in order.
    pub fn run(&self, credential: Credential<'_>, from: usize) -> ChainStep {
        // A chain of one has nothing to route between: its one authenticator answers as
        // routing would, without the shape test.
        if from == 0
            && !self.in_order
            && self.authenticators.len() > 1
            && let Credential::Bearer(token) = credential
            && looks_like_jws(token)
        {
            return self.route(token);
        }
        for (index, authenticator) in self.authenticators.iter().enumerate().skip(from) {
            match authenticator.authenticate(credential) {
                Check::Ready(Outcome::NotMine) => continue,
                Check::Ready(outcome) => return ChainStep::Done(Self::settle(outcome)),
                Check::Pending(future) => return ChainStep::Waiting(future, index),
            }
        }
        ChainStep::Done(Err(unclaimed()))
    }

    /// A bearer JWT, when every authenticator says what it takes: only an authenticator with
    /// issuers can own it, and only the one whose issuer the token names.
    fn route(&self, token: &str) -> ChainStep {
        if self.routed.is_empty() {
            return ChainStep::Done(Err(unclaimed()));
        }
        // A cache hit is cheaper than reading the token's `iss`, so the caches go first.
        for &index in &self.routed {
            match self.authenticators[index].recall(token) {
                None | Some(Outcome::NotMine) => {}
                Some(outcome) => return ChainStep::Done(Self::settle(outcome)),
            }
        }
        let jws = match CompactJws::peek_for(token, &self.issuers) {
            Peeked::Issuer(jws) => jws,
            Peeked::TooLarge => return ChainStep::Done(Err(JoseError::TooLarge.into())),
            Peeked::NoIssuer => return ChainStep::Done(Err(unclaimed())),
        };
        let Some(at) = self.issuers.iter().position(|i| **i == *jws.issuer()) else {
            return ChainStep::Done(Err(unclaimed()));
        };
        let index = self.owners[at];
        match self.authenticators[index].authenticate_jws(&jws) {
            // Not what `Routing::Issuers` promises; the ones after it may still say.
            Check::Ready(Outcome::NotMine) => self.run(Credential::Bearer(token), index + 1),
            Check::Ready(outcome) => ChainStep::Done(Self::settle(outcome)),
            Check::Pending(future) => ChainStep::Waiting(future, index),
        }
    }

    /// The method of the authenticator a refused `credential` went to, as far as its
    /// structure tells: the one authenticator of a chain of one, the owner of a bearer
    /// JWT's issuer, or the first that takes values other than JWTs (API keys); `None` when
    /// none would take it. For the `method` label of a refusal's metrics: it reads a JWT's
    /// `iss` again, so it is not for the path of an accepted request.
    pub fn method_for(&self, credential: Credential<'_>) -> Option<&'static str> {
        if let [only] = &self.authenticators[..] {
            return Some(only.method());
        }
        if let Credential::Bearer(token) = credential
            && looks_like_jws(token)
        {
            let Peeked::Issuer(jws) = CompactJws::peek_for(token, &self.issuers) else {
                return None;
            };
            let at = self.issuers.iter().position(|i| **i == *jws.issuer())?;
            return Some(self.authenticators[self.owners[at]].method());
        }
        self.authenticators
            .iter()
            .find(|a| matches!(a.routing(), Routing::NotJws))
            .map(|a| a.method())
    }

    /// The method of authenticator `index`, as [`ChainStep::Waiting`] names one.
    pub fn method_at(&self, index: usize) -> Option<&'static str> {
        self.authenticators.get(index).map(|a| a.method())
    }

    /// An outcome as a run's result, for an outcome awaited after [`ChainStep::Waiting`]:
    /// `NotMine` at the end of a run is nobody's credential.
    pub fn settle(outcome: Outcome) -> Result<Identity, AuthError> {
        match outcome {
            Outcome::Authenticated(identity) => Ok(identity),
            Outcome::Rejected(error) => Err(error),
            Outcome::NotMine => Err(unclaimed()),
        }
    }
}

impl fmt::Debug for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chain")
            .field("methods", &self.methods())
            .field("issuers", &self.issuers)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for ChainStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Done(result) => f.debug_tuple("Done").field(result).finish(),
            Self::Waiting(_, index) => f.debug_tuple("Waiting").field(index).finish(),
        }
    }
}

fn unclaimed() -> AuthError {
    AuthError::invalid_token("unclaimed_credential")
}

#[cfg(test)]
mod tests;
