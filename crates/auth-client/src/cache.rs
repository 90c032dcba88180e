//! The caching wrapper every source is used through: refresh ahead of expiry, one fetch at a
//! time, last-known-good on failure, backoff.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;
use tokio::time::Instant;

use tower_auth_core::ConfigError;

use crate::{RefreshPolicy, Token, TokenError, TokenErrorKind, TokenSource};

const TARGET: &str = "auth_client";

type Flight = watch::Receiver<Option<Result<Token, TokenError>>>;

struct Held {
    token: Token,
    refresh_at: Option<Instant>,
}

#[derive(Default)]
struct State {
    current: Option<Held>,
    flight: Option<Flight>,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<TokenError>,
    last_forced: Option<Instant>,
}

struct Inner {
    source: Box<dyn TokenSource>,
    policy: RefreshPolicy,
    state: Mutex<State>,
    fetches: AtomicU64,
}

/// Caches the tokens of a [`TokenSource`]: cheap to clone (one `Arc`), shared by every
/// clone, safe to use from any number of tasks.
///
/// - A token is reused until it is due for refresh (see [`RefreshPolicy`]). In the margin
///   before expiry the caller still gets the current token at once, and one background
///   fetch replaces it.
/// - One fetch at a time: any number of callers waiting for a token share it; it runs in
///   its own task, so a caller that gives up does not cancel it for the others.
/// - When a refresh fails, the current token is still used until it actually expires, with
///   backoff between attempts. Only when no unexpired token is held does a caller get the
///   [`TokenError`] (and, during the backoff, the last error at once, without a request).
///
/// Time is Tokio's ([`tokio::time::Instant`]), so tests drive it with `tokio::time::pause`
/// and `advance`. Fetches need a Tokio runtime.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::Duration;
/// use tower_auth_client::{FnSource, Token, TokenCache};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// tokio::time::pause();
/// let calls = Arc::new(AtomicU32::new(0));
/// let counter = calls.clone();
/// let tokens = TokenCache::new(FnSource::new(move || {
///     let n = counter.fetch_add(1, Ordering::SeqCst);
///     async move { Ok(Token::new(format!("token-{n}"), Some(Duration::from_secs(3600)))) }
/// }));
///
/// let first = tokens.token().await.unwrap();
/// tokio::time::advance(Duration::from_secs(3000)).await;
/// let again = tokens.token().await.unwrap();
/// assert_eq!(again.secret().expose_secret(), first.secret().expose_secret());
/// assert_eq!(calls.load(Ordering::SeqCst), 1);
///
/// tokio::time::advance(Duration::from_secs(601)).await; // expired
/// let fresh = tokens.token().await.unwrap();
/// assert_eq!(fresh.secret().expose_secret(), b"token-1");
/// # }
/// ```
#[derive(Clone)]
pub struct TokenCache {
    inner: Arc<Inner>,
}

impl<S: TokenSource> From<S> for TokenCache {
    fn from(source: S) -> Self {
        Self::new(source)
    }
}

impl TokenCache {
    /// A cache over `source` with the default [`RefreshPolicy`]. Nothing is fetched until
    /// the first token is asked for; see [`TokenCache::start`] to fail fast instead.
    pub fn new(source: impl TokenSource) -> Self {
        Self::build(source, RefreshPolicy::default())
    }

    /// A cache over `source` with `policy`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the setting of `policy` that is out of range (`jitter` outside
    /// 0 to 1, a `backoff` maximum below its minimum); nothing is clamped.
    pub fn with_policy(
        source: impl TokenSource,
        policy: RefreshPolicy,
    ) -> Result<Self, ConfigError> {
        policy.check()?;
        Ok(Self::build(source, policy))
    }

    fn build(source: impl TokenSource, policy: RefreshPolicy) -> Self {
        Self {
            inner: Arc::new(Inner {
                source: Box::new(source),
                policy,
                state: Mutex::new(State::default()),
                fetches: AtomicU64::new(0),
            }),
        }
    }

    /// A cache over `source` that has already fetched its first token.
    ///
    /// # Errors
    /// The [`TokenError`] of that first fetch: call this at start-up so that a rejected
    /// credential ([`TokenErrorKind::InvalidClient`]) or an unreachable endpoint stops a
    /// misconfigured caller from starting.
    pub async fn start(source: impl TokenSource) -> Result<Self, TokenError> {
        let cache = Self::new(source);
        cache.token().await?;
        Ok(cache)
    }

    /// A usable token: the cached one while it is fresh, otherwise a new one (waiting for
    /// the fetch in flight, if any).
    ///
    /// # Errors
    /// When no unexpired token is held and the fetch fails (or failed less than a backoff
    /// ago): the fetch's [`TokenError`].
    pub async fn token(&self) -> Result<Token, TokenError> {
        let fetch = {
            let mut state = self.lock();
            let now = Instant::now();
            if let (Some(token), launch) = self.usable(&mut state, now) {
                drop(state);
                if let Some(launch) = launch {
                    launch.spawn();
                }
                return Ok(token);
            }
            if state.flight.is_none()
                && let (Some(retry_at), Some(error)) = (state.retry_at, &state.last_error)
                && now < retry_at
            {
                return Err(error.clone());
            }
            self.join_or_start(&mut state)?
        };
        fetch.result().await
    }

    /// Fetches a new token now, ignoring freshness and backoff, or joins the fetch already in
    /// flight; the held token is kept if this fails.
    ///
    /// # Errors
    /// The fetch's [`TokenError`].
    pub async fn refresh(&self) -> Result<Token, TokenError> {
        let fetch = self.join_or_start(&mut self.lock())?;
        fetch.result().await
    }

    /// The held token if it has not expired, without fetching anything.
    pub fn current(&self) -> Option<Token> {
        let state = self.lock();
        let now = Instant::now();
        state
            .current
            .as_ref()
            .filter(|held| !held.token.is_expired_at(now))
            .map(|held| held.token.clone())
    }

    /// How many fetches this cache has started (successful or not).
    pub fn fetches(&self) -> u64 {
        self.inner.fetches.load(Ordering::SeqCst)
    }

    /// The refresh policy.
    pub fn policy(&self) -> &RefreshPolicy {
        &self.inner.policy
    }

    /// The held token if it is usable now, starting a background refresh when it is due;
    /// `None` when a caller has to wait for a fetch. Never waits.
    pub(crate) fn try_token(&self) -> Option<Token> {
        let mut state = self.lock();
        let (token, launch) = self.usable(&mut state, Instant::now());
        drop(state);
        if let Some(launch) = launch {
            launch.spawn();
        }
        token
    }

    /// A new token to retry with after a server rejected `rejected`, or `None` when a retry
    /// is pointless: the refresh failed, is rate-limited, or gave the same value.
    pub(crate) async fn refresh_rejected(&self, rejected: &Token) -> Option<Token> {
        let fetch = {
            let mut state = self.lock();
            let now = Instant::now();
            if let Some(held) = &state.current
                && !held.token.same_as(rejected)
                && !held.token.is_expired_at(now)
            {
                // Another request already replaced it.
                return Some(held.token.clone());
            }
            if state.flight.is_none() {
                let interval = self.inner.policy.forced_refresh_interval;
                if state.last_forced.is_some_and(|at| now < at + interval)
                    || state.retry_at.is_some_and(|at| now < at)
                {
                    return None;
                }
                state.last_forced = Some(now);
                tracing::debug!(target: TARGET, "token rejected by a server: forcing a refresh");
            }
            self.join_or_start(&mut state).ok()?
        };
        let token = fetch.result().await.ok()?;
        (!token.same_value(rejected)).then_some(token)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The held token if usable at `now`, and the background refresh to start (after the
    /// lock is released) when it is due.
    fn usable(&self, state: &mut State, now: Instant) -> (Option<Token>, Option<Launch>) {
        let Some(held) = state.current.as_ref() else {
            return (None, None);
        };
        if held.token.is_expired_at(now) {
            return (None, None);
        }
        let token = held.token.clone();
        let due = held.refresh_at.is_some_and(|at| now >= at);
        let mut launch = None;
        if due && state.flight.is_none() && state.retry_at.is_none_or(|at| now >= at) {
            // The caller goes on with the current token; the refresh happens beside it.
            launch = self.launch(state).ok().map(|(_, launch)| launch);
        }
        (Some(token), launch)
    }

    /// The one way a caller gets a fetch to wait for: it joins the fetch in flight, or
    /// records a new one (spawned by [`Fetch::result`], once the state lock is released).
    fn join_or_start(&self, state: &mut State) -> Result<Fetch, TokenError> {
        if let Some(flight) = &state.flight {
            return Ok(Fetch {
                flight: flight.clone(),
                launch: None,
            });
        }
        let (flight, launch) = self.launch(state)?;
        Ok(Fetch {
            flight,
            launch: Some(launch),
        })
    }

    /// Records a new fetch as the one in flight. The caller spawns it with
    /// [`Launch::spawn`] once the state lock is released: a task dropped at once (a runtime
    /// shutting down) completes its flight, which takes that lock.
    fn launch(&self, state: &mut State) -> Result<(Flight, Launch), TokenError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| TokenError::new(TokenErrorKind::Other, "no_tokio_runtime"))?;
        let (tx, rx) = watch::channel(None);
        state.flight = Some(rx.clone());
        self.inner.fetches.fetch_add(1, Ordering::SeqCst);
        let launch = Launch {
            runtime,
            tx,
            guard: FlightGuard {
                inner: Arc::clone(&self.inner),
                done: false,
            },
        };
        Ok((rx, launch))
    }
}

/// A fetch to wait for: joined, or new and to be spawned by whoever waits for it first.
struct Fetch {
    flight: Flight,
    launch: Option<Launch>,
}

impl Fetch {
    /// Spawns the fetch if it is new, then waits for its outcome, which every waiter shares.
    async fn result(self) -> Result<Token, TokenError> {
        if let Some(launch) = self.launch {
            launch.spawn();
        }
        wait(self.flight).await
    }
}

/// A fetch recorded as in flight, to be spawned.
struct Launch {
    runtime: tokio::runtime::Handle,
    tx: watch::Sender<Option<Result<Token, TokenError>>>,
    guard: FlightGuard,
}

impl Launch {
    fn spawn(self) {
        let Self {
            runtime,
            tx,
            mut guard,
        } = self;
        runtime.spawn(async move {
            let inner = Arc::clone(&guard.inner);
            let result = tokio::time::timeout(inner.policy.fetch_timeout, inner.source.fetch())
                .await
                .unwrap_or_else(|_| {
                    Err(TokenError::new(
                        TokenErrorKind::Unavailable,
                        "fetch_timeout",
                    ))
                });
            let result = inner.complete(result);
            guard.disarm();
            let _ = tx.send(Some(result));
        });
    }
}

/// Clears the flight if its task ends without completing (a panicking source, a runtime
/// shutting down), so that the next caller starts a new fetch instead of waiting forever.
struct FlightGuard {
    inner: Arc<Inner>,
    done: bool,
}

impl FlightGuard {
    fn disarm(&mut self) {
        self.done = true;
    }
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.inner.complete(Err(abandoned()));
        }
    }
}

impl Inner {
    /// Records the outcome of the fetch in flight and returns what its waiters get.
    fn complete(&self, result: Result<Token, TokenError>) -> Result<Token, TokenError> {
        let result = result.and_then(|token| {
            // Checked once here, so that a held token always makes a valid header.
            if token.authorization().is_none() {
                return Err(TokenError::new(
                    TokenErrorKind::InvalidResponse,
                    "token_not_b64token",
                ));
            }
            if token.is_expired_at(Instant::now()) {
                return Err(TokenError::new(
                    TokenErrorKind::InvalidResponse,
                    "expired_on_arrival",
                ));
            }
            Ok(token)
        });
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.flight = None;
        match &result {
            Ok(token) => {
                let refresh_at = Some(self.policy.due_at(token.received_at(), token.lifetime()));
                tracing::debug!(
                    target: TARGET,
                    expires_in = ?token.expires_in(),
                    refresh_in = ?refresh_at.map(|at| at.saturating_duration_since(now)),
                    "access token obtained"
                );
                state.current = Some(Held {
                    token: token.clone(),
                    refresh_at,
                });
                state.failures = 0;
                state.retry_at = None;
                state.last_error = None;
            }
            Err(error) => {
                state.failures = state.failures.saturating_add(1);
                let wait = self
                    .policy
                    .backoff_after(state.failures, error.retry_after());
                state.retry_at = Some(now + wait);
                state.last_error = Some(error.clone());
                let kept = state
                    .current
                    .as_ref()
                    .and_then(|held| held.token.expires_in())
                    .filter(|left| !left.is_zero());
                tracing::warn!(
                    target: TARGET,
                    kind = ?error.kind(),
                    reason = error.reason(),
                    oauth_error = error.oauth_error(),
                    failures = state.failures,
                    retry_in = ?wait,
                    current_token_expires_in = ?kept,
                    "access token fetch failed{}",
                    if kept.is_some() { "; the current token is used until it expires" } else { "" }
                );
            }
        }
        result
    }
}

async fn wait(mut flight: Flight) -> Result<Token, TokenError> {
    match flight.wait_for(Option::is_some).await {
        Ok(result) => result.clone().unwrap_or_else(|| Err(abandoned())),
        Err(_) => Err(abandoned()),
    }
}

fn abandoned() -> TokenError {
    TokenError::new(TokenErrorKind::Other, "fetch_abandoned")
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("TokenCache")
            .field("token", &state.current.as_ref().map(|held| &held.token))
            .field("fetching", &state.flight.is_some())
            .field("failures", &state.failures)
            .field("last_error", &state.last_error)
            .field("fetches", &self.fetches())
            .field("policy", &self.inner.policy)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::FnSource;
    use std::sync::atomic::AtomicU32;

    /// A source handing out `token-0`, `token-1`, ... living `lifetime`, failing while `fail` is set.
    fn counting(lifetime: Duration) -> (FnSource, Arc<AtomicU32>, Arc<Mutex<Option<TokenError>>>) {
        let calls = Arc::new(AtomicU32::new(0));
        let fail: Arc<Mutex<Option<TokenError>>> = Arc::default();
        let (counter, failure) = (calls.clone(), fail.clone());
        let source = FnSource::new(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let failure = failure.lock().unwrap().clone();
            async move {
                match failure {
                    Some(error) => Err(error),
                    None => Ok(Token::new(format!("token-{n}"), Some(lifetime))),
                }
            }
        });
        (source, calls, fail)
    }

    fn value(token: &Token) -> String {
        String::from_utf8(token.secret().expose_secret().to_vec()).unwrap()
    }

    /// Lets spawned fetches run to completion (paused time, no I/O).
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn refreshes_in_the_margin_in_the_background() {
        let (source, calls, _) = counting(Duration::from_secs(3600));
        let tokens = TokenCache::with_policy(source, RefreshPolicy::default().jitter(0.0)).unwrap();
        assert_eq!(value(&tokens.token().await.unwrap()), "token-0");
        tokio::time::advance(Duration::from_secs(3239)).await;
        assert_eq!(value(&tokens.token().await.unwrap()), "token-0");
        assert_eq!(tokens.fetches(), 1);
        tokio::time::advance(Duration::from_secs(1)).await;
        // Due: the caller is not held up, the refresh starts beside it.
        assert_eq!(value(&tokens.token().await.unwrap()), "token-0");
        assert_eq!(tokens.fetches(), 2);
        assert_eq!(value(&tokens.refresh().await.unwrap()), "token-1");
        assert_eq!(tokens.fetches(), 2, "refresh joined the fetch in flight");
        assert_eq!(value(&tokens.token().await.unwrap()), "token-1");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    /// SECURITY.md O5.
    #[tokio::test(start_paused = true)]
    async fn a_token_without_a_known_expiry_is_refreshed_on_the_period() {
        let calls = Arc::new(AtomicU32::new(0));
        let counter = calls.clone();
        let source = FnSource::new(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move { Ok(Token::new(format!("token-{n}"), None)) }
        });
        let policy =
            RefreshPolicy::default().refresh_unknown_expiry_every(Duration::from_secs(600));
        let tokens = TokenCache::with_policy(source, policy).unwrap();
        assert_eq!(value(&tokens.token().await.unwrap()), "token-0");
        tokio::time::advance(Duration::from_secs(599)).await;
        assert_eq!(value(&tokens.token().await.unwrap()), "token-0");
        assert_eq!(tokens.fetches(), 1);
        tokio::time::advance(Duration::from_secs(1)).await;
        tokens.token().await.unwrap();
        settle().await;
        assert_eq!(value(&tokens.token().await.unwrap()), "token-1");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_refresh_keeps_the_token_until_expiry_with_backoff() {
        let (source, calls, fail) = counting(Duration::from_secs(600));
        let tokens = TokenCache::with_policy(source, RefreshPolicy::default().jitter(0.0)).unwrap();
        tokens.token().await.unwrap();
        *fail.lock().unwrap() = Some(TokenError::new(
            TokenErrorKind::Unavailable,
            "connect_failed",
        ));
        tokio::time::advance(Duration::from_secs(300)).await;
        assert_eq!(value(&tokens.token().await.unwrap()), "token-0");
        settle().await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // Within the backoff: no new attempt, the current token is served.
        for _ in 0..5 {
            assert_eq!(value(&tokens.token().await.unwrap()), "token-0");
        }
        settle().await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        tokio::time::advance(Duration::from_secs(1)).await;
        tokens.token().await.unwrap();
        settle().await;
        assert_eq!(calls.load(Ordering::SeqCst), 3, "retried after the backoff");

        tokio::time::advance(Duration::from_secs(299)).await;
        let err = tokens.token().await.unwrap_err();
        assert_eq!(
            (err.kind(), err.reason()),
            (TokenErrorKind::Unavailable, "connect_failed")
        );
        assert!(tokens.current().is_none());
        // During the backoff the error comes at once, without a request.
        let before = calls.load(Ordering::SeqCst);
        assert!(tokens.token().await.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), before);

        *fail.lock().unwrap() = None;
        tokio::time::advance(Duration::from_secs(120)).await;
        assert!(value(&tokens.token().await.unwrap()).starts_with("token-"));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_fetch() {
        let calls = Arc::new(AtomicU32::new(0));
        let counter = calls.clone();
        let tokens = TokenCache::new(FnSource::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok(Token::new("shared", Some(Duration::from_secs(60))))
            }
        }));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..100 {
            let tokens = tokens.clone();
            tasks.spawn(async move { tokens.token().await });
        }
        while let Some(result) = tasks.join_next().await {
            assert_eq!(value(&result.unwrap().unwrap()), "shared");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_caller_does_not_cancel_the_fetch() {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let rx = Arc::new(Mutex::new(rx));
        let tokens = TokenCache::new(FnSource::new(move || {
            let mut rx = rx.lock().unwrap().clone();
            async move {
                let _ = rx.wait_for(|open| *open).await;
                Ok(Token::new("late", None))
            }
        }));
        let waiting = tokio::time::timeout(Duration::from_millis(10), tokens.token()).await;
        assert!(waiting.is_err(), "still fetching");
        tx.send_replace(true);
        assert_eq!(value(&tokens.token().await.unwrap()), "late");
        assert_eq!(tokens.fetches(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_source_is_an_error_not_a_hang() {
        let tokens = TokenCache::new(FnSource::new(|| async {
            if true {
                panic!("source bug");
            }
            Ok(Token::new("never", None))
        }));
        let err = tokens.token().await.unwrap_err();
        assert_eq!(err.reason(), "fetch_abandoned");
    }

    #[tokio::test(start_paused = true)]
    async fn hanging_source_times_out() {
        let tokens = TokenCache::with_policy(
            FnSource::new(std::future::pending),
            RefreshPolicy::default().fetch_timeout(Duration::from_secs(2)),
        )
        .unwrap();
        let err = tokens.token().await.unwrap_err();
        assert_eq!(
            (err.kind(), err.reason()),
            (TokenErrorKind::Unavailable, "fetch_timeout")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_that_cannot_be_sent_are_refused() {
        let tokens = TokenCache::new(FnSource::new(|| async { Ok(Token::new("a b", None)) }));
        let err = tokens.token().await.unwrap_err();
        assert_eq!(
            (err.kind(), err.reason()),
            (TokenErrorKind::InvalidResponse, "token_not_b64token")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_expired_on_arrival_is_refused() {
        let tokens = TokenCache::new(FnSource::new(|| async {
            Ok(Token::new("late", Some(Duration::ZERO)))
        }));
        let err = tokens.token().await.unwrap_err();
        assert_eq!(
            (err.kind(), err.reason()),
            (TokenErrorKind::InvalidResponse, "expired_on_arrival")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn forced_refreshes_are_rate_limited_and_coalesced() {
        let (source, calls, _) = counting(Duration::from_secs(3600));
        let tokens = TokenCache::new(source);
        let first = tokens.token().await.unwrap();
        let second = tokens.refresh_rejected(&first).await.unwrap();
        assert_eq!(value(&second), "token-1");
        // A request that still carried the first token gets the second without a fetch.
        assert_eq!(
            value(&tokens.refresh_rejected(&first).await.unwrap()),
            "token-1"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // The second is rejected too: not again within 5 s.
        assert!(tokens.refresh_rejected(&second).await.is_none());
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(
            value(&tokens.refresh_rejected(&second).await.unwrap()),
            "token-2"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn debug_never_shows_the_token() {
        let tokens = TokenCache::new(FnSource::new(|| async {
            Ok(Token::new(
                "very-secret-token-value",
                Some(Duration::from_secs(60)),
            ))
        }));
        tokens.token().await.unwrap();
        let debug = format!("{tokens:?}");
        assert!(!debug.contains("very-secret"), "{debug}");
        assert!(debug.contains("[redacted]"), "{debug}");
    }
}
