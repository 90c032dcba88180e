//! What the layer records through the [`metrics`] facade, and the names of every `auth_*`
//! metric of the workspace.
//!
//! The application installs a recorder (the demo installs `metrics-exporter-prometheus`);
//! with none installed nothing is recorded, nothing is allocated, the clock is not read,
//! and a request pays a few thread-local reads. Every label value comes from a fixed set
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

use std::time::Instant;

use tower_auth_core::{AuthError, AuthErrorKind};

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

/// A request let through: `exempt` on an exempt path, `allowed` otherwise. The name and
/// labels are literals so that each key is a `static` with its hash computed at compile
/// time: nothing is allocated or hashed per request.
pub(crate) fn passed(method: &'static str, exempt: bool, started: Option<Instant>) {
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
    check_seconds(method, started);
}

/// A request refused with `error`; `method` is the method that refused it, if one did.
#[cold]
pub(crate) fn refused(method: &'static str, error: &AuthError, started: Option<Instant>) {
    metrics::counter!(REQUESTS_TOTAL, "method" => method, "outcome" => outcome_of(error.kind()), "reason" => error.reason())
        .increment(1);
    if error.kind() == AuthErrorKind::RateLimited {
        metrics::counter!(RATE_LIMITED_TOTAL, "endpoint" => ENDPOINT_API).increment(1);
    }
    check_seconds(method, started);
}

/// Literal names and labels, as in [`passed`].
fn check_seconds(method: &'static str, started: Option<Instant>) {
    let Some(started) = started else {
        return;
    };
    let elapsed = started.elapsed();
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

/// Whether the application installed a recorder. The facade's no-op recorder is a unit
/// struct, and a recorder that records anything holds its storage: only the no-op one has
/// no size. (A zero-sized recorder of the application's own, forwarding to statics, gets
/// the counters but not [`CHECK_SECONDS`].)
fn recording() -> bool {
    metrics::with_recorder(|recorder| std::mem::size_of_val(recorder) != 0)
}

/// One request's check as an operator sees it: when it began, for [`CHECK_SECONDS`], and
/// its span (target `auth`, level DEBUG as tower-http's `TraceLayer` spans), which gets the
/// method, outcome, reason and the credential's fingerprint, never the credential.
pub(crate) struct Observation {
    /// `None` without a recorder: reading the clock twice costs more than the rest of this.
    started: Option<Instant>,
    pub(crate) span: tracing::Span,
}

impl Observation {
    pub(crate) fn start() -> Self {
        use tracing::field::Empty;
        Self {
            started: recording().then(Instant::now),
            span: tracing::debug_span!(target: "auth", "auth", method = Empty, outcome = Empty, reason = Empty, fingerprint = Empty),
        }
    }

    /// A request let through; `fingerprint` is only called when the span is recorded.
    pub(crate) fn passed(
        &self,
        method: &'static str,
        exempt: bool,
        fingerprint: impl FnOnce() -> String,
    ) {
        passed(method, exempt, self.started);
        if !self.span.is_disabled() {
            let outcome = if exempt { "exempt" } else { "allowed" };
            self.record(method, outcome, NO_REASON, fingerprint);
        }
    }

    /// A request refused with `error`.
    pub(crate) fn refused(
        &self,
        method: &'static str,
        error: &AuthError,
        fingerprint: impl FnOnce() -> String,
    ) {
        refused(method, error, self.started);
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
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    /// The literals in the macros above are the names the constants give.
    #[test]
    fn the_static_keys_use_the_documented_names() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            for method in ["api_key", "oidc", "hmac", "none", "custom"] {
                passed(method, false, Some(Instant::now()));
                passed(method, true, Some(Instant::now()));
            }
            refused(
                "api_key",
                &AuthError::rate_limited(std::time::Duration::ZERO),
                Some(Instant::now()),
            );
            assert!(recording());
        });
        let mut names = std::collections::BTreeMap::new();
        for (key, _, _, value) in snapshotter.snapshot().into_vec() {
            let count = match value {
                DebugValue::Counter(n) => n,
                DebugValue::Histogram(samples) => samples.len() as u64,
                DebugValue::Gauge(_) => 0,
            };
            *names.entry(key.key().name().to_owned()).or_insert(0) += count;
        }
        assert_eq!(names[REQUESTS_TOTAL], 11);
        assert_eq!(names[CHECK_SECONDS], 11);
        assert_eq!(names[RATE_LIMITED_TOTAL], 1);
        assert_eq!(names.len(), 3, "{names:?}");
        // Without a recorder the check is not timed.
        assert!(!recording());
    }
}
