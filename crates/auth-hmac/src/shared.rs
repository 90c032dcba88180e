//! A [`RevocationList`] shared by replicas through Redis (feature `redis`).
//!
//! Each replica keeps its local list, which is all the request path looks at. Redis holds
//! the unexpired revocations in a sorted set scored by expiry (`<namespace>:revoked`,
//! members `["jti","sub"]`) and announces each new one in a stream
//! (`<namespace>:revocations`, capped). A replica loads the set at start, then follows the
//! stream from the last id it saw; after any error it reloads the set (and the stream's
//! last id) in one transaction, so nothing written in between is missed. Revocations made
//! locally are queued and written (set and stream in one transaction) by a writer task,
//! retried until Redis takes them.
//!
//! Subject cut-offs travel the same way: a sorted set `<namespace>:cutoffs` scored by the
//! second the cut-off is dropped, which is `before` plus `SUBJECT_CUTOFF_KEEP` (one member
//! per subject, `["hmac"|"oidc","issuer","sub"]`), and stream
//! entries with `kind=cutoff` and fields `method`, `issuer`, `sub`, `before`, `until`.

use std::collections::VecDeque;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{StreamRangeReply, StreamReadReply};
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tower_auth_core::{AuthError, ConfigError};

use crate::RevocationList;
use crate::revocation::{By, Inserted};

/// How long start-up waits for Redis (connection and first load) before going on without
/// it; the background task keeps trying.
pub const REDIS_START_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the local copy is trusted while Redis is unreachable, unless told otherwise.
pub const DEFAULT_REDIS_MAX_STALE: Duration = Duration::from_secs(60);

/// The longest `AUTH_REDIS_MAX_STALE_SECS` accepted: a day.
pub const MAX_REDIS_MAX_STALE: Duration = Duration::from_secs(86_400);

/// `Retry-After` of the 503 answered while the copy is too stale (`closed`).
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// How long one `XREAD` waits for news; a reply, even empty, proves the copy current.
const READ_BLOCK: Duration = Duration::from_millis(500);
/// Every command's answer must come within this (longer than [`READ_BLOCK`]).
pub(crate) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Reconnection backoff: from this, doubling, with full jitter...
pub(crate) const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// ...up to this.
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Stream entries kept for followers: a follower that falls further behind reloads the set.
const STREAM_MAX_LEN: usize = 10_000;
/// Revocations written in one transaction, and stream entries read at once.
const BATCH: usize = 1_000;
/// How often `open` repeats its error event while serving a stale copy.
const STALE_EVENT_EVERY: Duration = Duration::from_secs(60);

/// What a replica does once its copy is older than the max staleness (`AUTH_REDIS_FAILURE`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RedisFailure {
    /// Role tokens get 503 with `Retry-After` until Redis is back (the default).
    #[default]
    Closed,
    /// Role tokens are still checked against the stale copy; an error event every minute.
    Open,
}

/// Where and how a [`RevocationList`] is shared: a `redis://` or `rediss://` URL (with the
/// CAs trusted for TLS), the failure mode and the maximum staleness of the local copy.
/// `Debug` shows neither the URL nor its password.
#[derive(Clone)]
pub struct RedisSettings {
    client: redis::Client,
    failure: RedisFailure,
    max_stale: Duration,
}

impl fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSettings")
            .field("tls", &self.is_tls())
            .field("failure", &self.failure)
            .field("max_stale", &self.max_stale)
            .finish_non_exhaustive()
    }
}

impl RedisSettings {
    /// Settings for the Redis at `url` (`redis://` or, for TLS, `rediss://`, then
    /// `[user:password@]host[:port][/db]`), failing closed after [`DEFAULT_REDIS_MAX_STALE`].
    /// `rediss://` trusts the platform's certificate store (add a private CA with
    /// [`ca`](Self::ca)) and makes the crypto backend of this build the process-wide default of
    /// rustls if none is installed. The error never quotes the URL, which may hold a password.
    ///
    /// # Errors
    /// Not a `redis://` or `rediss://` URL with a host; a `#fragment` (`#insecure` would skip
    /// the certificate check); a query parameter other than `protocol`; `rediss://` in a build
    /// without a crypto backend.
    pub fn new(url: &str) -> Result<Self, String> {
        let url = url.trim();
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        let tls = match scheme.as_deref() {
            Some("redis") => false,
            Some("rediss") => true,
            _ => return Err("is not a redis:// or rediss:// URL".into()),
        };
        if url.contains('#') {
            return Err("has a #fragment: the server's certificate is always checked (trust a private CA with AUTH_REDIS_CA_FILE)".into());
        }
        if let Some((_, query)) = url.split_once('?')
            && form_urlencoded::parse(query.as_bytes()).any(|(key, _)| key != "protocol")
        {
            return Err("has a query parameter other than `protocol` (the CA of rediss:// is given by AUTH_REDIS_CA_FILE)".into());
        }
        let invalid = "is not a valid redis:// or rediss:// URL (host, port, database, credentials, protocol)";
        let client = redis::Client::open(url).map_err(|_| invalid)?;
        if !matches!(
            client.get_connection_info().addr(),
            redis::ConnectionAddr::Tcp(host, _) | redis::ConnectionAddr::TcpTls { host, .. } if !host.is_empty()
        ) {
            return Err("names no host".into());
        }
        let settings = Self {
            client,
            failure: RedisFailure::Closed,
            max_stale: DEFAULT_REDIS_MAX_STALE,
        };
        if tls {
            return settings.trusting(&[]);
        }
        Ok(settings)
    }

    /// The client of the configured Redis, for other state shared through it (tower-auth's
    /// DPoP replay memory). Never log it: its connection details may hold a password.
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// Trusts the CAs of `bundle` for `rediss://`, besides the platform's certificate store.
    ///
    /// # Errors
    /// The URL is `redis://`: a CA there would suggest a TLS connection that is not made.
    pub fn ca(self, bundle: &tower_auth_http::CaBundle) -> Result<Self, String> {
        if !self.is_tls() {
            return Err("is set but the URL is redis://, not rediss:// (TLS)".into());
        }
        self.trusting(&[bundle])
    }

    fn trusting(mut self, extra: &[&tower_auth_http::CaBundle]) -> Result<Self, String> {
        // redis builds its rustls configuration with the process-wide default provider.
        tower_auth_http::install_default_tls_provider().map_err(|e| e.to_string())?;
        let roots = tower_auth_http::trusted_certificates_pem(extra);
        let certificates = redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(roots.into_bytes()),
        };
        self.client =
            redis::Client::build_with_tls(self.client.get_connection_info().clone(), certificates)
                .map_err(|_| "its trusted certificates were refused by the Redis client")?;
        Ok(self)
    }

    /// Whether the connection is TLS (`rediss://`).
    #[must_use]
    pub fn is_tls(&self) -> bool {
        matches!(
            self.client.get_connection_info().addr(),
            redis::ConnectionAddr::TcpTls { .. }
        )
    }

    /// A connection to this Redis, made on first use (this never waits for Redis) and remade
    /// after an error, with the timeouts and jittered backoff every Redis user of tower-auth
    /// shares: connection in 1 s, answers in 2 s, retries from 100 ms up to 5 s. Over
    /// `rediss://` the server's certificate is checked against the trusted roots; a server
    /// that fails the check is never spoken to, as if Redis were down.
    ///
    /// # Errors
    /// None in practice for checked settings; the Redis client's own, should it refuse.
    /// Call it inside a Tokio runtime.
    pub fn connect(&self) -> redis::RedisResult<ConnectionManager> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_min_delay(BACKOFF_MIN)
            .set_max_delay(BACKOFF_MAX)
            .set_number_of_retries(2);
        ConnectionManager::new_lazy_with_config(self.client.clone(), config)
    }

    /// What replicas do once Redis cannot answer (`AUTH_REDIS_FAILURE`).
    pub fn failure_mode(&self) -> RedisFailure {
        self.failure
    }

    /// What to do once the copy is older than the max staleness.
    #[must_use]
    pub fn failure(mut self, failure: RedisFailure) -> Self {
        self.failure = failure;
        self
    }

    /// How long the local copy is trusted while Redis is unreachable.
    #[must_use]
    pub fn max_stale(mut self, max_stale: Duration) -> Self {
        self.max_stale = max_stale;
        self
    }

    /// `AUTH_REDIS_URL`, `AUTH_REDIS_FAILURE` (`open` or `closed`, default `closed`),
    /// `AUTH_REDIS_MAX_STALE_SECS` (1 to 86400, default 60) and `AUTH_REDIS_CA_FILE` (a PEM
    /// bundle of CAs trusted for `rediss://`, besides the platform's store), each name
    /// prefixed with `prefix`; `None` when `AUTH_REDIS_URL` is unset.
    ///
    /// # Errors
    /// A value that is not as described (a CA file that cannot be read or holds no
    /// well-formed certificate, or one with a `redis://` URL), or `AUTH_REDIS_FAILURE`,
    /// `AUTH_REDIS_MAX_STALE_SECS` or `AUTH_REDIS_CA_FILE` without `AUTH_REDIS_URL`; the error
    /// names the variable.
    pub fn from_lookup(
        prefix: &str,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, ConfigError> {
        let name = |suffix: &str| format!("{prefix}{suffix}");
        let url_var = name("AUTH_REDIS_URL");
        let failure_var = name("AUTH_REDIS_FAILURE");
        let stale_var = name("AUTH_REDIS_MAX_STALE_SECS");
        let ca_var = name("AUTH_REDIS_CA_FILE");
        let failure = get(&failure_var);
        let stale = get(&stale_var);
        let ca_file = get(&ca_var);
        let Some(url) = get(&url_var) else {
            for (var, value) in [
                (&failure_var, &failure),
                (&stale_var, &stale),
                (&ca_var, &ca_file),
            ] {
                if value.is_some() {
                    return Err(ConfigError::new(
                        var,
                        format!("is set but {url_var} is not"),
                    ));
                }
            }
            return Ok(None);
        };
        let mut settings = Self::new(&url).map_err(|e| ConfigError::new(&url_var, e))?;
        if let Some(path) = ca_file {
            let path = path.trim();
            if path.is_empty() {
                return Err(ConfigError::new(ca_var, "is empty"));
            }
            let bundle = tower_auth_http::CaBundle::read(std::path::Path::new(path))
                .map_err(|e| ConfigError::new(&ca_var, format!("{path}: {e}")))?;
            settings = settings
                .ca(&bundle)
                .map_err(|e| ConfigError::new(&ca_var, e))?;
        }
        if let Some(failure) = failure {
            settings.failure = match failure.trim() {
                "closed" => RedisFailure::Closed,
                "open" => RedisFailure::Open,
                _ => {
                    return Err(ConfigError::new(failure_var, "must be `open` or `closed`"));
                }
            };
        }
        if let Some(stale) = stale {
            let max = MAX_REDIS_MAX_STALE.as_secs();
            settings.max_stale = match stale.trim().parse::<u64>() {
                Ok(secs) if (1..=max).contains(&secs) => Duration::from_secs(secs),
                _ => {
                    return Err(ConfigError::new(
                        stale_var,
                        format!("must be a whole number of seconds from 1 to {max}"),
                    ));
                }
            };
        }
        Ok(Some(settings))
    }
}

/// One revocation as written to Redis.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Record {
    jti: Box<str>,
    sub: Box<str>,
    until: u64,
}

/// The state a shared list and its tasks have in common.
pub(crate) struct Shared {
    failure: RedisFailure,
    max_stale_ms: u64,
    /// The origin of the millisecond counts below (tokio's clock: tests can move it).
    base: Instant,
    /// Whether the last exchange with Redis worked: the copy is current.
    connected: AtomicBool,
    /// When the copy was last known current, in ms since `base` (start-up if never).
    synced_ms: AtomicU64,
    /// Local revocations not yet written to Redis, oldest first.
    queue: Mutex<VecDeque<Record>>,
    queued: Notify,
    /// Wakes a writer waiting out its backoff when the follower finds Redis back.
    reconnected: Notify,
    /// Set when the [`RedisSync`] guard is dropped: the list is local again.
    stopped: AtomicBool,
    /// Local subject cut-offs not yet written to Redis, oldest first.
    cutoff_queue: Mutex<VecDeque<CutoffRecord>>,
}

/// A member of `<namespace>:cutoffs`: `["method","issuer","sub"]`, its `before` given by its
/// score; or, as written by earlier versions, with `before` as a fourth element.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum CutoffMember {
    Subject(String, String, String),
    WithBefore(String, String, String, u64),
}

/// One subject cut-off as written to Redis.
#[derive(Clone, Debug, PartialEq, Eq)]
struct CutoffRecord {
    method: &'static str,
    issuer: Box<str>,
    sub: Box<str>,
    before: u64,
    until: u64,
}

impl Shared {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn staleness_ms(&self) -> u64 {
        self.now_ms()
            .saturating_sub(self.synced_ms.load(Ordering::Acquire))
    }

    fn mark_synced(&self) {
        self.synced_ms.store(self.now_ms(), Ordering::Release);
        if !self.connected.swap(true, Ordering::AcqRel) {
            tracing::info!(target: "auth", event = "redis_connected", "revocations in sync with Redis");
            // Whatever waited for the connection is tried now.
            self.reconnected.notify_one();
        }
    }

    /// The error role tokens get instead of a check against a copy too stale to trust.
    pub(crate) fn unavailable(&self) -> Option<AuthError> {
        if self.connected.load(Ordering::Acquire)
            || self.failure == RedisFailure::Open
            || self.stopped.load(Ordering::Relaxed)
        {
            return None;
        }
        (self.staleness_ms() > self.max_stale_ms)
            .then(|| AuthError::unavailable("revocations_stale", Some(RETRY_AFTER)))
    }

    /// Queues a local revocation for Redis.
    pub(crate) fn publish(&self, jti: &str, sub: &str, until: u64) {
        if self.stopped.load(Ordering::Relaxed) {
            return;
        }
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(Record {
                jti: jti.into(),
                sub: sub.into(),
                until,
            });
        self.queued.notify_one();
    }

    fn pending(&self) -> usize {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
            + self
                .cutoff_queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len()
    }

    /// Queues a local subject cut-off for Redis.
    pub(crate) fn publish_cutoff(
        &self,
        method: &tower_auth_core::AuthMethod,
        sub: &str,
        cutoff: crate::cutoff::Cutoff,
    ) {
        let Some((method, issuer)) = crate::cutoff::method_parts(method) else {
            return;
        };
        if self.stopped.load(Ordering::Relaxed) {
            return;
        }
        self.cutoff_queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(CutoffRecord {
                method,
                issuer: issuer.into(),
                sub: sub.into(),
                before: cutoff.before,
                until: cutoff.until,
            });
        self.queued.notify_one();
    }
}

/// The keys of one namespace.
#[derive(Clone)]
struct Keys {
    set: String,
    stream: String,
    /// A random value set by the first replica that finds it missing: a Redis that lost
    /// its data (restarted without persistence, flushed) is told by its new epoch.
    epoch: String,
    /// The subject cut-offs, scored by the second each is dropped.
    cutoffs: String,
}

/// The background tasks that keep a list shared: they end when this is dropped, and the
/// list is then local again (revocations not yet written to Redis stay local).
#[must_use = "sharing stops when the guard is dropped"]
pub struct RedisSync {
    tasks: [AbortHandle; 2],
    shared: Arc<Shared>,
}

impl fmt::Debug for RedisSync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSync")
            .field("connected", &self.is_connected())
            .field("pending", &self.shared.pending())
            .finish()
    }
}

impl Drop for RedisSync {
    fn drop(&mut self) {
        // The list stays in use, local again: nothing more is queued, and it is never stale.
        self.shared.stopped.store(true, Ordering::Relaxed);
        self.shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.shared
            .cutoff_queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl RedisSync {
    /// Whether the last exchange with Redis worked (the local copy is current).
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Acquire)
    }

    /// How many local revocations wait to be written to Redis.
    pub fn pending(&self) -> usize {
        self.shared.pending()
    }

    /// How long ago the local copy was last known current.
    pub fn staleness(&self) -> Duration {
        Duration::from_millis(self.shared.staleness_ms())
    }
}

/// Why a list could not be shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShareError {
    /// The list is shared already.
    AlreadyShared,
    /// Not called inside a Tokio runtime, which runs the background tasks.
    NoRuntime,
}

impl fmt::Display for ShareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AlreadyShared => "the revocation list is shared already",
            Self::NoRuntime => "sharing revocations through Redis needs a Tokio runtime",
        })
    }
}

impl std::error::Error for ShareError {}

impl RevocationList {
    /// Shares this list with every replica using the same Redis and `namespace` (the key
    /// prefix; tower-auth uses `tower-auth:<HMAC issuer>`).
    ///
    /// Tries once, for at most [`REDIS_START_TIMEOUT`], to load the revocations held in
    /// Redis, then returns whether that worked or not (a down Redis never stops start-up)
    /// and keeps the list current in the background: new revocations from other replicas
    /// arrive within about a second; after a lost connection the task reconnects with
    /// jittered exponential backoff and reloads everything. Revocations made here (those
    /// held already included) are written to Redis, queued while it is unreachable.
    ///
    /// While Redis is unreachable the list keeps answering; once it is older than the
    /// settings' max staleness (counted from start-up when Redis never answered),
    /// [`RedisFailure::Closed`] makes [`HmacAuthenticator`](crate::HmacAuthenticator)
    /// answer 503 for role tokens.
    ///
    /// # Errors
    /// [`ShareError`].
    pub async fn share_through_redis(
        &self,
        settings: RedisSettings,
        namespace: &str,
    ) -> Result<RedisSync, ShareError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ShareError::NoRuntime)?;
        let shared = Arc::new(Shared {
            failure: settings.failure,
            max_stale_ms: u64::try_from(settings.max_stale.as_millis()).unwrap_or(u64::MAX),
            base: Instant::now(),
            connected: AtomicBool::new(false),
            synced_ms: AtomicU64::new(0),
            queue: Mutex::new(VecDeque::new()),
            queued: Notify::new(),
            reconnected: Notify::new(),
            stopped: AtomicBool::new(false),
            cutoff_queue: Mutex::new(VecDeque::new()),
        });
        if !self.attach(Arc::clone(&shared)) {
            return Err(ShareError::AlreadyShared);
        }
        let keys = Keys {
            set: format!("{namespace}:revoked"),
            stream: format!("{namespace}:revocations"),
            epoch: format!("{namespace}:epoch"),
            cutoffs: format!("{namespace}:cutoffs"),
        };
        // What this replica holds already (AUTH_REVOCATION_FILE) is everyone's too.
        for (jti, sub, until) in self.unexpired() {
            shared.publish(&jti, &sub, until);
        }
        let now = self.clock().now_unix();
        for (method, sub, cutoff) in self.cutoffs().unexpired(now) {
            shared.publish_cutoff(&method, &sub, cutoff);
        }
        let (reader, writer) = (settings.connect(), settings.connect());
        let mut follower = Follower {
            list: self.clone(),
            shared: Arc::clone(&shared),
            keys: keys.clone(),
            last_id: None,
            epoch: None,
        };
        let writer = match writer {
            Ok(writer) => writer,
            Err(e) => unreachable_client(e),
        };
        let mut reader = match reader {
            Ok(reader) => reader,
            Err(e) => unreachable_client(e),
        };
        match tokio::time::timeout(REDIS_START_TIMEOUT, follower.reload(&mut reader)).await {
            Ok(Ok(())) => shared.mark_synced(),
            Ok(Err(e)) => start_failed(&format!("{:?}", e.kind())),
            Err(_) => start_failed("no answer in time"),
        }
        let read = runtime.spawn(follower.run(reader));
        let write = runtime.spawn(write_queue(
            Arc::clone(&shared),
            writer,
            keys,
            self.clock().clone(),
        ));
        Ok(RedisSync {
            tasks: [read.abort_handle(), write.abort_handle()],
            shared,
        })
    }
}

/// A lazy connection manager fails only for a client it cannot use at all; ours is checked
/// in [`RedisSettings::new`].
fn unreachable_client(e: redis::RedisError) -> ! {
    unreachable!("a checked redis:// client is usable: {:?}", e.kind())
}

fn start_failed(why: &str) {
    tracing::error!(target: "auth", event = "redis_unavailable", error = why, "Redis did not answer at start: serving the local revocation list, retrying in the background");
}

/// A random delay in `[0, BACKOFF_MIN * 2^failures]`, capped at [`BACKOFF_MAX`].
pub(crate) fn backoff(failures: u32) -> Duration {
    let ceiling = BACKOFF_MIN
        .saturating_mul(1 << failures.min(16))
        .min(BACKOFF_MAX);
    let random = RandomState::new().build_hasher().finish();
    let millis = u64::try_from(ceiling.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    Duration::from_millis(random % (millis + 1)).max(Duration::from_millis(10))
}

/// Follows the stream into the local list.
struct Follower {
    list: RevocationList,
    shared: Arc<Shared>,
    keys: Keys,
    /// The last stream id applied; `None` until a reload.
    last_id: Option<String>,
    /// The epoch of the Redis last loaded from.
    epoch: Option<String>,
}

impl Follower {
    async fn run(mut self, mut conn: ConnectionManager) {
        let mut failures = 0u32;
        let mut last_event: Option<Instant> = None;
        loop {
            let step = match self.last_id {
                None => {
                    let span = tracing::debug_span!(target: "auth", "redis", op = "reload");
                    tracing::Instrument::instrument(self.reload(&mut conn), span).await
                }
                Some(_) => {
                    let span = tracing::debug_span!(target: "auth", "redis", op = "follow");
                    tracing::Instrument::instrument(self.follow(&mut conn), span).await
                }
            };
            match step {
                Ok(()) => {
                    failures = 0;
                    last_event = None;
                    self.shared.mark_synced();
                    crate::metrics::redis(true, Duration::ZERO);
                }
                Err(e) => {
                    self.last_id = None;
                    if self.shared.connected.swap(false, Ordering::AcqRel) {
                        tracing::warn!(target: "auth", event = "redis_disconnected", error = ?e.kind(), "lost Redis: serving the local revocation list, reconnecting");
                    }
                    self.report_staleness(&mut last_event);
                    let lag = Duration::from_millis(self.shared.staleness_ms());
                    crate::metrics::redis(false, lag);
                    failures = failures.saturating_add(1);
                    tokio::time::sleep(backoff(failures)).await;
                }
            }
        }
    }

    /// Past the max staleness: one error event at once, then one a minute.
    fn report_staleness(&self, last_event: &mut Option<Instant>) {
        let staleness = self.shared.staleness_ms();
        if staleness <= self.shared.max_stale_ms
            || last_event.is_some_and(|at| at.elapsed() < STALE_EVENT_EVERY)
        {
            return;
        }
        *last_event = Some(Instant::now());
        let stale_secs = staleness / 1_000;
        match self.shared.failure {
            RedisFailure::Closed => {
                tracing::error!(target: "auth", event = "revocations_stale", stale_secs, failure = "closed", "Redis unreachable past AUTH_REDIS_MAX_STALE_SECS: role tokens get 503")
            }
            RedisFailure::Open => {
                tracing::error!(target: "auth", event = "revocations_stale", stale_secs, failure = "open", "Redis unreachable past AUTH_REDIS_MAX_STALE_SECS: role tokens are still accepted against a stale revocation list")
            }
        }
    }

    /// Loads every unexpired revocation and the stream's last id, in one transaction.
    async fn reload(&mut self, conn: &mut ConnectionManager) -> redis::RedisResult<()> {
        let now = self.list.clock().now_unix();
        let (epoch, last, members): (Option<String>, StreamRangeReply, Vec<(String, f64)>) =
            redis::pipe()
                .atomic()
                .cmd("GET")
                .arg(&self.keys.epoch)
                .cmd("XREVRANGE")
                .arg(&self.keys.stream)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .cmd("ZRANGEBYSCORE")
                .arg(&self.keys.set)
                .arg(format!("({now}"))
                .arg("+inf")
                .arg("WITHSCORES")
                .query_async(conn)
                .await?;
        let mut applied = apply_members(&members, |(jti, sub): (String, String), until| {
            Some(self.apply(&jti, &sub, until))
        });
        let epoch = match epoch {
            Some(epoch) => epoch,
            None => {
                let fresh = format!("{:016x}", RandomState::new().build_hasher().finish());
                redis::cmd("SET")
                    .arg(&self.keys.epoch)
                    .arg(&fresh)
                    .arg("NX")
                    .exec_async(conn)
                    .await?;
                redis::cmd("GET")
                    .arg(&self.keys.epoch)
                    .query_async::<Option<String>>(conn)
                    .await?
                    .unwrap_or(fresh)
            }
        };
        if self.epoch.as_ref().is_some_and(|seen| *seen != epoch) {
            // A Redis that lost its data: what this replica holds is written back, so that
            // replicas started later learn it too.
            tracing::warn!(target: "auth", event = "redis_data_lost", "Redis lost the shared revocations: writing back those held here");
            for (jti, sub, until) in self.list.unexpired() {
                self.shared.publish(&jti, &sub, until);
            }
            for (method, sub, cutoff) in self.list.cutoffs().unexpired(now) {
                self.shared.publish_cutoff(&method, &sub, cutoff);
            }
        }
        self.epoch = Some(epoch);
        // Read after the stream's last id: a cut-off written since is in both, harmlessly.
        applied |= self.reload_cutoffs(conn, now).await?;
        let last_id = last.ids.first().map(|entry| entry.id.clone());
        self.last_id = Some(last_id.unwrap_or_else(|| "0-0".to_owned()));
        tracing::debug!(target: "auth", event = "revocations_loaded", entries = members.len(), "revocations loaded from Redis");
        if applied {
            self.persist().await;
        }
        Ok(())
    }

    /// Applies what the stream announced since the last id (waiting up to [`READ_BLOCK`]).
    async fn follow(&mut self, conn: &mut ConnectionManager) -> redis::RedisResult<()> {
        let last_id = self.last_id.clone().unwrap_or_else(|| "0-0".to_owned());
        let reply: Option<StreamReadReply> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(BATCH)
            .arg("BLOCK")
            .arg(u64::try_from(READ_BLOCK.as_millis()).unwrap_or(500))
            .arg("STREAMS")
            .arg(&self.keys.stream)
            .arg(&last_id)
            .query_async(conn)
            .await?;
        let mut malformed = 0usize;
        let mut applied = false;
        for key in reply.into_iter().flat_map(|r| r.keys) {
            for entry in key.ids {
                let field = |name: &str| -> Option<String> { entry.get(name) };
                if field("kind").as_deref() == Some("cutoff") {
                    match self.apply_cutoff_entry(&field) {
                        Some(added) => applied |= added,
                        None => malformed += 1,
                    }
                    self.last_id = Some(entry.id);
                    continue;
                }
                match (
                    field("jti"),
                    field("sub"),
                    field("until").and_then(|u| u.parse::<u64>().ok()),
                ) {
                    (Some(jti), Some(sub), Some(until)) => {
                        applied |= self.apply(&jti, &sub, until);
                    }
                    _ => malformed += 1,
                }
                self.last_id = Some(entry.id);
            }
        }
        report_malformed(malformed);
        if applied {
            self.persist().await;
        }
        Ok(())
    }

    /// Loads the unexpired subject cut-offs; whether any was new here.
    async fn reload_cutoffs(
        &self,
        conn: &mut ConnectionManager,
        now: u64,
    ) -> redis::RedisResult<bool> {
        let members: Vec<(String, f64)> = redis::cmd("ZRANGEBYSCORE")
            .arg(&self.keys.cutoffs)
            .arg(format!("({now}"))
            .arg("+inf")
            .arg("WITHSCORES")
            .query_async(conn)
            .await?;
        Ok(apply_members(&members, |member: CutoffMember, until| {
            let (method, issuer, sub, before) = match member {
                CutoffMember::Subject(method, issuer, sub) => {
                    (method, issuer, sub, crate::cutoff::Cutoff::before_of(until))
                }
                CutoffMember::WithBefore(method, issuer, sub, before) => {
                    (method, issuer, sub, before)
                }
            };
            self.apply_cutoff(&method, &issuer, &sub, before, until)
        }))
    }

    /// Applies a stream entry of kind `cutoff`; `None` when it is malformed.
    fn apply_cutoff_entry(&self, field: &dyn Fn(&str) -> Option<String>) -> Option<bool> {
        let number = |name: &str| field(name).and_then(|v| v.parse::<u64>().ok());
        self.apply_cutoff(
            &field("method")?,
            &field("issuer")?,
            &field("sub")?,
            number("before")?,
            number("until")?,
        )
    }

    /// Adds one subject cut-off from Redis to the local list (not written back); `None` for
    /// a method that has none.
    fn apply_cutoff(
        &self,
        method: &str,
        issuer: &str,
        sub: &str,
        before: u64,
        until: u64,
    ) -> Option<bool> {
        let method = crate::cutoff::method_from(method, issuer)?;
        let cutoff = crate::cutoff::Cutoff { before, until };
        // A full list logs it; nothing to add.
        let added = self
            .list
            .insert_cutoff_local(&method, sub, cutoff)
            .unwrap_or(false);
        if added {
            tracing::info!(target: "auth", event = "subject_revoked", method = %method, subject = %tower_auth_core::Capped(sub), before, source = "redis", "subject cut off on another replica");
        }
        Some(added)
    }

    /// Adds one revocation from Redis to the local list (not written back).
    fn apply(&self, jti: &str, sub: &str, until: u64) -> bool {
        match self.list.insert_local(jti, sub, until, By::Admin) {
            Ok(inserted) => {
                let added = inserted == Inserted::Added;
                if added {
                    tracing::info!(target: "auth", event = "token_revoked", jti = ?jti, subject = ?sub, keep_until = until, source = "redis", "role token revoked on another replica");
                }
                added
            }
            // The list logged it; nothing to add.
            Err(_) => false,
        }
    }

    async fn persist(&self) {
        if let Err(e) = self.list.persist().await {
            tracing::error!(target: "auth", event = "revocation_file_error", error = %e, "revocations from Redis not written to AUTH_REVOCATION_FILE (they are in force in memory)");
        }
    }
}

/// Applies the members of a sorted set loaded with their scores: each member's JSON as a `T`
/// and its score as the Unix second it is kept until; `apply` says whether it was new here,
/// or `None` when it is malformed after all. Whether any was new; malformed members (JSON
/// not a `T`, a score not a whole second) are skipped and reported once.
fn apply_members<T: serde::de::DeserializeOwned>(
    members: &[(String, f64)],
    mut apply: impl FnMut(T, u64) -> Option<bool>,
) -> bool {
    let mut malformed = 0usize;
    let mut applied = false;
    for (member, score) in members {
        let parsed = serde_json::from_str::<T>(member).ok();
        match parsed
            .zip(score_to_until(*score))
            .and_then(|(value, until)| apply(value, until))
        {
            Some(added) => applied |= added,
            None => malformed += 1,
        }
    }
    report_malformed(malformed);
    applied
}

fn report_malformed(count: usize) {
    if count > 0 {
        tracing::error!(target: "auth", event = "redis_malformed_revocations", count, "entries in Redis that are not revocations of this format were skipped");
    }
}

/// A sorted-set score as the Unix second it stands for.
fn score_to_until(score: f64) -> Option<u64> {
    // Beyond u64::MAX (a revocation kept "forever") the cast saturates, as wanted.
    (score.is_finite() && score >= 0.0 && score.fract() == 0.0).then_some(score as u64)
}

/// Writes queued revocations, oldest first, retrying with backoff while Redis fails; an
/// entry leaves the queue only once Redis has taken it.
async fn write_queue(
    shared: Arc<Shared>,
    mut conn: ConnectionManager,
    keys: Keys,
    clock: tower_auth_core::Clock,
) {
    let mut failures = 0u32;
    loop {
        let batch: Vec<Record> = {
            let queue = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.iter().take(BATCH).cloned().collect()
        };
        let cutoffs: Vec<CutoffRecord> = {
            let queue = shared
                .cutoff_queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            queue.iter().take(BATCH).cloned().collect()
        };
        if batch.is_empty() && cutoffs.is_empty() {
            shared.queued.notified().await;
            continue;
        }
        let now = clock.now_unix();
        let mut pipe = redis::pipe();
        pipe.atomic();
        for record in batch.iter().filter(|r| r.until > now) {
            let member = serde_json::to_string(&(&*record.jti, &*record.sub))
                .expect("two strings serialize");
            pipe.cmd("ZADD")
                .arg(&keys.set)
                .arg("GT")
                .arg(record.until)
                .arg(member)
                .ignore();
            pipe.cmd("XADD")
                .arg(&keys.stream)
                .arg("MAXLEN")
                .arg("~")
                .arg(STREAM_MAX_LEN)
                .arg("*")
                .arg("jti")
                .arg(&*record.jti)
                .arg("sub")
                .arg(&*record.sub)
                .arg("until")
                .arg(record.until)
                .ignore();
        }
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(&keys.set)
            .arg("-inf")
            .arg(now)
            .ignore();
        for record in cutoffs.iter().filter(|r| r.until > now) {
            // One member per subject, scored by when it is dropped, which gives `before`
            // (a cut-off read from a file kept shorter is kept the full time here): cutting
            // a subject off again moves its member, never adds one.
            let member = serde_json::to_string(&(record.method, &*record.issuer, &*record.sub))
                .expect("strings serialize");
            let score = record
                .until
                .max(crate::cutoff::Cutoff::until_of(record.before));
            pipe.cmd("ZADD")
                .arg(&keys.cutoffs)
                .arg("GT")
                .arg(score)
                .arg(member)
                .ignore();
            pipe.cmd("XADD")
                .arg(&keys.stream)
                .arg("MAXLEN")
                .arg("~")
                .arg(STREAM_MAX_LEN)
                .arg("*")
                .arg("kind")
                .arg("cutoff")
                .arg("method")
                .arg(record.method)
                .arg("issuer")
                .arg(&*record.issuer)
                .arg("sub")
                .arg(&*record.sub)
                .arg("before")
                .arg(record.before)
                .arg("until")
                .arg(record.until)
                .ignore();
        }
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(&keys.cutoffs)
            .arg("-inf")
            .arg(now)
            .ignore();
        match pipe.query_async::<()>(&mut conn).await {
            Ok(()) => {
                failures = 0;
                let mut queue = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
                queue.drain(..batch.len());
                drop(queue);
                shared
                    .cutoff_queue
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .drain(..cutoffs.len());
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                if failures == 1 {
                    tracing::warn!(target: "auth", event = "redis_write_failed", error = ?e.kind(), pending = batch.len(), "revocations not written to Redis yet: queued, retrying");
                }
                // Until the backoff ends, or the follower finds Redis back.
                let _ =
                    tokio::time::timeout(backoff(failures), shared.reconnected.notified()).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Option<RedisSettings>, ConfigError> {
        RedisSettings::from_lookup("APP_", |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    /// SECURITY.md G11, S7.
    #[test]
    fn the_url_must_be_redis_and_is_never_quoted() {
        let ok = settings(&[("APP_AUTH_REDIS_URL", "redis://:s3cret-pass@10.0.0.5:6380/2")])
            .unwrap()
            .unwrap();
        assert_eq!(ok.failure, RedisFailure::Closed);
        assert_eq!(ok.max_stale, DEFAULT_REDIS_MAX_STALE);
        assert!(!format!("{ok:?}").contains("s3cret"));
        for bad in [
            "http://:s3cret-pass@cache",
            "s3cret-pass",
            "redis+unix:///tmp/s3cret-pass.sock",
            "redis://:s3cret-pass@/",
            "",
        ] {
            let error = settings(&[("APP_AUTH_REDIS_URL", bad)]).unwrap_err();
            assert_eq!(error.variable(), "APP_AUTH_REDIS_URL", "{bad}");
            assert!(!error.to_string().contains("s3cret"), "{error}");
        }
        assert!(!ok.is_tls());
        assert!(settings(&[]).unwrap().is_none());
    }

    /// A CA certificate (P-256) made with openssl for these tests; its key was thrown away.
    const CA: &str = "-----BEGIN CERTIFICATE-----
MIIBpTCCAUugAwIBAgIUNk0IefD8PFsRMySeNdULJEt+lngwCgYIKoZIzj0EAwIw
JzElMCMGA1UEAwwcdG93ZXItYXV0aC1odHRwIHVuaXQgdGVzdCBDQTAgFw0yNjEx
MzAwNzUxNTFaGA8yMTI2MTEwNjA3NTE1MVowJzElMCMGA1UEAwwcdG93ZXItYXV0
aC1odHRwIHVuaXQgdGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABJDO
X+/77H+6AhJCwowX8TiGluuwyoQIHnbvTCimNClWi1SeRYDy5bAt6Hb50dfIkxpf
FGD0qkbcanvj8llQE4ijUzBRMB0GA1UdDgQWBBQzRi6nSMxGXVd1WLTkReEEvhap
8jAfBgNVHSMEGDAWgBQzRi6nSMxGXVd1WLTkReEEvhap8jAPBgNVHRMBAf8EBTAD
AQH/MAoGCCqGSM49BAMCA0gAMEUCIC8DfGB1OrOEvdDPufT7BK0PYPw6f9UewpQd
imosRVS4AiEA/tzZgC6nDhktRhEyFelm5rN8Re478V1oR6QGmjHTSHY=
-----END CERTIFICATE-----
";

    /// SECURITY.md S21, G16.
    #[test]
    fn rediss_is_tls_with_the_platform_roots_and_an_optional_ca_file() {
        let tls = settings(&[("APP_AUTH_REDIS_URL", "rediss://:s3cret-pass@cache:6380/1")])
            .unwrap()
            .unwrap();
        assert!(tls.is_tls());
        assert!(!format!("{tls:?}").contains("s3cret"));
        assert!(
            rustls::crypto::CryptoProvider::get_default().is_some(),
            "a provider for the Redis client's rustls"
        );
        let resp3 = RedisSettings::new("rediss://cache?protocol=resp3").unwrap();
        assert!(resp3.is_tls());

        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("redis-ca.pem");
        std::fs::write(&ca, CA).unwrap();
        let ca = ca.to_str().unwrap();
        let with_ca = settings(&[
            ("APP_AUTH_REDIS_URL", "rediss://cache:6380"),
            ("APP_AUTH_REDIS_CA_FILE", ca),
        ])
        .unwrap()
        .unwrap();
        assert!(with_ca.is_tls());

        let key = dir.path().join("s3cret.key");
        std::fs::write(
            &key,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let key = key.to_str().unwrap();
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let garbage = garbage.to_str().unwrap();
        for (url, file, says) in [
            (
                "rediss://cache",
                "/nonexistent/redis-ca.pem",
                "cannot be read",
            ),
            ("rediss://cache", key, "no PEM certificate"),
            ("rediss://cache", garbage, "not a well-formed"),
            ("rediss://cache", " ", "is empty"),
            ("redis://cache", ca, "not rediss://"),
        ] {
            let error = settings(&[
                ("APP_AUTH_REDIS_URL", url),
                ("APP_AUTH_REDIS_CA_FILE", file),
            ])
            .unwrap_err();
            assert_eq!(error.variable(), "APP_AUTH_REDIS_CA_FILE", "{file}");
            assert!(error.to_string().contains(says), "{error}");
            assert!(!error.to_string().contains("AAAA"), "{error}");
        }
        let alone = settings(&[("APP_AUTH_REDIS_CA_FILE", ca)]).unwrap_err();
        assert_eq!(alone.variable(), "APP_AUTH_REDIS_CA_FILE");
        assert!(alone.to_string().contains("APP_AUTH_REDIS_URL"), "{alone}");
    }

    /// SECURITY.md G16: no way around the certificate check, and no CA in the URL that the
    /// client would silently ignore.
    #[test]
    fn rediss_urls_that_would_weaken_or_misplace_tls_are_refused() {
        for bad in [
            "rediss://:s3cret-pass@cache:6380#insecure",
            "rediss://:s3cret-pass@cache:6380/#insecure",
            "redis://:s3cret-pass@cache#tls",
            "rediss://:s3cret-pass@cache:6380?tls",
            "rediss://:s3cret-pass@cache:6380/?tls=/etc/ca.pem",
            "rediss://:s3cret-pass@cache:6380/?ca_file=/etc/ca.pem&protocol=resp3",
            "redis://:s3cret-pass@cache/?tls=true",
            "rediss://:s3cret-pass@cache/?protocol=resp9",
        ] {
            let error = settings(&[("APP_AUTH_REDIS_URL", bad)]).unwrap_err();
            assert_eq!(error.variable(), "APP_AUTH_REDIS_URL", "{bad}");
            assert!(!error.to_string().contains("s3cret"), "{error}");
        }
        let tls = settings(&[("APP_AUTH_REDIS_URL", "rediss://cache?tls")]).unwrap_err();
        assert!(tls.to_string().contains("AUTH_REDIS_CA_FILE"), "{tls}");
    }

    /// SECURITY.md G12.
    #[test]
    fn the_failure_mode_is_open_or_closed() {
        let url = ("APP_AUTH_REDIS_URL", "redis://127.0.0.1:6379");
        let open = settings(&[url, ("APP_AUTH_REDIS_FAILURE", "open")])
            .unwrap()
            .unwrap();
        assert_eq!(open.failure, RedisFailure::Open);
        let closed = settings(&[url, ("APP_AUTH_REDIS_FAILURE", " closed ")])
            .unwrap()
            .unwrap();
        assert_eq!(closed.failure, RedisFailure::Closed);
        for bad in ["", "OPEN", "fail-open", "true"] {
            let error = settings(&[url, ("APP_AUTH_REDIS_FAILURE", bad)]).unwrap_err();
            assert_eq!(error.variable(), "APP_AUTH_REDIS_FAILURE", "{bad:?}");
        }
        let alone = settings(&[("APP_AUTH_REDIS_FAILURE", "open")]).unwrap_err();
        assert_eq!(alone.variable(), "APP_AUTH_REDIS_FAILURE");
        assert!(alone.to_string().contains("APP_AUTH_REDIS_URL"), "{alone}");
    }

    /// SECURITY.md G13.
    #[test]
    fn the_max_staleness_is_one_second_to_a_day() {
        let url = ("APP_AUTH_REDIS_URL", "redis://127.0.0.1:6379");
        for (value, secs) in [("1", 1), (" 90 ", 90), ("86400", 86_400)] {
            let s = settings(&[url, ("APP_AUTH_REDIS_MAX_STALE_SECS", value)])
                .unwrap()
                .unwrap();
            assert_eq!(s.max_stale, Duration::from_secs(secs));
        }
        for bad in ["0", "86401", "-5", "1.5", "60s", ""] {
            let error = settings(&[url, ("APP_AUTH_REDIS_MAX_STALE_SECS", bad)]).unwrap_err();
            assert_eq!(error.variable(), "APP_AUTH_REDIS_MAX_STALE_SECS", "{bad:?}");
        }
        let alone = settings(&[("APP_AUTH_REDIS_MAX_STALE_SECS", "5")]).unwrap_err();
        assert_eq!(alone.variable(), "APP_AUTH_REDIS_MAX_STALE_SECS");
    }

    /// SECURITY.md S3, S4: with no Redis at all (a refused port), start-up goes on, the
    /// list serves until the max staleness, then `closed` makes it unavailable; dropping
    /// the guard makes it local again.
    #[tokio::test]
    async fn without_redis_the_list_serves_until_stale_then_dropping_the_guard_makes_it_local() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let settings = RedisSettings::new(&format!("redis://127.0.0.1:{port}"))
            .unwrap()
            .max_stale(Duration::from_secs(3));
        let list = RevocationList::new(tower_auth_core::Clock::manual(1_000));
        let sync = list
            .share_through_redis(settings.clone(), "t")
            .await
            .unwrap();
        assert!(!sync.is_connected());
        assert_eq!(
            list.share_through_redis(settings, "t").await.unwrap_err(),
            ShareError::AlreadyShared
        );
        assert!(list.unavailable().is_none(), "within the max staleness");
        list.revoke("a", "s", 2_000).unwrap();
        assert!(list.is_revoked("a"));
        assert_eq!(sync.pending(), 1, "queued for Redis");
        tokio::time::pause();
        tokio::time::advance(Duration::from_secs(4)).await;
        let error = list.unavailable().expect("stale: closed refuses");
        assert_eq!(error.http_status(), 503);
        assert_eq!(error.retry_after(), Some(RETRY_AFTER));
        assert!(sync.staleness() >= Duration::from_secs(4));
        drop(sync);
        assert!(list.unavailable().is_none(), "local again");
        list.revoke("b", "s", 2_000).unwrap();
        assert!(list.is_revoked("a") && list.is_revoked("b"));
    }

    #[test]
    fn backoff_grows_with_jitter_and_stays_bounded() {
        for failures in [0, 1, 5, 40] {
            let ceiling = BACKOFF_MIN
                .saturating_mul(1 << failures.min(16))
                .min(BACKOFF_MAX);
            for _ in 0..50 {
                let delay = backoff(failures);
                assert!(delay <= ceiling.max(Duration::from_millis(10)), "{delay:?}");
            }
        }
        let delays: std::collections::HashSet<Duration> = (0..50).map(|_| backoff(10)).collect();
        assert!(delays.len() > 1, "jittered");
    }

    #[test]
    fn scores_are_whole_unix_seconds() {
        assert_eq!(score_to_until(1_700_000_000.0), Some(1_700_000_000));
        assert_eq!(score_to_until(u64::MAX as f64), Some(u64::MAX));
        for bad in [-1.0, 1.5, f64::NAN, f64::INFINITY] {
            assert_eq!(score_to_until(bad), None, "{bad}");
        }
    }
}
