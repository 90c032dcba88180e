//! `Auth`, the service [`AuthLayer`](crate::AuthLayer) builds: the request path.
//!
//! [`Auth::call`](Service::call) reads top to bottom: strip client-sent identity headers,
//! [`decide`](Settings::decide) over the request's parts (its path and headers; the body is
//! never read), then answer: call the inner service with the identity, answer the rejection,
//! or wait for an authenticator that fetches keys and [`judge`](Settings::judge) after.
//!
//! The decision borrows the request rather than taking its `Parts` apart, and the identity
//! goes in in place: each move of a request copies its head, a measurable share of a cached
//! check (callgrind counts the difference).

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_auth_core::{
    AuthError, AuthErrorKind, Capped, Chain, ChainStep, Credential, CredentialExtractor, Identity,
    LogPermit, Outcome, OutcomeFuture, Protocol,
};
use tower_service::Service;

use crate::answer::Answers;
use crate::future::{Answer, AuthFuture};
use crate::identity_headers::StrippedHeaders;
use crate::limits::SourceLimits;
use crate::metrics::{NO_METHOD, Observation};
use crate::reload::TaskGuard;
use crate::resource::Resource;
use crate::response::ResponseBody;
use crate::rules::{PathRule, Rules};
use crate::sources::{CredentialSources, Scratch};

/// The configuration every service of one layer shares, behind one `Arc` so that cloning a
/// service is one refcount. [`AuthLayer`](crate::AuthLayer) builds it; nothing changes it after.
#[derive(Clone)]
pub(crate) struct Settings {
    /// Empty for a layer that authenticates nothing ([`AuthLayer::disabled`](crate::AuthLayer::disabled)).
    pub(crate) chain: Chain,
    pub(crate) extractor: CredentialExtractor,
    pub(crate) rules: Rules,
    pub(crate) realm: Arc<str>,
    /// Client-sent identity headers removed from every request.
    pub(crate) stripped: StrippedHeaders,
    /// Background work (key-file reloads) that lives as long as the layer and its services.
    pub(crate) tasks: Vec<Arc<TaskGuard>>,
    /// `AUTH_FAILURE_LIMIT` and the limit on rejection log lines, per source.
    pub(crate) limits: Arc<SourceLimits>,
    /// Which of the endpoints below the application has taken to serve: their paths are
    /// exempt from then on, and only then.
    #[cfg(feature = "hmac")]
    pub(crate) served: Arc<ServedEndpoints>,
    /// The token-exchange endpoint configured with the layer (`AUTH_TOKEN_CLIENTS`).
    #[cfg(feature = "hmac")]
    pub(crate) token_exchange: Option<tower_auth_hmac::ExchangeEndpoint>,
    /// Its revocation endpoint, writing the list the HMAC authenticator checks.
    #[cfg(feature = "hmac")]
    pub(crate) token_revocation: Option<tower_auth_hmac::RevocationEndpoint>,
    /// The revocations shared through Redis (`AUTH_REDIS_URL`): its tasks end with the
    /// last layer or service.
    #[cfg(feature = "redis")]
    pub(crate) redis: Option<Arc<tower_auth_hmac::RedisSync>>,
    /// Opt-in credential sources: an API key as a Basic password, a token in a cookie.
    pub(crate) sources: CredentialSources,
    /// Challenge parameters and challenges, and the application's answers.
    pub(crate) answers: Answers,
    /// The RFC 9728 metadata the layer serves (`AUTH_RESOURCE`).
    pub(crate) resource: Option<Resource>,
    /// Checks the proofs of DPoP-bound tokens; without it such tokens are refused.
    #[cfg(feature = "oidc")]
    pub(crate) dpop: Option<Arc<tower_auth_oidc::DpopVerifier>>,
    /// The list whose subject cut-offs are checked after authentication, for every method
    /// (`RevocationList::revoke_subject`).
    #[cfg(feature = "hmac")]
    pub(crate) cutoffs: Option<tower_auth_hmac::RevocationList>,
    /// The OIDC validators of the chain, whose issuers `/health` and `/ready` report.
    #[cfg(feature = "oidc")]
    pub(crate) issuers: Vec<tower_auth_oidc::OidcAuthenticator>,
    /// The metric handles of each recorder the layer has recorded into.
    pub(crate) recorders: Arc<crate::metrics::Recorders>,
}

/// Whether the application has taken the exchange and revocation endpoints to serve. Their
/// paths are exempt (the clients calling them authenticate with their own credentials) only
/// from then on: an application that does not serve one keeps whatever it routes at its path
/// (a fallback, a proxy) protected, as every other path.
#[cfg(feature = "hmac")]
#[derive(Debug, Default)]
pub(crate) struct ServedEndpoints {
    pub(crate) token: std::sync::atomic::AtomicBool,
    pub(crate) revoke: std::sync::atomic::AtomicBool,
}

#[cfg(feature = "hmac")]
impl ServedEndpoints {
    /// Whether `path` is an endpoint the application serves.
    fn exempts(&self, path: &str) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        (path == tower_auth_hmac::TOKEN_PATH && self.token.load(Relaxed))
            || (path == tower_auth_hmac::REVOKE_PATH && self.revoke.load(Relaxed))
    }

    pub(crate) fn paths(&self) -> impl Iterator<Item = &'static str> + '_ {
        [tower_auth_hmac::TOKEN_PATH, tower_auth_hmac::REVOKE_PATH]
            .into_iter()
            .filter(|path| self.exempts(path))
    }
}

/// What to do with a request, as far as can be told without waiting.
pub(crate) enum Decision {
    /// Decided.
    Now(Verdict),
    /// Authenticator `index` needs to wait (a key fetch); on `NotMine` the chain resumes at
    /// `index + 1`.
    Wait(OutcomeFuture, usize, Observation),
    /// A DPoP proof waits for the replay memory shared through Redis.
    #[cfg(feature = "oidc")]
    Proof(crate::dpop::Pending, Observation),
}

/// The answer for a request.
pub(crate) enum Verdict {
    /// Call the inner service, with this identity if there is one.
    Pass(Option<Identity>),
    /// Answer with this error.
    Reject(AuthError),
}

impl Settings {
    /// Decides over the request's path and headers: exemptions, the credential, the chain,
    /// role rules.
    pub(crate) fn decide<B>(&self, request: &Request<B>) -> Decision {
        if self.chain.is_empty() {
            return Decision::Now(Verdict::Pass(None));
        }
        let observation = Observation::start();
        let _entered = observation.span.enter();
        // A source over its failure limit is answered before its credential is looked at,
        // only with `AUTH_FAILURE_LIMIT` set: for a source without failures, two atomic loads
        // (with `AUTH_REDIS_URL`, a keyed hash and three more, and no lock except once a round
        // per slot to ask for its sum, or when a source of its slot failed in this window:
        // SECURITY.md Y8).
        if self.limits.failure_limit_enabled()
            && let Some(wait) = self.limits.blocked(self.limits.source(request))
        {
            return Decision::Now(self.refuse_blocked(request, wait, &observation));
        }
        let step = match self.credential(request.headers(), &mut Scratch::default()) {
            Ok(Some(credential)) => self.chain.run(credential, 0),
            Ok(None) => ChainStep::Done(Err(AuthError::missing_credential())),
            Err(error) => ChainStep::Done(Err(error)),
        };
        match step {
            ChainStep::Done(result) => {
                #[cfg(feature = "oidc")]
                let result = match crate::dpop::bind(self.dpop.as_deref(), request, result) {
                    crate::dpop::Bound::Now(result) => result,
                    crate::dpop::Bound::Pending(proof) => {
                        drop(_entered);
                        return Decision::Proof(proof, observation);
                    }
                };
                Decision::Now(self.judge(request, result, &observation))
            }
            ChainStep::Waiting(check, index) => {
                drop(_entered);
                Decision::Wait(check, index, observation)
            }
        }
    }

    /// The rule for the request's path: the exemptions and role rules, and the endpoints the
    /// application serves.
    fn rule<B>(&self, request: &Request<B>) -> PathRule<'_> {
        let path = request.uri().path();
        // Whether the request is gRPC matters only to `/pkg.Service/*` exemptions.
        let grpc = self.rules.has_grpc_service_exemptions() && Protocol::of(request).is_grpc();
        let rule = self.rules.classify(path, grpc);
        #[cfg(feature = "hmac")]
        if !matches!(rule, PathRule::Exempt) && self.served.exempts(path) {
            return PathRule::Exempt;
        }
        rule
    }

    /// The identity an exempt request carries on. Not one from the token cookie at the
    /// revocation endpoint: a browser sends the cookie with a cross-site form POST, and the
    /// endpoint acts for an admin identity (cross-site request forgery). SECURITY.md B15.
    fn exempt_identity<B>(&self, request: &Request<B>, identity: Identity) -> Option<Identity> {
        #[cfg(feature = "hmac")]
        if request.uri().path() == tower_auth_hmac::REVOKE_PATH
            && self.sources.came_from_cookie(request.headers())
        {
            return None;
        }
        #[cfg(not(feature = "hmac"))]
        let _ = request;
        Some(identity)
    }

    /// A blocked source's request: an exempt path is served without authenticating it, any
    /// other gets 429. Not logged: the block was, once, when the source reached its limit.
    #[cold]
    fn refuse_blocked<B>(
        &self,
        request: &Request<B>,
        wait: std::time::Duration,
        observation: &Observation,
    ) -> Verdict {
        let verdict = match self.rule(request) {
            PathRule::Exempt => Verdict::Pass(None),
            _ => Verdict::Reject(AuthError::rate_limited(wait)),
        };
        self.observe(request, &verdict, true, observation);
        verdict
    }

    /// Resumes the chain after authenticator `index` said `NotMine` asynchronously.
    fn resume<B>(&self, request: &Request<B>, index: usize) -> ChainStep {
        match self.credential(request.headers(), &mut Scratch::default()) {
            Ok(Some(credential)) => self.chain.run(credential, index + 1),
            // The headers have not changed since the first extraction succeeded.
            Ok(None) | Err(_) => {
                ChainStep::Done(Err(AuthError::invalid_token("unclaimed_credential")))
            }
        }
    }

    /// Turns the chain's result into the verdict for the request's path, and logs it.
    pub(crate) fn judge<B>(
        &self,
        request: &Request<B>,
        result: Result<Identity, AuthError>,
        observation: &Observation,
    ) -> Verdict {
        let result = result.and_then(|id| crate::client_cert::confirm(&self.limits, request, id));
        // One place for every method and both paths, after the token cache: a cached
        // identity is cut off as a fresh one is.
        #[cfg(feature = "hmac")]
        let result = match (&self.cutoffs, result) {
            (Some(list), Ok(identity)) if list.is_cut_off(&identity) => {
                Err(AuthError::invalid_token("subject_revoked"))
            }
            (_, result) => result,
        };
        let rule = self.rule(request);
        let exempt = matches!(rule, PathRule::Exempt);
        let verdict = match (rule, result) {
            (PathRule::Exempt, Ok(identity)) => {
                Verdict::Pass(self.exempt_identity(request, identity))
            }
            (PathRule::Exempt, Err(error)) => {
                // Served anyway, but an exempt handler may answer differently with an
                // identity: a guess there counts as one anywhere else.
                self.count_failure(request, &error);
                Verdict::Pass(None)
            }
            (_, Err(error)) => Verdict::Reject(error),
            (PathRule::Require(requirement), Ok(identity)) => match requirement.check(&identity) {
                Ok(()) => Verdict::Pass(Some(identity)),
                Err(error) => {
                    self.log(request, Some(&identity), Err(&error));
                    let verdict = Verdict::Reject(error);
                    self.observe_identified(request, &identity, &verdict, observation);
                    return verdict;
                }
            },
            (PathRule::Authenticated, Ok(identity)) => Verdict::Pass(Some(identity)),
        };
        self.observe(request, &verdict, exempt, observation);
        match &verdict {
            Verdict::Pass(identity) => self.log(request, identity.as_ref(), Ok(())),
            Verdict::Reject(error) => {
                self.count_failure(request, error);
                self.log(request, None, Err(error));
            }
        }
        verdict
    }

    /// Counts a credential that failed (not a missing one, a missing role or an unavailable
    /// issuer) against its source's `AUTH_FAILURE_LIMIT`, and logs the source's block once.
    fn count_failure<B>(&self, request: &Request<B>, error: &AuthError) {
        if !self.limits.failure_limit_enabled()
            || !matches!(
                error.kind(),
                AuthErrorKind::InvalidToken | AuthErrorKind::InvalidRequest
            )
        {
            return;
        }
        // Being asked for a DPoP nonce is the protocol's round trip, not a guess.
        #[cfg(feature = "oidc")]
        if tower_auth_oidc::is_nonce_round_trip(error) {
            return;
        }
        let source = self.limits.source(request);
        if let Some(wait) = self.limits.failed(source) {
            tracing::warn!(
                target: "auth::audit",
                event = "source_blocked",
                outcome = "rate_limited",
                source = source.map(tracing::field::display),
                retry_after = wait.as_secs(),
                "a source used up its failed authentications for this window: its requests get 429 until then",
            );
        }
    }

    /// Counts a judged request and fills in its span (see [`crate::metrics`]); a refusal's
    /// method is the one its credential went to.
    fn observe<B>(
        &self,
        request: &Request<B>,
        verdict: &Verdict,
        exempt: bool,
        observation: &Observation,
    ) {
        let fingerprint = || self.fingerprint(request);
        match verdict {
            Verdict::Pass(identity) => {
                let method = identity.as_ref().map_or(NO_METHOD, |i| i.method().kind());
                observation.passed(&self.recorders, method, exempt, fingerprint);
            }
            Verdict::Reject(error) => {
                let method = match error.kind() {
                    AuthErrorKind::MissingCredential | AuthErrorKind::RateLimited => None,
                    _ => self
                        .credential(request.headers(), &mut Scratch::default())
                        .ok()
                        .flatten()
                        .and_then(|credential| self.chain.method_for(credential)),
                };
                observation.refused(
                    &self.recorders,
                    method.unwrap_or(NO_METHOD),
                    error,
                    fingerprint,
                );
            }
        }
    }

    /// [`observe`](Self::observe) for a refusal of a caller identified by `identity` (403).
    fn observe_identified<B>(
        &self,
        request: &Request<B>,
        identity: &Identity,
        verdict: &Verdict,
        observation: &Observation,
    ) {
        if let Verdict::Reject(error) = verdict {
            observation.refused(&self.recorders, identity.method().kind(), error, || {
                self.fingerprint(request)
            });
        }
    }

    /// The request's credential's fingerprint, or nothing.
    fn fingerprint<B>(&self, request: &Request<B>) -> String {
        self.credential(request.headers(), &mut Scratch::default())
            .ok()
            .flatten()
            .map(|c: Credential<'_>| c.fingerprint().to_string())
            .unwrap_or_default()
    }

    /// The rejection of a request for `error`, in HTTP or gRPC form.
    fn rejection<B>(&self, request: &Request<B>, error: &AuthError) -> Response<ResponseBody<()>> {
        #[allow(unused_mut)]
        let mut response = self
            .answers
            .respond(error, &self.realm, &Protocol::of(request));
        #[cfg(feature = "oidc")]
        crate::dpop::nonce_answer(self.dpop.as_deref(), error, &mut response);
        response
    }

    fn log<B>(
        &self,
        request: &Request<B>,
        identity: Option<&Identity>,
        result: Result<(), &AuthError>,
    ) {
        // The path is the caller's to choose: logged capped (SECURITY.md E8).
        let path = Capped(request.uri().path());
        // Field values are only evaluated when the event is enabled, so the fingerprint's
        // SHA-256 costs nothing on a quiet subscriber.
        let fingerprint = || {
            self.credential(request.headers(), &mut Scratch::default())
                .ok()
                .flatten()
                .map(|c: Credential<'_>| c.fingerprint().to_string())
                .unwrap_or_default()
        };
        match (result, identity) {
            (Ok(()), Some(identity)) => tracing::debug!(
                target: "auth",
                outcome = "accepted",
                path = %path,
                method = identity.method().kind(),
                subject = identity.subject(),
                fingerprint = %fingerprint(),
            ),
            (Ok(()), None) => tracing::debug!(target: "auth", outcome = "exempt", path = %path),
            (Err(error), identity) => {
                // Only when the event would be written: counting costs an atomic update.
                if !tracing::enabled!(target: "auth", tracing::Level::INFO) {
                    return;
                }
                // How much log a source's refusals write is not the source's to decide
                // (SECURITY.md E9).
                let source = self.limits.source(request);
                let (unlogged, last) = match self.limits.may_log(source) {
                    LogPermit::Log { unlogged } => (unlogged, false),
                    LogPermit::Last => (0, true),
                    LogPermit::Quiet => return,
                };
                tracing::info!(
                    target: "auth",
                    outcome = "rejected",
                    path = %path,
                    reason = error.reason(),
                    status = error.http_status().as_u16(),
                    subject = identity.map(Identity::subject),
                    fingerprint = %fingerprint(),
                    source = source.map(tracing::field::display),
                    unlogged_before = (unlogged > 0).then_some(unlogged),
                );
                if last {
                    tracing::info!(
                        target: "auth",
                        source = source.map(tracing::field::display),
                        window_secs = tower_auth_core::LOG_WINDOW.as_secs(),
                        "further rejections from this source are counted, not logged, until its window ends",
                    );
                }
            }
        }
    }
}

/// Awaits an authenticator that had to wait, resumes the chain if it said `NotMine`, and
/// judges the result.
async fn wait<B>(
    settings: Arc<Settings>,
    mut request: Request<B>,
    mut check: OutcomeFuture,
    mut index: usize,
    observation: Observation,
) -> Answer<B> {
    let result = loop {
        match check.await {
            Outcome::NotMine => match settings.resume(&request, index) {
                ChainStep::Done(result) => break result,
                ChainStep::Waiting(next, at) => (check, index) = (next, at),
            },
            outcome => break Chain::settle(outcome),
        }
    };
    #[cfg(feature = "oidc")]
    let result = match crate::dpop::bind(settings.dpop.as_deref(), &request, result) {
        crate::dpop::Bound::Now(result) => result,
        crate::dpop::Bound::Pending(proof) => proof.await,
    };
    match settings.judge(&request, result, &observation) {
        Verdict::Pass(identity) => {
            add_identity(&mut request, identity);
            Answer::Pass(request)
        }
        Verdict::Reject(error) => Answer::Reject(settings.rejection(&request, &error)),
    }
}

/// Awaits the shared replay memory's word on a DPoP proof, and judges the result.
#[cfg(feature = "oidc")]
async fn proven<B>(
    settings: Arc<Settings>,
    mut request: Request<B>,
    proof: crate::dpop::Pending,
    observation: Observation,
) -> Answer<B> {
    let result = proof.await;
    match settings.judge(&request, result, &observation) {
        Verdict::Pass(identity) => {
            add_identity(&mut request, identity);
            Answer::Pass(request)
        }
        Verdict::Reject(error) => Answer::Reject(settings.rejection(&request, &error)),
    }
}

/// Gives the request its identity, if it has one. In place: moving a request in and out of
/// a function copies its head.
fn add_identity<B>(request: &mut Request<B>, identity: Option<Identity>) {
    if let Some(identity) = identity {
        request.extensions_mut().insert(identity);
    }
}

/// The service built by [`AuthLayer`](crate::AuthLayer): authenticates each request before
/// the inner service sees it.
pub struct Auth<S> {
    inner: S,
    settings: Arc<Settings>,
}

impl<S> Auth<S> {
    pub(crate) fn new(inner: S, settings: Arc<Settings>) -> Self {
        Self { inner, settings }
    }
}

impl<S: Clone> Clone for Auth<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            settings: Arc::clone(&self.settings),
        }
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for Auth<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Auth<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    ReqBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = AuthFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        self.settings.stripped.strip(request.headers_mut());
        if let Some(resource) = &self.settings.resource
            && let Some(metadata) = resource.answer(&request)
        {
            return AuthFuture::reject(metadata);
        }
        match self.settings.decide(&request) {
            Decision::Now(Verdict::Pass(identity)) => {
                add_identity(&mut request, identity);
                AuthFuture::inner(self.inner.call(request))
            }
            Decision::Now(Verdict::Reject(error)) => {
                AuthFuture::reject(self.settings.rejection(&request, &error))
            }
            Decision::Wait(check, index, observation) => {
                // The service that was polled ready goes with the request; a clone stays
                // behind and is driven to readiness by the next poll_ready (tower's advice).
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                let settings = Arc::clone(&self.settings);
                let span = observation.span.clone();
                let wait = wait(settings, request, check, index, observation);
                AuthFuture::waiting(Box::pin(tracing::Instrument::instrument(wait, span)), inner)
            }
            #[cfg(feature = "oidc")]
            Decision::Proof(proof, observation) => {
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                let settings = Arc::clone(&self.settings);
                let span = observation.span.clone();
                let proven = proven(settings, request, proof, observation);
                AuthFuture::waiting(
                    Box::pin(tracing::Instrument::instrument(proven, span)),
                    inner,
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AuthLayer;
    use http_body_util::BodyExt;
    use std::convert::Infallible;
    use tower::{ServiceBuilder, ServiceExt, service_fn};
    use tower_auth_core::{AuthMethod, Authenticator, Check, Credential};

    /// Claims bearer tokens starting with `slow-`, deciding only after a yield, as an OIDC
    /// validator does on a key fetch; `slow-pass` asks the next authenticator.
    struct Slow;

    impl Authenticator for Slow {
        fn method(&self) -> &'static str {
            "slow"
        }

        fn authenticate(&self, credential: Credential<'_>) -> Check {
            let Some(rest) = credential.expose().strip_prefix("slow-") else {
                return Outcome::NotMine.into();
            };
            let rest = rest.to_owned();
            Check::Pending(Box::pin(async move {
                tokio::task::yield_now().await;
                match rest.as_str() {
                    "pass" => Outcome::NotMine,
                    "ok" | "admin" => Outcome::Authenticated(
                        Identity::builder(rest.clone(), AuthMethod::Hmac { issuer: "t".into() })
                            .role(rest)
                            .build(),
                    ),
                    _ => Outcome::Rejected(AuthError::invalid_token("bad")),
                }
            }))
        }
    }

    /// Accepts the bearer `slow-pass` immediately.
    struct Fast;

    impl Authenticator for Fast {
        fn method(&self) -> &'static str {
            "fast"
        }

        fn authenticate(&self, credential: Credential<'_>) -> Check {
            match credential.expose() {
                "slow-pass" => Outcome::Authenticated(
                    Identity::builder("fast", AuthMethod::Hmac { issuer: "f".into() }).build(),
                ),
                _ => Outcome::NotMine,
            }
            .into()
        }
    }

    async fn echo(request: Request<String>) -> Result<Response<String>, Infallible> {
        let subject = request
            .extensions()
            .get::<Identity>()
            .map_or("-".to_owned(), |i| i.subject().to_owned());
        let spoofed = request.headers().contains_key("x-auth-subject");
        Ok(Response::new(format!("{subject} spoofed={spoofed}")))
    }

    async fn call(path: &str, headers: &[(&str, &str)]) -> (u16, String, http::HeaderMap) {
        let service = ServiceBuilder::new()
            .layer(
                AuthLayer::builder(Slow)
                    .or(Fast)
                    .require_any("/admin", ["admin"])
                    .build()
                    .unwrap(),
            )
            .service(service_fn(echo));
        // A gRPC content type is sent as gRPC clients send it: a POST over HTTP/2.
        let grpc = headers.iter().any(|(name, _)| *name == "content-type");
        let mut request = Request::builder().uri(path);
        if grpc {
            request = request.method("POST").version(http::Version::HTTP_2);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = service
            .oneshot(request.body(String::new()).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap(), headers)
    }

    #[tokio::test]
    async fn an_authenticator_that_waits_decides() {
        assert_eq!(
            call("/x", &[("authorization", "Bearer slow-ok")]).await.1,
            "ok spoofed=false"
        );
        let (status, body, _) = call("/x", &[("authorization", "Bearer slow-bad")]).await;
        assert_eq!(
            (status, body.as_str()),
            (401, r#"{"error":"invalid_token"}"#)
        );
    }

    #[tokio::test]
    async fn not_mine_after_waiting_resumes_the_chain() {
        assert_eq!(
            call("/x", &[("authorization", "Bearer slow-pass")]).await.1,
            "fast spoofed=false"
        );
    }

    #[tokio::test]
    async fn role_rules_apply_after_waiting() {
        assert_eq!(
            call("/admin", &[("authorization", "Bearer slow-ok")])
                .await
                .0,
            403
        );
        assert_eq!(
            call("/admin", &[("authorization", "Bearer slow-admin")])
                .await
                .0,
            200
        );
    }

    #[tokio::test]
    async fn exempt_paths_are_never_rejected_but_still_identify() {
        let (status, body, headers) = call("/health", &[]).await;
        assert_eq!((status, body.as_str()), (200, "- spoofed=false"));
        // The inner service's own answer: no challenge or any other header of a rejection.
        assert!(headers.is_empty(), "{headers:?}");
        assert_eq!(
            call("/health", &[("authorization", "Bearer slow-bad")])
                .await
                .1,
            "- spoofed=false"
        );
        assert_eq!(
            call("/health", &[("authorization", "Bearer slow-ok")])
                .await
                .1,
            "ok spoofed=false"
        );
        assert_eq!(
            call(
                "/health",
                &[("authorization", "Bearer a"), ("authorization", "Bearer b")]
            )
            .await
            .0,
            200
        );
    }

    #[tokio::test]
    async fn identity_headers_from_the_client_are_stripped() {
        let (_, body, _) = call("/health", &[("x-auth-subject", "root")]).await;
        assert_eq!(body, "- spoofed=false");
        let (_, body, _) = call(
            "/x",
            &[
                ("x-auth-subject", "root"),
                ("authorization", "Bearer slow-ok"),
            ],
        )
        .await;
        assert_eq!(body, "ok spoofed=false");
    }

    #[tokio::test]
    async fn grpc_requests_get_grpc_status() {
        let (status, body, headers) =
            call("/pkg.Svc/M", &[("content-type", "application/grpc")]).await;
        assert_eq!((status, body.as_str()), (200, ""));
        assert_eq!(headers["grpc-status"], "16");
        let (_, _, headers) = call(
            "/admin",
            &[
                ("content-type", "application/grpc"),
                ("authorization", "Bearer slow-ok"),
            ],
        )
        .await;
        assert_eq!(headers["grpc-status"], "7");
    }

    #[tokio::test]
    async fn disabled_layer_passes_everything() {
        let service = ServiceBuilder::new()
            .layer(AuthLayer::disabled())
            .service(service_fn(echo));
        let request = Request::builder()
            .uri("/x")
            .header("x-auth-subject", "root")
            .body(String::new())
            .unwrap();
        let response = service.oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"- spoofed=false");
    }

    #[tokio::test]
    async fn grpc_service_exemptions_pass_grpc_requests_only() {
        let service = ServiceBuilder::new()
            .layer(
                AuthLayer::builder(Fast)
                    .exempt("/grpc.reflection.v1.ServerReflection/*")
                    .build()
                    .unwrap(),
            )
            .service(service_fn(echo));
        let request = |path: &str, content_type: &str| {
            Request::post(path)
                .version(http::Version::HTTP_2)
                .header("content-type", content_type)
                .body(String::new())
                .unwrap()
        };
        let reflection = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
        let passed = service
            .clone()
            .oneshot(request(reflection, "application/grpc"))
            .await
            .unwrap();
        assert_eq!(passed.status(), 200);
        assert!(!passed.headers().contains_key("grpc-status"));
        // The same path over plain HTTP, and another gRPC service: no credential, refused.
        let http = service
            .clone()
            .oneshot(request(reflection, "application/json"))
            .await
            .unwrap();
        assert_eq!(http.status(), 401);
        let other = service
            .oneshot(request("/pkg.Orders/List", "application/grpc"))
            .await
            .unwrap();
        assert_eq!(other.headers()["grpc-status"], "16");
    }

    /// What `decide` says, as a short word: it needs only a request's head, no service.
    fn decision(settings: &Settings, path: &str, headers: &[(&str, &str)]) -> String {
        let mut request = Request::builder().uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        match settings.decide(&request.body(()).unwrap()) {
            Decision::Now(Verdict::Pass(None)) => "pass".into(),
            Decision::Now(Verdict::Pass(Some(identity))) => format!("pass {}", identity.subject()),
            Decision::Now(Verdict::Reject(error)) => {
                format!("reject {}", error.http_status().as_u16())
            }
            Decision::Wait(_, index, _) => format!("wait {index}"),
            #[cfg(feature = "oidc")]
            Decision::Proof(..) => "proof".into(),
        }
    }

    #[test]
    fn the_decision_is_a_function_of_the_path_and_headers() {
        let layer = AuthLayer::builder(Fast)
            .or(Slow)
            .require_any("/admin", ["admin"])
            .build()
            .unwrap();
        let settings = &layer.settings;
        let bearer = |token: &'static str| [("authorization", token)];
        assert_eq!(decision(settings, "/x", &[]), "reject 401");
        assert_eq!(decision(settings, "/health", &[]), "pass");
        assert_eq!(
            decision(settings, "/x", &bearer("Bearer slow-pass")),
            "pass fast"
        );
        assert_eq!(
            decision(settings, "/admin", &bearer("Bearer slow-pass")),
            "reject 403"
        );
        assert_eq!(
            decision(settings, "/x", &bearer("Bearer slow-ok")),
            "wait 1"
        );
        assert_eq!(decision(settings, "/x", &bearer("Bearer ")), "reject 400");
        assert_eq!(decision(&AuthLayer::disabled().settings, "/x", &[]), "pass");
    }
}
