//! What the layer records through the [`metrics`] facade, and the names of every `auth_*`
//! metric of the workspace.
//!
//! The application installs a recorder (the demo installs `metrics-exporter-prometheus`);
//! with none installed nothing is recorded and nothing is allocated: a request pays two
//! readings of a cheap clock and a few thread-local reads. With one installed, a request let
//! through moves handles the layer registered once per recorder ([`Recorders`]). Every label value comes from a fixed set
//! written in the code (a method, an outcome, a log reason code, an endpoint name, a
//! configured issuer URL), never from the request: no subject, key name, token, `kid` or
//! path (SECURITY.md V1).
//!
//! | Metric | Labels |
//! |---|---|
//! | [`REQUESTS_TOTAL`] | `method` (`api_key`, `oidc`, `hmac`, `none`), `outcome` ([`OUTCOMES`]), `reason` (the log event's reason code, `none` for a request let through) |
//! | [`CHECK_SECONDS`] (histogram) | `method` |
//! | [`RATE_LIMITED_TOTAL`] | `endpoint` (`api`: the layer's `AUTH_FAILURE_LIMIT`; `token`, `revoke`: the exchange) |
//! | `auth_token_cache_hits_total`, `auth_token_cache_misses_total` | none (OIDC) |
//! | `auth_jwks_fetches_total` | `issuer`, `result` (`ok`, `error`, `garbage`, `rate_limited`) |
//! | `auth_jwks_keys`, `auth_jwks_age_seconds`, `auth_issuer_up` (gauges) | `issuer` |
//! | `auth_exchange_total` | `result` (`issued`, `refused`, `rate_limited`, `bad_request`, `error`) |
//! | `auth_revocations_total` | none |
//! | `auth_redis_up`, `auth_redis_lag_seconds` (gauges, feature `redis`) | none |

use std::time::Duration;

use tower_auth_core::{AuthError, AuthErrorKind, PerRecorder, RegisterHandles};

/// `auth_requests_total{method, outcome, reason}`: each request the layer judged.
pub const REQUESTS_TOTAL: &str = "auth_requests_total";
/// `auth_check_seconds{method}`: the time the layer spent deciding, key fetches included.
pub const CHECK_SECONDS: &str = "auth_check_seconds";
/// `auth_rate_limited_total{endpoint}`: requests refused with 429.
pub const RATE_LIMITED_TOTAL: &str = "auth_rate_limited_total";
/// The `endpoint` label of the layer's own 429s (`AUTH_FAILURE_LIMIT`).
pub const ENDPOINT_API: &str = "api";

/// The values of the `outcome` label of [`REQUESTS_TOTAL`].
pub const OUTCOMES: [&str; 7] = [
    "allowed",
    "exempt",
    "unauthenticated",
    "forbidden",
    "bad_request",
    "unavailable",
    "rate_limited",
];

/// The `method` label of a request that no method claimed (no credential, an unclaimed one,
/// a source over its limit, an exempt request without an identity).
pub(crate) const NO_METHOD: &str = "none";
/// The `reason` label of a request let through.
const NO_REASON: &str = "none";

#[cfg(feature = "hmac")]
pub use tower_auth_hmac::metrics::{EXCHANGE_TOTAL, REVOCATIONS_TOTAL};
#[cfg(feature = "redis")]
pub use tower_auth_hmac::metrics::{REDIS_LAG_SECONDS, REDIS_UP};
#[cfg(feature = "oidc")]
pub use tower_auth_oidc::metrics::{
    ISSUER_UP, JWKS_AGE_SECONDS, JWKS_FETCHES_TOTAL, JWKS_KEYS, TOKEN_CACHE_HITS_TOTAL,
    TOKEN_CACHE_MISSES_TOTAL,
};

/// The `outcome` label for a refusal of `kind`.
pub(crate) fn outcome_of(kind: AuthErrorKind) -> &'static str {
    match kind {
        AuthErrorKind::MissingCredential | AuthErrorKind::InvalidToken => "unauthenticated",
        AuthErrorKind::InvalidRequest => "bad_request",
        AuthErrorKind::InsufficientScope => "forbidden",
        AuthErrorKind::Unavailable => "unavailable",
        AuthErrorKind::RateLimited => "rate_limited",
        // A kind added later is counted as a refusal until it gets its own outcome.
        _ => "unauthenticated",
    }
}

/// The fixed methods whose series a layer holds handles for, in the order of the arrays of
/// [`Handles`]; a custom authenticator's method goes through the facade's lookup.
const METHODS: [&str; 4] = ["api_key", "oidc", "hmac", "none"];

fn method_index(method: &str) -> Option<usize> {
    METHODS.iter().position(|known| *known == method)
}

/// The handles of one recorder for the series a request let through moves: registered once,
/// then each request is an atomic add and a histogram sample, with no registry lookup.
pub(crate) struct Handles {
    allowed: [metrics::Counter; 4],
    exempt: [metrics::Counter; 4],
    seconds: [metrics::Histogram; 4],
}

impl RegisterHandles for Handles {
    /// Registers the series with the current recorder. The names and labels are literals:
    /// each key is a `static`.
    fn register() -> Self {
        macro_rules! by_method {
            ($make:ident) => {
                [
                    $make!("api_key"),
                    $make!("oidc"),
                    $make!("hmac"),
                    $make!("none"),
                ]
            };
        }
        macro_rules! allowed {
            ($method:literal) => {
                metrics::counter!("auth_requests_total", "method" => $method, "outcome" => "allowed", "reason" => "none")
            };
        }
        macro_rules! exempt {
            ($method:literal) => {
                metrics::counter!("auth_requests_total", "method" => $method, "outcome" => "exempt", "reason" => "none")
            };
        }
        macro_rules! seconds {
            ($method:literal) => {
                metrics::histogram!("auth_check_seconds", "method" => $method)
            };
        }
        Self {
            allowed: by_method!(allowed),
            exempt: by_method!(exempt),
            seconds: by_method!(seconds),
        }
    }
}

/// The handles of the layer, one set per recorder (see [`PerRecorder`]).
pub(crate) type Recorders = PerRecorder<Handles>;

/// A request let through: `exempt` on an exempt path, `allowed` otherwise, and the time it
/// took (`elapsed`).
fn passed(recorders: &Recorders, method: &'static str, exempt: bool, elapsed: Duration) {
    recorders.with_handles(|handles| match (handles, method_index(method)) {
        (Some(handles), Some(index)) => {
            let counters = if exempt {
                &handles.exempt
            } else {
                &handles.allowed
            };
            counters[index].increment(1);
            handles.seconds[index].record(elapsed);
        }
        // A recorder of no size (the no-op one), past the slots, or a custom
        // authenticator's method: the facade's lookup.
        _ => passed_by_lookup(method, exempt, elapsed),
    });
}

/// [`passed`] through the facade's lookup. The name and labels are literals so that each key
/// is a `static` with its hash computed at compile time: nothing is allocated or hashed.
fn passed_by_lookup(method: &'static str, exempt: bool, elapsed: Duration) {
    macro_rules! count {
        ($($method:literal),*) => {
            match (method, exempt) {
                $(
                    ($method, false) => metrics::counter!("auth_requests_total", "method" => $method, "outcome" => "allowed", "reason" => "none").increment(1),
                    ($method, true) => metrics::counter!("auth_requests_total", "method" => $method, "outcome" => "exempt", "reason" => "none").increment(1),
                )*
                // A custom authenticator's method: a name from its code, not the request.
                (method, exempt) => metrics::counter!(REQUESTS_TOTAL, "method" => method, "outcome" => if exempt { "exempt" } else { "allowed" }, "reason" => NO_REASON).increment(1),
            }
        };
    }
    count!("api_key", "oidc", "hmac", "none");
    seconds_by_lookup(method, elapsed);
}

/// `auth_check_seconds` through the facade's lookup, with literals as in [`passed_by_lookup`].
fn seconds_by_lookup(method: &'static str, elapsed: Duration) {
    match method {
        "api_key" => {
            metrics::histogram!("auth_check_seconds", "method" => "api_key").record(elapsed)
        }
        "oidc" => metrics::histogram!("auth_check_seconds", "method" => "oidc").record(elapsed),
        "hmac" => metrics::histogram!("auth_check_seconds", "method" => "hmac").record(elapsed),
        "none" => metrics::histogram!("auth_check_seconds", "method" => "none").record(elapsed),
        method => metrics::histogram!(CHECK_SECONDS, "method" => method).record(elapsed),
    }
}

/// A request refused with `error`; `method` is the method that refused it, if one did. The
/// reasons are many, so a refusal looks its series up through the facade (a refusal costs
/// far more than that lookup anyway); the histogram's handle is held.
#[cold]
fn refused(recorders: &Recorders, method: &'static str, error: &AuthError, elapsed: Duration) {
    metrics::counter!(REQUESTS_TOTAL, "method" => method, "outcome" => outcome_of(error.kind()), "reason" => error.reason())
        .increment(1);
    if error.kind() == AuthErrorKind::RateLimited {
        metrics::counter!(RATE_LIMITED_TOTAL, "endpoint" => ENDPOINT_API).increment(1);
    }
    recorders.with_handles(|handles| match (handles, method_index(method)) {
        (Some(handles), Some(index)) => handles.seconds[index].record(elapsed),
        _ => seconds_by_lookup(method, elapsed),
    });
}

/// One request's check as an operator sees it: when it began, for [`CHECK_SECONDS`], and
/// its span (target `auth`, level DEBUG as tower-http's `TraceLayer` spans), which gets the
/// method, outcome, reason and the credential's fingerprint, never the credential.
///
/// The check is timed whether or not a recorder is installed: the facade does not say
/// whether the recorder in scope is its no-op one (a recorder of no size may be an
/// application's own, forwarding to statics), and the clock is `quanta`'s, read from the
/// CPU's time-stamp counter where it is invariant (a few nanoseconds, against about 30 for
/// `std::time::Instant` on a VM), else from the OS's monotonic clock.
pub(crate) struct Observation {
    started: quanta::Instant,
    pub(crate) span: tracing::Span,
}

impl Observation {
    pub(crate) fn start() -> Self {
        use tracing::field::Empty;
        Self {
            started: quanta::Instant::now(),
            span: tracing::debug_span!(target: "auth", "auth", method = Empty, outcome = Empty, reason = Empty, fingerprint = Empty),
        }
    }

    /// A request let through; `fingerprint` is only called when the span is recorded.
    pub(crate) fn passed(
        &self,
        recorders: &Recorders,
        method: &'static str,
        exempt: bool,
        fingerprint: impl FnOnce() -> String,
    ) {
        passed(recorders, method, exempt, self.started.elapsed());
        if !self.span.is_disabled() {
            let outcome = if exempt { "exempt" } else { "allowed" };
            self.record(method, outcome, NO_REASON, fingerprint);
        }
    }

    /// A request refused with `error`.
    pub(crate) fn refused(
        &self,
        recorders: &Recorders,
        method: &'static str,
        error: &AuthError,
        fingerprint: impl FnOnce() -> String,
    ) {
        refused(recorders, method, error, self.started.elapsed());
        if !self.span.is_disabled() {
            self.record(
                method,
                outcome_of(error.kind()),
                error.reason(),
                fingerprint,
            );
        }
    }

    fn record(
        &self,
        method: &'static str,
        outcome: &'static str,
        reason: &'static str,
        fingerprint: impl FnOnce() -> String,
    ) {
        self.span.record("method", method);
        self.span.record("outcome", outcome);
        self.span.record("reason", reason);
        let fingerprint = fingerprint();
        if !fingerprint.is_empty() {
            self.span.record("fingerprint", fingerprint.as_str());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
    use std::collections::BTreeMap;
    use std::sync::OnceLock;

    /// Per metric name, the counters' sum and the histograms' sample count.
    fn totals(snapshotter: &Snapshotter) -> BTreeMap<String, u64> {
        let mut names = BTreeMap::new();
        for (key, _, _, value) in snapshotter.snapshot().into_vec() {
            let count = match value {
                DebugValue::Counter(n) => n,
                DebugValue::Histogram(samples) => samples.len() as u64,
                DebugValue::Gauge(_) => 0,
            };
            *names.entry(key.key().name().to_owned()).or_insert(0) += count;
        }
        names
    }

    /// The literals in the macros above are the names the constants give.
    #[test]
    fn the_static_keys_use_the_documented_names() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let recorders = Recorders::default();
        metrics::with_local_recorder(&recorder, || {
            for method in ["api_key", "oidc", "hmac", "none", "custom"] {
                passed(&recorders, method, false, Duration::ZERO);
                passed(&recorders, method, true, Duration::ZERO);
            }
            refused(
                &recorders,
                "api_key",
                &AuthError::rate_limited(Duration::ZERO),
                Duration::ZERO,
            );
        });
        let names = totals(&snapshotter);
        assert_eq!(names[REQUESTS_TOTAL], 11);
        assert_eq!(names[CHECK_SECONDS], 11);
        assert_eq!(names[RATE_LIMITED_TOTAL], 1);
        assert_eq!(names.len(), 3, "{names:?}");
    }

    /// A layer that recorded with no recorder, then into one recorder, then into another,
    /// gives each recorder the requests made while it was in scope, through its own handles;
    /// past the slots the facade's lookup still records into the recorder in scope.
    #[test]
    fn each_recorder_gets_the_requests_made_while_it_is_in_scope() {
        let recorders = Recorders::default();
        // Before any recorder: the no-op one, of no size, takes no slot.
        passed(&recorders, "api_key", false, Duration::ZERO);
        assert_eq!(recorders.held(), 0);
        let scopes: Vec<_> = (0..Recorders::SLOTS + 2)
            .map(|_| DebuggingRecorder::new())
            .collect();
        for (n, recorder) in scopes.iter().enumerate() {
            metrics::with_local_recorder(recorder, || {
                for _ in 0..=n {
                    passed(&recorders, "oidc", false, Duration::from_micros(3));
                }
            });
        }
        for (n, recorder) in scopes.iter().enumerate() {
            let names = totals(&recorder.snapshotter());
            assert_eq!(names[REQUESTS_TOTAL], n as u64 + 1, "recorder {n}");
            assert_eq!(names[CHECK_SECONDS], n as u64 + 1, "recorder {n}");
        }
        // The first SLOTS recorders hold the slots; the others went through the lookup.
        assert_eq!(recorders.held(), Recorders::SLOTS);
    }

    /// An application's recorder of no size (forwarding to statics) gets
    /// `auth_check_seconds` too: the check is timed whatever the recorder.
    #[test]
    fn a_recorder_of_no_size_gets_the_check_time() {
        static INNER: OnceLock<DebuggingRecorder> = OnceLock::new();
        struct Forward;
        impl metrics::Recorder for Forward {
            fn describe_counter(
                &self,
                key: metrics::KeyName,
                unit: Option<metrics::Unit>,
                description: metrics::SharedString,
            ) {
                INNER
                    .get()
                    .unwrap()
                    .describe_counter(key, unit, description);
            }
            fn describe_gauge(
                &self,
                key: metrics::KeyName,
                unit: Option<metrics::Unit>,
                description: metrics::SharedString,
            ) {
                INNER.get().unwrap().describe_gauge(key, unit, description);
            }
            fn describe_histogram(
                &self,
                key: metrics::KeyName,
                unit: Option<metrics::Unit>,
                description: metrics::SharedString,
            ) {
                INNER
                    .get()
                    .unwrap()
                    .describe_histogram(key, unit, description);
            }
            fn register_counter(
                &self,
                key: &metrics::Key,
                metadata: &metrics::Metadata<'_>,
            ) -> metrics::Counter {
                INNER.get().unwrap().register_counter(key, metadata)
            }
            fn register_gauge(
                &self,
                key: &metrics::Key,
                metadata: &metrics::Metadata<'_>,
            ) -> metrics::Gauge {
                INNER.get().unwrap().register_gauge(key, metadata)
            }
            fn register_histogram(
                &self,
                key: &metrics::Key,
                metadata: &metrics::Metadata<'_>,
            ) -> metrics::Histogram {
                INNER.get().unwrap().register_histogram(key, metadata)
            }
        }
        assert_eq!(std::mem::size_of::<Forward>(), 0);
        let snapshotter = INNER.get_or_init(DebuggingRecorder::new).snapshotter();
        let recorders = Recorders::default();
        metrics::with_local_recorder(&Forward, || {
            let observation = Observation::start();
            observation.passed(&recorders, "api_key", false, String::new);
            observation.refused(
                &recorders,
                "hmac",
                &AuthError::rate_limited(Duration::ZERO),
                String::new,
            );
        });
        let mut seconds = BTreeMap::new();
        for (key, _, _, value) in snapshotter.snapshot().into_vec() {
            if let DebugValue::Histogram(samples) = value {
                assert_eq!(key.key().name(), CHECK_SECONDS);
                let method = key.key().labels().next().unwrap().value().to_owned();
                seconds.insert(method, samples.len());
            }
        }
        assert_eq!(
            seconds,
            BTreeMap::from([("api_key".into(), 1), ("hmac".into(), 1)])
        );
    }
}
