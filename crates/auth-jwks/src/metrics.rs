//! What the OIDC validator records through the [`metrics`] facade: fetches, key sets, the
//! token cache. Nothing is recorded when the application installs no recorder. The `issuer`
//! label is the configured issuer URL, a set the operator wrote; `result` is one of
//! [`FETCH_RESULTS`].

use tower_auth_core::{PerRecorder, RegisterHandles};

use crate::IssuerStatus;

/// `auth_token_cache_hits_total`: tokens answered from the validated-token cache.
pub const TOKEN_CACHE_HITS_TOTAL: &str = "auth_token_cache_hits_total";
/// `auth_token_cache_misses_total`: tokens validated in full.
pub const TOKEN_CACHE_MISSES_TOTAL: &str = "auth_token_cache_misses_total";
/// `auth_jwks_fetches_total{issuer, result}`: key fetch attempts (discovery included).
pub const JWKS_FETCHES_TOTAL: &str = "auth_jwks_fetches_total";
/// `auth_jwks_keys{issuer}`: usable keys in the issuer's current set.
pub const JWKS_KEYS: &str = "auth_jwks_keys";
/// `auth_jwks_age_seconds{issuer}`: time since the issuer last confirmed its keys.
pub const JWKS_AGE_SECONDS: &str = "auth_jwks_age_seconds";
/// `auth_issuer_up{issuer}`: 1 while the issuer's tokens can be validated, 0 while they get 503.
pub const ISSUER_UP: &str = "auth_issuer_up";

/// The values of the `result` label of [`JWKS_FETCHES_TOTAL`]: keys fetched; the issuer did
/// not answer as it should (unreachable, an error status, a timeout, a refused URL); it
/// answered with something that is not a usable key set or discovery document; it asked to
/// wait (429).
pub const FETCH_RESULTS: [&str; 4] = ["ok", "error", "garbage", "rate_limited"];

/// The `result` label for a failed fetch's reason code.
pub(crate) fn fetch_result(reason: &str) -> &'static str {
    match reason {
        "rate_limited" => "rate_limited",
        "body_too_large" | "discovery_not_json" | "discovery_bad_jwks_uri" | "missing_endpoint" => {
            "garbage"
        }
        reason if reason.starts_with("jwks_") => "garbage",
        _ => "error",
    }
}

/// A completed fetch attempt of `issuer` (`reason` of its failure, if it failed), and where
/// the issuer's keys stand after it.
pub(crate) fn fetched(issuer: &str, failure: Option<&str>, status: &IssuerStatus) {
    let result = failure.map_or("ok", fetch_result);
    metrics::counter!(JWKS_FETCHES_TOTAL, "issuer" => issuer.to_owned(), "result" => result)
        .increment(1);
    gauges(issuer, status);
}

/// Sets the gauges of `issuer` from its `status`.
pub(crate) fn gauges(issuer: &str, status: &IssuerStatus) {
    let issuer = issuer.to_owned();
    metrics::gauge!(JWKS_KEYS, "issuer" => issuer.clone()).set(status.keys as f64);
    if let Some(age) = status.age {
        metrics::gauge!(JWKS_AGE_SECONDS, "issuer" => issuer.clone()).set(age);
    }
    metrics::gauge!(ISSUER_UP, "issuer" => issuer).set(if status.available { 1.0 } else { 0.0 });
}

/// The handles of the token cache's counters, one set per recorder.
pub(crate) type CacheCounters = PerRecorder<CacheHandles>;

/// The token cache's counters of one recorder.
pub(crate) struct CacheHandles {
    hits: metrics::Counter,
    misses: metrics::Counter,
}

impl RegisterHandles for CacheHandles {
    fn register() -> Self {
        // Literal names: `static` keys.
        Self {
            hits: metrics::counter!("auth_token_cache_hits_total"),
            misses: metrics::counter!("auth_token_cache_misses_total"),
        }
    }
}

/// A token answered from the cache.
pub(crate) fn cache_hit(counters: &CacheCounters) {
    counters.with_handles(|handles| match handles {
        Some(handles) => handles.hits.increment(1),
        None => metrics::counter!("auth_token_cache_hits_total").increment(1),
    });
}

/// A token the cache did not hold, validated in full.
pub(crate) fn cache_miss(counters: &CacheCounters) {
    counters.with_handles(|handles| match handles {
        Some(handles) => handles.misses.increment(1),
        None => metrics::counter!("auth_token_cache_misses_total").increment(1),
    });
}
