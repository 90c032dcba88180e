//! One issuer's key source: a lock-free snapshot of its keys, single-flight fetches, a
//! background refresh with jitter and backoff, and the unknown-`kid` budget.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::ArcSwap;
use http::Uri;
use rand::Rng;
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::time::Instant;
use tower_auth_core::{AuthError, Capped};
use tower_auth_http::{Discovery, HttpError, require_tls_off_loopback};

use crate::config::Issuer;
use crate::fetch::{FetchError, Fetcher};
use crate::keys::KeySet;

/// The first retry after a failure waits about this long, doubling up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Unknown kids remembered at most; beyond that the list is cleared (it is only an optimisation).
const MAX_NEGATIVE: usize = 1024;

/// Timing shared by all sources.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timing {
    pub(crate) refresh_interval: Duration,
    pub(crate) max_stale: Duration,
    pub(crate) cooldown: Duration,
}

/// What requests read: the keys and when they were last confirmed by the issuer.
pub(crate) struct Snapshot {
    pub(crate) keys: Arc<KeySet>,
    /// `None` until the first successful fetch.
    pub(crate) confirmed_at: Option<Instant>,
}

#[derive(Default)]
struct State {
    in_flight: bool,
    completed: u64,
    last_started: Option<Instant>,
    not_before: Option<Instant>,
    failures: u32,
    jwks_uri: Option<Uri>,
    misconfigured: bool,
    last_error: Option<&'static str>,
}

/// Where an issuer's keys stand, for health checks and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IssuerStatus {
    /// Whether keys have been loaded and are not older than the max-stale age.
    pub available: bool,
    /// Usable keys in the current set.
    pub keys: usize,
    /// Fetch attempts completed, successful or not. A test hook, hidden until metrics
    /// (`auth_jwks_fetches_total`) give it a documented home.
    #[doc(hidden)]
    pub fetches: u64,
    /// The reason code of the last failed attempt, cleared by a success.
    pub last_error: Option<&'static str>,
    /// Whether discovery named another issuer; the issuer then answers 503 until it is fixed.
    pub misconfigured: bool,
    /// Where the issuer stands, for a readiness probe.
    pub state: IssuerState,
    /// Time since the issuer last confirmed its keys; `None` before the first success.
    pub age: Option<Duration>,
}

/// Where an issuer's keys stand ([`IssuerStatus::state`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IssuerState {
    /// Keys loaded, and the last fetch succeeded.
    Ready,
    /// Keys loaded and still used, but the last fetch failed: the issuer is down or
    /// answering badly, and its tokens get 503 once the keys pass the max-stale age.
    Stale,
    /// No fetch has completed yet.
    Loading,
    /// Its tokens get 503: no keys were ever loaded and a fetch failed, the keys are past
    /// the max-stale age, or discovery names another issuer.
    Down,
}

impl IssuerState {
    /// `ready`, `stale`, `loading` or `down`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Stale => "stale",
            Self::Loading => "loading",
            Self::Down => "down",
        }
    }

    /// Whether the issuer's tokens can be validated now (`ready` or `stale`).
    pub fn can_validate(self) -> bool {
        matches!(self, Self::Ready | Self::Stale)
    }
}

pub(crate) struct Source {
    pub(crate) issuer: Arc<Issuer>,
    timing: Timing,
    fetcher: Fetcher,
    runtime: Handle,
    snapshot: ArcSwap<Snapshot>,
    state: Mutex<State>,
    done: watch::Sender<u64>,
    negative: Mutex<HashMap<Box<str>, Instant>>,
}

/// A failed attempt.
struct Failure {
    error: FetchError,
    mismatch: bool,
    /// A discovered `jwks_uri` refused by the loopback rule, for the error event.
    plain_http: Option<Uri>,
}

impl From<FetchError> for Failure {
    fn from(error: FetchError) -> Self {
        Self {
            error,
            mismatch: false,
            plain_http: None,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // No code panics while holding these locks; recover the data rather than propagate a poison.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Source {
    pub(crate) fn new(
        issuer: Arc<Issuer>,
        timing: Timing,
        fetcher: Fetcher,
        runtime: Handle,
    ) -> Arc<Self> {
        let state = State {
            jwks_uri: issuer.jwks_uri.clone(),
            ..State::default()
        };
        Arc::new(Self {
            issuer,
            timing,
            fetcher,
            runtime,
            snapshot: ArcSwap::from_pointee(Snapshot {
                keys: Arc::default(),
                confirmed_at: None,
            }),
            state: Mutex::new(state),
            done: watch::Sender::new(0),
            negative: Mutex::new(HashMap::new()),
        })
    }

    /// The current keys; a lock-free read.
    pub(crate) fn snapshot(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.snapshot.load()
    }

    /// `Ok` when `snapshot` may be used at `now`, or the 503 to answer.
    pub(crate) fn check_fresh(&self, snapshot: &Snapshot, now: Instant) -> Result<(), AuthError> {
        match snapshot.confirmed_at {
            None => Err(AuthError::unavailable("jwks_not_loaded", self.retry_hint())),
            Some(at) if now.saturating_duration_since(at) > self.timing.max_stale => {
                Err(AuthError::unavailable("jwks_stale", self.retry_hint()))
            }
            Some(_) => Ok(()),
        }
    }

    fn retry_hint(&self) -> Option<Duration> {
        let state = lock(&self.state);
        let now = Instant::now();
        state
            .not_before
            .filter(|&t| t > now)
            .map(|t| (t - now).max(Duration::from_secs(1)))
    }

    pub(crate) fn status(&self) -> IssuerStatus {
        let snapshot = self.snapshot();
        let state = lock(&self.state);
        let age = snapshot.confirmed_at.map(|at| at.elapsed());
        let available = age.is_some_and(|age| age <= self.timing.max_stale);
        let issuer_state = match (available, state.last_error) {
            (true, None) => IssuerState::Ready,
            (true, Some(_)) => IssuerState::Stale,
            (false, None) if state.completed == 0 => IssuerState::Loading,
            (false, _) => IssuerState::Down,
        };
        IssuerStatus {
            available,
            keys: snapshot.keys.len(),
            fetches: state.completed,
            last_error: state.last_error,
            misconfigured: state.misconfigured,
            state: issuer_state,
            age,
        }
    }

    pub(crate) fn is_misconfigured(&self) -> bool {
        lock(&self.state).misconfigured
    }

    /// Asks for a fetch on behalf of a request (unknown `kid`, no keys yet).
    ///
    /// Joins a fetch in flight; otherwise starts one only if the last fetch of any kind began
    /// at least a cooldown ago and the issuer's `Retry-After` has passed. Returns the
    /// completion count to wait for, or `None` when the budget is spent.
    pub(crate) fn request_fetch(self: &Arc<Self>) -> Option<u64> {
        let mut state = lock(&self.state);
        if state.in_flight {
            return Some(state.completed + 1);
        }
        let now = Instant::now();
        if state
            .last_started
            .is_some_and(|t| now < t + self.timing.cooldown)
            || state.not_before.is_some_and(|t| now < t)
        {
            return None;
        }
        Some(self.start_fetch(&mut state, now))
    }

    fn start_fetch(self: &Arc<Self>, state: &mut State, now: Instant) -> u64 {
        state.in_flight = true;
        state.last_started = Some(now);
        // A spawned task, not a future owned by the first request: if that request is
        // cancelled, everyone else waiting still gets the result.
        self.runtime.spawn(Arc::clone(self).run_fetch());
        state.completed + 1
    }

    /// Waits until `target` fetches have completed. Each fetch is bounded by the timeouts.
    pub(crate) fn wait_for(&self, target: u64) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.done.subscribe();
        async move {
            let _ = rx.wait_for(|&completed| completed >= target).await;
        }
    }

    /// Whether `kid` was recently looked for and not found.
    pub(crate) fn is_known_unknown(&self, kid: &str) -> bool {
        let mut negative = lock(&self.negative);
        match negative.get(kid) {
            Some(&until) if Instant::now() < until => true,
            Some(_) => {
                negative.remove(kid);
                false
            }
            None => false,
        }
    }

    /// Remembers that a fetch just now did not bring `kid`, for the cooldown only: a key the
    /// issuer publishes later is found by the first request after the cooldown, not the next
    /// refresh, and kids named in advance are not blocked for long.
    pub(crate) fn remember_unknown(&self, kid: &str) {
        let mut negative = lock(&self.negative);
        if negative.len() >= MAX_NEGATIVE {
            negative.clear();
        }
        negative.insert(kid.into(), Instant::now() + self.timing.cooldown);
    }

    async fn run_fetch(self: Arc<Self>) {
        let span =
            tracing::debug_span!(target: "auth", "jwks_fetch", issuer = &*self.issuer.issuer);
        let result = tracing::Instrument::instrument(self.fetch_once(), span).await;
        let now = Instant::now();
        let issuer = &*self.issuer.issuer;
        let mut state = lock(&self.state);
        match result {
            Ok(keys) => {
                let previous = self.snapshot.load_full();
                if !previous.keys.same_keys(&keys) {
                    let revoked = previous.keys.revoke_missing(&keys);
                    lock(&self.negative).clear();
                    tracing::info!(target: "auth::audit", event = "issuer_keys_changed", issuer, keys = keys.len(), revoked, "oidc keys updated");
                }
                let keys = if previous.keys.same_keys(&keys) {
                    Arc::clone(&previous.keys)
                } else {
                    Arc::new(keys)
                };
                self.snapshot.store(Arc::new(Snapshot {
                    keys,
                    confirmed_at: Some(now),
                }));
                state.failures = 0;
                state.not_before = None;
                state.last_error = None;
                state.misconfigured = false;
            }
            Err(failure) => {
                state.failures = state.failures.saturating_add(1);
                state.not_before = failure.error.retry_after.map(|d| now + d);
                state.last_error = Some(failure.error.reason);
                if failure.mismatch {
                    state.misconfigured = true;
                    tracing::error!(target: "auth", issuer, reason = failure.error.reason,
                        "oidc discovery names another issuer; its tokens are refused until this is fixed");
                } else if let Some(uri) = &failure.plain_http {
                    // The URI came from the IdP's document: capped like any outside value.
                    tracing::error!(target: "auth", issuer, reason = failure.error.reason,
                        jwks_uri = %Capped(&uri.to_string()), failures = state.failures,
                        "oidc discovery names a plain-http jwks_uri on a host that is not loopback; \
                         not fetched, keeping last-known-good keys");
                } else {
                    tracing::warn!(target: "auth", issuer, reason = failure.error.reason,
                        failures = state.failures, "oidc key fetch failed; keeping last-known-good keys");
                }
            }
        }
        state.in_flight = false;
        state.completed += 1;
        self.done.send_replace(state.completed);
        let failure = state.last_error;
        drop(state);
        crate::metrics::fetched(issuer, failure, &self.status());
    }

    async fn fetch_once(&self) -> Result<KeySet, Failure> {
        let known_uri = lock(&self.state).jwks_uri.clone();
        let jwks_uri = match known_uri {
            Some(uri) => uri,
            None => {
                let uri = self.discover().await?;
                lock(&self.state).jwks_uri = Some(uri.clone());
                uri
            }
        };
        let body = self.fetcher.get(&jwks_uri).await?;
        let previous = self.snapshot.load_full();
        KeySet::parse(&body, &previous.keys).map_err(|reason| FetchError::new(reason).into())
    }

    async fn discover(&self) -> Result<Uri, Failure> {
        let discovery = Discovery::openid(&self.issuer.issuer).map_err(FetchError::from)?;
        let metadata = self
            .fetcher
            .discover(&discovery)
            .await
            .map_err(|error| match error {
                HttpError::IssuerMismatch => Failure {
                    error: FetchError::new("discovery_issuer_mismatch"),
                    mismatch: true,
                    plain_http: None,
                },
                HttpError::NotJson => FetchError::new("discovery_not_json").into(),
                other => FetchError::from(other).into(),
            })?;
        let uri = metadata.jwks_uri().map_err(|error| {
            let reason = match error {
                // OpenID Connect requires the field: a document without it is not one.
                HttpError::MissingEndpoint => "discovery_not_json",
                _ => "discovery_bad_jwks_uri",
            };
            Failure::from(FetchError::new(reason))
        })?;
        // The loopback rule of configured URLs (`config::idp_url`), for a discovered one:
        // keys read over plain http could be anyone's. Not remembered, so the next attempt
        // discovers again. SECURITY.md F17.
        if require_tls_off_loopback(&uri).is_err() {
            return Err(Failure {
                error: FetchError::new("discovery_jwks_uri_plain_http"),
                mismatch: false,
                plain_http: Some(uri),
            });
        }
        Ok(uri)
    }

    /// Fetches at start, then refreshes ahead of the interval with jitter; after a failure
    /// retries with exponential backoff and jitter, never sooner than `Retry-After`.
    pub(crate) async fn refresh_loop(self: Arc<Self>) {
        loop {
            let target = {
                let mut state = lock(&self.state);
                if state.in_flight {
                    state.completed + 1
                } else {
                    self.start_fetch(&mut state, Instant::now())
                }
            };
            self.wait_for(target).await;
            let delay = self.next_delay();
            tokio::time::sleep(delay).await;
        }
    }

    fn next_delay(&self) -> Duration {
        let state = lock(&self.state);
        let interval = self.timing.refresh_interval;
        let mut rng = rand::rng();
        let delay = if state.failures == 0 || state.misconfigured {
            // Up to a tenth early, so that many instances do not refresh in step.
            interval - interval.mul_f64(rng.random_range(0.0..0.1))
        } else {
            let exp = state.failures.saturating_sub(1).min(16);
            let base = FIRST_BACKOFF
                .saturating_mul(1 << exp)
                .min(MAX_BACKOFF)
                .min(interval);
            base / 2 + base.mul_f64(rng.random_range(0.0..0.5))
        };
        let now = Instant::now();
        match state.not_before {
            Some(t) if t > now => delay.max(t - now),
            _ => delay,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::{IssuerConfig, OidcConfig};

    fn source(refresh: u64) -> Arc<Source> {
        source_for("https://idp.example", refresh)
    }

    pub(crate) fn source_for(issuer: &str, refresh: u64) -> Arc<Source> {
        let config = OidcConfig::builder()
            .issuer(IssuerConfig::new(issuer, "api"))
            .jwks_refresh_interval(Duration::from_secs(refresh))
            .build()
            .unwrap();
        let timing = Timing {
            refresh_interval: config.refresh_interval,
            max_stale: config.max_stale(),
            cooldown: Duration::from_secs(30),
        };
        let fetcher = Fetcher::new(
            Duration::from_secs(1),
            Duration::from_secs(1),
            &[],
            &tower_auth_http::Proxies::none(),
        )
        .unwrap();
        Source::new(
            Arc::clone(&config.issuers[0]),
            timing,
            fetcher,
            Handle::current(),
        )
    }

    #[tokio::test]
    async fn refresh_comes_up_to_a_tenth_early() {
        let s = source(1000);
        for _ in 0..50 {
            let d = s.next_delay();
            assert!(
                d > Duration::from_secs(900) && d <= Duration::from_secs(1000),
                "{d:?}"
            );
        }
    }

    #[tokio::test]
    async fn failures_back_off_exponentially_with_jitter_capped_by_the_interval() {
        let s = source(100);
        for (failures, low, high) in [
            (1, 500, 1000),
            (2, 1000, 2000),
            (4, 4000, 8000),
            (12, 50_000, 100_000),
        ] {
            lock(&s.state).failures = failures;
            for _ in 0..20 {
                let d = s.next_delay().as_millis();
                assert!(d >= low && d <= high, "{failures}: {d}");
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_holds_off_retries_and_on_demand_fetches() {
        let s = source(100);
        {
            let mut state = lock(&s.state);
            state.failures = 1;
            state.not_before = Some(Instant::now() + Duration::from_secs(120));
        }
        assert!(s.next_delay() >= Duration::from_secs(119));
        assert!(s.request_fetch().is_none());
        let hint = s.retry_hint().unwrap();
        assert!(hint > Duration::from_secs(100) && hint <= Duration::from_secs(120));
        let snapshot = s.snapshot();
        assert_eq!(
            s.check_fresh(&snapshot, Instant::now())
                .unwrap_err()
                .retry_after(),
            Some(hint)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn negative_cache_lives_for_the_cooldown_and_is_bounded() {
        // A refresh interval of an hour; the cooldown is 30 s.
        let s = source(3600);
        s.remember_unknown("k");
        assert!(s.is_known_unknown("k") && !s.is_known_unknown("other"));
        for i in 0..MAX_NEGATIVE + 1 {
            s.remember_unknown(&i.to_string());
        }
        assert!(lock(&s.negative).len() <= MAX_NEGATIVE);
        let last = MAX_NEGATIVE.to_string();
        tokio::time::advance(Duration::from_secs(29)).await;
        assert!(s.is_known_unknown(&last));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!s.is_known_unknown(&last));
        assert!(
            lock(&s.negative).get(last.as_str()).is_none(),
            "expired entries are removed"
        );
    }

    /// An issuer on 127.0.0.1 whose discovery document is `document`, with `{issuer}`
    /// standing for the issuer URL.
    async fn issuer_serving(document: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let body = document.replace("{issuer}", &issuer);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            }
        });
        issuer
    }

    #[tokio::test]
    async fn discovery_failures_keep_their_reason_codes() {
        for (document, reason, mismatch) in [
            ("<html>", "discovery_not_json", false),
            (r#"{"issuer":"{issuer}"}"#, "discovery_not_json", false),
            (
                r#"{"issuer":"{issuer}/","jwks_uri":"{issuer}/jwks"}"#,
                "discovery_issuer_mismatch",
                true,
            ),
            (
                r#"{"issuer":"{issuer}","jwks_uri":"/jwks"}"#,
                "discovery_bad_jwks_uri",
                false,
            ),
            (
                r#"{"issuer":"{issuer}","jwks_uri":"ftp://idp.example/jwks"}"#,
                "discovery_bad_jwks_uri",
                false,
            ),
        ] {
            let s = source_for(&issuer_serving(document).await, 100);
            let failure = s.discover().await.unwrap_err();
            assert_eq!(
                (failure.error.reason, failure.mismatch),
                (reason, mismatch),
                "{document}"
            );
        }
        // Plain http to a loopback host, or https anywhere, is used as discovered.
        for jwks_uri in ["{issuer}/jwks", "https://keys.example/jwks"] {
            let document = format!(r#"{{"issuer":"{{issuer}}","jwks_uri":"{jwks_uri}"}}"#);
            let issuer = issuer_serving(&document).await;
            let s = source_for(&issuer, 100);
            let expected = jwks_uri.replace("{issuer}", &issuer);
            assert_eq!(
                s.discover().await.ok().map(|u| u.to_string()),
                Some(expected)
            );
        }
    }

    /// SECURITY.md F17.
    #[tokio::test]
    async fn a_discovered_plain_http_jwks_uri_off_loopback_is_a_failed_refresh() {
        for jwks_uri in [
            "http://keys.example/jwks",
            "http://localhost.:9/jwks",
            "http://10.0.0.1/jwks",
            "HTTP://keys.example/jwks",
        ] {
            let document = format!(r#"{{"issuer":"{{issuer}}","jwks_uri":"{jwks_uri}"}}"#);
            let s = source_for(&issuer_serving(&document).await, 100);
            let failure = s.discover().await.unwrap_err();
            assert_eq!(
                failure.error.reason, "discovery_jwks_uri_plain_http",
                "{jwks_uri}"
            );
            assert!(!failure.mismatch && failure.plain_http.is_some());
            // A whole refresh: counted as a failure to retry, the URI not remembered.
            Arc::clone(&s).run_fetch().await;
            let status = s.status();
            assert_eq!(status.last_error, Some("discovery_jwks_uri_plain_http"));
            assert!(!status.misconfigured && !status.available);
            assert_eq!(lock(&s.state).failures, 1);
            assert!(lock(&s.state).jwks_uri.is_none());
        }
    }
}
