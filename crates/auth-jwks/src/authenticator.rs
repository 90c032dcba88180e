//! [`OidcAuthenticator`]: routes a bearer JWT to its issuer and validates it.

use std::fmt;
use std::sync::Arc;

use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::oneshot;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tower_auth_core::jose::{CompactJws, JoseError};
use tower_auth_core::{
    Admins, AuthError, Authenticator, Check, Clock, ConfigError, Credential, Fingerprint, Identity,
    Outcome, Routing,
};

use crate::cache::TokenCache;
use crate::config::OidcConfig;
use crate::fetch::Fetcher;
use crate::introspect::{CacheSettings, Introspector, Verdict};
use crate::source::{IssuerStatus, Source, Timing};
use crate::validate::{Routed, check_claims, check_header, identity, route, verify};

/// The most keys a token without `kid` is tried against (those that fit its `alg`, in the
/// order the issuer publishes them). SECURITY.md H7.
const MAX_KEYS_WITHOUT_KID: usize = 4;

/// Validates JWT access tokens of the configured OpenID Connect issuers.
///
/// Cloning is one reference count; background key refreshes stop when the last clone is dropped.
/// See the [crate documentation](crate) for an example.
#[derive(Clone)]
pub struct OidcAuthenticator {
    inner: Arc<Inner>,
}

struct Inner {
    sources: Vec<Arc<Source>>,
    names: Vec<Arc<str>>,
    cache: TokenCache,
    /// The one issuer that introspects opaque tokens, if any.
    introspector: Option<Arc<Introspector>>,
    admins: Admins,
    clock: Clock,
    leeway: u64,
    tasks: Vec<AbortHandle>,
    /// Set when the refreshes run on a runtime of our own; dropping it lets that thread end.
    own_runtime: Option<oneshot::Sender<()>>,
    /// The token cache's counters, one set per recorder.
    counters: crate::metrics::CacheCounters,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A request may spend the issuer's fetch budget.
    MayFetch,
    /// The fetch has been awaited; decide with what we have.
    Settled,
}

enum Step {
    Done(Outcome),
    Wait(Arc<Source>, u64),
}

impl OidcAuthenticator {
    /// Starts key loading for every issuer at once and waits for the first attempts, at most
    /// the start-up timeout (5 s by default) in all.
    ///
    /// An issuer that does not answer in time does not fail start-up: its tokens are answered
    /// with 503 and `Retry-After` while it is retried in the background with backoff and
    /// jitter. A discovery document naming another issuer does fail it. Must be called
    /// within a Tokio runtime, which then runs the background refreshes.
    pub async fn start(config: OidcConfig, admins: Admins) -> Result<Self, ConfigError> {
        let clock = config.clock.clone();
        let variable = Arc::clone(&config.variable);
        select_jwt_backend();
        let client_error = |m| ConfigError::new(&*variable, m);
        let shared: Vec<_> = config.ca.iter().collect();
        let fetcher = Fetcher::new(
            config.connect_timeout,
            config.read_timeout,
            &shared,
            &config.proxies,
        )
        .map_err(client_error)?;
        let runtime = Handle::try_current()
            .map_err(|_| ConfigError::new(&*variable, "OIDC key loading needs a Tokio runtime"))?;
        let timing = Timing {
            refresh_interval: config.refresh_interval,
            max_stale: config.max_stale(),
            cooldown: config.unknown_kid_cooldown,
        };
        let mut sources: Vec<Arc<Source>> = Vec::with_capacity(config.issuers.len());
        let mut introspector = None;
        for issuer in &config.issuers {
            if issuer.introspection.is_some() {
                let roots: Vec<_> = config.ca.iter().chain(issuer.ca.iter()).collect();
                let client = tower_auth_http::HttpClient::with_proxies(
                    config.connect_timeout,
                    config.read_timeout,
                    &roots,
                    config.proxies.clone(),
                )
                .map_err(|e| client_error(e.to_string()))?;
                let settings = CacheSettings {
                    size: config.token_cache_size,
                    ttl: config.token_cache_ttl,
                    leeway: config.leeway_secs,
                    clock: clock.clone(),
                };
                introspector = Some(Introspector::new(
                    Arc::clone(issuer),
                    client,
                    settings,
                    admins.clone(),
                    runtime.clone(),
                ));
            }
            // An issuer with a CA of its own gets a client (and a pool) of its own; the others share one.
            let fetcher = match &issuer.ca {
                None => fetcher.clone(),
                Some(own) => {
                    let roots: Vec<_> = config.ca.iter().chain([own]).collect();
                    Fetcher::new(
                        config.connect_timeout,
                        config.read_timeout,
                        &roots,
                        &config.proxies,
                    )
                    .map_err(client_error)?
                }
            };
            sources.push(Source::new(
                Arc::clone(issuer),
                timing,
                fetcher,
                runtime.clone(),
            ));
        }
        let tasks = sources
            .iter()
            .map(|s| runtime.spawn(Arc::clone(s).refresh_loop()).abort_handle())
            .collect();
        let inner = Arc::new(Inner {
            names: sources
                .iter()
                .map(|s| Arc::clone(&s.issuer.issuer))
                .collect(),
            sources,
            cache: TokenCache::new(
                config.token_cache_size,
                config.token_cache_ttl,
                config.leeway_secs,
                clock.clone(),
            ),
            introspector,
            admins,
            clock,
            leeway: config.leeway_secs,
            tasks,
            own_runtime: None,
            counters: Default::default(),
        });
        let deadline = Instant::now() + config.startup_timeout;
        for source in &inner.sources {
            let _ = tokio::time::timeout_at(deadline, source.wait_for(1)).await;
        }
        for (i, source) in inner.sources.iter().enumerate() {
            let issuer = &*source.issuer.issuer;
            if source.is_misconfigured() {
                return Err(ConfigError::new(
                    &*variable,
                    format!(
                        "issuers[{i}]: the discovery document at {} names a different issuer than {issuer:?}",
                        source.issuer.discovery_uri
                    ),
                ));
            }
            let status = source.status();
            if status.available {
                tracing::info!(target: "auth", issuer, keys = status.keys, "oidc issuer ready");
            } else {
                tracing::warn!(target: "auth", issuer, reason = status.last_error.unwrap_or("timeout"),
                    "oidc issuer keys not loaded at start; its tokens get 503 until a retry succeeds");
            }
        }
        Ok(Self { inner })
    }

    /// [`start`](Self::start) for synchronous set-up code such as `AuthLayer::from_env()`.
    ///
    /// Inside a multi-threaded Tokio runtime, this blocks the current worker
    /// (`block_in_place`) while the first attempts run, and the runtime keeps the background
    /// refreshes. Anywhere else (no runtime, or a current-thread runtime, which cannot be
    /// blocked on) the refreshes get a small runtime on a thread of their own, `tower-auth-oidc`,
    /// which ends when the last clone of the authenticator is dropped.
    pub fn start_blocking(config: OidcConfig, admins: Admins) -> Result<Self, ConfigError> {
        if let Ok(handle) = Handle::try_current()
            && handle.runtime_flavor() == RuntimeFlavor::MultiThread
        {
            return tokio::task::block_in_place(|| handle.block_on(Self::start(config, admins)));
        }
        let variable = Arc::clone(&config.variable);
        let failed = |what: &str| {
            ConfigError::new(
                &*variable,
                format!("could not start the OIDC key refresh thread: {what}"),
            )
        };
        let (result_tx, result_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("tower-auth-oidc".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = result_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let started = Self::start(config, admins).await;
                    let keep_running = started.is_ok();
                    let _ = result_tx.send(Ok(started));
                    if keep_running {
                        let _ = stop_rx.await;
                    }
                });
            })
            .map_err(|e| failed(&e.to_string()))?;
        let mut auth = result_rx
            .recv()
            .map_err(|_| failed("it ended early"))?
            .map_err(|e| failed(&e))??;
        if let Some(inner) = Arc::get_mut(&mut auth.inner) {
            inner.own_runtime = Some(stop_tx);
        }
        Ok(auth)
    }

    /// Asks `issuer`'s introspection endpoint (RFC 7662) about `token`, through the same
    /// cache and single flight as requests: the identity of an active access token, or the
    /// error a request with it would get (401 `invalid_token`, or 503 when the endpoint is
    /// unreachable). A token shaped like a JWT, or an issuer that does not introspect, is
    /// refused as `invalid_token` without a call.
    pub async fn introspect(&self, issuer: &str, token: &str) -> Result<Identity, AuthError> {
        let refused = || AuthError::invalid_token("not_introspected");
        let introspector = match &self.inner.introspector {
            Some(i) if i.issuer() == issuer && Introspector::takes(token) => i,
            _ => return Err(refused()),
        };
        if token.len() > tower_auth_core::MAX_CREDENTIAL_LEN {
            return Err(JoseError::TooLarge.into());
        }
        match introspector.verdict(token).await {
            Verdict::Active(identity) => Ok(identity),
            other => match other.into_outcome() {
                Outcome::Rejected(error) => Err(error),
                _ => Err(refused()),
            },
        }
    }

    /// The issuer whose opaque tokens are introspected, if one is.
    pub fn introspecting_issuer(&self) -> Option<&str> {
        self.inner.introspector.as_deref().map(Introspector::issuer)
    }

    /// The issuers this authenticator validates, as configured.
    pub fn issuers(&self) -> impl Iterator<Item = &str> + '_ {
        self.inner.names.iter().map(|n| &**n)
    }

    /// How many validated tokens the cache holds. A test hook, hidden until metrics
    /// (`auth_token_cache_*`) give it a documented home.
    #[doc(hidden)]
    pub fn cached_tokens(&self) -> u64 {
        self.inner.cache.len()
    }

    /// Sets the gauges of every issuer (`auth_jwks_keys`, `auth_jwks_age_seconds`,
    /// `auth_issuer_up`) to where it stands now. Each fetch sets them too; between fetches
    /// the age grows and an issuer passes its max-stale age unseen, so an application that
    /// renders metrics calls this first (as `AuthLayer::record_gauges` does).
    pub fn record_gauges(&self) {
        for source in &self.inner.sources {
            crate::metrics::gauges(&source.issuer.issuer, &source.status());
        }
    }

    /// Where `issuer`'s keys stand, or `None` for an issuer that is not configured.
    pub fn issuer_status(&self, issuer: &str) -> Option<IssuerStatus> {
        self.source(issuer).map(|s| s.status())
    }

    /// Waits until `issuer` has completed at least `fetches` key fetch attempts (see
    /// `IssuerStatus::fetches`); returns at once for an unknown issuer. For tests that drive
    /// time by hand: only with the `test-support` feature.
    #[cfg(feature = "test-support")]
    #[doc(hidden)]
    pub async fn wait_for_fetches(&self, issuer: &str, fetches: u64) {
        if let Some(source) = self.source(issuer) {
            source.wait_for(fetches).await;
        }
    }

    fn source(&self, issuer: &str) -> Option<&Arc<Source>> {
        self.inner
            .sources
            .iter()
            .find(|s| &*s.issuer.issuer == issuer)
    }
}

/// jsonwebtoken panics at the first verification when both backends are compiled in
/// (as with `--all-features`); pick aws-lc-rs then, explicitly.
fn select_jwt_backend() {
    // jsonwebtoken panics at the first verification when it was built with both backends and
    // none was chosen. Another crate in the application (a peer, a client library) can turn on
    // the other backend without us knowing, so ours is installed whenever it is ours; the
    // first install wins, and a later one failing is fine.
    #[cfg(feature = "aws_lc_rs")]
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
        &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
    );
    #[cfg(all(feature = "rust_crypto", not(feature = "aws_lc_rs")))]
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
        &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER,
    );
}

impl Inner {
    /// The cached answer for `token`, if the cache holds it.
    fn cached(&self, token: &str) -> Option<Outcome> {
        let key = self.cache.key(token)?;
        // One monotonic reading serves the entry's age and its key set's.
        let now = Instant::now();
        // The closure only reads the entry: logging a refusal waits until the cache's
        // per-thread front is let go, so that nothing a subscriber does can reach it.
        let checked = self
            .cache
            .get(
                key,
                token,
                self.clock.now_unix(),
                now,
                |entry, identity| match entry.source.check_fresh(&entry.source.snapshot(), now) {
                    Ok(()) => Ok(identity.clone()),
                    Err(e) => Err((e, Arc::clone(&entry.source.issuer.issuer))),
                },
            )
            .ok()?;
        crate::metrics::cache_hit(&self.counters);
        Some(match checked {
            Ok(identity) => Outcome::Authenticated(identity),
            Err((error, issuer)) => self.reject(token, &issuer, error),
        })
    }

    fn reject(&self, token: &str, issuer: &str, error: AuthError) -> Outcome {
        // The fingerprint's SHA-256 is only computed when the event is enabled.
        tracing::debug!(target: "auth", reason = error.reason(),
            fingerprint = %Fingerprint::of(token.as_bytes()), issuer, "oidc token refused");
        Outcome::Rejected(error)
    }

    fn validate(&self, token: &str, cache_key: Option<u64>, mode: Mode) -> Step {
        match route(token, &self.names) {
            Routed::NotMine => Step::Done(Outcome::NotMine),
            Routed::TooLarge => Step::Done(Outcome::Rejected(JoseError::TooLarge.into())),
            Routed::Mine(index, jws) => self.validate_jws(index, &jws, token, cache_key, mode),
        }
    }

    /// Judges a token already routed to issuer `index` by its unverified `iss`.
    fn validate_jws(
        &self,
        index: usize,
        jws: &CompactJws<'_>,
        token: &str,
        cache_key: Option<u64>,
        mode: Mode,
    ) -> Step {
        let source = &self.sources[index];
        let issuer = &*source.issuer;
        let refuse = |error: AuthError| Step::Done(self.reject(token, &issuer.issuer, error));
        let header = match check_header(jws, issuer) {
            Ok(h) => h,
            Err(e) => return refuse(e),
        };
        let (alg, kid) = (header.alg, header.kid);
        let claims = match jws.claims() {
            Ok(claims) => claims,
            Err(e) => return refuse(e.into()),
        };
        let exp = match check_claims(&claims, issuer, self.clock.now_unix(), self.leeway) {
            Ok(exp) => exp,
            Err(e) => return refuse(e),
        };
        let snapshot = source.snapshot();
        if let Err(unavailable) = source.check_fresh(&snapshot, Instant::now()) {
            if mode == Mode::MayFetch
                && !source.is_misconfigured()
                && let Some(target) = source.request_fetch()
            {
                return Step::Wait(Arc::clone(source), target);
            }
            return refuse(unavailable);
        }
        let key = match kid {
            Some(kid) => {
                let mut with_kid = snapshot.keys.with_kid(kid).peekable();
                if with_kid.peek().is_none() {
                    match mode {
                        Mode::MayFetch if !source.is_known_unknown(kid) => {
                            if let Some(target) = source.request_fetch() {
                                return Step::Wait(Arc::clone(source), target);
                            }
                        }
                        Mode::MayFetch => {}
                        // RFC 7515 section 4.1.4: the kid is only a hint. One the fresh key
                        // set does not have is refused without asking again for the cooldown;
                        // after it, the first request naming it may fetch again.
                        Mode::Settled => source.remember_unknown(kid),
                    }
                    return refuse(AuthError::invalid_token("unknown_kid"));
                }
                let mut fitting = with_kid.filter(|k| k.fits(alg)).peekable();
                if fitting.peek().is_none() {
                    return refuse(AuthError::invalid_token("key_alg_mismatch"));
                }
                // A known kid with a bad signature never causes a fetch: the key is there.
                match fitting.find(|k| verify(jws, k, alg)) {
                    Some(k) => Arc::clone(k),
                    None => return refuse(AuthError::invalid_token("bad_signature")),
                }
            }
            // Without a kid, a few keys that fit, in the issuer's order: a token must not make
            // us check a signature against every key of a large set.
            None => match snapshot
                .keys
                .fitting(alg)
                .take(MAX_KEYS_WITHOUT_KID)
                .find(|k| verify(jws, k, alg))
            {
                Some(k) => Arc::clone(k),
                None => return refuse(AuthError::invalid_token("no_key_verifies")),
            },
        };
        let identity = identity(claims, issuer, exp, &self.admins);
        if let Some(cache_key) = cache_key {
            self.cache.insert(
                cache_key,
                token,
                identity.clone(),
                exp,
                key,
                Arc::clone(source),
            );
        }
        Step::Done(Outcome::Authenticated(identity))
    }
}

impl OidcAuthenticator {
    /// Waits for the fetch `validate` asked for, then validates `token` again with what it
    /// brought.
    fn wait_then_validate(
        &self,
        source: Arc<Source>,
        target: u64,
        token: &str,
        cache_key: Option<u64>,
    ) -> Check {
        let inner = Arc::clone(&self.inner);
        let token = token.to_owned();
        Check::Pending(Box::pin(async move {
            source.wait_for(target).await;
            match inner.validate(&token, cache_key, Mode::Settled) {
                Step::Done(outcome) => outcome,
                // Settled never asks to wait again.
                Step::Wait(..) => {
                    Outcome::Rejected(AuthError::unavailable("jwks_not_loaded", None))
                }
            }
        }))
    }
}

impl Authenticator for OidcAuthenticator {
    fn method(&self) -> &'static str {
        "oidc"
    }

    fn authenticate(&self, credential: Credential<'_>) -> Check {
        let Credential::Bearer(token) = credential else {
            return Check::Ready(Outcome::NotMine);
        };
        if token.len() > tower_auth_core::MAX_CREDENTIAL_LEN {
            return Check::Ready(Outcome::Rejected(JoseError::TooLarge.into()));
        }
        if let Some(introspector) = &self.inner.introspector
            && Introspector::takes(token)
        {
            return introspector.check(token);
        }
        if let Some(outcome) = self.inner.cached(token) {
            return Check::Ready(outcome);
        }
        crate::metrics::cache_miss(&self.inner.counters);
        let cache_key = self.inner.cache.key(token);
        match self.inner.validate(token, cache_key, Mode::MayFetch) {
            Step::Done(outcome) => Check::Ready(outcome),
            Step::Wait(source, target) => self.wait_then_validate(source, target, token, cache_key),
        }
    }

    fn routing(&self) -> Routing {
        Routing::Issuers(self.inner.names.clone())
    }

    /// A token this authenticator validated before, while it is still fresh and its key and
    /// issuer still good. Another method's token is told apart by a load
    /// (`TokenCache::may_hold`), so a chain asking about every JWT costs that method little.
    fn recall(&self, token: &str) -> Option<Outcome> {
        if !self.inner.cache.may_hold(token) {
            return None;
        }
        self.inner.cached(token)
    }

    fn authenticate_jws(&self, jws: &CompactJws<'_>) -> Check {
        let inner = &self.inner;
        let Some(index) = inner.names.iter().position(|n| **n == *jws.issuer()) else {
            return Check::Ready(Outcome::NotMine);
        };
        let token = jws.token();
        // `recall` missed, but may have missed only because another token took this one's
        // slot in `may_hold`: a lookup is cheap beside a signature.
        if let Some(outcome) = inner.cached(token) {
            return Check::Ready(outcome);
        }
        crate::metrics::cache_miss(&self.inner.counters);
        let cache_key = inner.cache.key(token);
        match inner.validate_jws(index, jws, token, cache_key, Mode::MayFetch) {
            Step::Done(outcome) => Check::Ready(outcome),
            Step::Wait(source, target) => self.wait_then_validate(source, target, token, cache_key),
        }
    }
}

impl fmt::Debug for OidcAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcAuthenticator")
            .field("issuers", &self.inner.names)
            .finish_non_exhaustive()
    }
}
